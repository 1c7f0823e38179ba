package schemas_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// claimInOpenTx claims every due event and marks it dispatched to
// workflowID in a transaction it leaves open, as the relay does while it
// starts the run.
func claimInOpenTx(t *testing.T, pool *pgxpool.Pool, workflowID string) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	evs, err := schemas.ClaimPendingEvents(ctx, tx, 100)
	require.NoError(t, err)
	ids := make([]uuid.UUID, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	require.NoError(t, schemas.MarkEventsDispatched(ctx, tx, ids, workflowID, "run-1"))
	return tx
}

// heldAfterCommit asks HeldEvents while the relay's transaction is open,
// checks the query waits for that transaction's row locks, then ends the
// transaction with end and answers what HeldEvents returned.
func heldAfterCommit(t *testing.T, pool *pgxpool.Pool, tx pgx.Tx, wid string, ids []uuid.UUID, end func(context.Context) error) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	type answer struct {
		held []uuid.UUID
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		held, err := (&schemas.Store{Pool: pool}).HeldEvents(ctx, wid, ids)
		got <- answer{held, err}
	}()
	// Wait until the query is blocked on a row lock; an answer before that
	// is an answer that did not wait for the relay.
	for waiting := false; !waiting; {
		select {
		case a := <-got:
			t.Fatalf("HeldEvents answered %v (err %v) before the relay's transaction ended", a.held, a.err)
		default:
		}
		require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%')`).Scan(&waiting))
	}
	require.NoError(t, end(ctx))
	a := <-got
	require.NoError(t, a.err)
	return a.held
}

func TestHeldEvents(t *testing.T) {
	t.Parallel()

	t.Run("WaitsForTheRelayToCommit", func(t *testing.T) {
		t.Parallel()
		pool := testenv.DB(t)
		ids := publishN(t, &schemas.Store{Pool: pool}, 3)
		tx := claimInOpenTx(t, pool, "events/a")
		require.Equal(t, ids, heldAfterCommit(t, pool, tx, "events/a", ids, tx.Commit))
	})

	t.Run("NoneWhenTheRelayRolledBack", func(t *testing.T) {
		t.Parallel()
		pool := testenv.DB(t)
		ids := publishN(t, &schemas.Store{Pool: pool}, 3)
		tx := claimInOpenTx(t, pool, "events/a")
		require.Empty(t, heldAfterCommit(t, pool, tx, "events/a", ids, tx.Rollback))
	})

	t.Run("OnlyTheRunsOwnUnfinishedEvents", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		pool := testenv.DB(t)
		store := &schemas.Store{Pool: pool}
		ids := publishN(t, store, 4)
		require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
			if err := schemas.MarkEventsDispatched(ctx, tx, ids[:3], "events/a", "r"); err != nil {
				return err
			}
			return schemas.MarkEventsDispatched(ctx, tx, ids[3:], "events/b", "r")
		}))
		n, err := store.FinishEvents(ctx, "events/a", []schemas.EventOutcome{{ID: ids[0]}})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		held, err := store.HeldEvents(ctx, "events/a", ids)
		require.NoError(t, err)
		require.Equal(t, ids[1:3], held, "finished and other runs' events are not held")
	})
}

func TestFinishEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	ids := publishN(t, store, 3)
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		return schemas.MarkEventsDispatched(ctx, tx, ids, "events/a", "run-a")
	}))

	// Another run finishes nothing of this one's.
	n, err := store.FinishEvents(ctx, "events/b", []schemas.EventOutcome{{ID: ids[0]}})
	require.NoError(t, err)
	require.Zero(t, n)

	n, err = store.FinishEvents(ctx, "events/a", []schemas.EventOutcome{{ID: ids[0]}, {ID: ids[1], Cause: "deliveries: db gone"}})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	// Finishing again (a retried activity) changes nothing.
	n, err = store.FinishEvents(ctx, "events/a", []schemas.EventOutcome{{ID: ids[0], Cause: "late"}})
	require.NoError(t, err)
	require.Zero(t, n)

	ok, err := store.GetEvent(ctx, ids[0])
	require.NoError(t, err)
	require.Equal(t, schemas.DispatchCompleted, ok.DispatchState)
	require.Empty(t, ok.LastError)
	require.Equal(t, "run-a", ok.RunID)
	require.NotNil(t, ok.CompletedAt)
	failed, err := store.GetEvent(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, schemas.DispatchFailed, failed.DispatchState)
	require.Equal(t, "deliveries: db gone", failed.LastError)
	open, err := store.GetEvent(ctx, ids[2])
	require.NoError(t, err)
	require.Equal(t, schemas.DispatchDispatched, open.DispatchState)

	inFlight, err := store.EventsInFlight(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, inFlight)
}

func TestDeferEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	ids := publishN(t, store, 2)
	retryIn := func(attempt int) time.Duration { return time.Duration(attempt) * time.Hour }
	deferAll := func() {
		require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
			evs, err := schemas.ClaimPendingEvents(ctx, tx, 10)
			if err != nil {
				return err
			}
			require.Len(t, evs, 2)
			return schemas.DeferEvents(ctx, tx, evs, "temporal unreachable", retryIn)
		}))
	}
	deferAll()
	// Deferred events are not due: nothing to claim until their time.
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		evs, err := schemas.ClaimPendingEvents(ctx, tx, 10)
		require.Empty(t, evs)
		return err
	}))
	due, ok, err := store.NextPendingEventDue(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(time.Hour), due, time.Minute)

	// Due again, the second failure waits for the second attempt's delay.
	_, err = pool.Exec(ctx, `UPDATE events SET next_attempt_at = now()`)
	require.NoError(t, err)
	deferAll()
	for _, id := range ids {
		ev, err := store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchPending, ev.DispatchState)
		require.Equal(t, 2, ev.DispatchAttempts)
		require.Equal(t, "temporal unreachable", ev.LastError)
	}
	due, _, err = store.NextPendingEventDue(ctx)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(2*time.Hour), due, time.Minute)
}

func TestReadBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}

	b, err := store.ReadBacklog(ctx)
	require.NoError(t, err)
	require.Equal(t, schemas.Backlog{}, b, "an empty pipeline")

	ids := publishN(t, store, 5)
	_, err = pool.Exec(ctx, `UPDATE events SET occurred_at = now() - interval '90 seconds' WHERE id = $1`, ids[0])
	require.NoError(t, err)
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		return schemas.MarkEventsDispatched(ctx, tx, ids[3:], "events/a", "r")
	}))
	b, err = store.ReadBacklog(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, b.PendingEvents)
	require.Equal(t, 2, b.EventsInFlight)
	require.InDelta(t, 90, b.OldestPendingEvent.Seconds(), 30)
	require.Zero(t, b.PendingDeliveries)
}
