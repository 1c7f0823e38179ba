package sessionctl

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"

	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// A Session becomes a Running pod on a simulated node, made from its
// Template: labels, owner reference, resources, ports, env, URL.
func TestSessionRunsFromTemplate(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	alice := e.createSession("alice-firefox", kubeapi.SessionSpec{User: "Alice@Example.com", Template: "firefox"})
	e.createSession("bob-firefox", kubeapi.SessionSpec{User: "bob", Template: "firefox",
		Resources: &kubeapi.Resources{Requests: map[string]string{"cpu": "250m"}, Limits: map[string]string{"memory": "1Gi"}}})

	s, pod := e.waitRunning("alice-firefox")

	// status
	if s.Status.PodName != pod.Name || s.Status.NodeName == "" || s.Status.NodeName != pod.Spec.NodeName {
		t.Errorf("status podName %q nodeName %q; pod %s on %q", s.Status.PodName, s.Status.NodeName, pod.Name, pod.Spec.NodeName)
	}
	if !strings.HasPrefix(s.Status.NodeName, "kwok-node-") {
		t.Errorf("node %q is not a simulated node", s.Status.NodeName)
	}
	if want := "http://" + net.JoinHostPort(pod.Status.PodIP, "5900"); pod.Status.PodIP == "" || s.Status.URL != want {
		t.Errorf("url = %q, want %q", s.Status.URL, want)
	}
	if s.Status.Message != "" || s.Status.ObservedGeneration != s.Generation {
		t.Errorf("message %q, observedGeneration %d (generation %d)", s.Status.Message, s.Status.ObservedGeneration, s.Generation)
	}
	if c := readyCondition(s); c == nil || c.Reason != ReasonPodReady || c.ObservedGeneration != s.Generation {
		t.Errorf("Ready condition = %+v", c)
	}

	// labels: the user name is made a valid, distinct label value
	user := pod.Labels[kubeapi.LabelUser]
	if errs := validation.IsValidLabelValue(user); len(errs) > 0 || !strings.HasPrefix(user, "Alice-Example.com-") {
		t.Errorf("user label %q (%v)", user, errs)
	}
	for k, want := range map[string]string{kubeapi.LabelSession: "alice-firefox", kubeapi.LabelTemplate: "firefox", kubeapi.LabelManaged: kubeapi.ManagedBy} {
		if pod.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, pod.Labels[k], want)
		}
	}

	// owner reference: the Session controls the pod
	refs := pod.OwnerReferences
	if len(refs) != 1 || refs[0].Kind != "Session" || refs[0].APIVersion != "stream.space/v1alpha1" || refs[0].Name != "alice-firefox" ||
		refs[0].UID != alice.UID || refs[0].Controller == nil || !*refs[0].Controller || refs[0].BlockOwnerDeletion == nil || !*refs[0].BlockOwnerDeletion {
		t.Errorf("owner references = %+v", refs)
	}

	// the container: template's image, env and ports plus the stream port;
	// the template's resources; the user's home (persistentHome defaults to
	// true) at the template's volumeMount
	if pod.Spec.RestartPolicy != corev1.RestartPolicyAlways || len(pod.Spec.Containers) != 1 || len(pod.Spec.Volumes) != 1 ||
		pod.Spec.Volumes[0].PersistentVolumeClaim == nil || pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != kubeapi.HomeClaimName("Alice@Example.com") {
		t.Fatalf("pod spec: restartPolicy %s, %d containers, volumes %+v", pod.Spec.RestartPolicy, len(pod.Spec.Containers), pod.Spec.Volumes)
	}
	ctr := pod.Spec.Containers[0]
	if ctr.Name != ContainerName || ctr.Image != "lscr.io/linuxserver/firefox:1" || len(ctr.VolumeMounts) != 1 ||
		ctr.VolumeMounts[0].Name != kubeapi.HomeVolumeName || ctr.VolumeMounts[0].MountPath != "/config" {
		t.Errorf("container %s image %s mounts %v", ctr.Name, ctr.Image, ctr.VolumeMounts)
	}
	if len(ctr.Env) != 1 || ctr.Env[0].Name != "PUID" || ctr.Env[0].Value != "1000" {
		t.Errorf("env = %v", ctr.Env)
	}
	var ports []string
	for _, p := range ctr.Ports {
		ports = append(ports, fmt.Sprintf("%s/%d/%s", p.Name, p.ContainerPort, p.Protocol))
	}
	if want := []string{"http/3000/TCP", "stream/5900/TCP"}; !slices.Equal(ports, want) {
		t.Errorf("ports = %v, want %v", ports, want)
	}
	checkResources(t, ctr.Resources, "cpu=1 memory=2Gi", "cpu=1 memory=2Gi")

	// a session naming its own resources gets those
	_, bob := e.waitRunning("bob-firefox")
	checkResources(t, bob.Spec.Containers[0].Resources, "cpu=250m memory=1Gi", "memory=1Gi")
}

