package sessionctl

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// createUserSession creates a Session as the API's lifecycle run does: with
// its user's id in the LabelUserID label.
func (e *env) createUserSession(name, userID string, spec kubeapi.SessionSpec) {
	e.t.Helper()
	spec.State = kubeapi.StateRunning
	e.createSessionObject(&kubeapi.Session{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{kubeapi.LabelUserID: userID}}, Spec: spec})
}

// homeClaim gets the claim named name; nil once it does not exist.
func (e *env) homeClaim(name string) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	pvc, err := e.kube.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	return pvc
}

// waitClaim polls the claim until ok says so.
func (e *env) waitClaim(name, what string, ok func(*corev1.PersistentVolumeClaim) bool) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	var last *corev1.PersistentVolumeClaim
	began := time.Now()
	if err := wait.PollUntilContextTimeout(e.t.Context(), 20*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		last = e.homeClaim(name)
		return ok(last), nil
	}); err != nil {
		e.t.Fatalf("claim %s: waiting for %s: %v; last %+v", name, what, err, last)
	}
	e.t.Logf("claim %s: %s after %s", name, what, time.Since(began).Round(time.Millisecond))
	return last
}

// mountsHome reports whether the pod mounts claim at path.
func mountsHome(pod *corev1.Pod, claim, path string) bool {
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].PersistentVolumeClaim == nil ||
		pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != claim {
		return false
	}
	m := pod.Spec.Containers[0].VolumeMounts
	return len(m) == 1 && m[0].Name == pod.Spec.Volumes[0].Name && m[0].MountPath == path
}

// A session with a persistent home gets its user's claim, made from the
// configured size and the cluster's default class (the local cluster's is
// provisioned and bound), mounted at the template's path. Hibernating,
// terminating and deleting the session keep the claim; the user's next
// session mounts the same one; a session without persistentHome mounts
// nothing; deleting the home on request removes it.
func TestPersistentHome(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	const user = "0190a3c2-7d4e-7b1a-9f00-1c2d3e4f5a6b"
	claimName := kubeapi.HomeClaimName(user)

	e.createUserSession("alice-1", user, kubeapi.SessionSpec{User: "alice", Template: "firefox"})
	_, pod := e.waitRunning("alice-1")
	if !mountsHome(pod, claimName, "/config") {
		t.Fatalf("pod does not mount %s at /config: volumes %+v, mounts %+v", claimName, pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts)
	}
	claim := e.waitClaim(claimName, "Bound", func(c *corev1.PersistentVolumeClaim) bool {
		return c != nil && c.Status.Phase == corev1.ClaimBound
	})
	size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if claim.Labels[kubeapi.LabelHome] != "true" || claim.Labels[kubeapi.LabelManaged] != kubeapi.ManagedBy || claim.Labels[kubeapi.LabelUserID] != user ||
		len(claim.OwnerReferences) != 0 || len(claim.Spec.AccessModes) != 1 || claim.Spec.AccessModes[0] != corev1.ReadWriteOnce ||
		size.String() != "10Gi" || claim.Spec.StorageClassName == nil || *claim.Spec.StorageClassName != kubestack.StorageClassName {
		t.Errorf("claim: labels %v, owners %v, modes %v, size %s, class %v", claim.Labels, claim.OwnerReferences,
			claim.Spec.AccessModes, size.String(), claim.Spec.StorageClassName)
	}

	e.patchSpec("alice-1", `{"state":"hibernated"}`)
	e.waitPhase("alice-1", kubeapi.PhaseHibernated)
	e.patchSpec("alice-1", `{"state":"running"}`)
	_, woken := e.waitRunning("alice-1")
	if !mountsHome(woken, claimName, "/config") {
		t.Errorf("woken pod does not mount the home: %+v", woken.Spec.Volumes)
	}
	e.patchSpec("alice-1", `{"state":"terminated"}`)
	e.waitPhase("alice-1", kubeapi.PhaseTerminated)
	if err := e.sessions.Delete(t.Context(), "alice-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitPodGone("alice-1")
	if c := e.homeClaim(claimName); c == nil || c.UID != claim.UID || c.DeletionTimestamp != nil {
		t.Fatalf("after the session ended the claim is %+v, want it kept", c)
	}

	// the user's next session (and one alongside it) share the claim; one
	// without a persistent home mounts nothing
	e.createUserSession("alice-2", user, kubeapi.SessionSpec{User: "alice", Template: "firefox"})
	e.createUserSession("alice-3", user, kubeapi.SessionSpec{User: "alice", Template: "firefox", PersistentHome: new(false)})
	for _, name := range []string{"alice-2", "alice-3"} {
		_, pod := e.waitRunning(name)
		switch {
		case name == "alice-2" && !mountsHome(pod, claimName, "/config"):
			t.Errorf("%s does not mount the home: %+v", name, pod.Spec.Volumes)
		case name == "alice-3" && (len(pod.Spec.Volumes) != 0 || len(pod.Spec.Containers[0].VolumeMounts) != 0):
			t.Errorf("%s without persistentHome mounts %+v", name, pod.Spec.Volumes)
		}
	}
	if c := e.homeClaim(claimName); c == nil || c.UID != claim.UID {
		t.Fatalf("second session: claim %+v, want the first one", c)
	}

	// deleted on request: Kubernetes keeps it while alice-2's pod mounts it,
	// removes it once the pod is gone
	if err := activities.DeleteHome(t.Context(), e.kube, user); err != nil {
		t.Fatalf("DeleteHome: %v", err)
	}
	e.patchSpec("alice-2", `{"state":"terminated"}`)
	e.waitPhase("alice-2", kubeapi.PhaseTerminated)
	e.waitClaim(claimName, "gone", func(c *corev1.PersistentVolumeClaim) bool { return c == nil })
	if err := activities.DeleteHome(t.Context(), e.kube, user); err != activities.ErrNoHome {
		t.Errorf("DeleteHome of a deleted home: %v, want ErrNoHome", err)
	}
}

// A claim of the home's name that StreamSpace did not make is neither used
// nor deleted: the session fails saying so.
func TestForeignHomeClaim(t *testing.T) {
	t.Parallel()
	e := startController(t)
	e.createTemplate("firefox", firefox())
	foreign := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: kubeapi.HomeClaimName("bob")},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: DefaultHomeSize}}},
	}
	if _, err := e.kube.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Create(t.Context(), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.createSession("bob", kubeapi.SessionSpec{User: "bob", Template: "firefox"})
	s := e.waitPhase("bob", kubeapi.PhaseFailed)
	if want := `persistent volume claim "home-bob" already exists and is not a StreamSpace home`; s.Status.Message != want {
		t.Errorf("message = %q, want %q", s.Status.Message, want)
	}
	if err := activities.DeleteHome(t.Context(), e.kube, "bob"); err != activities.ErrNoHome {
		t.Errorf("DeleteHome of a foreign claim: %v, want ErrNoHome", err)
	}
	if e.homeClaim("home-bob") == nil {
		t.Error("the foreign claim was deleted")
	}
}
