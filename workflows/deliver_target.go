package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/breaker"
)

// Retries per target. A delivery whose first attempt failed waits in
// PostgreSQL (state retrying, next_attempt_at), not in a run of its own: one
// TargetRetries run per webhook or integration (ID retries/webhook/<id> or
// retries/integration/<id>, on the events task queue) takes its due
// deliveries, up to retryBatch at a time, attempts them in one activity, and
// sleeps on a durable timer until the next is due. After
// breaker.DefaultThreshold failed attempts in a row its circuit opens: it
// then makes one attempt (a probe) per probe interval, 30 s doubling to
// 10 min, and the first success closes it. A dead endpoint so costs one
// run, one timer and one request per interval, however many deliveries wait
// for it; other targets and the session queue never see it. The loop
// records its circuit on the target's row (circuit_open): while it is open,
// batch runs make no first attempt to the target and leave its new
// deliveries to the loop.
//
// The loop ends when nothing waits for it; a batch run that leaves a
// delivery to it, and a redelivery, wake it with SignalWakeRetries
// (signal-with-start). Disabling or deleting the target cancels its
// deliveries and the run.

// SignalWakeRetries tells a target's loop to look at its deliveries again
// (one is due sooner than it thought, or it did not run).
const SignalWakeRetries = "wake"

// QueryRetryLoop answers a loop's RetryLoopState (Web UI: Queries).
const QueryRetryLoop = "state"

// retryBatch is the most attempts a loop makes in one round (one
// activity), and retryRoundsPerRun the rounds before it continues as new.
const (
	retryBatch        = 50
	retryRoundsPerRun = 500
)

// TargetRetriesWorkflowID is the workflow ID of a target's retry loop.
func TargetRetriesWorkflowID(t activities.RetryTarget) string {
	if t.WebhookID != "" {
		return "retries/webhook/" + t.WebhookID
	}
	return "retries/integration/" + t.IntegrationID
}

// TargetRetriesInput starts (or continues) a target's loop.
type TargetRetriesInput struct {
	Target  activities.RetryTarget
	Circuit breaker.State // carried across continue-as-new
	// IDPrefix is the deployment's workflow ID prefix (ids.go); "" in runs
	// started before it existed.
	IDPrefix string
}

// RetryLoopState is what a loop reports to QueryRetryLoop.
type RetryLoopState struct {
	Circuit   breaker.State
	Waiting   int        // deliveries waiting for it at its last look
	NextAt    *time.Time // when it next looks (nil: when woken)
	Attempted int        // attempts made by this run
}

// TargetRetries is a target's retry loop: see the comment above.
func TargetRetries(ctx workflow.Context, in TargetRetriesInput) error {
	logger := workflow.GetLogger(ctx)
	wake := workflow.GetSignalChannel(ctx, SignalWakeRetries)
	cfg := breaker.Config{}
	st := RetryLoopState{Circuit: in.Circuit}
	if err := workflow.SetQueryHandler(ctx, QueryRetryLoop, func() (RetryLoopState, error) { return st, nil }); err != nil {
		return err
	}
	lctx := outboxStatementOptions(ctx, 10*time.Second)
	actx := deliveryActivityOptions(ctx)
	for round := 0; ; round++ {
		if round >= retryRoundsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// The next run looks at the deliveries afresh: no wake is lost.
			return workflow.NewContinueAsNewError(ctx, TargetRetries,
				TargetRetriesInput{Target: in.Target, Circuit: st.Circuit, IDPrefix: in.IDPrefix})
		}
		for wake.ReceiveAsync(nil) { // this look answers them
		}
		limit := st.Circuit.Allow(workflow.Now(ctx), retryBatch)
		var due activities.DueRetriesResult
		err := workflow.ExecuteLocalActivity(lctx, deliveryActs.DueRetries,
			activities.DueRetriesInput{Target: in.Target, Limit: max(limit, 1)}).Get(ctx, &due)
		if err != nil {
			return err
		}
		st.Waiting = due.Waiting
		// Batch runs read the circuit from the target's row: keep it true
		// (a loop that ends leaves it closed).
		if open := st.Circuit.Open && due.Waiting > 0; !due.Gone && open != due.CircuitOpen {
			err := workflow.ExecuteLocalActivity(lctx, deliveryActs.SetCircuit,
				activities.SetCircuitInput{Target: in.Target, Open: open}).Get(ctx, nil)
			if err != nil {
				return err
			}
		}
		if due.Gone || due.Waiting == 0 {
			if wake.ReceiveAsync(nil) {
				continue // a delivery was left to it meanwhile
			}
			return nil
		}
		if limit == 0 || len(due.Attempts) == 0 {
			next := due.NextAt
			if limit == 0 { // the circuit is open: wait for the probe
				next = &st.Circuit.NextProbe
			}
			st.NextAt = next
			if err := waitUntilOrWoken(ctx, next, wake); err != nil {
				return err
			}
			continue
		}
		attempts := due.Attempts[:min(len(due.Attempts), limit)]
		var results []activities.AttemptResult
		err = workflow.ExecuteActivity(actx, deliveryActs.AttemptDeliveries,
			activities.AttemptsInput{Attempts: attempts}).Get(ctx, &results)
		if err != nil {
			return err
		}
		st.Attempted += len(attempts)
		var r breaker.Round
		var notices []activities.Notice
		for _, res := range results {
			switch res.Outcome {
			case activities.OutcomeSucceeded:
				r.Succeeded++
			case activities.OutcomeRetrying, activities.OutcomeFailed:
				r.Failed++
			}
			if res.Disabled != nil {
				notices = append(notices, *res.Disabled)
			}
			if err := endRuns(ctx, in.IDPrefix, res.DeliveryID, res.EndRuns); err != nil {
				return err
			}
		}
		sendNotices(ctx, notices)
		was := st.Circuit.Open
		st.Circuit = cfg.Record(st.Circuit, r, workflow.Now(ctx))
		switch {
		case st.Circuit.Open && !was:
			logger.Warn("circuit opened: probing one delivery at a time", "target", TargetRetriesWorkflowID(in.Target),
				"next_probe", st.Circuit.NextProbe)
		case was && !st.Circuit.Open:
			logger.Info("circuit closed: the target answers again", "target", TargetRetriesWorkflowID(in.Target))
		}
	}
}

// waitUntilOrWoken sleeps on a durable timer until at (nil: until woken),
// or until a wake signal comes; it answers the context's error when the run
// is cancelled (its target was disabled or deleted).
func waitUntilOrWoken(ctx workflow.Context, at *time.Time, wake workflow.ReceiveChannel) error {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	if at != nil {
		if d := at.Sub(workflow.Now(ctx)); d > 0 {
			sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) {})
		} else {
			return ctx.Err()
		}
	}
	sel.AddReceive(wake, func(workflow.ReceiveChannel, bool) {})
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
	return ctx.Err()
}
