package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// claim is the persistent volume claim of that name, nil when there is none.
func (e *sessionAPI) claim(name string) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	pvc, err := e.kube.Clientset.CoreV1().PersistentVolumeClaims(e.kube.Namespace).Get(e.t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(e.t, err)
	return pvc
}

// waitClaimGone polls until the claim no longer exists (Kubernetes removes
// a deleted claim once no pod mounts it).
func (e *sessionAPI) waitClaimGone(name string) {
	e.t.Helper()
	require.NoError(e.t, wait.PollUntilContextTimeout(e.t.Context(), 25*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return e.claim(name) == nil, nil }), "claim %s not deleted", name)
}

// runningSession starts a session of the template as token, waits until it
// runs and answers it with its pod.
func (e *sessionAPI) runningSession(token, template string, body map[string]any) (sessionJSON, *corev1.Pod) {
	e.t.Helper()
	body["template"] = template
	var s sessionJSON
	e.callJSON("POST", "/api/sessions", token, body, 202, &s)
	s = e.waitSession(s.ID, token, "running", func(s sessionJSON) bool { return s.Phase == "running" && s.URL != "" })
	pod, err := e.kube.Clientset.CoreV1().Pods(e.kube.Namespace).Get(e.t.Context(), s.ID, metav1.GetOptions{})
	require.NoError(e.t, err)
	return s, pod
}

// podClaim is the claim the pod mounts, "" for none.
func podClaim(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

// A session with persistent_home mounts its user's claim, kept when the
// session ends and mounted again by the next one; the home can be deleted
// (by its user, or an admin) only while no live session uses it; a session
// without persistent_home mounts none; deleting the user deletes it.
func TestPersistentHomeAPI(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	e.createTemplate("firefox")
	home := kubeapi.HomeClaimName(e.user.ID.String())

	first, pod := e.runningSession(e.user.Token, "firefox", map[string]any{})
	require.True(t, first.PersistentHome)
	require.Equal(t, home, podClaim(pod), "the pod mounts alice's home")
	require.Equal(t, "/config", pod.Spec.Containers[0].VolumeMounts[0].MountPath)
	claim := e.claim(home)
	require.NotNil(t, claim)

	// in use: refused, for alice and for an admin
	for _, c := range []struct{ path, token string }{
		{"/api/users/me/home", e.user.Token},
		{"/api/admin/users/" + e.user.ID.String() + "/home", e.admin.Token},
	} {
		resp, data := e.call("DELETE", c.path, c.token, nil)
		require.Equal(t, 409, resp.StatusCode, "%s", data)
		env := decodeEnvelope(t, data)
		require.Equal(t, "CONFLICT", env.Error.Code)
		require.Equal(t, map[string]any{"session_ids": []any{first.ID}}, env.Error.Details)
	}

	// ending the session keeps the home; the next session mounts the same one
	e.callJSON("DELETE", "/api/sessions/"+first.ID, e.user.Token, nil, 204, nil)
	kept := e.claim(home)
	require.NotNil(t, kept, "the home is kept when the session ends")
	require.Equal(t, claim.UID, kept.UID)
	second, pod := e.runningSession(e.user.Token, "firefox", map[string]any{})
	require.Equal(t, home, podClaim(pod))
	require.Equal(t, claim.UID, e.claim(home).UID, "the second session reuses the home")
	e.callJSON("DELETE", "/api/sessions/"+second.ID, e.user.Token, nil, 204, nil)

	// bob's session without persistent_home mounts nothing, and bob has no home
	bobs, pod := e.runningSession(e.other.Token, "firefox", map[string]any{"persistent_home": false})
	require.False(t, bobs.PersistentHome)
	require.Empty(t, pod.Spec.Volumes)
	require.Nil(t, e.claim(kubeapi.HomeClaimName(e.other.ID.String())))
	resp, data := e.call("DELETE", "/api/users/me/home", e.other.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "bob has no home: %s", data)

	// no live session uses it: alice deletes her home
	e.callJSON("DELETE", "/api/users/me/home", e.user.Token, nil, 204, nil)
	e.waitClaimGone(home)
	resp, data = e.call("DELETE", "/api/users/me/home", e.user.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)

	// deleting a user deletes their home
	carol := e.createUser("carol", "user")
	s, _ := e.runningSession(carol.Token, "firefox", map[string]any{})
	e.callJSON("DELETE", "/api/sessions/"+s.ID, carol.Token, nil, 204, nil)
	require.NotNil(t, e.claim(kubeapi.HomeClaimName(carol.ID.String())))
	e.callJSON("DELETE", "/api/admin/users/"+carol.ID.String(), e.admin.Token, nil, 204, nil)
	e.waitClaimGone(kubeapi.HomeClaimName(carol.ID.String()))
}
