package kubestack

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/streamspace/enterprise/internal/localproc"
)

const (
	// kwokNodeAnnotation marks a Node as simulated: kwok manages exactly the
	// nodes with kwokNodeAnnotation=fake.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// metricsPathAnnotation tells metrics-server where kwok serves a node's
	// resource metrics (kwok serves them per node).
	metricsPathAnnotation = "metrics.k8s.io/resource-metrics-path"
	// NodeTypeLabel = "kwok" on every simulated node.
	NodeTypeLabel = "type"
)

// NodeSpec shapes simulated nodes. Zero fields take the defaults.
type NodeSpec struct {
	// NamePrefix: nodes are NamePrefix0, NamePrefix1, ... Default "kwok-node-".
	NamePrefix string
	// Capacity (= allocatable). Defaults: CPU "8", Memory "32Gi", Pods "110".
	CPU, Memory, Pods string
	// Labels are added to kubernetes.io/hostname, kubernetes.io/os,
	// kubernetes.io/arch and type=kwok.
	Labels map[string]string
	// Annotations are added to the kwok ones.
	Annotations map[string]string
	// Taints, none by default: every node of the local cluster is simulated,
	// so there are no real workloads to keep off them (kwok's docs taint
	// kwok.x-k8s.io/node=fake:NoSchedule for mixed clusters).
	Taints []corev1.Taint
}

func (s NodeSpec) withDefaults() NodeSpec {
	if s.NamePrefix == "" {
		s.NamePrefix = "kwok-node-"
	}
	if s.CPU == "" {
		s.CPU = "8"
	}
	if s.Memory == "" {
		s.Memory = "32Gi"
	}
	if s.Pods == "" {
		s.Pods = "110"
	}
	return s
}

// Node returns the Node object for simulated node name.
func (s NodeSpec) Node(name string) (*corev1.Node, error) {
	s = s.withDefaults()
	capacity := corev1.ResourceList{}
	for res, q := range map[corev1.ResourceName]string{corev1.ResourceCPU: s.CPU, corev1.ResourceMemory: s.Memory, corev1.ResourcePods: s.Pods} {
		v, err := resource.ParseQuantity(q)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s %q: %w", name, res, q, err)
		}
		capacity[res] = v
	}
	labels := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
		NodeTypeLabel:            "kwok",
	}
	maps.Copy(labels, s.Labels)
	annotations := map[string]string{
		kwokNodeAnnotation:    "fake",
		metricsPathAnnotation: "/metrics/nodes/" + name + "/metrics/resource",
	}
	maps.Copy(annotations, s.Annotations)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations},
		Spec:       corev1.NodeSpec{Taints: s.Taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity.DeepCopy(),
			// kwok fills in the rest; a loopback address only.
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		},
	}, nil
}

// CreateNodes makes sure simulated nodes NamePrefix0..n-1 exist (existing
// ones are left as they are) and waits until all of them are schedulable:
// Ready, and without the node.kubernetes.io/not-ready taint, which the
// node lifecycle controller (kube-controller-manager) removes once the node
// is Ready. It returns their names. kwok must be running against the
// cluster.
func CreateNodes(ctx context.Context, client kubernetes.Interface, n int, spec NodeSpec) ([]string, error) {
	return createNodes(ctx, client, n, spec, true)
}

// CreateNodes is CreateNodes against this cluster (without its controllers,
// it waits for Ready only: the not-ready taint then stays).
func (c *Cluster) CreateNodes(ctx context.Context, n int, spec NodeSpec) ([]string, error) {
	client, err := c.Client()
	if err != nil {
		return nil, err
	}
	return createNodes(ctx, client, n, spec, !c.opts.WithoutControllers)
}

func createNodes(ctx context.Context, client kubernetes.Interface, n int, spec NodeSpec, schedulable bool) ([]string, error) {
	spec = spec.withDefaults()
	names := make([]string, n)
	for i := range n {
		names[i] = spec.NamePrefix + strconv.Itoa(i)
		node, err := spec.Node(names[i])
		if err != nil {
			return nil, err
		}
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create node %s: %w", names[i], err)
		}
	}
	ready := NodeReady
	if schedulable {
		ready = NodeSchedulable
	}
	if err := waitNodes(ctx, client, ready, names); err != nil {
		return nil, err
	}
	return names, nil
}

// pointNodesAtKwok sets the kubelet port of the simulated nodes already in
// the cluster (kept in a reused RunDir) to this run's kwok. kwok sets it only
// when it initialises a node that is not Ready; a node created in an earlier
// run would keep advertising that run's port, and metrics-server would scrape
// nothing there.
func (c *Cluster) pointNodesAtKwok(ctx context.Context, port int) error {
	client, err := c.Client()
	if err != nil {
		return err
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	patch := []byte(`{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":` + strconv.Itoa(port) + `}}}}`)
	for _, n := range nodes.Items {
		if n.Annotations[kwokNodeAnnotation] != "fake" || n.Status.DaemonEndpoints.KubeletEndpoint.Port == int32(port) {
			continue
		}
		if _, err := client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("point node %s at kwok: %w", n.Name, err)
		}
	}
	return nil
}

// WaitNodesReady polls until every named node has condition Ready=True.
// Without a deadline in ctx it gives up after a minute.
func WaitNodesReady(ctx context.Context, client kubernetes.Interface, names ...string) error {
	return waitNodes(ctx, client, NodeReady, names)
}

func waitNodes(ctx context.Context, client kubernetes.Interface, ready func(*corev1.Node) bool, names []string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	delay := 50 * time.Millisecond
	for {
		notReady := ""
		for _, name := range names {
			node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !ready(node) {
				notReady = name
				break
			}
		}
		if notReady == "" {
			return nil
		}
		if err := localproc.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("node %s not ready: %w", notReady, err)
		}
		delay = localproc.Backoff(delay, 500*time.Millisecond)
	}
}

// NodeSchedulable reports whether node is Ready and free of the taints the
// node lifecycle controller sets on nodes that are not (yet) Ready.
func NodeSchedulable(node *corev1.Node) bool {
	if !NodeReady(node) || node.Spec.Unschedulable {
		return false
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return false
		}
	}
	return true
}

// NodeReady reports whether node has condition Ready=True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
