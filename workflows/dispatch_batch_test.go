package workflows

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/streamspace/enterprise/activities"
)

const batchRunID = "events/0190c1a2-0000-7000-8000-0000000000b1"

func batchEvent(n int) string { return fmt.Sprintf("0190c1a2-0000-7000-8000-%012d", n) }

func batchInput(n int) DispatchBatchInput {
	in := DispatchBatchInput{BatchID: "0190c1a2-0000-7000-8000-0000000000b1"}
	for i := range n {
		in.Events = append(in.Events, DispatchEventInput{EventID: batchEvent(i), Type: "session.created"})
	}
	return in
}

func batchEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: batchRunID})
	env.RegisterWorkflow(DeliverWithRetry)
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

// holds answers held for HoldEvents, checking the run asks about its own
// workflow ID and every event of the batch.
func holds(t *testing.T, env *testsuite.TestWorkflowEnvironment, in DispatchBatchInput, held []string) {
	env.OnActivity(eventActs.HoldEvents, mock.Anything, mock.Anything).Return(
		func(_ context.Context, got activities.HoldEventsInput) ([]string, error) {
			require.Equal(t, batchRunID, got.WorkflowID)
			require.Len(t, got.EventIDs, len(in.Events))
			return held, nil
		}).Once()
}

// finishes records what FinishEvents was asked to record.
func finishes(env *testsuite.TestWorkflowEnvironment) *activities.FinishEventsInput {
	var got activities.FinishEventsInput
	env.OnActivity(eventActs.FinishEvents, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinishEventsInput) (int, error) {
			got = in
			return len(in.Events), nil
		}).Once()
	return &got
}

func TestDispatchEventsHoldingNone(t *testing.T) {
	env := batchEnv(t)
	in := batchInput(3)
	holds(t, env, in, nil)
	var las []string
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		las = append(las, info.ActivityType.Name)
	})
	env.ExecuteWorkflow(DispatchEvents, in)
	require.NoError(t, env.GetWorkflowError())
	var res DispatchBatchResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, DispatchBatchResult{Skipped: 3}, res)
	require.Equal(t, []string{"HoldEvents"}, las, "a run whose relay rolled back does nothing else")
}

func TestDispatchEventsHandlesHeldEvents(t *testing.T) {
	env := batchEnv(t)
	in := batchInput(3)
	held := []string{batchEvent(0), batchEvent(2)}
	holds(t, env, in, held)

	// Ten deliveries, three per attempt activity: four activities, of which
	// at most firstAttemptsInFlight run at once.
	plan := activities.PlanDeliveriesResult{Parallelism: 3}
	for i := range 10 {
		plan.Deliveries = append(plan.Deliveries, activities.PlannedDelivery{DeliveryID: deliveryID(i),
			EventID: held[i%2], EventType: "session.created", WebhookID: dHook})
	}
	env.OnActivity(deliveryActs.PlanEventDeliveries, mock.Anything,
		activities.PlanEventsInput{EventIDs: held, RetryLoop: true}).Return(plan, nil).Once()
	var mu sync.Mutex
	attempted := map[string]int{}
	largest := 0
	env.OnActivity(deliveryActs.AttemptDeliveries, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttemptsInput) ([]activities.AttemptResult, error) {
			out := make([]activities.AttemptResult, len(in.Attempts))
			mu.Lock()
			defer mu.Unlock()
			for i, a := range in.Attempts {
				attempted[a.DeliveryID] += a.Attempt // 1 each: first attempts
				out[i] = activities.AttemptResult{DeliveryID: a.DeliveryID, Attempt: 1, Outcome: activities.OutcomeSucceeded}
				if a.DeliveryID == deliveryID(7) {
					out[i].Outcome, out[i].Delay = activities.OutcomeRetrying, time.Minute
				}
			}
			largest = max(largest, len(in.Attempts))
			return out, nil
		}).Times(4)
	var woken []activities.RetryTarget
	env.OnActivity(deliveryActs.WakeTargetRetries, mock.Anything, mock.Anything).Return(
		func(_ context.Context, targets []activities.RetryTarget) error { woken = targets; return nil }).Once()
	children := recordChildren(env)
	finish := finishes(env)

	env.ExecuteWorkflow(DispatchEvents, in)
	require.NoError(t, env.GetWorkflowError())
	var res DispatchBatchResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, DispatchBatchResult{Handled: 2, Skipped: 1}, res)
	require.Len(t, attempted, 10, "every delivery's first attempt")
	require.Equal(t, 3, largest, "Parallelism deliveries per activity")
	for id, n := range attempted {
		require.Equal(t, 1, n, "delivery %s attempted once", id)
	}
	require.Empty(t, children(), "no run per delivery")
	require.Equal(t, []activities.RetryTarget{{WebhookID: dHook}}, woken,
		"the loop of the one target with a delivery to retry")
	require.Equal(t, activities.FinishEventsInput{WorkflowID: batchRunID, Events: []activities.FinishEventInput{
		{EventID: held[0]}, {EventID: held[1]}}}, *finish)
}

