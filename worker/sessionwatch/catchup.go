package sessionwatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// Store lists the sessions whose Session should exist; *schemas.Store is
// one.
type Store interface {
	// StartedSessionIDs lists the sessions in namespace recorded Running or
	// Hibernated (not those still being created, nor ended ones).
	StartedSessionIDs(ctx context.Context, namespace string) ([]string, error)
}

// DefaultCatchUpEvery is how often the watcher compares the started
// sessions with the Sessions when Config.CatchUpEvery is zero.
const DefaultCatchUpEvery = 5 * time.Minute

// catchUpRetry is how soon a comparison that failed (database or API server
// unreachable) is tried again, when that is sooner than the next one.
const catchUpRetry = 30 * time.Second

// catchUpTimeout bounds one comparison.
const catchUpTimeout = time.Minute

// catchUp compares the started sessions with the Sessions once the informer
// has synced and then every Config.CatchUpEvery until ctx ends, reporting
// each session without a Session as deleted: it was deleted while no
// watcher ran (or its delete was missed), and its row would stay live.
func (w *Watcher) catchUp(ctx context.Context, cached cache.Store) {
	for {
		delay := w.cfg.CatchUpEvery
		if delay <= 0 {
			delay = DefaultCatchUpEvery
		}
		pctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
		err := w.catchUpOnce(pctx, cached)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			delay = min(delay, catchUpRetry)
			w.log.Warn("cannot compare the started sessions with their Sessions; retrying", "err", err, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// catchUpOnce queues an ObservedDeleted for each started session whose
// Session neither the informer's cache nor the API server has. The API
// server is asked before a session is reported: the cache may not have
// seen a Session made a moment ago yet, and reporting that one would end a
// live session.
func (w *Watcher) catchUpOnce(ctx context.Context, cached cache.Store) error {
	ns := w.cfg.Kube.Namespace
	ids, err := w.cfg.Store.StartedSessionIDs(ctx, ns)
	if err != nil {
		return err
	}
	sessions := w.cfg.Kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns)
	var errs []error
	for _, id := range ids {
		if _, ok, _ := cached.GetByKey(ns + "/" + id); ok {
			continue
		}
		_, err := sessions.Get(ctx, id, metav1.GetOptions{})
		if err == nil {
			continue
		}
		if !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("session %s: %w", id, err))
			continue
		}
		w.log.Info("session has no Session (deleted while not watched); reporting it deleted", "session", id)
		w.queue.Add(observation{session: id, ev: workflows.SessionObserved{Change: workflows.ObservedDeleted}})
	}
	return errors.Join(errs...)
}
