package kubestack

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Usage is resource usage as kwok simulates it for a pod (its annotations
// kwok.x-k8s.io/usage-cpu and usage-memory), as Kubernetes quantities.
type Usage struct {
	CPU    string // e.g. "100m"
	Memory string // e.g. "256Mi"
}

const (
	// NodeBaselineName names the DaemonSet (in kube-system) that gives every
	// node its baseline usage (Options.NodeBaseline).
	NodeBaselineName = "node-baseline"
	// UsageCPUAnnotation and UsageMemoryAnnotation set a pod's simulated
	// usage (kwok's ClusterResourceUsage in deploy/kwok); default 1m and 1Mi.
	UsageCPUAnnotation    = "kwok.x-k8s.io/usage-cpu"
	UsageMemoryAnnotation = "kwok.x-k8s.io/usage-memory"
)

var daemonSetResource = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}

func (u Usage) validate() error {
	for what, q := range map[string]string{"cpu": u.CPU, "memory": u.Memory} {
		if v, err := resource.ParseQuantity(q); err != nil || v.Sign() <= 0 {
			return fmt.Errorf("kubestack: node baseline %s %q: not a positive quantity", what, q)
		}
	}
	return nil
}

// applyNodeBaseline runs (server-side apply, so a changed usage updates it)
// the DaemonSet kube-system/node-baseline: one pod on every node, tolerating
// every taint like a real node's system daemons, using u. No resource
// requests, so it takes no schedulable capacity.
func (c *Cluster) applyNodeBaseline(ctx context.Context, u Usage) error {
	client, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	labels := map[string]any{"app.kubernetes.io/name": NodeBaselineName}
	ds := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": NodeBaselineName, "namespace": metricsServerNamespace, "labels": labels},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels, "annotations": map[string]any{
					UsageCPUAnnotation: u.CPU, UsageMemoryAnnotation: u.Memory,
				}},
				"spec": map[string]any{
					// kwok runs nothing: the image is never pulled.
					"containers":                   []any{map[string]any{"name": "baseline", "image": "registry.k8s.io/pause:3.10"}},
					"tolerations":                  []any{map[string]any{"operator": "Exists"}},
					"automountServiceAccountToken": false,
				},
			},
		},
	}}
	if _, err := client.Resource(daemonSetResource).Namespace(metricsServerNamespace).Apply(ctx, NodeBaselineName, ds,
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply the %s DaemonSet: %w", NodeBaselineName, err)
	}
	return nil
}
