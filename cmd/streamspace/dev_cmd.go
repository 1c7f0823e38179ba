package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/streamspace/enterprise/internal/devstack"
	"github.com/streamspace/enterprise/schemas"
)

// cmdDev runs the whole local stack in one process tree: PostgreSQL and the
// Temporal dev server (unless DATABASE_URL / TEMPORAL_ADDRESS point elsewhere),
// migrations, the worker with its relay, and the API server. Ctrl-C stops
// everything; state under DEV_DATA_DIR (.data) is kept for the next run.
func cmdDev(ctx context.Context, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	cfg, err := readDevConfig(lookup)
	if err != nil {
		return configError(err)
	}
	logger := newLogger(cfg.Log, stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("DEV_DATA_DIR: %w", err)
	}

	if cfg.DatabaseURL == "" {
		pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{
			DataDir: filepath.Join(cfg.DataDir, "postgres"), Logger: logger})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer stopLogged(logger, "PostgreSQL", func() error { return pg.Stop(context.WithoutCancel(ctx)) })
		cfg.DatabaseURL = pg.URL()
	}

	uiURL := "(your Temporal cluster's Web UI)"
	if cfg.Temporal.Address == "" {
		cli, err := temporalCLI(ctx, cfg.TemporalCLI, cfg.CacheDir, logger)
		if err != nil {
			return err
		}
		tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
			CLIPath:          cli,
			DBFile:           filepath.Join(cfg.DataDir, "temporal.db"),
			UIPort:           cfg.UIPort,
			Namespace:        cfg.Temporal.Namespace,
			SearchAttributes: searchAttributeFlags(),
			LogFile:          filepath.Join(cfg.DataDir, "temporal.log"),
			Logger:           logger,
		})
		if err != nil {
			return fmt.Errorf("start Temporal: %w", err)
		}
		defer stopLogged(logger, "Temporal", tmp.Stop)
		cfg.Temporal.Address = tmp.Address()
		uiURL = tmp.UIURL()
	}

	if cfg.Auth.SigningKeyFile == "" && cfg.Auth.Secret == nil {
		if cfg.Auth.SigningKeyFile, err = ensureDevSigningKey(filepath.Join(cfg.DataDir, "jwt-signing-key.pem")); err != nil {
			return err
		}
	}
	rt, err := openRuntime(ctx, cfg.Common, stderr)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := migrateUp(ctx, rt.Pool, io.Discard); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := bootstrapAdmin(ctx, &schemas.Store{Pool: rt.Pool}, cfg.Auth, stdout); err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := runWorker(ctx, cfg.worker(), rt); err != nil {
			cancel(fmt.Errorf("worker: %w", err))
		}
	})
	wg.Go(func() {
		if err := runServer(ctx, cfg.server(), rt); err != nil {
			cancel(fmt.Errorf("server: %w", err))
		}
	})
	printDevBanner(stdout, cfg, uiURL)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintln(stdout, "streamspace dev: stopped")
	return nil
}

func printDevBanner(w io.Writer, cfg DevConfig, uiURL string) {
	api := "http://" + cfg.HTTP.ListenAddr
	fmt.Fprintf(w, `
StreamSpace Enterprise dev stack is up (Ctrl-C stops it; state kept in %s)

  API              %s        (readiness: %s/readyz)
  API docs         %s/api/docs
  Metrics          %s/metrics
  Temporal Web UI  %s        (namespace %q; DispatchEvent runs are tagged StreamSpaceEventType)
  Temporal gRPC    %s
  PostgreSQL       DATABASE_URL=%s

Publish an event and watch its DispatchEvent run in the Web UI:
  DATABASE_URL='...as above...' bin/streamspace publish node.unhealthy '{"node_name":"worker-1","reason":"NotReady"}'

Sign in (the first run printed the admin's one-time password above):
  curl -s -X POST %s/api/auth/login -d '{"username":"%s","password":"..."}'

`, cfg.DataDir, api, api, api, api, uiURL, cfg.Temporal.Namespace, cfg.Temporal.Address, cfg.DatabaseURL, api, cfg.Auth.BootstrapUsername)
}

// stopLogged stops a dependency at shutdown and logs a failure to do so.
func stopLogged(logger interface{ Error(string, ...any) }, what string, stop func() error) {
	if err := stop(); err != nil {
		logger.Error("stop "+what, "err", err)
	}
}
