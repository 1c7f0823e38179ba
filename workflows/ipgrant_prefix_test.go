package workflows

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/internal/wfid"
)

// Deployment prefixes against the Temporal dev server: two deployments
// sharing a namespace each have their own ipgrant/<id> run, and a run
// started before the prefix (legacy ID) is still reached.
func TestIPGrantPrefixesLive(t *testing.T) {
	t.Parallel()
	g := newLiveGrants(t)
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	queue := "ipgrant-prefix-test-" + uuid.NewString()
	w := sdkworker.New(tc, queue, sdkworker.Options{})
	w.RegisterWorkflow(IPGrant)
	w.RegisterActivity(&activities.IPGrants{Store: g.store})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deployment := func(prefix string) *Client {
		return &Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: queue, IDPrefix: prefix}
	}
	suffix := uuid.NewString()[:8] // the dev server is shared with other runs of this test
	randomID := func() int64 { return rand.Int64N(1<<53) + 1<<40 }

	describe := func(workflowID string) (runID string, status enums.WorkflowExecutionStatus, err error) {
		d, err := tc.DescribeWorkflowExecution(ctx, workflowID, "")
		if err != nil {
			return "", 0, err
		}
		info := d.GetWorkflowExecutionInfo()
		return info.GetExecution().GetRunId(), info.GetStatus(), nil
	}
	running := func(workflowID string) string {
		t.Helper()
		run, st, err := describe(workflowID)
		require.NoError(t, err, workflowID)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, st, workflowID)
		return run
	}
	expiry := func(workflowID string) time.Time {
		t.Helper()
		v, err := tc.QueryWorkflow(ctx, workflowID, "", QueryStatus)
		require.NoError(t, err, workflowID)
		var st IPGrantStatus
		require.NoError(t, v.Get(&st))
		return st.ExpiresAt
	}
	outcome := func(workflowID, runID string) string {
		t.Helper()
		var res IPGrantResult
		require.NoError(t, tc.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res))
		return res.Outcome
	}
	hours := func(n int) *time.Time {
		at := time.Now().Add(time.Duration(n) * time.Hour).UTC().Truncate(time.Microsecond)
		return &at
	}

	t.Run("TwoDeploymentsSameEntryID", func(t *testing.T) {
		// Both databases have an allowlist entry with this id.
		id := g.grant(randomID(), "192.0.2.0/24", "clock_timestamp() + interval '1 hour'")
		a, b := deployment("dep-a-"+suffix), deployment("dep-b-"+suffix)
		require.NoError(t, a.SetIPGrantExpiry(ctx, id, hours(1)))
		require.NoError(t, b.SetIPGrantExpiry(ctx, id, hours(2)), "b's start does not collide with a's run")
		aID, bID := wfid.Join(a.IDPrefix, IPGrantID(id)), wfid.Join(b.IDPrefix, IPGrantID(id))
		aRun, bRun := running(aID), running(bID)
		require.NotEqual(t, aRun, bRun)
		require.True(t, expiry(aID).Before(expiry(bID)), "each deployment's Update reached its own run")

		// Ending a's grant leaves b's running.
		require.NoError(t, a.SetIPGrantExpiry(ctx, id, nil))
		require.Equal(t, IPGrantNoExpiry, outcome(aID, aRun))
		require.Equal(t, bRun, running(bID))
		require.NoError(t, b.SetIPGrantExpiry(ctx, id, nil))
		require.Equal(t, IPGrantNoExpiry, outcome(bID, bRun))
	})

	t.Run("LegacyRunStillReached", func(t *testing.T) {
		id := g.grant(randomID(), "198.51.100.0/24", "clock_timestamp() + interval '1 hour'")
		// Started by the version before prefixes: ipgrant/<id>.
		require.NoError(t, deployment("").SetIPGrantExpiry(ctx, id, hours(1)))
		legacyID := IPGrantID(id)
		legacyRun := running(legacyID)

		upgraded := deployment("dep-" + suffix)
		prefixedID := wfid.Join(upgraded.IDPrefix, legacyID)
		extended := hours(3)
		require.NoError(t, upgraded.SetIPGrantExpiry(ctx, id, extended))
		require.Equal(t, legacyRun, running(legacyID), "the legacy run took the new expiry")
		require.True(t, expiry(legacyID).Equal(*extended))
		_, _, err := describe(prefixedID)
		var notFound *serviceerror.NotFound
		require.ErrorAs(t, err, &notFound, "no second run for the same grant")

		// Ending it reaches the legacy run too.
		require.NoError(t, upgraded.SetIPGrantExpiry(ctx, id, nil))
		require.Equal(t, IPGrantNoExpiry, outcome(legacyID, legacyRun))

		// Once the legacy run has ended, a new expiry starts the prefixed run.
		require.NoError(t, upgraded.SetIPGrantExpiry(ctx, id, hours(1)))
		prefixedRun := running(prefixedID)
		require.NoError(t, upgraded.SetIPGrantExpiry(ctx, id, nil))
		require.Equal(t, IPGrantNoExpiry, outcome(prefixedID, prefixedRun))
	})
}