// Deliveries to a target whose circuit is open get no first attempt from
// the batch: they are woken in their target's loop; the others go out.
func TestDispatchEventsLeavesOpenCircuitsToTheirLoops(t *testing.T) {
	env := batchEnv(t)
	in := batchInput(1)
	holds(t, env, in, []string{batchEvent(0)})
	plan := activities.PlanDeliveriesResult{Parallelism: 8, Deliveries: []activities.PlannedDelivery{
		{DeliveryID: deliveryID(1), EventID: batchEvent(0), WebhookID: dHook, Held: true},
		{DeliveryID: deliveryID(2), EventID: batchEvent(0), IntegrationID: dChat},
	}}
	env.OnActivity(deliveryActs.PlanEventDeliveries, mock.Anything, mock.Anything).Return(plan, nil).Once()
	var attempted []string
	env.OnActivity(deliveryActs.AttemptDeliveries, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttemptsInput) ([]activities.AttemptResult, error) {
			out := make([]activities.AttemptResult, len(in.Attempts))
			for i, a := range in.Attempts {
				attempted = append(attempted, a.DeliveryID)
				out[i] = activities.AttemptResult{DeliveryID: a.DeliveryID, Attempt: 1, Outcome: activities.OutcomeSucceeded}
			}
			return out, nil
		}).Once()
	var woken []activities.RetryTarget
	env.OnActivity(deliveryActs.WakeTargetRetries, mock.Anything, mock.Anything).Return(
		func(_ context.Context, targets []activities.RetryTarget) error { woken = targets; return nil }).Once()
	finishes(env)

	env.ExecuteWorkflow(DispatchEvents, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{deliveryID(2)}, attempted, "only the target with a closed circuit")
	require.Equal(t, []activities.RetryTarget{{WebhookID: dHook}}, woken)
}

func TestDispatchEventsPlanFailure(t *testing.T) {
	env := batchEnv(t)
	in := batchInput(2)
	held := []string{batchEvent(0), batchEvent(1)}
	holds(t, env, in, held)
	env.OnActivity(deliveryActs.PlanEventDeliveries, mock.Anything, mock.Anything).Return(
		activities.PlanDeliveriesResult{}, temporal.NewNonRetryableApplicationError("bad id", "BadEventID", nil)).Once()
	finish := finishes(env)

	env.ExecuteWorkflow(DispatchEvents, in)
	require.NoError(t, env.GetWorkflowError(), "the events are recorded as failed; the run itself completes")
	var res DispatchBatchResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, DispatchBatchResult{Handled: 2, Failed: 2}, res)
	require.Len(t, finish.Events, 2)
	for _, e := range finish.Events {
		require.Contains(t, e.Failure, "deliveries: ")
		require.Contains(t, e.Failure, "bad id")
	}
}

func TestDispatchEventsRetriesTheOutbox(t *testing.T) {
	env := batchEnv(t)
	in := batchInput(1)
	env.OnActivity(eventActs.HoldEvents, mock.Anything, mock.Anything).Return(nil, fmt.Errorf("database restarting")).Twice()
	holds(t, env, in, []string{batchEvent(0)})
	env.OnActivity(deliveryActs.PlanEventDeliveries, mock.Anything, mock.Anything).Return(
		activities.PlanDeliveriesResult{Parallelism: 64}, nil).Once()
	env.OnActivity(eventActs.FinishEvents, mock.Anything, mock.Anything).Return(0, fmt.Errorf("database restarting")).Once()
	finish := finishes(env)

	env.ExecuteWorkflow(DispatchEvents, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []activities.FinishEventInput{{EventID: batchEvent(0)}}, finish.Events)
}
