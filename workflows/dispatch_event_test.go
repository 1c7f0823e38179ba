package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/streamspace/enterprise/activities"
)

// noSubscribers plans no deliveries (deliver_test.go covers them).
func noSubscribers(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(deliveryActs.PlanDeliveries, mock.Anything, mock.Anything).Return(
		activities.PlanDeliveriesResult{Parallelism: 64}, nil)
}

func TestDispatchEvent(t *testing.T) {
	in := DispatchEventInput{EventID: "0190c1a2-0000-7000-8000-000000000001", Type: "session.created"}

	t.Run("RecordsCompletion", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		noSubscribers(env)
		var got activities.FinishEventInput
		env.OnActivity(eventActs.FinishEvent, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in activities.FinishEventInput) error { got = in; return nil }).Once()
		env.ExecuteWorkflow(DispatchEvent, in)
		require.True(t, env.IsWorkflowCompleted())
		require.NoError(t, env.GetWorkflowError())
		var res DispatchEventResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, DispatchEventResult{EventID: in.EventID, Type: in.Type}, res)
		require.Equal(t, activities.FinishEventInput{EventID: in.EventID}, got)
		env.AssertExpectations(t)
	})

	t.Run("RetriesTransientFailures", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		noSubscribers(env)
		env.OnActivity(eventActs.FinishEvent, mock.Anything, mock.Anything).Return(errors.New("database restarting")).Times(3)
		env.OnActivity(eventActs.FinishEvent, mock.Anything, mock.Anything).Return(nil).Once()
		env.ExecuteWorkflow(DispatchEvent, in)
		require.NoError(t, env.GetWorkflowError())
		env.AssertExpectations(t)
	})

	t.Run("FailsOnPermanentError", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		noSubscribers(env)
		env.OnActivity(eventActs.FinishEvent, mock.Anything, mock.Anything).Return(
			temporal.NewNonRetryableApplicationError("event gone", "EventNotFound", nil)).Once()
		env.ExecuteWorkflow(DispatchEvent, in)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, env.GetWorkflowError(), &appErr)
		require.Equal(t, "EventNotFound", appErr.Type())
	})
}
