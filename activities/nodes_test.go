package activities_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

type nodeOpt func(*corev1.Node)

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

func withCondition(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) nodeOpt {
	return func(n *corev1.Node) {
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == t {
				n.Status.Conditions[i].Status, n.Status.Conditions[i].Reason, n.Status.Conditions[i].Message = s, reason, msg
				return
			}
		}
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg})
	}
}

func withAnnotation(k, v string) nodeOpt {
	return func(n *corev1.Node) { n.Annotations = map[string]string{k: v} }
}

// testNode is a Ready node with the given allocatable resources.
func testNode(name, cpu, memory, pods string, opts ...nodeOpt) *corev1.Node {
	alloc := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods: resource.MustParse(pods),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Capacity: alloc, Allocatable: alloc.DeepCopy(), Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
		}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func TestNodeHealthOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		node       *corev1.Node
		status     string
		ready      bool
		reason     string
		conditions []string
	}{
		{"ready", testNode("n", "1", "1Gi", "10"), activities.NodeHealthy, true, "KubeletReady: kubelet is posting ready status", nil},
		{"cordoned", testNode("n", "1", "1Gi", "10", cordoned), activities.NodeDegraded, true, "KubeletReady: kubelet is posting ready status", nil},
		{"memory pressure", testNode("n", "1", "1Gi", "10", withCondition(corev1.NodeMemoryPressure, corev1.ConditionTrue, "", "")),
			activities.NodeDegraded, true, "KubeletReady: kubelet is posting ready status", []string{"MemoryPressure=True"}},
		{"disk and pid pressure", testNode("n", "1", "1Gi", "10", withCondition(corev1.NodeDiskPressure, corev1.ConditionTrue, "", ""),
			withCondition(corev1.NodePIDPressure, corev1.ConditionTrue, "", "")),
			activities.NodeDegraded, true, "KubeletReady: kubelet is posting ready status", []string{"DiskPressure=True", "PIDPressure=True"}},
		{"not ready", testNode("n", "1", "1Gi", "10", withCondition(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", "runtime down")),
			activities.NodeUnhealthy, false, "KubeletNotReady: runtime down", []string{"Ready=False"}},
		{"unknown and under pressure", testNode("n", "1", "1Gi", "10", cordoned,
			withCondition(corev1.NodeReady, corev1.ConditionUnknown, "NodeStatusUnknown", ""),
			withCondition(corev1.NodeMemoryPressure, corev1.ConditionTrue, "", "")),
			activities.NodeUnhealthy, false, "NodeStatusUnknown", []string{"Ready=Unknown", "MemoryPressure=True"}},
		{"no conditions", &corev1.Node{}, activities.NodeUnhealthy, false, "the node reports no Ready condition", []string{"Ready=Unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := activities.NodeHealthOf(tc.node)
			require.Equal(t, tc.status, h.Status)
			require.Equal(t, tc.ready, h.Ready)
			require.Equal(t, tc.reason, h.Reason)
			require.Equal(t, tc.conditions, h.Conditions)
		})
	}
}

// fakeKube is a Kube over client-go's fakes, with Sessions in namespace ss.
func fakeKube(t *testing.T, nodes ...*corev1.Node) (*activities.Kube, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	objs := make([]runtime.Object, len(nodes))
	for i, n := range nodes {
		objs[i] = n
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		kubeapi.SessionGVR:        "SessionList",
		activities.NodeMetricsGVR: "NodeMetricsList",
	})
	return &activities.Kube{Clientset: fake.NewClientset(objs...), Dynamic: dyn, Namespace: "ss"}, dyn
}

func addSession(t *testing.T, k *activities.Kube, ns, name, node, phase string) {
	t.Helper()
	s := &kubeapi.Session{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:   kubeapi.SessionSpec{User: "u", Template: "firefox", State: kubeapi.StateRunning},
		Status: kubeapi.SessionStatus{NodeName: node, Phase: phase}}
	u, err := s.Unstructured()
	require.NoError(t, err)
	_, err = k.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
	require.NoError(t, err)
}

func addNodeMetrics(t *testing.T, k *activities.Kube, node, cpu, memory string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
		"metadata": map[string]any{"name": node},
		"window":   "20s",
		"usage":    map[string]any{"cpu": cpu, "memory": memory},
	}}
	_, err := k.Dynamic.Resource(activities.NodeMetricsGVR).Create(context.Background(), u, metav1.CreateOptions{})
	require.NoError(t, err)
}

func f(v float64) *float64 { return &v }

