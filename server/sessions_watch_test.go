package server

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// A Session deleted with kubectl (not through the API) ends the session
// within seconds: the row records terminated, session.deleted is
// published with the reason, and the session's run completes.
func TestSessionDeletedWithKubectlEndsSession(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	s := startRecordedRunning(t, e)

	sessions := e.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(e.kube.Namespace)
	require.NoError(t, sessions.Delete(context.Background(), s.ID, metav1.DeleteOptions{}))

	waitEndedOutside(t, e, s.ID)

	var quota myQuotaJSON
	e.callJSON("GET", "/api/me/quota", e.user.Token, nil, 200, &quota)
	require.Zero(t, quota.Usage.Sessions, "the ended session holds no quota")
}

// A session whose pod fails mid-life (evicted) fails within seconds: the
// row records failed with the pod's reason, session.deleted says
// "failed: …", its Session is deleted, and the run ends failed.
func TestSessionPodFailureFailsSession(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true})
	s := startRecordedRunning(t, e)
	running := e.waitSession(s.ID, e.user.Token, "running", func(s sessionJSON) bool { return s.PodName != "" })

	pods := e.kube.Clientset.CoreV1().Pods(e.kube.Namespace)
	pod, err := pods.Get(context.Background(), running.PodName, metav1.GetOptions{})
	require.NoError(t, err)
	pod.Status.Phase, pod.Status.Reason, pod.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
	_, err = pods.UpdateStatus(context.Background(), pod, metav1.UpdateOptions{})
	require.NoError(t, err)

	var row schemas.SessionRow
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 25*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			row, err = e.store.GetSession(ctx, s.ID)
			return err == nil && row.Phase == kubeapi.PhaseFailed, err
		}), "the row never became Failed; last: %+v", row)
	require.Contains(t, row.Message, "the session failed while running")
	require.Contains(t, row.Message, "Evicted")
	require.NotNil(t, row.EndedAt)
	deleted := sessionEventsOf(t, e.store, schemas.EventSessionDeleted, s.ID)
	require.Len(t, deleted, 1, "one session.deleted")
	require.Contains(t, deleted[0]["reason"], "failed: the session failed while running")
	e.waitRunClosed(s.ID, enums.WORKFLOW_EXECUTION_STATUS_FAILED)
	_, err = e.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(e.kube.Namespace).
		Get(context.Background(), s.ID, metav1.GetOptions{})
	require.Error(t, err, "the failed session's Session is deleted")
}

// waitEndedOutside waits until e's session id has ended as one whose Session
// was deleted outside StreamSpace: the row terminated with the reason, one
// session.deleted with it, and the run completed.
func waitEndedOutside(t *testing.T, e *sessionAPI, id string) {
	t.Helper()
	ended := e.waitSession(id, e.user.Token, "terminated", func(s sessionJSON) bool { return s.Phase == "terminated" })
	require.Equal(t, kubeapi.StateTerminated, ended.State)
	require.NotNil(t, ended.EndedAt)
	require.Equal(t, "its Session resource was deleted outside StreamSpace", ended.Message)
	deleted := sessionEventsOf(t, e.store, schemas.EventSessionDeleted, id)
	require.Len(t, deleted, 1, "one session.deleted")
	require.Equal(t, "its Session resource was deleted outside StreamSpace", deleted[0]["reason"])
	e.waitRunClosed(id, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// sessionEventsOf lists the payloads of the events of type typ about the
// session id.
func sessionEventsOf(t *testing.T, store *schemas.Store, typ schemas.EventType, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range outboxEvents(t, store, typ) {
		if ev["session_id"] == id {
			out = append(out, ev)
		}
	}
	return out
}

// waitRunClosed waits until the session's run has closed with status.
func (e *sessionAPI) waitRunClosed(id string, status enums.WorkflowExecutionStatus) {
	e.t.Helper()
	var last enums.WorkflowExecutionStatus
	err := wait.PollUntilContextTimeout(e.t.Context(), 25*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		desc, err := e.temporal.DescribeWorkflowExecution(ctx, workflows.SessionWorkflowID(id), "")
		if err != nil {
			return false, err
		}
		last = desc.WorkflowExecutionInfo.Status
		return last == status, nil
	})
	require.NoError(e.t, err, "run of %s: want %s, last %s", id, status, last)
}

// startRecordedRunning creates a firefox template and a session of e's user
// from it, and waits until its run has recorded it Running.
func startRecordedRunning(t *testing.T, e *sessionAPI) sessionJSON {
	t.Helper()
	e.createTemplate("firefox")
	var s sessionJSON
	e.callJSON("POST", "/api/sessions", e.user.Token, map[string]any{"template": "firefox"}, 202, &s)
	waitRecordedRunning(t, e, s.ID)
	return s
}

// waitRecordedRunning waits until the session's run has recorded it Running
// (the row's running_at), not only until its Session reports Running: a
// Session deleted or failed before that is a failed start, not a change
// behind a running session's back.
func waitRecordedRunning(t *testing.T, e *sessionAPI, id string) schemas.SessionRow {
	t.Helper()
	var row schemas.SessionRow
	var err error
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 25*time.Millisecond, time.Minute, true,
		func(ctx context.Context) (bool, error) {
			row, err = e.store.GetSession(ctx, id)
			return err == nil && row.RunningAt != nil, err
		}), "the run never recorded %s Running; last: %+v", id, row)
	return row
}
