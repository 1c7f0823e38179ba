package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// sessionWorld stands in for Kubernetes and the session row behind the
// mocked activities, and records what the workflow wrote down and when.
type sessionWorld struct {
	env     *testsuite.TestWorkflowEnvironment
	start   time.Time
	records []recorded
	row     activities.SessionRecord
	created int
	deleted int
	states  []string
	touches int
	// starts decides what each wait for a phase observes.
	observe func(in activities.AwaitPhaseInput) activities.Observed
	// wakeErr, when set, is what a wake's quota check returns.
	wakeErr error
}

type recorded struct {
	activities.RecordInput
	At time.Duration // since the run started
}

// newSessionWorld mocks the activities; awaitTakes delays each wait for a
// phase (in the test's simulated time).
func newSessionWorld(t *testing.T, awaitTakes ...time.Duration) *sessionWorld {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	w := &sessionWorld{env: env, start: env.Now(),
		row: activities.SessionRecord{State: kubeapi.StateRunning, Phase: kubeapi.PhasePending}}
	w.observe = func(in activities.AwaitPhaseInput) activities.Observed {
		return activities.Observed{Phase: in.Phases[0], NodeName: "kwok-node-1", Reached: true}
	}
	env.OnActivity(sessionActs.CreateSessionResource, mock.Anything, mock.Anything).Return(
		func(context.Context, string) error { w.created++; return nil })
	await := env.OnActivity(sessionActs.AwaitSessionPhase, mock.Anything, mock.Anything)
	if len(awaitTakes) > 0 {
		await = await.After(awaitTakes[0])
	}
	await.Return(
		func(_ context.Context, in activities.AwaitPhaseInput) (activities.Observed, error) {
			return w.observe(in), nil
		})
	env.OnActivity(sessionActs.SetSessionResourceState, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SetStateInput) error {
			w.states = append(w.states, in.State)
			return nil
		})
	env.OnActivity(sessionActs.DeleteSessionResource, mock.Anything, mock.Anything).Return(
		func(context.Context, string) error { w.deleted++; return nil })
	env.OnActivity(sessionActs.TouchSession, mock.Anything, mock.Anything).Return(
		func(context.Context, string) error { w.touches++; return nil })
	env.OnActivity(sessionActs.RecordSession, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordInput) (activities.SessionRecord, error) {
			if in.Wake && w.wakeErr != nil {
				return activities.SessionRecord{}, w.wakeErr
			}
			w.records = append(w.records, recorded{in, env.Now().Sub(w.start)})
			// Like the row: unset fields keep their value.
			if in.State != "" {
				w.row.State = in.State
			}
			if in.Phase != "" {
				w.row.Phase = in.Phase
			}
			if in.NodeName != nil {
				w.row.NodeName = *in.NodeName
			}
			w.row.Message = in.Message
			return w.row, nil
		})
	return w
}

// events lists the events the run published, in order.
func (w *sessionWorld) events() []schemas.EventType {
	var evs []schemas.EventType
	for _, r := range w.records {
		if r.Event != "" {
			evs = append(evs, r.Event)
		}
	}
	return evs
}

func (w *sessionWorld) last(ev schemas.EventType) recorded {
	for i := len(w.records) - 1; i >= 0; i-- {
		if w.records[i].Event == ev {
			return w.records[i]
		}
	}
	return recorded{}
}

// update sends an Update at delay and keeps its outcome.
func (w *sessionWorld) update(delay time.Duration, name string, out *updateOutcome, args ...any) {
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(name, name+delay.String(), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { out.err, out.rejected = err, true },
			OnComplete: func(v any, err error) {
				out.err = err
				if st, ok := v.(SessionStatus); ok {
					out.status = st
				}
			},
		}, args...)
	}, delay)
}

type updateOutcome struct {
	status   SessionStatus
	err      error
	rejected bool
}

func errType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

