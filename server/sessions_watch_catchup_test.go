package server

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas/kubeapi"
	"github.com/streamspace/enterprise/workflows"
)

// A Session deleted while no worker watched (kubectl delete during a worker
// outage) ends its session once the watch starts: the row records
// terminated, session.deleted is published and the run completes. A
// session still being created (its run started, its Session not made yet)
// is not reported deleted.
func TestSessionDeletedWhileUnwatchedIsCaughtUp(t *testing.T) {
	t.Parallel()
	e := newSessionAPI(t, sessionAPIOptions{lifecycle: true, noWatch: true})
	s := startRecordedRunning(t, e)
	sessions := e.kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(e.kube.Namespace)
	require.NoError(t, sessions.Delete(context.Background(), s.ID, metav1.DeleteOptions{}))

	// Being created: its row is Pending and its run is started on a task
	// queue no worker polls, so it never makes its Session.
	creating := insertSession(t, e.apiBundle, e.user, "firefox", false)
	idle := &workflows.Client{Temporal: e.temporal, Namespace: testenv.TemporalNamespace(), TaskQueue: "idle-" + uuid.NewString()}
	require.NoError(t, idle.StartSession(context.Background(), workflows.SessionInput{SessionID: creating.ID}, e.user.Username))
	t.Cleanup(func() {
		_ = e.temporal.TerminateWorkflow(context.Background(), workflows.SessionWorkflowID(creating.ID), "", "test over")
	})

	e.startWatch()

	waitEndedOutside(t, e, s.ID)

	// The pass that reported s would have queued the creating session too;
	// its one signal would have been delivered long before s's run ended.
	row, err := e.store.GetSession(context.Background(), creating.ID)
	require.NoError(t, err)
	require.Equal(t, kubeapi.PhasePending, row.Phase, "the session being created is untouched")
	require.Zero(t, e.observedSignals(creating.ID), "the session being created was reported")
}

// observedSignals counts the observed Signals in the history of the
// session's run.
func (e *sessionAPI) observedSignals(id string) int {
	e.t.Helper()
	n := 0
	it := e.temporal.GetWorkflowHistory(context.Background(), workflows.SessionWorkflowID(id), "", false,
		enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalObserved {
			n++
		}
	}
	return n
}
