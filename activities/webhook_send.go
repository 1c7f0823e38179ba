package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// How a webhook request is built and signed (README, "Webhooks"):
//
// Body: schemas.WebhookPayload as JSON, fields in the order id, event,
// timestamp, data, signature. "signature" is "sha256=" + the lowercase hex
// HMAC-SHA256, keyed with the webhook's signing key, of the body exactly as
// sent except that the signature's value is empty: the sender serialises the
// payload with "signature":"" (the last member, so the body ends with
// `"signature":""}`), signs those bytes and puts the value in. A receiver
// replaces the value it got by "" in the raw body (the last
// `"signature":"sha256=…"` member) and recomputes.
//
// Headers:
//   - webhook-id: the delivery id (the body's "id"), the same for every
//     attempt and redelivery: receivers deduplicate on it;
//   - webhook-timestamp: this attempt's time, unix seconds;
//   - webhook-signature: "v1," + base64 HMAC-SHA256(key, id + "." +
//     timestamp + "." + body) (Standard Webhooks 1.0); during a secret
//     rotation's grace period one v1 signature per secret, space-separated,
//     the current secret's first;
//   - X-StreamSpace-Signature: "sha256=" + hex HMAC-SHA256(key, body), the
//     raw body as sent, with the current secret (GitHub's scheme);
//   - X-StreamSpace-Event, Content-Type: application/json, User-Agent, and
//     the webhook's own extra headers (which cannot replace these).
//
// The key: a secret is "whsec_" + base64 of random bytes (Standard
// Webhooks); the key is the base64-decoded part, as the standardwebhooks
// libraries take it. A secret without that form is used as its raw bytes.

// Signature headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	HeaderSignature        = "X-StreamSpace-Signature"
	HeaderEvent            = "X-StreamSpace-Event"
)

// WebhookKey is the HMAC key of a webhook secret.
func WebhookKey(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil && len(key) > 0 {
			return key
		}
	}
	return []byte(secret)
}

// emptySignatureTail is how a serialised WebhookPayload ends before signing.
const emptySignatureTail = `"signature":""}`

// WebhookBody serialises a payload and fills its signature field (see above).
func WebhookBody(p schemas.WebhookPayload, key []byte) ([]byte, error) {
	p.Signature = ""
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode webhook payload: %w", err)
	}
	if !bytes.HasSuffix(raw, []byte(emptySignatureTail)) {
		return nil, errors.New("encode webhook payload: signature is not the last member")
	}
	sig := HexSignature(key, raw)
	body := make([]byte, 0, len(raw)+len(sig))
	body = append(body, raw[:len(raw)-2]...) // up to the opening quote of the empty value
	body = append(body, sig...)
	return append(body, `"}`...), nil
}

