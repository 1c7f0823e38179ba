package main

import (
	"context"
	"log/slog"

	"github.com/streamspace/enterprise/internal/devstack"
	"github.com/streamspace/enterprise/workflows"
)

// temporalCLI returns the Temporal CLI to run: TEMPORAL_CLI when set, else
// the pinned version, built into the cache on first use.
func temporalCLI(ctx context.Context, override, cacheDir string, logger *slog.Logger) (string, error) {
	if override != "" {
		return override, nil
	}
	if cacheDir == "" {
		var err error
		if cacheDir, err = devstack.DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	return devstack.EnsureTemporalCLI(ctx, cacheDir, logger)
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
