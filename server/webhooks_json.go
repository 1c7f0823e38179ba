package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/schemas"
)

// webhookJSON is a webhook as the API shows it. The signing secret is shown
// only by create and rotate-secret (webhookSecretJSON); the extra headers
// only by name, since their values often hold credentials.
type webhookJSON struct {
	ID                      uuid.UUID       `json:"id"`
	Name                    string          `json:"name"`
	URL                     string          `json:"url"`
	Events                  []string        `json:"events"`
	Enabled                 bool            `json:"enabled"`
	RetryPolicy             retryPolicyJSON `json:"retry_policy"`
	Description             string          `json:"description"`
	Headers                 []string        `json:"headers"`
	RateLimitPerSecond      int             `json:"rate_limit_per_second"`
	DisabledReason          string          `json:"disabled_reason"`
	FailingSince            *time.Time      `json:"failing_since"`
	PreviousSecretExpiresAt *time.Time      `json:"previous_secret_expires_at"`
	CreatedAt               time.Time       `json:"created_at"`
	UpdatedAt               time.Time       `json:"updated_at"`
}

// webhookSecretJSON is the answer of create: the webhook and, this once,
// its secret.
type webhookSecretJSON struct {
	webhookJSON
	Secret string `json:"secret"`
}

// retryPolicyJSON shows the effective policy: a webhook without a schedule
// of its own shows the default one.
type retryPolicyJSON struct {
	MaxAttempts    int            `json:"max_attempts"`
	BackoffSeconds backoffSeconds `json:"backoff_seconds"`
}

// backoffSeconds is the retry_policy's backoff as shown: one number N
// (exponential: N, 2N, 4N … capped at 24 h) or an array of numbers (an
// explicit schedule: the wait before each retry). A one-element schedule is
// the number.
type backoffSeconds []int

// backoffInput is a backoff_seconds as sent: a number or an array of
// numbers. A value of another shape is kept as invalid, so that the error
// names the field (applyRetryPolicy).
type backoffInput struct {
	seconds []int
	invalid bool
}

func (b *backoffInput) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	var err error
	if len(data) > 0 && data[0] == '[' {
		err = json.Unmarshal(data, &b.seconds)
	} else {
		var n int
		err = json.Unmarshal(data, &n)
		b.seconds = []int{n}
	}
	b.invalid = err != nil
	return nil
}

func (b *backoffSeconds) UnmarshalJSON(data []byte) error {
	var in backoffInput
	_ = in.UnmarshalJSON(data)
	if in.invalid {
		return fmt.Errorf("backoff_seconds: want a number or an array of numbers, got %s", data)
	}
	*b = in.seconds
	return nil
}

func (b backoffSeconds) MarshalJSON() ([]byte, error) {
	if len(b) == 1 {
		return json.Marshal(b[0])
	}
	return json.Marshal([]int(b))
}

// retryPolicyRequest is a retry_policy as sent: an absent field keeps its
// current value (create: the default).
type retryPolicyRequest struct {
	MaxAttempts    *int          `json:"max_attempts"`
	BackoffSeconds *backoffInput `json:"backoff_seconds"`
}

type createWebhookRequest struct {
	Name               string              `json:"name"`
	URL                string              `json:"url"`
	Secret             *string             `json:"secret"`
	Events             []string            `json:"events"`
	Enabled            *bool               `json:"enabled"`
	RetryPolicy        *retryPolicyRequest `json:"retry_policy"`
	Headers            map[string]string   `json:"headers"`
	Description        string              `json:"description"`
	RateLimitPerSecond *int                `json:"rate_limit_per_second"`
}

// patchWebhookRequest changes only the fields present. headers replaces
// the whole set ({} removes them all).
type patchWebhookRequest struct {
	Name               *string             `json:"name"`
	URL                *string             `json:"url"`
	Events             []string            `json:"events"`
	Enabled            *bool               `json:"enabled"`
	RetryPolicy        *retryPolicyRequest `json:"retry_policy"`
	Headers            *map[string]string  `json:"headers"`
	Description        *string             `json:"description"`
	RateLimitPerSecond *int                `json:"rate_limit_per_second"`
}

