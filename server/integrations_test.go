package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// Secrets of the test integrations: none may ever come back from the API.
const (
	itSlackHookSecret = "T0000/B0000/SlAcKhOoKsEcReT"
	itBotToken        = "xoxb-1-2-BoTtOkEnSeCrEt"
	itRoutingKey      = "PdRoUtInGkEy0123456789abcdef"
	itTeamsSig        = "TeAmSsIgSeCrEt"
)

var itSecrets = []string{"SlAcKhOoKsEcReT", "BoTtOkEnSeCrEt", itRoutingKey, itTeamsSig, "services/T0000"}

func integrationBody(mutate ...func(map[string]any)) map[string]any {
	body := map[string]any{"type": "slack", "name": "Ops channel",
		"config": map[string]any{"webhook_url": "https://hooks.slack.com/services/" + itSlackHookSecret},
		"events": []string{"node.unhealthy", "backup.failed"}}
	for _, m := range mutate {
		m(body)
	}
	return body
}

func createIntegrationViaAPI(b *apiBundle, body map[string]any) integrationJSON {
	b.t.Helper()
	var out integrationJSON
	b.callJSON("POST", "/api/integrations", b.admin.Token, body, 201, &out)
	return out
}

func requireNoIntegrationSecret(t *testing.T, data []byte) {
	t.Helper()
	for _, s := range itSecrets {
		require.NotContains(t, string(data), s, "a secret came back from the API")
	}
}

