package kubestack

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/streamspace/enterprise/deploy"

	"github.com/streamspace/enterprise/internal/localproc"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// fieldManager owns the fields StreamSpace applies (server-side apply).
const fieldManager = "streamspace"

// InstallCRDs applies the CustomResourceDefinitions of deploy/crds
// (sessions.stream.space, templates.stream.space) to the cluster of the
// kubeconfig with server-side apply, so it also updates older versions of
// them, and waits until they are Established.
func InstallCRDs(ctx context.Context, kubeconfig string) error {
	cfg, err := RESTConfigFromKubeconfig(kubeconfig)
	if err != nil {
		return err
	}
	return InstallCRDsWith(ctx, cfg)
}

// InstallCRDs is InstallCRDs against this cluster.
func (c *Cluster) InstallCRDs(ctx context.Context) error { return InstallCRDsWith(ctx, c.RESTConfig()) }

// InstallCRDsWith is InstallCRDs with a client configuration.
func InstallCRDsWith(ctx context.Context, cfg *rest.Config) error {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds := client.Resource(crdResource)
	var names []string
	for _, f := range deploy.CRDs() {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(f.YAML, &obj.Object); err != nil {
			return fmt.Errorf("parse deploy/crds/%s: %w", f.Name, err)
		}
		if _, err := crds.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("apply CRD %s: %w", obj.GetName(), err)
		}
		names = append(names, obj.GetName())
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	for _, name := range names {
		if err := waitEstablished(ctx, client, name); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, client dynamic.Interface, name string) error {
	delay := 20 * time.Millisecond
	for {
		obj, err := client.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err == nil && conditionTrue(obj, "Established") {
			return nil
		}
		if err := localproc.Sleep(ctx, delay); err != nil {
			return fmt.Errorf("CRD %s not Established: %w", name, err)
		}
		delay = localproc.Backoff(delay, 500*time.Millisecond)
	}
}