type rotateSecretRequest struct {
	GracePeriod *string `json:"grace_period"`
	Secret      *string `json:"secret"`
}

// rotateSecretJSON answers rotate-secret: the new secret, shown this once.
type rotateSecretJSON struct {
	ID                      uuid.UUID  `json:"id"`
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

func toWebhookJSON(w schemas.Webhook, headerNames []string) webhookJSON {
	if headerNames == nil {
		headerNames = []string{}
	}
	out := webhookJSON{ID: w.ID, Name: w.Name, URL: w.URL, Events: w.Events, Enabled: w.Enabled,
		RetryPolicy: retryPolicyJSON{MaxAttempts: w.MaxAttempts, BackoffSeconds: w.BackoffSeconds},
		Description: w.Description, Headers: headerNames, RateLimitPerSecond: w.RateLimitPerSecond,
		DisabledReason: w.DisabledReason, FailingSince: utcPtr(w.FailingSince),
		CreatedAt: w.CreatedAt.UTC(), UpdatedAt: w.UpdatedAt.UTC()}
	if w.PreviousSecretEnc != nil && w.PreviousSecretExpiresAt != nil && w.PreviousSecretExpiresAt.After(time.Now()) {
		out.PreviousSecretExpiresAt = utcPtr(w.PreviousSecretExpiresAt)
	}
	if len(w.BackoffSeconds) == 0 {
		out.RetryPolicy.BackoffSeconds = defaultBackoffSeconds()
	}
	return out
}

func defaultBackoffSeconds() backoffSeconds {
	out := make(backoffSeconds, len(schemas.DefaultRetrySchedule))
	for i, d := range schemas.DefaultRetrySchedule {
		out[i] = int(d / time.Second)
	}
	return out
}

// Limits of a webhook's fields.
const (
	webhookNameMax         = 200
	webhookDescriptionMax  = 1000
	webhookMaxAttemptsMax  = 50
	webhookBackoffMax      = 24 * 60 * 60 // seconds: one day
	webhookRateLimitMax    = 10000
	webhookHeadersMax      = 20
	webhookHeaderValueMax  = 1024
	webhookSecretMinBytes  = 24
	webhookSecretMaxBytes  = 64
	webhookSecretPrefix    = "whsec_"
	webhookGeneratedSecret = 32 // random bytes of a generated secret
)

func validateWebhookName(s string) error {
	if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > webhookNameMax || !utf8.ValidString(s) ||
		strings.ContainsAny(s, "\x00\r\n") {
		return fieldError("name", fmt.Sprintf("must be 1-%d characters on one line", webhookNameMax))
	}
	return nil
}

func validateWebhookDescription(s string) error {
	if utf8.RuneCountInString(s) > webhookDescriptionMax || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fieldError("description", fmt.Sprintf("must be at most %d characters", webhookDescriptionMax))
	}
	return nil
}

