package workflows

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/wfid"
	"github.com/streamspace/enterprise/schemas"
)

// Delivery of events to webhooks and integrations.
//
// DispatchEvent plans an event's deliveries (one local activity; nothing
// else happens for an event nobody subscribed to) and makes every first
// attempt at once, in local activities inside its own workflow task: the
// common case, a receiver that answers 2xx, costs no workflow start and no
// timer. A delivery that needs a retry waits in PostgreSQL for its
// target's retry loop (TargetRetries, deliver_target.go). Deliveries planned
// before the loops (and redeliveries of test sends) continue in a run of
// their own, DeliverWithRetry (ID delivery/<delivery id>), which waits on a
// durable timer and makes each further attempt with the regular activity
// AttemptDelivery, until success, a permanent failure or the retry policy's
// last attempt. A worker that dies while a delivery waits loses nothing:
// the timer is Temporal's, and the next worker makes the attempt, with the
// same delivery id (webhook-id).

var deliveryActs *activities.Deliveries

// Search attributes of delivery runs, next to StreamSpaceEventType, so an
// operator finds a delivery's run in the Web UI.
var (
	WebhookIDAttr     = temporal.NewSearchAttributeKeyKeyword("StreamSpaceWebhookID")
	IntegrationIDAttr = temporal.NewSearchAttributeKeyKeyword("StreamSpaceIntegrationID")
	DeliveryIDAttr    = temporal.NewSearchAttributeKeyKeyword("StreamSpaceDeliveryID")
)

// DeliveryWorkflowID is the workflow ID of a delivery's runs: its retries, its
// redeliveries (later runs of the same ID) and a test send.
func DeliveryWorkflowID(deliveryID string) string { return "delivery/" + deliveryID }

// SignalRedeliver asks a delivery's run to make an attempt now: a waiting
// retry stops waiting; a run that is making an attempt makes one more after
// it, even if it succeeded.
const SignalRedeliver = "redeliver"

// RetryDelay is the wait after a failed attempt: see schemas.RetryDelay, the
// one implementation (the activity that records an attempt computes its
// next_attempt_at with it; the workflow waits what the activity answered).
func RetryDelay(p schemas.WebhookRetryPolicy, attempt int, deliveryID uuid.UUID, retryAfter time.Duration) time.Duration {
	return schemas.RetryDelay(p, attempt, deliveryID, retryAfter)
}

// DeliverInput continues a delivery. Only ids travel: the activity loads the
// payload and the secrets.
type DeliverInput struct {
	DeliveryID string
	// EventType, WebhookID and IntegrationID tag the run (search
	// attributes); a redelivery started without them looks them up.
	EventType     string
	WebhookID     string
	IntegrationID string
	// NextAttempt is the number of the next attempt in the delivery's log;
	// 0 continues after the attempts already recorded (a redelivery).
	NextAttempt int
	// Try is the next attempt's place in this run's retry policy (1 = the
	// first, 0 means 1).
	Try int
	// Wait is how long to wait before the next attempt.
	Wait time.Duration
	// IDPrefix is the deployment's workflow ID prefix (ids.go); "" in runs
	// started before it existed.
	IDPrefix string
}

// DeliverResult is how a delivery run ended.
type DeliverResult struct {
	DeliveryID  string
	Outcome     string // succeeded | failed | gone
	LastAttempt int
}

// TestDeliveryInput is a test send: a new delivery id and its target
// (exactly one of the two ids).
type TestDeliveryInput struct {
	DeliveryID    string
	WebhookID     string
	IntegrationID string
}

// deliverySearchAttributes tags a delivery run.
func deliverySearchAttributes(deliveryID, eventType, webhookID, integrationID string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(deliveryAttributeUpdates(deliveryID, eventType, webhookID, integrationID)...)
}

