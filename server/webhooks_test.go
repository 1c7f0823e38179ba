package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// webhookTestBox is a secretbox with a random key, as ENCRYPTION_KEY gives.
func webhookTestBox(t testing.TB) *secretbox.Box {
	t.Helper()
	key := make([]byte, secretbox.KeySize)
	_, _ = rand.Read(key)
	box, err := secretbox.New(key)
	require.NoError(t, err)
	return box
}

// webhookTestOutbound lets webhooks reach loopback receivers, as
// WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8 does in dev and the tests.
var webhookTestOutbound = safehttp.Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// newWebhookAPI is newAPI's bundle served by a server with an encryption
// key, loopback allowed outbound, and wf (nil: no Temporal).
func newWebhookAPI(t *testing.T, wf *workflows.Client) (*apiBundle, *secretbox.Box) {
	t.Helper()
	b := newAPI(t)
	box := webhookTestBox(t)
	cfg := Config{MaxBodyBytes: 1 << 20, RefreshTTL: time.Hour, RateLimits: RateLimitConfig{
		UserLimit: 100000, AdminLimit: 100000, LoginPerAccountIP: 100000, LoginPerAccount: 100000, LoginPerIP: 100000}}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := New(cfg, Deps{Logger: logger, Registry: prometheus.NewRegistry(), Store: b.store, Tokens: b.tokens,
		Workflows: wf, Secrets: box, Outbound: webhookTestOutbound})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b.srv, b.server = srv, s
	return b, box
}

func webhookBody(mutate ...func(map[string]any)) map[string]any {
	body := map[string]any{"name": "Production Alerts", "url": "https://alerts.example.com/webhook",
		"events": []string{"session.created", "quota.exceeded"}}
	for _, m := range mutate {
		m(body)
	}
	return body
}

// createWebhookViaAPI creates a webhook as the admin and returns the answer.
func createWebhookViaAPI(b *apiBundle, body map[string]any) webhookSecretJSON {
	b.t.Helper()
	var out webhookSecretJSON
	b.callJSON("POST", "/api/webhooks", b.admin.Token, body, 201, &out)
	return out
}

// webhookSecretKey decodes a whsec_ secret to its key bytes.
func webhookSecretKey(t *testing.T, secret string) []byte {
	t.Helper()
	rest, ok := strings.CutPrefix(secret, "whsec_")
	require.True(t, ok, "%q has no whsec_ prefix", secret)
	key, err := base64.StdEncoding.DecodeString(rest)
	require.NoError(t, err)
	return key
}

