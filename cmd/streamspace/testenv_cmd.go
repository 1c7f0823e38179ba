package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/streamspace/enterprise/internal/devstack"
)

// cmdTestenv runs a command (normally `go test ./...`) with the dependencies
// the integration tests need: a private PostgreSQL in a temporary directory
// and an in-memory Temporal dev server, unless DATABASE_URL or
// TEMPORAL_ADDRESS already point at ones, and the local Kubernetes binaries
// built into the cache (kubetest starts its clusters from them), so that a
// first build happens here, once, and not inside a test's timeout. The
// command sees DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TEMPORAL_CLI and STREAMSPACE_CACHE_DIR. It returns the command's exit
// status.
func cmdTestenv(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: streamspace testenv -- CMD [ARGS...]")
		return 2
	}
	e := newEnvReader(lookup)
	logCfg := readLog(e)
	dbURL := e.postgresURL("DATABASE_URL")
	temporalAddr := e.hostPort("TEMPORAL_ADDRESS", "")
	cliOverride, cacheDir := e.str("TEMPORAL_CLI", ""), e.str("STREAMSPACE_CACHE_DIR", "")
	if err := e.err(); err != nil {
		fmt.Fprintf(stderr, "streamspace testenv: %v\n", configError(err))
		return 2
	}
	logger := newLogger(logCfg, stderr)
	fail := func(err error) int {
		fmt.Fprintf(stderr, "streamspace testenv: %v\n", err)
		return 1
	}

	cacheDir, err := cacheDirOr(cacheDir)
	if err != nil {
		return fail(err)
	}
	env := append(os.Environ(), "STREAMSPACE_CACHE_DIR="+cacheDir)
	builds := firstRunBuilds(cacheDir, true, cliOverride == "", logger)
	if _, err := kubeBinaries(ctx, cacheDir, builds); err != nil {
		return fail(err)
	}
	cli, err := temporalCLI(ctx, cliOverride, cacheDir, builds)
	if err != nil {
		return fail(err)
	}
	builds.Finish()
	env = append(env, "TEMPORAL_CLI="+cli)
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "streamspace-testenv-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(dir)
		pg, err := devstack.StartPostgres(ctx, devstack.PostgresOptions{DataDir: dir + "/postgres", Logger: logger, NoSync: true, StatStatements: true})
		if err != nil {
			return fail(fmt.Errorf("start PostgreSQL: %w", err))
		}
		defer stopLogged(logger, "PostgreSQL", func() error { return pg.Stop(context.WithoutCancel(ctx)) })
		env = append(env, "DATABASE_URL="+pg.URL())
	}
	if temporalAddr == "" {
		tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
			CLIPath: cli, UIPort: -1, Namespace: "default", SearchAttributes: searchAttributeFlags(), Logger: logger})
		if err != nil {
			return fail(fmt.Errorf("start Temporal: %w", err))
		}
		defer stopLogged(logger, "Temporal", tmp.Stop)
		env = append(env, "TEMPORAL_ADDRESS="+tmp.Address(), "TEMPORAL_NAMESPACE=default")
	}

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, stdout, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		return fail(err)
	}
}

// cacheDirOr returns dir (STREAMSPACE_CACHE_DIR) made absolute, or the
// default cache directory when it is "".
func cacheDirOr(dir string) (string, error) {
	if dir == "" {
		return devstack.DefaultCacheDir()
	}
	return filepath.Abs(dir)
}
