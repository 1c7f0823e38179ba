package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// Deleting a user ends their sessions before the account goes: the
// Session resources are deleted, the runs complete, session.deleted is
// published for each, and the account is gone (its token refused).
func TestDeleteUserEndsSessions(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	e.createTemplate("firefox")
	var ids []string
	for range 2 {
		var s sessionJSON
		e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &s)
		e.waitSession(s.ID, e.user.Token, "running", func(s sessionJSON) bool { return s.Phase == "running" })
		ids = append(ids, s.ID)
	}
	// One more live row no run holds (its workflow never started).
	orphan := insertSession(t, e.apiBundle, e.user, "firefox", false)
	// Another user's session is left alone.
	var bobs sessionJSON
	e.callJSON("POST", "/api/sessions", e.other.Token, map[string]any{"template": "firefox"}, 202, &bobs)
	e.waitSession(bobs.ID, e.other.Token, "running", func(s sessionJSON) bool { return s.Phase == "running" }) // with bob's home

	resp, data := e.call("DELETE", "/api/admin/users/"+e.user.ID.String(), e.admin.Token, nil)
	require.Equal(t, 204, resp.StatusCode, "%s", data)

	sessions := e.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(e.kube.Namespace)
	for _, id := range ids {
		_, err := sessions.Get(context.Background(), id, metav1.GetOptions{})
		require.Error(t, err, "Session %s is deleted", id)
		desc, err := e.temporal.DescribeWorkflowExecution(context.Background(), workflows.SessionWorkflowID(id), "")
		require.NoError(t, err)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status, "run of %s", id)
	}
	var deleted []string
	for _, ev := range outboxEvents(t, e.store, schemas.EventSessionDeleted) {
		deleted = append(deleted, ev["session_id"].(string))
	}
	require.ElementsMatch(t, append(ids, orphan.ID), deleted, "session.deleted for each of alice's sessions")
	gone := userEvents(t, e.store.Pool, schemas.EventUserUpdated, e.user.ID)
	require.NotEmpty(t, gone)
	require.Equal(t, []string{"deleted"}, gone[len(gone)-1].Changed)
	// The run's last step deleted alice's persistent home (Kubernetes
	// removes the claim once no pod mounts it); bob's stays.
	e.waitClaimGone(kubeapi.HomeClaimName(e.user.ID.String()))
	require.NotNil(t, e.claim(kubeapi.HomeClaimName(e.other.ID.String())), "bob's home is not touched")

	resp, _ = e.call("GET", "/api/me", e.user.Token, nil)
	require.Equal(t, 401, resp.StatusCode, "the deleted user's token is refused")
	resp, data = e.call("DELETE", "/api/admin/users/"+e.user.ID.String(), e.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)
	var live sessionJSON
	e.callJSON("GET", "/api/sessions/"+bobs.ID, e.other.Token, nil, 200, &live)
	require.NotEqual(t, "terminated", live.Phase, "bob's session is not touched")

	// The run is in Temporal under the user's id, for the Web UI.
	desc, err := e.temporal.DescribeWorkflowExecution(context.Background(), workflows.UserDeleteID(e.user.ID.String()), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)
	var res workflows.UserDeleteResult
	require.NoError(t, e.temporal.GetWorkflow(context.Background(), desc.WorkflowExecutionInfo.Execution.WorkflowId, "").
		Get(context.Background(), &res))
	require.Equal(t, workflows.UserDeleteResult{SessionsEnded: 3, Deleted: true}, res)
}

// A user being deleted can start nothing: the account is deactivated first.
func TestDeletingUserStartsNoSession(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{})
	insertSession(t, e.apiBundle, e.user, "firefox", false) // live: the deletion needs a run (none runs here)
	_, err := e.store.BeginUserDelete(context.Background(), e.user.ID)
	require.NoError(t, err)
	row := schemas.SessionRow{ID: "alice-firefox-zzzzzzzz", Namespace: e.kube.Namespace, UserID: e.user.ID,
		Username: e.user.Username, Template: "firefox"}
	require.ErrorIs(t, e.store.CreateSession(context.Background(), &row, schemas.Quota{MaxSessions: 10}, nil), schemas.ErrNotFound)
	resp, data := e.call("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"})
	require.Equal(t, 401, resp.StatusCode, "%s", data)
	_, err = e.store.FinishUserDelete(context.Background(), e.user.ID)
	require.ErrorIs(t, err, schemas.ErrUserHasSessions)
	u, err := e.store.GetUser(context.Background(), e.user.ID)
	require.NoError(t, err, "kept until its sessions have ended")
	require.False(t, u.Active)
}
