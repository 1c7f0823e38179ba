package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

func cmdWorker(ctx context.Context, lookup func(string) (string, bool), stderr io.Writer) error {
	cfg, err := readWorkerConfig(lookup)
	if err != nil {
		return configError(err)
	}
	rt, err := openRuntime(ctx, cfg.Common, stderr)
	if err != nil {
		return err
	}
	defer rt.Close()
	return runWorker(ctx, cfg, rt)
}

// runWorker runs the Temporal worker and the outbox relay (and, when
// WORKER_METRICS_ADDR is set, a /metrics listener) until ctx ends.
func runWorker(ctx context.Context, cfg WorkerConfig, rt *runtime) error {
	prefix, err := workflowIDPrefix(ctx, cfg.Temporal, rt)
	if err != nil {
		return err
	}
	wc := &workflows.Client{Temporal: rt.Temporal, Namespace: cfg.Temporal.Namespace, TaskQueue: cfg.Temporal.TaskQueue,
		IDPrefix: prefix}
	relay := &worker.Relay{
		Pool:    rt.Pool,
		Starter: wc,
		Logger:  rt.Logger.With("component", "relay"),
		Config:  cfg.Relay,
		Metrics: worker.NewRelayMetrics(rt.Metrics.Registry),
	}
	worker.NewBacklogCollector(rt.Metrics.Registry, &schemas.Store{Pool: rt.Pool}, rt.Logger.With("component", "backlog"))
	deliveries, err := hubDeliveries(cfg, rt)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() { ensureSearchAttributes(ctx, wc, rt) })
	wg.Go(func() {
		deps := worker.Deps{Store: &schemas.Store{Pool: rt.Pool}, Kube: rt.Kube, Quota: cfg.Sessions.Quota,
			Deliveries: deliveries, IDPrefix: prefix}
		if err := worker.Run(ctx, rt.Temporal, cfg.Temporal.TaskQueue, deps, worker.PollerOptions(cfg.Pollers.Main, cfg.Pollers.Events),
			rt.Logger); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() {
		if err := relay.Run(ctx); err != nil {
			cancel(err)
		}
	})
	runKube(ctx, cfg, rt, wc, &wg, cancel)
	if cfg.MetricsAddr != "" {
		wg.Go(func() {
			if err := serveMetrics(ctx, cfg.MetricsAddr, rt); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// ensureSearchAttributes registers the workflows' search attributes,
// retrying until Temporal answers.
func ensureSearchAttributes(ctx context.Context, wc *workflows.Client, rt *runtime) {
	for delay := 500 * time.Millisecond; ctx.Err() == nil; delay = min(delay*2, 30*time.Second) {
		err := wc.EnsureSearchAttributes(ctx)
		if err == nil {
			return
		}
		rt.Logger.Warn("cannot register search attributes yet; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

func serveMetrics(ctx context.Context, addr string, rt *runtime) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           promhttp.HandlerFor(rt.Metrics.Registry, promhttp.HandlerOpts{}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	rt.Logger.Info("worker metrics listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
