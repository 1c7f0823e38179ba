package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// observedChangeVersion guards the handling of the observed Signal: a run
// whose history holds such a Signal taken by a worker from before it (which
// ignored it) replays ignoring it too.
const observedChangeVersion = "observed-session-changes"

// receiveObserved queues each observed Signal for the main loop.
func (r *sessionRun) receiveObserved(ctx workflow.Context) {
	ch := workflow.GetSignalChannel(ctx, SignalObserved)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var ev SessionObserved
			ch.Receive(ctx, &ev)
			r.handled++
			r.observed = append(r.observed, ev)
			r.changed = true
		}
	})
}

// applyObserved acts on the queued observed Signals, each once no other
// operation is under way: a Session deleted behind the run's back ends the
// session as terminate does (session.deleted, row Terminated), one that
// failed while the session should run fails it as a failed start does
// (Session deleted, row Failed, session.deleted "failed: …", the run ends
// with SessionFailed). A change the run caused itself (its own terminate,
// or a failure its start or wake already handled) finds the run ended and
// is dropped; so is a failure reported for a session hibernated meanwhile
// (it has no pod; waking makes a new one).
func (r *sessionRun) applyObserved(ctx workflow.Context) error {
	for len(r.observed) > 0 && !r.ended {
		ev := r.observed[0]
		r.observed = r.observed[1:]
		if workflow.GetVersion(ctx, observedChangeVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			continue
		}
		err := r.locked(ctx, func(ctx workflow.Context) error {
			switch ev.Change {
			case ObservedDeleted:
				return r.terminate(ctx, "its Session resource was deleted outside StreamSpace")
			case ObservedFailed:
				if r.st.State != kubeapi.StateRunning {
					return nil
				}
				reason := "the session failed while running"
				if ev.Message != "" {
					reason += ": " + ev.Message
				}
				return r.fail(ctx, reason)
			}
			workflow.GetLogger(ctx).Warn("unknown observed change ignored", "change", ev.Change)
			return nil
		})
		if err != nil && !(r.ended && isType(err, ErrTypeInvalidTransition)) {
			return err
		}
	}
	return nil
}
