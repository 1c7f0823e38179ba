package kubestack

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/streamspace/enterprise/internal/localproc"
)

// metrics.k8s.io is an aggregated API: the apiserver proxies it to
// metrics-server, which scrapes kwok's per-node resource metrics (usage from
// the pods' kwok.x-k8s.io/usage-cpu and usage-memory annotations). The
// metrics-server process runs on loopback, so its Service is an ExternalName
// for localhost (the aggregator resolves that without any Endpoints) on
// metrics-server's port, and the APIService trusts our CA.
const (
	metricsServerName      = "metrics-server"
	metricsServerNamespace = "kube-system"
	metricsAPIService      = "v1beta1.metrics.k8s.io"
	// frontProxyClientName is the CN of the apiserver's client certificate
	// towards aggregated APIs.
	frontProxyClientName = "front-proxy-client"
)

var (
	serviceResource    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
)

// registerMetricsAPI points metrics.k8s.io at metrics-server on port and
// waits until the aggregator reports it Available.
func (c *Cluster) registerMetricsAPI(ctx context.Context, port int) error {
	client, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		return err
	}
	svc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": metricsServerName, "namespace": metricsServerNamespace},
		"spec":     map[string]any{"type": "ExternalName", "externalName": "localhost"},
	}}
	if _, err := client.Resource(serviceResource).Namespace(metricsServerNamespace).Apply(ctx, metricsServerName, svc,
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply the metrics-server Service: %w", err)
	}
	api := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": metricsAPIService},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1",
			"service":              map[string]any{"name": metricsServerName, "namespace": metricsServerNamespace, "port": int64(port)},
			"caBundle":             base64.StdEncoding.EncodeToString(c.pki.caPEM),
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
		},
	}}
	if _, err := client.Resource(apiServiceResource).Apply(ctx, metricsAPIService, api,
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply the %s APIService: %w", metricsAPIService, err)
	}
	delay := 50 * time.Millisecond
	for {
		obj, err := client.Resource(apiServiceResource).Get(ctx, metricsAPIService, metav1.GetOptions{})
		if err == nil && conditionTrue(obj, "Available") {
			return nil
		}
		if err := localproc.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("APIService %s not Available: %w (%v)", metricsAPIService, err, conditionMessage(obj, "Available"))
		}
		delay = localproc.Backoff(delay, 500*time.Millisecond)
	}
}

// conditionTrue reports whether obj has status.conditions[type=t].status True.
func conditionTrue(obj *unstructured.Unstructured, t string) bool {
	return conditionField(obj, t, "status") == "True"
}

func conditionMessage(obj *unstructured.Unstructured, t string) string {
	return conditionField(obj, t, "message")
}

func conditionField(obj *unstructured.Unstructured, t, field string) string {
	if obj == nil {
		return ""
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == t {
			s, _ := m[field].(string)
			return s
		}
	}
	return ""
}
