package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
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

// DispatchEvent is the per-event workflow the outbox relay starts once per
// event. It is where reactions to an event (webhook deliveries, notifications,
// compliance checks) attach; it ends by recording the outcome on the event
// row, so the events API shows whether the event was fully handled.
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
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		// The outbox row outlives any database blip; keep trying for a day.
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
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
