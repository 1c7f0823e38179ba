package kubestack_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
)

var (
	sessionsGVR  = schema.GroupVersionResource{Group: "stream.space", Version: "v1alpha1", Resource: "sessions"}
	templatesGVR = schema.GroupVersionResource{Group: "stream.space", Version: "v1alpha1", Resource: "templates"}
)

func session(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stream.space/v1alpha1", "kind": "Session",
		"metadata": map[string]any{"name": name},
		"spec":     spec,
	}}
}

func dyn(t *testing.T, c *kubestack.Cluster) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func createSession(t *testing.T, c *kubestack.Cluster, ns string, s *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got, err := dyn(t, c).Resource(sessionsGVR).Namespace(ns).Create(t.Context(), s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create session %s: %v", s.GetName(), err)
	}
	return got
}

// Installing again (an upgrade) is a no-op that still waits for Established.
func TestInstallCRDsAgain(t *testing.T) {
	c := kubetest.Cluster(t)
	began := time.Now()
	if err := kubestack.InstallCRDs(t.Context(), c.Kubeconfig()); err != nil {
		t.Fatal(err)
	}
	t.Logf("InstallCRDs (again) took %s", time.Since(began).Round(time.Millisecond))
}

// A valid Session is stored with the schema's defaults; its status is written
// only through the status subresource.
func TestSessionStatusSubresource(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	sessions := dyn(t, c).Resource(sessionsGVR).Namespace(ns)
	s := createSession(t, c, ns, session("bob-vscode", map[string]any{
		"user": "bob", "template": "vscode",
		"resources":   map[string]any{"requests": map[string]any{"cpu": "500m", "memory": "1Gi"}, "limits": map[string]any{"memory": "2Gi"}},
		"idleTimeout": "30m", "maxSessionDuration": "8h", "tags": []any{"dev", "team-a"},
		"nodeName": "kwok-node-0",
	}))
	if state, _, _ := unstructured.NestedString(s.Object, "spec", "state"); state != "running" {
		t.Errorf("defaulted state = %q, want running", state)
	}
	if home, found, _ := unstructured.NestedBool(s.Object, "spec", "persistentHome"); !found || !home {
		t.Errorf("defaulted persistentHome = %v (found %v), want true", home, found)
	}

	// status through the main resource is ignored ...
	_ = unstructured.SetNestedField(s.Object, "Running", "status", "phase")
	s, err := sessions.Update(t.Context(), s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(s.Object, "status"); found {
		t.Fatalf("status written through the main resource: %v", s.Object["status"])
	}
	// ... and stored through /status, which ignores spec changes.
	now := time.Now().UTC().Format(time.RFC3339)
	s.Object["status"] = map[string]any{
		"phase": "Running", "podName": "bob-vscode", "nodeName": "kwok-node-0", "url": "https://example.invalid/s/bob-vscode",
		"lastActivity": now,
		"conditions":   []any{map[string]any{"type": "Ready", "status": "True", "reason": "PodRunning", "lastTransitionTime": now}},
	}
	_ = unstructured.SetNestedField(s.Object, "hibernated", "spec", "state")
	if _, err := sessions.UpdateStatus(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	got, err := sessions.Get(t.Context(), "bob-vscode", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	phase, _, _ := unstructured.NestedString(got.Object, "status", "phase")
	state, _, _ := unstructured.NestedString(got.Object, "spec", "state")
	if phase != "Running" || state != "running" {
		t.Fatalf("after UpdateStatus: phase %q (want Running), state %q (want running)", phase, state)
	}

	// A status that breaks the schema is refused too.
	got.Object["status"] = map[string]any{"phase": "Sleeping"}
	if _, err := sessions.UpdateStatus(t.Context(), got, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("bad phase: err = %v, want Invalid", err)
	}
}

// Sessions that break the schema are refused with 422 naming the field.
func TestInvalidSessionRejected(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	sessions := dyn(t, c).Resource(sessionsGVR).Namespace(ns)
	for _, tc := range []struct {
		name, field string
		spec        map[string]any
	}{
		{"bad-state", "spec.state", map[string]any{"user": "u", "template": "t", "state": "paused"}},
		{"no-user", "spec.user", map[string]any{"template": "t"}},
		{"empty-user", "spec.user", map[string]any{"user": "", "template": "t"}},
		{"no-template", "spec.template", map[string]any{"user": "u"}},
		{"bad-idle", "spec.idleTimeout", map[string]any{"user": "u", "template": "t", "idleTimeout": "30 minutes"}},
		{"bad-max", "spec.maxSessionDuration", map[string]any{"user": "u", "template": "t", "maxSessionDuration": "1d"}},
		{"bad-memory", "spec.resources.memory", map[string]any{"user": "u", "template": "t", "resources": map[string]any{"memory": "lots"}}},
		{"bad-limit", "spec.resources.limits.cpu", map[string]any{"user": "u", "template": "t", "resources": map[string]any{"limits": map[string]any{"cpu": "two"}}}},
		{"bad-tags", "spec.tags", map[string]any{"user": "u", "template": "t", "tags": "a,b"}},
		{"bad-node", "spec.nodeName", map[string]any{"user": "u", "template": "t", "nodeName": "Node_1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sessions.Create(t.Context(), session(tc.name, tc.spec), metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v; want Invalid naming %s", err, tc.field)
			}
		})
	}
	if _, err := sessions.Create(t.Context(), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stream.space/v1alpha1", "kind": "Session", "metadata": map[string]any{"name": "no-spec"},
	}}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("no spec: err = %v, want Invalid", err)
	}
}

