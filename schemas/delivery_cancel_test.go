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

// cancelFixture gives a webhook one delivery in each state, and a test
// send waiting; it answers the webhook and the deliveries by state. The
// retrying one has a run of its own (an earlier version's), the pending one
// waits for the webhook's retry loop.
func cancelFixture(t *testing.T, pool *pgxpool.Pool) (uuid.UUID, map[string]uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	hook := dwWebhook(t, pool, true, "session.created")
	byState := map[string]uuid.UUID{}
	for _, state := range []string{"pending", "retrying", "succeeded", "failed", "test"} {
		id := uuid.Must(uuid.NewV7())
		test := state == "test"
		st := state
		var event *uuid.UUID
		if test {
			st = "pending"
		} else {
			e := uuid.Must(uuid.NewV7())
			event = &e
		}
		_, err := pool.Exec(ctx, `INSERT INTO deliveries (id, event_id, event_type, webhook_id, test, state, own_run)
			VALUES ($1, $2, 'session.created', $3, $4, $5, $6)`, id, event, hook, test, st, state == "retrying")
		require.NoError(t, err)
		byState[state] = id
	}
	return hook, byState
}

func deliveryState(t *testing.T, store *schemas.Store, id uuid.UUID) schemas.Delivery {
	t.Helper()
	d, _, err := store.ReadDelivery(context.Background(), id)
	require.NoError(t, err)
	return d
}

func TestCancelWebhookDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook, d := cancelFixture(t, pool)
	other, _ := cancelFixture(t, pool)

	var got schemas.Cancelled
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		got, err = schemas.CancelWebhookDeliveries(ctx, tx, hook, "webhook disabled")
		return err
	}))
	require.Equal(t, schemas.Cancelled{Count: 2, Runs: []uuid.UUID{d["retrying"]}}, got,
		"only the waiting real deliveries; runs only for the one with its own")
	for _, s := range []string{"pending", "retrying"} {
		c := deliveryState(t, store, d[s])
		require.Equal(t, schemas.DeliveryCancelled, c.State)
		require.Equal(t, "webhook disabled", c.LastError)
		require.Nil(t, c.NextAttemptAt)
		require.NotNil(t, c.CompletedAt)
	}
	require.Equal(t, schemas.DeliverySucceeded, deliveryState(t, store, d["succeeded"]).State)
	require.Equal(t, schemas.DeliveryPending, deliveryState(t, store, d["test"]).State, "a test send is not cancelled")

	// An attempt in flight when the delivery was cancelled is recorded, but
	// the delivery stays cancelled.
	_, err := store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{{DeliveryID: d["retrying"], Attempt: 1,
		StartedAt: time.Now(), Outcome: schemas.DeliveryRetrying, NextAttemptAt: new(time.Now().Add(time.Hour)),
		RequestHeaders: map[string]string{}, ResponseHeaders: map[string]string{}}})
	require.NoError(t, err)
	c, attempts, err := store.ReadDelivery(ctx, d["retrying"])
	require.NoError(t, err)
	require.Len(t, attempts, 1)
	require.Equal(t, schemas.DeliveryCancelled, c.State)

	// Deleting a webhook answers what was still waiting, and leaves others alone.
	waiting, err := store.DeleteWebhook(ctx, other)
	require.NoError(t, err)
	require.Equal(t, 2, waiting.Count)
	require.Len(t, waiting.Runs, 1)
	waiting, err = store.DeleteWebhook(ctx, hook)
	require.NoError(t, err)
	require.Equal(t, schemas.Cancelled{Runs: []uuid.UUID{}}, waiting, "its waiting deliveries were cancelled already")
}

func TestDisablingATargetCancelsItsDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook, d := cancelFixture(t, pool)
	got, ok, err := store.DisableDeliveryTarget(ctx, &hook, nil, "receiver answered 410 Gone", 0)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, schemas.Cancelled{Count: 2, Runs: []uuid.UUID{d["retrying"]}}, got.Cancelled)
	require.Equal(t, "webhook disabled", deliveryState(t, store, d["retrying"]).LastError)
}
