package workflows

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/breaker"
)

// fakeTarget is a target's deliveries as the loop's activities see them,
// in memory, on the test environment's clock.
type fakeTarget struct {
	mu       sync.Mutex
	env      *testsuite.TestWorkflowEnvironment
	due      map[string]time.Time // waiting deliveries and when each is due
	attempts map[string]int
	healthy  bool
	sent     []time.Time // every request, when
	gone     bool
	circuit  bool // as the loop recorded it on the target's row
	circuits int  // how many times it did
}

func newFakeTarget(t *testing.T, n int, at time.Duration) (*testsuite.TestWorkflowEnvironment, *fakeTarget) {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	f := &fakeTarget{env: env, due: map[string]time.Time{}, attempts: map[string]int{}}
	for i := range n {
		f.due[fmt.Sprintf("d%04d", i)] = env.Now().Add(at)
	}
	env.OnActivity(deliveryActs.DueRetries, mock.Anything, mock.Anything).Return(f.dueRetries)
	env.OnActivity(deliveryActs.AttemptDeliveries, mock.Anything, mock.Anything).Return(f.attempt).Maybe()
	env.OnActivity(deliveryActs.SetCircuit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetCircuitInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.circuit = in.Open
			f.circuits++
			return nil
		}).Maybe()
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env, f
}

func (f *fakeTarget) dueRetries(_ context.Context, in activities.DueRetriesInput) (activities.DueRetriesResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return activities.DueRetriesResult{Gone: true}, nil
	}
	now := f.env.Now()
	ids := make([]string, 0, len(f.due))
	for id := range f.due {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := f.due[a].Compare(f.due[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	res := activities.DueRetriesResult{Waiting: len(ids), CircuitOpen: f.circuit}
	for _, id := range ids {
		switch {
		case !f.due[id].After(now) && len(res.Attempts) < in.Limit:
			res.Attempts = append(res.Attempts, activities.AttemptInput{DeliveryID: id, Attempt: f.attempts[id] + 1,
				Try: f.attempts[id] + 1})
		case res.NextAt == nil || f.due[id].Before(*res.NextAt):
			at := f.due[id]
			res.NextAt = &at
		}
	}
	return res, nil
}

func (f *fakeTarget) attempt(_ context.Context, in activities.AttemptsInput) ([]activities.AttemptResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]activities.AttemptResult, len(in.Attempts))
	for i, a := range in.Attempts {
		f.sent = append(f.sent, f.env.Now())
		f.attempts[a.DeliveryID] = a.Attempt
		out[i] = activities.AttemptResult{DeliveryID: a.DeliveryID, Attempt: a.Attempt}
		if f.healthy {
			out[i].Outcome = activities.OutcomeSucceeded
			delete(f.due, a.DeliveryID)
			continue
		}
		out[i].Outcome, out[i].Delay = activities.OutcomeRetrying, time.Minute
		f.due[a.DeliveryID] = f.env.Now().Add(time.Minute)
	}
	return out, nil
}

func (f *fakeTarget) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func (f *fakeTarget) loopState(t *testing.T) RetryLoopState {
	v, err := f.env.QueryWorkflow(QueryRetryLoop)
	require.NoError(t, err)
	var st RetryLoopState
	require.NoError(t, v.Get(&st))
	return st
}

