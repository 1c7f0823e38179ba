package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// insertWebhookDelivery writes a delivery of a webhook as the delivery
// engine does, created at the given time.
func insertWebhookDelivery(t testing.TB, b *apiBundle, webhookID uuid.UUID, eventType, state string, at time.Time) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	_, err := b.store.Pool.Exec(context.Background(), `INSERT INTO deliveries
		(id, event_id, event_type, webhook_id, state, attempts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 0, $6, $6)`, id, uuid.New(), eventType, webhookID, state, at)
	require.NoError(t, err)
	return id
}

func TestWebhookDeliveriesList(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	h := createWebhookViaAPI(b, webhookBody())
	other := createWebhookViaAPI(b, webhookBody())
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	states := []string{schemas.DeliverySucceeded, schemas.DeliveryRetrying, schemas.DeliveryFailed}
	var ids []uuid.UUID // oldest first
	for i := range 7 {
		typ := "session.created"
		if i >= 5 {
			typ = "quota.exceeded"
		}
		ids = append(ids, insertWebhookDelivery(t, b, h.ID, typ, states[i%3], base.Add(time.Duration(i)*time.Minute)))
	}
	otherDelivery := insertWebhookDelivery(t, b, other.ID, "session.created", schemas.DeliverySucceeded, base)

	list := func(query string) deliveryListResponse {
		t.Helper()
		var out deliveryListResponse
		b.callJSON("GET", "/api/webhooks/"+h.ID.String()+"/deliveries"+query, b.admin.Token, nil, 200, &out)
		return out
	}
	idsOf := func(r deliveryListResponse) []uuid.UUID {
		out := []uuid.UUID{}
		for _, d := range r.Deliveries {
			out = append(out, d.ID)
		}
		return out
	}

	// Newest first, in pages, every delivery of this webhook once.
	var seen []uuid.UUID
	page := list("?limit=3")
	require.Len(t, page.Deliveries, 3)
	seen = append(seen, idsOf(page)...)
	for page.NextCursor != nil {
		page = list("?limit=3&cursor=" + url.QueryEscape(*page.NextCursor))
		seen = append(seen, idsOf(page)...)
	}
	require.Equal(t, []uuid.UUID{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)

	// The shape of one listed delivery.
	d := list("?limit=1").Deliveries[0]
	require.Equal(t, ids[6], d.ID)
	require.Equal(t, h.ID, *d.WebhookID)
	require.NotNil(t, d.EventID)
	require.Equal(t, "quota.exceeded", d.EventType)
	require.Equal(t, schemas.DeliverySucceeded, d.State)
	require.False(t, d.Test)
	require.Equal(t, base.Add(6*time.Minute), d.CreatedAt)

	// Filters.
	require.Equal(t, []uuid.UUID{ids[5], ids[2]}, idsOf(list("?state=failed")))
	require.Equal(t, []uuid.UUID{ids[6], ids[5]}, idsOf(list("?event_type=quota.exceeded")))
	since := url.QueryEscape(base.Add(4 * time.Minute).Format(time.RFC3339))
	require.Equal(t, []uuid.UUID{ids[6], ids[5], ids[4]}, idsOf(list("?since="+since)))
	require.Equal(t, []uuid.UUID{ids[4]}, idsOf(list("?since="+since+"&event_type=session.created&state=retrying")))
	require.Empty(t, idsOf(list("?state=pending")))

	for _, q := range []string{"?state=done", "?event_type=Not%20A%20Type", "?since=yesterday", "?limit=201",
		"?cursor=nope", "?colour=red", "?state=failed&state=succeeded"} {
		resp, data := b.call("GET", "/api/webhooks/"+h.ID.String()+"/deliveries"+q, b.admin.Token, nil)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", q, data)
		require.Equal(t, "VALIDATION_ERROR", errorCode(t, data))
	}
	// A missing webhook is 404, not an empty list; another webhook's
	// delivery is not this one's.
	resp, data := b.call("GET", "/api/webhooks/"+uuid.NewString()+"/deliveries", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)
	resp, data = b.call("GET", "/api/webhooks/"+h.ID.String()+"/deliveries/"+otherDelivery.String(), b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)
	resp, data = b.call("GET", "/api/webhooks/"+h.ID.String()+"/deliveries/not-a-uuid", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)
}

func TestWebhookDeliveryDetail(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	h := createWebhookViaAPI(b, webhookBody())
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	id := insertWebhookDelivery(t, b, h.ID, "session.created", schemas.DeliverySucceeded, start)
	_, err := b.store.Pool.Exec(ctx, `UPDATE deliveries SET attempts = 2, last_status = 200, completed_at = $2 WHERE id = $1`,
		id, start.Add(6*time.Second))
	require.NoError(t, err)
	body := `{"id":"` + id.String() + `","event":"session.created","timestamp":"2026-01-01T00:00:00Z","data":{},"signature":"sha256=ab"}`
	_, err = b.store.Pool.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, request_url,
			request_headers, request_body, response_status, response_headers, response_body, error, outcome, next_attempt_at)
		VALUES ($1, 1, $2, 15000, 'https://alerts.example.com/webhook', $3, $4, 503, '{"Retry-After":"5"}', 'busy', '',
			'retrying', $5),
		       ($1, 2, $5, 42, 'https://alerts.example.com/webhook', $3, $4, 200, '{}', 'ok', '', 'succeeded', NULL)`,
		id, start, map[string]string{"Content-Type": "application/json", "webhook-id": id.String(),
			"webhook-signature": "v1,abc", "X-StreamSpace-Signature": "sha256=ab", "Authorization": "Bearer tok-123456"},
		body, start.Add(5*time.Second))
	require.NoError(t, err)

	resp, data := b.call("GET", "/api/webhooks/"+h.ID.String()+"/deliveries/"+id.String(), b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NotContains(t, string(data), "tok-123456", "extra header values are redacted")
	var got deliveryDetailJSON
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, id, got.ID)
	require.Equal(t, 2, got.AttemptCount)
	require.Equal(t, 200, *got.LastStatus)
	require.Equal(t, start.Add(6*time.Second), *got.CompletedAt)
	require.Len(t, got.Attempts, 2)
	first, second := got.Attempts[0], got.Attempts[1]
	require.Equal(t, 1, first.Attempt)
	require.Equal(t, start, first.StartedAt)
	require.Equal(t, int64(15000), first.LatencyMS)
	require.Equal(t, "https://alerts.example.com/webhook", first.Request.URL)
	require.Equal(t, body, first.Request.Body)
	require.Equal(t, map[string]string{"Content-Type": "application/json", "webhook-id": id.String(),
		"webhook-signature": "v1,abc", "X-StreamSpace-Signature": "sha256=ab", "Authorization": "[redacted]"}, first.Request.Headers)
	require.Equal(t, &attemptResponseJSON{Status: 503, Headers: map[string]string{"Retry-After": "5"}, Body: "busy"}, first.Response)
	require.Equal(t, schemas.DeliveryRetrying, first.Outcome)
	require.Equal(t, start.Add(5*time.Second), *first.NextAttemptAt)
	require.Equal(t, 2, second.Attempt)
	require.Equal(t, int64(42), second.LatencyMS)
	require.Equal(t, 200, second.Response.Status)
	require.Equal(t, schemas.DeliverySucceeded, second.Outcome)
	require.Nil(t, second.NextAttemptAt)

	// An attempt that got no answer has response null.
	id2 := insertWebhookDelivery(t, b, h.ID, "session.created", schemas.DeliveryRetrying, start)
	_, err = b.store.Pool.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, error, outcome)
		VALUES ($1, 1, $2, 'dial tcp: connection refused', 'retrying')`, id2, start)
	require.NoError(t, err)
	resp, data = b.call("GET", "/api/webhooks/"+h.ID.String()+"/deliveries/"+id2.String(), b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.Contains(t, string(data), `"response":null`)
	require.Contains(t, string(data), `"error":"dial tcp: connection refused"`)

	// Deleting the webhook deletes its deliveries.
	b.callJSON("DELETE", "/api/webhooks/"+h.ID.String(), b.admin.Token, nil, 204, nil)
	_, _, err = b.store.ReadDelivery(ctx, id)
	require.ErrorIs(t, err, schemas.ErrNotFound)
}

