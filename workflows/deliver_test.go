package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
)

// Workflow tests with mocked activities and simulated time; the same
// workflows with the real activities, a real database and HTTP receivers
// are in deliver_integration_test.go.

const (
	dEvent = "0190c1a2-0000-7000-8000-0000000000e1"
	dHook  = "0190c1a2-0000-7000-8000-0000000000a1"
	dChat  = "0190c1a2-0000-7000-8000-0000000000c1"
)

func deliveryID(n int) string { return "0190c1a2-0000-7000-8000-00000000d00" + string(rune('0'+n)) }

func finishOK(env *testsuite.TestWorkflowEnvironment) *activities.FinishEventInput {
	var got activities.FinishEventInput
	env.OnActivity(eventActs.FinishEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinishEventInput) error { got = in; return nil }).Once()
	return &got
}

func TestDispatchEventWithoutSubscribers(t *testing.T) {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.OnActivity(deliveryActs.PlanDeliveries, mock.Anything, activities.PlanDeliveriesInput{EventID: dEvent}).
		Return(activities.PlanDeliveriesResult{Parallelism: 64}, nil).Once()
	finish := finishOK(env)
	var las []string
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		las = append(las, info.ActivityType.Name)
	})
	env.ExecuteWorkflow(DispatchEvent, DispatchEventInput{EventID: dEvent, Type: "session.created"})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, activities.FinishEventInput{EventID: dEvent}, *finish)
	require.Equal(t, []string{"PlanDeliveries", "FinishEvent"}, las, "two local activities, nothing else")
	env.AssertExpectations(t)
}

type childStart struct {
	ID    string
	Input DeliverInput
	Attrs map[string]string
}

func recordChildren(env *testsuite.TestWorkflowEnvironment) func() []childStart {
	var mu sync.Mutex
	var starts []childStart
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, ctx workflow.Context, args converter.EncodedValues) {
		var in DeliverInput
		_ = args.Get(&in)
		attrs := map[string]string{}
		sa := workflow.GetTypedSearchAttributes(ctx)
		for _, k := range []temporal.SearchAttributeKeyKeyword{DeliveryIDAttr, EventTypeAttr, WebhookIDAttr, IntegrationIDAttr} {
			if v, ok := sa.GetKeyword(k); ok {
				attrs[k.GetName()] = v
			}
		}
		mu.Lock()
		starts = append(starts, childStart{ID: info.WorkflowExecution.ID, Input: in, Attrs: attrs})
		mu.Unlock()
	})
	return func() []childStart {
		mu.Lock()
		defer mu.Unlock()
		return append([]childStart(nil), starts...)
	}
}

