// Package nodewatch watches the cluster's nodes from the worker process and
// records each node's health in PostgreSQL (schemas.Store.ObserveNodeHealth),
// which publishes node.unhealthy when a node stops being Ready.
//
// A node informer (client-go) feeds a work queue of node names: every node
// at start, and a node again whenever its Ready condition (status, reason,
// message, transition time) or its pressure conditions change; heartbeats
// alone do not. The queue retries a failed write with backoff (up to a
// minute apart), so a database outage delays events but loses none.
//
// Any number of watchers may run (one per worker replica): the store decides
// transitions under a row lock, so each healthy → unhealthy transition is
// published once, and a restarted watcher re-recording the same state
// publishes nothing.
//
// A node that is not Ready yet, was created less than JoinGrace ago and has
// never been recorded is joining, not failing: it is looked at again when the
// grace ends, and only then, if it is still not Ready, reported unhealthy.
package nodewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
)

// DefaultJoinGrace is Config.JoinGrace when zero.
const DefaultJoinGrace = 5 * time.Minute

// Config is what a Watcher needs.
type Config struct {
	Kube   *activities.Kube
	Store  *schemas.Store
	Logger *slog.Logger // nil: discard; the caller adds attributes such as component=nodewatch
	// JoinGrace is how long a new node may take to become Ready before it
	// counts as unhealthy. Zero: DefaultJoinGrace; negative: none.
	JoinGrace time.Duration
}

// Watcher records node health changes; Run drives it.
type Watcher struct {
	cfg   Config
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[string]
	nodes corelisters.NodeLister
}

// New builds a watcher from cfg.
func New(cfg Config) *Watcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.JoinGrace == 0 {
		cfg.JoinGrace = DefaultJoinGrace
	}
	return &Watcher{cfg: cfg, log: cfg.Logger}
}

// Run watches the nodes until ctx ends, then returns nil. While the
// Kubernetes API cannot be reached it keeps trying.
func (w *Watcher) Run(ctx context.Context) error {
	if w.cfg.Kube == nil || w.cfg.Store == nil {
		return errors.New("nodewatch: Config.Kube and Config.Store are required")
	}
	w.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodewatch"})
	factory := informers.NewSharedInformerFactory(w.cfg.Kube.Clientset, 0)
	informer := factory.Core().V1().Nodes()
	w.nodes = informer.Lister()
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: w.enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			o, okOld := oldObj.(*corev1.Node)
			n, okNew := newObj.(*corev1.Node)
			if !okOld || !okNew || !sameObservation(observe(o), observe(n)) {
				w.enqueue(newObj)
			}
		},
		DeleteFunc: w.enqueue,
	}); err != nil {
		return fmt.Errorf("nodewatch: %w", err)
	}

	factory.Start(ctx.Done())
	var workers sync.WaitGroup
	defer func() {
		w.queue.ShutDown()
		factory.Shutdown()
		workers.Wait()
	}()
	w.log.Info("watching nodes")
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return nil // ctx ended first
	}
	workers.Go(func() {
		for w.processNext(ctx) {
		}
	})
	<-ctx.Done()
	return nil
}

func (w *Watcher) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		w.log.Warn("node without a name", "err", err)
		return
	}
	w.queue.Add(key)
}

func (w *Watcher) processNext(ctx context.Context) bool {
	name, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(name)
	if err := w.sync(ctx, name); err != nil {
		if ctx.Err() != nil {
			return true
		}
		w.log.Warn("cannot record node health; retrying", "node", name, "err", err,
			"attempt", w.queue.NumRequeues(name)+1)
		w.queue.AddRateLimited(name)
		return true
	}
	w.queue.Forget(name)
	return true
}

// sync records the current health of node name, or forgets a deleted node.
func (w *Watcher) sync(ctx context.Context, name string) error {
	node, err := w.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return w.cfg.Store.DeleteNodeHealth(ctx, name)
	}
	if err != nil {
		return err
	}
	o := observe(node)
	if !o.Healthy {
		if wait, err := w.joining(ctx, node); err != nil || wait > 0 {
			if wait > 0 {
				w.log.Debug("node not Ready yet; giving it time to join", "node", name, "recheck_in", wait)
				w.queue.AddAfter(name, wait)
			}
			return err
		}
	}
	published, err := w.cfg.Store.ObserveNodeHealth(ctx, o)
	if err != nil {
		return err
	}
	if published {
		w.log.Warn("node unhealthy", "node", name, "reason", o.Reason, "conditions", o.Conditions)
	}
	return nil
}

// joining returns how much longer a node that is not Ready should be given
// to join: its remaining JoinGrace if it has never been recorded, else 0.
func (w *Watcher) joining(ctx context.Context, node *corev1.Node) (time.Duration, error) {
	left := w.cfg.JoinGrace - time.Since(node.CreationTimestamp.Time)
	if w.cfg.JoinGrace < 0 || left <= 0 {
		return 0, nil
	}
	_, err := w.cfg.Store.GetNodeHealth(ctx, node.Name)
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		return left, nil
	case err != nil:
		return 0, err
	default:
		return 0, nil // known: a failure, not a join
	}
}

// observe is what is recorded about node.
func observe(node *corev1.Node) schemas.NodeHealthObservation {
	h := activities.NodeHealthOf(node)
	return schemas.NodeHealthObservation{Node: node.Name, Healthy: h.Ready, Reason: h.Reason,
		Conditions: h.Conditions, ReadySince: h.ReadySince}
}

func sameObservation(a, b schemas.NodeHealthObservation) bool {
	return a.Node == b.Node && a.Healthy == b.Healthy && a.Reason == b.Reason &&
		slices.Equal(a.Conditions, b.Conditions) && a.ReadySince.Equal(b.ReadySince)
}
