package schemas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The read side of deliveries (migration 00007): what the API lists and
// shows. The delivery engine writes the rows.

const deliveryReadColumns = `id, event_id, event_type, webhook_id, integration_id, test, state, attempts,
	next_attempt_at, last_status, last_error, created_at, updated_at, completed_at`

func scanDeliveryRead(row pgx.Row) (Delivery, error) {
	var d Delivery
	var status *int32
	err := row.Scan(&d.ID, &d.EventID, &d.EventType, &d.WebhookID, &d.IntegrationID, &d.Test, &d.State, &d.Attempts,
		&d.NextAttemptAt, &status, &d.LastError, &d.CreatedAt, &d.UpdatedAt, &d.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if status != nil {
		n := int(*status)
		d.LastStatus = &n
	}
	return d, err
}

// DeliveryFilter selects a page of one webhook's or one integration's
// deliveries, newest first. Exactly one of WebhookID and IntegrationID is
// set.
type DeliveryFilter struct {
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
	State         string    // pending | succeeded | retrying | failed | cancelled; "" = any
	EventType     string    // "" = any
	Since         time.Time // created at or after; zero = any
	Cursor        string    // the next cursor of the previous page
	Limit         int       // 1..MaxPageSize; 0 = DefaultPageSize
}

// ListDeliveries answers one page of deliveries, newest first, and the
// cursor of the next page ("" on the last); ErrInvalidCursor for a cursor it
// did not return.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, string, error) {
	limit := pageSize(f.Limit)
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var q string
	switch {
	case f.WebhookID != nil && f.IntegrationID == nil:
		q = `SELECT ` + deliveryReadColumns + ` FROM deliveries WHERE webhook_id = ` + arg(*f.WebhookID)
	case f.IntegrationID != nil && f.WebhookID == nil:
		q = `SELECT ` + deliveryReadColumns + ` FROM deliveries WHERE integration_id = ` + arg(*f.IntegrationID)
	default:
		return nil, "", errors.New("list deliveries: set exactly one of WebhookID and IntegrationID")
	}
	if f.State != "" {
		q += ` AND state = ` + arg(f.State)
	}
	if f.EventType != "" {
		q += ` AND event_type = ` + arg(f.EventType)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ` + arg(f.Since)
	}
	if f.Cursor != "" {
		c, err := decodeTimeIDCursor(deliveryCursorPrefix, f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < (` + arg(c.CreatedAt) + `, ` + arg(c.ID) + `)`
	}
	return newestFirst(ctx, s.Pool, "list deliveries", q, args, limit, scanDeliveryRead,
		func(r Delivery) timeIDCursor { return timeIDCursor{CreatedAt: r.CreatedAt, ID: r.ID} }, deliveryCursorPrefix)
}

// ReadDelivery reads one delivery and all its attempts, oldest first;
// ErrNotFound when there is none.
func (s *Store) ReadDelivery(ctx context.Context, id uuid.UUID) (Delivery, []DeliveryAttempt, error) {
	d, err := scanDeliveryRead(s.Pool.QueryRow(ctx, `SELECT `+deliveryReadColumns+` FROM deliveries WHERE id = $1`, id))
	if errors.Is(err, ErrNotFound) {
		return d, nil, err
	}
	if err != nil {
		return d, nil, fmt.Errorf("read delivery %s: %w", id, err)
	}
	rows, err := s.Pool.Query(ctx, `SELECT delivery_id, attempt, started_at, latency_ms, request_url, request_headers,
			request_body, response_status, response_headers, response_body, error, outcome, next_attempt_at
		FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`, id)
	if err != nil {
		return d, nil, fmt.Errorf("read delivery %s attempts: %w", id, err)
	}
	attempts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryAttempt, error) {
		var a DeliveryAttempt
		var latencyMS int32
		var status *int32
		err := r.Scan(&a.DeliveryID, &a.Attempt, &a.StartedAt, &latencyMS, &a.RequestURL, &a.RequestHeaders,
			&a.RequestBody, &status, &a.ResponseHeaders, &a.ResponseBody, &a.Error, &a.Outcome, &a.NextAttemptAt)
		a.Latency = time.Duration(latencyMS) * time.Millisecond
		if status != nil {
			n := int(*status)
			a.ResponseStatus = &n
		}
		return a, err
	})
	if err != nil {
		return d, nil, fmt.Errorf("read delivery %s attempts: %w", id, err)
	}
	return d, attempts, nil
}
