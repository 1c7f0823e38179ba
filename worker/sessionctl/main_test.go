package sessionctl

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// waitTimeout bounds every wait for the controller; kwok makes a pod
// Running in about 0.3 s.
const waitTimeout = 30 * time.Second

// env is one test's namespace in the shared cluster with a controller
// running on it.
type env struct {
	t         *testing.T
	ns        string
	kube      *activities.Kube
	sessions  dynamic.ResourceInterface
	templates dynamic.ResourceInterface
	pods      corev1client.PodInterface
}

// startController runs a controller on a fresh namespace until the test
// ends.
func startController(t *testing.T) *env {
	t.Helper()
	cluster := kubetest.Cluster(t)
	ns := kubetest.Namespace(t, cluster)
	kube, err := activities.NewKube(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	kube.Namespace = ns
	return runController(t, kube, kube)
}

// runController runs a controller with the clients of ctl (the identity
// under test) on ctl.Namespace until the test ends; the test's own calls
// use admin.
func runController(t *testing.T, ctl, admin *activities.Kube) *env {
	t.Helper()
	ns := ctl.Namespace
	c, err := New(Config{Kube: ctl, Workers: 2, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("Run returned early: %v", err)
		default:
			return c.HasSynced(), nil
		}
	}); err != nil {
		t.Fatalf("controller not synced: %v", err)
	}
	return &env{
		t: t, ns: ns, kube: admin,
		sessions:  admin.Dynamic.Resource(kubeapi.SessionGVR).Namespace(ns),
		templates: admin.Dynamic.Resource(kubeapi.TemplateGVR).Namespace(ns),
		pods:      admin.Clientset.CoreV1().Pods(ns),
	}
}

// firefox is the template most tests use.
func firefox() kubeapi.TemplateSpec {
	return kubeapi.TemplateSpec{
		DisplayName:      "Firefox",
		BaseImage:        "lscr.io/linuxserver/firefox:1",
		DefaultResources: &kubeapi.Resources{Memory: "2Gi", CPU: "1000m"},
		Ports:            []corev1.ContainerPort{{Name: "http", ContainerPort: 3000}},
		Env:              []corev1.EnvVar{{Name: "PUID", Value: "1000"}},
		VNC:              &kubeapi.VNC{Port: 5900},
		VolumeMounts:     []corev1.VolumeMount{{Name: "home", MountPath: "/config"}},
	}
}

func (e *env) createTemplate(name string, spec kubeapi.TemplateSpec) {
	e.t.Helper()
	tpl := &kubeapi.Template{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	u, err := tpl.Unstructured()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.templates.Create(e.t.Context(), u, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create template %s: %v", name, err)
	}
}

func (e *env) createSession(name string, spec kubeapi.SessionSpec) *kubeapi.Session {
	e.t.Helper()
	if spec.State == "" {
		spec.State = kubeapi.StateRunning
	}
	return e.createSessionObject(&kubeapi.Session{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
}

// createSessionObject creates s (its metadata as given: labels, say).
func (e *env) createSessionObject(s *kubeapi.Session) *kubeapi.Session {
	e.t.Helper()
	name := s.Name
	u, err := s.Unstructured()
	if err != nil {
		e.t.Fatal(err)
	}
	created, err := e.sessions.Create(e.t.Context(), u, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create session %s: %v", name, err)
	}
	got, err := kubeapi.SessionFrom(created)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func (e *env) getSession(name string) (*kubeapi.Session, error) {
	u, err := e.sessions.Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return kubeapi.SessionFrom(u)
}

// patchSpec merge-patches the session's spec, as the lifecycle workflow and
// the API do.
func (e *env) patchSpec(name, patch string) {
	e.t.Helper()
	if _, err := e.sessions.Patch(e.t.Context(), name, types.MergePatchType, []byte(`{"spec":`+patch+`}`), metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("patch session %s: %v", name, err)
	}
}

// waitSession polls the session until ok says so, and returns it.
func (e *env) waitSession(name, what string, ok func(*kubeapi.Session) bool) *kubeapi.Session {
	e.t.Helper()
	var last *kubeapi.Session
	began := time.Now()
	err := wait.PollUntilContextTimeout(e.t.Context(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		s, err := e.getSession(name)
		if err != nil {
			return false, err
		}
		last = s
		return ok(s), nil
	})
	if err != nil {
		var st any
		if last != nil {
			st = last.Status
		}
		e.t.Fatalf("session %s: waiting for %s: %v; last status %+v", name, what, err, st)
	}
	e.t.Logf("session %s: %s after %s", name, what, time.Since(began).Round(time.Millisecond))
	return last
}

func (e *env) waitPhase(name, phase string) *kubeapi.Session {
	e.t.Helper()
	return e.waitSession(name, "phase "+phase, func(s *kubeapi.Session) bool {
		return s.Status.Phase == phase && s.Status.ObservedGeneration == s.Generation
	})
}

// waitRunning waits for phase Running with Ready=True and returns the
// session and its pod.
func (e *env) waitRunning(name string) (*kubeapi.Session, *corev1.Pod) {
	e.t.Helper()
	s := e.waitSession(name, "Running and Ready", func(s *kubeapi.Session) bool {
		return s.Status.Phase == kubeapi.PhaseRunning && meta.IsStatusConditionTrue(s.Status.Conditions, ConditionReady) &&
			s.Status.ObservedGeneration == s.Generation
	})
	pod, err := e.pods.Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("session %s is Running but its pod: %v", name, err)
	}
	return s, pod
}

// waitPodGone waits until the pod named name no longer exists.
func (e *env) waitPodGone(name string) {
	e.t.Helper()
	began := time.Now()
	err := wait.PollUntilContextTimeout(e.t.Context(), 20*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := e.pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		e.t.Fatalf("pod %s still there: %v", name, err)
	}
	e.t.Logf("pod %s gone after %s", name, time.Since(began).Round(time.Millisecond))
}

func readyCondition(s *kubeapi.Session) *metav1.Condition {
	return meta.FindStatusCondition(s.Status.Conditions, ConditionReady)
}
