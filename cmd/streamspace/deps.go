package main

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/streamspace/enterprise/server"
)

// openTemporal makes a lazy client: it connects on first use, so the server
// can start (and report "not ready") while Temporal is still coming up.
func openTemporal(cfg TemporalConfig, logger *slog.Logger, m *metrics) (client.Client, error) {
	var compression client.GrpcCompression
	if cfg.Compression == "none" {
		compression = &client.GrpcCompressionNone{}
	}
	c, err := client.NewLazyClient(client.Options{
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: compression},
		HostPort:          cfg.Address,
		Namespace:         cfg.Namespace,
		Logger:            tlog.NewStructuredLogger(logger.With("component", "temporal")),
		MetricsHandler:    m.Temporal,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal client for TEMPORAL_ADDRESS %s: %w", cfg.Address, err)
	}
	return c, nil
}

// readinessChecks are the dependencies /readyz checks.
func readinessChecks(rt *runtime, cfg Common) []server.Check {
	checks := []server.Check{
		{Name: "postgres", Check: rt.Pool.Ping},
		{Name: "temporal", Check: func(ctx context.Context) error {
			if _, err := rt.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
				return err
			}
			_, err := rt.Temporal.WorkflowService().DescribeNamespace(ctx,
				&workflowservice.DescribeNamespaceRequest{Namespace: cfg.Temporal.Namespace})
			return err
		}},
	}
	if rt.Kube != nil {
		checks = append(checks, server.Check{Name: "kubernetes", Check: rt.Kube.Ready})
	}
	return checks
}
