package activities

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// NodeMetricsGVR is metrics.k8s.io's NodeMetrics (served by metrics-server),
// read through the dynamic client.
var NodeMetricsGVR = schema.GroupVersionResource{Group: "metrics.k8s.io", Version: "v1beta1", Resource: "nodes"}

// nodeUsage lists the latest usage sample of every node metrics.k8s.io
// knows. An error means the metrics API did not answer; nodes it has no
// sample for are missing from the map.
func (k *Kube) nodeUsage(ctx context.Context) (map[string]nodeUsage, error) {
	list, err := k.Dynamic.Resource(NodeMetricsGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list node metrics: %w", err)
	}
	out := make(map[string]nodeUsage, len(list.Items))
	for _, item := range list.Items {
		cpu, okCPU := quantityField(item.Object, "usage", "cpu")
		mem, okMem := quantityField(item.Object, "usage", "memory")
		if okCPU && okMem {
			out[item.GetName()] = nodeUsage{cpu: cpu, memory: mem}
		}
	}
	return out, nil
}

// quantityField reads a resource quantity the API serialised as a string.
func quantityField(obj map[string]any, path ...string) (resource.Quantity, bool) {
	s, ok, err := unstructured.NestedString(obj, path...)
	if err != nil || !ok {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return resource.Quantity{}, false
	}
	return q, true
}
