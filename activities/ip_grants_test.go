package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func TestExpireIPGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	acts := &activities.IPGrants{Store: store}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	entry := func(cidr, expires string) int64 {
		var id int64
		require.NoError(t, store.Pool.QueryRow(ctx, `INSERT INTO ip_allowlist (cidr, expires_at)
			VALUES ($1, `+expires+`) RETURNING id`, cidr).Scan(&id))
		return id
	}
	expire := func(id int64) schemas.ExpireResult {
		v, err := env.ExecuteActivity(acts.ExpireIPGrant, activities.ExpireIPGrantInput{EntryID: id})
		require.NoError(t, err)
		var res schemas.ExpireResult
		require.NoError(t, v.Get(&res))
		return res
	}

	t.Run("DueIsDisabledAndRecordedWithTheRun", func(t *testing.T) {
		id := entry("192.0.2.0/24", "now() - interval '5 seconds'")
		res := expire(id)
		require.True(t, res.Expired)
		require.True(t, res.Recorded)
		var enabled bool
		var expiredAt *time.Time
		require.NoError(t, store.Pool.QueryRow(ctx, `SELECT enabled, expired_at FROM ip_allowlist WHERE id = $1`,
			id).Scan(&enabled, &expiredAt))
		require.False(t, enabled)
		require.NotNil(t, expiredAt)
		rows, _, err := store.ListAudit(ctx, schemas.AuditFilter{Action: schemas.AuditIPGrantExpired})
		require.NoError(t, err)
		require.Len(t, rows, 1)
		// The request ID names the calling run: the test environment's
		// workflow and run IDs.
		require.Equal(t, "default-test-workflow-id:default-test-run-id", rows[0].RequestID)

		again := expire(id)
		require.True(t, again.Expired)
		require.False(t, again.Recorded)
	})
	t.Run("NotDueAnswersTheExpiry", func(t *testing.T) {
		id := entry("192.0.2.1/32", "now() + interval '10 minutes'")
		res := expire(id)
		require.False(t, res.Expired)
		require.NotNil(t, res.ExpiresAt)
		require.InDelta(t, (10 * time.Minute).Seconds(), res.ExpiresAt.Sub(res.Now).Seconds(), 30)
	})
	t.Run("BadIDIsNotRetried", func(t *testing.T) {
		_, err := env.ExecuteActivity(acts.ExpireIPGrant, activities.ExpireIPGrantInput{})
		var app *temporal.ApplicationError
		require.True(t, errors.As(err, &app), "%v", err)
		require.Equal(t, activities.ErrTypeBadEntryID, app.Type())
		require.True(t, app.NonRetryable())
	})
}