func TestIntegrationCRUD(t *testing.T) {
	t.Parallel()
	b, box := newWebhookAPI(t, nil)

	// create: 201, Location, the config redacted
	resp, data := b.call("POST", "/api/integrations", b.admin.Token, integrationBody())
	require.Equal(t, 201, resp.StatusCode, "%s", data)
	requireNoIntegrationSecret(t, data)
	var slack integrationJSON
	require.NoError(t, json.Unmarshal(data, &slack))
	require.Equal(t, "/api/integrations/"+slack.ID.String(), resp.Header.Get("Location"))
	require.Equal(t, "slack", slack.Type)
	require.Equal(t, "Ops channel", slack.Name)
	require.Equal(t, map[string]any{"webhook_url": "https://hooks.slack.com/…"}, slack.Config)
	require.Equal(t, []string{"node.unhealthy", "backup.failed"}, slack.Events)
	require.True(t, slack.Enabled)
	require.Equal(t, b.admin.ID, *slack.CreatedBy)

	// the config is sealed at rest and opens to what was posted
	row, err := b.store.GetIntegration(context.Background(), slack.ID)
	require.NoError(t, err)
	require.NotContains(t, string(row.ConfigEnc), "SlAcKhOoKsEcReT")
	plain, err := box.Open(row.ConfigEnc)
	require.NoError(t, err)
	require.JSONEq(t, `{"webhook_url":"https://hooks.slack.com/services/`+itSlackHookSecret+`"}`, string(plain))

	bot := createIntegrationViaAPI(b, integrationBody(func(m map[string]any) {
		m["name"], m["config"] = "Bot", map[string]any{"bot_token": itBotToken, "channel": "#alerts"}
	}))
	require.Equal(t, map[string]any{"bot_token": "xoxb-…", "channel": "#alerts"}, bot.Config)
	pd := createIntegrationViaAPI(b, map[string]any{"type": "pagerduty", "name": "Pager", "enabled": false,
		"config": map[string]any{"routing_key": itRoutingKey, "severity_override": "critical"},
		"events": []string{"node.unhealthy", "security.alert", "node.unhealthy"}})
	require.Equal(t, map[string]any{"routing_key": "…", "severity_override": "critical"}, pd.Config)
	require.Equal(t, []string{"node.unhealthy", "security.alert"}, pd.Events, "duplicates dropped")
	require.False(t, pd.Enabled)
	teams := createIntegrationViaAPI(b, map[string]any{"type": "teams", "name": "Teams",
		"config": map[string]any{"webhook_url": "https://x.logic.azure.com/workflows/abc/invoke?sig=" + itTeamsSig},
		"events": []string{"quota.exceeded"}})
	require.Equal(t, map[string]any{"webhook_url": "https://x.logic.azure.com/…"}, teams.Config)
	mail := createIntegrationViaAPI(b, map[string]any{"type": "email", "name": "Mail",
		"config": map[string]any{"to": []string{"ops@example.com"}, "subject_prefix": "[prod]"},
		"events": []string{"backup.failed"}})
	require.Equal(t, map[string]any{"to": []any{"ops@example.com"}, "subject_prefix": "[prod]"}, mail.Config)
	discord := createIntegrationViaAPI(b, map[string]any{"type": "discord", "name": "Discord",
		"config": map[string]any{"webhook_url": "https://discord.com/api/webhooks/1/SlAcKhOoKsEcReT"},
		"events": []string{"cost.threshold"}})
	require.Equal(t, map[string]any{"webhook_url": "https://discord.com/…"}, discord.Config)

	// get and list never show a secret
	resp, data = b.call("GET", "/api/integrations/"+bot.ID.String(), b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode)
	requireNoIntegrationSecret(t, data)
	resp, data = b.call("GET", "/api/integrations", b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode)
	requireNoIntegrationSecret(t, data)
	var list integrationListResponse
	list = integrationListResponse{}
	require.NoError(t, json.Unmarshal(data, &list))
	require.Len(t, list.Integrations, 6)
	require.Equal(t, discord.ID, list.Integrations[0].ID, "newest first")
	require.Nil(t, list.NextCursor)

	list = integrationListResponse{}
	b.callJSON("GET", "/api/integrations?type=slack", b.admin.Token, nil, 200, &list)
	require.Len(t, list.Integrations, 2)
	list = integrationListResponse{}
	b.callJSON("GET", "/api/integrations?enabled=false", b.admin.Token, nil, 200, &list)
	require.Len(t, list.Integrations, 1)
	require.Equal(t, pd.ID, list.Integrations[0].ID)
	list = integrationListResponse{}
	b.callJSON("GET", "/api/integrations?event=security.alert", b.admin.Token, nil, 200, &list)
	require.Len(t, list.Integrations, 1)
	list = integrationListResponse{}
	b.callJSON("GET", "/api/integrations?limit=4", b.admin.Token, nil, 200, &list)
	require.Len(t, list.Integrations, 4)
	require.NotNil(t, list.NextCursor)
	cursor := *list.NextCursor
	list = integrationListResponse{}
	b.callJSON("GET", "/api/integrations?limit=4&cursor="+cursor, b.admin.Token, nil, 200, &list)
	require.Len(t, list.Integrations, 2)
	require.Equal(t, slack.ID, list.Integrations[1].ID)

	// patch: name, events, enabled; then the whole config
	var got integrationJSON
	b.callJSON("PATCH", "/api/integrations/"+pd.ID.String(), b.admin.Token,
		map[string]any{"name": "Pager 2", "events": []string{"backup.failed"}, "enabled": true}, 200, &got)
	require.Equal(t, "Pager 2", got.Name)
	require.Equal(t, []string{"backup.failed"}, got.Events)
	require.True(t, got.Enabled)
	require.Equal(t, map[string]any{"routing_key": "…", "severity_override": "critical"}, got.Config, "config kept")

	resp, data = b.call("PATCH", "/api/integrations/"+slack.ID.String(), b.admin.Token,
		map[string]any{"config": map[string]any{"bot_token": itBotToken, "channel": "C0123ABCD"}})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	requireNoIntegrationSecret(t, data)
	got = integrationJSON{}
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, map[string]any{"bot_token": "xoxb-…", "channel": "C0123ABCD"}, got.Config, "replaced whole")
	row, err = b.store.GetIntegration(context.Background(), slack.ID)
	require.NoError(t, err)
	plain, err = box.Open(row.ConfigEnc)
	require.NoError(t, err)
	require.JSONEq(t, `{"bot_token":"`+itBotToken+`","channel":"C0123ABCD"}`, string(plain))

	// re-enabling forgets why it was disabled
	since := time.Now().Add(-time.Hour)
	_, err = b.store.Pool.Exec(context.Background(), `UPDATE integrations SET enabled = false,
		disabled_reason = 'failing for 5 days', failing_since = $2 WHERE id = $1`, teams.ID, since)
	require.NoError(t, err)
	got = integrationJSON{}
	b.callJSON("GET", "/api/integrations/"+teams.ID.String(), b.admin.Token, nil, 200, &got)
	require.Equal(t, "failing for 5 days", got.DisabledReason)
	require.NotNil(t, got.FailingSince)
	got = integrationJSON{}
	b.callJSON("PATCH", "/api/integrations/"+teams.ID.String(), b.admin.Token, map[string]any{"enabled": true}, 200, &got)
	require.True(t, got.Enabled)
	require.Empty(t, got.DisabledReason)
	require.Nil(t, got.FailingSince)

	// delete
	resp, _ = b.call("DELETE", "/api/integrations/"+mail.ID.String(), b.admin.Token, nil)
	require.Equal(t, 204, resp.StatusCode)
	resp, data = b.call("GET", "/api/integrations/"+mail.ID.String(), b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)
	require.Equal(t, "NOT_FOUND", errorCode(t, data))
	resp, _ = b.call("DELETE", "/api/integrations/"+mail.ID.String(), b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)
	resp, _ = b.call("GET", "/api/integrations/not-a-uuid", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)

	// the audit log names the target, never the config
	var audit []byte
	require.Eventually(t, func() bool {
		_, audit = b.call("GET", "/api/admin/audit?action=POST+/api/integrations", b.admin.Token, nil)
		return strings.Contains(string(audit), discord.ID.String())
	}, 10*time.Second, 50*time.Millisecond, "%s", audit)
	requireNoIntegrationSecret(t, audit)
}

