package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// podGoneTimeout bounds how long hibernation waits for the pod to go.
const podGoneTimeout = 2 * time.Minute

// start creates the Session resource and waits until it runs.
//
// From version 1 of "local-first-steps" the two short steps on either side
// of the wait (creating the Session, recording Running) are local
// activities: under a burst of hundreds of starts each saves a trip through
// the task queue (an activity task and a workflow task), which is where a
// start spent its time. Runs begun before keep their regular activities.
func (r *sessionRun) start(ctx workflow.Context) error {
	local := workflow.GetVersion(ctx, "local-first-steps", workflow.DefaultVersion, 1) == 1
	if err := execute(ctx, local, kubeOptions, sessionActs.CreateSessionResource, r.in.SessionID).Get(ctx, nil); err != nil {
		return r.fail(ctx, "its Session resource could not be created: "+cause(err))
	}
	startCtx, cancel := workflow.WithCancel(ctx)
	r.cancelStart = cancel
	obs, err := r.await(startCtx, r.in.StartTimeout, kubeapi.PhaseRunning)
	r.cancelStart = nil
	if startCtx.Err() != nil {
		return nil // terminate came in while starting; it runs next
	}
	if err != nil {
		return err
	}
	if !obs.Reached {
		return r.fail(ctx, notReached("did not reach Running", r.in.StartTimeout, obs))
	}
	r.st.StartedAt = workflow.Now(ctx)
	node := obs.NodeName
	return r.recordVia(ctx, activities.RecordInput{Phase: kubeapi.PhaseRunning, NodeName: &node,
		Event: schemas.EventSessionUpdated, Reason: "running on node " + node}, local)
}

// hibernate removes the pod and keeps the Session.
func (r *sessionRun) hibernate(ctx workflow.Context, reason string) error {
	if err := r.setState(ctx, kubeapi.StateHibernated); err != nil {
		return err
	}
	r.st.State = kubeapi.StateHibernated
	r.setDeadlines()
	obs, err := r.await(ctx, podGoneTimeout, kubeapi.PhaseHibernated)
	if err != nil {
		return err
	}
	if !obs.Reached {
		return temporal.NewApplicationError(notReached("the pod was not removed", podGoneTimeout, obs), "HibernateTimeout")
	}
	none := ""
	return r.record(ctx, activities.RecordInput{State: kubeapi.StateHibernated, Phase: kubeapi.PhaseHibernated,
		NodeName: &none, Event: schemas.EventSessionHibernated, Reason: reason})
}

// wake re-checks the quota, recreates the pod and waits until it runs.
func (r *sessionRun) wake(ctx workflow.Context, reason string) error {
	err := r.record(ctx, activities.RecordInput{State: kubeapi.StateRunning, Phase: kubeapi.PhasePending, Wake: true})
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == activities.ErrTypeQuotaExceeded {
		var qe schemas.QuotaExceededError
		_ = app.Details(&qe)
		return temporal.NewApplicationError(app.Message(), ErrTypeQuotaExceeded, qe)
	}
	if err != nil {
		return err
	}
	if err := r.setState(ctx, kubeapi.StateRunning); err != nil {
		return err
	}
	obs, err := r.await(ctx, r.in.StartTimeout, kubeapi.PhaseRunning)
	if err != nil {
		return err
	}
	if !obs.Reached {
		why := notReached("did not wake", r.in.StartTimeout, obs)
		if err := r.fail(ctx, why); err != nil {
			return err
		}
		return r.failure
	}
	r.st.LastActivity = workflow.Now(ctx) // waking is activity: the idle timer starts afresh
	node := obs.NodeName
	return r.record(ctx, activities.RecordInput{Phase: kubeapi.PhaseRunning, NodeName: &node,
		Event: schemas.EventSessionAwakened, Reason: reason})
}

// terminate deletes the Session (its pod follows) and ends the run.
func (r *sessionRun) terminate(ctx workflow.Context, reason string) error {
	if err := workflow.ExecuteActivity(deleteCtx(ctx), sessionActs.DeleteSessionResource, r.in.SessionID).Get(ctx, nil); err != nil {
		return err
	}
	none := ""
	err := r.record(ctx, activities.RecordInput{State: kubeapi.StateTerminated, Phase: kubeapi.PhaseTerminated,
		NodeName: &none, Message: reason, Event: schemas.EventSessionDeleted, Reason: reason})
	if err != nil && !isType(err, activities.ErrTypeSessionEnded) {
		return err
	}
	r.ended = true
	return nil
}

// fail ends a session that could not run: its Session is deleted, the row
// records Failed with the reason, session.deleted says why, and the run
// ends with a SessionFailed error (shown as the run's failure in the Web UI).
func (r *sessionRun) fail(ctx workflow.Context, reason string) error {
	workflow.GetLogger(ctx).Warn("session failed", "session_id", r.in.SessionID, "reason", reason)
	if err := workflow.ExecuteActivity(deleteCtx(ctx), sessionActs.DeleteSessionResource, r.in.SessionID).Get(ctx, nil); err != nil &&
		!isType(err, activities.ErrTypeSessionNotFound) {
		return err
	}
	none := ""
	err := r.record(ctx, activities.RecordInput{Phase: kubeapi.PhaseFailed, NodeName: &none, Message: reason,
		Event: schemas.EventSessionDeleted, Reason: "failed: " + reason})
	if err != nil && !isType(err, activities.ErrTypeSessionEnded) && !isType(err, activities.ErrTypeSessionNotFound) {
		return err
	}
	r.st.Phase, r.st.Message = kubeapi.PhaseFailed, reason
	r.ended = true
	r.failure = temporal.NewNonRetryableApplicationError("session failed: "+reason, ErrTypeSessionFailed, nil)
	return nil
}

func (r *sessionRun) setState(ctx workflow.Context, state string) error {
	return workflow.ExecuteActivity(kubeCtx(ctx), sessionActs.SetSessionResourceState,
		activities.SetStateInput{SessionID: r.in.SessionID, State: state}).Get(ctx, nil)
}

func (r *sessionRun) await(ctx workflow.Context, within time.Duration, phase string) (activities.Observed, error) {
	var obs activities.Observed
	in := activities.AwaitPhaseInput{SessionID: r.in.SessionID, Phases: []string{phase},
		Deadline: workflow.Now(ctx).Add(within)}
	err := workflow.ExecuteActivity(awaitCtx(ctx, within), sessionActs.AwaitSessionPhase, in).Get(ctx, &obs)
	return obs, err
}

// deleteCtx: deleting waits until the Session is gone.
func deleteCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
}

// notReached says why a wait for a phase ended without it.
func notReached(what string, within time.Duration, obs activities.Observed) string {
	switch {
	case obs.Gone:
		return what + ": its Session resource was deleted"
	case obs.Phase == kubeapi.PhaseFailed:
		return fmt.Sprintf("%s: the session failed: %s", what, obs.Message)
	}
	msg := fmt.Sprintf("%s within %s", what, within)
	if obs.Phase != "" {
		msg += " (phase " + obs.Phase
		if obs.Message != "" {
			msg += ": " + obs.Message
		}
		msg += ")"
	}
	return msg
}

// cause is the innermost message of an activity error.
func cause(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}
