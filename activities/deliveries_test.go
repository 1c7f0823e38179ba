package activities_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// hub is a delivery engine over a fresh database, reaching loopback
// receivers, with integration senders the test records.
type hub struct {
	t     *testing.T
	store *schemas.Store
	box   *secretbox.Box
	acts  *activities.Deliveries

	mu    sync.Mutex
	sent  []sentNotification
	reply func(config json.RawMessage, ev notify.Event) (notify.Result, error)
}

type sentNotification struct {
	Config json.RawMessage
	Event  notify.Event
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func newHub(t *testing.T) *hub {
	t.Helper()
	key := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	require.NoError(t, err)
	h := &hub{t: t, store: &schemas.Store{Pool: testenv.DB(t)}, box: box}
	sender := notify.SenderFunc(func(_ context.Context, config json.RawMessage, ev notify.Event) (notify.Result, error) {
		h.mu.Lock()
		h.sent = append(h.sent, sentNotification{Config: config, Event: ev})
		reply := h.reply
		h.mu.Unlock()
		if reply != nil {
			return reply(config, ev)
		}
		return notify.Result{Status: 200, RequestURL: "https://chat.example", RequestBody: `{"text":"hi"}`,
			ResponseBody: "ok"}, nil
	})
	h.acts = &activities.Deliveries{
		Store:   h.store,
		Secrets: box,
		HTTP:    safehttp.NewClient(safehttp.Options{AllowedCIDRs: loopback, Timeout: 2 * time.Second}),
		Senders: map[string]notify.Sender{schemas.IntegrationSlack: sender, schemas.IntegrationEmail: sender},
		// Short, so throttling tests do not take long.
		RateWaitBudget: 3 * time.Second,
	}
	return h
}

// variant is another engine over the same database, to change one
// dependency.
func (h *hub) variant() *activities.Deliveries {
	a := h.acts
	return &activities.Deliveries{Store: a.Store, Secrets: a.Secrets, HTTP: a.HTTP, Senders: a.Senders,
		RateWaitBudget: a.RateWaitBudget, DisableAfter: a.DisableAfter}
}

func (h *hub) notifications() []sentNotification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]sentNotification(nil), h.sent...)
}

// newSecret is a Standard Webhooks secret: whsec_ + base64 of 24 random bytes.
func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

type webhookOpts struct {
	url        string
	secret     string
	previous   string // with a grace period of an hour
	headers    map[string]string
	events     []string
	enabled    *bool
	maxAttempt int
	backoff    []int
	rate       int
}

