package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

// childEnv names the subcommand a re-executed test binary runs instead of
// the tests (the session benchmark measures the worker's and the server's
// memory as separate processes).
const childEnv = "STREAMSPACE_TEST_CHILD"

func TestMain(m *testing.M) {
	if cmd := os.Getenv(childEnv); cmd != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, strings.Fields(cmd), os.LookupEnv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	kubetest.Main(m)
}
