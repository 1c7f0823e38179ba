package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/streamspace/enterprise/internal/buildprogress"
	"github.com/streamspace/enterprise/internal/devstack"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/workflows"
)

// firstRunBuilds plans what a command has to build into cacheDir before it
// starts anything: the local Kubernetes binaries when kube, the Temporal CLI
// when temporal (in the order kubeBinaries and temporalCLI are called), and
// reports those builds on logger (Finish after the last one).
func firstRunBuilds(cacheDir string, kube, temporal bool, logger *slog.Logger) *buildprogress.Progress {
	var planned []string
	if kube {
		planned = append(planned, kubestack.MissingBinaries(cacheDir)...)
	}
	if temporal {
		planned = append(planned, devstack.MissingTemporalCLI(cacheDir)...)
	}
	return buildprogress.New(logger, cacheDir, planned)
}

// kubeBinaries returns the local Kubernetes control plane's binaries in
// cacheDir, building them first from deploy/k8sbins (found from the working
// directory upwards) if any is missing: about 10 minutes on two cores, once.
func kubeBinaries(ctx context.Context, cacheDir string, progress *buildprogress.Progress) (kubestack.Binaries, error) {
	// The module is needed only for a build; without one EnsureBinaries says
	// where to run from.
	module, _ := kubestack.FindBuildModule(".")
	bins, err := kubestack.EnsureBinaries(ctx, cacheDir, module, progress)
	if err != nil {
		return bins, fmt.Errorf("local Kubernetes binaries: %w", err)
	}
	return bins, nil
}

// temporalCLI returns the Temporal CLI to run: TEMPORAL_CLI when set, else
// the pinned version, built into the cache on first use.
func temporalCLI(ctx context.Context, override, cacheDir string, progress *buildprogress.Progress) (string, error) {
	if override != "" {
		return override, nil
	}
	if cacheDir == "" {
		var err error
		if cacheDir, err = devstack.DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	return devstack.EnsureTemporalCLI(ctx, cacheDir, progress)
}

// searchAttributeFlags renders the workflows' search attributes the way
// `temporal server start-dev --search-attribute` takes them (Name=Keyword).
func searchAttributeFlags() map[string]string {
	out := map[string]string{}
	for name, typ := range workflows.SearchAttributes() {
		out[name] = typ.String()
	}
	return out
}