func TestDispatchEventDeliveries(t *testing.T) {
	plan := activities.PlanDeliveriesResult{Parallelism: 2, Deliveries: []activities.PlannedDelivery{
		{DeliveryID: deliveryID(1), EventType: "session.created", WebhookID: dHook},
		{DeliveryID: deliveryID(2), EventType: "session.created", WebhookID: dHook},
		{DeliveryID: deliveryID(3), EventType: "session.created", IntegrationID: dChat},
		{DeliveryID: deliveryID(4), EventType: "session.created", WebhookID: dHook},
	}}
	t.Run("FirstAttemptsThenRetryRuns", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.RegisterWorkflow(DeliverWithRetry)
		env.OnActivity(deliveryActs.PlanDeliveries, mock.Anything, mock.Anything).Return(plan, nil).Once()
		var batches [][]activities.AttemptInput
		env.OnActivity(deliveryActs.AttemptDeliveries, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in activities.AttemptsInput) ([]activities.AttemptResult, error) {
				batches = append(batches, in.Attempts)
				out := make([]activities.AttemptResult, len(in.Attempts))
				for i, a := range in.Attempts {
					out[i] = activities.AttemptResult{DeliveryID: a.DeliveryID, Attempt: a.Attempt}
					switch a.DeliveryID {
					case deliveryID(1):
						out[i].Outcome = activities.OutcomeSucceeded
					case deliveryID(2):
						out[i].Outcome, out[i].Delay = activities.OutcomeRetrying, 5*time.Second
					case deliveryID(3):
						out[i].Outcome, out[i].Delay = activities.OutcomeThrottled, 2*time.Second
					case deliveryID(4):
						out[i].Outcome = activities.OutcomeFailed
						out[i].Disabled = &activities.Notice{Title: "Webhook \"x\" was disabled"}
					}
				}
				return out, nil
			}).Twice()
		var notices []activities.Notice
		env.OnActivity(deliveryActs.NotifyAdmins, mock.Anything, mock.Anything).Return(
			func(_ context.Context, n activities.Notice) (activities.NoticeResult, error) {
				notices = append(notices, n)
				return activities.NoticeResult{Sent: 1}, nil
			}).Once()
		env.OnWorkflow(DeliverWithRetry, mock.Anything, mock.Anything).Return(DeliverResult{}, nil)
		children := recordChildren(env)
		finish := finishOK(env)
		env.ExecuteWorkflow(DispatchEvent, DispatchEventInput{EventID: dEvent, Type: "session.created"})
		require.NoError(t, env.GetWorkflowError())
		require.Equal(t, activities.FinishEventInput{EventID: dEvent}, *finish)

		// Parallelism 2: two batches of first attempts, attempt 1 each.
		require.Len(t, batches, 2)
		slices.SortFunc(batches, func(a, b []activities.AttemptInput) int {
			return strings.Compare(a[0].DeliveryID, b[0].DeliveryID)
		})
		require.Equal(t, []activities.AttemptInput{{DeliveryID: deliveryID(1), Attempt: 1, Try: 1},
			{DeliveryID: deliveryID(2), Attempt: 1, Try: 1}}, batches[0])
		require.Len(t, batches[1], 2)

		// The retrying and the throttled delivery continue in their own runs
		// (started as their batches complete: in either order).
		got := children()
		require.Len(t, got, 2)
		slices.SortFunc(got, func(a, b childStart) int { return strings.Compare(a.ID, b.ID) })
		require.Equal(t, "delivery/"+deliveryID(2), got[0].ID)
		require.Equal(t, DeliverInput{DeliveryID: deliveryID(2), EventType: "session.created", WebhookID: dHook,
			NextAttempt: 2, Try: 2, Wait: 5 * time.Second}, got[0].Input)
		require.Equal(t, map[string]string{"StreamSpaceDeliveryID": deliveryID(2),
			"StreamSpaceEventType": "session.created", "StreamSpaceWebhookID": dHook}, got[0].Attrs)
		require.Equal(t, "delivery/"+deliveryID(3), got[1].ID)
		require.Equal(t, DeliverInput{DeliveryID: deliveryID(3), EventType: "session.created", IntegrationID: dChat,
			NextAttempt: 1, Try: 1, Wait: 2 * time.Second}, got[1].Input, "throttled: the same attempt, later")
		require.Equal(t, dChat, got[1].Attrs["StreamSpaceIntegrationID"])

		require.Len(t, notices, 1, "admins hear about the disabled webhook")
		env.AssertExpectations(t)
	})
	t.Run("FailedFirstAttemptsGoToRetryRuns", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.RegisterWorkflow(DeliverWithRetry)
		env.OnActivity(deliveryActs.PlanDeliveries, mock.Anything, mock.Anything).Return(
			activities.PlanDeliveriesResult{Parallelism: 64, Deliveries: plan.Deliveries[:1]}, nil).Once()
		env.OnActivity(deliveryActs.AttemptDeliveries, mock.Anything, mock.Anything).Return(
			nil, errors.New("database restarting")).Times(3)
		env.OnWorkflow(DeliverWithRetry, mock.Anything, mock.Anything).Return(DeliverResult{}, nil)
		children := recordChildren(env)
		finishOK(env)
		env.ExecuteWorkflow(DispatchEvent, DispatchEventInput{EventID: dEvent, Type: "session.created"})
		require.NoError(t, env.GetWorkflowError())
		got := children()
		require.Len(t, got, 1)
		require.Equal(t, DeliverInput{DeliveryID: deliveryID(1), EventType: "session.created", WebhookID: dHook,
			NextAttempt: 1, Try: 1}, got[0].Input)
		env.AssertExpectations(t)
	})
	t.Run("PlanFailureIsRecorded", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.OnActivity(deliveryActs.PlanDeliveries, mock.Anything, mock.Anything).Return(
			activities.PlanDeliveriesResult{}, temporal.NewNonRetryableApplicationError("bad", "BadEventID", nil)).Once()
		finish := finishOK(env)
		env.ExecuteWorkflow(DispatchEvent, DispatchEventInput{EventID: dEvent, Type: "session.created"})
		require.Error(t, env.GetWorkflowError())
		require.Contains(t, finish.Failure, "deliveries: ")
	})
}

