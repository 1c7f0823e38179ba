package notify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/schemas"
)

const routingKey = "R0uTiNgKeY0123456789abcdefABCDEF"

// pdEvent is what an Events API v2 receiver reads.
type pdEvent struct {
	RoutingKey string `json:"routing_key"`
	Action     string `json:"event_action"`
	DedupKey   string `json:"dedup_key"`
	Client     string `json:"client"`
	Payload    *struct {
		Summary   string         `json:"summary"`
		Source    string         `json:"source"`
		Severity  string         `json:"severity"`
		Timestamp string         `json:"timestamp"`
		Component string         `json:"component"`
		Class     string         `json:"class"`
		Details   map[string]any `json:"custom_details"`
	} `json:"payload"`
}

func pdAccepted(dedup string) reply {
	return reply{status: 202, header: map[string]string{"Content-Type": "application/json"},
		body: `{"status":"success","message":"Event processed","dedup_key":"` + dedup + `"}`}
}

// TestPagerDutyEventsV2 sends events through go-pagerduty to a local Events
// API v2 receiver and checks routing_key, event_action, dedup_key and the
// severity mapped from each event.
func TestPagerDutyEventsV2(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ      schemas.EventType
		data     any
		action   string
		dedup    string
		severity string // "" for a resolve (no payload)
		source   string
	}{
		{schemas.EventNodeUnhealthy, samples[schemas.EventNodeUnhealthy], "trigger", "streamspace/node/worker-1", "error", "worker-1"},
		{schemas.EventBackupFailed, samples[schemas.EventBackupFailed], "trigger", "streamspace/backup/postgres", "error", "postgres"},
		{schemas.EventBackupCompleted, samples[schemas.EventBackupCompleted], "resolve", "streamspace/backup/postgres", "", ""},
		{schemas.EventQuotaExceeded, samples[schemas.EventQuotaExceeded], "trigger", "streamspace/quota/alice/sessions", "warning", "streamspace"},
		{schemas.EventSecurityAlert, samples[schemas.EventSecurityAlert], "trigger", "streamspace/security/a1", "error", "streamspace"},
		{schemas.EventSecurityAlert, schemas.SecurityAlertData{AlertID: "a2", Kind: "k", Severity: "critical", Message: "m"}, "trigger", "streamspace/security/a2", "critical", "streamspace"},
		{schemas.EventComplianceViolation, samples[schemas.EventComplianceViolation], "trigger", "streamspace/compliance/no-public-sessions/session/user1-firefox", "critical", "streamspace"},
		{schemas.EventComplianceViolation, schemas.ComplianceViolationData{ViolationID: "v9", PolicyID: "p", Severity: "low", Description: "d"}, "trigger", "streamspace/compliance/v9", "info", "streamspace"},
		{schemas.EventCostThreshold, samples[schemas.EventCostThreshold], "trigger", "streamspace/cost/team-a", "warning", "streamspace"},
		{schemas.EventSessionCreated, samples[schemas.EventSessionCreated], "trigger", "streamspace/session/user1-firefox", "info", "kwok-node-0"},
		{schemas.EventSessionDeleted, samples[schemas.EventSessionDeleted], "resolve", "streamspace/session/user1-firefox", "", ""},
		{schemas.EventUserCreated, samples[schemas.EventUserCreated], "trigger", "streamspace/delivery/0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee", "info", "streamspace"},
		{schemas.EventScalingTriggered, samples[schemas.EventScalingTriggered], "trigger", "streamspace/delivery/0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee", "info", "streamspace"},
	}
	for _, c := range cases {
		t.Run(string(c.typ)+" "+c.dedup, func(t *testing.T) {
			t.Parallel()
			pd := newReceiver(t, pdAccepted(c.dedup))
			d := testDeps()
			d.PagerDutyEventsURL = pd.URL + "/v2/enqueue"
			res, err := Senders(d)["pagerduty"].Send(context.Background(), mustJSON(t, PagerDutyConfig{RoutingKey: routingKey}),
				testEvent(t, string(c.typ), c.data))
			require.NoError(t, err)
			require.Equal(t, 202, res.Status)
			require.Equal(t, pd.URL, res.RequestURL)
			requireNoSecret(t, res, err, routingKey)

			got := pd.last(t)
			require.Equal(t, "/v2/enqueue", got.Path)
			require.Equal(t, "application/json", got.Header.Get("Content-Type"))
			var e pdEvent
			require.NoError(t, json.Unmarshal(got.Body, &e), "%s", got.Body)
			require.Equal(t, routingKey, e.RoutingKey)
			require.Equal(t, c.action, e.Action)
			require.Equal(t, c.dedup, e.DedupKey)
			if c.action == "resolve" {
				require.Nil(t, e.Payload, "a resolve carries no payload")
				return
			}
			require.NotNil(t, e.Payload)
			require.Equal(t, c.severity, e.Payload.Severity)
			require.Equal(t, c.source, e.Payload.Source)
			require.Equal(t, string(c.typ), e.Payload.Class)
			require.Equal(t, "2025-11-15T10:30:00Z", e.Payload.Timestamp)
			require.Equal(t, Render(testEvent(t, string(c.typ), c.data)).Summary, e.Payload.Summary)
			require.Equal(t, string(c.typ), e.Payload.Details["event_type"])
			require.Equal(t, "StreamSpace", e.Client)
		})
	}
}

