package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
)

// runtime is what a server or worker process opens once and shares: the
// logger, the metrics registry, the database pool, the Temporal client and,
// when KUBECONFIG is set, the Kubernetes clients.
type runtime struct {
	Logger   *slog.Logger
	Metrics  *metrics
	Pool     *pgxpool.Pool
	Temporal client.Client
	Kube     *activities.Kube // nil without KUBECONFIG
}

func openRuntime(ctx context.Context, cfg Common, logOut io.Writer) (*runtime, error) {
	logger := newLogger(cfg.Log, logOut)
	for _, w := range cfg.Retired {
		logger.Warn(w)
	}
	m, err := newMetrics(logger)
	if err != nil {
		return nil, err
	}
	pool, err := schemas.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	tc, err := openTemporal(cfg.Temporal, logger, m)
	if err != nil {
		pool.Close()
		return nil, err
	}
	rt := &runtime{Logger: logger, Metrics: m, Pool: pool, Temporal: tc}
	if cfg.Kubeconfig != "" {
		if rt.Kube, err = activities.NewKubeClient(cfg.Kubeconfig); err != nil {
			rt.Close()
			return nil, err
		}
		rt.Kube.Namespace = cfg.Sessions.Namespace
	} else {
		logger.Warn("KUBECONFIG is not set: sessions, templates and nodes are unavailable")
	}
	return rt, nil
}

// Close releases the pool and the Temporal client.
func (rt *runtime) Close() {
	rt.Temporal.Close()
	rt.Pool.Close()
}