func deliveryAttributeUpdates(deliveryID, eventType, webhookID, integrationID string) []temporal.SearchAttributeUpdate {
	updates := []temporal.SearchAttributeUpdate{DeliveryIDAttr.ValueSet(deliveryID)}
	if eventType != "" {
		updates = append(updates, EventTypeAttr.ValueSet(eventType))
	}
	if webhookID != "" {
		updates = append(updates, WebhookIDAttr.ValueSet(webhookID))
	}
	if integrationID != "" {
		updates = append(updates, IntegrationIDAttr.ValueSet(integrationID))
	}
	return updates
}

// attemptTimeout bounds one attempt activity: the request (WEBHOOK_TIMEOUT,
// at most a minute), the wait for the target's rate limit (10 s) and the
// database, with room to spare.
const attemptTimeout = 2 * time.Minute

// localDeliveryOptions run the first attempts and the test send: a few quick
// retries, for the database; a batch that still fails is handed to
// DeliverWithRetry runs, which retry durably.
func localDeliveryOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: attemptTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{"BadDeliveryID", "NotFound"},
		},
	})
}

// deliveryActivityOptions run the retries: an activity error means the
// database (or the worker) failed, not the receiver, so it is retried until
// it works, at most every five minutes.
func deliveryActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: attemptTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			NonRetryableErrorTypes: []string{"BadDeliveryID"},
		},
	})
}

// planOptions run the planning step: the outbox row outlives any database
// blip, so keep trying for a day.
func planOptions(ctx workflow.Context) workflow.Context {
	return outboxStatementOptions(ctx, 30*time.Second)
}

// dispatchDeliveries plans the event's deliveries, makes their first
// attempts, and starts a DeliverWithRetry run for each that needs another
// (the per-event DispatchEvent's step; its commands must stay as they were
// for the runs started before batched dispatch).
func dispatchDeliveries(ctx workflow.Context, in DispatchEventInput) error {
	var plan activities.PlanDeliveriesResult
	err := workflow.ExecuteLocalActivity(planOptions(ctx), deliveryActs.PlanDeliveries,
		activities.PlanDeliveriesInput{EventID: in.EventID}).Get(ctx, &plan)
	if err != nil || len(plan.Deliveries) == 0 {
		return err
	}
	retries, notices, ends := firstAttempts(ctx, in.EventID, plan, 1)
	return startRetries(ctx, "", retries, notices, ends) // runs of before the prefix
}

// firstAttempts makes the first attempt of every planned delivery, in local
// activities of plan.Parallelism deliveries each, at most inFlight of them
// at once, and answers the deliveries that need a retry run and the notices
// of targets that were disabled. ref names the event or batch in logs.
func firstAttempts(ctx workflow.Context, ref string, plan activities.PlanDeliveriesResult, inFlight int) (
	[]DeliverInput, []activities.Notice, []endRunsAfter) {
	logger := workflow.GetLogger(ctx)
	batch := max(plan.Parallelism, 1)
	var retries []DeliverInput
	var notices []activities.Notice
	var ends []endRunsAfter
	type chunk struct {
		planned []activities.PlannedDelivery
		future  workflow.Future
	}
	collect := func(c chunk) {
		var results []activities.AttemptResult
		err := c.future.Get(ctx, &results)
		if err != nil || len(results) != len(c.planned) {
			// The runs make these first attempts, with durable retries.
			logger.Warn("first attempts failed; handing them to delivery runs", "event_id", ref, "err", err)
			for _, p := range c.planned {
				retries = append(retries, deliverInput(p, 1, 1, 0))
			}
			return
		}
		for i, r := range results {
			switch r.Outcome {
			case activities.OutcomeRetrying:
				retries = append(retries, deliverInput(c.planned[i], r.Attempt+1, 2, r.Delay))
			case activities.OutcomeThrottled:
				retries = append(retries, deliverInput(c.planned[i], r.Attempt, 1, r.Delay))
			}
			if r.Disabled != nil {
				notices = append(notices, *r.Disabled)
			}
			if len(r.EndRuns) > 0 {
				ends = append(ends, endRunsAfter{by: r.DeliveryID, ids: r.EndRuns})
			}
		}
	}
	actx := localDeliveryOptions(ctx)
	var running []chunk
	for lo := 0; lo < len(plan.Deliveries); lo += batch {
		planned := plan.Deliveries[lo:min(lo+batch, len(plan.Deliveries))]
		items := make([]activities.AttemptInput, len(planned))
		for i, p := range planned {
			// An attempt already recorded (this run's task is replayed after
			// a crash) answers its recorded outcome without a request.
			items[i] = activities.AttemptInput{DeliveryID: p.DeliveryID, Attempt: 1, Try: 1}
		}
		running = append(running, chunk{planned, workflow.ExecuteLocalActivity(actx, deliveryActs.AttemptDeliveries,
			activities.AttemptsInput{Attempts: items})})
		if len(running) >= max(inFlight, 1) {
			collect(running[0])
			running = running[1:]
		}
	}
	for _, c := range running {
		collect(c)
	}
	return retries, notices, ends
}

