package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/internal/wfid"
	"github.com/streamspace/enterprise/workflows"
)

// The sessions walk-through of docs/sessions.md, over HTTP against the running server
// and worker: an admin adds a template, alice starts a session, sees it
// Running on a simulated node, finds its workflow run, hibernates, wakes and
// deletes it.
func walkThroughSessions(t *testing.T, api string, tc client.Client, prefix string) {
	t.Helper()
	admin := &apiClient{api: api}
	admin.token = admin.login(t, "admin", "e2e admin password")
	alice := &apiClient{api: api}
	alice.token = alice.login(t, "alice", "a long passphrase")

	status, body := admin.do("POST", "/api/templates", `{"id":"firefox","display_name":"Firefox",
		"base_image":"lscr.io/linuxserver/firefox:latest","default_resources":{"cpu":"1","memory":"2Gi"},
		"vnc":{"port":3000}}`)
	require.Equal(t, http.StatusCreated, status, body)

	status, body = alice.do("POST", "/api/sessions", `{"template":"firefox"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	var s sessionJSON
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Equal(t, "pending", s.Phase)

	s = waitSession(t, alice, s.ID, func(s sessionJSON) bool { return s.Phase == "running" && s.RunningAt != nil })
	require.NotEmpty(t, s.Node)
	require.Contains(t, s.URL, ":3000")

	desc, err := tc.DescribeWorkflowExecution(t.Context(), wfid.Join(prefix, workflows.SessionWorkflowID(s.ID)), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status)
	require.Equal(t, "SessionLifecycle", desc.WorkflowExecutionInfo.Type.Name)

	status, body = alice.do("PATCH", "/api/sessions/"+s.ID, `{"state":"hibernated"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Equal(t, "hibernated", s.Phase)

	status, body = alice.do("PATCH", "/api/sessions/"+s.ID, `{"state":"running"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Equal(t, "running", s.Phase)

	status, body = alice.do("DELETE", "/api/sessions/"+s.ID, "")
	require.Equal(t, http.StatusNoContent, status, body)
	s = waitSession(t, alice, s.ID, func(s sessionJSON) bool { return s.Phase == "terminated" })

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var st workflows.SessionStatus
	require.NoError(t, tc.GetWorkflow(ctx, wfid.Join(prefix, workflows.SessionWorkflowID(s.ID)), "").Get(ctx, &st))
	require.Equal(t, "Terminated", st.Phase)

	status, body = admin.do("GET", "/api/admin/events?type=session.awakened", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, s.ID)
}

type sessionJSON struct {
	ID        string     `json:"id"`
	Phase     string     `json:"phase"`
	Node      string     `json:"node"`
	URL       string     `json:"url"`
	RunningAt *time.Time `json:"running_at"`
}

func waitSession(t *testing.T, c *apiClient, id string, ok func(sessionJSON) bool) sessionJSON {
	t.Helper()
	var last sessionJSON
	var lastBody string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		status, body := c.do("GET", "/api/sessions/"+id, "")
		lastBody = body
		if status != http.StatusOK {
			return false, nil
		}
		last = sessionJSON{}
		_ = json.Unmarshal([]byte(body), &last)
		return ok(last), nil
	})
	require.NoError(t, err, "session %s; last answer %s", id, lastBody)
	return last
}
