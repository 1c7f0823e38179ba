package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// observe sends the observed Signal at delay.
func (w *sessionWorld) observeChange(delay time.Duration, change, message string) {
	w.env.RegisterDelayedCallback(func() {
		w.env.SignalWorkflow(SignalObserved, SessionObserved{Change: change, Message: message})
	}, delay)
}

// A Session deleted with kubectl ends the session at once, as a terminate
// does: the row records Terminated with session.deleted, and the run
// completes without waiting for its idle or end timers.
func TestSessionDeletedOutsideEndsRun(t *testing.T) {
	w := newSessionWorld(t)
	w.observeChange(time.Hour, ObservedDeleted, "")
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", IdleTimeout: 4 * time.Hour, MaxDuration: 8 * time.Hour})

	require.True(t, w.env.IsWorkflowCompleted())
	require.NoError(t, w.env.GetWorkflowError())
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionDeleted}, w.events())
	end := w.last(schemas.EventSessionDeleted)
	require.Equal(t, kubeapi.StateTerminated, end.State)
	require.Equal(t, kubeapi.PhaseTerminated, end.Phase)
	require.Equal(t, "its Session resource was deleted outside StreamSpace", end.Reason)
	require.Equal(t, time.Hour, end.At.Round(time.Second), "recorded when the deletion was seen")
	var st SessionStatus
	require.NoError(t, w.env.GetWorkflowResult(&st))
	require.Equal(t, kubeapi.PhaseTerminated, st.Phase)
}

// A session whose pod fails while it runs is failed as a failed start is:
// its Session deleted, the row Failed with the reason, session.deleted
// saying "failed: …", and the run ends with SessionFailed.
func TestSessionFailedMidLifeFailsRun(t *testing.T) {
	w := newSessionWorld(t)
	w.observeChange(2*time.Hour, ObservedFailed, `pod "s1" failed: Evicted`)
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1", MaxDuration: 8 * time.Hour})

	require.True(t, w.env.IsWorkflowCompleted())
	require.Equal(t, ErrTypeSessionFailed, errType(w.env.GetWorkflowError()))
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionDeleted}, w.events())
	failed := w.last(schemas.EventSessionDeleted)
	require.Equal(t, kubeapi.PhaseFailed, failed.Phase)
	require.Equal(t, `the session failed while running: pod "s1" failed: Evicted`, failed.Message)
	require.Equal(t, `failed: the session failed while running: pod "s1" failed: Evicted`, failed.Reason)
	require.Equal(t, 2*time.Hour, failed.At.Round(time.Second))
	require.Equal(t, 1, w.deleted, "the failed session's Session is deleted")
}

// The run's own terminate deletes the Session too: the watcher's report of
// that deletion finds the run ended and changes nothing.
func TestSessionOwnDeletionObservedIsDropped(t *testing.T) {
	w := newSessionWorld(t)
	var term updateOutcome
	w.update(time.Hour, UpdateTerminate, &term, TerminateRequest{Reason: "deleted by alice"})
	w.observeChange(time.Hour, ObservedDeleted, "")
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1"})

	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, term.err)
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionDeleted}, w.events())
	require.Equal(t, "deleted by alice", w.last(schemas.EventSessionDeleted).Reason)
	require.Equal(t, 1, w.deleted)
}

// A failure reported for a session that hibernated meanwhile is dropped (the
// pod is gone; waking makes a new one); a later deletion still ends it.
func TestSessionFailureWhileHibernatedIsDropped(t *testing.T) {
	w := newSessionWorld(t)
	var hib updateOutcome
	w.update(time.Minute, UpdateHibernate, &hib)
	w.observeChange(time.Minute, ObservedFailed, "pod failed")
	w.observeChange(time.Hour, ObservedDeleted, "")
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1"})

	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, hib.err)
	require.Equal(t, []schemas.EventType{schemas.EventSessionUpdated, schemas.EventSessionHibernated,
		schemas.EventSessionDeleted}, w.events())
	end := w.last(schemas.EventSessionDeleted)
	require.Equal(t, kubeapi.PhaseTerminated, end.Phase)
	require.Equal(t, time.Hour, end.At.Round(time.Second))
}

// A run whose history has an observed Signal taken by a worker from before
// the Signal existed (GetVersion answers DefaultVersion on replay) keeps
// ignoring it, so its replay matches.
func TestSessionObservedBeforeVersionIsIgnored(t *testing.T) {
	w := newSessionWorld(t)
	w.env.OnGetVersion(observedChangeVersion, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	w.observeChange(time.Minute, ObservedDeleted, "")
	var term updateOutcome
	w.update(time.Hour, UpdateTerminate, &term, TerminateRequest{Reason: "bye"})
	w.env.ExecuteWorkflow(SessionLifecycle, SessionInput{SessionID: "s1"})

	require.NoError(t, w.env.GetWorkflowError())
	require.NoError(t, term.err)
	end := w.last(schemas.EventSessionDeleted)
	require.Equal(t, "bye", end.Reason)
	require.Equal(t, time.Hour, end.At.Round(time.Second))
}