func checkResources(t *testing.T, got corev1.ResourceRequirements, requests, limits string) {
	t.Helper()
	str := func(l corev1.ResourceList) string {
		var parts []string
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := l[name]; ok {
				parts = append(parts, string(name)+"="+q.String())
			}
		}
		return strings.Join(parts, " ")
	}
	if str(got.Requests) != requests || str(got.Limits) != limits {
		t.Errorf("resources: requests %q limits %q; want %q and %q", str(got.Requests), str(got.Limits), requests, limits)
	}
}

// spec.nodeName binds the pod to that very node (the load balancer's
// choice), for each of the nodes.
func TestSessionOnChosenNode(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	for i := range kubetest.SharedNodes {
		e.createSession(fmt.Sprintf("s%d", i), kubeapi.SessionSpec{User: "u", Template: "firefox", NodeName: fmt.Sprintf("kwok-node-%d", i)})
	}
	for i := range kubetest.SharedNodes {
		node := fmt.Sprintf("kwok-node-%d", i)
		s, pod := e.waitRunning(fmt.Sprintf("s%d", i))
		if pod.Spec.NodeName != node || s.Status.NodeName != node {
			t.Errorf("session s%d: pod on %q, status.nodeName %q; want %s", i, pod.Spec.NodeName, s.Status.NodeName, node)
		}
	}
}

// Hibernating removes the pod (phase Hibernated, pod fields cleared);
// running again makes a new pod. status.lastActivity, the lifecycle
// workflow's, is never touched.
func TestHibernateAndWake(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	e.createSession("carol", kubeapi.SessionSpec{User: "carol", Template: "firefox"})
	_, first := e.waitRunning("carol")

	activity := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u, err := e.sessions.Get(t.Context(), "carol", metav1.GetOptions{})
		if err != nil {
			return err
		}
		u.Object["status"].(map[string]any)["lastActivity"] = activity.UTC().Format(time.RFC3339)
		_, err = e.sessions.UpdateStatus(t.Context(), u, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatalf("set lastActivity: %v", err)
	}

	e.patchSpec("carol", `{"state":"hibernated"}`)
	s := e.waitPhase("carol", kubeapi.PhaseHibernated)
	e.waitPodGone("carol") // gone already: Hibernated is written only then
	if s.Status.PodName != "" || s.Status.NodeName != "" || s.Status.URL != "" {
		t.Errorf("hibernated status keeps pod fields: %+v", s.Status)
	}
	if c := readyCondition(s); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonHibernated {
		t.Errorf("Ready condition = %+v", c)
	}
	if s.Status.LastActivity == nil || !s.Status.LastActivity.Equal(&activity) {
		t.Errorf("lastActivity = %v, want %v", s.Status.LastActivity, activity)
	}

	e.patchSpec("carol", `{"state":"running"}`)
	s, second := e.waitRunning("carol")
	if second.UID == first.UID {
		t.Errorf("woken session runs the old pod %s", first.UID)
	}
	if s.Status.LastActivity == nil || !s.Status.LastActivity.Equal(&activity) {
		t.Errorf("after wake lastActivity = %v, want %v", s.Status.LastActivity, activity)
	}
}

// Terminating removes the pod; the phase is Terminated once it is gone.
func TestTerminate(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	e.createSession("dave", kubeapi.SessionSpec{User: "dave", Template: "firefox"})
	e.waitRunning("dave")
	e.patchSpec("dave", `{"state":"terminated"}`)
	s := e.waitPhase("dave", kubeapi.PhaseTerminated)
	e.waitPodGone("dave")
	if s.Status.PodName != "" || s.Status.URL != "" {
		t.Errorf("terminated status keeps pod fields: %+v", s.Status)
	}
}

