package workflows

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

func TestEndDeliveryRuns(t *testing.T) {
	t.Run("CancelsEachRun", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		var mu sync.Mutex // the requests' mocks run concurrently
		var asked []string
		env.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, "").Return(
			func(_, workflowID, _ string) error {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, workflowID)
				if workflowID == DeliveryWorkflowID("closed") {
					return fmt.Errorf("workflow not found")
				}
				return nil
			})
		env.ExecuteWorkflow(EndDeliveryRuns, EndDeliveryRunsInput{DeliveryIDs: []string{"a", "closed", "b"}})
		require.NoError(t, env.GetWorkflowError())
		var ended int
		require.NoError(t, env.GetWorkflowResult(&ended))
		require.Equal(t, 2, ended, "a run already closed is skipped")
		require.ElementsMatch(t, []string{"delivery/a", "delivery/closed", "delivery/b"}, asked)
	})

	// With a prefix, a delivery whose prefixed run is not open has its
	// legacy run (started before the prefix) asked instead.
	t.Run("PrefixedThenLegacy", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		var mu sync.Mutex
		var asked []string
		open := map[string]bool{"eu/delivery/new": true, "delivery/old": true}
		env.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, "").Return(
			func(_, workflowID, _ string) error {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, workflowID)
				if !open[workflowID] {
					return fmt.Errorf("workflow not found")
				}
				return nil
			})
		env.ExecuteWorkflow(EndDeliveryRuns, EndDeliveryRunsInput{DeliveryIDs: []string{"new", "old", "closed"}, IDPrefix: "eu"})
		require.NoError(t, env.GetWorkflowError())
		var ended int
		require.NoError(t, env.GetWorkflowResult(&ended))
		require.Equal(t, 2, ended, "the prefixed run and the legacy one end; a closed one is skipped")
		require.ElementsMatch(t, []string{"eu/delivery/new", "eu/delivery/old", "eu/delivery/closed",
			"delivery/old", "delivery/closed"}, asked, "the legacy id only for runs the prefixed id did not reach")
	})

	t.Run("ContinuesAsNewPastAThousand", func(t *testing.T) {
		env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
		var n atomic.Int64
		env.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, "").Return(
			func(_, _, _ string) error { n.Add(1); return nil })
		ids := make([]string, 2500)
		for i := range ids {
			ids[i] = fmt.Sprint(i)
		}
		env.ExecuteWorkflow(EndDeliveryRuns, EndDeliveryRunsInput{DeliveryIDs: ids})
		var can *workflow.ContinueAsNewError
		require.ErrorAs(t, env.GetWorkflowError(), &can)
		require.EqualValues(t, endRunsPerRun, n.Load())
	})
}

// A delivery's run cancelled while it waits to retry ends at once,
// cancelled, without another attempt.
func TestDeliverWithRetryCancelled(t *testing.T) {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(DeliverWithRetry, DeliverInput{DeliveryID: deliveryID(1), EventType: "session.created",
		WebhookID: dHook, NextAttempt: 2, Try: 2, Wait: 6 * time.Hour})
	require.True(t, env.IsWorkflowCompleted())
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "%v", env.GetWorkflowError())
	env.AssertNotCalled(t, "AttemptDelivery", mock.Anything, mock.Anything)
}