func TestNodeStatus(t *testing.T) {
	t.Parallel()
	k, _ := fakeKube(t,
		testNode("worker-b", "8", "32Gi", "110", withAnnotation(activities.MaxSessionsAnnotation, "50")),
		testNode("worker-a", "4", "16Gi", "20", cordoned),
		testNode("worker-c", "2", "4Gi", "10", withAnnotation(activities.MaxSessionsAnnotation, "lots"),
			withCondition(corev1.NodeReady, corev1.ConditionFalse, "KubeletNotReady", "")),
	)
	addNodeMetrics(t, k, "worker-a", "1", "4Gi")      // 25%, 25%
	addNodeMetrics(t, k, "worker-b", "3616m", "16Gi") // 45.2%, 50%
	addNodeMetrics(t, k, "gone-node", "1", "1Gi")     // a node that no longer exists
	addSession(t, k, "ss", "s1", "worker-b", kubeapi.PhaseRunning)
	addSession(t, k, "ss", "s2", "worker-b", kubeapi.PhaseRunning)
	addSession(t, k, "ss", "s3", "worker-b", kubeapi.PhasePending)
	addSession(t, k, "ss", "s4", "worker-b", kubeapi.PhaseHibernated)
	addSession(t, k, "ss", "s5", "worker-b", kubeapi.PhaseFailed)
	addSession(t, k, "ss", "s6", "", kubeapi.PhasePending) // not placed yet
	addSession(t, k, "ss", "s7", "worker-a", kubeapi.PhaseRunning)
	addSession(t, k, "elsewhere", "s8", "worker-a", kubeapi.PhaseRunning) // another namespace

	rep, err := k.NodeStatus(context.Background())
	require.NoError(t, err)
	require.Equal(t, activities.NodeReport{
		Nodes: []activities.NodeLoad{
			{NodeName: "worker-a", CPUPercent: f(25), MemoryPercent: f(25), ActiveSessions: 1, HealthStatus: activities.NodeDegraded,
				Capacity: activities.NodeCapacity{MaxSessions: 20, CPUCores: 4, MemoryGB: 16}},
			{NodeName: "worker-b", CPUPercent: f(45.2), MemoryPercent: f(50), ActiveSessions: 3, HealthStatus: activities.NodeHealthy,
				Capacity: activities.NodeCapacity{MaxSessions: 50, CPUCores: 8, MemoryGB: 32}},
			{NodeName: "worker-c", ActiveSessions: 0, HealthStatus: activities.NodeUnhealthy,
				Capacity: activities.NodeCapacity{MaxSessions: 10, CPUCores: 2, MemoryGB: 4}},
		},
		ClusterSummary: activities.ClusterSummary{TotalNodes: 3, HealthyNodes: 1, TotalSessions: 4,
			AvgCPU: f(35.1), AvgMemory: f(37.5), MetricsAvailable: true},
	}, rep)

	data, err := json.Marshal(rep)
	require.NoError(t, err)
	require.JSONEq(t, `{"nodes":[
		{"node_name":"worker-a","cpu_percent":25,"memory_percent":25,"active_sessions":1,"health_status":"degraded","capacity":{"max_sessions":20,"cpu_cores":4,"memory_gb":16}},
		{"node_name":"worker-b","cpu_percent":45.2,"memory_percent":50,"active_sessions":3,"health_status":"healthy","capacity":{"max_sessions":50,"cpu_cores":8,"memory_gb":32}},
		{"node_name":"worker-c","cpu_percent":null,"memory_percent":null,"active_sessions":0,"health_status":"unhealthy","capacity":{"max_sessions":10,"cpu_cores":2,"memory_gb":4}}],
		"cluster_summary":{"total_nodes":3,"healthy_nodes":1,"total_sessions":4,"avg_cpu":35.1,"avg_memory":37.5,"metrics_available":true}}`, string(data))
}

// Without metrics.k8s.io the report still answers, with usage null.
func TestNodeStatusWithoutMetrics(t *testing.T) {
	t.Parallel()
	k, dyn := fakeKube(t, testNode("worker-a", "3500m", "7.5Gi", "30"))
	dyn.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("the server is currently unable to handle the request")
	})
	addSession(t, k, "ss", "s1", "worker-a", kubeapi.PhaseRunning)

	rep, err := k.NodeStatus(context.Background())
	require.NoError(t, err)
	require.Equal(t, activities.NodeReport{
		Nodes: []activities.NodeLoad{{NodeName: "worker-a", ActiveSessions: 1, HealthStatus: activities.NodeHealthy,
			Capacity: activities.NodeCapacity{MaxSessions: 30, CPUCores: 3.5, MemoryGB: 7.5}}},
		ClusterSummary: activities.ClusterSummary{TotalNodes: 1, HealthyNodes: 1, TotalSessions: 1},
	}, rep)
}

// A cluster without nodes answers an empty list, not null.
func TestNodeStatusNoNodes(t *testing.T) {
	t.Parallel()
	k, _ := fakeKube(t)
	rep, err := k.NodeStatus(context.Background())
	require.NoError(t, err)
	data, err := json.Marshal(rep)
	require.NoError(t, err)
	require.JSONEq(t, `{"nodes":[],"cluster_summary":{"total_nodes":0,"healthy_nodes":0,"total_sessions":0,
		"avg_cpu":null,"avg_memory":null,"metrics_available":true}}`, string(data))
}