func TestIntegrationValidation(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	cases := []struct {
		name  string
		body  any
		field string
		issue string // a part of the issue
	}{
		{"unknown type", integrationBody(func(m map[string]any) { m["type"] = "fax" }), "type", `unknown integration type "fax"`},
		{"no type", integrationBody(func(m map[string]any) { delete(m, "type") }), "type", "is required"},
		{"unknown event", integrationBody(func(m map[string]any) { m["events"] = []string{"node.unhealthy", "node.exploded"} }),
			"events", `unknown event type "node.exploded"`},
		{"no events", integrationBody(func(m map[string]any) { m["events"] = []string{} }), "events", "at least one"},
		{"no name", integrationBody(func(m map[string]any) { m["name"] = " " }), "name", "1-200"},
		{"no config", integrationBody(func(m map[string]any) { delete(m, "config") }), "config", "is required"},
		{"config not an object", integrationBody(func(m map[string]any) { m["config"] = "https://x" }), "config", "must be an object"},
		{"private webhook", integrationBody(func(m map[string]any) {
			m["config"] = map[string]any{"webhook_url": "https://10.1.2.3/hook"}
		}), "config.webhook_url", "private address"},
		{"metadata webhook", integrationBody(func(m map[string]any) {
			m["config"] = map[string]any{"webhook_url": "http://169.254.169.254/latest"}
		}), "config.webhook_url", "link-local"},
		{"http webhook", integrationBody(func(m map[string]any) {
			m["config"] = map[string]any{"webhook_url": "http://hooks.slack.com/services/x"}
		}), "config.webhook_url", "https is required"},
		{"bot without channel", integrationBody(func(m map[string]any) {
			m["config"] = map[string]any{"bot_token": itBotToken}
		}), "config.channel", "is required"},
		{"unknown config field", integrationBody(func(m map[string]any) {
			m["config"] = map[string]any{"webhook_url": "https://hooks.slack.com/x", "icon": ":x:"}
		}), "config.icon", "unknown field"},
		{"bad severity", map[string]any{"type": "pagerduty", "name": "p", "events": []string{"node.unhealthy"},
			"config": map[string]any{"routing_key": itRoutingKey, "severity_override": "sev1"}}, "config.severity_override", "critical, error"},
		{"bad address", map[string]any{"type": "email", "name": "m", "events": []string{"node.unhealthy"},
			"config": map[string]any{"to": []string{"ops@example.com", "nope"}}}, "config.to[1]", "valid email"},
		{"unknown field", integrationBody(func(m map[string]any) { m["url"] = "https://x" }), "url", "unknown field"},
	}
	for _, c := range cases {
		resp, data := b.call("POST", "/api/integrations", b.admin.Token, c.body)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", c.name, data)
		e := decodeEnvelope(t, data)
		require.Equal(t, "VALIDATION_ERROR", e.Error.Code, c.name)
		require.Equal(t, c.field, e.Error.Details["field"], "%s: %s", c.name, data)
		require.Contains(t, e.Error.Details["issue"], c.issue, c.name)
		requireNoIntegrationSecret(t, data)
	}

	in := createIntegrationViaAPI(b, integrationBody())
	path := "/api/integrations/" + in.ID.String()
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"type": "teams"}, "type"}, // the type is fixed
		{map[string]any{"config": nil}, "config"},
		{map[string]any{"config": map[string]any{"routing_key": itRoutingKey}}, "config.routing_key"}, // a pagerduty config on slack
		{map[string]any{"events": []string{"bogus.event"}}, "events"},
		{map[string]any{"name": strings.Repeat("n", 201)}, "name"},
	} {
		resp, data := b.call("PATCH", path, b.admin.Token, c.body)
		require.Equal(t, 400, resp.StatusCode, "%v: %s", c.body, data)
		require.Equal(t, c.field, decodeEnvelope(t, data).Error.Details["field"], "%s", data)
	}
	var got integrationJSON
	got = integrationJSON{}
	b.callJSON("GET", path, b.admin.Token, nil, 200, &got)
	require.Equal(t, in, got, "failed patches changed nothing")

	resp, data := b.call("GET", "/api/integrations?type=fax", b.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	resp, _ = b.call("GET", "/api/integrations?event=nope", b.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode)
	resp, _ = b.call("GET", "/api/integrations?cursor=garbage", b.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode)
	resp, _ = b.call("GET", "/api/integrations?bogus=1", b.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode)
}

