package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// runWorker runs worker.Run on taskQueue, its workflow IDs prefixed with
// prefix, until the returned stop is called
// (or the test ends) and answers Run's result.
func runWorker(t *testing.T, tc client.Client, taskQueue, prefix string, store *schemas.Store) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, tc, taskQueue, worker.Deps{Store: store, IDPrefix: prefix}, worker.Options{}, slog.New(slog.DiscardHandler))
	}()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// The worker creates the hourly prune Schedule at start, where operators
// find it in the Web UI; a second worker (a restart, another replica) finds
// it there and starts all the same.
func TestWorkerCreatesPruneSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	taskQueue := "test-" + uuid.NewString()
	// A deployment of its own: other tests' workers share this Temporal.
	prefix := "t-" + uuid.NewString()[:8]
	id := prefix + "/" + workflows.PruneSignalsScheduleID
	h := tc.ScheduleClient().GetHandle(ctx, id)
	t.Cleanup(func() { _ = h.Delete(context.Background()) })

	stop := runWorker(t, tc, taskQueue, prefix, store)
	var desc *client.ScheduleDescription
	require.Eventually(t, func() bool {
		var err error
		desc, err = h.Describe(ctx)
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "schedule %s never appeared", id)

	require.Equal(t, enums.SCHEDULE_OVERLAP_POLICY_SKIP, desc.Schedule.Policy.Overlap)
	require.Len(t, desc.Schedule.Spec.Intervals, 1)
	require.Equal(t, time.Hour, desc.Schedule.Spec.Intervals[0].Every)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "action %T", desc.Schedule.Action)
	require.Equal(t, "PruneSecuritySignals", action.Workflow)
	require.Equal(t, taskQueue, action.TaskQueue)
	require.Equal(t, id, action.ID)
	require.False(t, desc.Schedule.State.Paused)
	require.NoError(t, stop())

	// A second start: the Schedule exists already, which is fine.
	wc := &workflows.Client{Temporal: tc, TaskQueue: taskQueue, IDPrefix: prefix}
	gotID, created, err := wc.EnsurePruneSignalsSchedule(ctx)
	require.NoError(t, err)
	require.Equal(t, id, gotID)
	require.False(t, created, "the schedule already existed")
	stop = runWorker(t, tc, taskQueue, prefix, store)
	require.NoError(t, stop())

	// Triggered now, its run prunes this installation's database.
	_, err = pool.Exec(ctx, `INSERT INTO security_signals (kind, subject, occurred_at)
		SELECT 'login_failure_account', 'gone-' || i, now() - interval '2 days' FROM generate_series(1, 3) AS i`)
	require.NoError(t, err)
	runWorker(t, tc, taskQueue, prefix, store)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM security_signals`).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 100*time.Millisecond, "the triggered prune did not delete the old rows")
}
