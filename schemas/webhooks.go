package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Webhook rows (migration 00007). The store reads and writes the sealed
// columns as bytes: sealing and opening is the caller's (internal/secretbox).

const webhookColumns = `id, name, description, url, events, enabled, headers_enc, secret_enc,
	previous_secret_enc, previous_secret_expires_at, max_attempts, backoff_seconds, rate_limit_per_second,
	disabled_reason, failing_since, created_by, created_at, updated_at`

func scanWebhook(row pgx.Row) (Webhook, error) {
	var w Webhook
	var backoff []int32
	err := row.Scan(&w.ID, &w.Name, &w.Description, &w.URL, &w.Events, &w.Enabled, &w.HeadersEnc, &w.SecretEnc,
		&w.PreviousSecretEnc, &w.PreviousSecretExpiresAt, &w.MaxAttempts, &backoff, &w.RateLimitPerSecond,
		&w.DisabledReason, &w.FailingSince, &w.CreatedBy, &w.CreatedAt, &w.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Webhook{}, ErrNotFound
	}
	if err != nil {
		return Webhook{}, err
	}
	w.BackoffSeconds = make([]int, len(backoff))
	for i, b := range backoff {
		w.BackoffSeconds[i] = int(b)
	}
	return w, nil
}

func int32s(v []int) []int32 {
	out := make([]int32, len(v))
	for i, n := range v {
		out[i] = int32(n)
	}
	return out
}

// InsertWebhook creates w inside tx. It fills ID (when unset) and the
// timestamps; a zero MaxAttempts or RateLimitPerSecond takes
// DefaultMaxAttempts and DefaultWebhookRateLimit.
func InsertWebhook(ctx context.Context, tx pgx.Tx, w *Webhook) error {
	if w.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		w.ID = id
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = DefaultMaxAttempts
	}
	if w.RateLimitPerSecond == 0 {
		w.RateLimitPerSecond = DefaultWebhookRateLimit
	}
	if w.BackoffSeconds == nil {
		w.BackoffSeconds = []int{}
	}
	err := tx.QueryRow(ctx, `INSERT INTO webhooks (id, name, description, url, events, enabled, headers_enc,
			secret_enc, previous_secret_enc, previous_secret_expires_at, max_attempts, backoff_seconds,
			rate_limit_per_second, disabled_reason, failing_since, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		RETURNING created_at, updated_at`,
		w.ID, w.Name, w.Description, w.URL, w.Events, w.Enabled, w.HeadersEnc, w.SecretEnc, w.PreviousSecretEnc,
		w.PreviousSecretExpiresAt, w.MaxAttempts, int32s(w.BackoffSeconds), w.RateLimitPerSecond, w.DisabledReason,
		w.FailingSince, w.CreatedBy,
	).Scan(&w.CreatedAt, &w.UpdatedAt)
	if err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// DefaultWebhookRateLimit is the requests per second a webhook is sent at
// most unless it says otherwise (the seed's 10).
const DefaultWebhookRateLimit = 10

// GetWebhook reads one webhook; ErrNotFound when there is none.
func (s *Store) GetWebhook(ctx context.Context, id uuid.UUID) (Webhook, error) {
	w, err := scanWebhook(s.Pool.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return w, fmt.Errorf("get webhook %s: %w", id, err)
	}
	return w, err
}

// LockWebhook reads one webhook inside tx and locks its row until tx ends,
// for a read-modify-write (UpdateWebhook).
func LockWebhook(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Webhook, error) {
	w, err := scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 FOR UPDATE`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return w, fmt.Errorf("lock webhook %s: %w", id, err)
	}
	return w, err
}

// UpdateWebhook writes every changeable field of w (all but ID, CreatedBy
// and CreatedAt) and sets UpdatedAt.
func UpdateWebhook(ctx context.Context, tx pgx.Tx, w *Webhook) error {
	if w.BackoffSeconds == nil {
		w.BackoffSeconds = []int{}
	}
	err := tx.QueryRow(ctx, `UPDATE webhooks SET name = $2, description = $3, url = $4, events = $5, enabled = $6,
			headers_enc = $7, secret_enc = $8, previous_secret_enc = $9, previous_secret_expires_at = $10,
			max_attempts = $11, backoff_seconds = $12, rate_limit_per_second = $13, disabled_reason = $14,
			failing_since = $15, updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		w.ID, w.Name, w.Description, w.URL, w.Events, w.Enabled, w.HeadersEnc, w.SecretEnc, w.PreviousSecretEnc,
		w.PreviousSecretExpiresAt, w.MaxAttempts, int32s(w.BackoffSeconds), w.RateLimitPerSecond, w.DisabledReason,
		w.FailingSince,
	).Scan(&w.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update webhook %s: %w", w.ID, err)
	}
	return nil
}

// DeleteWebhook deletes a webhook with its deliveries and their attempts;
// ErrNotFound when there is none. It answers the deliveries that were still
// waiting to retry, whose runs the caller ends.
func (s *Store) DeleteWebhook(ctx context.Context, id uuid.UUID) (Cancelled, error) {
	return s.deleteTarget(ctx, "webhooks", "webhook_id", id)
}

// WebhookFilter selects a page of webhooks, newest first.
type WebhookFilter struct {
	Enabled *bool     // only enabled (true) or disabled (false) webhooks
	Event   EventType // only webhooks subscribed to this event type
	Cursor  string    // the next cursor of the previous page
	Limit   int       // 1..MaxPageSize; 0 = DefaultPageSize
}

// ListWebhooks answers one page of webhooks, newest first, and the cursor of
// the next page ("" on the last); ErrInvalidCursor for a cursor it did not
// return.
func (s *Store) ListWebhooks(ctx context.Context, f WebhookFilter) ([]Webhook, string, error) {
	limit := pageSize(f.Limit)
	q := `SELECT ` + webhookColumns + ` FROM webhooks WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Enabled != nil {
		q += ` AND enabled = ` + arg(*f.Enabled)
	}
	if f.Event != "" {
		q += ` AND events @> ARRAY[` + arg(string(f.Event)) + `]::text[]`
	}
	if f.Cursor != "" {
		c, err := decodeTimeIDCursor(webhookCursorPrefix, f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < (` + arg(c.CreatedAt) + `, ` + arg(c.ID) + `)`
	}
	return newestFirst(ctx, s.Pool, "list webhooks", q, args, limit, scanWebhook,
		func(r Webhook) timeIDCursor { return timeIDCursor{CreatedAt: r.CreatedAt, ID: r.ID} }, webhookCursorPrefix)
}
