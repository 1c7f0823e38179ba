package main

import (
	"context"

	"github.com/streamspace/enterprise/internal/wfid"
	"github.com/streamspace/enterprise/schemas"
)

// workflowIDPrefix reads TEMPORAL_WORKFLOW_ID_PREFIX, checked with
// wfid.ValidatePrefix; unset, the prefix is derived at start.
func (e *envReader) workflowIDPrefix(name string) string {
	v, ok := e.raw(name)
	if !ok {
		return ""
	}
	if err := wfid.ValidatePrefix(v); err != nil {
		e.bad(name, v, err.Error())
	}
	return v
}

// workflowIDPrefix is the deployment's workflow ID prefix: the configured
// one, else wfid.FromDeployment of the deployment id a migration stored in
// PostgreSQL — the same for every replica and restart, and another for
// another database (docs/configuration.md says why that beats hashing
// DATABASE_URL). The database must be migrated.
func workflowIDPrefix(ctx context.Context, cfg TemporalConfig, rt *runtime) (string, error) {
	prefix := cfg.IDPrefix
	if prefix == "" {
		id, err := (&schemas.Store{Pool: rt.Pool}).DeploymentID(ctx)
		if err != nil {
			return "", err
		}
		prefix = wfid.FromDeployment(id)
	}
	rt.Logger.Info("workflow IDs carry the deployment prefix", "prefix", prefix)
	return prefix, nil
}