// attemptScript answers AttemptDelivery calls from a list and records them.
type attemptScript struct {
	mu      sync.Mutex
	results []activities.AttemptResult
	calls   []activities.AttemptInput
	at      []time.Time
	env     *testsuite.TestWorkflowEnvironment
}

func (s *attemptScript) mock(env *testsuite.TestWorkflowEnvironment) {
	s.env = env
	env.OnActivity(deliveryActs.AttemptDelivery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AttemptInput) (activities.AttemptResult, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			r := s.results[min(len(s.calls), len(s.results)-1)]
			s.calls = append(s.calls, in)
			s.at = append(s.at, env.Now())
			r.DeliveryID, r.Attempt = in.DeliveryID, in.Attempt
			return r, nil
		})
}

func timers(env *testsuite.TestWorkflowEnvironment) *[]time.Duration {
	var d []time.Duration
	env.SetOnTimerScheduledListener(func(_ string, duration time.Duration) { d = append(d, duration) })
	return &d
}

func TestDeliverWithRetry(t *testing.T) {
	retry := func(d time.Duration) activities.AttemptResult {
		return activities.AttemptResult{Outcome: activities.OutcomeRetrying, Delay: d, Status: 500}
	}
	ok := activities.AttemptResult{Outcome: activities.OutcomeSucceeded, Status: 200}
	in := DeliverInput{DeliveryID: deliveryID(1), EventType: "session.created", WebhookID: dHook,
		NextAttempt: 2, Try: 2, Wait: 5 * time.Second}

	t.Run("RetriesUntilSuccess", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		s := &attemptScript{results: []activities.AttemptResult{retry(5 * time.Minute), retry(30 * time.Minute), ok}}
		s.mock(env)
		waits := timers(env)
		start := env.Now()
		env.ExecuteWorkflow(DeliverWithRetry, in)
		require.NoError(t, env.GetWorkflowError())
		var res DeliverResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, DeliverResult{DeliveryID: deliveryID(1), Outcome: "succeeded", LastAttempt: 4}, res)
		require.Equal(t, []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}, *waits)
		require.Equal(t, []activities.AttemptInput{{DeliveryID: deliveryID(1), Attempt: 2, Try: 2},
			{DeliveryID: deliveryID(1), Attempt: 3, Try: 3}, {DeliveryID: deliveryID(1), Attempt: 4, Try: 4}}, s.calls)
		require.Equal(t, 5*time.Second, s.at[0].Sub(start).Round(time.Second))
		require.Equal(t, 5*time.Second+35*time.Minute, s.at[2].Sub(start).Round(time.Second))
	})
	t.Run("FailureEnds", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		s := &attemptScript{results: []activities.AttemptResult{retry(time.Minute),
			{Outcome: activities.OutcomeFailed, Status: 503, Error: "gave up after 3 attempts"}}}
		s.mock(env)
		env.ExecuteWorkflow(DeliverWithRetry, in)
		var res DeliverResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, "failed", res.Outcome)
		require.Len(t, s.calls, 2)
	})
	t.Run("ThrottledRepeatsTheAttempt", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		s := &attemptScript{results: []activities.AttemptResult{
			{Outcome: activities.OutcomeThrottled, Delay: 3 * time.Second}, ok}}
		s.mock(env)
		waits := timers(env)
		env.ExecuteWorkflow(DeliverWithRetry, in)
		require.NoError(t, env.GetWorkflowError())
		require.Equal(t, []time.Duration{5 * time.Second, 3 * time.Second}, *waits)
		require.Equal(t, s.calls[0], s.calls[1])
	})
	t.Run("DisabledTargetNotifiesAdmins", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		s := &attemptScript{results: []activities.AttemptResult{{Outcome: activities.OutcomeFailed, Status: 410,
			Disabled: &activities.Notice{Title: "gone"}}}}
		s.mock(env)
		env.OnActivity(deliveryActs.NotifyAdmins, mock.Anything, activities.Notice{Title: "gone"}).
			Return(activities.NoticeResult{Sent: 2}, nil).Once()
		env.ExecuteWorkflow(DeliverWithRetry, in)
		require.NoError(t, env.GetWorkflowError())
		env.AssertExpectations(t)
	})
	t.Run("RedeliverSignalCutsTheWaitShort", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		s := &attemptScript{results: []activities.AttemptResult{retry(10 * time.Hour), ok}}
		s.mock(env)
		start := env.Now()
		env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalRedeliver, nil) }, time.Hour)
		env.ExecuteWorkflow(DeliverWithRetry, in)
		require.NoError(t, env.GetWorkflowError())
		require.Len(t, s.calls, 2)
		require.Equal(t, time.Hour, s.at[1].Sub(start).Round(time.Minute))
	})
	t.Run("RedeliveryContinuesTheNumbers", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.OnActivity(deliveryActs.DeliveryProgress, mock.Anything, deliveryID(1)).Return(
			activities.DeliveryProgressResult{Found: true, EventType: "quota.exceeded", WebhookID: dHook,
				State: "failed", Attempts: 8}, nil).Once()
		s := &attemptScript{results: []activities.AttemptResult{retry(time.Minute), ok}}
		s.mock(env)
		env.ExecuteWorkflow(DeliverWithRetry, DeliverInput{DeliveryID: deliveryID(1), Try: 1})
		require.NoError(t, env.GetWorkflowError())
		require.Equal(t, []activities.AttemptInput{{DeliveryID: deliveryID(1), Attempt: 9, Try: 1},
			{DeliveryID: deliveryID(1), Attempt: 10, Try: 2}}, s.calls, "a fresh policy, the next numbers")
	})
	t.Run("RedeliveryOfAnUnknownDelivery", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.OnActivity(deliveryActs.DeliveryProgress, mock.Anything, mock.Anything).Return(
			activities.DeliveryProgressResult{}, nil).Once()
		env.ExecuteWorkflow(DeliverWithRetry, DeliverInput{DeliveryID: deliveryID(1)})
		var res DeliverResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, "gone", res.Outcome)
	})
	t.Run("InfrastructureErrorsAreRetried", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.OnActivity(deliveryActs.AttemptDelivery, mock.Anything, mock.Anything).Return(
			activities.AttemptResult{}, errors.New("database restarting")).Times(4)
		env.OnActivity(deliveryActs.AttemptDelivery, mock.Anything, mock.Anything).Return(ok, nil).Once()
		env.ExecuteWorkflow(DeliverWithRetry, in)
		require.NoError(t, env.GetWorkflowError())
		env.AssertExpectations(t)
	})
}

