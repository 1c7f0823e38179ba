package schemas_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func TestRetryDelay(t *testing.T) {
	id := uuid.MustParse("0190c1a2-0000-7000-8000-000000000001")
	within := func(t *testing.T, want, got time.Duration) {
		t.Helper()
		require.GreaterOrEqual(t, got, want*9/10, "at least -10%%")
		require.LessOrEqual(t, got, want*11/10, "at most +10%%")
	}
	t.Run("DefaultSchedule", func(t *testing.T) {
		for i, want := range schemas.DefaultRetrySchedule {
			within(t, want, schemas.RetryDelay(schemas.WebhookRetryPolicy{}, i+1, id, 0))
		}
		last := schemas.DefaultRetrySchedule[len(schemas.DefaultRetrySchedule)-1]
		within(t, last, schemas.RetryDelay(schemas.WebhookRetryPolicy{}, 20, id, 0))
	})
	t.Run("OneValueIsExponential", func(t *testing.T) {
		p := schemas.WebhookRetryPolicy{BackoffSeconds: []int{60}}
		for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
			within(t, want, schemas.RetryDelay(p, i+1, id, 0))
		}
		within(t, schemas.MaxRetryDelay, schemas.RetryDelay(p, 30, id, 0))
		within(t, schemas.MaxRetryDelay, schemas.RetryDelay(p, 1000, id, 0))
	})
	t.Run("ExplicitSchedule", func(t *testing.T) {
		p := schemas.WebhookRetryPolicy{BackoffSeconds: []int{1, 10, 100}}
		within(t, time.Second, schemas.RetryDelay(p, 1, id, 0))
		within(t, 10*time.Second, schemas.RetryDelay(p, 2, id, 0))
		within(t, 100*time.Second, schemas.RetryDelay(p, 3, id, 0))
		within(t, 100*time.Second, schemas.RetryDelay(p, 9, id, 0))
	})
	t.Run("JitterIsDeterministicAndSpread", func(t *testing.T) {
		p := schemas.WebhookRetryPolicy{BackoffSeconds: []int{100}}
		require.Equal(t, schemas.RetryDelay(p, 1, id, 0), schemas.RetryDelay(p, 1, id, 0))
		seen := map[time.Duration]bool{}
		var lo, hi int
		// Fixed ids: with random ones a count below falls short about once
		// in seven million runs.
		for i := range 200 {
			d := schemas.RetryDelay(p, 1, uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(i))), 0)
			seen[d] = true
			if d < 95*time.Second {
				lo++
			}
			if d > 105*time.Second {
				hi++
			}
		}
		require.Greater(t, len(seen), 150, "different deliveries wait different times")
		require.Greater(t, lo, 20)
		require.Greater(t, hi, 20)
	})
	t.Run("RetryAfterWinsWhenLonger", func(t *testing.T) {
		p := schemas.WebhookRetryPolicy{BackoffSeconds: []int{5}}
		require.Equal(t, time.Hour, schemas.RetryDelay(p, 1, id, time.Hour))
		within(t, 5*time.Second, schemas.RetryDelay(p, 1, id, time.Second))
		require.Equal(t, schemas.MaxRetryDelay, schemas.RetryDelay(p, 1, id, 100*time.Hour))
	})
	require.Equal(t, schemas.DefaultMaxAttempts, schemas.WebhookRetryPolicy{}.MaxAttemptsOrDefault())
	require.Equal(t, 3, schemas.WebhookRetryPolicy{MaxAttempts: 3}.MaxAttemptsOrDefault())
}

// dwWebhook inserts a webhook row directly (secrets are opaque bytes here).
func dwWebhook(t *testing.T, pool *pgxpool.Pool, enabled bool, events ...string) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := pool.Exec(context.Background(), `INSERT INTO webhooks (id, name, url, events, enabled, secret_enc)
		VALUES ($1, $2, 'https://receiver.example/hook', $3, $4, '\x00')`, id, "hook "+id.String()[:8], events, enabled)
	require.NoError(t, err)
	return id
}

func dwIntegration(t *testing.T, pool *pgxpool.Pool, enabled bool, events ...string) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := pool.Exec(context.Background(), `INSERT INTO integrations (id, type, name, config_enc, events, enabled)
		VALUES ($1, 'slack', $2, '\x00', $3, $4)`, id, "chat "+id.String()[:8], events, enabled)
	require.NoError(t, err)
	return id
}

