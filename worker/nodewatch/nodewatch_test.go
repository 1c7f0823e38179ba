package nodewatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker/nodewatch"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const notReadyLabel = "node-not-ready.stage.kwok.x-k8s.io"

// fixture is the shared cluster, a database, and this test's own nodes (the
// shared ones are left alone).
type fixture struct {
	t      *testing.T
	client kubernetes.Interface
	kube   *activities.Kube
	pool   *pgxpool.Pool
	store  *schemas.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cluster := kubetest.Cluster(t)
	client, err := cluster.Client()
	require.NoError(t, err)
	kube, err := activities.NewKube(cluster.RESTConfig())
	require.NoError(t, err)
	pool := testenv.DB(t)
	return &fixture{t: t, client: client, kube: kube, pool: pool, store: &schemas.Store{Pool: pool}}
}

// createNode creates a Ready simulated node, deleted when the test ends.
func (f *fixture) createNode(prefix string) string {
	f.t.Helper()
	names, err := kubestack.CreateNodes(f.t.Context(), f.client, 1, kubestack.NodeSpec{NamePrefix: prefix})
	require.NoError(f.t, err)
	f.t.Cleanup(func() {
		_ = f.client.CoreV1().Nodes().Delete(context.Background(), names[0], metav1.DeleteOptions{})
	})
	return names[0]
}

// setNotReady makes node NotReady (kwok's chaos stage) or Ready again, and
// waits until the node says so.
func (f *fixture) setNotReady(node string, notReady bool) {
	f.t.Helper()
	value := `null`
	if notReady {
		value = `"true"`
	}
	_, err := f.client.CoreV1().Nodes().Patch(f.t.Context(), node, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"`+notReadyLabel+`":`+value+`}}}`), metav1.PatchOptions{})
	require.NoError(f.t, err)
	f.eventually("node "+node+" Ready="+boolString(!notReady), func() bool {
		n, err := f.client.CoreV1().Nodes().Get(f.t.Context(), node, metav1.GetOptions{})
		return err == nil && kubestack.NodeReady(n) == !notReady
	})
}

// watch runs a watcher until the test ends (or stop is called).
func (f *fixture) watch(cfg nodewatch.Config) (stop func()) {
	f.t.Helper()
	cfg.Kube, cfg.Store = f.kube, f.store
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nodewatch.New(cfg).Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(f.t, err)
		case <-time.After(30 * time.Second):
			f.t.Fatal("nodewatch.Run did not return after its context ended")
		}
	}
	f.t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, failing after a minute.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for delay := 20 * time.Millisecond; !cond(); delay = min(delay*2, 500*time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("after a minute, still not: %s", what)
		}
		time.Sleep(delay)
	}
}

func (f *fixture) health(node string) (schemas.NodeHealthRecord, bool) {
	rec, err := f.store.GetNodeHealth(context.Background(), node)
	if errors.Is(err, schemas.ErrNotFound) {
		return rec, false
	}
	require.NoError(f.t, err)
	return rec, true
}

// unhealthyEvents lists the node.unhealthy payloads about node, oldest first.
func (f *fixture) unhealthyEvents(node string) []schemas.NodeUnhealthyData {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT payload FROM events
		WHERE type = $1 AND payload->>'node_name' = $2 ORDER BY seq`, string(schemas.EventNodeUnhealthy), node)
	require.NoError(f.t, err)
	defer rows.Close()
	var out []schemas.NodeUnhealthyData
	for rows.Next() {
		var raw []byte
		require.NoError(f.t, rows.Scan(&raw))
		var d schemas.NodeUnhealthyData
		require.NoError(f.t, json.Unmarshal(raw, &d))
		out = append(out, d)
	}
	require.NoError(f.t, rows.Err())
	return out
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// NotReady → one node.unhealthy, Ready again → none, NotReady again → a
// second one; with two watchers (two worker replicas) running, and none
// after a watcher restarts.
func TestNodeUnhealthyOncePerTransition(t *testing.T) {
	f := newFixture(t)
	node := f.createNode("nodewatch-flaky-")
	stopA := f.watch(nodewatch.Config{})
	f.watch(nodewatch.Config{})

	f.eventually("every node recorded healthy at start", func() bool {
		for _, n := range []string{node, "kwok-node-0", "kwok-node-1", "kwok-node-2"} {
			if rec, ok := f.health(n); !ok || !rec.Healthy {
				return false
			}
		}
		return true
	})
	require.Empty(t, f.unhealthyEvents(node))

	f.setNotReady(node, true)
	f.eventually("node recorded unhealthy", func() bool { rec, _ := f.health(node); return !rec.Healthy })
	require.Equal(t, []schemas.NodeUnhealthyData{{NodeName: node, Reason: "nodeFailed: node failed", Conditions: []string{"Ready=False"}}},
		f.unhealthyEvents(node))

	f.setNotReady(node, false)
	f.eventually("node recorded healthy again", func() bool { rec, _ := f.health(node); return rec.Healthy })
	require.Len(t, f.unhealthyEvents(node), 1, "recovery publishes nothing")

	f.setNotReady(node, true)
	f.eventually("node recorded unhealthy again", func() bool { rec, _ := f.health(node); return !rec.Healthy })
	require.Len(t, f.unhealthyEvents(node), 2, "the second failure is a second event")

	// A restarted watcher records every node again: no new transition.
	stopA()
	rec, _ := f.health(node)
	before := rec.ObservedAt
	f.watch(nodewatch.Config{})
	f.eventually("the restarted watcher recorded the node", func() bool {
		rec, _ := f.health(node)
		return rec.ObservedAt.After(before)
	})
	require.Len(t, f.unhealthyEvents(node), 2, "a restart publishes nothing")

	// A deleted node is forgotten.
	require.NoError(t, f.client.CoreV1().Nodes().Delete(t.Context(), node, metav1.DeleteOptions{}))
	f.eventually("deleted node forgotten", func() bool { _, ok := f.health(node); return !ok })
}

