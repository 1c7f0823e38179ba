package schemas_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// nodeUnhealthyEvents lists the node.unhealthy payloads about node, oldest
// first.
func nodeUnhealthyEvents(t *testing.T, pool *pgxpool.Pool, node string) []schemas.NodeUnhealthyData {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT payload FROM events
		WHERE type = 'node.unhealthy' AND payload->>'node_name' = $1 ORDER BY seq`, node)
	require.NoError(t, err)
	defer rows.Close()
	var out []schemas.NodeUnhealthyData
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var d schemas.NodeUnhealthyData
		require.NoError(t, json.Unmarshal(raw, &d))
		out = append(out, d)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestRecordNodeHealthTransitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	record := func(healthy bool, reason string, conditions ...string) bool {
		t.Helper()
		published, err := store.RecordNodeHealth(ctx, "worker-1", healthy, reason, conditions)
		require.NoError(t, err)
		return published
	}

	require.False(t, record(true, "KubeletReady"), "first sight healthy")
	require.False(t, record(true, "KubeletReady"), "still healthy")
	require.True(t, record(false, "KubeletNotReady: runtime down", "Ready=False", "MemoryPressure=True"), "healthy → unhealthy")
	rec, err := store.GetNodeHealth(ctx, "worker-1")
	require.NoError(t, err)
	require.False(t, rec.Healthy)
	require.Equal(t, []string{"Ready=False", "MemoryPressure=True"}, rec.Conditions)
	require.NotNil(t, rec.UnhealthyEventID)
	ev, err := store.GetEvent(ctx, *rec.UnhealthyEventID)
	require.NoError(t, err, "the row names the event it published")
	require.Equal(t, schemas.EventNodeUnhealthy, ev.Type)
	changed := rec.ChangedAt

	require.False(t, record(false, "NodeStatusUnknown", "Ready=Unknown"), "still unhealthy, another reason")
	rec, err = store.GetNodeHealth(ctx, "worker-1")
	require.NoError(t, err)
	require.Equal(t, "NodeStatusUnknown", rec.Reason, "the row keeps the latest reason")
	require.Equal(t, changed, rec.ChangedAt, "no transition, same changed_at")

	require.False(t, record(true, "KubeletReady"), "unhealthy → healthy publishes nothing")
	rec, err = store.GetNodeHealth(ctx, "worker-1")
	require.NoError(t, err)
	require.True(t, rec.Healthy)
	require.Nil(t, rec.UnhealthyEventID)
	require.Empty(t, rec.Conditions)

	require.True(t, record(false, "KubeletNotReady"), "a second failure is a second event")
	require.Equal(t, []schemas.NodeUnhealthyData{
		{NodeName: "worker-1", Reason: "KubeletNotReady: runtime down", Conditions: []string{"Ready=False", "MemoryPressure=True"}},
		{NodeName: "worker-1", Reason: "KubeletNotReady"},
	}, nodeUnhealthyEvents(t, pool, "worker-1"))

	// First sight as unhealthy (a watcher starting while the node is down).
	published, err := store.RecordNodeHealth(ctx, "worker-2", false, "KubeletNotReady", []string{"Ready=False"})
	require.NoError(t, err)
	require.True(t, published)
	require.Len(t, nodeUnhealthyEvents(t, pool, "worker-2"), 1)

	// A node that left and came back is new.
	require.NoError(t, store.DeleteNodeHealth(ctx, "worker-2"))
	_, err = store.GetNodeHealth(ctx, "worker-2")
	require.True(t, errors.Is(err, schemas.ErrNotFound), "%v", err)
}

// Several watchers (worker replicas) report the same transition at once:
// one event.
func TestRecordNodeHealthConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	race := func(node string) int {
		t.Helper()
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			published int
		)
		start := make(chan struct{})
		for range 12 {
			wg.Go(func() {
				<-start
				ok, err := store.RecordNodeHealth(ctx, node, false, "KubeletNotReady", []string{"Ready=False"})
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					published++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		return published
	}

	require.Equal(t, 1, race("new-node"), "first sight, unhealthy, from every replica at once")
	require.Len(t, nodeUnhealthyEvents(t, pool, "new-node"), 1)

	_, err := store.RecordNodeHealth(ctx, "known-node", true, "KubeletReady", nil)
	require.NoError(t, err)
	require.Equal(t, 1, race("known-node"), "healthy → unhealthy, from every replica at once")
	require.Len(t, nodeUnhealthyEvents(t, pool, "known-node"), 1)
}

// A watcher that lags behind another reports an older state: it is ignored,
// so the node's next report is no new transition.
func TestObserveNodeHealthIgnoresStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	observe := func(healthy bool, since time.Time) bool {
		t.Helper()
		published, err := store.ObserveNodeHealth(ctx, schemas.NodeHealthObservation{
			Node: "worker-1", Healthy: healthy, Reason: "r", ReadySince: since})
		require.NoError(t, err)
		return published
	}
	require.False(t, observe(true, t0))  // replica A: Ready since t0
	require.True(t, observe(false, t1))  // replica A: NotReady since t1
	require.False(t, observe(true, t0))  // replica B, lagging: still Ready since t0 — stale
	require.False(t, observe(false, t1)) // replica B catches up: no new transition
	rec, err := store.GetNodeHealth(ctx, "worker-1")
	require.NoError(t, err)
	require.False(t, rec.Healthy)
	require.Equal(t, t1, rec.ReadySince.UTC())
	require.Len(t, nodeUnhealthyEvents(t, pool, "worker-1"), 1)
}
