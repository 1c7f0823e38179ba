// Package worker assembles the Temporal worker: Register is the one place that
// lists every workflow and activity, shared by the streamspace binary and the
// tests, and Run drives a worker until its context ends.
package worker

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// Deps are the dependencies the activities need.
type Deps struct {
	Store *schemas.Store
	// Kube is the cluster sessions run on; nil leaves the session
	// activities unregistered (a worker without Kubernetes).
	Kube *activities.Kube
	// Quota is the default per-user session quota.
	Quota schemas.Quota
	// Deliveries delivers events to webhooks and integrations; nil = one
	// over Store with the defaults (public addresses only, no integration
	// senders, no ENCRYPTION_KEY).
	Deliveries *activities.Deliveries
	// Waker wakes the targets' retry loops for the deliveries (nil = Run's
	// Temporal client on its task queue).
	Waker activities.RetryWaker
	// Sessions ends a deleted user's sessions through their runs (nil =
	// Run's Temporal client on its task queue).
	Sessions activities.SessionEnder
	// IDPrefix is the deployment's workflow ID prefix of Run's Temporal
	// client (workflows.Client.IDPrefix; "" = legacy, unprefixed IDs).
	IDPrefix string
}

// Register registers every workflow and activity on r.
func Register(r worker.Registry, deps Deps) {
	r.RegisterWorkflow(workflows.DispatchEvents)
	r.RegisterWorkflow(workflows.DispatchEvent) // runs started before batched dispatch
	r.RegisterActivity(&activities.Events{Store: deps.Store})
	r.RegisterWorkflow(workflows.SessionLifecycle)
	deliveries := deps.Deliveries
	if deliveries == nil {
		deliveries = &activities.Deliveries{Store: deps.Store}
	}
	if deliveries.Waker == nil {
		deliveries.Waker = deps.Waker
	}
	r.RegisterActivity(deliveries)
	r.RegisterWorkflow(workflows.TargetRetries)
	r.RegisterWorkflow(workflows.DeliverWithRetry) // deliveries planned before the retry loops
	r.RegisterWorkflow(workflows.TestDelivery)
	r.RegisterWorkflow(workflows.EndDeliveryRuns)
	r.RegisterWorkflow(workflows.IPGrant)
	r.RegisterActivity(&activities.IPGrants{Store: deps.Store})
	r.RegisterWorkflow(workflows.PruneSecuritySignals)
	r.RegisterActivity(&activities.SecuritySignals{Store: deps.Store})
	r.RegisterWorkflow(workflows.DeleteUser)
	r.RegisterActivity(&activities.Users{Store: deps.Store, Kube: deps.Kube, Sessions: deps.Sessions})
	if deps.Kube != nil {
		r.RegisterActivity(&activities.Sessions{Kube: deps.Kube, Store: deps.Store, Quota: deps.Quota})
	}
}

// Options tune the two workers Run starts; zero fields take the SDK's
// defaults.
type Options struct {
	Main   worker.Options // taskQueue: sessions, grants, test sends
	Events worker.Options // workflows.EventsTaskQueue(taskQueue): batches and deliveries
}

// Pollers of the two task queues' workers, as `make bench-sessions` and
// `make bench-webhooks` chose them on the 2-core development machine.
//
// DefaultPollers is the fixed number of workflow-task and activity-task
// pollers of the main queue (TEMPORAL_WORKER_POLLERS), where sessions
// start. 200 sessions started at once waited for their first workflow task
// p50 11 s with the SDK's 2 pollers, 5-7 s with 8, about 1 s with 32. The
// SDK's poller autoscaling looked as fast at p50 but, against the Temporal
// dev server, lost workflow tasks handed to polls it was cancelling while
// scaling down: each such session waited the 10 s workflow-task timeout (p99
// 10-11 s; fixed 32: p99 4.6-5.1 s).
//
// DefaultEventsPollers is the fixed number of each kind on the events
// queue (TEMPORAL_EVENTS_POLLERS): 8 delivered the burst of 2,000 events
// to 10 webhooks at 3,088/s; scaling to 32 measured 2,238/s.
const (
	DefaultPollers       = 32
	DefaultEventsPollers = 8
)

// PollerOptions are Options with main pollers of each kind on the main
// queue and events on the events queue (0 = the SDK's fixed 2).
func PollerOptions(main, events int) Options {
	var o Options
	if main > 0 {
		o.Main = worker.Options{MaxConcurrentWorkflowTaskPollers: main, MaxConcurrentActivityTaskPollers: main}
	}
	if events > 0 {
		o.Events = worker.Options{MaxConcurrentWorkflowTaskPollers: events, MaxConcurrentActivityTaskPollers: events}
	}
	return o
}

// Run polls the StreamSpace task queues until ctx ends: taskQueue, where
// sessions, grants and test sends run, and its events queue
// (workflows.EventsTaskQueue), where the batch runs and delivery retries
// run, each with a worker of its own, so a backlog of deliveries never takes
// the slots a session start needs. Both register everything (a run started
// on either queue by an older version still finds its code). While Temporal
// cannot be reached at start it keeps trying, so the process may start
// before Temporal does.
func Run(ctx context.Context, c client.Client, taskQueue string, deps Deps, opts Options, logger *slog.Logger) error {
	wc := &workflows.Client{Temporal: c, TaskQueue: taskQueue, IDPrefix: deps.IDPrefix}
	if deps.Waker == nil {
		deps.Waker = wc
	}
	if deps.Sessions == nil {
		deps.Sessions = wc
	}
	if deps.Deliveries == nil {
		deps.Deliveries = &activities.Deliveries{Store: deps.Store}
	}
	queues := []struct {
		name string
		opts worker.Options
	}{{taskQueue, opts.Main}, {workflows.EventsTaskQueue(taskQueue), opts.Events}}
	var started []worker.Worker
	defer func() {
		for _, w := range started {
			w.Stop()
		}
	}()
	for _, q := range queues {
		for delay := 500 * time.Millisecond; ; delay = min(delay*2, 15*time.Second) {
			// A worker's Start is memoised, failure included: retry with a new one.
			w := worker.New(c, q.name, q.opts)
			Register(w, deps)
			err := w.Start()
			if err == nil {
				started = append(started, w)
				break
			}
			logger.Warn("temporal worker cannot start yet; retrying", "task_queue", q.name, "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(delay):
			}
		}
		logger.Info("temporal worker polling", "task_queue", q.name)
	}
	ensureSchedules(ctx, wc, logger)
	<-ctx.Done()
	return nil
}

// ensureSchedules creates the Schedules the worker's workflows run on
// (the hourly security-signals prune), retrying until Temporal answers or
// ctx ends: the workers already poll, so a failure here only delays the
// first prune. A Schedule that already exists is left alone.
func ensureSchedules(ctx context.Context, wc *workflows.Client, logger *slog.Logger) {
	for delay := 500 * time.Millisecond; ; delay = min(delay*2, time.Minute) {
		id, created, err := wc.EnsurePruneSignalsSchedule(ctx)
		if err == nil {
			logger.Info("temporal schedule ready", "schedule_id", id, "created", created)
			return
		}
		logger.Warn("temporal schedule cannot be created yet; retrying", "schedule_id", id, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}
