package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Integration rows (migration 00007): Slack, Teams, Discord, PagerDuty and
// email notification channels. ConfigEnc is sealed by the caller
// (internal/secretbox); the store reads and writes it as bytes.

const integrationColumns = `id, type, name, config_enc, events, enabled, disabled_reason, failing_since,
	created_by, created_at, updated_at`

const integrationCursorPrefix = "i1."

func scanIntegration(row pgx.Row) (Integration, error) {
	var in Integration
	err := row.Scan(&in.ID, &in.Type, &in.Name, &in.ConfigEnc, &in.Events, &in.Enabled, &in.DisabledReason,
		&in.FailingSince, &in.CreatedBy, &in.CreatedAt, &in.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Integration{}, ErrNotFound
	}
	return in, err
}

// InsertIntegration creates in inside tx. It fills ID (when unset) and the
// timestamps.
func InsertIntegration(ctx context.Context, tx pgx.Tx, in *Integration) error {
	if in.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		in.ID = id
	}
	err := tx.QueryRow(ctx, `INSERT INTO integrations (id, type, name, config_enc, events, enabled, disabled_reason,
			failing_since, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		RETURNING created_at, updated_at`,
		in.ID, in.Type, in.Name, in.ConfigEnc, in.Events, in.Enabled, in.DisabledReason, in.FailingSince, in.CreatedBy,
	).Scan(&in.CreatedAt, &in.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert integration: %w", err)
	}
	return nil
}

// CreateIntegration is InsertIntegration in a transaction of its own.
func (s *Store) CreateIntegration(ctx context.Context, in *Integration) error {
	return s.InTx(ctx, func(tx pgx.Tx) error { return InsertIntegration(ctx, tx, in) })
}

// GetIntegration reads one integration; ErrNotFound when there is none.
func (s *Store) GetIntegration(ctx context.Context, id uuid.UUID) (Integration, error) {
	in, err := scanIntegration(s.Pool.QueryRow(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return in, fmt.Errorf("get integration %s: %w", id, err)
	}
	return in, err
}

// LockIntegration reads one integration inside tx and locks its row until
// tx ends, for a read-modify-write (UpdateIntegration).
func LockIntegration(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Integration, error) {
	in, err := scanIntegration(tx.QueryRow(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE id = $1 FOR UPDATE`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return in, fmt.Errorf("lock integration %s: %w", id, err)
	}
	return in, err
}

// UpdateIntegration writes every changeable field of in (all but ID, Type,
// CreatedBy and CreatedAt) and sets UpdatedAt; ErrNotFound when the row is
// gone.
func UpdateIntegration(ctx context.Context, tx pgx.Tx, in *Integration) error {
	err := tx.QueryRow(ctx, `UPDATE integrations SET name = $2, config_enc = $3, events = $4, enabled = $5,
			disabled_reason = $6, failing_since = $7, updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		in.ID, in.Name, in.ConfigEnc, in.Events, in.Enabled, in.DisabledReason, in.FailingSince,
	).Scan(&in.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update integration %s: %w", in.ID, err)
	}
	return nil
}

// DeleteIntegration deletes an integration with its deliveries and their
// attempts; ErrNotFound when there is none. It answers the deliveries that
// were still waiting to retry, whose runs the caller ends.
func (s *Store) DeleteIntegration(ctx context.Context, id uuid.UUID) (Cancelled, error) {
	return s.deleteTarget(ctx, "integrations", "integration_id", id)
}

// IntegrationFilter selects a page of integrations, newest first.
type IntegrationFilter struct {
	Type    string    // one of the Integration* types; "" = any
	Enabled *bool     // only enabled (true) or disabled (false) integrations
	Event   EventType // only integrations subscribed to this event type
	Cursor  string    // the next cursor of the previous page
	Limit   int       // 1..MaxPageSize; 0 = DefaultPageSize
}

// ListIntegrations answers one page of integrations, newest first, and the
// cursor of the next page ("" on the last); ErrInvalidCursor for a cursor it
// did not return.
func (s *Store) ListIntegrations(ctx context.Context, f IntegrationFilter) ([]Integration, string, error) {
	limit := pageSize(f.Limit)
	q := `SELECT ` + integrationColumns + ` FROM integrations WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Type != "" {
		q += ` AND type = ` + arg(f.Type)
	}
	if f.Enabled != nil {
		q += ` AND enabled = ` + arg(*f.Enabled)
	}
	if f.Event != "" {
		q += ` AND events @> ARRAY[` + arg(string(f.Event)) + `]::text[]`
	}
	if f.Cursor != "" {
		c, err := decodeTimeIDCursor(integrationCursorPrefix, f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < (` + arg(c.CreatedAt) + `, ` + arg(c.ID) + `)`
	}
	return newestFirst(ctx, s.Pool, "list integrations", q, args, limit, scanIntegration,
		func(r Integration) timeIDCursor { return timeIDCursor{CreatedAt: r.CreatedAt, ID: r.ID} }, integrationCursorPrefix)
}

// EnabledIntegrationsFor lists every enabled integration subscribed to
// eventType, oldest first (the fan-out of one event).
func (s *Store) EnabledIntegrationsFor(ctx context.Context, eventType EventType) ([]Integration, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+integrationColumns+` FROM integrations
		WHERE enabled AND events @> ARRAY[$1]::text[] ORDER BY created_at, id`, string(eventType))
	if err != nil {
		return nil, fmt.Errorf("integrations for %s: %w", eventType, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Integration, error) { return scanIntegration(r) })
	if err != nil {
		return nil, fmt.Errorf("integrations for %s: %w", eventType, err)
	}
	return list, nil
}