// Without Temporal, redeliver and test answer 503 once the webhook and the
// delivery are known to exist (404 before).
func TestWebhookDeliveryOpsWithoutTemporal(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	h := createWebhookViaAPI(b, webhookBody())
	other := createWebhookViaAPI(b, webhookBody())
	id := insertWebhookDelivery(t, b, h.ID, "session.created", schemas.DeliveryFailed, time.Now())
	hook := "/api/webhooks/" + h.ID.String()

	for _, c := range []struct {
		path string
		want int
	}{
		{hook + "/deliveries/" + id.String() + "/redeliver", 503},
		{hook + "/deliveries/" + uuid.NewString() + "/redeliver", 404},
		{"/api/webhooks/" + other.ID.String() + "/deliveries/" + id.String() + "/redeliver", 404},
		{"/api/webhooks/" + uuid.NewString() + "/deliveries/" + id.String() + "/redeliver", 404},
		{hook + "/test", 503},
		{"/api/webhooks/" + uuid.NewString() + "/test", 404},
	} {
		resp, data := b.call("POST", c.path, b.admin.Token, nil)
		require.Equal(t, c.want, resp.StatusCode, "%s: %s", c.path, data)
		if c.want == 503 {
			require.Contains(t, string(data), "Temporal")
		}
	}
	resp, data := b.call("POST", hook+"/test", b.admin.Token, map[string]any{"unexpected": true})
	require.Equal(t, 400, resp.StatusCode, "%s", data)
}