func TestIntegrationsNeedEncryptionKey(t *testing.T) {
	t.Parallel()
	b := newAPI(t) // no Secrets
	id := uuid.NewString()
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/integrations"}, {"GET", "/api/integrations"}, {"GET", "/api/integrations/" + id},
		{"PATCH", "/api/integrations/" + id}, {"DELETE", "/api/integrations/" + id},
		{"POST", "/api/integrations/" + id + "/test"}, {"GET", "/api/integrations/" + id + "/deliveries"},
		{"GET", "/api/integrations/" + id + "/deliveries/" + uuid.NewString()},
	} {
		resp, data := b.call(c.method, c.path, b.admin.Token, integrationBody())
		require.Equal(t, 503, resp.StatusCode, "%s %s: %s", c.method, c.path, data)
		require.Contains(t, decodeEnvelope(t, data).Error.Message, "ENCRYPTION_KEY is not set")
	}
}

// insertIntegrationDelivery writes a delivery of an integration, with one
// attempt, as the delivery engine would.
func insertIntegrationDelivery(t testing.TB, b *apiBundle, integrationID uuid.UUID, eventType, state string, at time.Time) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	ctx := context.Background()
	_, err := b.store.Pool.Exec(ctx, `INSERT INTO deliveries
		(id, event_id, event_type, integration_id, state, attempts, last_status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 1, 200, $6, $6)`, id, uuid.New(), eventType, integrationID, state, at)
	require.NoError(t, err)
	_, err = b.store.Pool.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms,
			request_url, request_headers, request_body, response_status, response_headers, response_body, outcome)
		VALUES ($1, 1, $2, 12, 'https://hooks.slack.com', $3, '{"text":"hi"}', 200, '{"Content-Type":"text/plain"}', 'ok', 'succeeded')`,
		id, at, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer xoxb-leak", "Subject": "[StreamSpace] x"})
	require.NoError(t, err)
	return id
}

func TestIntegrationDeliveries(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	in := createIntegrationViaAPI(b, integrationBody())
	other := createIntegrationViaAPI(b, integrationBody())
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	var ids []uuid.UUID
	for i := range 5 {
		state := schemas.DeliverySucceeded
		if i == 4 {
			state = schemas.DeliveryRetrying
		}
		ids = append(ids, insertIntegrationDelivery(t, b, in.ID, "node.unhealthy", state, base.Add(time.Duration(i)*time.Minute)))
	}
	foreign := insertIntegrationDelivery(t, b, other.ID, "node.unhealthy", schemas.DeliverySucceeded, base)

	var page integrationDeliveryListResponse
	path := "/api/integrations/" + in.ID.String() + "/deliveries"
	page = integrationDeliveryListResponse{}
	b.callJSON("GET", path+"?limit=3", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Deliveries, 3)
	require.Equal(t, ids[4], page.Deliveries[0].ID, "newest first")
	require.Equal(t, in.ID, *page.Deliveries[0].IntegrationID)
	require.Nil(t, page.Deliveries[0].WebhookID)
	require.Equal(t, "retrying", page.Deliveries[0].State)
	require.NotNil(t, page.NextCursor)
	cursor := *page.NextCursor
	page = integrationDeliveryListResponse{}
	b.callJSON("GET", path+"?limit=3&cursor="+cursor, b.admin.Token, nil, 200, &page)
	require.Len(t, page.Deliveries, 2)
	page = integrationDeliveryListResponse{}
	b.callJSON("GET", path+"?state=retrying", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Deliveries, 1)
	resp, _ := b.call("GET", path+"?state=lost", b.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode)
	resp, _ = b.call("GET", "/api/integrations/"+uuid.NewString()+"/deliveries", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)

	var detail integrationDeliveryDetailJSON
	detail = integrationDeliveryDetailJSON{}
	b.callJSON("GET", path+"/"+ids[0].String(), b.admin.Token, nil, 200, &detail)
	require.Equal(t, ids[0], detail.ID)
	require.Len(t, detail.Attempts, 1)
	a := detail.Attempts[0]
	require.Equal(t, "https://hooks.slack.com", a.Request.URL)
	require.Equal(t, "[redacted]", a.Request.Headers["Authorization"])
	require.Equal(t, "[StreamSpace] x", a.Request.Headers["Subject"])
	require.Equal(t, 200, a.Response.Status)
	require.Equal(t, "ok", a.Response.Body)

	resp, _ = b.call("GET", path+"/"+foreign.String(), b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "another integration's delivery")
	resp, _ = b.call("GET", path+"/"+uuid.NewString(), b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)
}

// TestIntegrationSendTest runs POST /api/integrations/{id}/test through real
// Temporal and a worker whose senders reach receivers on loopback: a Slack
// incoming webhook that answers ok, then one that fails, and a PagerDuty
// Events API v2 receiver.
func TestIntegrationSendTest(t *testing.T) {
	t.Parallel()
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	wf := &workflows.Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: "integration-test-" + uuid.NewString()}
	searchAttrsOnce.Do(func() { require.NoError(t, wf.EnsureSearchAttributes(context.Background())) })
	b, box := newWebhookAPI(t, wf)

	var mu sync.Mutex
	var got []string
	status := http.StatusOK
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.URL.Path+" "+string(body))
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = io.WriteString(w, "ok")
		} else {
			_, _ = io.WriteString(w, "invalid_token")
		}
	}))
	t.Cleanup(hook.Close)

	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	client := safehttp.NewClient(webhookTestOutbound)
	deliveries := &activities.Deliveries{Store: b.store, Secrets: box, HTTP: client, Logger: logger,
		Senders: notify.Senders(notify.Deps{HTTP: client, PagerDutyEventsURL: hook.URL + "/v2/enqueue"})}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		_ = worker.Run(ctx, tc, wf.TaskQueue, worker.Deps{Store: b.store, Deliveries: deliveries}, worker.Options{}, logger)
	})

	in := createIntegrationViaAPI(b, integrationBody(func(m map[string]any) {
		m["config"] = map[string]any{"webhook_url": hook.URL + "/services/" + itSlackHookSecret}
		m["enabled"] = false // a disabled integration can still be tested
	}))
	var res integrationTestJSON
	resp, data := b.call("POST", "/api/integrations/"+in.ID.String()+"/test", b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	requireNoIntegrationSecret(t, data)
	res = integrationTestJSON{}
	require.NoError(t, json.Unmarshal(data, &res))
	require.Equal(t, "succeeded", res.Outcome, "%s", data)
	require.Equal(t, 200, *res.Status)
	require.Equal(t, "ok", res.Response)
	require.Equal(t, hook.URL, res.RequestURL)
	mu.Lock()
	require.Len(t, got, 1)
	require.True(t, strings.HasPrefix(got[0], "/services/"+itSlackHookSecret+" "), got[0])
	require.Contains(t, got[0], "Test notification from StreamSpace")
	status = http.StatusForbidden
	mu.Unlock()

	res = integrationTestJSON{}
	b.callJSON("POST", "/api/integrations/"+in.ID.String()+"/test", b.admin.Token, nil, 200, &res)
	require.Equal(t, "failed", res.Outcome)
	require.Equal(t, 403, *res.Status)
	require.Contains(t, res.Error, "slack answered 403")

	// both tests are in the delivery history, with their attempts
	var page integrationDeliveryListResponse
	page = integrationDeliveryListResponse{}
	b.callJSON("GET", "/api/integrations/"+in.ID.String()+"/deliveries", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Deliveries, 2)
	require.True(t, page.Deliveries[0].Test)
	require.Equal(t, res.DeliveryID, page.Deliveries[0].ID)
	resp, data = b.call("GET", "/api/integrations/"+in.ID.String()+"/deliveries/"+res.DeliveryID.String(), b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	requireNoIntegrationSecret(t, data)
	var detail integrationDeliveryDetailJSON
	detail = integrationDeliveryDetailJSON{}
	require.NoError(t, json.Unmarshal(data, &detail))
	require.Len(t, detail.Attempts, 1)
	require.Equal(t, hook.URL, detail.Attempts[0].Request.URL)
	require.Equal(t, 403, detail.Attempts[0].Response.Status)

	// PagerDuty, through go-pagerduty, to the same receiver
	mu.Lock()
	status = http.StatusAccepted
	mu.Unlock()
	pd := createIntegrationViaAPI(b, map[string]any{"type": "pagerduty", "name": "Pager",
		"config": map[string]any{"routing_key": itRoutingKey}, "events": []string{"node.unhealthy"}})
	resp, data = b.call("POST", "/api/integrations/"+pd.ID.String()+"/test", b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	requireNoIntegrationSecret(t, data)
	res = integrationTestJSON{}
	require.NoError(t, json.Unmarshal(data, &res))
	require.Equal(t, "succeeded", res.Outcome, "%s", data)
	require.Equal(t, 202, *res.Status)
	mu.Lock()
	last := got[len(got)-1]
	mu.Unlock()
	require.True(t, strings.HasPrefix(last, "/v2/enqueue "), last)
	var ev struct {
		RoutingKey string `json:"routing_key"`
		Action     string `json:"event_action"`
		DedupKey   string `json:"dedup_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(last, "/v2/enqueue ")), &ev))
	require.Equal(t, itRoutingKey, ev.RoutingKey)
	require.Equal(t, "trigger", ev.Action)
	require.Equal(t, "streamspace/delivery/"+res.DeliveryID.String(), ev.DedupKey)

	// a missing integration is 404
	resp, _ = b.call("POST", "/api/integrations/"+uuid.NewString()+"/test", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)
}