func (h *hub) webhook(o webhookOpts) uuid.UUID {
	t := h.t
	t.Helper()
	if o.secret == "" {
		o.secret = newSecret()
	}
	if len(o.events) == 0 {
		o.events = []string{"session.created"}
	}
	if o.maxAttempt == 0 {
		o.maxAttempt = schemas.DefaultMaxAttempts
	}
	if o.rate == 0 {
		o.rate = 1000
	}
	enabled := o.enabled == nil || *o.enabled
	secretEnc, err := h.box.SealString(o.secret)
	require.NoError(t, err)
	var prevEnc, headersEnc []byte
	var prevExp *time.Time
	if o.previous != "" {
		prevEnc, err = h.box.SealString(o.previous)
		require.NoError(t, err)
		exp := time.Now().Add(time.Hour)
		prevExp = &exp
	}
	if o.headers != nil {
		raw, _ := json.Marshal(o.headers)
		headersEnc, err = h.box.Seal(raw)
		require.NoError(t, err)
	}
	if o.backoff == nil {
		o.backoff = []int{}
	}
	id := uuid.Must(uuid.NewV7())
	_, err = h.store.Pool.Exec(context.Background(), `INSERT INTO webhooks (id, name, url, events, enabled, secret_enc,
			previous_secret_enc, previous_secret_expires_at, headers_enc, max_attempts, backoff_seconds, rate_limit_per_second)
		VALUES ($1, 'test hook', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, o.url, o.events, enabled, secretEnc, prevEnc, prevExp, headersEnc, o.maxAttempt, o.backoff, o.rate)
	require.NoError(t, err)
	return id
}

func (h *hub) integration(typ string, config string, enabled bool, events ...string) uuid.UUID {
	t := h.t
	t.Helper()
	if len(events) == 0 {
		events = []string{"session.created"}
	}
	enc, err := h.box.Seal([]byte(config))
	require.NoError(t, err)
	id := uuid.Must(uuid.NewV7())
	_, err = h.store.Pool.Exec(context.Background(), `INSERT INTO integrations (id, type, name, config_enc, events, enabled)
		VALUES ($1, $2, 'ops chat', $3, $4, $5)`, id, typ, enc, events, enabled)
	require.NoError(t, err)
	return id
}

// event publishes a session.created event and plans its deliveries.
func (h *hub) event() (uuid.UUID, []activities.PlannedDelivery) {
	t := h.t
	t.Helper()
	ctx := context.Background()
	var id uuid.UUID
	require.NoError(t, h.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated,
			Data: schemas.SessionEventData{SessionID: "sess-1", User: "alice", Template: "firefox", State: "pending"}})
		return err
	}))
	plan, err := h.acts.PlanDeliveries(ctx, activities.PlanDeliveriesInput{EventID: id.String()})
	require.NoError(t, err)
	return id, plan.Deliveries
}

// deliveryTo plans an event and answers its delivery to the webhook.
func (h *hub) deliveryTo(webhookID uuid.UUID) string {
	h.t.Helper()
	_, plan := h.event()
	for _, p := range plan {
		if p.WebhookID == webhookID.String() {
			return p.DeliveryID
		}
	}
	h.t.Fatalf("no delivery to webhook %s in %+v", webhookID, plan)
	return ""
}

func (h *hub) attempt(deliveryID string, attempt, try int) activities.AttemptResult {
	h.t.Helper()
	res, err := h.acts.AttemptDelivery(context.Background(), activities.AttemptInput{DeliveryID: deliveryID,
		Attempt: attempt, Try: try, Record: true})
	require.NoError(h.t, err)
	return res
}

func (h *hub) delivery(id string) (schemas.Delivery, []schemas.DeliveryAttempt) {
	h.t.Helper()
	d, attempts, err := h.store.ReadDelivery(context.Background(), uuid.MustParse(id))
	require.NoError(h.t, err)
	return d, attempts
}

func (h *hub) webhookRow(id uuid.UUID) (enabled bool, reason string, failingSince *time.Time) {
	h.t.Helper()
	require.NoError(h.t, h.store.Pool.QueryRow(context.Background(),
		`SELECT enabled, disabled_reason, failing_since FROM webhooks WHERE id = $1`, id).
		Scan(&enabled, &reason, &failingSince))
	return
}

// receiver is an httptest server that records every request and answers
// with the next of its replies (the last one repeats).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	replies  []func(w http.ResponseWriter)
}

type received struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

func newReceiver(t *testing.T, replies ...func(w http.ResponseWriter)) *receiver {
	rv := &receiver{replies: replies}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		n := len(rv.requests)
		rv.requests = append(rv.requests, received{Header: r.Header.Clone(), Body: body, At: time.Now()})
		var reply func(http.ResponseWriter)
		if len(rv.replies) > 0 {
			reply = rv.replies[min(n, len(rv.replies)-1)]
		}
		rv.mu.Unlock()
		if reply == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		reply(w)
	}))
	t.Cleanup(rv.Close)
	return rv
}

func (rv *receiver) got() []received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]received(nil), rv.requests...)
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

func TestAttemptIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	rv := newReceiver(t, status(500))
	hook := h.webhook(webhookOpts{url: rv.URL, backoff: []int{30}})
	d := h.deliveryTo(hook)

	first := h.attempt(d, 1, 1)
	require.Equal(t, activities.OutcomeRetrying, first.Outcome)
	again := h.attempt(d, 1, 1)
	require.Len(t, rv.got(), 1, "a recorded attempt is not sent again")
	require.Equal(t, activities.OutcomeRetrying, again.Outcome)
	require.Equal(t, 500, again.Status)
	require.InDelta(t, first.Delay.Seconds(), again.Delay.Seconds(), 2, "the recorded next attempt time")
	_, attempts := h.delivery(d)
	require.Len(t, attempts, 1)

	// A delivery whose webhook was deleted is gone.
	_, err := h.store.Pool.Exec(context.Background(), `DELETE FROM webhooks WHERE id = $1`, hook)
	require.NoError(t, err)
	require.Equal(t, activities.OutcomeGone, h.attempt(d, 2, 2).Outcome)
}

func TestAttemptDisabledTarget(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	rv := newReceiver(t)
	hook := h.webhook(webhookOpts{url: rv.URL})
	d := h.deliveryTo(hook)
	_, err := h.store.Pool.Exec(context.Background(), `UPDATE webhooks SET enabled = false WHERE id = $1`, hook)
	require.NoError(t, err)

	res := h.attempt(d, 1, 1)
	require.Equal(t, activities.OutcomeFailed, res.Outcome)
	require.Equal(t, "webhook disabled", res.Error)
	require.Empty(t, rv.got(), "no request to a disabled webhook")
	got, attempts := h.delivery(d)
	require.Equal(t, schemas.DeliveryFailed, got.State)
	require.Equal(t, "webhook disabled", got.LastError)
	require.Empty(t, attempts)

	// A test send still goes out: it is how an admin checks the receiver.
	test := uuid.Must(uuid.NewV7()).String()
	require.NoError(t, h.acts.CreateTestDelivery(context.Background(),
		activities.TestDeliveryInput{DeliveryID: test, WebhookID: hook.String()}))
	res = h.attempt(test, 1, 1)
	require.Equal(t, activities.OutcomeSucceeded, res.Outcome)
	require.NotNil(t, res.Record)
	require.Len(t, rv.got(), 1)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rv.got()[0].Body, &body))
	require.Equal(t, "test", body["event"])
	require.Equal(t, map[string]any{"message": "This is a test event from StreamSpace"}, body["data"])
}

func TestCreateTestDeliveryUnknownTarget(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	err := h.acts.CreateTestDelivery(context.Background(), activities.TestDeliveryInput{
		DeliveryID: uuid.NewString(), WebhookID: uuid.NewString()})
	var appErr interface{ Type() string }
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, "NotFound", appErr.Type())
}

func TestAttemptIntegration(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	chat := h.integration(schemas.IntegrationSlack, `{"webhook_url":"https://hooks.slack.example/T/B/secret-token"}`, true)
	ev, plan := h.event()
	require.Len(t, plan, 1)
	require.Equal(t, chat.String(), plan[0].IntegrationID)
	d := plan[0].DeliveryID

	res := h.attempt(d, 1, 1)
	require.Equal(t, activities.OutcomeSucceeded, res.Outcome, res.Error)
	sent := h.notifications()
	require.Len(t, sent, 1)
	require.JSONEq(t, `{"webhook_url":"https://hooks.slack.example/T/B/secret-token"}`, string(sent[0].Config))
	require.Equal(t, d, sent[0].Event.DeliveryID)
	require.Equal(t, ev.String(), sent[0].Event.ID)
	require.Equal(t, "session.created", sent[0].Event.Type)
	require.Contains(t, string(sent[0].Event.Data), `"alice"`)
	got, attempts := h.delivery(d)
	require.Equal(t, schemas.DeliverySucceeded, got.State)
	require.Len(t, attempts, 1)
	require.Equal(t, "https://chat.example", attempts[0].RequestURL)
	require.Equal(t, "ok", attempts[0].ResponseBody)
	require.Equal(t, 200, *attempts[0].ResponseStatus)

	// A provider's 429 with Retry-After: retried no sooner.
	h.reply = func(json.RawMessage, notify.Event) (notify.Result, error) {
		return notify.Result{Status: 429, RetryAfter: 90 * time.Second, RequestURL: "https://chat.example"},
			errors.New("slack answered 429 Too Many Requests")
	}
	_, plan = h.event()
	res = h.attempt(plan[0].DeliveryID, 1, 1)
	require.Equal(t, activities.OutcomeRetrying, res.Outcome)
	require.GreaterOrEqual(t, res.Delay, 90*time.Second)
	require.Equal(t, 429, res.Status)

	// A permanent failure (bad config): failed at once.
	h.reply = func(json.RawMessage, notify.Event) (notify.Result, error) {
		return notify.Result{Status: 404, Permanent: true}, errors.New("channel_not_found")
	}
	_, plan = h.event()
	res = h.attempt(plan[0].DeliveryID, 1, 1)
	require.Equal(t, activities.OutcomeFailed, res.Outcome)
	require.Equal(t, "channel_not_found", res.Error)

	// A type without a sender fails permanently.
	h.integration(schemas.IntegrationPagerDuty, `{}`, true, "user.created")
	var uev uuid.UUID
	require.NoError(t, h.store.InTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		uev, err = schemas.Publish(context.Background(), tx, schemas.Event{Type: schemas.EventUserCreated,
			Data: schemas.UserEventData{}})
		return err
	}))
	p, err := h.acts.PlanDeliveries(context.Background(), activities.PlanDeliveriesInput{EventID: uev.String()})
	require.NoError(t, err)
	require.Len(t, p.Deliveries, 1)
	res = h.attempt(p.Deliveries[0].DeliveryID, 1, 1)
	require.Equal(t, activities.OutcomeFailed, res.Outcome)
	require.Contains(t, res.Error, "no sender")
}

func TestRateLimitWaits(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	rv := newReceiver(t)
	hook := h.webhook(webhookOpts{url: rv.URL, rate: 2})
	var items []activities.AttemptInput
	for range 5 {
		items = append(items, activities.AttemptInput{DeliveryID: h.deliveryTo(hook), Attempt: 1, Try: 1})
	}
	start := time.Now()
	res, err := h.acts.AttemptDeliveries(context.Background(), activities.AttemptsInput{Attempts: items})
	require.NoError(t, err)
	elapsed := time.Since(start)
	var ok, throttled int
	for _, r := range res {
		switch r.Outcome {
		case activities.OutcomeSucceeded:
			ok++
		case activities.OutcomeThrottled:
			throttled++
			require.GreaterOrEqual(t, r.Delay, time.Second)
		default:
			t.Fatalf("unexpected outcome %+v", r)
		}
	}
	require.Equal(t, 5, ok+throttled)
	require.Equal(t, ok, len(rv.got()), "a throttled delivery makes no request")
	// 2 per second, counted in sliding windows (the previous second's count
	// weighted by its overlap): whatever the start's place in its window,
	// the fifth goes out at least 1.25 s after the first.
	require.GreaterOrEqual(t, ok, 4, "within the 3 s budget at 2/s")
	require.Greater(t, elapsed, time.Second, "the limit made them wait")
	got := rv.got()
	first, last := got[0].At, got[len(got)-1].At
	require.Greater(t, last.Sub(first), time.Second)
	// A throttled delivery has no attempt recorded.
	for i, r := range res {
		d, attempts := h.delivery(items[i].DeliveryID)
		if r.Outcome == activities.OutcomeThrottled {
			require.Empty(t, attempts)
			require.Equal(t, schemas.DeliveryPending, d.State)
		}
	}
}

func TestNotifyAdmins(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	a := h.integration(schemas.IntegrationSlack, `{"n":1}`, true)
	h.integration(schemas.IntegrationEmail, `{"n":2}`, true, "backup.failed")
	h.integration(schemas.IntegrationSlack, `{"n":3}`, false)
	h.integration("teams", `{"n":4}`, true) // no sender in this test: counted as failed

	res, err := h.acts.NotifyAdmins(context.Background(), activities.Notice{Title: "Webhook \"x\" was disabled",
		Text: "because", Severity: notify.SeverityWarning, Key: "k", ExcludeIntegrationID: a.String()})
	require.NoError(t, err)
	require.Equal(t, activities.NoticeResult{Sent: 1, Failed: 1}, res)
	sent := h.notifications()
	require.Len(t, sent, 1)
	require.JSONEq(t, `{"n":2}`, string(sent[0].Config))
	require.Equal(t, notify.EventNotice, sent[0].Event.Type)
	require.Equal(t, "k", sent[0].Event.DeliveryID)
	require.JSONEq(t, `{"title":"Webhook \"x\" was disabled","text":"because","severity":"warning"}`,
		string(sent[0].Event.Data))
}

func TestAutoDisableAfterFailingForLong(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	h.acts.DisableAfter = time.Hour
	h.integration(schemas.IntegrationSlack, `{"admins":true}`, true, "backup.failed")
	rv := newReceiver(t, status(502))
	hook := h.webhook(webhookOpts{url: rv.URL, maxAttempt: 2, backoff: []int{1}})

	// Failing, but not for an hour yet: the delivery gives up, the webhook stays.
	d := h.deliveryTo(hook)
	require.Equal(t, activities.OutcomeRetrying, h.attempt(d, 1, 1).Outcome)
	res := h.attempt(d, 2, 2)
	require.Equal(t, activities.OutcomeFailed, res.Outcome)
	require.Contains(t, res.Error, "gave up after 2 attempts")
	require.Nil(t, res.Disabled)
	enabled, _, since := h.webhookRow(hook)
	require.True(t, enabled)
	require.NotNil(t, since)

	// Failing since yesterday: the next delivery that gives up disables it.
	_, err := h.store.Pool.Exec(context.Background(),
		`UPDATE webhooks SET failing_since = '2026-01-02T03:04:05Z' WHERE id = $1`, hook)
	require.NoError(t, err)
	d = h.deliveryTo(hook)
	h.attempt(d, 1, 1)
	res = h.attempt(d, 2, 2)
	require.Equal(t, activities.OutcomeFailed, res.Outcome)
	require.NotNil(t, res.Disabled)
	enabled, reason, _ := h.webhookRow(hook)
	require.False(t, enabled)
	require.Equal(t, "disabled automatically: every delivery failed for more than 1h0m0s; "+
		"failing since 2026-01-02T03:04:05Z", reason)
	require.Contains(t, res.Disabled.Title, "Webhook \"test hook\" was disabled")
	require.Contains(t, res.Disabled.Text, hook.String())
	require.Contains(t, res.Disabled.Text, "502")
	require.NotContains(t, res.Disabled.Text, rv.URL, "no URL in notices")

	n, err := h.acts.NotifyAdmins(context.Background(), *res.Disabled)
	require.NoError(t, err)
	require.Equal(t, 1, n.Sent)
	require.Equal(t, notify.EventNotice, h.notifications()[0].Event.Type)

	// A success ends the streak.
	rv2 := newReceiver(t)
	hook2 := h.webhook(webhookOpts{url: rv2.URL})
	_, err = h.store.Pool.Exec(context.Background(), `UPDATE webhooks SET failing_since = now() - interval '2 hours'
		WHERE id = $1`, hook2)
	require.NoError(t, err)
	require.Equal(t, activities.OutcomeSucceeded, h.attempt(h.deliveryTo(hook2), 1, 1).Outcome)
	_, _, since = h.webhookRow(hook2)
	require.Nil(t, since)
}

func TestBadInputsAreNotRetried(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	_, err := h.acts.AttemptDelivery(context.Background(), activities.AttemptInput{DeliveryID: "nope", Attempt: 1})
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "bad attempt"))
	_, err = h.acts.PlanDeliveries(context.Background(), activities.PlanDeliveriesInput{EventID: "nope"})
	require.Error(t, err)
	p, err := h.acts.DeliveryProgress(context.Background(), uuid.NewString())
	require.NoError(t, err)
	require.False(t, p.Found)
}
