package schemas

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Deliveries of a target that is disabled or deleted end at once: the
// store answers how many were still waiting (pending or retrying, test
// sends aside) and which of them have a delivery/<id> run of their own, so
// the caller ends those runs (workflows.Client.EndDeliveryRuns) and the
// target's retry loop (workflows.Client.EndTargetRetries). A run that wakes
// before it is ended finds its delivery cancelled or gone and stops without
// a request.

// Cancelled is what disabling or deleting a target ended.
type Cancelled struct {
	Count int         // deliveries that were waiting, now cancelled (or deleted)
	Runs  []uuid.UUID // those of them whose retries had a run of their own
}

// cancelledSQL sums up the rows of a CTE c with columns id and own_run.
const cancelledSQL = `(SELECT count(*) FROM c), array(SELECT id FROM c WHERE own_run ORDER BY id)`

// CancelWebhookDeliveries marks the webhook's waiting deliveries cancelled
// with reason, in tx (the one that disables the webhook), and answers them.
func CancelWebhookDeliveries(ctx context.Context, tx pgx.Tx, webhookID uuid.UUID, reason string) (Cancelled, error) {
	return cancelDeliveries(ctx, tx, "webhook_id", webhookID, reason)
}

// CancelIntegrationDeliveries is CancelWebhookDeliveries for an integration.
func CancelIntegrationDeliveries(ctx context.Context, tx pgx.Tx, integrationID uuid.UUID, reason string) (Cancelled, error) {
	return cancelDeliveries(ctx, tx, "integration_id", integrationID, reason)
}

func cancelDeliveries(ctx context.Context, tx pgx.Tx, column string, id uuid.UUID, reason string) (Cancelled, error) {
	var c Cancelled
	err := tx.QueryRow(ctx, `WITH c AS (
			UPDATE deliveries SET state = 'cancelled', last_error = $2, next_attempt_at = NULL,
			       completed_at = clock_timestamp(), updated_at = clock_timestamp()
			 WHERE `+column+` = $1 AND state IN ('pending', 'retrying') AND NOT test RETURNING id, own_run)
		SELECT `+cancelledSQL, id, reason).Scan(&c.Count, &c.Runs)
	if err != nil {
		return Cancelled{}, fmt.Errorf("cancel deliveries of %s: %w", id, err)
	}
	return c, nil
}

// deleteTarget deletes a webhook or integration (its deliveries go with
// it) and answers the deliveries that were still waiting; ErrNotFound when
// there is none.
func (s *Store) deleteTarget(ctx context.Context, table, column string, id uuid.UUID) (Cancelled, error) {
	var deleted bool
	var c Cancelled
	// The outer SELECT reads the deliveries as they were before the delete.
	err := s.Pool.QueryRow(ctx, `WITH gone AS (DELETE FROM `+table+` WHERE id = $1 RETURNING id),
		c AS (SELECT d.id, d.own_run FROM deliveries d
			WHERE d.`+column+` = $1 AND d.state IN ('pending', 'retrying') AND NOT d.test)
		SELECT EXISTS (SELECT FROM gone), `+cancelledSQL, id).Scan(&deleted, &c.Count, &c.Runs)
	if err != nil {
		return Cancelled{}, fmt.Errorf("delete %s %s: %w", table, id, err)
	}
	if !deleted {
		return Cancelled{}, ErrNotFound
	}
	return c, nil
}
