package schemas_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func TestIntegrationStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}

	slack := schemas.Integration{Type: schemas.IntegrationSlack, Name: "ops", ConfigEnc: []byte("sealed-1"),
		Events: []string{"node.unhealthy", "backup.failed"}, Enabled: true}
	require.NoError(t, store.CreateIntegration(ctx, &slack))
	require.NotEqual(t, uuid.Nil, slack.ID)
	require.False(t, slack.CreatedAt.IsZero())

	pd := schemas.Integration{Type: schemas.IntegrationPagerDuty, Name: "pager", ConfigEnc: []byte("sealed-2"),
		Events: []string{"node.unhealthy"}, Enabled: false}
	require.NoError(t, store.CreateIntegration(ctx, &pd))
	mail := schemas.Integration{Type: schemas.IntegrationEmail, Name: "mail", ConfigEnc: []byte("sealed-3"),
		Events: []string{"quota.exceeded"}, Enabled: true}
	require.NoError(t, store.CreateIntegration(ctx, &mail))

	got, err := store.GetIntegration(ctx, slack.ID)
	require.NoError(t, err)
	require.Equal(t, slack.Name, got.Name)
	require.Equal(t, []byte("sealed-1"), got.ConfigEnc)
	require.Equal(t, slack.Events, got.Events)
	require.True(t, got.Enabled)

	_, err = store.GetIntegration(ctx, uuid.New())
	require.ErrorIs(t, err, schemas.ErrNotFound)

	// the database refuses a type it does not know and an empty event list
	bad := schemas.Integration{Type: "fax", Name: "x", ConfigEnc: []byte{1}, Events: []string{"node.unhealthy"}}
	require.Error(t, store.CreateIntegration(ctx, &bad))
	bad = schemas.Integration{Type: "slack", Name: "x", ConfigEnc: []byte{1}, Events: []string{}}
	require.Error(t, store.CreateIntegration(ctx, &bad))

	// the fan-out: enabled and subscribed only, oldest first
	list, err := store.EnabledIntegrationsFor(ctx, schemas.EventNodeUnhealthy)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, slack.ID, list[0].ID)

	// update in a transaction with the row locked
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		in, err := schemas.LockIntegration(ctx, tx, pd.ID)
		if err != nil {
			return err
		}
		in.Enabled, in.Name, in.ConfigEnc = true, "pager 2", []byte("sealed-2b")
		in.Events = []string{"node.unhealthy", "security.alert"}
		in.FailingSince = &since
		return schemas.UpdateIntegration(ctx, tx, &in)
	}))
	got, err = store.GetIntegration(ctx, pd.ID)
	require.NoError(t, err)
	require.Equal(t, "pager 2", got.Name)
	require.Equal(t, []byte("sealed-2b"), got.ConfigEnc)
	require.True(t, got.UpdatedAt.After(got.CreatedAt) || got.UpdatedAt.Equal(got.CreatedAt))
	require.True(t, since.Equal(*got.FailingSince))
	list, err = store.EnabledIntegrationsFor(ctx, schemas.EventNodeUnhealthy)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{slack.ID, pd.ID}, []uuid.UUID{list[0].ID, list[1].ID})

	// listing: filters, and pages newest first
	page, next, err := store.ListIntegrations(ctx, schemas.IntegrationFilter{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{mail.ID, pd.ID}, []uuid.UUID{page[0].ID, page[1].ID})
	require.NotEmpty(t, next)
	page, next, err = store.ListIntegrations(ctx, schemas.IntegrationFilter{Limit: 2, Cursor: next})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, slack.ID, page[0].ID)
	require.Empty(t, next)
	page, _, err = store.ListIntegrations(ctx, schemas.IntegrationFilter{Type: schemas.IntegrationEmail})
	require.NoError(t, err)
	require.Len(t, page, 1)
	page, _, err = store.ListIntegrations(ctx, schemas.IntegrationFilter{Event: schemas.EventSecurityAlert})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, pd.ID, page[0].ID)
	_, _, err = store.ListIntegrations(ctx, schemas.IntegrationFilter{Cursor: "garbage"})
	require.ErrorIs(t, err, schemas.ErrInvalidCursor)

	// deleting takes the deliveries along
	_, err = store.Pool.Exec(ctx, `INSERT INTO deliveries (id, event_id, event_type, integration_id) VALUES ($1, $2, 'node.unhealthy', $3)`,
		uuid.New(), uuid.New(), slack.ID)
	require.NoError(t, err)
	_, err = store.DeleteIntegration(ctx, slack.ID)
	require.NoError(t, err)
	_, err = store.DeleteIntegration(ctx, slack.ID)
	require.True(t, errors.Is(err, schemas.ErrNotFound))
	var n int
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE integration_id = $1`, slack.ID).Scan(&n))
	require.Zero(t, n)
	require.True(t, errors.Is(store.InTx(ctx, func(tx pgx.Tx) error {
		in := slack
		return schemas.UpdateIntegration(ctx, tx, &in)
	}), schemas.ErrNotFound))
}
