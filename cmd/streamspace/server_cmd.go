package main

import (
	"context"
	"io"

	"github.com/streamspace/enterprise/server"
)

func cmdServer(ctx context.Context, lookup func(string) (string, bool), stderr io.Writer) error {
	cfg, err := readServerConfig(lookup)
	if err != nil {
		return configError(err)
	}
	rt, err := openRuntime(ctx, cfg.Common, stderr)
	if err != nil {
		return err
	}
	defer rt.Close()
	return runServer(ctx, cfg, rt)
}

// runServer serves the API until ctx ends.
func runServer(ctx context.Context, cfg ServerConfig, rt *runtime) error {
	checks, err := readinessChecks(rt.Pool, rt.Temporal, cfg.Common)
	if err != nil {
		return err
	}
	srv := server.New(cfg.HTTP, server.Deps{
		Logger:   rt.Logger,
		Registry: rt.Metrics.Registry,
		Checks:   checks,
	})
	return srv.Run(ctx)
}