// validateEvents checks that every type is catalogued and returns the list
// without duplicates, in the order given.
func validateEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, fieldError("events", "must name at least one event type, such as session.created")
	}
	out := make([]string, 0, len(events))
	for _, e := range events {
		if _, ok := schemas.LookupEvent(schemas.EventType(e)); !ok {
			err := fieldError("events", fmt.Sprintf("unknown event type %q; known: %s", e, strings.Join(eventTypeNames(), ", ")))
			err.Details["value"] = e
			return nil, err
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func eventTypeNames() []string {
	var names []string
	for _, spec := range schemas.EventCatalogue() {
		names = append(names, string(spec.Type))
	}
	return names
}

// checkWebhookURL applies the server's outbound rules (safehttp.CheckURL)
// and returns the URL as it will be stored.
func checkWebhookURL(field, raw string, opts safehttp.Options) (string, error) {
	u, err := safehttp.CheckURL(raw, opts)
	if err != nil {
		return "", fieldError(field, strings.TrimPrefix(err.Error(), "url: "))
	}
	return u.String(), nil
}

// applyRetryPolicy validates req and applies it over w's policy.
func applyRetryPolicy(w *schemas.Webhook, req *retryPolicyRequest) error {
	if req == nil {
		return nil
	}
	if req.MaxAttempts != nil {
		if n := *req.MaxAttempts; n < 1 || n > webhookMaxAttemptsMax {
			return fieldError("retry_policy.max_attempts", fmt.Sprintf("must be from 1 to %d (the first attempt included)", webhookMaxAttemptsMax))
		}
		w.MaxAttempts = *req.MaxAttempts
	}
	if req.BackoffSeconds != nil {
		if req.BackoffSeconds.invalid {
			return fieldError("retry_policy.backoff_seconds", "must be a whole number of seconds or an array of them")
		}
		b := req.BackoffSeconds.seconds
		if len(b) > webhookMaxAttemptsMax {
			return fieldError("retry_policy.backoff_seconds", fmt.Sprintf("must list at most %d waits", webhookMaxAttemptsMax))
		}
		for _, n := range b {
			if n < 1 || n > webhookBackoffMax {
				return fieldError("retry_policy.backoff_seconds", fmt.Sprintf("each wait must be from 1 to %d seconds", webhookBackoffMax))
			}
		}
		w.BackoffSeconds = slices.Clone(b) // [] = the default schedule
	}
	return nil
}

func validateRateLimit(n int) error {
	if n < 1 || n > webhookRateLimitMax {
		return fieldError("rate_limit_per_second", fmt.Sprintf("must be from 1 to %d", webhookRateLimitMax))
	}
	return nil
}

// reservedHeader says why a webhook may not set the header name (canonical
// form), or "" when it may.
func reservedHeader(name string) string {
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te",
		"Trailer", "Trailers", "Transfer-Encoding", "Upgrade":
		return "is a hop-by-hop header"
	case "Host", "Content-Length", "Content-Type", "Content-Encoding":
		return "is set by the sender"
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "webhook-") || strings.HasPrefix(lower, "x-streamspace-") {
		return "is reserved for the signature headers"
	}
	return ""
}

func validHeaderName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validateHeaders checks a webhook's extra headers and returns them with
// canonical names.
func validateHeaders(in map[string]string) (map[string]string, error) {
	if len(in) > webhookHeadersMax {
		return nil, fieldError("headers", fmt.Sprintf("at most %d headers", webhookHeadersMax))
	}
	out := make(map[string]string, len(in))
	for name, value := range in {
		if !validHeaderName(name) {
			return nil, fieldError("headers", fmt.Sprintf("%q is not a valid header name", name))
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if why := reservedHeader(canon); why != "" {
			return nil, fieldError("headers", fmt.Sprintf("%s %s and cannot be set", canon, why))
		}
		if _, dup := out[canon]; dup {
			return nil, fieldError("headers", fmt.Sprintf("%s is given twice", canon))
		}
		if len(value) > webhookHeaderValueMax || !validHeaderValue(value) {
			return nil, fieldError("headers", fmt.Sprintf("the value of %s must be at most %d bytes with no control characters", canon, webhookHeaderValueMax))
		}
		out[canon] = value
	}
	return out, nil
}

func headerNames(h map[string]string) []string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Webhook secrets. A webhook signs with a key of 24 to 64 bytes, kept and
// shown in the Standard Webhooks form "whsec_" + base64(key). An admin may
// give one in that form, or any other string of 24 to 64 bytes, whose bytes
// are then the key (shown back, once, in the whsec_ form); without one the
// server generates 32 random bytes.

// normalizeSecret returns the whsec_ form of a secret an admin gave.
func normalizeSecret(field, s string) (string, error) {
	if rest, ok := strings.CutPrefix(s, webhookSecretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", fieldError(field, "a whsec_ secret must be whsec_ followed by standard base64")
		}
		if len(key) < webhookSecretMinBytes || len(key) > webhookSecretMaxBytes {
			return "", fieldError(field, fmt.Sprintf("a whsec_ secret must encode %d to %d bytes, not %d",
				webhookSecretMinBytes, webhookSecretMaxBytes, len(key)))
		}
		return webhookSecretPrefix + base64.StdEncoding.EncodeToString(key), nil
	}
	if len(s) < webhookSecretMinBytes || len(s) > webhookSecretMaxBytes {
		return "", fieldError(field, fmt.Sprintf("must be %d to %d bytes long (or whsec_ + base64 of that many bytes); omit it to have one generated",
			webhookSecretMinBytes, webhookSecretMaxBytes))
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString([]byte(s)), nil
}

// generateSecret returns a new random secret in the whsec_ form.
func generateSecret() string {
	key := make([]byte, webhookGeneratedSecret)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// deliveryJSON is a delivery as listed.
type deliveryJSON struct {
	ID            uuid.UUID  `json:"id"`
	WebhookID     *uuid.UUID `json:"webhook_id,omitempty"`
	EventID       *uuid.UUID `json:"event_id"`
	EventType     string     `json:"event_type"`
	Test          bool       `json:"test"`
	State         string     `json:"state"`
	AttemptCount  int        `json:"attempt_count"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastStatus    *int       `json:"last_status"`
	LastError     string     `json:"last_error"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	CompletedAt   *time.Time `json:"completed_at"`
}

// deliveryDetailJSON is one delivery with every attempt, oldest first.
type deliveryDetailJSON struct {
	deliveryJSON
	Attempts []attemptJSON `json:"attempts"`
}

type attemptJSON struct {
	Attempt       int                  `json:"attempt"`
	StartedAt     time.Time            `json:"started_at"`
	LatencyMS     int64                `json:"latency_ms"`
	Request       attemptRequestJSON   `json:"request"`
	Response      *attemptResponseJSON `json:"response"` // null when no answer came
	Error         string               `json:"error"`
	Outcome       string               `json:"outcome"`
	NextAttemptAt *time.Time           `json:"next_attempt_at"`
}

type attemptRequestJSON struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type attemptResponseJSON struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"` // the first 4 KiB
}

func toDeliveryJSON(d schemas.Delivery) deliveryJSON {
	return deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, Test: d.Test,
		State: d.State, AttemptCount: d.Attempts, NextAttemptAt: utcPtr(d.NextAttemptAt), LastStatus: d.LastStatus,
		LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), CompletedAt: utcPtr(d.CompletedAt)}
}