// TestIntegrationTestNeedsTemporal: without a workflow client the test send
// answers 503.
func TestIntegrationTestNeedsTemporal(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookAPI(t, nil)
	in := createIntegrationViaAPI(b, integrationBody())
	resp, data := b.call("POST", "/api/integrations/"+in.ID.String()+"/test", b.admin.Token, nil)
	require.Equal(t, 503, resp.StatusCode, "%s", data)
}

// Fixtures of the route table (rbac_test.go).

func rbacIntegration(b *apiBundle) string {
	return rbacOnce(b, "integration", func() string { return rbacNewIntegration(b) })
}

func rbacNewIntegration(b *apiBundle) string {
	return createIntegrationViaAPI(b, integrationBody()).ID.String()
}

func rbacIntegrationPath(suffix string) func(*apiBundle) string {
	return func(b *apiBundle) string { return "/api/integrations/" + rbacIntegration(b) + suffix }
}

func rbacIntegrationDeliveryPath(b *apiBundle) string {
	id := rbacOnce(b, "integration-delivery", func() string {
		return insertIntegrationDelivery(b.t, b, uuid.MustParse(rbacIntegration(b)), "node.unhealthy",
			schemas.DeliverySucceeded, time.Now()).String()
	})
	return "/api/integrations/" + rbacIntegration(b) + "/deliveries/" + id
}