func dwPublish(t *testing.T, store *schemas.Store, typ schemas.EventType, data any) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	var id uuid.UUID
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = schemas.Publish(ctx, tx, schemas.Event{Type: typ, Data: data})
		return err
	}))
	return id
}

func TestPlanDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}

	hook := dwWebhook(t, pool, true, "session.created", "quota.exceeded")
	dwWebhook(t, pool, false, "session.created") // disabled
	dwWebhook(t, pool, true, "user.created")     // not subscribed
	chat := dwIntegration(t, pool, true, "session.created")
	dwIntegration(t, pool, false, "session.created")

	ev := dwPublish(t, store, schemas.EventSessionCreated, schemas.SessionEventData{SessionID: "s1", User: "alice"})
	plan, err := store.PlanDeliveries(ctx, ev)
	require.NoError(t, err)
	require.Len(t, plan, 2)
	byTarget := map[uuid.UUID]schemas.PlannedDelivery{}
	for _, p := range plan {
		require.Equal(t, "session.created", p.EventType)
		require.Equal(t, schemas.DeliveryPending, p.State)
		require.Zero(t, p.Attempts)
		require.Equal(t, byte(7), p.ID[6]>>4, "delivery ids are UUIDv7")
		if p.WebhookID != nil {
			byTarget[*p.WebhookID] = p
		} else {
			byTarget[*p.IntegrationID] = p
		}
	}
	require.Contains(t, byTarget, hook)
	require.Contains(t, byTarget, chat)

	// Idempotent: the same deliveries again, nothing new.
	again, err := store.PlanDeliveries(ctx, ev)
	require.NoError(t, err)
	require.ElementsMatch(t, plan, again)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE event_id = $1`, ev).Scan(&n))
	require.Equal(t, 2, n)

	// A finished delivery is not planned again.
	d := byTarget[hook].ID
	status := 200
	ok, err := store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{{DeliveryID: d, Attempt: 1,
		StartedAt: time.Now(), ResponseStatus: &status, Outcome: schemas.DeliverySucceeded}})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, ok)
	again, err = store.PlanDeliveries(ctx, ev)
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, byTarget[chat].ID, again[0].ID)

	// Unknown event: nothing; an event nobody subscribed to: nothing.
	none, err := store.PlanDeliveries(ctx, uuid.New())
	require.NoError(t, err)
	require.Empty(t, none)
	other := dwPublish(t, store, schemas.EventBackupCompleted, schemas.BackupCompletedData{})
	none, err = store.PlanDeliveries(ctx, other)
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestRecordDeliveryAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook := dwWebhook(t, pool, true, "session.created")
	ev := dwPublish(t, store, schemas.EventSessionCreated, schemas.SessionEventData{SessionID: "s1"})
	plan, err := store.PlanDeliveries(ctx, ev)
	require.NoError(t, err)
	require.Len(t, plan, 1)
	d := plan[0].ID

	failingSince := func() *time.Time {
		var ts *time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT failing_since FROM webhooks WHERE id = $1`, hook).Scan(&ts))
		return ts
	}

	// A failed attempt: the delivery retries, the webhook's streak starts.
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	next := t0.Add(5 * time.Second)
	s503 := 503
	first := schemas.DeliveryAttempt{DeliveryID: d, Attempt: 1, StartedAt: t0, Latency: 12 * time.Millisecond,
		RequestURL: "https://receiver.example/hook", RequestHeaders: map[string]string{"Webhook-Id": d.String()},
		RequestBody: `{"id":"x"}`, ResponseStatus: &s503, ResponseHeaders: map[string]string{"Retry-After": "5"},
		ResponseBody: "busy", Error: "receiver answered 503 Service Unavailable", Outcome: schemas.DeliveryRetrying,
		NextAttemptAt: &next}
	ok, err := store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{first})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, ok)
	got, attempts, err := store.ReadDelivery(ctx, d)
	require.NoError(t, err)
	require.Equal(t, schemas.DeliveryRetrying, got.State)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, 503, *got.LastStatus)
	require.Equal(t, first.Error, got.LastError)
	require.WithinDuration(t, next, *got.NextAttemptAt, time.Millisecond)
	require.Nil(t, got.CompletedAt)
	require.Len(t, attempts, 1)
	require.Equal(t, first.RequestHeaders, attempts[0].RequestHeaders)
	require.Equal(t, first.ResponseHeaders, attempts[0].ResponseHeaders)
	require.Equal(t, "busy", attempts[0].ResponseBody)
	require.Equal(t, 12*time.Millisecond, attempts[0].Latency)
	since := failingSince()
	require.NotNil(t, since)
	require.WithinDuration(t, t0, *since, time.Millisecond)

	// The same attempt number again is not recorded (the first stands).
	dup := first
	dup.Outcome, dup.Error = schemas.DeliverySucceeded, ""
	ok, err = store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{dup})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, ok)
	got, _, err = store.ReadDelivery(ctx, d)
	require.NoError(t, err)
	require.Equal(t, schemas.DeliveryRetrying, got.State)

	// A second failure keeps the streak's start.
	second := first
	second.Attempt, second.StartedAt = 2, t0.Add(10*time.Second)
	_, err = store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{second})
	require.NoError(t, err)
	require.WithinDuration(t, t0, *failingSince(), time.Millisecond)

	// Success: finished, streak over.
	s200 := 200
	third := schemas.DeliveryAttempt{DeliveryID: d, Attempt: 3, StartedAt: time.Now(), ResponseStatus: &s200,
		Outcome: schemas.DeliverySucceeded}
	ok, err = store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{third})
	require.NoError(t, err)
	require.Equal(t, []bool{true}, ok)
	got, attempts, err = store.ReadDelivery(ctx, d)
	require.NoError(t, err)
	require.Equal(t, schemas.DeliverySucceeded, got.State)
	require.Equal(t, 3, got.Attempts)
	require.Nil(t, got.NextAttemptAt)
	require.NotNil(t, got.CompletedAt)
	require.Empty(t, got.LastError)
	require.Len(t, attempts, 3)
	require.Nil(t, failingSince())

	// Test deliveries leave the streak alone.
	test := uuid.Must(uuid.NewV7())
	require.NoError(t, store.InsertTestDelivery(ctx, test, &hook, nil))
	_, err = store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{{DeliveryID: test, Attempt: 1,
		StartedAt: time.Now(), Error: "connection refused", Outcome: schemas.DeliveryFailed}})
	require.NoError(t, err)
	require.Nil(t, failingSince())

	// A delivery that is gone is not recorded, and is no error.
	ok, err = store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{{DeliveryID: uuid.New(), Attempt: 1,
		StartedAt: time.Now(), Outcome: schemas.DeliveryFailed}})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, ok)
}

func TestLoadDeliveryJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook := dwWebhook(t, pool, true, "session.created")
	chat := dwIntegration(t, pool, true, "session.created")
	_, err := pool.Exec(ctx, `UPDATE webhooks SET backoff_seconds = '{7,70}', max_attempts = 4,
		rate_limit_per_second = 3, headers_enc = '\x01', previous_secret_enc = '\x02',
		previous_secret_expires_at = now() + interval '1 hour' WHERE id = $1`, hook)
	require.NoError(t, err)
	ev := dwPublish(t, store, schemas.EventSessionCreated, schemas.SessionEventData{SessionID: "s1", User: "bob"})
	plan, err := store.PlanDeliveries(ctx, ev)
	require.NoError(t, err)
	require.Len(t, plan, 2)
	var hookDelivery, chatDelivery uuid.UUID
	for _, p := range plan {
		if p.WebhookID != nil {
			hookDelivery = p.ID
		} else {
			chatDelivery = p.ID
		}
	}
	s500 := 500
	_, err = store.RecordDeliveryAttempts(ctx, []schemas.DeliveryAttempt{{DeliveryID: hookDelivery, Attempt: 1,
		StartedAt: time.Now(), ResponseStatus: &s500, Error: "boom", Outcome: schemas.DeliveryRetrying}})
	require.NoError(t, err)

	gone := uuid.New()
	jobs, err := store.LoadDeliveryJobs(ctx, []schemas.DeliveryJobRequest{
		{DeliveryID: hookDelivery, Attempt: 1}, {DeliveryID: chatDelivery, Attempt: 1}, {DeliveryID: gone, Attempt: 1}})
	require.NoError(t, err)
	require.Len(t, jobs, 2)

	hj := jobs[hookDelivery]
	require.NotNil(t, hj.Webhook)
	require.Nil(t, hj.Integration)
	require.Equal(t, hook, hj.Webhook.ID)
	require.Equal(t, "https://receiver.example/hook", hj.Webhook.URL)
	require.True(t, hj.Webhook.Enabled)
	require.Equal(t, []int{7, 70}, hj.Webhook.BackoffSeconds)
	require.Equal(t, 4, hj.Webhook.MaxAttempts)
	require.Equal(t, 3, hj.Webhook.RateLimitPerSecond)
	require.Equal(t, []byte{1}, hj.Webhook.HeadersEnc)
	require.Equal(t, []byte{2}, hj.Webhook.PreviousSecretEnc)
	require.NotNil(t, hj.Webhook.PreviousSecretExpiresAt)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(hj.EventPayload, &payload))
	require.Equal(t, "bob", payload["user"])
	require.NotNil(t, hj.Recorded, "attempt 1 was recorded")
	require.Equal(t, schemas.DeliveryRetrying, hj.Recorded.Outcome)
	require.Equal(t, 500, *hj.Recorded.ResponseStatus)

	cj := jobs[chatDelivery]
	require.Nil(t, cj.Webhook)
	require.NotNil(t, cj.Integration)
	require.Equal(t, chat, cj.Integration.ID)
	require.Equal(t, "slack", cj.Integration.Type)
	require.Nil(t, cj.Recorded)

	// Attempt 2 of the webhook delivery is not recorded yet.
	jobs, err = store.LoadDeliveryJobs(ctx, []schemas.DeliveryJobRequest{{DeliveryID: hookDelivery, Attempt: 2}})
	require.NoError(t, err)
	require.Nil(t, jobs[hookDelivery].Recorded)
}

func TestTestDeliveriesAndFailDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	hook := dwWebhook(t, pool, true, "session.created")

	id := uuid.Must(uuid.NewV7())
	require.NoError(t, store.InsertTestDelivery(ctx, id, &hook, nil))
	require.NoError(t, store.InsertTestDelivery(ctx, id, &hook, nil), "idempotent")
	missing := uuid.New()
	require.ErrorIs(t, store.InsertTestDelivery(ctx, uuid.New(), &missing, nil), schemas.ErrNotFound)
	require.ErrorIs(t, store.InsertTestDelivery(ctx, uuid.New(), nil, &missing), schemas.ErrNotFound)
	require.Error(t, store.InsertTestDelivery(ctx, uuid.New(), nil, nil))

	p, err := store.GetDeliveryProgress(ctx, id)
	require.NoError(t, err)
	require.True(t, p.Test)
	require.Equal(t, "test", p.EventType)
	require.Equal(t, hook, *p.WebhookID)
	require.Equal(t, schemas.DeliveryPending, p.State)
	_, err = store.GetDeliveryProgress(ctx, uuid.New())
	require.ErrorIs(t, err, schemas.ErrNotFound)

	found, err := store.FailDelivery(ctx, id, "webhook disabled")
	require.NoError(t, err)
	require.True(t, found)
	got, attempts, err := store.ReadDelivery(ctx, id)
	require.NoError(t, err)
	require.Equal(t, schemas.DeliveryFailed, got.State)
	require.Equal(t, "webhook disabled", got.LastError)
	require.NotNil(t, got.CompletedAt)
	require.Empty(t, attempts)
	found, err = store.FailDelivery(ctx, uuid.New(), "x")
	require.NoError(t, err)
	require.False(t, found)
}

func TestDisableDeliveryTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}

	t.Run("Gone", func(t *testing.T) {
		hook := dwWebhook(t, pool, true, "session.created")
		got, ok, err := store.DisableDeliveryTarget(ctx, &hook, nil, "receiver answered 410 Gone", 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "receiver answered 410 Gone", got.Reason)
		require.Equal(t, hook, *got.WebhookID)
		var enabled bool
		var reason string
		require.NoError(t, pool.QueryRow(ctx, `SELECT enabled, disabled_reason FROM webhooks WHERE id = $1`, hook).
			Scan(&enabled, &reason))
		require.False(t, enabled)
		require.Equal(t, "receiver answered 410 Gone", reason)
		_, ok, err = store.DisableDeliveryTarget(ctx, &hook, nil, "again", 0)
		require.NoError(t, err)
		require.False(t, ok, "already disabled")
	})
	t.Run("FailingLongEnough", func(t *testing.T) {
		chat := dwIntegration(t, pool, true, "session.created")
		_, ok, err := store.DisableDeliveryTarget(ctx, nil, &chat, "failing", time.Hour)
		require.NoError(t, err)
		require.False(t, ok, "not failing at all")
		_, err = pool.Exec(ctx, `UPDATE integrations SET failing_since = now() - interval '30 minutes' WHERE id = $1`, chat)
		require.NoError(t, err)
		_, ok, err = store.DisableDeliveryTarget(ctx, nil, &chat, "failing", time.Hour)
		require.NoError(t, err)
		require.False(t, ok, "not failing for long enough")
		_, err = pool.Exec(ctx, `UPDATE integrations SET failing_since = '2026-01-02T03:04:05Z' WHERE id = $1`, chat)
		require.NoError(t, err)
		got, ok, err := store.DisableDeliveryTarget(ctx, nil, &chat, "every delivery failed for 50% of forever", time.Hour)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "every delivery failed for 50% of forever; failing since 2026-01-02T03:04:05Z", got.Reason)
		require.Equal(t, "chat "+chat.String()[:8], got.Name)
	})

	// Notices go to every enabled integration but the excluded one.
	a := dwIntegration(t, pool, true, "session.created")
	b := dwIntegration(t, pool, true, "backup.failed")
	dwIntegration(t, pool, false, "session.created")
	list, err := store.NoticeRecipients(ctx, &a)
	require.NoError(t, err)
	var ids []uuid.UUID
	for _, in := range list {
		ids = append(ids, in.ID)
		require.Equal(t, "slack", in.Type)
		require.NotEmpty(t, in.ConfigEnc)
	}
	require.Contains(t, ids, b)
	require.NotContains(t, ids, a)
	all, err := store.NoticeRecipients(ctx, nil)
	require.NoError(t, err)
	require.Len(t, all, len(list)+1)
}

func TestTakeOutboundRates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	// In the future, so that no cleanup of expired windows interferes.
	now := time.Now().UTC().Truncate(time.Minute).Add(time.Hour + 500*time.Millisecond)
	reqs := []schemas.OutboundRate{{Key: "webhook:a", Limit: 3, Window: time.Second},
		{Key: "webhook:b", Limit: 1, Window: time.Second}, {Key: "integration:c", Limit: 2, Window: time.Minute}}
	counts := map[string]int{}
	for range 5 {
		got, err := store.TakeOutboundRates(ctx, reqs, now)
		require.NoError(t, err)
		for k := range got {
			counts[k]++
		}
	}
	require.Equal(t, map[string]int{"webhook:a": 3, "webhook:b": 1, "integration:c": 2}, counts)

	// The same counts as RateCounter.Take: it sees them and refuses.
	rc := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	take, err := rc.Take(ctx, "webhook:a", schemas.RateWindowAt(now, time.Second), 3)
	require.NoError(t, err)
	require.False(t, take.Allowed)
	require.Equal(t, 3, take.Curr)

	// The next window weighs the previous one: at its start (weight ~1) a
	// full previous window leaves no room; halfway through, half of it.
	got, err := store.TakeOutboundRates(ctx, reqs[:1], now.Add(500*time.Millisecond+time.Millisecond))
	require.NoError(t, err)
	require.Empty(t, got)
	n := 0
	for range 5 {
		got, err := store.TakeOutboundRates(ctx, reqs[:1], now.Add(time.Second))
		require.NoError(t, err)
		n += len(got)
	}
	require.Equal(t, 1, n, "3·0.5 = 1.5 used: one more fits under 2.5")

	// Concurrent batches with the keys in every order: exact, no deadlock.
	later := now.Add(time.Hour)
	var mu sync.Mutex
	admitted := map[string]int{}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			batch := []schemas.OutboundRate{
				{Key: "k1", Limit: 5, Window: time.Second}, {Key: "k2", Limit: 7, Window: time.Second},
				{Key: "k3", Limit: 2, Window: time.Second}}
			if i%2 == 1 {
				batch[0], batch[2] = batch[2], batch[0]
			}
			got, err := store.TakeOutboundRates(ctx, batch, later)
			require.NoError(t, err)
			mu.Lock()
			for k := range got {
				admitted[k]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, map[string]int{"k1": 5, "k2": 7, "k3": 2}, admitted)
}