// A dead endpoint with 1,000 deliveries waiting costs one round of
// attempts, then one probe per interval (30 s doubling to 10 min); when it
// answers again, a probe closes the circuit and every delivery goes out, in
// rounds of retryBatch, and the loop ends.
func TestTargetRetriesCircuitBreaker(t *testing.T) {
	env, f := newFakeTarget(t, 1000, 0)
	var atOneHour int
	var open RetryLoopState
	var recorded bool
	env.RegisterDelayedCallback(func() {
		atOneHour = f.requests()
		open = f.loopState(t)
		recorded = f.circuit
		f.mu.Lock()
		f.healthy = true
		f.mu.Unlock()
	}, time.Hour)
	env.ExecuteWorkflow(TargetRetries, TargetRetriesInput{Target: activities.RetryTarget{WebhookID: dHook}})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	// Probes after 30 s, 1, 2, 4, 8 and 10-minute waits: by the hour, the
	// first round and 9 probes.
	require.Equal(t, retryBatch+9, atOneHour, "requests in the dead hour")
	require.True(t, open.Circuit.Open)
	require.True(t, recorded, "the open circuit was recorded for batch runs")
	require.Equal(t, 1000, open.Waiting)
	require.False(t, f.circuit, "and its closing")
	require.Equal(t, 2, f.circuits, "once each")
	require.Empty(t, f.due, "every delivery went out once the target answered")
	require.Equal(t, atOneHour+1000, f.requests(), "each delivery once more, the probe among them")
	// Once closed, nothing waits: the last delivery goes out within the
	// first probe after the hour (10 min at most) and 20 rounds.
	last := f.sent[len(f.sent)-1]
	require.Less(t, last.Sub(f.sent[0]), time.Hour+breaker.DefaultMaxProbe+time.Minute)
}

// A loop waiting for a delivery due in an hour attempts a new one as soon
// as it is woken, and one that finds nothing waiting ends.
func TestTargetRetriesWake(t *testing.T) {
	env, f := newFakeTarget(t, 1, time.Hour)
	f.healthy = true
	var at time.Time
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		f.due["new"] = env.Now()
		f.mu.Unlock()
		env.SignalWorkflow(SignalWakeRetries, nil)
		at = env.Now()
	}, 5*time.Minute)
	env.ExecuteWorkflow(TargetRetries, TargetRetriesInput{Target: activities.RetryTarget{IntegrationID: dChat}})
	require.NoError(t, env.GetWorkflowError())
	require.Len(t, f.sent, 2)
	require.Equal(t, at, f.sent[0], "the woken delivery went out at once")
	require.Equal(t, at.Add(55*time.Minute), f.sent[1], "the other when due")
}

// A target that is deleted, or cancelled runs (its target was disabled),
// end the loop without another request.
func TestTargetRetriesEnds(t *testing.T) {
	t.Run("gone", func(t *testing.T) {
		env, f := newFakeTarget(t, 3, time.Hour)
		env.RegisterDelayedCallback(func() { f.mu.Lock(); f.gone = true; f.mu.Unlock(); env.SignalWorkflow(SignalWakeRetries, nil) },
			time.Minute)
		env.ExecuteWorkflow(TargetRetries, TargetRetriesInput{Target: activities.RetryTarget{WebhookID: dHook}})
		require.NoError(t, env.GetWorkflowError())
		require.Zero(t, f.requests())
	})
	t.Run("cancelled", func(t *testing.T) {
		env, f := newFakeTarget(t, 3, time.Hour)
		env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
		env.ExecuteWorkflow(TargetRetries, TargetRetriesInput{Target: activities.RetryTarget{WebhookID: dHook}})
		require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "%v", env.GetWorkflowError())
		require.Zero(t, f.requests())
	})
}

// The circuit's state survives continue-as-new: a loop that has made
// retryRoundsPerRun rounds continues with it.
func TestTargetRetriesContinuesAsNew(t *testing.T) {
	env, f := newFakeTarget(t, retryRoundsPerRun+1, 0)
	f.healthy = false
	open := breaker.State{Open: true, OpenedAt: env.Now().Add(-time.Hour), NextProbe: env.Now(), Failures: 20}
	env.ExecuteWorkflow(TargetRetries, TargetRetriesInput{Target: activities.RetryTarget{WebhookID: dHook}, Circuit: open})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next TargetRetriesInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, activities.RetryTarget{WebhookID: dHook}, next.Target)
	require.True(t, next.Circuit.Open, "still open")
	require.True(t, open.OpenedAt.Equal(next.Circuit.OpenedAt))
	require.Equal(t, 20+f.requests(), next.Circuit.Failures, "each failed probe counted")
	require.False(t, next.Circuit.NextProbe.IsZero())
	// Rounds alternate a probe and a wait for the next.
	require.Equal(t, retryRoundsPerRun/2, f.requests())
}
