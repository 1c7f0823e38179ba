package server

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/workflows"
)

// A session whose run was started before workflow ID prefixes (legacy ID
// session/<id>) is still reached by a client with a prefix: its status
// query, activity signal and Updates fall back to the legacy run.
func TestSessionLegacyRunReachedWithPrefix(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	e.createTemplate("firefox")
	require.Empty(t, e.workflows.IDPrefix, "the server here is the version before prefixes")

	var s sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &s)
	e.waitSession(s.ID, e.user.Token, "running", func(s sessionJSON) bool { return s.Phase == "running" && s.RunningAt != nil })

	upgraded := &workflows.Client{Temporal: e.temporal, Namespace: e.workflows.Namespace,
		TaskQueue: e.workflows.TaskQueue, IDPrefix: "dep-" + uuid.NewString()[:8]}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st, err := upgraded.SessionStatusOf(ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, "running", st.State)
	require.NoError(t, upgraded.RecordSessionActivity(ctx, s.ID))

	st, err = upgraded.HibernateSession(ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, "hibernated", st.State)
	var got sessionJSON
	e.callJSON("GET", "/api/sessions/"+s.ID, e.user.Token, nil, 200, &got)
	require.Equal(t, "hibernated", got.State)

	require.NoError(t, upgraded.EndSession(ctx, s.ID, "upgrade test"))
	d, err := e.temporal.DescribeWorkflowExecution(ctx, workflows.SessionWorkflowID(s.ID), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.GetWorkflowExecutionInfo().GetStatus(),
		"the legacy run ended the session")
	// Neither run is open now: the session has no run.
	require.ErrorIs(t, upgraded.EndSession(ctx, s.ID, "again"), activities.ErrNoSessionRun)
}
