package kubestack_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

// metrics.k8s.io serves the usage kwok simulates from pod annotations, for
// pods and their nodes, and `kubectl top` shows it.
func TestMetricsAPI(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy", Namespace: ns, Annotations: map[string]string{
			"kwok.x-k8s.io/usage-cpu": "250m", "kwok.x-k8s.io/usage-memory": "700Mi",
		}},
		Spec: corev1.PodSpec{NodeName: "kwok-node-0", Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
	}
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, ns, "busy", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	type usage struct {
		Usage      map[string]resource.Quantity `json:"usage"`
		Containers []struct {
			Usage map[string]resource.Quantity `json:"usage"`
		} `json:"containers"`
	}
	get := func(path string) (usage, error) {
		var u usage
		raw, err := client.CoreV1().RESTClient().Get().AbsPath(path).DoRaw(t.Context())
		if err == nil {
			err = json.Unmarshal(raw, &u)
		}
		return u, err
	}
	began := time.Now()
	var podCPU, podMem, nodeCPU resource.Quantity
	for {
		p, perr := get("/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods/busy")
		n, nerr := get("/apis/metrics.k8s.io/v1beta1/nodes/kwok-node-0")
		if perr == nil && nerr == nil && len(p.Containers) == 1 {
			podCPU, podMem, nodeCPU = p.Containers[0].Usage["cpu"], p.Containers[0].Usage["memory"], n.Usage["cpu"]
			if podCPU.MilliValue() >= 200 && nodeCPU.MilliValue() >= 200 {
				break
			}
		}
		if time.Since(began) > 2*time.Minute {
			t.Fatalf("no usage after 2 minutes: pod %v %v (%v), node %v (%v)", podCPU.String(), podMem.String(), perr, nodeCPU.String(), nerr)
		}
		time.Sleep(time.Second)
	}
	t.Logf("metrics after %s: pod cpu %s memory %s, node cpu %s", time.Since(began).Round(time.Second), podCPU.String(), podMem.String(), nodeCPU.String())
	if podCPU.MilliValue() > 300 || podMem.Value() != 700<<20 {
		t.Errorf("pod usage cpu %s memory %s, want about 250m and 700Mi", podCPU.String(), podMem.String())
	}

	out, err := exec.Command(kubetest.Binaries(t).Kubectl, "--kubeconfig", c.Kubeconfig(), "top", "nodes").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kwok-node-0") {
		t.Fatalf("kubectl top nodes: %v\n%s", err, out)
	}
	t.Logf("kubectl top nodes:\n%s", out)
}

// With NodeBaseline every node has usage without any pod of ours, so
// `kubectl top nodes` lists them all (metrics-server drops zero-usage nodes).
func TestNodeBaseline(t *testing.T) {
	c := kubetest.Start(t, kubestack.Options{Nodes: 2, NodeBaseline: kubestack.Usage{CPU: "100m", Memory: "256Mi"}})
	began := time.Now()
	for {
		out, err := exec.Command(kubetest.Binaries(t).Kubectl, "--kubeconfig", c.Kubeconfig(), "top", "nodes", "--no-headers").CombinedOutput()
		if err == nil && strings.Count(string(out), "kwok-node-") == 2 && strings.Contains(string(out), "256Mi") {
			t.Logf("kubectl top nodes after %s:\n%s", time.Since(began).Round(time.Second), out)
			break
		}
		if time.Since(began) > 2*time.Minute {
			t.Fatalf("kubectl top nodes after 2 minutes: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	}

	if _, err := kubestack.Start(t.Context(), kubestack.Options{Binaries: kubetest.Binaries(t), WithoutControllers: true,
		NodeBaseline: kubestack.Usage{CPU: "1m", Memory: "1Mi"}}); err == nil || !strings.Contains(err.Error(), "needs the controllers") {
		t.Fatalf("NodeBaseline without controllers: %v", err)
	}
	if _, err := kubestack.Start(t.Context(), kubestack.Options{Binaries: kubetest.Binaries(t),
		NodeBaseline: kubestack.Usage{CPU: "lots"}}); err == nil || !strings.Contains(err.Error(), "not a positive quantity") {
		t.Fatalf("NodeBaseline with a bad quantity: %v", err)
	}
}
