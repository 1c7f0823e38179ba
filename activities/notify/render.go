package notify

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/streamspace/enterprise/schemas"
)

// Severities, in PagerDuty's words (the strictest vocabulary of the five
// channels); every Message has one.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Pseudo event types a Sender also renders: a test send, and a notice to
// admins (e.g. "webhook X was disabled") whose Data is {"title","text"} and
// optionally "severity".
const (
	EventTest   = "test"
	EventNotice = "notice"
)

// Message is an event rendered for people: the same content for every
// channel, which each Sender lays out in its own format. It never holds a
// link.
type Message struct {
	Title    string
	Text     string  // one or two sentences; may be empty
	Fields   []Field // short facts, in display order; empty values are dropped
	Severity string  // critical | error | warning | info
	Color    int     // 0xRRGGBB: the severity's colour, green for good news
	Summary  string  // one line: Title, and Text when there is one
	Type     string  // the event type
	Time     time.Time
}

// Field is one labelled fact of a Message.
type Field struct {
	Name  string
	Value string
}

// Colours of the severities (and of good news such as a completed backup).
const (
	colorCritical = 0x8B0000
	colorError    = 0xE01E5A
	colorWarning  = 0xECB22E
	colorInfo     = 0x1D9BD1
	colorGood     = 0x2EB67D
)

func severityColor(sev string) int {
	switch sev {
	case SeverityCritical:
		return colorCritical
	case SeverityError:
		return colorError
	case SeverityWarning:
		return colorWarning
	default:
		return colorInfo
	}
}

// renderer turns one event type's data into a Message (Title, Text, Fields,
// Severity and optionally Color; Render fills the rest).
type renderer func(data json.RawMessage) (Message, error)

// typed decodes the data into the type's catalogued payload first.
func typed[T any](fn func(T) Message) renderer {
	return func(data json.RawMessage) (Message, error) {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return Message{}, err
		}
		return fn(v), nil
	}
}

