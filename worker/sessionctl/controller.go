package sessionctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// Defaults for the zero values of Config.
const (
	DefaultWorkers = 4
	DefaultResync  = 10 * time.Minute
)

// reconcileTimeout bounds one reconcile's API calls.
const reconcileTimeout = 30 * time.Second

// Config configures a Controller.
type Config struct {
	// Kube is the cluster; Kube.Namespace holds the Sessions, Templates and
	// session pods. Required.
	Kube *activities.Kube
	// Workers reconcile sessions in parallel (one session is never
	// reconciled by two at once). Default DefaultWorkers.
	Workers int
	// Logger, default discard.
	Logger *slog.Logger
	// Resync re-queues every Session this often, a safety net for missed
	// events. Default DefaultResync; negative turns it off.
	Resync time.Duration
	// Home is how users' persistent home claims are made.
	Home Home
}

// Controller reconciles Sessions into pods. Make one with New and Run it
// once.
type Controller struct {
	kube    *activities.Kube
	ns      string
	workers int
	log     *slog.Logger
	home    Home

	sessions  cache.SharedIndexInformer
	templates cache.SharedIndexInformer
	pods      cache.SharedIndexInformer
	queue     workqueue.TypedRateLimitingInterface[string]

	started atomic.Bool
	synced  atomic.Bool
}

// New builds a Controller; nothing talks to the cluster until Run.
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Kube == nil || cfg.Kube.Clientset == nil || cfg.Kube.Dynamic == nil:
		return nil, errors.New("sessionctl: Config.Kube with a Clientset and a Dynamic client is required")
	case cfg.Kube.Namespace == "":
		return nil, errors.New("sessionctl: Config.Kube.Namespace is empty")
	case cfg.Workers < 0:
		return nil, fmt.Errorf("sessionctl: Workers = %d, want > 0", cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	switch {
	case cfg.Resync == 0:
		cfg.Resync = DefaultResync
	case cfg.Resync < 0:
		cfg.Resync = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ns := cfg.Kube.Namespace
	c := &Controller{
		kube:    cfg.Kube,
		ns:      ns,
		workers: cfg.Workers,
		home:    cfg.Home,
		log:     cfg.Logger.With("component", "sessionctl", "namespace", ns),
		sessions: dynamicinformer.NewFilteredDynamicInformer(cfg.Kube.Dynamic, kubeapi.SessionGVR, ns, cfg.Resync,
			cache.Indexers{byTemplate: sessionTemplateIndex}, nil).Informer(),
		templates: dynamicinformer.NewFilteredDynamicInformer(cfg.Kube.Dynamic, kubeapi.TemplateGVR, ns, 0,
			cache.Indexers{}, nil).Informer(),
		pods: coreinformers.NewFilteredPodInformer(cfg.Kube.Clientset, ns, 0, cache.Indexers{},
			func(o *metav1.ListOptions) { o.LabelSelector = kubeapi.LabelSession }),
		// A failed reconcile is retried after 100ms, doubling up to 2 minutes;
		// the clients' own QPS limit (activities.NewKube) paces the API calls.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 2*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "sessionctl"},
		),
	}
	if err := c.addHandlers(); err != nil {
		return nil, err
	}
	return c, nil
}

// HasSynced reports whether Run has filled the caches and started the
// workers.
func (c *Controller) HasSynced() bool { return c.synced.Load() }

// Run checks that the Session and Template resources are served, starts the
// informers, waits for their caches, and reconciles sessions with
// Config.Workers workers until ctx ends (then it returns nil, once the
// workers have finished their current reconcile). It may be called once.
func (c *Controller) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("sessionctl: Run called twice")
	}
	defer c.queue.ShutDown()
	if err := c.checkServed(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	var informers sync.WaitGroup
	for _, inf := range []cache.SharedIndexInformer{c.sessions, c.templates, c.pods} {
		informers.Go(func() { inf.RunWithContext(ctx) })
	}
	defer informers.Wait()

	began := time.Now()
	if !cache.WaitForCacheSync(ctx.Done(), c.sessions.HasSynced, c.templates.HasSynced, c.pods.HasSynced) {
		return nil // ctx ended
	}
	c.log.Info("session controller started", "workers", c.workers, "sessions", len(c.sessions.GetStore().ListKeys()),
		"cache_sync", time.Since(began).Round(time.Millisecond))

	var workers sync.WaitGroup
	for range c.workers {
		workers.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	c.synced.Store(true)
	<-ctx.Done()
	c.queue.ShutDown()
	workers.Wait()
	c.synced.Store(false)
	c.log.Info("session controller stopped")
	return nil
}

// checkServed fails with a clear message when the CRDs are not installed
// (the informers would otherwise retry their lists quietly forever).
func (c *Controller) checkServed(ctx context.Context) error {
	for _, gvr := range []schema.GroupVersionResource{kubeapi.SessionGVR, kubeapi.TemplateGVR} {
		_, err := c.kube.Dynamic.Resource(gvr).Namespace(c.ns).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case apierrors.IsNotFound(err):
			return fmt.Errorf("sessionctl: %s is not served by the cluster; install deploy/crds (kubectl apply --server-side -f deploy/crds/): %w", gvr.GroupResource(), err)
		case err != nil:
			return fmt.Errorf("sessionctl: list %s in namespace %s: %w", gvr.GroupResource(), c.ns, err)
		}
	}
	return nil
}

// processNext reconciles one session from the queue; false once the queue
// is shut down.
func (c *Controller) processNext(ctx context.Context) bool {
	name, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(name)
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	err := c.reconcile(rctx, name)
	cancel()
	switch {
	case err == nil:
		c.queue.Forget(name)
	case ctx.Err() != nil:
		// Shutting down: the next process reconciles it.
	default:
		c.log.Warn("reconcile session failed; retrying", "session", name, "err", err, "retries", c.queue.NumRequeues(name))
		c.queue.AddRateLimited(name)
	}
	return true
}
