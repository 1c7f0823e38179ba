package sessionctl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/deploy"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// The controller and the node report work as the ServiceAccount of
// deploy/rbac (impersonated), and that account can read no secrets: the
// shipped RBAC is enough and no more.
func TestRBACIsEnough(t *testing.T) {
	cluster := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, cluster)
	admin, err := activities.NewKube(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	admin.Namespace = ns
	applyRBAC(t, admin, ns)

	cfg := cluster.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":streamspace",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	sa, err := activities.NewKube(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sa.Namespace = ns

	e := runController(t, sa, admin)
	e.createTemplate("firefox", firefox())
	e.createSession("alice-firefox", kubeapi.SessionSpec{User: "alice", Template: "firefox"})
	e.waitRunning("alice-firefox")
	e.patchSpec("alice-firefox", `{"state":"hibernated"}`)
	e.waitPhase("alice-firefox", kubeapi.PhaseHibernated)
	e.waitPodGone("alice-firefox")

	// What the workflow's activities and the API do, as the account.
	if err := sa.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns).Delete(t.Context(), "alice-firefox", metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete a Session: %v", err)
	}
	if err := activities.DeleteHome(t.Context(), sa, "alice"); err != nil { // the session's home claim, made by the controller
		t.Errorf("delete a home claim: %v", err)
	}
	if _, err := sa.NodeStatus(t.Context()); err != nil {
		t.Errorf("node report: %v", err)
	}
	if _, err := sa.Clientset.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing secrets: want Forbidden, got %v", err)
	}
	if _, err := sa.Clientset.CoreV1().Pods("kube-system").List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("pods outside the sessions' namespace: want Forbidden, got %v", err)
	}
}

// applyRBAC creates deploy/rbac's objects for namespace ns (cluster-wide
// ones are shared by the package's tests and kept).
func applyRBAC(t *testing.T, k *activities.Kube, ns string) {
	t.Helper()
	gvr := map[string]schema.GroupVersionResource{
		"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
		"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(deploy.RBAC()), 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
		if obj.Object == nil {
			continue
		}
		res, ok := gvr[obj.GetKind()]
		if !ok {
			t.Fatalf("deploy/rbac: unexpected kind %s", obj.GetKind())
		}
		if subjects, ok, _ := unstructured.NestedSlice(obj.Object, "subjects"); ok {
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = ns
			}
			_ = unstructured.SetNestedSlice(obj.Object, subjects, "subjects")
		}
		// Cluster-wide objects get the namespace in their names, so tests
		// in other namespaces have their own.
		if ref, ok, _ := unstructured.NestedString(obj.Object, "roleRef", "name"); ok {
			_ = unstructured.SetNestedField(obj.Object, ref+"-"+ns, "roleRef", "name")
		}
		client := k.Dynamic.Resource(res)
		var err error
		if obj.GetNamespace() != "" {
			obj.SetNamespace(ns)
			_, err = client.Namespace(ns).Create(t.Context(), &obj, metav1.CreateOptions{})
		} else {
			obj.SetName(obj.GetName() + "-" + ns)
			_, err = client.Create(t.Context(), &obj, metav1.CreateOptions{})
			name := obj.GetName()
			t.Cleanup(func() { _ = client.Delete(context.Background(), name, metav1.DeleteOptions{}) })
		}
		if err != nil {
			t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}
