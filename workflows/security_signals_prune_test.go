package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
)

// mockPrune answers the batches in turn (an error answers as one) and
// returns the limits the activity was called with.
func mockPrune(env *testsuite.TestWorkflowEnvironment, answers ...any) func() []int {
	var mu sync.Mutex
	var limits []int
	env.OnActivity(signalActs.PruneSignalsBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PruneSignalsBatchInput) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			limits = append(limits, in.Limit)
			switch a := answers[min(len(limits), len(answers))-1].(type) {
			case error:
				return 0, a
			default:
				return a.(int), nil
			}
		})
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), limits...)
	}
}

// Batches run until one comes back short; the run answers the total.
func TestPruneSecuritySignalsLoopsUntilEmpty(t *testing.T) {
	env := grantEnv()
	calls := mockPrune(env, pruneSignalsBatch, pruneSignalsBatch, 1234, 0)
	env.ExecuteWorkflow(PruneSecuritySignals, PruneSignalsInput{})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var deleted int
	require.NoError(t, env.GetWorkflowResult(&deleted))
	require.Equal(t, 2*pruneSignalsBatch+1234, deleted)
	require.Equal(t, []int{pruneSignalsBatch, pruneSignalsBatch, pruneSignalsBatch}, calls(),
		"three batches: the short third means nothing was left")
}

// With no row past retention the run asks for one batch, gets none back,
// and ends having deleted nothing.
func TestPruneSecuritySignalsEmptyTable(t *testing.T) {
	env := grantEnv()
	calls := mockPrune(env, 0)
	env.ExecuteWorkflow(PruneSecuritySignals, PruneSignalsInput{BatchSize: 100})
	require.NoError(t, env.GetWorkflowError())
	var deleted int
	require.NoError(t, env.GetWorkflowResult(&deleted))
	require.Zero(t, deleted)
	require.Equal(t, []int{100}, calls())
}

// A backlog longer than one run's batches continues as new, carrying the
// count, instead of growing one history without bound.
func TestPruneSecuritySignalsContinuesAsNew(t *testing.T) {
	env := grantEnv()
	calls := mockPrune(env, 10)
	env.ExecuteWorkflow(PruneSecuritySignals, PruneSignalsInput{BatchSize: 10, BatchesPerRun: 3, Deleted: 5})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	require.Equal(t, "PruneSecuritySignals", can.WorkflowType.Name)
	var next PruneSignalsInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, PruneSignalsInput{BatchSize: 10, BatchesPerRun: 3, Deleted: 35}, next)
	require.Len(t, calls(), 3)
}

// A database that keeps failing ends the run with the error after the
// retries (on simulated time); the next hour's run starts over.
func TestPruneSecuritySignalsGivesUp(t *testing.T) {
	env := grantEnv()
	calls := mockPrune(env, 10, errors.New("connection refused"))
	start := env.Now()
	env.ExecuteWorkflow(PruneSecuritySignals, PruneSignalsInput{BatchSize: 10})
	require.ErrorContains(t, env.GetWorkflowError(), "connection refused")
	require.Len(t, calls(), 1+5, "one batch, then five attempts of the second")
	require.Greater(t, env.Now().Sub(start).Seconds(), 14.0, "the retries waited 1+2+4+8 s of simulated time")
}
