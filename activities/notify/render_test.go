package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/schemas"
)

// samples holds a payload for every catalogued event type.
var samples = map[schemas.EventType]any{
	schemas.EventSessionCreated:    schemas.SessionEventData{SessionID: "user1-firefox", User: "user1", Template: "firefox-browser", State: "running", Node: "kwok-node-0"},
	schemas.EventSessionUpdated:    schemas.SessionEventData{SessionID: "user1-firefox", User: "user1", Template: "firefox-browser", State: "running"},
	schemas.EventSessionDeleted:    schemas.SessionEventData{SessionID: "user1-firefox", User: "user1", Template: "firefox-browser", State: "terminated"},
	schemas.EventSessionHibernated: schemas.SessionEventData{SessionID: "user1-firefox", User: "user1", Template: "firefox-browser", State: "hibernated", Reason: "idle"},
	schemas.EventSessionAwakened:   schemas.SessionEventData{SessionID: "user1-firefox", User: "user1", Template: "firefox-browser", State: "running"},
	schemas.EventUserCreated:       schemas.UserEventData{UserID: "u1", Username: "alice", Email: "alice@example.com", Role: "user"},
	schemas.EventUserUpdated:       schemas.UserEventData{UserID: "u1", Username: "alice", Changed: []string{"role", "active"}},
	schemas.EventQuotaExceeded:     schemas.QuotaExceededData{User: "alice", Resource: "sessions", Limit: 3, Used: 3},
	schemas.EventPluginInstalled:   schemas.PluginInstalledData{Plugin: "recorder", Version: "1.2.0", InstalledBy: "admin"},
	schemas.EventTemplateCreated:   schemas.TemplateCreatedData{TemplateID: "firefox", DisplayName: "Firefox", Category: "Web Browsers"},
	schemas.EventSecurityAlert:     schemas.SecurityAlertData{AlertID: "a1", Kind: "brute_force", Severity: "high", IPAddress: "203.0.113.7", Message: "20 failed logins in a minute"},
	schemas.EventComplianceViolation: schemas.ComplianceViolationData{ViolationID: "v1", PolicyID: "no-public-sessions", Framework: "SOC2",
		Severity: "critical", Resource: "session/user1-firefox", Description: "A session is reachable from the internet"},
	schemas.EventScalingTriggered: schemas.ScalingTriggeredData{PolicyID: "p1", Action: "scale_up", FromReplicas: 2, ToReplicas: 4, Metric: "cpu", Value: 83.5, Reason: "CPU above 80%"},
	schemas.EventNodeUnhealthy:    schemas.NodeUnhealthyData{NodeName: "worker-1", Reason: "NotReady", Conditions: []string{"Ready=False"}},
	schemas.EventBackupCompleted:  schemas.BackupCompletedData{BackupID: "b1", Target: "postgres", SizeBytes: 3 << 30, Duration: 95 * time.Second},
	schemas.EventBackupFailed:     schemas.BackupFailedData{BackupID: "b2", Target: "postgres", Error: "disk full"},
	schemas.EventCostThreshold:    schemas.CostThresholdData{Scope: "team-a", Threshold: 1000, Current: 950.5, Currency: "USD"},
}

func TestRenderEveryEventType(t *testing.T) {
	t.Parallel()
	wantSeverity := map[schemas.EventType]string{
		schemas.EventSecurityAlert: SeverityError, schemas.EventComplianceViolation: SeverityCritical,
		schemas.EventNodeUnhealthy: SeverityError, schemas.EventQuotaExceeded: SeverityWarning,
		schemas.EventBackupFailed: SeverityError, schemas.EventCostThreshold: SeverityWarning,
	}
	for _, spec := range schemas.EventCatalogue() {
		data, ok := samples[spec.Type]
		require.True(t, ok, "no sample for %s", spec.Type)
		m := Render(testEvent(t, string(spec.Type), data))
		require.NotEmpty(t, m.Title, spec.Type)
		require.NotContains(t, m.Title, "StreamSpace event", "%s fell back to the generic renderer", spec.Type)
		require.NotEmpty(t, m.Fields, spec.Type)
		want := wantSeverity[spec.Type]
		if want == "" {
			want = SeverityInfo
		}
		require.Equal(t, want, m.Severity, spec.Type)
		require.NotZero(t, m.Color, spec.Type)
		require.Equal(t, testTime, m.Time)
		require.True(t, strings.HasPrefix(m.Summary, m.Title), spec.Type)
		require.NotContains(t, m.Summary, "\n")
		require.NotContains(t, m.Summary, "http", "summaries carry no links")
		for _, f := range m.Fields {
			require.NotEmpty(t, f.Value, "%s: empty field %s", spec.Type, f.Name)
		}
	}
}

func TestRenderDetails(t *testing.T) {
	t.Parallel()
	m := Render(testEvent(t, "quota.exceeded", samples[schemas.EventQuotaExceeded]))
	require.Equal(t, "Quota exceeded: alice (sessions)", m.Title)
	require.Equal(t, "alice reached the sessions limit: 3 used of 3.", m.Text)

	m = Render(testEvent(t, "backup.completed", samples[schemas.EventBackupCompleted]))
	require.Equal(t, colorGood, m.Color)
	require.Contains(t, m.Text, "3.0 GiB in 1m35s")

	m = Render(testEvent(t, "user.updated", schemas.UserEventData{Username: "bob", Changed: []string{"deleted"}}))
	require.Equal(t, "User deleted: bob", m.Title)

	m = Render(testEvent(t, "node.unhealthy", samples[schemas.EventNodeUnhealthy]))
	require.Equal(t, "Node unhealthy: worker-1 — The node worker-1 is unhealthy: NotReady.", m.Summary)

	// a severity the payload reports that we do not know is a warning
	m = Render(testEvent(t, "security.alert", schemas.SecurityAlertData{AlertID: "x", Kind: "odd", Severity: "purple", Message: "?"}))
	require.Equal(t, SeverityWarning, m.Severity)
}

func TestRenderTestNoticeAndUnknown(t *testing.T) {
	t.Parallel()
	m := Render(Event{Type: EventTest})
	require.Equal(t, "Test notification from StreamSpace", m.Title)
	require.Equal(t, SeverityInfo, m.Severity)
	require.False(t, m.Time.IsZero())

	m = Render(testEvent(t, EventNotice, map[string]string{"title": "Webhook disabled: Production Alerts",
		"text": "It failed for 3 days; re-enable it after fixing the receiver."}))
	require.Equal(t, "Webhook disabled: Production Alerts", m.Title)
	require.Equal(t, SeverityWarning, m.Severity)
	require.Contains(t, m.Summary, "failed for 3 days")

	m = Render(testEvent(t, "widget.exploded", map[string]any{"widget_name": "w1", "pieces": 12, "nested": map[string]any{"a": 1}}))
	require.Equal(t, "StreamSpace event: widget.exploded", m.Title)
	require.Equal(t, []Field{{"Nested", `{"a":1}`}, {"Pieces", "12"}, {"Widget name", "w1"}}, m.Fields)

	// a catalogued type whose data does not fit its payload falls back too
	m = Render(Event{Type: "node.unhealthy", Data: []byte(`"not an object"`)})
	require.Equal(t, "StreamSpace event: node.unhealthy", m.Title)
	require.Equal(t, "Cluster node failure.", m.Text)
}
