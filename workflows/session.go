package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

var sessionActs *activities.Sessions

// Defaults of SessionInput's timings.
const (
	DefaultSessionStartTimeout = 5 * time.Minute
	// sessionHandlesPerRun is how many signals and updates one run takes
	// before it continues as new, keeping its history small.
	sessionHandlesPerRun = 500
	// touchEvery throttles how often user activity is written down.
	touchEvery = time.Minute
)

// SessionLifecycle is the one workflow run per session (ID session/<id>):
// it creates the Session resource, waits until it is Running (failing the
// session with the reason after StartTimeout), then holds the session's
// life — hibernate, wake and terminate Updates, the activity Signal, the
// observed Signal (its Session deleted or failed behind its back), the idle
// timer that hibernates, the maxSessionDuration timer that terminates —
// and records every transition with its session.* event.
func SessionLifecycle(ctx workflow.Context, in SessionInput) (SessionStatus, error) {
	r := newSessionRun(ctx, in)
	if err := r.register(ctx); err != nil {
		return r.st, err
	}
	if !in.Continued {
		if err := r.locked(ctx, r.start); err != nil {
			return r.finish(ctx, err)
		}
	}
	for !r.ended {
		if err := r.waitForWork(ctx); err != nil {
			return r.finish(ctx, err)
		}
		if r.ended {
			break
		}
		if err := r.applyObserved(ctx); err != nil {
			return r.finish(ctx, err)
		}
		if r.ended {
			break
		}
		now := workflow.Now(ctx)
		switch {
		case !r.st.EndDeadline.IsZero() && !now.Before(r.st.EndDeadline):
			reason := fmt.Sprintf("maxSessionDuration %s reached", in.MaxDuration)
			if err := r.locked(ctx, func(ctx workflow.Context) error { return r.terminate(ctx, reason) }); err != nil {
				return r.finish(ctx, err)
			}
		case !r.st.IdleDeadline.IsZero() && !now.Before(r.st.IdleDeadline):
			reason := fmt.Sprintf("idle for %s", in.IdleTimeout)
			if err := r.locked(ctx, func(ctx workflow.Context) error { return r.hibernate(ctx, reason) }); err != nil {
				return r.finish(ctx, err)
			}
		}
		if err := r.touchIfDue(ctx); err != nil {
			return r.finish(ctx, err)
		}
		if !r.ended && r.shouldContinueAsNew(ctx) {
			if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
				return r.finish(ctx, err)
			}
			if !r.ended && len(r.observed) == 0 { // an observed change is acted on first
				return r.st, workflow.NewContinueAsNewError(ctx, SessionLifecycle, r.carry())
			}
		}
	}
	return r.finish(ctx, nil)
}

// sessionRun is the state of one run.
type sessionRun struct {
	in      SessionInput
	st      SessionStatus
	busy    bool // an operation (start, hibernate, wake, terminate) is under way
	ended   bool // terminated or failed; the run is finishing
	failure error
	handled int       // signals and updates taken by this run
	touched time.Time // last activity written down
	changed bool      // something the main loop waits for happened
	// observed are the observed Signals the main loop has yet to act on.
	observed []SessionObserved
	// cancelStart stops waiting for the first Running when terminate comes
	// in during the start.
	cancelStart workflow.CancelFunc
}

func newSessionRun(ctx workflow.Context, in SessionInput) *sessionRun {
	if in.StartTimeout <= 0 {
		in.StartTimeout = DefaultSessionStartTimeout
	}
	st := SessionStatus{SessionID: in.SessionID, State: kubeapi.StateRunning, Phase: kubeapi.PhasePending,
		StartedAt: in.StartedAt, LastActivity: in.LastActivity}
	r := &sessionRun{in: in, st: st, touched: in.LastActivity}
	if in.Continued {
		r.st.State = in.State
		r.st.Phase = map[string]string{kubeapi.StateRunning: kubeapi.PhaseRunning,
			kubeapi.StateHibernated: kubeapi.PhaseHibernated}[in.State]
		r.setDeadlines()
	}
	return r
}

func (r *sessionRun) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (SessionStatus, error) { return r.st, nil }); err != nil {
		return err
	}
	activity := workflow.GetSignalChannel(ctx, SignalActivity)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			activity.Receive(ctx, nil)
			r.handled++
			r.st.LastActivity = workflow.Now(ctx)
			r.setDeadlines()
			r.changed = true
		}
	})
	r.receiveObserved(ctx)
	// accept is the Update's validator; validate runs again once the
	// operation holds the lock (a hibernate accepted while the session
	// starts waits for the start, then needs it Running).
	updates := []struct {
		name             string
		accept, validate func() error
		run              func(ctx workflow.Context, reason string) error
	}{
		{UpdateHibernate, r.mayHibernate, r.canHibernate, r.hibernate},
		{UpdateWake, r.canWake, r.canWake, r.wake},
	}
	for _, u := range updates {
		err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context) (SessionStatus, error) {
				r.handled++
				err := r.locked(ctx, func(ctx workflow.Context) error {
					if err := u.validate(); err != nil { // the state may have moved while queued
						return err
					}
					return u.run(ctx, "requested")
				})
				return r.st, err
			},
			workflow.UpdateHandlerOptions{Validator: func() error { return u.accept() }})
		if err != nil {
			return err
		}
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateTerminate,
		func(ctx workflow.Context, req TerminateRequest) (SessionStatus, error) {
			r.handled++
			if r.cancelStart != nil {
				r.cancelStart() // stop waiting for Running; terminate right after
			}
			err := r.locked(ctx, func(ctx workflow.Context) error {
				if r.ended {
					return nil
				}
				return r.terminate(ctx, req.Reason)
			})
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(req TerminateRequest) error {
			if r.ended {
				return invalidTransition("the session has already ended (%s)", r.st.Phase)
			}
			return nil
		}})
}

