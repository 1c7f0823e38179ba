package schemas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Retries per target. A delivery that needs another attempt waits in this
// table (state retrying, or pending with its first attempt's lease, and
// next_attempt_at its due time); one retry loop per webhook or integration
// takes the due ones with DueRetries. Deliveries with a delivery/<id> run
// of their own (own_run: planned by an earlier version, or a test send)
// are left to that run.

// DueDelivery is a delivery due for its next attempt.
type DueDelivery struct {
	ID      uuid.UUID
	Attempt int // the number of the attempt to make (attempts so far + 1)
	Try     int // its place in the current round of the retry policy (1 = first)
}

// TargetRetries is where a target's waiting deliveries stand.
type TargetRetries struct {
	Exists      bool // the webhook or integration exists
	Enabled     bool
	CircuitOpen bool          // as SetCircuit last recorded it
	Due         []DueDelivery // the earliest due, at most the limit asked for
	// Waiting counts the deliveries waiting for the loop, due or not.
	Waiting int
	// NextAt is the earliest due time of a waiting delivery not in Due
	// (nil: none).
	NextAt *time.Time
}

// targetRetriesSQL reads a target's waiting deliveries in one statement.
// $1 is the target's id, $2 the limit.
func targetRetriesSQL(table, column string) string {
	return `WITH t AS (SELECT enabled, circuit_open FROM ` + table + ` WHERE id = $1),
	w AS (SELECT id, attempts, retry_base, next_attempt_at FROM deliveries
	       WHERE ` + column + ` = $1 AND state IN ('pending', 'retrying') AND NOT own_run AND NOT test
	         AND next_attempt_at IS NOT NULL),
	due AS (SELECT * FROM w WHERE next_attempt_at <= clock_timestamp() ORDER BY next_attempt_at, id LIMIT $2)
	SELECT EXISTS (SELECT FROM t), coalesce((SELECT enabled FROM t), false),
	       coalesce((SELECT circuit_open FROM t), false),
	       array(SELECT id FROM due ORDER BY next_attempt_at, id),
	       array(SELECT attempts FROM due ORDER BY next_attempt_at, id),
	       array(SELECT retry_base FROM due ORDER BY next_attempt_at, id),
	       (SELECT count(*) FROM w),
	       (SELECT min(next_attempt_at) FROM w WHERE id NOT IN (SELECT id FROM due))`
}

// DueRetries answers the target's deliveries due now (at most limit, the
// earliest first), how many wait in all, and when the next of the others
// is due. Exactly one of webhookID and integrationID names the target.
func (s *Store) DueRetries(ctx context.Context, webhookID, integrationID *uuid.UUID, limit int) (TargetRetries, error) {
	table, column, id, err := deliveryTarget(webhookID, integrationID)
	if err != nil {
		return TargetRetries{}, err
	}
	var r TargetRetries
	var ids []uuid.UUID
	var attempts, bases []int32
	err = s.Pool.QueryRow(ctx, targetRetriesSQL(table, column), id, max(limit, 1)).Scan(
		&r.Exists, &r.Enabled, &r.CircuitOpen, &ids, &attempts, &bases, &r.Waiting, &r.NextAt)
	if err != nil {
		return TargetRetries{}, fmt.Errorf("due retries of %s: %w", id, err)
	}
	for i, id := range ids {
		r.Due = append(r.Due, DueDelivery{ID: id, Attempt: int(attempts[i]) + 1,
			Try: max(int(attempts[i]-bases[i])+1, 1)})
	}
	return r, nil
}

// deliveryTarget names the table and the deliveries' column of the target
// named by exactly one of the two ids.
func deliveryTarget(webhookID, integrationID *uuid.UUID) (table, column string, id uuid.UUID, err error) {
	switch {
	case (webhookID == nil) == (integrationID == nil):
		return "", "", uuid.Nil, errors.New("name exactly one of webhook and integration")
	case webhookID != nil:
		return "webhooks", "webhook_id", *webhookID, nil
	}
	return "integrations", "integration_id", *integrationID, nil
}

// DeferDeliveries moves each waiting delivery ids[i] (throttled by its
// target's rate limit, so not attempted) to ats[i]: its target's loop
// attempts it then. A first attempt throttled in its batch run is so handed
// to the loop; a delivery with a run of its own is left to that run.
func (s *Store) DeferDeliveries(ctx context.Context, ids []uuid.UUID, ats []time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.Pool.Exec(ctx, `UPDATE deliveries d SET next_attempt_at = u.at, updated_at = clock_timestamp()
		  FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
		 WHERE d.id = u.id AND d.state IN ('pending', 'retrying') AND NOT d.own_run`, ids, ats)
	if err != nil {
		return fmt.Errorf("defer %d deliveries: %w", len(ids), err)
	}
	return nil
}

// Redelivery is how a redelivery an admin asked for goes on.
type Redelivery struct {
	// OwnRun: the delivery has a run of its own (a test send, or a
	// delivery still waiting in a run an earlier version started); signal
	// or start delivery/<id>. Otherwise it now waits, due at once, for its
	// target's retry loop.
	OwnRun        bool
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
}

// PrepareRedelivery readies delivery id for one more attempt with the retry
// policy afresh: unless it has a run of its own, it becomes a delivery
// retrying now in its target's loop (a cancelled one too). ErrNotFound when
// there is none.
func (s *Store) PrepareRedelivery(ctx context.Context, id uuid.UUID) (Redelivery, error) {
	var r Redelivery
	err := s.Pool.QueryRow(ctx, `WITH d AS (SELECT id, test, own_run AND state IN ('pending', 'retrying') AS own_run,
			webhook_id, integration_id FROM deliveries WHERE id = $1),
		u AS (UPDATE deliveries x SET state = 'retrying', own_run = false, retry_base = x.attempts,
			       next_attempt_at = clock_timestamp(), completed_at = NULL, updated_at = clock_timestamp()
			  FROM d WHERE x.id = d.id AND NOT d.test AND NOT d.own_run RETURNING x.id)
		SELECT test OR own_run, webhook_id, integration_id FROM d`, id).Scan(&r.OwnRun, &r.WebhookID, &r.IntegrationID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Redelivery{}, ErrNotFound
	}
	if err != nil {
		return Redelivery{}, fmt.Errorf("redeliver %s: %w", id, err)
	}
	return r, nil
}

// SetCircuit records whether the circuit of a target's retry loop is open
// (its webhook's or integration's circuit_open), for batch runs to leave
// new deliveries to the loop while it is.
func (s *Store) SetCircuit(ctx context.Context, webhookID, integrationID *uuid.UUID, open bool) error {
	table, _, id, err := deliveryTarget(webhookID, integrationID)
	if err != nil {
		return err
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE `+table+` SET circuit_open = $2 WHERE id = $1 AND circuit_open <> $2`,
		id, open); err != nil {
		return fmt.Errorf("set the circuit of %s: %w", id, err)
	}
	return nil
}
