// Package workflows is the orchestration layer: deterministic Temporal
// workflows and the contract the rest of the system sees (task queue, workflow
// IDs, search attributes, signal/query/update names, input and result types).
// Workflow code never does I/O itself; it calls activities.
package workflows

import (
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// DefaultTaskQueue is the task queue StreamSpace workflows and activities run
// on unless TEMPORAL_TASK_QUEUE names another (to share a namespace between
// installations, or to isolate test runs).
const DefaultTaskQueue = "streamspace"

// DispatchEventID is the workflow ID of the DispatchEvent run for an event.
// Deriving it from the event ID makes a second dispatch of the same event a
// no-op: Temporal refuses a duplicate ID.
func DispatchEventID(eventID string) string { return "event/" + eventID }

// EventTypeAttr is the custom search attribute that tags each DispatchEvent
// run with its event type, so operators can filter runs in the Web UI with
// StreamSpaceEventType = "session.created".
var EventTypeAttr = temporal.NewSearchAttributeKeyKeyword("StreamSpaceEventType")

// SearchAttributes lists the custom search attributes the workflows use, with
// their index types; they must be registered in the namespace before use.
func SearchAttributes() map[string]enums.IndexedValueType {
	return map[string]enums.IndexedValueType{
		EventTypeAttr.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
		SessionIDAttr.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
		SessionUserAttr.GetName():   enums.INDEXED_VALUE_TYPE_KEYWORD,
		WebhookIDAttr.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
		IntegrationIDAttr.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
		DeliveryIDAttr.GetName():    enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
}
