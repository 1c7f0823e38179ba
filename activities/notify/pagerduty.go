package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/streamspace/enterprise/schemas"
)

const (
	pagerDutyDefaultURL = "https://events.pagerduty.com/v2/enqueue"
	pagerDutySummaryMax = 1024 // runes, the Events API's limit
	pagerDutyDedupMax   = 255
	dedupPrefix         = "streamspace/"
)

// PagerDuty event actions.
const (
	ActionTrigger = "trigger"
	ActionResolve = "resolve"
)

// PagerDutyPlan is how one event becomes an Events API v2 event: whether it
// opens (or updates) an alert or resolves one, the dedup key that groups
// repeats into one alert, and the alert's severity and origin.
type PagerDutyPlan struct {
	Action    string // trigger | resolve
	DedupKey  string
	Severity  string // critical | error | warning | info (ignored by resolve)
	Source    string
	Component string
	Group     string
}

// PlanPagerDuty decides the action and the dedup key of an event; the
// README ("Notifications") documents the same rules. Keys start with
// "streamspace/" so they never collide with another source's alerts on the
// same PagerDuty service.
//
//   - session.* → "session/<session_id>"; session.deleted resolves it (the
//     session is gone), the others trigger or update it (info).
//   - node.unhealthy → "node/<node_name>" (error). No catalogued event says a
//     node recovered, so the alert is resolved in PagerDuty (or by the
//     service's auto-resolve timeout).
//   - backup.failed → "backup/<target>" (error); backup.completed resolves
//     the same key: a good backup of the target clears the failure.
//   - quota.exceeded → "quota/<user>/<resource>" (warning).
//   - security.alert → "security/<alert_id>" (severity from the alert).
//   - compliance.violation → "compliance/<policy_id>/<resource>", or
//     "compliance/<violation_id>" without a resource (severity from it).
//   - cost.threshold → "cost/<scope>" (warning).
//   - anything else (users, plugins, templates, scaling, tests, notices) →
//     "delivery/<delivery id>": one alert per delivery, which retries of the
//     same delivery update instead of duplicating.
func PlanPagerDuty(ev Event, m Message) PagerDutyPlan {
	p := PagerDutyPlan{Action: ActionTrigger, Severity: m.Severity, Source: "streamspace"}
	var key string
	switch ev.Type {
	case string(schemas.EventSessionCreated), string(schemas.EventSessionUpdated), string(schemas.EventSessionDeleted),
		string(schemas.EventSessionHibernated), string(schemas.EventSessionAwakened):
		var d schemas.SessionEventData
		if json.Unmarshal(ev.Data, &d) == nil && d.SessionID != "" {
			key, p.Component, p.Group = "session/"+d.SessionID, "session", d.Template
			if d.Node != "" {
				p.Source = d.Node
			}
			if ev.Type == string(schemas.EventSessionDeleted) {
				p.Action = ActionResolve
			}
		}
	case string(schemas.EventNodeUnhealthy):
		var d schemas.NodeUnhealthyData
		if json.Unmarshal(ev.Data, &d) == nil && d.NodeName != "" {
			key, p.Component, p.Source = "node/"+d.NodeName, "node", d.NodeName
		}
	case string(schemas.EventBackupFailed), string(schemas.EventBackupCompleted):
		var d struct {
			Target string `json:"target"`
		}
		if json.Unmarshal(ev.Data, &d) == nil && d.Target != "" {
			key, p.Component, p.Source = "backup/"+d.Target, "backup", d.Target
			if ev.Type == string(schemas.EventBackupCompleted) {
				p.Action = ActionResolve
			}
		}
	case string(schemas.EventQuotaExceeded):
		var d schemas.QuotaExceededData
		if json.Unmarshal(ev.Data, &d) == nil && d.User != "" {
			key, p.Component, p.Group = "quota/"+d.User+"/"+d.Resource, "quota", d.Resource
		}
	case string(schemas.EventSecurityAlert):
		var d schemas.SecurityAlertData
		if json.Unmarshal(ev.Data, &d) == nil && d.AlertID != "" {
			key, p.Component, p.Group = "security/"+d.AlertID, "security", d.Kind
		}
	case string(schemas.EventComplianceViolation):
		var d schemas.ComplianceViolationData
		if json.Unmarshal(ev.Data, &d) == nil {
			switch {
			case d.PolicyID != "" && d.Resource != "":
				key = "compliance/" + d.PolicyID + "/" + d.Resource
			case d.ViolationID != "":
				key = "compliance/" + d.ViolationID
			}
			p.Component, p.Group = "compliance", d.Framework
		}
	case string(schemas.EventCostThreshold):
		var d schemas.CostThresholdData
		if json.Unmarshal(ev.Data, &d) == nil && d.Scope != "" {
			key, p.Component = "cost/"+d.Scope, "cost"
		}
	}
	if key == "" {
		key = "delivery/" + orElse(ev.DeliveryID, ev.ID)
	}
	p.DedupKey = dedupKey(key)
	return p
}

