package activities_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/kubestack/kubetest"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// sessionFixture is a namespace of the shared cluster, a database with one
// user, and the session activities over both. No controller runs: the test
// writes the Session's status itself.
type sessionFixture struct {
	acts     *activities.Sessions
	env      *testsuite.TestActivityEnvironment
	store    *schemas.Store
	sessions dynamic.ResourceInterface
	user     schemas.User
	ns       string
}

func newSessionFixture(t *testing.T) *sessionFixture {
	t.Helper()
	cluster := kubetest.Cluster(t)
	kube, err := activities.NewKube(cluster.RESTConfig())
	require.NoError(t, err)
	kube.Namespace = kubetest.Namespace(t, cluster)
	store := &schemas.Store{Pool: testenv.DB(t)}
	user := schemas.User{Username: "alice", Role: "user", Active: true}
	require.NoError(t, store.InTx(t.Context(), func(tx pgx.Tx) error { return schemas.InsertUser(t.Context(), tx, &user) }))
	f := &sessionFixture{
		acts:     &activities.Sessions{Kube: kube, Store: store, Quota: schemas.Quota{MaxSessions: 5, CPUMillis: 2000}},
		env:      (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment(),
		store:    store,
		sessions: kube.Dynamic.Resource(kubeapi.SessionGVR).Namespace(kube.Namespace),
		user:     user,
		ns:       kube.Namespace,
	}
	f.env.RegisterActivity(f.acts)
	return f
}

// newSession writes a session row as the API does.
func (f *sessionFixture) newSession(t *testing.T, cpuMillis int64) string {
	t.Helper()
	id := "alice-firefox-" + uuid.NewString()[:8]
	row := &schemas.SessionRow{ID: id, Namespace: f.ns, UserID: f.user.ID, Username: f.user.Username,
		Template: "firefox", CPUMillis: cpuMillis,
		Spec: kubeapi.SessionSpec{User: "alice", Template: "firefox", State: kubeapi.StateRunning, IdleTimeout: "30m"}}
	require.NoError(t, f.store.CreateSession(t.Context(), row, f.acts.Quota, nil))
	return id
}

func (f *sessionFixture) setPhase(t *testing.T, id, phase string) {
	t.Helper()
	patch := fmt.Sprintf(`{"status":{"phase":%q,"nodeName":"kwok-node-1"}}`, phase)
	_, err := f.sessions.Patch(t.Context(), id, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	require.NoError(t, err)
}

func errType(err error) string {
	var app *temporal.ApplicationError
	if ok := asApp(err, &app); ok {
		return app.Type()
	}
	return ""
}

func TestSessionResourceLifecycle(t *testing.T) {
	f := newSessionFixture(t)
	id := f.newSession(t, 1000)

	// Create writes the row's spec, and a retried create is no error.
	for range 2 {
		_, err := f.env.ExecuteActivity(f.acts.CreateSessionResource, id)
		require.NoError(t, err)
	}
	obj, err := f.sessions.Get(t.Context(), id, metav1.GetOptions{})
	require.NoError(t, err)
	s, err := kubeapi.SessionFrom(obj)
	require.NoError(t, err)
	require.Equal(t, "alice", s.Spec.User)
	require.Equal(t, "30m", s.Spec.IdleTimeout)
	// The annotation names the run that created it (the test environment's).
	require.Equal(t, "default-test-workflow-id", s.Annotations[activities.AnnotationWorkflow])

	// Waiting gives up at the deadline and says what it saw.
	v, err := f.env.ExecuteActivity(f.acts.AwaitSessionPhase, activities.AwaitPhaseInput{SessionID: id,
		Phases: []string{kubeapi.PhaseRunning}, Deadline: time.Now().Add(300 * time.Millisecond)})
	require.NoError(t, err)
	var obs activities.Observed
	require.NoError(t, v.Get(&obs))
	require.False(t, obs.Reached)

	// ... and sees the phase arrive while it waits (written concurrently,
	// as the controller would: before its first read or during its watch).
	go f.setPhase(t, id, kubeapi.PhaseRunning)
	v, err = f.env.ExecuteActivity(f.acts.AwaitSessionPhase, activities.AwaitPhaseInput{SessionID: id,
		Phases: []string{kubeapi.PhaseRunning}, Deadline: time.Now().Add(30 * time.Second)})
	require.NoError(t, err)
	require.NoError(t, v.Get(&obs))
	require.True(t, obs.Reached)
	require.Equal(t, "kwok-node-1", obs.NodeName)

	// State changes patch the spec only.
	_, err = f.env.ExecuteActivity(f.acts.SetSessionResourceState, activities.SetStateInput{SessionID: id, State: kubeapi.StateHibernated})
	require.NoError(t, err)
	obj, err = f.sessions.Get(t.Context(), id, metav1.GetOptions{})
	require.NoError(t, err)
	s, _ = kubeapi.SessionFrom(obj)
	require.Equal(t, kubeapi.StateHibernated, s.Spec.State)
	require.Equal(t, kubeapi.PhaseRunning, s.Status.Phase)

	// Activity is written to the row and the Session's status.
	_, err = f.env.ExecuteActivity(f.acts.TouchSession, id)
	require.NoError(t, err)
	row, err := f.store.GetSession(t.Context(), id)
	require.NoError(t, err)
	require.NotNil(t, row.LastActivityAt)
	obj, err = f.sessions.Get(t.Context(), id, metav1.GetOptions{})
	require.NoError(t, err)
	s, _ = kubeapi.SessionFrom(obj)
	require.NotNil(t, s.Status.LastActivity)

	// Delete returns once the Session is gone; deleting again is fine.
	for range 2 {
		_, err = f.env.ExecuteActivity(f.acts.DeleteSessionResource, id)
		require.NoError(t, err)
	}
	_, err = f.sessions.Get(t.Context(), id, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "got %v", err)

	// A gone Session ends a wait at once, and cannot change state.
	v, err = f.env.ExecuteActivity(f.acts.AwaitSessionPhase, activities.AwaitPhaseInput{SessionID: id,
		Phases: []string{kubeapi.PhaseRunning}, Deadline: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	require.NoError(t, v.Get(&obs))
	require.True(t, obs.Gone)
	_, err = f.env.ExecuteActivity(f.acts.SetSessionResourceState, activities.SetStateInput{SessionID: id, State: kubeapi.StateRunning})
	require.Equal(t, activities.ErrTypeSessionNotFound, errType(err))
}

// A session ended before its run created the Session (its user was deleted
// while the API was still starting the run) gets none.
func TestCreateSessionResourceOfEndedRow(t *testing.T) {
	f := newSessionFixture(t)
	id := f.newSession(t, 500)
	row, err := f.store.GetSession(t.Context(), id)
	require.NoError(t, err)
	require.NoError(t, activities.EndOrphanSession(t.Context(), nil, f.store, row, "its user was deleted"))

	_, err = f.env.ExecuteActivity(f.acts.CreateSessionResource, id)
	require.Equal(t, activities.ErrTypeSessionEnded, errType(err))
	_, err = f.sessions.Get(t.Context(), id, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "no Session for an ended row: %v", err)
}

func TestRecordSessionWakeChecksQuota(t *testing.T) {
	f := newSessionFixture(t)
	first := f.newSession(t, 1500)
	_, err := f.env.ExecuteActivity(f.acts.RecordSession, activities.RecordInput{SessionID: first,
		State: kubeapi.StateHibernated, Phase: kubeapi.PhaseHibernated, Event: schemas.EventSessionHibernated})
	require.NoError(t, err)
	f.newSession(t, 1000) // running: 1 of 2 cores

	// Waking the first would hold 2.5 cores.
	_, err = f.env.ExecuteActivity(f.acts.RecordSession, activities.RecordInput{SessionID: first,
		State: kubeapi.StateRunning, Phase: kubeapi.PhasePending, Wake: true})
	require.Equal(t, activities.ErrTypeQuotaExceeded, errType(err))
	var app *temporal.ApplicationError
	require.True(t, asApp(err, &app))
	var qe schemas.QuotaExceededError
	require.NoError(t, app.Details(&qe))
	require.Equal(t, schemas.QuotaExceededError{Resource: "cpu", Limit: 2, Used: 2.5}, qe)
	row, err := f.store.GetSession(t.Context(), first)
	require.NoError(t, err)
	require.Equal(t, kubeapi.StateHibernated, row.State, "a refused wake changes nothing")

	events, _, err := f.store.ListEvents(context.Background(), schemas.EventFilter{Type: schemas.EventQuotaExceeded})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.JSONEq(t, `{"user":"alice","resource":"cpu","limit":2,"used":2.5}`, string(events[0].Payload))
}

func asApp(err error, target **temporal.ApplicationError) bool { return errors.As(err, target) }
