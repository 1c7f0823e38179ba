package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// nodesTestTaint keeps other tests' scheduled pods off this test's nodes, so
// their usage is only this test's pod.
const nodesTestTaint = "streamspace.test/nodes-api"

// GET /api/scaling/nodes against the shared local cluster, on nodes of the
// test's own: usage from metrics-server (kwok's simulated pod usage), sessions
// from Session objects, health from the node conditions.
func TestScalingNodes(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	resp, data := b.call("GET", "/api/scaling/nodes", b.admin.Token, nil)
	require.Equal(t, 503, resp.StatusCode, "%s", data)
	require.Equal(t, "UNAVAILABLE", errorCode(t, data))
	require.Contains(t, string(data), "Kubernetes is not configured (KUBECONFIG)")

	cluster := kubetest.Cluster(t)
	client, err := cluster.Client()
	require.NoError(t, err)
	kube, err := activities.NewKube(cluster.RESTConfig())
	require.NoError(t, err)
	kube.Namespace = kubetest.Namespace(t, cluster)
	b.server.deps.Kube = kube // read per request: the server now has a cluster
	ctx := t.Context()

	spec := func(prefix string) kubestack.NodeSpec {
		return kubestack.NodeSpec{NamePrefix: prefix, CPU: "2", Memory: "4Gi", Pods: "20",
			Annotations: map[string]string{activities.MaxSessionsAnnotation: "7"},
			Taints:      []corev1.Taint{{Key: nodesTestTaint, Effect: corev1.TaintEffectNoSchedule}}}
	}
	var nodes []string
	for _, prefix := range []string{"nodes-api-busy-", "nodes-api-cordoned-", "nodes-api-down-"} {
		names, err := kubestack.CreateNodes(ctx, client, 1, spec(prefix))
		require.NoError(t, err)
		nodes = append(nodes, names[0])
	}
	busy, cordonedNode, down := nodes[0], nodes[1], nodes[2]
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = client.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	_, err = client.CoreV1().Nodes().Patch(ctx, cordonedNode, types.MergePatchType,
		[]byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Nodes().Patch(ctx, down, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"node-not-ready.stage.kwok.x-k8s.io":"true"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	// A quarter of the busy node's CPU and memory.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: kube.Namespace, Annotations: map[string]string{
			"kwok.x-k8s.io/usage-cpu": "500m", "kwok.x-k8s.io/usage-memory": "1Gi"}},
		Spec: corev1.PodSpec{NodeName: busy, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
			Tolerations: []corev1.Toleration{{Key: nodesTestTaint, Operator: corev1.TolerationOpExists}}},
	}
	_, err = client.CoreV1().Pods(kube.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)

	// Sessions as the controller leaves them: three active on the busy node.
	for i, st := range []struct{ node, phase string }{
		{busy, kubeapi.PhaseRunning}, {busy, kubeapi.PhaseRunning}, {busy, kubeapi.PhasePending},
		{busy, kubeapi.PhaseHibernated}, {busy, kubeapi.PhaseTerminated}, {cordonedNode, kubeapi.PhaseRunning},
	} {
		createSessionWithStatus(t, kube, "s"+string(rune('a'+i)), st.node, st.phase)
	}

	var rep activities.NodeReport
	byName := map[string]activities.NodeLoad{}
	began := time.Now()
	for {
		b.callJSON("GET", "/api/scaling/nodes", b.admin.Token, nil, 200, &rep)
		clear(byName)
		for _, n := range rep.Nodes {
			byName[n.NodeName] = n
		}
		got := byName[busy]
		if got.CPUPercent != nil && *got.CPUPercent >= 20 && got.MemoryPercent != nil && *got.MemoryPercent == 25 &&
			byName[down].HealthStatus == activities.NodeUnhealthy {
			break
		}
		if time.Since(began) > 2*time.Minute {
			t.Fatalf("after 2 minutes the report still lacks the busy node's usage or the down node's health: %+v", rep)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("usage reported after %s", time.Since(began).Round(time.Millisecond))

	got := byName[busy]
	require.InDelta(t, 25, *got.CPUPercent, 5, "500m of 2 cores")
	require.Equal(t, 3, got.ActiveSessions)
	require.Equal(t, activities.NodeHealthy, got.HealthStatus)
	require.Equal(t, activities.NodeCapacity{MaxSessions: 7, CPUCores: 2, MemoryGB: 4}, got.Capacity)

	require.Equal(t, activities.NodeDegraded, byName[cordonedNode].HealthStatus)
	require.Equal(t, 1, byName[cordonedNode].ActiveSessions)
	require.Equal(t, activities.NodeUnhealthy, byName[down].HealthStatus)
	require.Equal(t, 0, byName[down].ActiveSessions)
	for _, shared := range []string{"kwok-node-0", "kwok-node-1", "kwok-node-2"} {
		require.Contains(t, byName, shared)
		require.Equal(t, activities.NodeCapacity{MaxSessions: 110, CPUCores: 8, MemoryGB: 32}, byName[shared].Capacity,
			"no annotation: allocatable pods")
	}

	sum := rep.ClusterSummary
	require.True(t, sum.MetricsAvailable)
	require.Equal(t, len(rep.Nodes), sum.TotalNodes)
	var healthy, sessions int
	for i, n := range rep.Nodes {
		if i > 0 {
			require.Less(t, rep.Nodes[i-1].NodeName, n.NodeName, "sorted by name")
		}
		if n.HealthStatus == activities.NodeHealthy {
			healthy++
		}
		sessions += n.ActiveSessions
	}
	require.Equal(t, healthy, sum.HealthyNodes)
	require.Equal(t, 4, sessions, "only this test's namespace counts")
	require.Equal(t, sessions, sum.TotalSessions)
	require.NotNil(t, sum.AvgCPU)
	require.NotNil(t, sum.AvgMemory)

	// The wire format is the seed's.
	resp, data = b.call("GET", "/api/scaling/nodes", b.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	for _, field := range []string{`"node_name"`, `"cpu_percent"`, `"memory_percent"`, `"active_sessions"`, `"health_status"`,
		`"capacity":{"max_sessions"`, `"cpu_cores"`, `"memory_gb"`, `"cluster_summary":{"total_nodes"`, `"healthy_nodes"`,
		`"total_sessions"`, `"avg_cpu"`, `"avg_memory"`, `"metrics_available":true`} {
		require.Contains(t, string(data), field)
	}
}

// createSessionWithStatus creates a Session and sets its status as the
// session controller would.
func createSessionWithStatus(t *testing.T, kube *activities.Kube, name, node, phase string) {
	t.Helper()
	s := &kubeapi.Session{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kube.Namespace},
		Spec: kubeapi.SessionSpec{User: "alice", Template: "firefox", State: kubeapi.StateRunning}}
	u, err := s.Unstructured()
	require.NoError(t, err)
	res := kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(kube.Namespace)
	created, err := res.Create(t.Context(), u, metav1.CreateOptions{})
	require.NoError(t, err)
	created.Object["status"] = map[string]any{"phase": phase, "nodeName": node}
	_, err = res.UpdateStatus(t.Context(), created, metav1.UpdateOptions{})
	require.NoError(t, err)
}
