package schemas_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// insertDelivery writes a delivery row of a webhook as the engine would,
// created at the given time.
func insertDelivery(t *testing.T, store *schemas.Store, webhookID uuid.UUID, eventType, state string, at time.Time) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := store.Pool.Exec(context.Background(), `INSERT INTO deliveries
		(id, event_id, event_type, webhook_id, state, attempts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 1, $6, $6)`, id, uuid.New(), eventType, webhookID, state, at)
	require.NoError(t, err)
	return id
}

func TestListDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	hook := schemas.Webhook{Name: "h", URL: "https://x.example/", Events: []string{"session.created"}, SecretEnc: []byte{1}}
	insertWebhook(t, store, &hook)
	other := schemas.Webhook{Name: "o", URL: "https://y.example/", Events: []string{"session.created"}, SecretEnc: []byte{1}}
	insertWebhook(t, store, &other)

	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	states := []string{schemas.DeliverySucceeded, schemas.DeliveryFailed, schemas.DeliveryRetrying, schemas.DeliveryPending}
	var ids []uuid.UUID // oldest first
	for i := range 10 {
		typ := "session.created"
		if i%3 == 0 {
			typ = "user.created"
		}
		ids = append(ids, insertDelivery(t, store, hook.ID, typ, states[i%4], base.Add(time.Duration(i)*time.Minute)))
	}
	// Two at the same instant: the id orders them.
	same1 := insertDelivery(t, store, hook.ID, "session.created", schemas.DeliverySucceeded, base.Add(20*time.Minute))
	same2 := insertDelivery(t, store, hook.ID, "session.created", schemas.DeliverySucceeded, base.Add(20*time.Minute))
	insertDelivery(t, store, other.ID, "session.created", schemas.DeliverySucceeded, base)

	newestFirst := []uuid.UUID{same2, same1}
	for i := len(ids) - 1; i >= 0; i-- {
		newestFirst = append(newestFirst, ids[i])
	}

	// Pages of 4 walk every delivery of the webhook once, newest first.
	var seen []uuid.UUID
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		page, next, err := store.ListDeliveries(ctx, schemas.DeliveryFilter{WebhookID: &hook.ID, Limit: 4, Cursor: cursor})
		require.NoError(t, err)
		for _, d := range page {
			require.Equal(t, hook.ID, *d.WebhookID)
			seen = append(seen, d.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, newestFirst, seen)

	// Filters, alone and together.
	list, next, err := store.ListDeliveries(ctx, schemas.DeliveryFilter{WebhookID: &hook.ID, State: schemas.DeliveryFailed})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, []uuid.UUID{ids[9], ids[5], ids[1]}, deliveryIDs(list))
	list, _, err = store.ListDeliveries(ctx, schemas.DeliveryFilter{WebhookID: &hook.ID, EventType: "user.created"})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{ids[9], ids[6], ids[3], ids[0]}, deliveryIDs(list))
	list, _, err = store.ListDeliveries(ctx, schemas.DeliveryFilter{WebhookID: &hook.ID, Since: base.Add(8 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{same2, same1, ids[9], ids[8]}, deliveryIDs(list))
	list, _, err = store.ListDeliveries(ctx, schemas.DeliveryFilter{WebhookID: &hook.ID, EventType: "user.created",
		State: schemas.DeliverySucceeded, Since: base.Add(time.Minute)})
	require.NoError(t, err)
	require.Empty(t, list)

	_, _, err = store.ListDeliveries(ctx, schemas.DeliveryFilter{WebhookID: &hook.ID, Cursor: "garbage!"})
	require.ErrorIs(t, err, schemas.ErrInvalidCursor)
	_, _, err = store.ListDeliveries(ctx, schemas.DeliveryFilter{})
	require.Error(t, err)
}

func deliveryIDs(list []schemas.Delivery) []uuid.UUID {
	out := make([]uuid.UUID, len(list))
	for i, d := range list {
		out[i] = d.ID
	}
	return out
}

func TestReadDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	hook := schemas.Webhook{Name: "h", URL: "https://x.example/", Events: []string{"session.created"}, SecretEnc: []byte{1}}
	insertWebhook(t, store, &hook)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	id := insertDelivery(t, store, hook.ID, "session.created", schemas.DeliverySucceeded, start)
	_, err := store.Pool.Exec(ctx, `UPDATE deliveries SET attempts = 2, last_status = 200, completed_at = $2 WHERE id = $1`,
		id, start.Add(time.Minute))
	require.NoError(t, err)

	d, attempts, err := store.ReadDelivery(ctx, id)
	require.NoError(t, err)
	require.Empty(t, attempts)
	require.Equal(t, 2, d.Attempts)
	require.Equal(t, 200, *d.LastStatus)

	next := start.Add(5 * time.Second)
	_, err = store.Pool.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, request_url,
			request_headers, request_body, response_status, response_headers, response_body, error, outcome, next_attempt_at)
		VALUES ($1, 2, $2, 12, 'https://x.example/', '{"webhook-id":"x"}', '{"event":"session.created"}', 200,
			'{"Content-Type":"text/plain"}', 'ok', '', 'succeeded', NULL),
		       ($1, 1, $3, 15000, 'https://x.example/', '{"webhook-id":"x"}', '{"event":"session.created"}', NULL,
			'{}', '', 'timeout after 15s', 'retrying', $4)`, id, start.Add(10*time.Second), start, next)
	require.NoError(t, err)

	d, attempts, err = store.ReadDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, id, d.ID)
	require.Equal(t, "session.created", d.EventType)
	require.NotNil(t, d.EventID)
	require.Equal(t, start.Add(time.Minute), d.CompletedAt.UTC())
	require.Len(t, attempts, 2)
	first, second := attempts[0], attempts[1]
	require.Equal(t, 1, first.Attempt)
	require.Equal(t, 15*time.Second, first.Latency)
	require.Nil(t, first.ResponseStatus)
	require.Equal(t, "timeout after 15s", first.Error)
	require.Equal(t, schemas.DeliveryRetrying, first.Outcome)
	require.True(t, next.Equal(*first.NextAttemptAt))
	require.Equal(t, 2, second.Attempt)
	require.Equal(t, 200, *second.ResponseStatus)
	require.Equal(t, map[string]string{"Content-Type": "text/plain"}, second.ResponseHeaders)
	require.Equal(t, map[string]string{"webhook-id": "x"}, second.RequestHeaders)
	require.Equal(t, "ok", second.ResponseBody)
	require.Equal(t, `{"event":"session.created"}`, second.RequestBody)
	require.Nil(t, second.NextAttemptAt)

	_, _, err = store.ReadDelivery(ctx, uuid.New())
	require.ErrorIs(t, err, schemas.ErrNotFound)
}