// HexSignature is "sha256=" + hex HMAC-SHA256(key, msg).
func HexSignature(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// StandardSignature is one Standard Webhooks v1 signature: "v1," + base64
// HMAC-SHA256(key, id.timestamp.body).
func StandardSignature(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// webhookRequest is one attempt's request as built, with the headers as they
// are logged (extra header values redacted: they are sealed at rest because
// they usually carry credentials).
type webhookRequest struct {
	url       string
	body      []byte
	header    http.Header
	logHeader map[string]string
}

// redacted replaces the values of a webhook's own headers in the log.
const redacted = "[redacted]"

// buildWebhookRequest builds and signs the request of one attempt. secrets
// are the signing secrets, current first; extra are the webhook's headers.
func buildWebhookRequest(job schemas.DeliveryJob, secrets []string, extra map[string]string, userAgent string,
	at time.Time) (webhookRequest, error) {
	d := job.Delivery
	data := job.EventPayload
	if d.Test || len(data) == 0 {
		data = testEventData
	}
	key := WebhookKey(secrets[0])
	body, err := WebhookBody(schemas.WebhookPayload{
		ID: d.ID.String(), Event: d.EventType, Timestamp: job.EventOccurredAt.UTC(), Data: data,
	}, key)
	if err != nil {
		return webhookRequest{}, err
	}
	ts := at.Unix()
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = StandardSignature(WebhookKey(s), d.ID.String(), ts, body)
	}
	h := http.Header{}
	log := map[string]string{}
	names := make([]string, 0, len(extra))
	for name := range extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, raw := range names {
		name := http.CanonicalHeaderKey(strings.TrimSpace(raw))
		switch name {
		case "", "Host", "Content-Length", "Transfer-Encoding", "Connection":
			continue // the transport's to set
		}
		h.Set(name, extra[raw])
		log[name] = redacted
	}
	set := func(name, value string) {
		h.Set(name, value)
		log[http.CanonicalHeaderKey(name)] = value
	}
	set("Content-Type", "application/json")
	set("User-Agent", userAgent)
	set(HeaderEvent, d.EventType)
	set(HeaderSignature, HexSignature(key, body))
	// The Standard Webhooks names are lowercase in the spec; Go canonicalises
	// them on the wire (HTTP header names are case-insensitive).
	set(HeaderWebhookID, d.ID.String())
	set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	set(HeaderWebhookSignature, strings.Join(sigs, " "))
	return webhookRequest{url: job.Webhook.URL, body: body, header: h, logHeader: log}, nil
}

// testEventData is the data of a test delivery.
var testEventData = json.RawMessage(`{"message":"This is a test event from StreamSpace"}`)

// httpOutcome classifies one HTTP attempt.
type httpOutcome struct {
	status     int
	retryAfter time.Duration
	permanent  bool   // retrying cannot help
	gone       bool   // 410: disable the target
	err        string // "" on success
}

// classify turns a response (or a transport error) into an outcome:
//
//   - 2xx: success;
//   - 410 Gone: failure, no retry, the webhook is disabled (Standard Webhooks);
//   - 3xx: failure (redirects are not followed: a receiver that moved must
//     be updated), retried like any failure;
//   - every other status (4xx included: receivers misconfigure and recover)
//     and transport errors: retried; Retry-After is honoured on any answer
//     that carries it (429 and 503 are the usual ones);
//   - an address the dialer refuses (private, loopback, metadata …) or a URL
//     the client refuses: failure, no retry, as that will not change.
func classify(resp *http.Response, err error, now time.Time) httpOutcome {
	if err != nil {
		o := httpOutcome{err: transportError(err)}
		o.permanent = errors.Is(err, safehttp.ErrBlockedAddress) || errors.Is(err, safehttp.ErrInvalidURL)
		return o
	}
	o := httpOutcome{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		o.retryAfter = 0
	case resp.StatusCode == http.StatusGone:
		o.permanent, o.gone = true, true
		o.err = "receiver answered 410 Gone"
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		o.err = fmt.Sprintf("receiver answered %d %s (redirects are not followed)", resp.StatusCode,
			http.StatusText(resp.StatusCode))
		if loc := resp.Header.Get("Location"); loc != "" {
			o.err += " to " + truncate(loc, 200)
		}
	default:
		o.err = fmt.Sprintf("receiver answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return o
}

// transportError describes a failed request without repeating the URL
// (recorded separately).
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || (ue != nil && ue.Timeout()) {
		return "timed out: " + err.Error()
	}
	return err.Error()
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// Unparseable or past values are 0; the caller caps long ones.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(schemas.MaxRetryDelay/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sendWebhook makes one HTTP attempt and fills the record's request and
// response fields.
func (a *Deliveries) sendWebhook(ctx context.Context, req webhookRequest, rec *schemas.DeliveryAttempt) httpOutcome {
	rec.RequestURL = req.url
	rec.RequestHeaders = req.logHeader
	rec.RequestBody = string(req.body)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, req.url, bytes.NewReader(req.body))
	if err != nil {
		return httpOutcome{permanent: true, err: "invalid URL: " + err.Error()}
	}
	hreq.Header = req.header
	start := time.Now()
	resp, err := a.httpClient().Do(hreq)
	if err != nil {
		rec.Latency = time.Since(start)
		return classify(nil, err, a.now())
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, schemas.ResponseExcerptBytes))
	rec.Latency = time.Since(start)
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	status := resp.StatusCode
	rec.ResponseStatus = &status
	rec.ResponseHeaders = flattenHeader(resp.Header)
	rec.ResponseBody = strings.ToValidUTF8(string(excerpt), "\uFFFD")
	return classify(resp, nil, a.now())
}

// flattenHeader keeps the first 50 headers, values joined and truncated.
func flattenHeader(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names[:min(len(names), 50)] {
		out[name] = truncate(strings.Join(h[name], ", "), 1024)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// webhookSecrets opens the signing secrets of a webhook: the current one,
// then the previous one while its grace period lasts.
func (a *Deliveries) webhookSecrets(w *schemas.Webhook, now time.Time) ([]string, map[string]string, error) {
	if a.Secrets == nil {
		return nil, nil, errors.New("cannot open the webhook's secret: ENCRYPTION_KEY is not configured on the worker")
	}
	cur, err := a.Secrets.Open(w.SecretEnc)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the webhook's secret: %w", err)
	}
	secrets := []string{string(cur)}
	if len(w.PreviousSecretEnc) > 0 && w.PreviousSecretExpiresAt != nil && w.PreviousSecretExpiresAt.After(now) {
		prev, err := a.Secrets.Open(w.PreviousSecretEnc)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open the webhook's previous secret: %w", err)
		}
		secrets = append(secrets, string(prev))
	}
	var extra map[string]string
	if len(w.HeadersEnc) > 0 {
		raw, err := a.Secrets.Open(w.HeadersEnc)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot open the webhook's headers: %w", err)
		}
		if err := json.Unmarshal(raw, &extra); err != nil {
			return nil, nil, fmt.Errorf("the webhook's headers are not a JSON object of strings: %w", err)
		}
	}
	return secrets, extra, nil
}
