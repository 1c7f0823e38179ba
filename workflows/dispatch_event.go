package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
)

// DispatchEventInput identifies the event a DispatchEvent run handles. Only
// the ID and type travel through Temporal; activities load the payload from
// the outbox, so no event data or secret lands in workflow history.
type DispatchEventInput struct {
	EventID string
	Type    string
}

// DispatchEventResult is what a DispatchEvent run reports when it completes.
type DispatchEventResult struct {
	EventID string
	Type    string
}

var eventActs *activities.Events

// DispatchEvent is the per-event workflow the relay of earlier versions
// started once per event (event/<id>); the relay now starts DispatchEvents
// per batch. It stays registered, its commands unchanged, so runs open
// when a new version deploys finish on it (TestDispatchEventReplaysOldHistory
// replays a recorded history). It ends by recording the outcome on the
// event row.
//
// Replay safety of the deliveries step (added after the first release):
// every earlier DispatchEvent run recorded its only local activity,
// FinishEvent, in the workflow task that also completed the run, so no run
// still open has a completed task with a marker; an open run replays with
// this code as a fresh one. No GetVersion is needed (it would cost a search
// attribute upsert per event).
func DispatchEvent(ctx workflow.Context, in DispatchEventInput) (DispatchEventResult, error) {
	// Recording the outcome is one short UPDATE: a local activity runs it
	// inside the workflow task, halving the round trips to the Temporal
	// server per event (the relay benchmark measures the difference).
	lctx := outboxOptions(ctx)
	workflow.GetLogger(ctx).Info("dispatching event", "event_id", in.EventID, "type", in.Type)
	// Webhook and integration deliveries (deliver.go). If they cannot even
	// be planned (the database is gone for a day), the event is recorded as
	// failed; deliveries that were planned carry on in their own runs.
	finish := activities.FinishEventInput{EventID: in.EventID}
	derr := dispatchDeliveries(ctx, in)
	if derr != nil {
		finish.Failure = "deliveries: " + derr.Error()
	}
	err := workflow.ExecuteLocalActivity(lctx, eventActs.FinishEvent, finish).Get(ctx, nil)
	if err != nil {
		return DispatchEventResult{}, err
	}
	if derr != nil {
		return DispatchEventResult{}, derr
	}
	return DispatchEventResult{EventID: in.EventID, Type: in.Type}, nil
}
