package worker_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/workflows"
)

// deadReceiver answers 503 to everything and counts the requests.
func deadReceiver(t *testing.T, n *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDeadEndpointsCostInProportionToEndpoints: 10 webhooks whose receivers
// answer 503 to 10,000 deliveries, beside one that works. The working one
// gets every event; each dead one's retry loop opens its circuit, after
// which new events cost the dead endpoints no request (only a probe now and
// then) and Temporal one run per webhook, not one per delivery; deleting
// the dead webhooks leaves no run behind.
func TestDeadEndpointsCostInProportionToEndpoints(t *testing.T) {
	t.Parallel()
	s := newHubStack(t)
	var deadRequests atomic.Int64
	var dead []uuid.UUID
	for range 10 {
		dead = append(dead, s.webhook(deadReceiver(t, &deadRequests), []int{1}, 10000))
	}
	ok := newDedupReceiver(t, false)
	s.webhook(ok.URL, []int{1}, 10000)
	stop := s.runWorker()
	defer stop()

	circuitsOpen := func() bool {
		var n int
		require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM webhooks WHERE circuit_open`).Scan(&n))
		return n == len(dead)
	}
	received := func(want int) func() bool {
		return func() bool { total, distinct := ok.counts(); return total == want && distinct == want }
	}
	s.publish(1000, 100)
	s.waitFor("the working webhook got every event and the dead ones' circuits opened", 3*time.Minute,
		func() bool { return received(1000)() && circuitsOpen() })
	// First attempts, then at most a round of the loop each before the
	// circuit opened, and a few probes.
	afterBurst := deadRequests.Load()
	require.LessOrEqual(t, afterBurst, int64(10000+len(dead)*(50+5)), "requests to the dead endpoints")

	s.publish(200, 100)
	s.waitFor("the working webhook got the new events", 2*time.Minute, received(1200))
	s.waitFor("every new event finished", time.Minute, func() bool {
		var n int
		require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM events WHERE dispatch_state = 'completed'`).Scan(&n))
		return n == 1200
	})
	require.LessOrEqual(t, deadRequests.Load()-afterBurst, int64(len(dead)*5),
		"no first attempt to an open circuit: only probes")
	var waiting int
	require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM deliveries
		WHERE state IN ('pending', 'retrying') AND NOT own_run`).Scan(&waiting))
	require.Equal(t, 12000, waiting, "every dead delivery waits for its loop")
	var finished int
	require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM deliveries WHERE state = 'succeeded'`).Scan(&finished))
	require.Equal(t, 1200, finished, "the working webhook's")

	// One run per dead webhook, no run per delivery.
	loops := make([]string, len(dead))
	for i, id := range dead {
		loops[i] = workflows.TargetRetriesWorkflowID(workflows.WebhookTarget(id))
		desc, err := s.temporal.DescribeWorkflowExecution(s.ctx, loops[i], "")
		require.NoError(t, err)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status)
	}
	open := func() int64 {
		res, err := s.temporal.CountWorkflow(s.ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Query: "ExecutionStatus = 'Running' AND TaskQueue = '" + workflows.EventsTaskQueue(s.taskQueue) + "'"})
		require.NoError(t, err)
		return res.GetCount()
	}
	s.waitFor("the visibility store lists the loops", 30*time.Second, func() bool { return open() == int64(len(dead)) })

	// Deleted as the API deletes them: no run is left.
	for i, id := range dead {
		cancelled, err := s.store.DeleteWebhook(s.ctx, id)
		require.NoError(t, err)
		require.Empty(t, cancelled.Runs)
		require.NoError(t, s.wc.EndTargetRetries(s.ctx, workflows.WebhookTarget(id)))
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		err = s.temporal.GetWorkflow(ctx, loops[i], "").Get(ctx, nil)
		cancel()
		require.True(t, temporal.IsCanceledError(err), "loop %s: %v", loops[i], err)
	}
	s.waitFor("no run left on the events queue", 30*time.Second, func() bool { return open() == 0 })
}