// startRetries starts a DeliverWithRetry run for each delivery that needs
// one and sends the notices, then waits until each run has started: a
// parent that closes first could take a start still in flight with it.
func startRetries(ctx workflow.Context, prefix string, retries []DeliverInput, notices []activities.Notice, ends []endRunsAfter) error {
	starts := make([]workflow.ChildWorkflowFuture, len(retries))
	for i, r := range retries {
		r.IDPrefix = prefix
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            wfid.Join(prefix, DeliveryWorkflowID(r.DeliveryID)),
			ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes: deliverySearchAttributes(r.DeliveryID, r.EventType, r.WebhookID, r.IntegrationID),
		})
		starts[i] = workflow.ExecuteChildWorkflow(cctx, DeliverWithRetry, r)
	}
	sendNotices(ctx, notices)
	for _, e := range ends {
		if err := endRuns(ctx, prefix, e.by, e.ids); err != nil {
			return err
		}
	}
	for _, f := range starts {
		// A run that already exists (this event's task replayed, or a
		// redelivery) continues the delivery.
		err := f.GetChildWorkflowExecution().Get(ctx, nil)
		if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return err
		}
	}
	return nil
}

func deliverInput(p activities.PlannedDelivery, next, try int, wait time.Duration) DeliverInput {
	return DeliverInput{DeliveryID: p.DeliveryID, EventType: p.EventType, WebhookID: p.WebhookID,
		IntegrationID: p.IntegrationID, NextAttempt: next, Try: try, Wait: wait}
}

// sendNotices tells admins about targets that were disabled: best effort,
// one local activity each, in parallel.
func sendNotices(ctx workflow.Context, notices []activities.Notice) {
	if len(notices) == 0 {
		return
	}
	nctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	futures := make([]workflow.Future, len(notices))
	for i, n := range notices {
		futures[i] = workflow.ExecuteLocalActivity(nctx, deliveryActs.NotifyAdmins, n)
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("notice to admins failed", "title", notices[i].Title, "err", err)
		}
	}
}

