package schemas_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// waitingDelivery inserts a delivery of hook in state with attempts made
// and next_attempt_at at (nil: none).
func waitingDelivery(t *testing.T, pool *pgxpool.Pool, hook uuid.UUID, state string, attempts, base int,
	at *time.Time, ownRun bool) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := pool.Exec(context.Background(), `INSERT INTO deliveries (id, event_id, event_type, webhook_id, state,
			attempts, retry_base, next_attempt_at, own_run) VALUES ($1, $2, 'session.created', $3, $4, $5, $6, $7, $8)`,
		id, uuid.Must(uuid.NewV7()), hook, state, attempts, base, at, ownRun)
	require.NoError(t, err)
	return id
}

func TestPlanLoopDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook := dwWebhook(t, pool, true, "session.created")
	ev := dwPublish(t, store, schemas.EventSessionCreated, schemas.SessionEventData{SessionID: "s1", User: "alice"})
	before := time.Now()
	plan, err := store.PlanLoopDeliveries(ctx, 10*time.Minute, ev)
	require.NoError(t, err)
	require.Len(t, plan, 1)
	var ownRun bool
	var at time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT own_run, next_attempt_at FROM deliveries WHERE id = $1`,
		plan[0].ID).Scan(&ownRun, &at))
	require.False(t, ownRun, "the webhook's loop makes its retries")
	require.WithinDuration(t, before.Add(10*time.Minute), at, 30*time.Second, "due to the loop at the lease's end")

	// Not due before then: the run making the first attempt has it.
	r, err := store.DueRetries(ctx, &hook, nil, 10)
	require.NoError(t, err)
	require.Empty(t, r.Due)
	require.Equal(t, 1, r.Waiting)
	require.WithinDuration(t, at, *r.NextAt, time.Millisecond)

	require.False(t, plan[0].Held)

	// While the webhook's circuit is open, its new deliveries are its
	// loop's at once, and held from the batch's first attempts.
	require.NoError(t, store.SetCircuit(ctx, &hook, nil, true))
	evOpen := dwPublish(t, store, schemas.EventSessionCreated, schemas.SessionEventData{SessionID: "s3", User: "alice"})
	plan, err = store.PlanLoopDeliveries(ctx, 10*time.Minute, evOpen)
	require.NoError(t, err)
	require.Len(t, plan, 1)
	require.True(t, plan[0].Held)
	r, err = store.DueRetries(ctx, &hook, nil, 10)
	require.NoError(t, err)
	require.True(t, r.CircuitOpen)
	require.Len(t, r.Due, 1, "due now")
	require.Equal(t, plan[0].ID, r.Due[0].ID)
	require.NoError(t, store.SetCircuit(ctx, &hook, nil, false))

	// The per-event planning keeps runs of their own.
	ev2 := dwPublish(t, store, schemas.EventSessionCreated, schemas.SessionEventData{SessionID: "s2", User: "alice"})
	require.NoError(t, store.SetCircuit(ctx, &hook, nil, true))
	plan, err = store.PlanDeliveries(ctx, ev2)
	require.NoError(t, err)
	require.False(t, plan[0].Held, "runs of their own make every first attempt")
	require.NoError(t, pool.QueryRow(ctx, `SELECT own_run, next_attempt_at IS NULL FROM deliveries WHERE id = $1`,
		plan[0].ID).Scan(&ownRun, new(bool)))
	require.True(t, ownRun)
}

func TestDueRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook := dwWebhook(t, pool, true, "session.created")
	other := dwWebhook(t, pool, true, "session.created")
	now := time.Now()
	past := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	first := waitingDelivery(t, pool, hook, "retrying", 3, 0, past(time.Hour), false)
	second := waitingDelivery(t, pool, hook, "retrying", 4, 2, past(time.Minute), false) // redelivered after 2
	third := waitingDelivery(t, pool, hook, "pending", 0, 0, past(time.Second), false)   // lease ran out
	later := now.Add(time.Hour)
	waitingDelivery(t, pool, hook, "retrying", 1, 0, &later, false)
	waitingDelivery(t, pool, hook, "retrying", 1, 0, past(time.Hour), true)   // its own run
	waitingDelivery(t, pool, hook, "succeeded", 1, 0, past(time.Hour), false) // done
	waitingDelivery(t, pool, other, "retrying", 1, 0, past(time.Hour), false) // another target

	r, err := store.DueRetries(ctx, &hook, nil, 2)
	require.NoError(t, err)
	require.True(t, r.Exists)
	require.True(t, r.Enabled)
	require.Equal(t, []schemas.DueDelivery{{ID: first, Attempt: 4, Try: 4}, {ID: second, Attempt: 5, Try: 3}}, r.Due,
		"the earliest due first, at most the limit")
	require.Equal(t, 4, r.Waiting)
	require.WithinDuration(t, *past(time.Second), *r.NextAt, time.Millisecond, "the next is due already")

	r, err = store.DueRetries(ctx, &hook, nil, 10)
	require.NoError(t, err)
	require.Len(t, r.Due, 3)
	require.Equal(t, schemas.DueDelivery{ID: third, Attempt: 1, Try: 1}, r.Due[2])
	require.WithinDuration(t, later, *r.NextAt, time.Millisecond)

	// Throttled: deferred, so no longer due.
	require.NoError(t, store.DeferDeliveries(ctx, []uuid.UUID{first, second, third},
		[]time.Time{now.Add(time.Minute), now.Add(time.Minute), now.Add(2 * time.Minute)}))
	r, err = store.DueRetries(ctx, &hook, nil, 10)
	require.NoError(t, err)
	require.Empty(t, r.Due)
	require.WithinDuration(t, now.Add(time.Minute), *r.NextAt, time.Millisecond)

	_, err = pool.Exec(ctx, `UPDATE webhooks SET enabled = false WHERE id = $1`, hook)
	require.NoError(t, err)
	r, err = store.DueRetries(ctx, &hook, nil, 10)
	require.NoError(t, err)
	require.True(t, r.Exists)
	require.False(t, r.Enabled)

	gone := uuid.New()
	r, err = store.DueRetries(ctx, nil, &gone, 10)
	require.NoError(t, err)
	require.False(t, r.Exists)
	require.Empty(t, r.Due)
	require.Nil(t, r.NextAt)
	_, err = store.DueRetries(ctx, nil, nil, 10)
	require.Error(t, err)
}

func TestPrepareRedelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook := dwWebhook(t, pool, true, "session.created")
	at := time.Now().Add(time.Hour)

	check := func(id uuid.UUID, state string, ownRun bool, base int) {
		t.Helper()
		var s string
		var o bool
		var b int
		var next *time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT state, own_run, retry_base, next_attempt_at FROM deliveries
			WHERE id = $1`, id).Scan(&s, &o, &b, &next))
		require.Equal(t, state, s)
		require.Equal(t, ownRun, o)
		require.Equal(t, base, b)
		if state == schemas.DeliveryRetrying && !ownRun {
			require.WithinDuration(t, time.Now(), *next, 5*time.Second, "due at once")
		}
	}
	for _, state := range []string{"failed", "succeeded", "cancelled"} {
		for _, own := range []bool{false, true} { // a finished one with its own run joins the loop
			id := waitingDelivery(t, pool, hook, state, 7, 0, nil, own)
			r, err := store.PrepareRedelivery(ctx, id)
			require.NoError(t, err)
			require.Equal(t, schemas.Redelivery{WebhookID: &hook}, r)
			check(id, schemas.DeliveryRetrying, false, 7)
		}
	}

	waiting := waitingDelivery(t, pool, hook, "retrying", 2, 0, &at, true)
	r, err := store.PrepareRedelivery(ctx, waiting)
	require.NoError(t, err)
	require.True(t, r.OwnRun, "signalled in its own run")
	check(waiting, schemas.DeliveryRetrying, true, 0)

	loop := waitingDelivery(t, pool, hook, "retrying", 2, 0, &at, false)
	_, err = store.PrepareRedelivery(ctx, loop)
	require.NoError(t, err)
	check(loop, schemas.DeliveryRetrying, false, 2)

	test := uuid.Must(uuid.NewV7())
	require.NoError(t, store.InsertTestDelivery(ctx, test, &hook, nil))
	r, err = store.PrepareRedelivery(ctx, test)
	require.NoError(t, err)
	require.True(t, r.OwnRun, "a test send is redelivered in its own run")

	_, err = store.PrepareRedelivery(ctx, uuid.New())
	require.ErrorIs(t, err, schemas.ErrNotFound)
}
