package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRetiredWebhookSigningSecret: WEBHOOK_SIGNING_SECRET, once documented
// but never read, no longer stops a start when short, and the server and
// the worker are told it is ignored, without its value.
func TestRetiredWebhookSigningSecret(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": goodDB, "JWT_SECRET": goodJWT, "WEBHOOK_SIGNING_SECRET": "hunter4"}
	srv, err := readServerConfig(lookupFrom(env))
	require.NoError(t, err)
	wrk, err := readWorkerConfig(lookupFrom(env))
	require.NoError(t, err)
	for _, retired := range [][]string{srv.Retired, wrk.Retired} {
		require.Len(t, retired, 1)
		require.Contains(t, retired[0], "WEBHOOK_SIGNING_SECRET is no longer read")
		require.Contains(t, retired[0], "rotate-secret")
		require.NotContains(t, retired[0], "hunter4")
	}

	delete(env, "WEBHOOK_SIGNING_SECRET")
	srv, err = readServerConfig(lookupFrom(env))
	require.NoError(t, err)
	require.Empty(t, srv.Retired)
}