// locked runs op when no other operation is under way.
func (r *sessionRun) locked(ctx workflow.Context, op func(workflow.Context) error) error {
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return err
	}
	if r.ended {
		return invalidTransition("the session has already ended (%s)", r.st.Phase)
	}
	r.busy = true
	defer func() { r.busy, r.changed = false, true }()
	return op(ctx)
}

func invalidTransition(format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), ErrTypeInvalidTransition)
}

func (r *sessionRun) canHibernate() error {
	if r.ended || r.st.State != kubeapi.StateRunning || r.st.Phase != kubeapi.PhaseRunning {
		return invalidTransition("only a running session can hibernate (it is %s, %s)", r.st.State, r.st.Phase)
	}
	return nil
}

// mayHibernate accepts a hibernate for a session that runs or is starting.
func (r *sessionRun) mayHibernate() error {
	if r.ended || r.st.State != kubeapi.StateRunning {
		return invalidTransition("only a running session can hibernate (it is %s, %s)", r.st.State, r.st.Phase)
	}
	return nil
}

func (r *sessionRun) canWake() error {
	if r.ended || r.st.State != kubeapi.StateHibernated {
		return invalidTransition("only a hibernated session can wake (it is %s, %s)", r.st.State, r.st.Phase)
	}
	return nil
}

// setDeadlines derives the idle and end deadlines from the state.
func (r *sessionRun) setDeadlines() {
	r.st.IdleDeadline, r.st.EndDeadline = time.Time{}, time.Time{}
	if r.in.MaxDuration > 0 && !r.st.StartedAt.IsZero() {
		r.st.EndDeadline = r.st.StartedAt.Add(r.in.MaxDuration)
	}
	if r.in.IdleTimeout > 0 && r.st.State == kubeapi.StateRunning && r.st.Phase == kubeapi.PhaseRunning {
		last := r.st.LastActivity
		if last.IsZero() || last.Before(r.st.StartedAt) {
			last = r.st.StartedAt
		}
		r.st.IdleDeadline = last.Add(r.in.IdleTimeout)
	}
}

// waitForWork blocks until a deadline passes, something changes, or the
// run should continue as new.
func (r *sessionRun) waitForWork(ctx workflow.Context) error {
	r.changed = false
	cond := func() bool { return r.changed || r.ended || len(r.observed) > 0 || r.shouldContinueAsNew(ctx) }
	next := earliest(r.st.IdleDeadline, r.st.EndDeadline)
	if next.IsZero() {
		return workflow.Await(ctx, cond)
	}
	d := next.Sub(workflow.Now(ctx))
	if d <= 0 {
		return nil
	}
	_, err := workflow.AwaitWithTimeout(ctx, d, cond)
	return err
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

func (r *sessionRun) shouldContinueAsNew(ctx workflow.Context) bool {
	return r.handled >= sessionHandlesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

func (r *sessionRun) carry() SessionInput {
	in := r.in
	in.Continued, in.StartedAt, in.LastActivity, in.State = true, r.st.StartedAt, r.st.LastActivity, r.st.State
	return in
}

// finish ends the run: it waits for the handlers in flight and returns the
// final status, or the failure that ended the session.
func (r *sessionRun) finish(ctx workflow.Context, err error) (SessionStatus, error) {
	if err == nil {
		err = r.failure
	}
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return r.st, err
}

// touchIfDue writes the user's last activity down, at most once a minute.
func (r *sessionRun) touchIfDue(ctx workflow.Context) error {
	if r.ended || r.st.LastActivity.IsZero() || r.st.LastActivity.Sub(r.touched) < touchEvery {
		return nil
	}
	r.touched = r.st.LastActivity
	err := workflow.ExecuteActivity(kubeCtx(ctx), sessionActs.TouchSession, r.in.SessionID).Get(ctx, nil)
	if isType(err, activities.ErrTypeSessionNotFound) {
		return nil
	}
	return err
}

func isType(err error, typ string) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == typ
}

// record writes a transition of the session's row with its event.
func (r *sessionRun) record(ctx workflow.Context, in activities.RecordInput) error {
	return r.recordVia(ctx, in, false)
}

// recordVia is record, as a local activity when local.
func (r *sessionRun) recordVia(ctx workflow.Context, in activities.RecordInput, local bool) error {
	in.SessionID = r.in.SessionID
	var rec activities.SessionRecord
	if err := execute(ctx, local, dbOptions, sessionActs.RecordSession, in).Get(ctx, &rec); err != nil {
		return err
	}
	r.st.State, r.st.Phase, r.st.NodeName, r.st.Message = rec.State, rec.Phase, rec.NodeName, rec.Message
	r.setDeadlines()
	return nil
}

// execute runs an activity, as a local activity when local, with the
// same timeouts and retries either way.
func execute(ctx workflow.Context, local bool, o workflow.ActivityOptions, activity any, args ...any) workflow.Future {
	if local {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: o.StartToCloseTimeout,
			ScheduleToCloseTimeout: o.ScheduleToCloseTimeout, RetryPolicy: o.RetryPolicy})
		return workflow.ExecuteLocalActivity(lctx, activity, args...)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), activity, args...)
}

// kubeOptions: Kubernetes calls retry for ten minutes, then the run fails
// loudly.
var kubeOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
}

// dbOptions: writes to PostgreSQL retry for an hour; the row and its event
// must not be lost to a database restart.
var dbOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
}

func kubeCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, kubeOptions)
}

// awaitCtx: a wait for a phase heartbeats and may take until its deadline.
func awaitCtx(ctx workflow.Context, deadline time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: deadline + time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
}