func TestTestDelivery(t *testing.T) {
	in := TestDeliveryInput{DeliveryID: deliveryID(7), WebhookID: dHook}
	t.Run("OneAttemptRecorded", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.OnActivity(deliveryActs.CreateTestDelivery, mock.Anything, activities.TestDeliveryInput{
			DeliveryID: in.DeliveryID, WebhookID: dHook}).Return(nil).Once()
		status := 204
		rec := schemas.DeliveryAttempt{Attempt: 1, ResponseStatus: &status, Outcome: "succeeded",
			RequestHeaders: map[string]string{"Webhook-Id": in.DeliveryID}}
		env.OnActivity(deliveryActs.AttemptDelivery, mock.Anything, activities.AttemptInput{
			DeliveryID: in.DeliveryID, Attempt: 1, Try: 1, Record: true}).Return(
			activities.AttemptResult{Outcome: "succeeded", Record: &rec}, nil).Once()
		env.ExecuteWorkflow(TestDelivery, in)
		require.NoError(t, env.GetWorkflowError())
		var got schemas.DeliveryAttempt
		require.NoError(t, env.GetWorkflowResult(&got))
		require.Equal(t, rec, got)
		env.AssertExpectations(t)
	})
	t.Run("UnknownTarget", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		env.OnActivity(deliveryActs.CreateTestDelivery, mock.Anything, mock.Anything).Return(
			temporal.NewNonRetryableApplicationError("test delivery target: not found", "NotFound", nil)).Once()
		env.ExecuteWorkflow(TestDelivery, in)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, env.GetWorkflowError(), &appErr)
		require.Equal(t, "NotFound", appErr.Type())
	})
}

func TestDeliverySearchAttributesAreRegistered(t *testing.T) {
	sa := SearchAttributes()
	for _, k := range []string{"StreamSpaceWebhookID", "StreamSpaceIntegrationID", "StreamSpaceDeliveryID",
		"StreamSpaceEventType"} {
		require.Contains(t, sa, k)
	}
	require.Equal(t, "delivery/abc", DeliveryWorkflowID("abc"))
}