// DeliverWithRetry makes a delivery's further attempts: it waits, attempts,
// and repeats while the attempt answers "retrying" (the activity applies the
// retry policy and says how long to wait). The redeliver signal cuts a wait
// short, and one that arrives during the last attempt asks for one more.
func DeliverWithRetry(ctx workflow.Context, in DeliverInput) (DeliverResult, error) {
	redeliver := workflow.GetSignalChannel(ctx, SignalRedeliver)
	res := DeliverResult{DeliveryID: in.DeliveryID}
	if in.NextAttempt <= 0 {
		var p activities.DeliveryProgressResult
		err := workflow.ExecuteLocalActivity(localDeliveryOptions(ctx), deliveryActs.DeliveryProgress,
			in.DeliveryID).Get(ctx, &p)
		if err != nil {
			return res, err
		}
		if !p.Found {
			res.Outcome = activities.OutcomeGone
			return res, nil
		}
		in.NextAttempt = p.Attempts + 1
		if in.EventType == "" {
			in.EventType, in.WebhookID, in.IntegrationID = p.EventType, p.WebhookID, p.IntegrationID
			err := workflow.UpsertTypedSearchAttributes(ctx,
				deliveryAttributeUpdates(in.DeliveryID, p.EventType, p.WebhookID, p.IntegrationID)...)
			if err != nil {
				return res, err
			}
		}
	}
	attempt, try, wait := in.NextAttempt, max(in.Try, 1), in.Wait
	actx := deliveryActivityOptions(ctx)
	for {
		if wait > 0 {
			waitOrRedeliver(ctx, wait, redeliver)
		}
		if err := ctx.Err(); err != nil {
			// Cancelled (its target was disabled or deleted: the delivery
			// is recorded cancelled): the run ends, cancelled.
			return res, err
		}
		for redeliver.ReceiveAsync(nil) { // this attempt answers them
		}
		var r activities.AttemptResult
		err := workflow.ExecuteActivity(actx, deliveryActs.AttemptDelivery,
			activities.AttemptInput{DeliveryID: in.DeliveryID, Attempt: attempt, Try: try}).Get(ctx, &r)
		if err != nil {
			return res, err
		}
		res.LastAttempt = attempt
		if r.Disabled != nil {
			sendNotices(ctx, []activities.Notice{*r.Disabled})
		}
		if err := endRuns(ctx, in.IDPrefix, in.DeliveryID, r.EndRuns); err != nil {
			return res, err
		}
		switch r.Outcome {
		case activities.OutcomeRetrying:
			attempt, try, wait = attempt+1, try+1, r.Delay
		case activities.OutcomeThrottled:
			wait = r.Delay
		default:
			res.Outcome = r.Outcome
			if r.Outcome == activities.OutcomeGone || !redeliver.ReceiveAsync(nil) {
				return res, nil
			}
			attempt, try, wait = attempt+1, 1, 0 // redelivered meanwhile
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := in
			next.NextAttempt, next.Try, next.Wait = attempt, try, wait
			return res, workflow.NewContinueAsNewError(ctx, DeliverWithRetry, next)
		}
	}
}

// waitOrRedeliver sleeps for d on a durable timer, or until a redeliver
// signal comes.
func waitOrRedeliver(ctx workflow.Context, d time.Duration, redeliver workflow.ReceiveChannel) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) {})
	sel.AddReceive(redeliver, func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
}

// TestDelivery makes a test send: it creates the test delivery and makes
// exactly one attempt, without retry or rate limit, and answers the attempt
// as recorded. A target that does not exist fails the run with a
// non-retryable "NotFound" error.
func TestDelivery(ctx workflow.Context, in TestDeliveryInput) (schemas.DeliveryAttempt, error) {
	lctx := localDeliveryOptions(ctx)
	err := workflow.ExecuteLocalActivity(lctx, deliveryActs.CreateTestDelivery, activities.TestDeliveryInput{
		DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, IntegrationID: in.IntegrationID}).Get(ctx, nil)
	if err != nil {
		return schemas.DeliveryAttempt{}, err
	}
	var r activities.AttemptResult
	err = workflow.ExecuteLocalActivity(lctx, deliveryActs.AttemptDelivery, activities.AttemptInput{
		DeliveryID: in.DeliveryID, Attempt: 1, Try: 1, Record: true}).Get(ctx, &r)
	if err != nil {
		return schemas.DeliveryAttempt{}, err
	}
	if r.Record == nil {
		return schemas.DeliveryAttempt{}, temporal.NewNonRetryableApplicationError(
			"the test delivery's target is gone", "NotFound", nil)
	}
	return *r.Record, nil
}
