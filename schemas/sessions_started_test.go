package schemas_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// StartedSessionIDs lists the namespace's Running and Hibernated sessions
// (the ones whose Session exists) and none being created, ended or in
// another namespace.
func TestStartedSessionIDs(t *testing.T) {
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "started", "user")
	ns := "ns-" + uuid.NewString()[:8]
	ctx := context.Background()
	add := func(id, namespace, phase string) {
		t.Helper()
		row := schemas.SessionRow{ID: id, Namespace: namespace, UserID: u.ID, Username: u.Username,
			Template: "desktop", Spec: kubeapi.SessionSpec{User: u.Username, Template: "desktop"}}
		require.NoError(t, store.CreateSession(ctx, &row, schemas.Quota{MaxSessions: 100}, nil))
		if phase != kubeapi.PhasePending {
			_, err := store.TransitionSession(ctx, id, schemas.SessionTransition{Phase: phase})
			require.NoError(t, err)
		}
	}
	add("running", ns, kubeapi.PhaseRunning)
	add("creating", ns, kubeapi.PhasePending)
	add("hibernated", ns, kubeapi.PhaseHibernated)
	add("failed", ns, kubeapi.PhaseFailed)
	add("terminated", ns, kubeapi.PhaseTerminated)
	add("elsewhere", ns+"-other", kubeapi.PhaseRunning)

	ids, err := store.StartedSessionIDs(ctx, ns)
	require.NoError(t, err)
	require.Equal(t, []string{"running", "hibernated"}, ids)

	none, err := store.StartedSessionIDs(ctx, "no-such-namespace")
	require.NoError(t, err)
	require.Empty(t, none)
}