// dedupKey prefixes a key and keeps it within the API's 255 characters (a
// longer key becomes a hash of itself).
func dedupKey(k string) string {
	k = dedupPrefix + k
	if len(k) <= pagerDutyDedupMax {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return dedupPrefix + "sha256/" + hex.EncodeToString(sum[:])
}

// pagerDutyEvent is the Events API v2 event for ev.
func pagerDutyEvent(c PagerDutyConfig, ev Event, m Message) pagerduty.V2Event {
	p := PlanPagerDuty(ev, m)
	e := pagerduty.V2Event{RoutingKey: c.RoutingKey, Action: p.Action, DedupKey: p.DedupKey, Client: "StreamSpace"}
	if p.Action == ActionResolve {
		return e
	}
	sev := p.Severity
	if c.SeverityOverride != "" {
		sev = c.SeverityOverride
	}
	details := map[string]any{"event_type": ev.Type}
	if ev.ID != "" {
		details["event_id"] = ev.ID
	}
	if ev.DeliveryID != "" {
		details["delivery_id"] = ev.DeliveryID
	}
	if m.Text != "" {
		details["text"] = m.Text
	}
	for _, f := range m.Fields {
		details[f.Name] = f.Value
	}
	e.Payload = &pagerduty.V2Payload{
		Summary:   truncate(m.Summary, pagerDutySummaryMax),
		Source:    p.Source,
		Severity:  sev,
		Timestamp: m.Time.Format(time.RFC3339),
		Component: p.Component,
		Group:     p.Group,
		Class:     ev.Type,
		Details:   details,
	}
	return e
}

// sendPagerDuty enqueues the event through go-pagerduty's Events API v2
// client, pointed at d.PagerDutyEventsURL and using d.HTTP.
func (d Deps) sendPagerDuty(ctx context.Context, config json.RawMessage, ev Event) (Result, error) {
	c, err := decodeConfig[PagerDutyConfig](config)
	if err == nil {
		err = c.validate()
	}
	if err != nil {
		return Result{Permanent: true}, fmt.Errorf("pagerduty: %w", err)
	}
	red := newRedactor(c.RoutingKey, redacted)
	var res Result
	client := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(d.pagerDutyBase()))
	client.HTTPClient = d.httpClient(&res, red, nil)
	e := pagerDutyEvent(c, ev, Render(ev))
	_, err = client.ManageEventWithContext(ctx, &e)
	switch {
	case res.Status >= 200 && res.Status < 300:
		return res, nil // accepted (an unreadable success body is still success)
	case res.Status != 0:
		res.Permanent = permanentStatus(res.Status)
		return res, statusError(red, "pagerduty", &res, res.ResponseBody)
	case err != nil:
		return res, scrubbed(red, "pagerduty: ", err)
	}
	return res, nil
}

// pagerDutyBase is the endpoint go-pagerduty wants: it appends
// "/v2/enqueue" itself.
func (d Deps) pagerDutyBase() string {
	u := orElse(d.PagerDutyEventsURL, pagerDutyDefaultURL)
	u = strings.TrimSuffix(u, "/")
	return strings.TrimSuffix(u, "/v2/enqueue")
}