func TestWebhookCRUD(t *testing.T) {
	t.Parallel()
	b, box := newWebhookAPI(t, nil)
	ctx := context.Background()

	resp, data := b.call("POST", "/api/webhooks", b.admin.Token, webhookBody(func(m map[string]any) {
		m["description"] = "pages on-call"
		m["headers"] = map[string]string{"authorization": "Bearer tok-123456", "X-Team": "ops"}
		m["retry_policy"] = map[string]any{"max_attempts": 3, "backoff_seconds": 60}
		m["rate_limit_per_second"] = 25
		m["enabled"] = true
	}))
	require.Equal(t, 201, resp.StatusCode, "%s", data)
	var created webhookSecretJSON
	require.NoError(t, json.Unmarshal(data, &created))
	require.Equal(t, "/api/webhooks/"+created.ID.String(), resp.Header.Get("Location"))
	require.Equal(t, "Production Alerts", created.Name)
	require.Equal(t, "https://alerts.example.com/webhook", created.URL)
	require.Equal(t, []string{"session.created", "quota.exceeded"}, created.Events)
	require.True(t, created.Enabled)
	require.Equal(t, "pages on-call", created.Description)
	require.Equal(t, []string{"Authorization", "X-Team"}, created.Headers) // names only, canonical, sorted
	require.NotContains(t, string(data), "tok-123456")
	require.Equal(t, 25, created.RateLimitPerSecond)
	require.Equal(t, retryPolicyJSON{MaxAttempts: 3, BackoffSeconds: backoffSeconds{60}}, created.RetryPolicy)
	require.Contains(t, string(data), `"retry_policy":{"max_attempts":3,"backoff_seconds":60}`)
	require.Len(t, webhookSecretKey(t, created.Secret), 32) // generated
	require.Empty(t, created.DisabledReason)
	require.Nil(t, created.FailingSince)
	require.Nil(t, created.PreviousSecretExpiresAt)

	// Stored: the secret and the headers sealed.
	row, err := b.store.GetWebhook(ctx, created.ID)
	require.NoError(t, err)
	secret, err := box.OpenString(row.SecretEnc)
	require.NoError(t, err)
	require.Equal(t, created.Secret, secret)
	headers, err := box.Open(row.HeadersEnc)
	require.NoError(t, err)
	require.JSONEq(t, `{"Authorization":"Bearer tok-123456","X-Team":"ops"}`, string(headers))
	require.Equal(t, b.admin.ID, *row.CreatedBy)

	// Reads never show the secret or header values.
	resp, data = b.call("GET", "/api/webhooks/"+created.ID.String(), b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NotContains(t, string(data), created.Secret)
	require.NotContains(t, string(data), `"secret"`)
	require.NotContains(t, string(data), "tok-123456")
	var got webhookJSON
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, created.webhookJSON, got)

	resp, data = b.call("GET", "/api/webhooks", b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NotContains(t, string(data), created.Secret)
	require.NotContains(t, string(data), "tok-123456")
	var list webhookListResponse
	require.NoError(t, json.Unmarshal(data, &list))
	require.Len(t, list.Webhooks, 1)
	require.Nil(t, list.NextCursor)
	require.Equal(t, created.webhookJSON, list.Webhooks[0])

	// PATCH changes only what it names.
	path := "/api/webhooks/" + created.ID.String()
	resp, data = b.call("PATCH", path, b.admin.Token, map[string]any{
		"name": "Renamed", "events": []string{"user.created", "user.created"},
		"retry_policy": map[string]any{"backoff_seconds": []int{10, 60, 600}},
		"headers":      map[string]string{"X-Other": "v"},
	})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NotContains(t, string(data), created.Secret)
	var patched webhookJSON
	require.NoError(t, json.Unmarshal(data, &patched))
	require.Equal(t, "Renamed", patched.Name)
	require.Equal(t, []string{"user.created"}, patched.Events)
	require.Equal(t, retryPolicyJSON{MaxAttempts: 3, BackoffSeconds: backoffSeconds{10, 60, 600}}, patched.RetryPolicy)
	require.Equal(t, []string{"X-Other"}, patched.Headers)
	require.Equal(t, created.URL, patched.URL)
	require.Equal(t, "pages on-call", patched.Description)
	require.Equal(t, 25, patched.RateLimitPerSecond)
	row, err = b.store.GetWebhook(ctx, created.ID)
	require.NoError(t, err)
	secret, err = box.OpenString(row.SecretEnc)
	require.NoError(t, err)
	require.Equal(t, created.Secret, secret, "PATCH keeps the secret")

	// An empty schedule is the default one; {} removes every header.
	b.callJSON("PATCH", path, b.admin.Token, map[string]any{"retry_policy": map[string]any{"backoff_seconds": []int{}, "max_attempts": 8},
		"headers": map[string]string{}}, 200, &patched)
	require.Equal(t, retryPolicyJSON{MaxAttempts: 8, BackoffSeconds: backoffSeconds{5, 300, 1800, 7200, 18000, 36000, 36000}}, patched.RetryPolicy)
	require.Equal(t, []string{}, patched.Headers)
	row, err = b.store.GetWebhook(ctx, created.ID)
	require.NoError(t, err)
	require.Empty(t, row.BackoffSeconds)
	require.Nil(t, row.HeadersEnc)

	// Disabling, then re-enabling a webhook the engine disabled, clears
	// disabled_reason and failing_since.
	b.callJSON("PATCH", path, b.admin.Token, map[string]any{"enabled": false}, 200, &patched)
	require.False(t, patched.Enabled)
	_, err = b.store.Pool.Exec(ctx, `UPDATE webhooks SET disabled_reason = 'failing for 5 days', failing_since = now() - interval '5 days' WHERE id = $1`, created.ID)
	require.NoError(t, err)
	b.callJSON("GET", path, b.admin.Token, nil, 200, &got)
	require.Equal(t, "failing for 5 days", got.DisabledReason)
	require.NotNil(t, got.FailingSince)
	b.callJSON("PATCH", path, b.admin.Token, map[string]any{"enabled": true}, 200, &patched)
	require.True(t, patched.Enabled)
	require.Empty(t, patched.DisabledReason)
	require.Nil(t, patched.FailingSince)

	// The audit log names the webhook.
	require.Eventually(t, func() bool {
		var target string
		err := b.store.Pool.QueryRow(ctx, `SELECT target_id FROM audit_log WHERE route = '/api/webhooks' AND method = 'POST'`).Scan(&target)
		return err == nil && target == created.ID.String()
	}, 10*time.Second, 20*time.Millisecond)

	// DELETE.
	resp, data = b.call("DELETE", path, b.admin.Token, nil)
	require.Equal(t, 204, resp.StatusCode, "%s", data)
	resp, data = b.call("GET", path, b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)
	require.Equal(t, "NOT_FOUND", errorCode(t, data))
	for _, method := range []string{"GET", "PATCH", "DELETE"} {
		resp, data = b.call(method, "/api/webhooks/"+uuid.NewString(), b.admin.Token, map[string]any{"name": "x"})
		require.Equal(t, 404, resp.StatusCode, "%s %s", method, data)
		resp, data = b.call(method, "/api/webhooks/not-a-uuid", b.admin.Token, map[string]any{"name": "x"})
		require.Equal(t, 404, resp.StatusCode, "%s %s", method, data)
	}
}

func TestWebhookSecrets(t *testing.T) {
	t.Parallel()
	b, box := newWebhookAPI(t, nil)
	ctx := context.Background()

	// A whsec_ secret is kept as given; any other string of 24-64 bytes is
	// the key itself, shown back in the whsec_ form.
	given := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	h := createWebhookViaAPI(b, webhookBody(func(m map[string]any) { m["secret"] = given }))
	require.Equal(t, given, h.Secret)
	raw := "a-plain-shared-secret-of-32-byte"
	h2 := createWebhookViaAPI(b, webhookBody(func(m map[string]any) { m["secret"] = raw }))
	require.Equal(t, []byte(raw), webhookSecretKey(t, h2.Secret))

	for name, secret := range map[string]string{
		"short":             "your-secret-key",
		"long":              strings.Repeat("x", 65),
		"whsec short key":   "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"whsec long key":    "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)),
		"whsec not base64":  "whsec_!!!!notbase64notbase64notbase64!!!!",
		"empty":             "",
		"whsec empty":       "whsec_",
		"whsec url base64?": "whsec_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + "_-",
	} {
		resp, data := b.call("POST", "/api/webhooks", b.admin.Token, webhookBody(func(m map[string]any) { m["secret"] = secret }))
		require.Equal(t, 400, resp.StatusCode, "%s: %s", name, data)
		var e errorBody
		require.NoError(t, json.Unmarshal(data, &e))
		require.Equal(t, "secret", e.Error.Details["field"], name)
		if len(secret) > 10 {
			require.NotContains(t, string(data), secret, "an error never echoes the secret")
		}
	}

	// Rotation: the new secret once; the old one becomes previous for the
	// grace period (default 24h).
	path := "/api/webhooks/" + h.ID.String()
	before, err := b.store.GetWebhook(ctx, h.ID)
	require.NoError(t, err)
	var rotated rotateSecretJSON
	b.callJSON("POST", path+"/rotate-secret", b.admin.Token, nil, 200, &rotated)
	require.Equal(t, h.ID, rotated.ID)
	require.NotEqual(t, given, rotated.Secret)
	require.Len(t, webhookSecretKey(t, rotated.Secret), 32)
	require.NotNil(t, rotated.PreviousSecretExpiresAt)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), *rotated.PreviousSecretExpiresAt, time.Minute)
	after, err := b.store.GetWebhook(ctx, h.ID)
	require.NoError(t, err)
	require.Equal(t, before.SecretEnc, after.PreviousSecretEnc)
	cur, err := box.OpenString(after.SecretEnc)
	require.NoError(t, err)
	require.Equal(t, rotated.Secret, cur)
	prev, err := box.OpenString(after.PreviousSecretEnc)
	require.NoError(t, err)
	require.Equal(t, given, prev)

	// GET shows the grace period, never either secret.
	resp, data := b.call("GET", path, b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.NotContains(t, string(data), rotated.Secret)
	require.NotContains(t, string(data), given)
	var got webhookJSON
	require.NoError(t, json.Unmarshal(data, &got))
	require.NotNil(t, got.PreviousSecretExpiresAt)

	// A given secret and grace period; 0s drops the old secret at once.
	b.callJSON("POST", path+"/rotate-secret", b.admin.Token, map[string]any{"secret": raw, "grace_period": "90m"}, 200, &rotated)
	require.Equal(t, []byte(raw), webhookSecretKey(t, rotated.Secret))
	require.WithinDuration(t, time.Now().Add(90*time.Minute), *rotated.PreviousSecretExpiresAt, time.Minute)
	b.callJSON("POST", path+"/rotate-secret", b.admin.Token, map[string]any{"grace_period": "0s"}, 200, &rotated)
	require.Nil(t, rotated.PreviousSecretExpiresAt)
	after, err = b.store.GetWebhook(ctx, h.ID)
	require.NoError(t, err)
	require.Nil(t, after.PreviousSecretEnc)
	require.Nil(t, after.PreviousSecretExpiresAt)

	for _, body := range []map[string]any{
		{"grace_period": "forever"}, {"grace_period": "-1h"}, {"grace_period": "169h"},
		{"secret": "short"}, {"unknown": 1},
	} {
		resp, data := b.call("POST", path+"/rotate-secret", b.admin.Token, body)
		require.Equal(t, 400, resp.StatusCode, "%v: %s", body, data)
	}
	resp, data = b.call("POST", "/api/webhooks/"+uuid.NewString()+"/rotate-secret", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)

	// The audit log holds no secret.
	var details string
	require.NoError(t, b.store.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(details::text, ' '), '') FROM audit_log`).Scan(&details))
	require.NotContains(t, details, raw)
	require.NotContains(t, details, rotated.Secret)
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	for _, tc := range []struct {
		name   string
		body   any
		field  string
		inText string // in the issue
	}{
		{"unknown event named", webhookBody(set("events", []string{"session.created", "session.exploded"})), "events", `"session.exploded"`},
		{"no events", webhookBody(set("events", []string{})), "events", "at least one"},
		{"events absent", webhookBody(func(m map[string]any) { delete(m, "events") }), "events", "at least one"},
		{"http refused", webhookBody(set("url", "http://alerts.example.com/hook")), "url", "https is required"},
		{"private IP refused", webhookBody(set("url", "https://10.1.2.3/hook")), "url", "10.1.2.3"},
		{"metadata refused", webhookBody(set("url", "https://169.254.169.254/latest/meta-data")), "url", "169.254.169.254"},
		{"IPv6 loopback refused", webhookBody(set("url", "https://[::1]/hook")), "url", "::1"},
		{"decimal IP refused", webhookBody(set("url", "https://2130706433/hook")), "url", "not a valid host name"},
		{"credentials in URL", webhookBody(set("url", "https://user:pw@alerts.example.com/")), "url", "passwords"},
		{"relative URL", webhookBody(set("url", "/hook")), "url", "absolute"},
		{"no URL", webhookBody(func(m map[string]any) { delete(m, "url") }), "url", "required"},
		{"no name", webhookBody(func(m map[string]any) { delete(m, "name") }), "name", "1-200"},
		{"long name", webhookBody(set("name", strings.Repeat("n", 201))), "name", "1-200"},
		{"name with newline", webhookBody(set("name", "a\nb")), "name", "one line"},
		{"long description", webhookBody(set("description", strings.Repeat("d", 1001))), "description", "1000"},
		{"max_attempts 0", webhookBody(set("retry_policy", map[string]any{"max_attempts": 0})), "retry_policy.max_attempts", "1 to 50"},
		{"max_attempts 51", webhookBody(set("retry_policy", map[string]any{"max_attempts": 51})), "retry_policy.max_attempts", "1 to 50"},
		{"backoff 0", webhookBody(set("retry_policy", map[string]any{"backoff_seconds": 0})), "retry_policy.backoff_seconds", "1 to 86400"},
		{"backoff over a day", webhookBody(set("retry_policy", map[string]any{"backoff_seconds": []int{60, 86401}})), "retry_policy.backoff_seconds", "1 to 86400"},
		{"backoff a string", webhookBody(set("retry_policy", map[string]any{"backoff_seconds": "60"})), "retry_policy.backoff_seconds", "whole number"},
		{"backoff fractional", webhookBody(set("retry_policy", map[string]any{"backoff_seconds": 1.5})), "retry_policy.backoff_seconds", "whole number"},
		{"retry_policy unknown field", webhookBody(set("retry_policy", map[string]any{"jitter": true})), "jitter", "unknown field"},
		{"rate limit 0", webhookBody(set("rate_limit_per_second", 0)), "rate_limit_per_second", "1 to 10000"},
		{"Host header", webhookBody(set("headers", map[string]string{"host": "evil"})), "headers", "Host"},
		{"Content-Length header", webhookBody(set("headers", map[string]string{"Content-Length": "1"})), "headers", "Content-Length"},
		{"hop-by-hop header", webhookBody(set("headers", map[string]string{"Transfer-Encoding": "chunked"})), "headers", "hop-by-hop"},
		{"Connection header", webhookBody(set("headers", map[string]string{"connection": "close"})), "headers", "hop-by-hop"},
		{"webhook-* header", webhookBody(set("headers", map[string]string{"webhook-signature": "v1,x"})), "headers", "Webhook-Signature"},
		{"X-StreamSpace-* header", webhookBody(set("headers", map[string]string{"X-StreamSpace-Signature": "x"})), "headers", "reserved"},
		{"bad header name", webhookBody(set("headers", map[string]string{"Bad Name": "x"})), "headers", "not a valid header name"},
		{"bad header value", webhookBody(set("headers", map[string]string{"X-A": "a\r\nInjected: 1"})), "headers", "control characters"},
		{"same header twice", webhookBody(set("headers", map[string]string{"x-a": "1", "X-A": "2"})), "headers", "twice"},
		{"unknown field", webhookBody(set("colour", "blue")), "colour", "unknown field"},
		{"wrong type", webhookBody(set("enabled", "yes")), "enabled", "boolean"},
		{"empty body", "", "body", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := b.call("POST", "/api/webhooks", b.admin.Token, tc.body)
			require.Equal(t, 400, resp.StatusCode, "%s", data)
			var e errorBody
			require.NoError(t, json.Unmarshal(data, &e))
			require.Equal(t, "VALIDATION_ERROR", e.Error.Code)
			if tc.field != "" {
				require.Equal(t, tc.field, e.Error.Details["field"], "%s", data)
				require.Contains(t, e.Error.Details["issue"], tc.inText)
			}
		})
	}

	// The unknown event is in details.value too.
	_, data := b.call("POST", "/api/webhooks", b.admin.Token, webhookBody(set("events", []string{"nope.nope"})))
	var e errorBody
	require.NoError(t, json.Unmarshal(data, &e))
	require.Equal(t, "nope.nope", e.Error.Details["value"])

	// Loopback inside WEBHOOK_ALLOWED_CIDRS, over http, is accepted; so is
	// each catalogued event type.
	var all []string
	for _, spec := range schemas.EventCatalogue() {
		all = append(all, string(spec.Type))
	}
	h := createWebhookViaAPI(b, webhookBody(set("url", "http://127.0.0.1:8099/hook"), set("events", all)))
	require.Equal(t, "http://127.0.0.1:8099/hook", h.URL)
	require.Len(t, h.Events, 17)

	// PATCH validates the same way and changes nothing when refused.
	path := "/api/webhooks/" + h.ID.String()
	for _, body := range []map[string]any{
		{"url": "http://alerts.example.com/"}, {"url": "https://192.168.0.1/"}, {"events": []string{}},
		{"events": []string{"bogus.event"}}, {"name": ""}, {"headers": map[string]string{"Host": "x"}},
		{"retry_policy": map[string]any{"max_attempts": 99}}, {"rate_limit_per_second": 10001}, {"secret": "x"},
	} {
		resp, data := b.call("PATCH", path, b.admin.Token, body)
		require.Equal(t, 400, resp.StatusCode, "%v: %s", body, data)
	}
	var after webhookJSON
	b.callJSON("GET", path, b.admin.Token, nil, 200, &after)
	require.Equal(t, h.webhookJSON, after)
}

func TestWebhookListFilters(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	var ids []uuid.UUID
	for i := range 5 {
		events := []string{"session.created"}
		if i%2 == 0 {
			events = []string{"node.unhealthy"}
		}
		h := createWebhookViaAPI(b, webhookBody(func(m map[string]any) {
			m["name"] = fmt.Sprintf("hook-%d", i)
			m["events"] = events
			m["enabled"] = i != 4
		}))
		ids = append(ids, h.ID)
	}
	var page webhookListResponse
	b.callJSON("GET", "/api/webhooks?limit=2", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Webhooks, 2)
	require.Equal(t, ids[4], page.Webhooks[0].ID)
	require.NotNil(t, page.NextCursor)
	var seen []uuid.UUID
	for _, w := range page.Webhooks {
		seen = append(seen, w.ID)
	}
	for page.NextCursor != nil {
		cursor := *page.NextCursor
		page = webhookListResponse{}
		b.callJSON("GET", "/api/webhooks?limit=2&cursor="+cursor, b.admin.Token, nil, 200, &page)
		for _, w := range page.Webhooks {
			seen = append(seen, w.ID)
		}
	}
	require.Equal(t, []uuid.UUID{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)

	b.callJSON("GET", "/api/webhooks?event=node.unhealthy&enabled=true", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Webhooks, 2)
	require.Equal(t, ids[2], page.Webhooks[0].ID)
	require.Equal(t, ids[0], page.Webhooks[1].ID)
	b.callJSON("GET", "/api/webhooks?enabled=false", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Webhooks, 1)
	require.Equal(t, ids[4], page.Webhooks[0].ID)

	for _, q := range []string{"?event=nope.nope", "?enabled=maybe", "?limit=0", "?cursor=zzz", "?colour=red"} {
		resp, data := b.call("GET", "/api/webhooks"+q, b.admin.Token, nil)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", q, data)
	}
}

// Without ENCRYPTION_KEY the webhook routes answer 503 and say why.
func TestWebhooksNeedEncryptionKey(t *testing.T) {
	t.Parallel()
	b := newAPI(t) // no Secrets
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/webhooks"}, {"GET", "/api/webhooks"}, {"GET", "/api/webhooks/" + uuid.NewString()},
		{"PATCH", "/api/webhooks/" + uuid.NewString()}, {"DELETE", "/api/webhooks/" + uuid.NewString()},
		{"POST", "/api/webhooks/" + uuid.NewString() + "/rotate-secret"},
		{"GET", "/api/webhooks/" + uuid.NewString() + "/deliveries"},
		{"GET", "/api/webhooks/" + uuid.NewString() + "/deliveries/" + uuid.NewString()},
		{"POST", "/api/webhooks/" + uuid.NewString() + "/deliveries/" + uuid.NewString() + "/redeliver"},
		{"POST", "/api/webhooks/" + uuid.NewString() + "/test"},
	} {
		resp, data := b.call(c.method, c.path, b.admin.Token, webhookBody())
		require.Equal(t, 503, resp.StatusCode, "%s %s: %s", c.method, c.path, data)
		var e errorBody
		require.NoError(t, json.Unmarshal(data, &e))
		require.Equal(t, "UNAVAILABLE", e.Error.Code)
		require.Contains(t, e.Error.Message, "ENCRYPTION_KEY is not set")
	}
}

func TestBackoffSecondsJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]backoffInput{
		`60`: {seconds: []int{60}}, ` [1, 2,3] `: {seconds: []int{1, 2, 3}}, `[]`: {seconds: []int{}},
		`"60"`: {invalid: true}, `[1.5]`: {invalid: true}, `{}`: {invalid: true},
	} {
		var got backoffInput
		require.NoError(t, json.Unmarshal([]byte(in), &got))
		require.Equal(t, want.invalid, got.invalid, in)
		if !want.invalid {
			require.Equal(t, want.seconds, got.seconds, in)
		}
	}
	for v, want := range map[string]backoffSeconds{`60`: {60}, `[1,2]`: {1, 2}, `[]`: {}} {
		got, err := json.Marshal(want)
		require.NoError(t, err)
		require.Equal(t, v, string(got))
	}
}

// Fixtures of the route table (rbac_test.go).

// rbacWebhook is a webhook every route test may use.
func rbacWebhook(b *apiBundle) string {
	return rbacOnce(b, "webhook", func() string { return rbacNewWebhook(b) })
}

// rbacNewWebhook creates a webhook for a destructive call.
func rbacNewWebhook(b *apiBundle) string {
	return createWebhookViaAPI(b, webhookBody()).ID.String()
}

// rbacWebhookPath is the path of rbacWebhook followed by suffix.
func rbacWebhookPath(suffix string) func(*apiBundle) string {
	return func(b *apiBundle) string { return "/api/webhooks/" + rbacWebhook(b) + suffix }
}

// rbacDeliveryPath is the path of a delivery of rbacWebhook followed by
// suffix.
func rbacDeliveryPath(suffix string) func(*apiBundle) string {
	return func(b *apiBundle) string {
		id := rbacOnce(b, "delivery", func() string {
			hook := uuid.MustParse(rbacWebhook(b))
			return insertWebhookDelivery(b.t, b, hook, "session.created", schemas.DeliverySucceeded, time.Now()).String()
		})
		return "/api/webhooks/" + rbacWebhook(b) + "/deliveries/" + id
	}
}