// A node that is already down when the watcher starts is reported at once,
// unless it is new: a node that has not become Ready within JoinGrace of
// joining is reported only when the grace ends.
func TestNodeDownAtStart(t *testing.T) {
	f := newFixture(t)
	node := f.createNode("nodewatch-down-")
	f.setNotReady(node, true)
	n, err := f.client.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
	require.NoError(t, err)

	// No grace: first sight as unhealthy is a failure.
	f.watch(nodewatch.Config{JoinGrace: -1})
	f.eventually("node recorded unhealthy", func() bool { rec, ok := f.health(node); return ok && !rec.Healthy })
	require.Equal(t, []schemas.NodeUnhealthyData{{NodeName: node, Reason: "nodeFailed: node failed", Conditions: []string{"Ready=False"}}},
		f.unhealthyEvents(node))

	// Another database, where the node was never seen, and a grace that ends
	// 3s from now: nothing until then, one event after.
	g := newFixture(t)
	grace := time.Since(n.CreationTimestamp.Time) + 3*time.Second
	began := time.Now()
	g.watch(nodewatch.Config{JoinGrace: grace})
	g.eventually("kwok-node-0 recorded (the watcher has synced)", func() bool { _, ok := g.health("kwok-node-0"); return ok })
	if _, ok := g.health(node); ok && time.Since(began) < 2*time.Second {
		t.Fatal("a joining node was recorded before its grace ended")
	}
	g.eventually("node recorded unhealthy after its grace", func() bool { rec, ok := g.health(node); return ok && !rec.Healthy })
	require.GreaterOrEqual(t, time.Since(n.CreationTimestamp.Time), grace, "recorded before the grace ended")
	require.Len(t, g.unhealthyEvents(node), 1)
}
