package activities_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// fromSpecKey is the HMAC key of a whsec_ secret, written from the Standard
// Webhooks spec rather than taken from the code under test.
func fromSpecKey(t *testing.T, secret string) []byte {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	return key
}

func hmacHex(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

var signatureField = regexp.MustCompile(`"signature":"(sha256=[0-9a-f]{64})"}$`)

// TestWebhookSigning checks one delivered request the way a receiver would:
// the Standard Webhooks headers with the official Go library, and
// X-StreamSpace-Signature and the body's signature field with an HMAC
// written here from their documentation.
func TestWebhookSigning(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	rv := newReceiver(t)
	secret := newSecret()
	hook := h.webhook(webhookOpts{url: rv.URL, secret: secret,
		headers: map[string]string{"Authorization": "Bearer receiver-token-123", "X-Team": "ops"}})
	eventID, plan := h.event()
	require.Len(t, plan, 1)
	d := plan[0].DeliveryID
	ev, err := h.store.GetEvent(context.Background(), eventID)
	require.NoError(t, err)

	before := time.Now().Unix()
	res := h.attempt(d, 1, 1)
	require.Equal(t, activities.OutcomeSucceeded, res.Outcome, res.Error)
	require.Equal(t, 200, res.Status)
	got := rv.got()
	require.Len(t, got, 1)
	req := got[0]

	// Standard Webhooks, verified by the official library.
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	require.NoError(t, wh.Verify(req.Body, req.Header))
	require.Equal(t, d, req.Header.Get("webhook-id"))
	ts, err := strconv.ParseInt(req.Header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, before, ts, 5)
	require.Len(t, strings.Fields(req.Header.Get("webhook-signature")), 1, "one secret, one signature")
	other, err := standardwebhooks.NewWebhook(newSecret())
	require.NoError(t, err)
	require.Error(t, other.Verify(req.Body, req.Header), "another secret does not verify")
	tampered := bytes.Replace(req.Body, []byte(`"alice"`), []byte(`"mallory"`), 1)
	require.Error(t, wh.Verify(tampered, req.Header))

	// X-StreamSpace-Signature: hex HMAC-SHA256 of the raw body.
	key := fromSpecKey(t, secret)
	require.Equal(t, "sha256="+hmacHex(key, req.Body), req.Header.Get("X-StreamSpace-Signature"))

	// The body's signature field: HMAC of the body with the value emptied.
	m := signatureField.FindSubmatch(req.Body)
	require.NotNil(t, m, "body ends with the signature: %s", req.Body)
	unsigned := signatureField.ReplaceAll(req.Body, []byte(`"signature":""}`))
	require.Equal(t, "sha256="+hmacHex(key, unsigned), string(m[1]))

	// The seed's payload plus the delivery id.
	var body struct {
		ID        string          `json:"id"`
		Event     string          `json:"event"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
		Signature string          `json:"signature"`
	}
	require.NoError(t, json.Unmarshal(req.Body, &body))
	require.Equal(t, d, body.ID)
	require.Equal(t, "session.created", body.Event)
	require.True(t, ev.OccurredAt.Equal(body.Timestamp), "%v vs %v", ev.OccurredAt, body.Timestamp)
	require.JSONEq(t, string(ev.Payload), string(body.Data))
	require.Equal(t, string(m[1]), body.Signature)

	// The other headers.
	require.Equal(t, "application/json", req.Header.Get("Content-Type"))
	require.Equal(t, "session.created", req.Header.Get("X-StreamSpace-Event"))
	require.Equal(t, "StreamSpace-Webhooks", req.Header.Get("User-Agent"))
	require.Equal(t, "Bearer receiver-token-123", req.Header.Get("Authorization"))
	require.Equal(t, "ops", req.Header.Get("X-Team"))

	// The log: every header as sent, signatures included, but neither the
	// secret nor the webhook's own header values.
	_, attempts := h.delivery(d)
	require.Len(t, attempts, 1)
	a := attempts[0]
	require.Equal(t, rv.URL, a.RequestURL)
	require.Equal(t, string(req.Body), a.RequestBody)
	require.Equal(t, req.Header.Get("webhook-signature"), a.RequestHeaders["Webhook-Signature"])
	require.Equal(t, req.Header.Get("X-StreamSpace-Signature"), a.RequestHeaders["X-Streamspace-Signature"])
	require.Equal(t, d, a.RequestHeaders["Webhook-Id"])
	require.Equal(t, "[redacted]", a.RequestHeaders["Authorization"])
	require.Equal(t, "[redacted]", a.RequestHeaders["X-Team"])
	row, err := json.Marshal(a)
	require.NoError(t, err)
	require.NotContains(t, string(row), strings.TrimPrefix(secret, "whsec_"))
	require.NotContains(t, string(row), "receiver-token-123")
	require.Equal(t, 200, *a.ResponseStatus)
	require.Equal(t, "succeeded", a.Outcome)
	require.NotNil(t, res.Record)
	require.Equal(t, a.RequestHeaders, res.Record.RequestHeaders)
	_ = hook
}

// TestWebhookSecretRotation: during the grace period both secrets sign.
func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	rv := newReceiver(t)
	current, previous := newSecret(), newSecret()
	hook := h.webhook(webhookOpts{url: rv.URL, secret: current, previous: previous})
	require.Equal(t, activities.OutcomeSucceeded, h.attempt(h.deliveryTo(hook), 1, 1).Outcome)
	req := rv.got()[0]
	require.Len(t, strings.Fields(req.Header.Get("webhook-signature")), 2)
	for _, s := range []string{current, previous} {
		wh, err := standardwebhooks.NewWebhook(s)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(req.Body, req.Header), "a receiver with either secret verifies")
	}
	// X-StreamSpace-Signature and the body field use the current secret.
	require.Equal(t, "sha256="+hmacHex(fromSpecKey(t, current), req.Body), req.Header.Get("X-StreamSpace-Signature"))

	// After the grace period only the current secret signs.
	_, err := h.store.Pool.Exec(context.Background(),
		`UPDATE webhooks SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, hook)
	require.NoError(t, err)
	require.Equal(t, activities.OutcomeSucceeded, h.attempt(h.deliveryTo(hook), 1, 1).Outcome)
	req = rv.got()[1]
	require.Len(t, strings.Fields(req.Header.Get("webhook-signature")), 1)
	old, err := standardwebhooks.NewWebhook(previous)
	require.NoError(t, err)
	require.Error(t, old.Verify(req.Body, req.Header))
}

func TestWebhookOutcomes(t *testing.T) {
	t.Parallel()
	h := newHub(t)

	t.Run("ServerErrorRetriesOnSchedule", func(t *testing.T) {
		rv := newReceiver(t, status(500))
		hook := h.webhook(webhookOpts{url: rv.URL, backoff: []int{10, 100}})
		d := h.deliveryTo(hook)
		res := h.attempt(d, 1, 1)
		require.Equal(t, activities.OutcomeRetrying, res.Outcome)
		require.InDelta(t, 10, res.Delay.Seconds(), 1.01)
		require.Equal(t, 500, res.Status)
		res = h.attempt(d, 2, 2)
		require.InDelta(t, 100, res.Delay.Seconds(), 10.01)
		got, attempts := h.delivery(d)
		require.Equal(t, schemas.DeliveryRetrying, got.State)
		require.Equal(t, 2, got.Attempts)
		require.Len(t, attempts, 2)
		require.Equal(t, "receiver answered 500 Internal Server Error", attempts[1].Error)
		require.Equal(t, "Internal Server Error", attempts[1].ResponseBody)
		require.NotNil(t, attempts[1].NextAttemptAt)
		require.WithinDuration(t, time.Now().Add(res.Delay), *attempts[1].NextAttemptAt, 2*time.Second)
	})
	t.Run("MaxAttemptsExhaust", func(t *testing.T) {
		rv := newReceiver(t, status(503))
		hook := h.webhook(webhookOpts{url: rv.URL, maxAttempt: 3, backoff: []int{1}})
		d := h.deliveryTo(hook)
		for try := 1; try <= 2; try++ {
			require.Equal(t, activities.OutcomeRetrying, h.attempt(d, try, try).Outcome)
		}
		res := h.attempt(d, 3, 3)
		require.Equal(t, activities.OutcomeFailed, res.Outcome)
		require.Contains(t, res.Error, "gave up after 3 attempts")
		got, _ := h.delivery(d)
		require.Equal(t, schemas.DeliveryFailed, got.State)
		require.NotNil(t, got.CompletedAt)
		require.Nil(t, got.NextAttemptAt)
	})
	t.Run("RetryAfterSeconds", func(t *testing.T) {
		rv := newReceiver(t, status(503, "Retry-After", "120"))
		res := h.attempt(h.deliveryTo(h.webhook(webhookOpts{url: rv.URL, backoff: []int{1}})), 1, 1)
		require.Equal(t, activities.OutcomeRetrying, res.Outcome)
		require.Equal(t, 120*time.Second, res.Delay)
	})
	t.Run("RetryAfterDate", func(t *testing.T) {
		at := time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat)
		rv := newReceiver(t, status(429, "Retry-After", at))
		res := h.attempt(h.deliveryTo(h.webhook(webhookOpts{url: rv.URL, backoff: []int{1}})), 1, 1)
		require.Equal(t, 429, res.Status)
		require.InDelta(t, 600, res.Delay.Seconds(), 2)
	})
	t.Run("RetryAfterShorterThanBackoff", func(t *testing.T) {
		rv := newReceiver(t, status(429, "Retry-After", "1"))
		res := h.attempt(h.deliveryTo(h.webhook(webhookOpts{url: rv.URL, backoff: []int{300}})), 1, 1)
		require.InDelta(t, 300, res.Delay.Seconds(), 30.01, "the longer of the two")
	})
	t.Run("GoneDisables", func(t *testing.T) {
		rv := newReceiver(t, status(410))
		hook := h.webhook(webhookOpts{url: rv.URL})
		d := h.deliveryTo(hook)
		res := h.attempt(d, 1, 1)
		require.Equal(t, activities.OutcomeFailed, res.Outcome)
		require.Equal(t, "receiver answered 410 Gone", res.Error)
		require.NotNil(t, res.Disabled, "admins are told")
		require.Contains(t, res.Disabled.Text, "410 Gone")
		enabled, reason, _ := h.webhookRow(hook)
		require.False(t, enabled)
		require.Equal(t, "disabled automatically: receiver answered 410 Gone", reason)
		// The next event's delivery is not even planned.
		_, plan := h.event()
		for _, p := range plan {
			require.NotEqual(t, hook.String(), p.WebhookID)
		}
	})
	t.Run("RedirectIsAFailureNotFollowed", func(t *testing.T) {
		var followed atomic.Int32
		target := newReceiver(t, func(w http.ResponseWriter) { followed.Add(1); w.WriteHeader(200) })
		rv := newReceiver(t, status(302, "Location", target.URL+"/moved"))
		d := h.deliveryTo(h.webhook(webhookOpts{url: rv.URL, backoff: []int{60}}))
		res := h.attempt(d, 1, 1)
		require.Equal(t, activities.OutcomeRetrying, res.Outcome)
		require.Equal(t, 302, res.Status)
		require.Contains(t, res.Error, "redirects are not followed")
		require.Zero(t, followed.Load(), "the Location was not requested")
		require.Empty(t, target.got())
		_, attempts := h.delivery(d)
		require.Equal(t, target.URL+"/moved", attempts[0].ResponseHeaders["Location"])
	})
	t.Run("ClientErrorIsRetried", func(t *testing.T) {
		rv := newReceiver(t, status(400), status(200))
		d := h.deliveryTo(h.webhook(webhookOpts{url: rv.URL}))
		require.Equal(t, activities.OutcomeRetrying, h.attempt(d, 1, 1).Outcome)
		require.Equal(t, activities.OutcomeSucceeded, h.attempt(d, 2, 2).Outcome)
		got, _ := h.delivery(d)
		require.Equal(t, schemas.DeliverySucceeded, got.State)
		require.Equal(t, 2, got.Attempts)
	})
	t.Run("PrivateAddressRefused", func(t *testing.T) {
		strict := h.variant()
		strict.HTTP = safehttp.NewClient(safehttp.Options{AllowHTTP: true}) // loopback not allowed
		rv := newReceiver(t)
		d := h.deliveryTo(h.webhook(webhookOpts{url: rv.URL}))
		res, err := strict.AttemptDelivery(context.Background(), activities.AttemptInput{DeliveryID: d, Attempt: 1, Try: 1})
		require.NoError(t, err)
		require.Equal(t, activities.OutcomeFailed, res.Outcome, "refused destinations are not retried")
		require.Contains(t, res.Error, "loopback")
		require.Empty(t, rv.got())
	})
	t.Run("Timeout", func(t *testing.T) {
		slow := h.variant()
		slow.HTTP = safehttp.NewClient(safehttp.Options{AllowedCIDRs: loopback, Timeout: 200 * time.Millisecond})
		rv := newReceiver(t, func(w http.ResponseWriter) { time.Sleep(time.Second); w.WriteHeader(200) })
		d := h.deliveryTo(h.webhook(webhookOpts{url: rv.URL}))
		res, err := slow.AttemptDelivery(context.Background(), activities.AttemptInput{DeliveryID: d, Attempt: 1, Try: 1})
		require.NoError(t, err)
		require.Equal(t, activities.OutcomeRetrying, res.Outcome)
		require.Contains(t, res.Error, "timed out")
		require.Zero(t, res.Status)
	})
	t.Run("NoEncryptionKey", func(t *testing.T) {
		nokey := h.variant()
		nokey.Secrets = nil
		rv := newReceiver(t)
		d := h.deliveryTo(h.webhook(webhookOpts{url: rv.URL}))
		res, err := nokey.AttemptDelivery(context.Background(), activities.AttemptInput{DeliveryID: d, Attempt: 1, Try: 1})
		require.NoError(t, err)
		require.Equal(t, activities.OutcomeRetrying, res.Outcome, "a fixed worker delivers it later")
		require.Contains(t, res.Error, "ENCRYPTION_KEY")
		require.Empty(t, rv.got())
	})
}

func TestWebhookBodyFormat(t *testing.T) {
	key := []byte("k")
	body, err := activities.WebhookBody(schemas.WebhookPayload{ID: "d1", Event: "node.unhealthy",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC), Data: json.RawMessage(`{"a": "b",
		"signature":""}`)}, key)
	require.NoError(t, err)
	sig := "sha256=" + hmacHex(key, []byte(`{"id":"d1","event":"node.unhealthy","timestamp":"2026-01-02T03:04:05.6Z",`+
		`"data":{"a":"b","signature":""},"signature":""}`))
	require.Equal(t, `{"id":"d1","event":"node.unhealthy","timestamp":"2026-01-02T03:04:05.6Z",`+
		`"data":{"a":"b","signature":""},"signature":"`+sig+`"}`, string(body))
	require.Equal(t, []byte("raw secret"), activities.WebhookKey("raw secret"))
	require.Equal(t, []byte("0123"), activities.WebhookKey("whsec_"+base64.StdEncoding.EncodeToString([]byte("0123"))))
}
