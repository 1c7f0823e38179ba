package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// AwaitPhaseInput waits for a Session to reach one of Phases.
type AwaitPhaseInput struct {
	SessionID string
	Phases    []string // e.g. Running; Failed always ends the wait too
	// Deadline is when to give up (workflow time, so a retried activity
	// keeps the original deadline).
	Deadline time.Time
}

// Observed is a Session's status as last seen.
type Observed struct {
	Phase    string
	NodeName string
	PodName  string
	Message  string
	Reached  bool // the phase is one of those awaited
	Gone     bool // the Session does not exist
}

// AwaitSessionPhase watches a Session until its status.phase is one of
// in.Phases (Reached), it fails or disappears, or the deadline passes; it
// returns what it saw last either way, so the workflow can say why a session
// did not start. It heartbeats while it waits.
func (a *Sessions) AwaitSessionPhase(ctx context.Context, in AwaitPhaseInput) (Observed, error) {
	want := map[string]bool{}
	for _, p := range in.Phases {
		want[p] = true
	}
	return a.watchSession(ctx, in.SessionID, in.Deadline, func(o Observed) bool {
		o.Reached = want[o.Phase]
		return o.Reached || o.Gone || o.Phase == kubeapi.PhaseFailed
	}, want)
}

// DeleteSessionResource deletes a Session (its pod follows through the
// owner reference) and waits until it is gone.
func (a *Sessions) DeleteSessionResource(ctx context.Context, sessionID string) error {
	ns, err := a.namespaceOf(ctx, sessionID)
	if err != nil {
		return err
	}
	policy := metav1.DeletePropagationBackground
	err = a.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns).
		Delete(ctx, sessionID, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Session %s/%s: %w", ns, sessionID, err)
	}
	deadline := time.Now().Add(activity.GetInfo(ctx).StartToCloseTimeout)
	o, err := a.watchSession(ctx, sessionID, deadline, func(o Observed) bool { return o.Gone }, nil)
	if err != nil {
		return err
	}
	if !o.Gone {
		return fmt.Errorf("Session %s/%s still exists (finalizers?)", ns, sessionID)
	}
	return nil
}

// watchSession reads the Session, then follows its watch until done says
// so or the deadline passes, reading afresh whenever the watch ends.
func (a *Sessions) watchSession(ctx context.Context, id string, deadline time.Time, done func(Observed) bool, want map[string]bool) (Observed, error) {
	ns, err := a.namespaceOf(ctx, id)
	if err != nil {
		return Observed{}, err
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stopBeat := heartbeat(ctx, 5*time.Second)
	defer stopBeat()

	client := a.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns)
	var last Observed
	for {
		obj, err := client.Get(ctx, id, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			last = Observed{Gone: true}
		case err != nil:
			if ctx.Err() != nil {
				return last, deadlineOrErr(ctx, err)
			}
			return last, fmt.Errorf("get Session %s/%s: %w", ns, id, err)
		default:
			last = observe(obj, want)
		}
		if done(last) || last.Gone {
			return last, nil
		}
		w, err := client.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", id).String(),
			ResourceVersion: obj.GetResourceVersion(),
		})
		if err != nil {
			if ctx.Err() != nil {
				return last, deadlineOrErr(ctx, err)
			}
			return last, fmt.Errorf("watch Session %s/%s: %w", ns, id, err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				last = Observed{Gone: true}
			} else if u, ok := ev.Object.(*unstructured.Unstructured); ok {
				last = observe(u, want)
			} else {
				continue // a watch error: read afresh
			}
			if done(last) {
				w.Stop()
				return last, nil
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return last, deadlineOrErr(ctx, ctx.Err())
		}
	}
}

// deadlineOrErr turns the wait's own deadline into a normal return (the
// caller reads Reached), and passes cancellation through.
func deadlineOrErr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return err
}

func observe(obj *unstructured.Unstructured, want map[string]bool) Observed {
	s, err := kubeapi.SessionFrom(obj)
	if err != nil {
		return Observed{Message: err.Error()}
	}
	return Observed{Phase: s.Status.Phase, NodeName: s.Status.NodeName, PodName: s.Status.PodName,
		Message: s.Status.Message, Reached: want[s.Status.Phase]}
}

// heartbeat records activity heartbeats every interval until stopped.
func heartbeat(ctx context.Context, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return cancel
}
