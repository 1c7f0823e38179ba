package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker/nodewatch"
	"github.com/streamspace/enterprise/worker/sessionctl"
	"github.com/streamspace/enterprise/worker/sessionwatch"
	"github.com/streamspace/enterprise/workflows"
)

// runKube runs the worker's Kubernetes loops until ctx ends: the session
// controller (unless SESSION_CONTROLLER=false), the session watch that
// tells a session's run when its Session is deleted or fails behind its
// back (and catches up on Sessions deleted while no worker ran), and the
// node health watch that publishes node.unhealthy. Without KUBECONFIG it
// runs nothing.
func runKube(ctx context.Context, cfg WorkerConfig, rt *runtime, wc *workflows.Client, wg *sync.WaitGroup, fail func(error)) {
	if rt.Kube == nil {
		return
	}
	wg.Go(func() {
		ensureNamespace(ctx, rt)
	})
	if cfg.Sessions.Controller {
		ctl, err := sessionctl.New(sessionctl.Config{Kube: rt.Kube, Workers: cfg.Sessions.ControllerWorkers,
			Home: cfg.Sessions.Home, Logger: rt.Logger.With("component", "sessionctl")})
		if err != nil {
			fail(err)
			return
		}
		wg.Go(func() {
			if err := ctl.Run(ctx); err != nil {
				fail(fmt.Errorf("session controller: %w", err))
			}
		})
	} else {
		rt.Logger.Info("session controller off (SESSION_CONTROLLER=false): another controller turns Sessions into pods")
	}
	store := &schemas.Store{Pool: rt.Pool}
	sessions := sessionwatch.New(sessionwatch.Config{Kube: rt.Kube, Signaler: wc, Store: store,
		Logger: rt.Logger.With("component", "sessionwatch")})
	wg.Go(func() {
		if err := sessions.Run(ctx); err != nil {
			fail(fmt.Errorf("session watch: %w", err))
		}
	})
	watch := nodewatch.New(nodewatch.Config{Kube: rt.Kube, Store: store,
		Logger: rt.Logger.With("component", "nodewatch")})
	wg.Go(func() {
		if err := watch.Run(ctx); err != nil {
			fail(fmt.Errorf("node watch: %w", err))
		}
	})
}

// ensureNamespace creates the sessions' namespace when it is missing,
// retrying while the API server is unreachable.
func ensureNamespace(ctx context.Context, rt *runtime) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rt.Kube.Namespace}}
	for delay := 500 * time.Millisecond; ctx.Err() == nil; delay = min(delay*2, 30*time.Second) {
		_, err := rt.Kube.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		if apierrors.IsForbidden(err) {
			rt.Logger.Warn("cannot create the sessions' namespace; create it yourself", "namespace", ns.Name, "err", err)
			return
		}
		rt.Logger.Warn("cannot create the sessions' namespace yet; retrying", "namespace", ns.Name, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}
