package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/schemas"
)

// runtime is what a server or worker process opens once and shares: the
// logger, the metrics registry, the database pool and the Temporal client.
type runtime struct {
	Logger   *slog.Logger
	Metrics  *metrics
	Pool     *pgxpool.Pool
	Temporal client.Client
}

func openRuntime(ctx context.Context, cfg Common, logOut io.Writer) (*runtime, error) {
	logger := newLogger(cfg.Log, logOut)
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
	return &runtime{Logger: logger, Metrics: m, Pool: pool, Temporal: tc}, nil
}

// Close releases the pool and the Temporal client.
func (rt *runtime) Close() {
	rt.Temporal.Close()
	rt.Pool.Close()
}
