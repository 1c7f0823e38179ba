// Package sessionwatch watches the deployment's Session resources from the
// worker process and tells each session's lifecycle run (session/<id>) what
// happened to its Session that the run did not do itself, so the row, the
// events and the Web UI follow within seconds instead of at the session's
// next operation.
//
// A dynamic informer on the Sessions in Kube.Namespace labelled
// app.kubernetes.io/managed-by=streamspace-enterprise (the ones
// activities.CreateSessionResource makes; Sessions of other deployments or
// made by hand are not looked at) feeds a work queue of observations:
//
//   - a Session deleted (kubectl delete, its namespace deleted) →
//     workflows.ObservedDeleted;
//   - a Session whose status.phase turns Failed (its pod failed mid-life:
//     evicted, node lost), or that is Failed when the watcher starts →
//     workflows.ObservedFailed with its status.message.
//
// A Session deleted while no watcher ran is caught up: once the informer
// has synced, and then every Config.CatchUpEvery (an informer's relist can
// miss a delete too), the sessions the database records Running or
// Hibernated in the namespace (Config.Store; not those still being
// created, which have no Session yet) are compared with the informer's
// cache, and each one without a Session (the API server confirming it is
// gone) is reported workflows.ObservedDeleted through the same queue.
//
// Each becomes the run's observed Signal (workflows.Client
// SignalSessionObserved). The run decides what it means: its own terminate
// or failure deleted the Session too, and a report of that finds the run
// ended (or already closed: Temporal's not-found is success here), so the
// watcher need not tell the two apart. A signal Temporal refuses is retried
// with backoff (up to a minute apart) until it is delivered. Any number of
// watchers may run (one per worker replica): the first report ends the
// session, the others find it ended.
package sessionwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// Signaler delivers an observation to a session's run; workflows.Client is
// one.
type Signaler interface {
	SignalSessionObserved(ctx context.Context, sessionID string, ev workflows.SessionObserved) error
}

// Config is what a Watcher needs.
type Config struct {
	// Kube is the cluster; Kube.Namespace holds the Sessions. Required.
	Kube *activities.Kube
	// Signaler tells the runs. Required.
	Signaler Signaler
	// Store lists the started sessions to catch up on. Required.
	Store Store
	// CatchUpEvery is how often the started sessions are compared with the
	// Sessions after the first time (on sync); 0: DefaultCatchUpEvery.
	CatchUpEvery time.Duration
	Logger       *slog.Logger // nil: discard; the caller adds attributes such as component=sessionwatch
}

// signalTimeout bounds one signal.
const signalTimeout = 15 * time.Second

// observation is one queued report to a run.
type observation struct {
	session string
	ev      workflows.SessionObserved
}

// Watcher reports Session deletions and failures to their runs, and
// catches up on deletions it did not see; Run drives it.
type Watcher struct {
	cfg    Config
	log    *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[observation]
	synced atomic.Bool
}

// New builds a watcher from cfg.
func New(cfg Config) *Watcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Watcher{cfg: cfg, log: cfg.Logger}
}

// HasSynced reports whether Run has listed the Sessions and is reporting.
func (w *Watcher) HasSynced() bool { return w.synced.Load() }

// Run watches the Sessions until ctx ends, then returns nil. While the
// Kubernetes API cannot be reached it keeps trying.
func (w *Watcher) Run(ctx context.Context) error {
	if w.cfg.Kube == nil || w.cfg.Kube.Dynamic == nil || w.cfg.Kube.Namespace == "" || w.cfg.Signaler == nil ||
		w.cfg.Store == nil {
		return errors.New("sessionwatch: Config.Kube (with a Dynamic client and a Namespace), Config.Signaler and Config.Store are required")
	}
	w.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[observation](500*time.Millisecond, time.Minute),
		workqueue.TypedRateLimitingQueueConfig[observation]{Name: "sessionwatch"})
	informer := dynamicinformer.NewFilteredDynamicInformer(w.cfg.Kube.Dynamic, kubeapi.SessionGVR, w.cfg.Kube.Namespace, 0,
		cache.Indexers{}, func(o *metav1.ListOptions) { o.LabelSelector = kubeapi.LabelManaged + "=" + kubeapi.ManagedBy }).Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if phase, msg := phaseOf(obj); phase == kubeapi.PhaseFailed {
				w.report(obj, workflows.ObservedFailed, msg)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			was, _ := phaseOf(oldObj)
			if phase, msg := phaseOf(newObj); phase == kubeapi.PhaseFailed && was != kubeapi.PhaseFailed {
				w.report(newObj, workflows.ObservedFailed, msg)
			}
		},
		DeleteFunc: func(obj any) { w.report(obj, workflows.ObservedDeleted, "") },
	}); err != nil {
		return fmt.Errorf("sessionwatch: %w", err)
	}

	var workers sync.WaitGroup
	defer func() {
		w.queue.ShutDown()
		workers.Wait()
	}()
	workers.Go(func() { informer.RunWithContext(ctx) })
	w.log.Info("watching sessions", "namespace", w.cfg.Kube.Namespace)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil // ctx ended first
	}
	w.synced.Store(true)
	defer w.synced.Store(false)
	for range 2 {
		workers.Go(func() {
			for w.processNext(ctx) {
			}
		})
	}
	workers.Go(func() { w.catchUp(ctx, informer.GetStore()) })
	<-ctx.Done()
	return nil
}

// phaseOf is a Session's status.phase and status.message.
func phaseOf(obj any) (phase, message string) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return "", ""
	}
	phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
	message, _, _ = unstructured.NestedString(u.Object, "status", "message")
	return phase, message
}

// report queues an observation of the Session obj (or the tombstone of a
// deleted one).
func (w *Watcher) report(obj any, change, message string) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u.GetName() == "" {
		w.log.Warn("session event without a Session", "change", change, "object", fmt.Sprintf("%T", obj))
		return
	}
	w.queue.Add(observation{session: u.GetName(), ev: workflows.SessionObserved{Change: change, Message: message}})
}

func (w *Watcher) processNext(ctx context.Context) bool {
	o, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(o)
	// The run is found from the Session's name (the session id), not from
	// its activities.AnnotationWorkflow: the annotation is not trusted, so
	// a Session edited by hand cannot direct the signal at another run.
	sctx, cancel := context.WithTimeout(ctx, signalTimeout)
	err := w.cfg.Signaler.SignalSessionObserved(sctx, o.session, o.ev)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		w.log.Warn("cannot tell the session's run; retrying", "session", o.session, "change", o.ev.Change,
			"err", err, "attempt", w.queue.NumRequeues(o)+1)
		w.queue.AddRateLimited(o)
		return true
	}
	w.queue.Forget(o)
	w.log.Info("session change reported to its run", "session", o.session, "change", o.ev.Change)
	return true
}
