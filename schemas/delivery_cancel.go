package schemas

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Deliveries of a target that is disabled or deleted end at once: the
// store answers which were still waiting (pending or retrying, test sends
// aside), so the caller can end their retry runs
// (workflows.Client.EndDeliveryRuns). A run that wakes before it is ended
// finds its delivery cancelled or gone and stops without a request.

// CancelWebhookDeliveries marks the webhook's waiting deliveries cancelled
// with reason, in tx (the one that disables the webhook), and answers them.
func CancelWebhookDeliveries(ctx context.Context, tx pgx.Tx, webhookID uuid.UUID, reason string) ([]uuid.UUID, error) {
	return cancelDeliveries(ctx, tx, "webhook_id", webhookID, reason)
}

// CancelIntegrationDeliveries is CancelWebhookDeliveries for an integration.
func CancelIntegrationDeliveries(ctx context.Context, tx pgx.Tx, integrationID uuid.UUID, reason string) ([]uuid.UUID, error) {
	return cancelDeliveries(ctx, tx, "integration_id", integrationID, reason)
}

func cancelDeliveries(ctx context.Context, tx pgx.Tx, column string, id uuid.UUID, reason string) ([]uuid.UUID, error) {
	rows, err := tx.Query(ctx, `UPDATE deliveries SET state = 'cancelled', last_error = $2, next_attempt_at = NULL,
			completed_at = clock_timestamp(), updated_at = clock_timestamp()
		WHERE `+column+` = $1 AND state IN ('pending', 'retrying') AND NOT test RETURNING id`, id, reason)
	if err != nil {
		return nil, fmt.Errorf("cancel deliveries of %s: %w", id, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("cancel deliveries of %s: %w", id, err)
	}
	return ids, nil
}

// deleteTarget deletes a webhook or integration (its deliveries go with
// it) and answers the deliveries that were still waiting; ErrNotFound when
// there is none.
func (s *Store) deleteTarget(ctx context.Context, table, column string, id uuid.UUID) ([]uuid.UUID, error) {
	var deleted bool
	var waiting []uuid.UUID
	// The outer SELECT reads the deliveries as they were before the delete.
	err := s.Pool.QueryRow(ctx, `WITH gone AS (DELETE FROM `+table+` WHERE id = $1 RETURNING id)
		SELECT EXISTS (SELECT FROM gone), array(SELECT d.id FROM deliveries d
			WHERE d.`+column+` = $1 AND d.state IN ('pending', 'retrying') AND NOT d.test)`, id).Scan(&deleted, &waiting)
	if err != nil {
		return nil, fmt.Errorf("delete %s %s: %w", table, id, err)
	}
	if !deleted {
		return nil, ErrNotFound
	}
	return waiting, nil
}

// ReopenCancelledDelivery makes a cancelled delivery one waiting to retry
// again, for a redelivery an admin asked for (a delivery in another state
// is left as it is).
func (s *Store) ReopenCancelledDelivery(ctx context.Context, id uuid.UUID) error {
	_, err := s.Pool.Exec(ctx, `UPDATE deliveries SET state = 'retrying', completed_at = NULL,
			next_attempt_at = clock_timestamp(), updated_at = clock_timestamp()
		WHERE id = $1 AND state = 'cancelled'`, id)
	if err != nil {
		return fmt.Errorf("reopen delivery %s: %w", id, err)
	}
	return nil
}
