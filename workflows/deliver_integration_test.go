package workflows

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// The delivery workflows with the real activities, a real PostgreSQL and
// httptest receivers, in simulated time: the retry schedule as a receiver
// sees it.

type liveHub struct {
	t      *testing.T
	store  *schemas.Store
	box    *secretbox.Box
	acts   *activities.Deliveries
	mu     sync.Mutex
	notice []notify.Event
}

func newLiveHub(t *testing.T) *liveHub {
	key := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	require.NoError(t, err)
	h := &liveHub{t: t, store: &schemas.Store{Pool: testenv.DB(t)}, box: box}
	sender := notify.SenderFunc(func(_ context.Context, _ json.RawMessage, ev notify.Event) (notify.Result, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notice = append(h.notice, ev)
		return notify.Result{Status: 200}, nil
	})
	h.acts = &activities.Deliveries{Store: h.store, Secrets: box,
		HTTP: safehttp.NewClient(safehttp.Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Timeout: 2 * time.Second}),
		Senders: map[string]notify.Sender{schemas.IntegrationSlack: sender}}
	return h
}

func (h *liveHub) env() *testsuite.TestWorkflowEnvironment {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.RegisterActivity(h.acts)
	env.RegisterActivity(&activities.Events{Store: h.store})
	env.RegisterWorkflow(DeliverWithRetry)
	return env
}

func (h *liveHub) webhook(url string, maxAttempts int, backoff ...int) uuid.UUID {
	t := h.t
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	sealed, err := h.box.SealString("whsec_" + base64.StdEncoding.EncodeToString(b))
	require.NoError(t, err)
	if backoff == nil {
		backoff = []int{}
	}
	id := uuid.Must(uuid.NewV7())
	_, err = h.store.Pool.Exec(context.Background(), `INSERT INTO webhooks (id, name, url, events, secret_enc,
			max_attempts, backoff_seconds, rate_limit_per_second)
		VALUES ($1, 'receiver', $2, '{session.created}', $3, $4, $5, 1000)`, id, url, sealed, maxAttempts, backoff)
	require.NoError(t, err)
	return id
}

// event publishes a session.created event and plans it: its delivery to hook.
func (h *liveHub) event(hook uuid.UUID) (eventID uuid.UUID, deliveryID string) {
	t := h.t
	ctx := context.Background()
	require.NoError(t, h.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		eventID, err = schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated,
			Data: schemas.SessionEventData{SessionID: "s-1", User: "alice"}})
		return err
	}))
	plan, err := h.store.PlanDeliveries(ctx, eventID)
	require.NoError(t, err)
	for _, p := range plan {
		if p.WebhookID != nil && *p.WebhookID == hook {
			return eventID, p.ID.String()
		}
	}
	t.Fatalf("no delivery to %s", hook)
	return
}

type liveReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	ids  []string
	code []func(http.ResponseWriter)
}

func newLiveReceiver(t *testing.T, replies ...func(http.ResponseWriter)) *liveReceiver {
	rv := &liveReceiver{code: replies}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rv.mu.Lock()
		n := len(rv.ids)
		rv.ids = append(rv.ids, r.Header.Get("webhook-id"))
		reply := func(w http.ResponseWriter) { w.WriteHeader(200) }
		if len(rv.code) > 0 {
			reply = rv.code[min(n, len(rv.code)-1)]
		}
		rv.mu.Unlock()
		reply(w)
	}))
	t.Cleanup(rv.Close)
	return rv
}

func (rv *liveReceiver) webhookIDs() []string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]string(nil), rv.ids...)
}