// hookReceiver is a local webhook receiver that answers with status and
// keeps every request.
type hookReceiver struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []receivedHook
}

type receivedHook struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.status.Store(200)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, receivedHook{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		w.WriteHeader(int(rc.status.Load()))
		_, _ = io.WriteString(w, "receiver says "+strconv.Itoa(int(rc.status.Load())))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) requests() []receivedHook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// newWebhookEngineAPI is newWebhookAPI with a workflow client on a task
// queue of its own (on the Temporal dev server) and a worker running the
// delivery workflows and activities on it.
func newWebhookEngineAPI(t *testing.T) (*apiBundle, *secretbox.Box) {
	t.Helper()
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	wf := &workflows.Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: "webhook-test-" + uuid.NewString()}
	searchAttrsOnce.Do(func() { require.NoError(t, wf.EnsureSearchAttributes(context.Background())) })
	b, box := newWebhookAPI(t, wf)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	deliveries := &activities.Deliveries{Store: b.store, Secrets: box, HTTP: safehttp.NewClient(webhookTestOutbound), Logger: logger}
	wg.Go(func() {
		_ = worker.Run(ctx, tc, wf.TaskQueue, worker.Deps{Store: b.store, Deliveries: deliveries}, worker.Options{}, logger)
	})
	return b, box
}

