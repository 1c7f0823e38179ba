package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// BenchmarkSessionStartBesideDeadEndpoint is the isolation figure: 50
// sessions started on a quiet stack, then 50 more while 10 webhooks whose
// receiver is gone (connection refused) fail 10,000 deliveries (published
// just before, so first attempts, circuits opening and retries all overlap
// the starts), and the
// ratio of the two times until all are Running (the aim: within 20 %).
// Deleting the webhooks through the API must then leave no run on the
// events task queue; the benchmark fails if one is left after a minute.
//
//	make build && bin/streamspace testenv -- go test -run '^$' -bench SessionStartBesideDeadEndpoint -benchtime 1x ./cmd/streamspace/
func BenchmarkSessionStartBesideDeadEndpoint(b *testing.B) {
	const sessions, nodes, clients, webhooks, events = 50, 20, 16, 10, 1000
	s := newSessionBench(b, nodes)
	for b.Loop() {
		quiet := s.start(b, sessions, clients)
		s.end(b, quiet)

		dead := "http://" + closedAddr(b) + "/hook"
		var ids []string
		for i := range webhooks {
			status, body := s.api.do("POST", "/api/webhooks", fmt.Sprintf(`{"name":"gone %d","url":%q,
				"events":["node.unhealthy"],"retry_policy":{"max_attempts":10,"backoff_seconds":1},"rate_limit_per_second":10000}`, i, dead))
			require.Equal(b, http.StatusCreated, status, body)
			var created struct{ ID string }
			require.NoError(b, json.Unmarshal([]byte(body), &created))
			ids = append(ids, created.ID)
		}
		publishNodeEvents(b, s, events)
		loaded := s.start(b, sessions, clients)
		var failed int
		require.NoError(b, s.pool.QueryRow(b.Context(),
			`SELECT count(*) FROM deliveries WHERE attempts > 0 AND state <> 'succeeded'`).Scan(&failed))
		s.end(b, loaded)

		quiet.report(b, "quiet-")
		loaded.report(b, "dead-")
		b.ReportMetric(loaded.all.Seconds()/quiet.all.Seconds(), "all-running-ratio")
		b.ReportMetric(float64(failed), "deliveries-failed-meanwhile")

		deleted := time.Now()
		for _, id := range ids {
			status, body := s.api.do("DELETE", "/api/webhooks/"+id, "")
			require.Equal(b, http.StatusNoContent, status, body)
		}
		query := "ExecutionStatus = 'Running' AND TaskQueue = '" + workflows.EventsTaskQueue(s.taskQueue) + "'"
		var open int64
		err := wait.PollUntilContextTimeout(b.Context(), 200*time.Millisecond, time.Minute, true,
			func(ctx context.Context) (bool, error) {
				res, err := s.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
				if err != nil {
					return false, err
				}
				open = res.GetCount()
				return open == 0, nil
			})
		require.NoError(b, err, "%d runs left on the events queue a minute after the webhooks were deleted", open)
		b.ReportMetric(time.Since(deleted).Seconds(), "s-until-no-retry-run")
	}
}

// closedAddr is a loopback address nothing listens on: a receiver gone away.
func closedAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	addr := l.Addr().String()
	require.NoError(b, l.Close())
	return addr
}

// publishNodeEvents commits n node.unhealthy events, 100 per transaction.
func publishNodeEvents(b *testing.B, s *sessionBench, n int) {
	store := &schemas.Store{Pool: s.pool}
	for sent := 0; sent < n; sent += 100 {
		require.NoError(b, store.InTx(b.Context(), func(tx pgx.Tx) error {
			for i := range min(100, n-sent) {
				_, err := schemas.Publish(b.Context(), tx, schemas.Event{Type: schemas.EventNodeUnhealthy,
					Data: schemas.NodeUnhealthyData{NodeName: fmt.Sprint("node-", sent+i), Reason: "NotReady"}})
				if err != nil {
					return err
				}
			}
			return nil
		}))
	}
}
