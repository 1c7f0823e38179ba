package kubestack_test

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

// The shared cluster has 3 simulated nodes, Ready, with loopback addresses
// only and the capacity and labels asked for.
func TestNodesReady(t *testing.T) {
	c := kubetest.Cluster(t)
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != kubetest.SharedNodes {
		t.Fatalf("%d kwok nodes, want %d", len(nodes.Items), kubetest.SharedNodes)
	}
	for _, n := range nodes.Items {
		if !kubestack.NodeSchedulable(&n) {
			t.Errorf("node %s not schedulable: %+v %v", n.Name, n.Status.Conditions, n.Spec.Taints)
		}
		if cpu := n.Status.Allocatable[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("8")) != 0 {
			t.Errorf("node %s allocatable cpu %s, want 8", n.Name, cpu.String())
		}
		if !strings.HasPrefix(n.Status.NodeInfo.KubeletVersion, "kwok-") {
			t.Errorf("node %s kubelet %q, want kwok's", n.Name, n.Status.NodeInfo.KubeletVersion)
		}
		for _, a := range n.Status.Addresses {
			if ip := net.ParseIP(a.Address); ip != nil && !ip.IsLoopback() {
				t.Errorf("node %s has a non-loopback address %s", n.Name, a.Address)
			}
		}
		for _, taint := range n.Spec.Taints {
			t.Errorf("node %s tainted %s (the controller manager removes not-ready once Ready)", n.Name, taint.ToString())
		}
	}

	// More nodes with another shape; existing names are left alone.
	names, err := c.CreateNodes(t.Context(), 2, kubestack.NodeSpec{NamePrefix: "big-", CPU: "64", Memory: "256Gi", Labels: map[string]string{"pool": "big"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range names {
			_ = client.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	big, err := client.CoreV1().Nodes().Get(t.Context(), "big-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mem := big.Status.Capacity[corev1.ResourceMemory]; big.Labels["pool"] != "big" || mem.String() != "256Gi" {
		t.Fatalf("big-1: labels %v, memory %s", big.Labels, mem.String())
	}
	if _, err := c.CreateNodes(t.Context(), 2, kubestack.NodeSpec{NamePrefix: "big-"}); err != nil {
		t.Fatalf("CreateNodes again: %v", err)
	}
}

// A pod without a node is scheduled onto a kwok node by kube-scheduler and
// becomes Running with a loopback pod IP.
func TestPodRunsOnKwokNode(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "example.invalid/app:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
		}}},
	}
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, c, ns, "app", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	t.Logf("pod Running on %s after %s", got.Spec.NodeName, time.Since(began).Round(time.Millisecond))
	if !strings.HasPrefix(got.Spec.NodeName, "kwok-node-") && !strings.HasPrefix(got.Spec.NodeName, "big-") {
		t.Fatalf("pod on node %q", got.Spec.NodeName)
	}
	if ip := net.ParseIP(got.Status.PodIP); ip == nil || !ip.IsLoopback() {
		t.Fatalf("pod IP %q is not a loopback address", got.Status.PodIP)
	}
}

// The written kubeconfig works for kubectl, and the printer columns show.
func TestKubectlGetSessions(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	createSession(t, c, ns, session("alice-firefox", map[string]any{"user": "alice", "template": "firefox", "nodeName": "kwok-node-1"}))
	cmd := exec.Command(kubetest.Binaries(t).Kubectl, "--kubeconfig", c.Kubeconfig(), "get", "sessions", "-n", ns)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get sessions: %v\n%s", err, out)
	}
	t.Logf("kubectl get sessions:\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME USER TEMPLATE STATE PHASE NODE AGE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "alice-firefox alice firefox running") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}

func waitPod(t *testing.T, c *kubestack.Cluster, ns, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := client.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err == nil && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("pod %s/%s: %v", ns, name, err)
			}
			t.Fatalf("pod %s/%s: condition not met after 30s (status %+v)", ns, name, p.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kwok's chaos stage: a node labelled node-not-ready.stage.kwok.x-k8s.io=true
// turns NotReady, and Ready again once the label is removed.
func TestNodeNotReadySwitch(t *testing.T) {
	c := kubetest.Cluster(t)
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNodes(t.Context(), 1, kubestack.NodeSpec{NamePrefix: "flaky-"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Nodes().Delete(context.Background(), "flaky-0", metav1.DeleteOptions{}) })
	label := func(patch string) {
		t.Helper()
		if _, err := client.CoreV1().Nodes().Patch(t.Context(), "flaky-0", types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"node-not-ready.stage.kwok.x-k8s.io":`+patch+`}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitNode := func(ready bool) {
		t.Helper()
		began := time.Now()
		for {
			n, err := client.CoreV1().Nodes().Get(t.Context(), "flaky-0", metav1.GetOptions{})
			if err == nil && kubestack.NodeReady(n) == ready {
				t.Logf("Ready=%v after %s", ready, time.Since(began).Round(time.Millisecond))
				return
			}
			if time.Since(began) > 30*time.Second {
				t.Fatalf("node not Ready=%v after 30s", ready)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	label(`"true"`)
	waitNode(false)
	label(`null`)
	waitNode(true)
}