// verifyHook checks a received request's three signatures with key, as the
// README tells receivers to, and returns the body's id.
func verifyHook(t *testing.T, h receivedHook, key []byte) string {
	t.Helper()
	mac := func(parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	// X-StreamSpace-Signature: hex HMAC of the raw body.
	require.Equal(t, "sha256="+hex.EncodeToString(mac(h.body)), h.header.Get("X-StreamSpace-Signature"))
	// webhook-signature: v1,base64 HMAC of id.timestamp.body (Standard Webhooks).
	id, ts := h.header.Get("webhook-id"), h.header.Get("webhook-timestamp")
	want := "v1," + base64.StdEncoding.EncodeToString(mac([]byte(id+"."+ts+"."), h.body))
	require.Contains(t, strings.Fields(h.header.Get("webhook-signature")), want)
	// The body's signature: the HMAC of the body with the field's value "".
	var payload struct {
		ID        string `json:"id"`
		Signature string `json:"signature"`
	}
	require.NoError(t, json.Unmarshal(h.body, &payload))
	blanked := bytes.Replace(h.body, []byte(`"signature":"`+payload.Signature+`"`), []byte(`"signature":""`), 1)
	require.Equal(t, "sha256="+hex.EncodeToString(mac(blanked)), payload.Signature)
	require.Equal(t, id, payload.ID)
	return id
}

func TestWebhookSendTestAndRedeliver(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookEngineAPI(t)
	rc := newHookReceiver(t)
	h := createWebhookViaAPI(b, webhookBody(func(m map[string]any) {
		m["url"] = rc.srv.URL + "/hook"
		m["headers"] = map[string]string{"Authorization": "Bearer receiver-token"}
	}))
	key := webhookSecretKey(t, h.Secret)
	hook := "/api/webhooks/" + h.ID.String()

	// A test send that succeeds.
	var res testResultJSON
	b.callJSON("POST", hook+"/test", b.admin.Token, nil, 200, &res)
	require.Equal(t, schemas.DeliverySucceeded, res.Outcome, "%+v", res)
	require.Equal(t, 200, *res.Status)
	require.Equal(t, "receiver says 200", res.Response)
	require.Empty(t, res.Error)
	got := rc.requests()
	require.Len(t, got, 1)
	require.Equal(t, res.DeliveryID.String(), verifyHook(t, got[0], key))
	require.Equal(t, "Bearer receiver-token", got[0].header.Get("Authorization"))

	// It is in the log as a test delivery, its extra header redacted.
	var list deliveryListResponse
	b.callJSON("GET", hook+"/deliveries", b.admin.Token, nil, 200, &list)
	require.Len(t, list.Deliveries, 1)
	require.Equal(t, res.DeliveryID, list.Deliveries[0].ID)
	require.True(t, list.Deliveries[0].Test)
	require.Equal(t, schemas.DeliverySucceeded, list.Deliveries[0].State)
	var detail deliveryDetailJSON
	b.callJSON("GET", hook+"/deliveries/"+res.DeliveryID.String(), b.admin.Token, nil, 200, &detail)
	require.Len(t, detail.Attempts, 1)
	require.Equal(t, "[redacted]", detail.Attempts[0].Request.Headers["Authorization"])
	require.Equal(t, string(got[0].body), detail.Attempts[0].Request.Body)

	// A failing receiver: still 200, outcome failed, and the webhook is
	// sent to even while disabled.
	rc.status.Store(500)
	b.callJSON("PATCH", hook, b.admin.Token, map[string]any{"enabled": false}, 200, nil)
	var failed testResultJSON
	b.callJSON("POST", hook+"/test", b.admin.Token, map[string]any{}, 200, &failed)
	require.Equal(t, schemas.DeliveryFailed, failed.Outcome)
	require.Equal(t, 500, *failed.Status)
	require.Equal(t, "receiver says 500", failed.Response)
	require.Len(t, rc.requests(), 2)

	// Redeliver the failed one once the receiver is back: the same
	// webhook-id, a second attempt, succeeded.
	rc.status.Store(200)
	b.callJSON("PATCH", hook, b.admin.Token, map[string]any{"enabled": true}, 200, nil)
	var accepted deliveryJSON
	b.callJSON("POST", hook+"/deliveries/"+failed.DeliveryID.String()+"/redeliver", b.admin.Token, nil, 202, &accepted)
	require.Equal(t, failed.DeliveryID, accepted.ID)
	require.Eventually(t, func() bool {
		detail = deliveryDetailJSON{}
		b.callJSON("GET", hook+"/deliveries/"+failed.DeliveryID.String(), b.admin.Token, nil, 200, &detail)
		return detail.State == schemas.DeliverySucceeded
	}, 30*time.Second, 50*time.Millisecond, "redelivery never succeeded: %+v", detail)
	require.Len(t, detail.Attempts, 2)
	require.Equal(t, schemas.DeliveryFailed, detail.Attempts[0].Outcome)
	require.Equal(t, schemas.DeliverySucceeded, detail.Attempts[1].Outcome)
	got = rc.requests()
	require.Len(t, got, 3)
	require.Equal(t, failed.DeliveryID.String(), verifyHook(t, got[2], key))

	// A pending delivery is still being attempted: 409.
	pending := insertWebhookDelivery(t, b, h.ID, "session.created", schemas.DeliveryPending, time.Now())
	resp, data := b.call("POST", hook+"/deliveries/"+pending.String()+"/redeliver", b.admin.Token, nil)
	require.Equal(t, 409, resp.StatusCode, "%s", data)
}

// During a rotation's grace period both secrets sign; after a rotation
// with grace_period 0 only the new one does.
func TestWebhookRotationSigning(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookEngineAPI(t)
	rc := newHookReceiver(t)
	h := createWebhookViaAPI(b, webhookBody(func(m map[string]any) { m["url"] = rc.srv.URL }))
	hook := "/api/webhooks/" + h.ID.String()
	oldKey := webhookSecretKey(t, h.Secret)

	var rotated rotateSecretJSON
	b.callJSON("POST", hook+"/rotate-secret", b.admin.Token, map[string]any{"grace_period": "1h"}, 200, &rotated)
	newKey := webhookSecretKey(t, rotated.Secret)
	b.callJSON("POST", hook+"/test", b.admin.Token, nil, 200, nil)
	got := rc.requests()
	require.Len(t, got, 1)
	verifyHook(t, got[0], newKey) // the body and X-StreamSpace-Signature: the new secret
	id, ts := got[0].header.Get("webhook-id"), got[0].header.Get("webhook-timestamp")
	sigs := strings.Fields(got[0].header.Get("webhook-signature"))
	require.Len(t, sigs, 2)
	m := hmac.New(sha256.New, oldKey)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(got[0].body)
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)), sigs[1], "the old secret signs second")

	b.callJSON("POST", hook+"/rotate-secret", b.admin.Token, map[string]any{"grace_period": "0s"}, 200, &rotated)
	b.callJSON("POST", hook+"/test", b.admin.Token, nil, 200, nil)
	got = rc.requests()
	require.Len(t, got, 2)
	verifyHook(t, got[1], webhookSecretKey(t, rotated.Secret))
	require.Len(t, strings.Fields(got[1].header.Get("webhook-signature")), 1)
}
