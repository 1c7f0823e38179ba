package schemas_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/schemas/kubeapi"
)

var errTemplateGone = errors.New("template gone")

// templateRace is one template ("desktop" in namespace "ns"), whether it
// still exists (as Kubernetes would answer), and a user to create sessions.
type templateRace struct {
	store   *schemas.Store
	user    schemas.User
	deleted atomic.Bool
}

func newTemplateRace(t *testing.T) *templateRace {
	store := &schemas.Store{Pool: testenv.DB(t)}
	return &templateRace{store: store, user: mfaUser(t, store, "tplrace", "user")}
}

// create inserts a session of the template; exists runs where the server
// asks Kubernetes whether the template still exists.
func (r *templateRace) create(ctx context.Context, id string, exists func(context.Context) error) error {
	row := schemas.SessionRow{ID: id, Namespace: "ns", UserID: r.user.ID, Username: r.user.Username,
		Template: "desktop", Spec: kubeapi.SessionSpec{User: r.user.Username, Template: "desktop"}}
	return r.store.CreateSession(ctx, &row, schemas.Quota{MaxSessions: 100}, exists)
}

func (r *templateRace) exists(context.Context) error {
	if r.deleted.Load() {
		return errTemplateGone
	}
	return nil
}

// waitForBlockedLock waits until some transaction waits for an advisory lock.
func waitForBlockedLock(t *testing.T, store *schemas.Store) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 30*time.Second, true,
		func(ctx context.Context) (bool, error) {
			var n int
			err := store.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n)
			return n > 0, err
		}), "no transaction waits for the template's lock")
}

func sessionCount(t *testing.T, store *schemas.Store) int {
	var n int
	require.NoError(t, store.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE template = 'desktop'`).Scan(&n))
	return n
}

// A session created while its template is being deleted waits for the
// delete, then finds the template gone: no session without its template.
func TestTemplateDeleteBeforeSessionCreate(t *testing.T) {
	t.Parallel()
	r := newTemplateRace(t)
	deleting, release := make(chan struct{}), make(chan struct{})
	deleted := make(chan error, 1)
	go func() {
		live, err := r.store.DeleteTemplateIfUnused(t.Context(), "ns", "desktop", func(context.Context) error {
			close(deleting)
			<-release
			r.deleted.Store(true)
			return nil
		})
		if err == nil && live != 0 {
			err = errors.New("the delete counted live sessions")
		}
		deleted <- err
	}()
	<-deleting
	created := make(chan error, 1)
	go func() { created <- r.create(t.Context(), "s-during-delete", r.exists) }()
	waitForBlockedLock(t, r.store)
	close(release)
	require.NoError(t, <-deleted)
	require.ErrorIs(t, <-created, errTemplateGone)
	require.Zero(t, sessionCount(t, r.store), "no session of a deleted template")
}

// A template deleted while a session is being created from it waits for
// the create, then counts the new session and is kept.
func TestSessionCreateBeforeTemplateDelete(t *testing.T) {
	t.Parallel()
	r := newTemplateRace(t)
	checking, release := make(chan struct{}), make(chan struct{})
	created := make(chan error, 1)
	go func() {
		created <- r.create(t.Context(), "s-before-delete", func(ctx context.Context) error {
			close(checking)
			<-release
			return r.exists(ctx)
		})
	}()
	<-checking
	type outcome struct {
		live   int
		called bool
		err    error
	}
	deleted := make(chan outcome, 1)
	go func() {
		var o outcome
		o.live, o.err = r.store.DeleteTemplateIfUnused(t.Context(), "ns", "desktop", func(context.Context) error {
			o.called = true
			return nil
		})
		deleted <- o
	}()
	waitForBlockedLock(t, r.store)
	close(release)
	require.NoError(t, <-created)
	o := <-deleted
	require.NoError(t, o.err)
	require.Equal(t, 1, o.live, "the new session counts")
	require.False(t, o.called, "the template is not deleted")

	// Sessions of other templates, and ended ones, do not count.
	_, err := r.store.Pool.Exec(t.Context(), `UPDATE sessions SET phase = 'Terminated'`)
	require.NoError(t, err)
	live, err := r.store.DeleteTemplateIfUnused(t.Context(), "ns", "desktop", func(context.Context) error {
		r.deleted.Store(true)
		return nil
	})
	require.NoError(t, err)
	require.Zero(t, live)
	require.True(t, r.deleted.Load())
}