func TestSessionStartsAndTerminates(t *testing.T) {
	w := newSessionWorld(t)
	var term updateOutcome
	w.update(time.Hour, UpdateTerminate, &term, TerminateRequest{Reason: "deleted by alice"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "alice-firefox-1"})

	require.True(t, w.env.IsWorkflowCompleted())
	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, term.err)
	require.Equal(t, kubeapi.PhaseTerminated, term.status.Phase)
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionDeleted}, w.events())
	running := w.records[0]
	require.Equal(t, kubeapi.PhaseRunning, running.Phase)
	require.Equal(t, "kwok-node-1", *running.NodeName)
	require.Equal(t, "deleted by alice", w.last(schemas.EventSessionDeleted).Reason)
	require.Equal(t, 1, w.created, "the Session is created once")
	require.Equal(t, 1, w.deleted)
}

func TestSessionStartTimeoutFailsWithReason(t *testing.T) {
	w := newSessionWorld(t)
	w.observe = func(activities.AwaitPhaseInput) activities.Observed {
		return activities.Observed{Phase: kubeapi.PhasePending, Message: "0/3 nodes are available: 3 Insufficient cpu"}
	}
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", StartTimeout: 2 * time.Minute})

	require.Equal(t, ErrTypeSessionFailed, errType(w.env.GetWorkflowError()))
	require.Len(t, w.records, 1)
	failed := w.records[0]
	require.Equal(t, kubeapi.PhaseFailed, failed.Phase)
	require.Equal(t, "did not reach Running within 2m0s (phase Pending: 0/3 nodes are available: 3 Insufficient cpu)", failed.Message)
	require.Equal(t, schemas.EventSessionDeleted, failed.Event)
	require.Equal(t, 1, w.deleted, "the Session of a failed start is deleted")
}

func TestSessionIdleHibernationFollowsActivity(t *testing.T) {
	w := newSessionWorld(t)
	w.env.RegisterDelayedCallback(func() { w.env.SignalWorkflow(SignalActivity, nil) }, 20*time.Minute)
	var term updateOutcome
	w.update(3*time.Hour, UpdateTerminate, &term, TerminateRequest{Reason: "done"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", IdleTimeout: 30 * time.Minute})

	require.NoError(t, w.env.GetWorkflowError())
	hib := w.last(schemas.EventSessionHibernated)
	require.Equal(t, "idle for 30m0s", hib.Reason)
	// Activity at 20m pushed the idle deadline from 30m to 50m.
	require.Equal(t, 50*time.Minute, hib.At.Round(time.Second))
	require.Equal(t, []string{kubeapi.StateHibernated}, w.states)
	require.Equal(t, 1, w.touches, "the activity at 20m is written down once")
	// Hibernated sessions have no idle timer: nothing else happened until terminate.
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionHibernated,
		schemas.EventSessionDeleted}, w.events())
}

func TestSessionMaxDurationTerminates(t *testing.T) {
	w := newSessionWorld(t)
	var hib updateOutcome
	w.update(time.Hour, UpdateHibernate, &hib) // hibernated time counts too
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", MaxDuration: 8 * time.Hour})

	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, hib.err)
	end := w.last(schemas.EventSessionDeleted)
	require.Equal(t, "maxSessionDuration 8h0m0s reached", end.Reason)
	require.Equal(t, 8*time.Hour, end.At.Round(time.Second))
	require.Equal(t, kubeapi.PhaseTerminated, end.Phase)
}

func TestSessionHibernateAndWake(t *testing.T) {
	w := newSessionWorld(t)
	var hib, hibAgain, wake, wakeAgain, term updateOutcome
	w.update(time.Minute, UpdateHibernate, &hib)
	w.update(2*time.Minute, UpdateHibernate, &hibAgain)
	w.update(3*time.Minute, UpdateWake, &wake)
	w.update(4*time.Minute, UpdateWake, &wakeAgain)
	w.update(5*time.Minute, UpdateTerminate, &term, TerminateRequest{Reason: "bye"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1"})

	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, hib.err)
	require.Equal(t, kubeapi.StateHibernated, hib.status.State)
	require.Equal(t, kubeapi.PhaseHibernated, hib.status.Phase)
	require.True(t, hibAgain.rejected)
	require.Equal(t, ErrTypeInvalidTransition, errType(hibAgain.err))
	require.NoError(t, wake.err)
	require.Equal(t, kubeapi.PhaseRunning, wake.status.Phase)
	require.True(t, wakeAgain.rejected)
	require.Equal(t, []string{kubeapi.StateHibernated, kubeapi.StateRunning}, w.states)
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionHibernated,
		schemas.EventSessionAwakened, schemas.EventSessionDeleted}, w.events())
}

