package schemas

import (
	"reflect"
	"sort"
)

// EventType names one of the seed's 17 event types. It is the value webhooks
// subscribe to and the "event" field of every delivered payload.
type EventType string

// The catalogue of event types, in the seed's order.
const (
	EventSessionCreated      EventType = "session.created"
	EventSessionUpdated      EventType = "session.updated"
	EventSessionDeleted      EventType = "session.deleted"
	EventSessionHibernated   EventType = "session.hibernated"
	EventSessionAwakened     EventType = "session.awakened"
	EventUserCreated         EventType = "user.created"
	EventUserUpdated         EventType = "user.updated"
	EventQuotaExceeded       EventType = "quota.exceeded"
	EventPluginInstalled     EventType = "plugin.installed"
	EventTemplateCreated     EventType = "template.created"
	EventSecurityAlert       EventType = "security.alert"
	EventComplianceViolation EventType = "compliance.violation"
	EventScalingTriggered    EventType = "scaling.triggered"
	EventNodeUnhealthy       EventType = "node.unhealthy"
	EventBackupCompleted     EventType = "backup.completed"
	EventBackupFailed        EventType = "backup.failed"
	EventCostThreshold       EventType = "cost.threshold"
)

// EventSpec describes one catalogued event type.
type EventSpec struct {
	Type        EventType
	Description string
	// Payload is the Go type Publish accepts as the event's data.
	Payload reflect.Type
}

var catalogue = map[EventType]EventSpec{}

func register[T any](t EventType, description string) {
	catalogue[t] = EventSpec{Type: t, Description: description, Payload: reflect.TypeFor[T]()}
}

func init() {
	register[SessionEventData](EventSessionCreated, "New session started")
	register[SessionEventData](EventSessionUpdated, "Session configuration changed")
	register[SessionEventData](EventSessionDeleted, "Session terminated")
	register[SessionEventData](EventSessionHibernated, "Session auto-hibernated")
	register[SessionEventData](EventSessionAwakened, "Session resumed from hibernation")
	register[UserEventData](EventUserCreated, "New user account")
	register[UserEventData](EventUserUpdated, "User details changed")
	register[QuotaExceededData](EventQuotaExceeded, "Resource quota limit reached")
	register[PluginInstalledData](EventPluginInstalled, "New plugin activated")
	register[TemplateCreatedData](EventTemplateCreated, "New template added")
	register[SecurityAlertData](EventSecurityAlert, "Security event triggered")
	register[ComplianceViolationData](EventComplianceViolation, "Policy violation detected")
	register[ScalingTriggeredData](EventScalingTriggered, "Auto-scaling event")
	register[NodeUnhealthyData](EventNodeUnhealthy, "Cluster node failure")
	register[BackupCompletedData](EventBackupCompleted, "Backup operation finished")
	register[BackupFailedData](EventBackupFailed, "Backup operation failed")
	register[CostThresholdData](EventCostThreshold, "Cost limit approaching")
}

// LookupEvent returns the catalogue entry for t.
func LookupEvent(t EventType) (EventSpec, bool) {
	spec, ok := catalogue[t]
	return spec, ok
}

// EventCatalogue lists every event type, sorted by name.
func EventCatalogue() []EventSpec {
	out := make([]EventSpec, 0, len(catalogue))
	for _, spec := range catalogue {
		out = append(out, spec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}