// Templates: the open-source form (kasmvnc, memory/cpu) and the newer one
// (vnc, requests/limits) are both accepted; broken ones are refused.
func TestTemplateSchema(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	templates := dyn(t, c).Resource(templatesGVR).Namespace(ns)
	tpl := func(name string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "stream.space/v1alpha1", "kind": "Template", "metadata": map[string]any{"name": name}, "spec": spec,
		}}
	}
	for name, spec := range map[string]map[string]any{
		"firefox": {
			"displayName": "Firefox", "category": "Web Browsers", "baseImage": "lscr.io/linuxserver/firefox:latest",
			"defaultResources": map[string]any{"memory": "2Gi", "cpu": "1000m"},
			"ports":            []any{map[string]any{"name": "vnc", "containerPort": int64(3000)}},
			"env":              []any{map[string]any{"name": "PUID", "value": "1000"}},
			"kasmvnc":          map[string]any{"enabled": true, "port": int64(3000)},
			"capabilities":     []any{"Network", "Audio"}, "tags": []any{"browser"},
		},
		"vscode": {
			"displayName": "VS Code", "baseImage": "ghcr.io/example/vscode:1",
			"defaultResources": map[string]any{"requests": map[string]any{"memory": "2Gi"}, "limits": map[string]any{"cpu": int64(2)}},
			"vnc":              map[string]any{"port": int64(5900)},
		},
	} {
		got, err := templates.Create(t.Context(), tpl(name, spec), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create template %s: %v", name, err)
		}
		if name == "vscode" {
			if enabled, _, _ := unstructured.NestedBool(got.Object, "spec", "vnc", "enabled"); !enabled {
				t.Errorf("vnc.enabled not defaulted to true: %v", got.Object["spec"])
			}
		}
	}
	for _, tc := range []struct {
		name, field string
		spec        map[string]any
	}{
		{"no-image", "spec.baseImage", map[string]any{"displayName": "X"}},
		{"no-name", "spec.displayName", map[string]any{"baseImage": "x:1"}},
		{"bad-port", "spec.ports[0].containerPort", map[string]any{"displayName": "X", "baseImage": "x:1", "ports": []any{map[string]any{"containerPort": int64(70000)}}}},
		{"bad-protocol", "spec.vnc.protocol", map[string]any{"displayName": "X", "baseImage": "x:1", "vnc": map[string]any{"protocol": "rdp"}}},
	} {
		if _, err := templates.Create(t.Context(), tpl(tc.name, tc.spec), metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v; want Invalid naming %s", tc.name, err, tc.field)
		}
	}
}

// Deleting a Session deletes the pod it owns (garbage collection by
// kube-controller-manager).
func TestOwnerReferenceCascade(t *testing.T) {
	c := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, c)
	client, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	s := createSession(t, c, ns, session("carol-gimp", map[string]any{"user": "carol", "template": "gimp"}))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "carol-gimp", Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "stream.space/v1alpha1", Kind: "Session", Name: s.GetName(), UID: s.GetUID(),
			Controller: new(true), BlockOwnerDeletion: new(true),
		}}},
		Spec: corev1.PodSpec{NodeName: "kwok-node-2", Containers: []corev1.Container{{Name: "app", Image: "example.invalid/gimp:1"}}},
	}
	if _, err := client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, ns, pod.Name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	began := time.Now()
	if err := dyn(t, c).Resource(sessionsGVR).Namespace(ns).Delete(t.Context(), s.GetName(), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := client.CoreV1().Pods(ns).Get(t.Context(), pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Since(began) > 30*time.Second {
			t.Fatalf("pod still there 30s after its Session was deleted (err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("pod gone %s after its Session was deleted", time.Since(began).Round(time.Millisecond))
}