// renderers is the one table of how each event type reads.
var renderers = map[string]renderer{
	string(schemas.EventSessionCreated): typed(func(d schemas.SessionEventData) Message {
		return sessionMessage("Session started", fmt.Sprintf("%s started a %s session.", orElse(d.User, "A user"), orElse(d.Template, "new")), d)
	}),
	string(schemas.EventSessionUpdated): typed(func(d schemas.SessionEventData) Message {
		return sessionMessage("Session updated", fmt.Sprintf("%s's %s session changed.", orElse(d.User, "A user"), orElse(d.Template, "unnamed")), d)
	}),
	string(schemas.EventSessionDeleted): typed(func(d schemas.SessionEventData) Message {
		return sessionMessage("Session terminated", fmt.Sprintf("%s's %s session ended.", orElse(d.User, "A user"), orElse(d.Template, "unnamed")), d)
	}),
	string(schemas.EventSessionHibernated): typed(func(d schemas.SessionEventData) Message {
		return sessionMessage("Session hibernated", fmt.Sprintf("%s's %s session was hibernated.", orElse(d.User, "A user"), orElse(d.Template, "unnamed")), d)
	}),
	string(schemas.EventSessionAwakened): typed(func(d schemas.SessionEventData) Message {
		return sessionMessage("Session resumed", fmt.Sprintf("%s's %s session resumed from hibernation.", orElse(d.User, "A user"), orElse(d.Template, "unnamed")), d)
	}),
	string(schemas.EventUserCreated): typed(func(d schemas.UserEventData) Message {
		return Message{Title: "New user: " + d.Username, Text: fmt.Sprintf("The account %s was created.", d.Username),
			Fields: []Field{{"User", d.Username}, {"Email", d.Email}, {"Role", d.Role}}}
	}),
	string(schemas.EventUserUpdated): typed(func(d schemas.UserEventData) Message {
		if slices.Contains(d.Changed, "deleted") {
			return Message{Title: "User deleted: " + d.Username, Text: fmt.Sprintf("The account %s was deleted.", d.Username),
				Fields: []Field{{"User", d.Username}, {"Email", d.Email}}}
		}
		text := fmt.Sprintf("The account %s was changed.", d.Username)
		if len(d.Changed) > 0 {
			text = fmt.Sprintf("The account %s changed: %s.", d.Username, strings.Join(d.Changed, ", "))
		}
		return Message{Title: "User updated: " + d.Username, Text: text,
			Fields: []Field{{"User", d.Username}, {"Email", d.Email}, {"Role", d.Role}}}
	}),
	string(schemas.EventQuotaExceeded): typed(func(d schemas.QuotaExceededData) Message {
		return Message{Title: fmt.Sprintf("Quota exceeded: %s (%s)", d.User, d.Resource), Severity: SeverityWarning,
			Text:   fmt.Sprintf("%s reached the %s limit: %s used of %s.", d.User, d.Resource, number(d.Used), number(d.Limit)),
			Fields: []Field{{"User", d.User}, {"Resource", d.Resource}, {"Used", number(d.Used)}, {"Limit", number(d.Limit)}}}
	}),
	string(schemas.EventPluginInstalled): typed(func(d schemas.PluginInstalledData) Message {
		return Message{Title: strings.TrimSpace("Plugin installed: " + d.Plugin + " " + d.Version),
			Text:   fmt.Sprintf("The plugin %s was activated.", d.Plugin),
			Fields: []Field{{"Plugin", d.Plugin}, {"Version", d.Version}, {"Installed by", d.InstalledBy}}}
	}),
	string(schemas.EventTemplateCreated): typed(func(d schemas.TemplateCreatedData) Message {
		name := orElse(d.DisplayName, d.TemplateID)
		return Message{Title: "Template added: " + name, Text: fmt.Sprintf("The template %s is available.", name),
			Fields: []Field{{"Template", d.TemplateID}, {"Category", d.Category}, {"Created by", d.CreatedBy}}}
	}),
	string(schemas.EventSecurityAlert): typed(func(d schemas.SecurityAlertData) Message {
		return Message{Title: "Security alert: " + orElse(d.Kind, "unspecified"), Text: d.Message,
			Severity: reportedSeverity(d.Severity),
			Fields: []Field{{"Severity", d.Severity}, {"Kind", d.Kind}, {"User", d.UserID},
				{"IP address", d.IPAddress}, {"Alert", d.AlertID}}}
	}),
	string(schemas.EventComplianceViolation): typed(func(d schemas.ComplianceViolationData) Message {
		return Message{Title: "Compliance violation: " + orElse(d.PolicyID, d.ViolationID), Text: d.Description,
			Severity: reportedSeverity(d.Severity),
			Fields: []Field{{"Severity", d.Severity}, {"Policy", d.PolicyID}, {"Framework", d.Framework},
				{"Resource", d.Resource}, {"Violation", d.ViolationID}}}
	}),
	string(schemas.EventScalingTriggered): typed(func(d schemas.ScalingTriggeredData) Message {
		m := Message{Title: fmt.Sprintf("Scaling %s: %d → %d replicas", orElse(d.Action, "triggered"), d.FromReplicas, d.ToReplicas),
			Text:   d.Reason,
			Fields: []Field{{"Action", d.Action}, {"Replicas", fmt.Sprintf("%d → %d", d.FromReplicas, d.ToReplicas)}, {"Policy", d.PolicyID}}}
		if d.Metric != "" {
			m.Fields = append(m.Fields, Field{"Metric", d.Metric + " = " + number(d.Value)})
		}
		return m
	}),
	string(schemas.EventNodeUnhealthy): typed(func(d schemas.NodeUnhealthyData) Message {
		return Message{Title: "Node unhealthy: " + d.NodeName, Severity: SeverityError,
			Text:   fmt.Sprintf("The node %s is unhealthy: %s.", d.NodeName, orElse(d.Reason, "no reason given")),
			Fields: []Field{{"Node", d.NodeName}, {"Reason", d.Reason}, {"Conditions", strings.Join(d.Conditions, ", ")}}}
	}),
	string(schemas.EventBackupCompleted): typed(func(d schemas.BackupCompletedData) Message {
		return Message{Title: "Backup completed: " + d.Target, Color: colorGood,
			Text: fmt.Sprintf("The backup of %s finished (%s in %s).", d.Target, bytesText(d.SizeBytes), d.Duration.Round(time.Second)),
			Fields: []Field{{"Target", d.Target}, {"Size", bytesText(d.SizeBytes)},
				{"Duration", d.Duration.Round(time.Second).String()}, {"Backup", d.BackupID}}}
	}),
	string(schemas.EventBackupFailed): typed(func(d schemas.BackupFailedData) Message {
		return Message{Title: "Backup failed: " + d.Target, Severity: SeverityError,
			Text:   fmt.Sprintf("The backup of %s failed: %s", d.Target, orElse(d.Error, "no error given")),
			Fields: []Field{{"Target", d.Target}, {"Error", d.Error}, {"Backup", d.BackupID}}}
	}),
	string(schemas.EventCostThreshold): typed(func(d schemas.CostThresholdData) Message {
		return Message{Title: "Cost threshold reached: " + d.Scope, Severity: SeverityWarning,
			Text: fmt.Sprintf("Spending for %s is %s %s, past the threshold of %s %s.", d.Scope, number(d.Current), d.Currency,
				number(d.Threshold), d.Currency),
			Fields: []Field{{"Scope", d.Scope}, {"Current", strings.TrimSpace(number(d.Current) + " " + d.Currency)},
				{"Threshold", strings.TrimSpace(number(d.Threshold) + " " + d.Currency)}}}
	}),
	EventTest: func(json.RawMessage) (Message, error) {
		return Message{Title: "Test notification from StreamSpace",
			Text: "If you can read this, the integration works."}, nil
	},
	EventNotice: func(data json.RawMessage) (Message, error) {
		var d struct {
			Title    string `json:"title"`
			Text     string `json:"text"`
			Severity string `json:"severity"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return Message{}, err
		}
		sev := d.Severity
		if !ValidSeverity(sev) {
			sev = SeverityWarning
		}
		return Message{Title: orElse(d.Title, "StreamSpace notice"), Text: d.Text, Severity: sev}, nil
	},
}

func sessionMessage(title, text string, d schemas.SessionEventData) Message {
	m := Message{Title: title + ": " + d.SessionID, Text: text,
		Fields: []Field{{"Session", d.SessionID}, {"User", d.User}, {"Template", d.Template}, {"State", d.State},
			{"Node", d.Node}, {"Reason", d.Reason}}}
	return m
}

// Render turns an event into a Message: the type's renderer, or for a type
// it does not know (or data it cannot read) a generic message listing the
// data's top-level values.
func Render(ev Event) Message {
	var m Message
	fn, ok := renderers[ev.Type]
	if ok {
		var err error
		if m, err = fn(ev.Data); err != nil {
			ok = false
		}
	}
	if !ok {
		m = generic(ev)
	}
	m.Type = ev.Type
	m.Time = ev.OccurredAt
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	m.Time = m.Time.UTC()
	if m.Severity == "" {
		m.Severity = SeverityInfo
	}
	if m.Color == 0 {
		m.Color = severityColor(m.Severity)
	}
	m.Title = oneLine(m.Title)
	m.Text = strings.TrimSpace(m.Text)
	fields := m.Fields[:0:0]
	for _, f := range m.Fields {
		if f.Value = oneLine(f.Value); f.Value != "" {
			fields = append(fields, f)
		}
	}
	m.Fields = fields
	m.Summary = m.Title
	if m.Text != "" {
		m.Summary += " — " + oneLine(m.Text)
	}
	return m
}

// generic renders an event of a type without a renderer.
func generic(ev Event) Message {
	title := "StreamSpace event"
	if ev.Type != "" {
		title = "StreamSpace event: " + ev.Type
	}
	m := Message{Title: title}
	if spec, ok := schemas.LookupEvent(schemas.EventType(ev.Type)); ok {
		m.Text = spec.Description + "."
	}
	var obj map[string]any
	if json.Unmarshal(ev.Data, &obj) != nil {
		if len(ev.Data) > 0 && string(ev.Data) != "null" {
			m.Fields = append(m.Fields, Field{"Data", truncate(string(ev.Data), 1024)})
		}
		return m
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var v string
		switch x := obj[k].(type) {
		case string:
			v = x
		case float64:
			v = number(x)
		case bool:
			v = strconv.FormatBool(x)
		case nil:
			continue
		default:
			b, _ := json.Marshal(x)
			v = string(b)
		}
		m.Fields = append(m.Fields, Field{fieldName(k), truncate(v, 1024)})
	}
	return m
}

// fieldName turns a JSON key into a label: "node_name" → "Node name".
func fieldName(k string) string {
	s := strings.ReplaceAll(k, "_", " ")
	if s == "" {
		return k
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

// reportedSeverity maps a severity a payload reports (security alerts,
// compliance violations: low|medium|high|critical, or PagerDuty's words) to
// a Message severity; anything else is a warning.
func reportedSeverity(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "fatal", "emergency":
		return SeverityCritical
	case "high", "error", "major":
		return SeverityError
	case "medium", "moderate", "warning", "warn":
		return SeverityWarning
	case "low", "info", "informational", "minor":
		return SeverityInfo
	}
	return SeverityWarning
}

// ValidSeverity reports whether s is one of the four severities.
func ValidSeverity(s string) bool {
	switch s {
	case SeverityCritical, SeverityError, SeverityWarning, SeverityInfo:
		return true
	}
	return false
}

func orElse(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// oneLine collapses whitespace (newlines included) to single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate shortens s to at most max runes, ending in "…" when cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max <= 1 {
		return "…"
	}
	runes := []rune(s)
	return string(runes[:max-1]) + "…"
}