// shownRequestHeaders are the request headers the sender itself sets, shown
// as sent; any other (the webhook's extra headers, which may hold
// credentials) is shown as "[redacted]".
var shownRequestHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "User-Agent": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true, "Accept": true, "Accept-Encoding": true}

func redactRequestHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for name, v := range h {
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if shownRequestHeaders[canon] || strings.HasPrefix(canon, "X-Streamspace-") {
			out[name] = v
		} else {
			out[name] = "[redacted]"
		}
	}
	return out
}

func toAttemptJSON(a schemas.DeliveryAttempt) attemptJSON {
	out := attemptJSON{Attempt: a.Attempt, StartedAt: a.StartedAt.UTC(), LatencyMS: a.Latency.Milliseconds(),
		Request: attemptRequestJSON{URL: a.RequestURL, Headers: redactRequestHeaders(a.RequestHeaders), Body: a.RequestBody},
		Error:   a.Error, Outcome: a.Outcome, NextAttemptAt: utcPtr(a.NextAttemptAt)}
	if a.ResponseStatus != nil {
		h := a.ResponseHeaders
		if h == nil {
			h = map[string]string{}
		}
		out.Response = &attemptResponseJSON{Status: *a.ResponseStatus, Headers: h, Body: a.ResponseBody}
	}
	return out
}

// testResultJSON answers POST /api/webhooks/{id}/test: the one attempt's
// outcome.
type testResultJSON struct {
	DeliveryID uuid.UUID `json:"delivery_id"`
	Outcome    string    `json:"outcome"` // succeeded | failed
	Status     *int      `json:"status"`  // null when no answer came
	LatencyMS  int64     `json:"latency_ms"`
	Error      string    `json:"error"`
	Response   string    `json:"response"` // the first 4 KiB of the answer's body
}
