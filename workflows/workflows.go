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

// EventsTaskQueue is the task queue of the event pipeline next to base:
// the batch runs, their first attempts and the delivery retries. Sessions,
// grants and everything else a user waits for stay on base, so a backlog of
// deliveries never delays them (each queue has its own worker slots).
func EventsTaskQueue(base string) string { return base + "-events" }

// DispatchBatchID is the workflow ID of a batch's DispatchEvents run.
func DispatchBatchID(batchID string) string { return "events/" + batchID }

// EventTypeAttr is the custom search attribute that tags each delivery run
// (and each DispatchEvent run an earlier version started) with its event
// type, so operators can filter runs in the Web UI with
// StreamSpaceEventType = "session.created".
var EventTypeAttr = temporal.NewSearchAttributeKeyKeyword("StreamSpaceEventType")

// EventTypesAttr tags each DispatchEvents (batch) run with the types of its
// events: StreamSpaceEventTypes = "session.created" finds the runs that
// carried one. The run of a given event is named on its row (GET
// /api/events/{id}: workflow_id and run_id); the batch's event ids are not a
// search attribute, as Temporal caps a value at 2 KB (about 50 ids).
var EventTypesAttr = temporal.NewSearchAttributeKeyKeywordList("StreamSpaceEventTypes")

// SearchAttributes lists the custom search attributes the workflows use, with
// their index types; they must be registered in the namespace before use.
func SearchAttributes() map[string]enums.IndexedValueType {
	return map[string]enums.IndexedValueType{
		EventTypeAttr.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
		EventTypesAttr.GetName():    enums.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		SessionIDAttr.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
		SessionUserAttr.GetName():   enums.INDEXED_VALUE_TYPE_KEYWORD,
		WebhookIDAttr.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
		IntegrationIDAttr.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
		DeliveryIDAttr.GetName():    enums.INDEXED_VALUE_TYPE_KEYWORD,
	}
}
