// Command k8sbins builds the local Kubernetes control plane's binaries into
// the cache ($STREAMSPACE_CACHE_DIR, else ~/.cache/streamspace) if any is
// missing, and prints where they are: `make k8s-bins`. `streamspace dev` and
// `streamspace testenv` do the same on their own; this is for building ahead
// (about 10 minutes on two cores, once, saying which binary it is on, n of m
// and the time elapsed, at least every 30 s). Run it inside the repository, which
// holds the deploy/k8sbins module the binaries are built from.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/devstack"
	"github.com/streamspace/enterprise/internal/kubestack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "k8sbins:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cacheDir := os.Getenv("STREAMSPACE_CACHE_DIR")
	var err error
	if cacheDir == "" {
		cacheDir, err = devstack.DefaultCacheDir()
	} else {
		cacheDir, err = filepath.Abs(cacheDir)
	}
	if err != nil {
		return err
	}
	module, _ := kubestack.FindBuildModule(".") // EnsureBinaries says so if a build needs it
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	progress := buildprogress.New(logger, cacheDir, kubestack.MissingBinaries(cacheDir))
	bins, err := kubestack.EnsureBinaries(ctx, cacheDir, module, progress)
	if err != nil {
		return err
	}
	progress.Finish()
	for _, path := range []string{bins.APIServer, bins.Etcd, bins.ControllerManager, bins.Scheduler, bins.Kubectl, bins.Kwok, bins.MetricsServer} {
		fmt.Println(path)
	}
	return nil
}
