package schemas_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func TestEventCatalogue(t *testing.T) {
	t.Parallel()
	seed := []schemas.EventType{
		"session.created", "session.updated", "session.deleted", "session.hibernated", "session.awakened",
		"user.created", "user.updated", "quota.exceeded", "plugin.installed", "template.created",
		"security.alert", "compliance.violation", "scaling.triggered", "node.unhealthy",
		"backup.completed", "backup.failed", "cost.threshold",
	}
	require.Len(t, schemas.EventCatalogue(), len(seed))
	for _, name := range seed {
		spec, ok := schemas.LookupEvent(name)
		require.True(t, ok, "%s missing from the catalogue", name)
		require.NotEmpty(t, spec.Description)
		require.NotNil(t, spec.Payload)
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	data := schemas.SessionEventData{SessionID: "user1-firefox", User: "user1", Template: "firefox-browser", State: "running"}

	t.Run("Committed", func(t *testing.T) {
		var id [16]byte
		err := store.InTx(ctx, func(tx pgx.Tx) error {
			got, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated, Data: data})
			id = got
			return err
		})
		require.NoError(t, err)
		ev, err := store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, schemas.EventSessionCreated, ev.Type)
		require.Equal(t, schemas.DispatchPending, ev.DispatchState)
		var back schemas.SessionEventData
		require.NoError(t, json.Unmarshal(ev.Payload, &back))
		require.Equal(t, data, back)
	})

	t.Run("RolledBack", func(t *testing.T) {
		var id [16]byte
		boom := errors.New("the change failed")
		err := store.InTx(ctx, func(tx pgx.Tx) error {
			got, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated, Data: &data})
			require.NoError(t, err)
			id = got
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = store.GetEvent(ctx, id)
		require.ErrorIs(t, err, schemas.ErrNotFound, "an event of a rolled-back change must not exist")
	})

	t.Run("UnknownType", func(t *testing.T) {
		err := store.InTx(ctx, func(tx pgx.Tx) error {
			_, err := schemas.Publish(ctx, tx, schemas.Event{Type: "session.exploded", Data: data})
			return err
		})
		require.ErrorIs(t, err, schemas.ErrUnknownEvent)
	})

	t.Run("WrongPayload", func(t *testing.T) {
		err := store.InTx(ctx, func(tx pgx.Tx) error {
			_, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventUserCreated, Data: data})
			return err
		})
		require.ErrorIs(t, err, schemas.ErrUnknownEvent)
		require.ErrorContains(t, err, "user.created takes schemas.UserEventData")
	})
}