// TestPagerDutyRepeatsGroup: two node.unhealthy events for one node (two
// deliveries) share the dedup key, so PagerDuty keeps one alert.
func TestPagerDutyRepeatsGroup(t *testing.T) {
	t.Parallel()
	m := Render(testEvent(t, "node.unhealthy", samples[schemas.EventNodeUnhealthy]))
	a := PlanPagerDuty(Event{DeliveryID: "d1", Type: "node.unhealthy", Data: mustJSON(t, samples[schemas.EventNodeUnhealthy])}, m)
	b := PlanPagerDuty(Event{DeliveryID: "d2", Type: "node.unhealthy", Data: mustJSON(t, samples[schemas.EventNodeUnhealthy])}, m)
	require.Equal(t, a.DedupKey, b.DedupKey)

	long := strings.Repeat("n", 300)
	p := PlanPagerDuty(Event{Type: "node.unhealthy", Data: mustJSON(t, schemas.NodeUnhealthyData{NodeName: long})}, m)
	require.LessOrEqual(t, len(p.DedupKey), 255)
	require.True(t, strings.HasPrefix(p.DedupKey, "streamspace/sha256/"))
}

func TestPagerDutySeverityOverrideAndErrors(t *testing.T) {
	t.Parallel()
	pd := newReceiver(t, pdAccepted("x"),
		reply{status: 400, header: map[string]string{"Content-Type": "application/json"},
			body: `{"status":"invalid event","message":"Event object is invalid","errors":["'routing_key' is invalid"]}`},
		reply{status: 429, header: map[string]string{"Content-Type": "application/json"}, body: `{"status":"throttle event"}`},
		reply{status: 500, body: "oops"})
	d := testDeps()
	d.PagerDutyEventsURL = pd.URL + "/v2/enqueue"
	send := Senders(d)["pagerduty"]
	cfg := mustJSON(t, PagerDutyConfig{RoutingKey: routingKey, SeverityOverride: "critical"})
	ev := testEvent(t, "cost.threshold", samples[schemas.EventCostThreshold])

	_, err := send.Send(context.Background(), cfg, ev)
	require.NoError(t, err)
	var e pdEvent
	require.NoError(t, json.Unmarshal(pd.last(t).Body, &e))
	require.Equal(t, "critical", e.Payload.Severity)

	res, err := send.Send(context.Background(), cfg, ev)
	require.Error(t, err)
	require.True(t, res.Permanent)
	require.Contains(t, err.Error(), "pagerduty answered 400")
	requireNoSecret(t, res, err, routingKey)

	res, err = send.Send(context.Background(), cfg, ev)
	require.Error(t, err)
	require.False(t, res.Permanent)
	require.Equal(t, 429, res.Status)

	res, err = send.Send(context.Background(), cfg, ev)
	require.Error(t, err)
	require.False(t, res.Permanent)
	require.Equal(t, 500, res.Status)
}
