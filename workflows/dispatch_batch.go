package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
)

// Batched dispatch. The relay claims up to RELAY_BATCH_SIZE pending events
// and starts one DispatchEvents run for all of them (ID events/<batch id>),
// recording that run's workflow and run ID on each event row in the
// transaction that claimed them. The run then does for the whole batch
// what DispatchEvent does for one event, in as few steps:
//
//  1. HoldEvents: which events this run holds (waits for the relay's
//     transaction; a batch whose relay rolled back holds none, and events
//     already finished by an earlier task of this run are not handled
//     again), one statement;
//  2. PlanEventDeliveries: every delivery of every held event, one
//     statement;
//  3. first attempts as local activities, up to firstAttemptsInFlight at
//     once, each of FirstAttemptParallelism deliveries;
//  4. a wake (signal-with-start) of the retry loop of each target with a
//     delivery that needs another attempt (TargetRetries; batch runs
//     started before the loops start a DeliverWithRetry run per delivery);
//  5. FinishEvents: every held event's outcome, one statement.
//
// A worker that dies part-way loses nothing: the next one replays the run,
// completed local activities answer from history, and the others run again
// — an attempt already recorded answers its outcome without a request, so
// a receiver gets each webhook-id again only for an attempt sent but not yet
// recorded when the worker died (the at-least-once every webhook system has).

// DispatchBatchInput is a batch the relay started: its events, with their
// types (the run's search attributes name them).
type DispatchBatchInput struct {
	BatchID string
	Events  []DispatchEventInput
	// IDPrefix is the deployment's workflow ID prefix (ids.go): the runs
	// this one starts carry it; "" in runs started before it existed.
	IDPrefix string
}

// DispatchBatchResult counts what a batch run did with its events.
type DispatchBatchResult struct {
	Handled int // held by this run and finished by it
	Skipped int // held by another run, or never committed to this one
	Failed  int // handled, but their deliveries could not be planned
}

// firstAttemptsInFlight is how many first-attempt local activities a batch
// run has running at once (each makes up to FirstAttemptParallelism
// requests in parallel).
const firstAttemptsInFlight = 4

// DispatchEvents handles a batch of events: see the comment above.
func DispatchEvents(ctx workflow.Context, in DispatchBatchInput) (DispatchBatchResult, error) {
	wid := workflow.GetInfo(ctx).WorkflowExecution.ID
	lctx := outboxOptions(ctx)
	ids := make([]string, len(in.Events))
	for i, e := range in.Events {
		ids[i] = e.EventID
	}
	var held []string
	err := workflow.ExecuteLocalActivity(lctx, eventActs.HoldEvents,
		activities.HoldEventsInput{WorkflowID: wid, EventIDs: ids}).Get(ctx, &held)
	if err != nil {
		return DispatchBatchResult{}, err
	}
	res := DispatchBatchResult{Skipped: len(in.Events) - len(held)}
	if len(held) == 0 {
		return res, nil
	}
	workflow.GetLogger(ctx).Info("dispatching events", "batch", in.BatchID, "events", len(held))

	// If the deliveries cannot even be planned (the database is gone for a
	// day), the events are recorded as failed; deliveries that were planned
	// carry on in their own runs.
	failure := ""
	if derr := dispatchBatchDeliveries(ctx, in.IDPrefix, in.BatchID, held); derr != nil {
		failure = "deliveries: " + derr.Error()
		res.Failed = len(held)
	}
	finish := activities.FinishEventsInput{WorkflowID: wid, Events: make([]activities.FinishEventInput, len(held))}
	for i, id := range held {
		finish.Events[i] = activities.FinishEventInput{EventID: id, Failure: failure}
	}
	var finished int
	if err := workflow.ExecuteLocalActivity(lctx, eventActs.FinishEvents, finish).Get(ctx, &finished); err != nil {
		return DispatchBatchResult{}, err
	}
	res.Handled = finished
	return res, nil
}

// targetRetriesVersion marks the batch runs that leave their retries to
// the targets' loops; runs started before it start a DeliverWithRetry
// child per delivery (testdata/dispatch_events_v1.json replays one).
const targetRetriesVersion = "target-retries"

// dispatchBatchDeliveries plans the deliveries of the held events, makes
// their first attempts and wakes the retry loops of the targets that have
// deliveries to retry.
func dispatchBatchDeliveries(ctx workflow.Context, prefix, batchID string, held []string) error {
	loops := workflow.GetVersion(ctx, targetRetriesVersion, workflow.DefaultVersion, 1) == 1
	var plan activities.PlanDeliveriesResult
	err := workflow.ExecuteLocalActivity(planOptions(ctx), deliveryActs.PlanEventDeliveries,
		activities.PlanEventsInput{EventIDs: held, RetryLoop: loops}).Get(ctx, &plan)
	if err != nil || len(plan.Deliveries) == 0 {
		return err
	}
	if !loops {
		retries, notices, ends := firstAttempts(ctx, "batch "+batchID, plan, firstAttemptsInFlight)
		return startRetries(ctx, prefix, retries, notices, ends)
	}
	// Deliveries to a target whose circuit is open are its loop's from the
	// first attempt: no request here to an endpoint known to be down.
	var toLoop []DeliverInput
	attempt := plan
	attempt.Deliveries = nil
	for _, p := range plan.Deliveries {
		if p.Held {
			toLoop = append(toLoop, deliverInput(p, p.Attempts+1, 1, 0))
		} else {
			attempt.Deliveries = append(attempt.Deliveries, p)
		}
	}
	retries, notices, ends := firstAttempts(ctx, "batch "+batchID, attempt, firstAttemptsInFlight)
	retries = append(retries, toLoop...)
	sendNotices(ctx, notices)
	for _, e := range ends {
		if err := endRuns(ctx, prefix, e.by, e.ids); err != nil {
			return err
		}
	}
	return wakeTargets(ctx, retries)
}

// wakeTargets wakes (or starts) the retry loop of each target that has a
// delivery in retries, in one local activity.
func wakeTargets(ctx workflow.Context, retries []DeliverInput) error {
	seen := map[activities.RetryTarget]bool{}
	var targets []activities.RetryTarget
	for _, r := range retries {
		t := activities.RetryTarget{WebhookID: r.WebhookID, IntegrationID: r.IntegrationID}
		if !seen[t] {
			seen[t] = true
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	return workflow.ExecuteLocalActivity(outboxStatementOptions(ctx, time.Minute), deliveryActs.WakeTargetRetries,
		targets).Get(ctx, nil)
}

// outboxOptions run the short outbox statements (hold, finish) as local
// activities: the outbox row outlives any database blip, so keep trying
// for a day.
func outboxOptions(ctx workflow.Context) workflow.Context {
	return outboxStatementOptions(ctx, 10*time.Second)
}

// outboxStatementOptions run a statement on the outbox or the deliveries
// as a local activity of at most timeout per try, retried for a day (the
// rows outlive any database blip); a malformed event id is not retried.
func outboxStatementOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{"BadEventID"},
		},
	})
}