// Deleting a Session deletes its pod (garbage collection through the owner
// reference).
func TestDeleteSessionDeletesPod(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	e.createSession("erin", kubeapi.SessionSpec{User: "erin", Template: "firefox"})
	e.waitRunning("erin")
	if err := e.sessions.Delete(t.Context(), "erin", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitPodGone("erin")
}

// A missing template fails the session with a message; the template
// appearing starts it.
func TestMissingTemplate(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createSession("frank", kubeapi.SessionSpec{User: "frank", Template: "firefox"})
	s := e.waitPhase("frank", kubeapi.PhaseFailed)
	if want := `template "firefox" not found`; s.Status.Message != want {
		t.Errorf("message = %q, want %q", s.Status.Message, want)
	}
	if c := readyCondition(s); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonTemplateNotFound {
		t.Errorf("Ready condition = %+v", c)
	}
	if s.Status.PodName != "" {
		t.Errorf("podName = %q", s.Status.PodName)
	}

	e.createTemplate("firefox", firefox())
	s, _ = e.waitRunning("frank")
	if s.Status.Message != "" {
		t.Errorf("message after the template appeared = %q", s.Status.Message)
	}
}

// A pod deleted behind the controller's back is made again, from the
// template as it is then; a template change alone restarts nothing.
func TestPodDeletedIsRecreated(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	e.createSession("grace", kubeapi.SessionSpec{User: "grace", Template: "firefox"})
	_, first := e.waitRunning("grace")

	// Change the template, then the session's spec; once the controller has
	// observed the new generation it has seen the template change too, and
	// the pod must still be the first one.
	tpl, err := e.templates.Get(t.Context(), "firefox", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tpl.Object["spec"].(map[string]any)["baseImage"] = "lscr.io/linuxserver/firefox:2"
	if _, err := e.templates.Update(t.Context(), tpl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.patchSpec("grace", `{"tags":["after-template-change"]}`)
	e.waitRunning("grace")
	if pod, err := e.pods.Get(t.Context(), "grace", metav1.GetOptions{}); err != nil || pod.UID != first.UID || pod.Spec.Containers[0].Image != "lscr.io/linuxserver/firefox:1" {
		t.Fatalf("after a template change: pod %v, err %v; want the first pod untouched", pod, err)
	}

	if err := e.pods.Delete(t.Context(), "grace", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	s := e.waitSession("grace", "a new Running pod", func(s *kubeapi.Session) bool {
		pod, err := e.pods.Get(t.Context(), "grace", metav1.GetOptions{})
		return err == nil && pod.UID != first.UID && s.Status.Phase == kubeapi.PhaseRunning && pod.Status.PodIP != "" &&
			s.Status.URL == "http://"+net.JoinHostPort(pod.Status.PodIP, "5900")
	})
	t.Logf("pod recreated and Running %s after the delete", time.Since(began).Round(time.Millisecond))
	pod, err := e.pods.Get(t.Context(), "grace", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Containers[0].Image != "lscr.io/linuxserver/firefox:2" || s.Status.NodeName != pod.Spec.NodeName {
		t.Errorf("new pod: image %s, node %s; status node %s", pod.Spec.Containers[0].Image, pod.Spec.NodeName, s.Status.NodeName)
	}
}

// A pod of the session's name that the session does not own is neither
// used nor deleted: the session fails saying so.
func TestForeignPodConflict(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	foreign := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "heidi", Labels: map[string]string{kubeapi.LabelSession: "heidi"}},
		Spec: corev1.PodSpec{NodeName: "kwok-node-0", Containers: []corev1.Container{{Name: "x", Image: "example.invalid/x:1",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}}}}},
	}
	created, err := e.pods.Create(t.Context(), foreign, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.createSession("heidi", kubeapi.SessionSpec{User: "heidi", Template: "firefox"})
	s := e.waitPhase("heidi", kubeapi.PhaseFailed)
	if want := `pod "heidi" already exists and does not belong to this session`; s.Status.Message != want {
		t.Errorf("message = %q, want %q", s.Status.Message, want)
	}
	e.patchSpec("heidi", `{"state":"hibernated"}`)
	e.waitPhase("heidi", kubeapi.PhaseHibernated)
	if pod, err := e.pods.Get(t.Context(), "heidi", metav1.GetOptions{}); err != nil || pod.UID != created.UID {
		t.Errorf("foreign pod: %v, err %v; want it left alone", pod, err)
	}
}

// A pod that fails (evicted, say) fails the session with the pod's reason;
// the failed pod is kept for inspection until someone deletes it, and then
// the session gets a new one.
func TestPodFailure(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	e.createSession("ivan", kubeapi.SessionSpec{User: "ivan", Template: "firefox"})
	_, pod := e.waitRunning("ivan")

	// Play the kubelet evicting the pod (kwok has no stage for a Failed pod).
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := e.pods.Get(t.Context(), "ivan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
		_, err = e.pods.UpdateStatus(t.Context(), p, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s := e.waitPhase("ivan", kubeapi.PhaseFailed)
	if want := `pod "ivan" failed: Evicted: The node was low on resource: memory.`; s.Status.Message != want {
		t.Errorf("message = %q, want %q", s.Status.Message, want)
	}
	if c := readyCondition(s); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonPodFailed {
		t.Errorf("Ready condition = %+v", c)
	}

	if err := e.pods.Delete(t.Context(), "ivan", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSession("ivan", "Running on a new pod", func(s *kubeapi.Session) bool {
		p, err := e.pods.Get(t.Context(), "ivan", metav1.GetOptions{})
		return err == nil && p.UID != pod.UID && s.Status.Phase == kubeapi.PhaseRunning
	})
}
