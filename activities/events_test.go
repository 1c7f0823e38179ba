package activities_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func TestFinishEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	acts := &activities.Events{Store: store}
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	publish := func() uuid.UUID {
		var id uuid.UUID
		require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
			var err error
			id, err = schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventBackupFailed,
				Data: schemas.BackupFailedData{BackupID: "b1", Target: "s3", Error: "denied"}})
			return err
		}))
		return id
	}

	t.Run("Completed", func(t *testing.T) {
		id := publish()
		_, err := env.ExecuteActivity(acts.FinishEvent, activities.FinishEventInput{EventID: id.String()})
		require.NoError(t, err)
		ev, err := store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
		require.NotNil(t, ev.CompletedAt)
	})
	t.Run("Failed", func(t *testing.T) {
		id := publish()
		_, err := env.ExecuteActivity(acts.FinishEvent, activities.FinishEventInput{EventID: id.String(), Failure: "webhook gone"})
		require.NoError(t, err)
		ev, err := store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchFailed, ev.DispatchState)
		require.Equal(t, "webhook gone", ev.LastError)
	})
	for name, tc := range map[string]struct{ id, errType string }{
		"UnknownEvent": {uuid.NewString(), "EventNotFound"},
		"BadID":        {"not-a-uuid", "BadEventID"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := env.ExecuteActivity(acts.FinishEvent, activities.FinishEventInput{EventID: tc.id})
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, tc.errType, appErr.Type())
			require.True(t, appErr.NonRetryable(), "retrying cannot help")
		})
	}
}