func TestSessionWakeOverQuotaStaysHibernated(t *testing.T) {
	w := newSessionWorld(t)
	w.wakeErr = temporal.NewNonRetryableApplicationError("quota exceeded: cpu limit 2, would use 3",
		activities.ErrTypeQuotaExceeded, nil, schemas.QuotaExceededError{Resource: "cpu", Limit: 2, Used: 3})
	var hib, wake, term updateOutcome
	w.update(time.Minute, UpdateHibernate, &hib)
	w.update(2*time.Minute, UpdateWake, &wake)
	w.update(3*time.Minute, UpdateTerminate, &term, TerminateRequest{Reason: "bye"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1"})

	require.NoError(t, w.env.GetWorkflowError())
	require.Equal(t, ErrTypeQuotaExceeded, errType(wake.err))
	var app *temporal.ApplicationError
	require.ErrorAs(t, wake.err, &app)
	var qe schemas.QuotaExceededError
	require.NoError(t, app.Details(&qe))
	require.Equal(t, "cpu", qe.Resource)
	require.Equal(t, []string{kubeapi.StateHibernated}, w.states, "the pod is not recreated")
}

func TestSessionTerminateDuringStart(t *testing.T) {
	w := newSessionWorld(t, 10*time.Minute)
	w.observe = func(activities.AwaitPhaseInput) activities.Observed {
		return activities.Observed{Phase: kubeapi.PhasePending}
	}
	var term updateOutcome
	w.update(30*time.Second, UpdateTerminate, &term, TerminateRequest{Reason: "changed my mind"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", StartTimeout: 10 * time.Minute})

	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, term.err)
	require.Equal(t, []schemas.EventType{schemas.EventSessionDeleted}, w.events())
	require.Less(t, w.records[0].At, 2*time.Minute, "terminate does not wait for the start timeout")
}

func TestSessionContinuesAsNew(t *testing.T) {
	w := newSessionWorld(t)
	for i := range sessionHandlesPerRun {
		w.env.RegisterDelayedCallback(func() { w.env.SignalWorkflow(SignalActivity, nil) },
			time.Minute+time.Duration(i)*time.Second)
	}
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", IdleTimeout: time.Hour, MaxDuration: 8 * time.Hour})

	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, w.env.GetWorkflowError(), &can)
	require.Equal(t, "SessionLifecycle", can.WorkflowType.Name)
	var next SessionInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.True(t, next.Continued)
	require.Equal(t, kubeapi.StateRunning, next.State)
	require.WithinDuration(t, w.start, next.StartedAt, time.Second)
	require.False(t, next.LastActivity.IsZero())
	require.Equal(t, time.Hour, next.IdleTimeout)

	// The next run holds the same deadlines without creating anything again.
	w2 := newSessionWorld(t)
	w2.env.SetStartTime(next.LastActivity.Add(time.Minute))
	w2.env.ExecuteWorkflow(SessionLifecycle, next)
	require.NoError(t, w2.env.GetWorkflowError())
	w2.env.AssertNotCalled(t, "CreateSessionResource", mock.Anything, mock.Anything)
	require.Equal(t, []schemas.EventType{schemas.EventSessionHibernated}, w2.events()[:1])
}

func TestSessionHibernateDuringStartWaitsForRunning(t *testing.T) {
	w := newSessionWorld(t, time.Minute) // the pod takes a minute to run
	var hib, term updateOutcome
	w.update(10*time.Second, UpdateHibernate, &hib)
	w.update(time.Hour, UpdateTerminate, &term, TerminateRequest{Reason: "bye"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1"})

	require.NoError(t, w.env.GetWorkflowError())
	require.False(t, hib.rejected)
	require.NoError(t, hib.err)
	require.Equal(t, kubeapi.PhaseHibernated, hib.status.Phase)
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionHibernated,
		schemas.EventSessionDeleted}, w.events())
}