func answer(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func requireNear(t *testing.T, want, got time.Duration, jitter float64) {
	t.Helper()
	require.InDelta(t, want.Seconds(), got.Seconds(), want.Seconds()*jitter+0.001, "want %v ±%.0f%%, got %v",
		want, jitter*100, got)
}

func TestDeliveryRetryScheduleLive(t *testing.T) {
	t.Parallel()
	h := newLiveHub(t)
	ctx := context.Background()
	first := func(d string) DeliverInput { return DeliverInput{DeliveryID: d, NextAttempt: 1, Try: 1} }

	t.Run("ServerErrorsThenSuccessOnAttemptThree", func(t *testing.T) {
		rv := newLiveReceiver(t, answer(500), answer(502), answer(200))
		hook := h.webhook(rv.URL, 8, 10) // exponential from 10 s
		_, d := h.event(hook)
		env := h.env()
		waits := timers(env)
		env.ExecuteWorkflow(DeliverWithRetry, first(d))
		require.NoError(t, env.GetWorkflowError())
		var res DeliverResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, DeliverResult{DeliveryID: d, Outcome: "succeeded", LastAttempt: 3}, res)
		require.Len(t, *waits, 2)
		requireNear(t, 10*time.Second, (*waits)[0], 0.1)
		requireNear(t, 20*time.Second, (*waits)[1], 0.1)
		require.Equal(t, []string{d, d, d}, rv.webhookIDs(), "every attempt with the same webhook-id")

		got, attempts, err := h.store.ReadDelivery(ctx, uuid.MustParse(d))
		require.NoError(t, err)
		require.Equal(t, schemas.DeliverySucceeded, got.State)
		require.Equal(t, 3, got.Attempts)
		require.Len(t, attempts, 3)
		for i, want := range []string{"retrying", "retrying", "succeeded"} {
			require.Equal(t, want, attempts[i].Outcome)
			require.Equal(t, i+1, attempts[i].Attempt)
		}
		require.Equal(t, 500, *attempts[0].ResponseStatus)
		require.Equal(t, 502, *attempts[1].ResponseStatus)
		// The recorded next attempt times are the waits the workflow took.
		requireNear(t, (*waits)[0], attempts[0].NextAttemptAt.Sub(attempts[0].StartedAt), 0.05)
		requireNear(t, (*waits)[1], attempts[1].NextAttemptAt.Sub(attempts[1].StartedAt), 0.05)
	})
	t.Run("MaxAttemptsExhaustToFailed", func(t *testing.T) {
		rv := newLiveReceiver(t, answer(503))
		hook := h.webhook(rv.URL, 3, 60, 600)
		_, d := h.event(hook)
		env := h.env()
		waits := timers(env)
		env.ExecuteWorkflow(DeliverWithRetry, first(d))
		var res DeliverResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, "failed", res.Outcome)
		require.Len(t, rv.webhookIDs(), 3)
		require.Len(t, *waits, 2)
		requireNear(t, time.Minute, (*waits)[0], 0.1)
		requireNear(t, 10*time.Minute, (*waits)[1], 0.1)
		got, _, err := h.store.ReadDelivery(ctx, uuid.MustParse(d))
		require.NoError(t, err)
		require.Equal(t, schemas.DeliveryFailed, got.State)
		require.Contains(t, got.LastError, "gave up after 3 attempts")
	})
	t.Run("RetryAfterHonoured", func(t *testing.T) {
		rv := newLiveReceiver(t, answer(503, "Retry-After", "7200"), answer(429, "Retry-After", "90"), answer(200))
		hook := h.webhook(rv.URL, 8, 10)
		_, d := h.event(hook)
		env := h.env()
		waits := timers(env)
		env.ExecuteWorkflow(DeliverWithRetry, first(d))
		require.NoError(t, env.GetWorkflowError())
		require.Equal(t, []time.Duration{2 * time.Hour, 90 * time.Second}, *waits)
		require.Len(t, rv.webhookIDs(), 3)
	})
	t.Run("GoneDisablesAndNotifies", func(t *testing.T) {
		var chat uuid.UUID = uuid.Must(uuid.NewV7())
		cfg, err := h.box.Seal([]byte(`{"webhook_url":"https://hooks.example/x"}`))
		require.NoError(t, err)
		_, err = h.store.Pool.Exec(ctx, `INSERT INTO integrations (id, type, name, config_enc, events)
			VALUES ($1, 'slack', 'admins', $2, '{backup.failed}')`, chat, cfg)
		require.NoError(t, err)
		rv := newLiveReceiver(t, answer(500), answer(410))
		hook := h.webhook(rv.URL, 8, 1)
		_, d := h.event(hook)
		env := h.env()
		env.ExecuteWorkflow(DeliverWithRetry, first(d))
		var res DeliverResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, "failed", res.Outcome)
		require.Len(t, rv.webhookIDs(), 2, "no attempt after 410")
		var enabled bool
		var reason string
		require.NoError(t, h.store.Pool.QueryRow(ctx, `SELECT enabled, disabled_reason FROM webhooks WHERE id = $1`,
			hook).Scan(&enabled, &reason))
		require.False(t, enabled)
		require.Equal(t, "disabled automatically: receiver answered 410 Gone", reason)
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.notice, 1, "the admins' integration got a notice")
		require.Equal(t, "notice", h.notice[0].Type)
		require.Contains(t, string(h.notice[0].Data), hook.String())
	})
	t.Run("RedirectRefused", func(t *testing.T) {
		elsewhere := newLiveReceiver(t)
		rv := newLiveReceiver(t, answer(302, "Location", elsewhere.URL), answer(200))
		hook := h.webhook(rv.URL, 8, 30)
		_, d := h.event(hook)
		env := h.env()
		env.ExecuteWorkflow(DeliverWithRetry, first(d))
		require.NoError(t, env.GetWorkflowError())
		require.Len(t, rv.webhookIDs(), 2)
		require.Empty(t, elsewhere.webhookIDs(), "the redirect was not followed")
		_, attempts, err := h.store.ReadDelivery(ctx, uuid.MustParse(d))
		require.NoError(t, err)
		require.Equal(t, 302, *attempts[0].ResponseStatus)
		require.Equal(t, "retrying", attempts[0].Outcome)
		require.Contains(t, attempts[0].Error, "redirects are not followed")
		require.Equal(t, "succeeded", attempts[1].Outcome)
	})
	t.Run("DispatchEventDeliversAndHandsOverRetries", func(t *testing.T) {
		_, err := h.store.Pool.Exec(ctx, `UPDATE webhooks SET enabled = false`) // the other subtests'
		require.NoError(t, err)
		good := newLiveReceiver(t)
		bad := newLiveReceiver(t, answer(500))
		goodHook := h.webhook(good.URL, 8)
		badHook := h.webhook(bad.URL, 8, 45)
		ev, goodDelivery := h.event(goodHook)
		env := h.env()
		env.OnWorkflow(DeliverWithRetry, mock.Anything, mock.Anything).Return(DeliverResult{}, nil)
		children := recordChildren(env)
		env.ExecuteWorkflow(DispatchEvent, DispatchEventInput{EventID: ev.String(), Type: "session.created"})
		require.NoError(t, env.GetWorkflowError())
		require.Equal(t, []string{goodDelivery}, good.webhookIDs())
		require.Len(t, bad.webhookIDs(), 1)
		got := children()
		require.Len(t, got, 1)
		require.Equal(t, "delivery/"+bad.webhookIDs()[0], got[0].ID)
		require.Equal(t, badHook.String(), got[0].Input.WebhookID)
		require.Equal(t, 2, got[0].Input.NextAttempt)
		requireNear(t, 45*time.Second, got[0].Input.Wait, 0.1)
		e, err := h.store.GetEvent(ctx, ev)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchCompleted, e.DispatchState)
	})
}
