package schemas_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// publishN publishes n events alternating between session.created and
// node.unhealthy and returns their IDs in publication order.
func publishN(t testing.TB, store *schemas.Store, n int) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	ids := make([]uuid.UUID, 0, n)
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		for i := range n {
			ev := schemas.Event{Type: schemas.EventSessionCreated,
				Data: schemas.SessionEventData{SessionID: fmt.Sprint("s-", i), User: "u", Template: "t", State: "running"}}
			if i%2 == 1 {
				ev = schemas.Event{Type: schemas.EventNodeUnhealthy,
					Data: schemas.NodeUnhealthyData{NodeName: fmt.Sprint("node-", i), Reason: "NotReady"}}
			}
			id, err := schemas.Publish(ctx, tx, ev)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	return ids
}

func TestListEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	ids := publishN(t, store, 21)
	// Move some along the dispatch states.
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		return schemas.MarkEventsDispatched(ctx, tx, ids[:4], "events/b", "r")
	}))
	_, err := store.FinishEvents(ctx, "events/b", []schemas.EventOutcome{{ID: ids[0]}, {ID: ids[1], Cause: "gave up"}})
	require.NoError(t, err)
	// Give the last five a later occurred_at for the since filter.
	later := time.Now().Add(time.Hour)
	_, err = pool.Exec(ctx, `UPDATE events SET occurred_at = $1 WHERE id = ANY($2)`, later, ids[16:])
	require.NoError(t, err)

	list := func(f schemas.EventFilter) []schemas.StoredEvent {
		t.Helper()
		f.Limit = 200
		got, next, err := store.ListEvents(ctx, f)
		require.NoError(t, err)
		require.Empty(t, next)
		return got
	}
	all := list(schemas.EventFilter{})
	require.Len(t, all, 21)
	require.Equal(t, ids[20], all[0].ID, "newest first")
	for i := 1; i < len(all); i++ {
		require.Greater(t, all[i-1].Seq, all[i].Seq)
	}

	nodes := list(schemas.EventFilter{Type: schemas.EventNodeUnhealthy})
	require.Len(t, nodes, 10)
	for _, e := range nodes {
		require.Equal(t, schemas.EventNodeUnhealthy, e.Type)
	}

	failed := list(schemas.EventFilter{State: schemas.DispatchFailed})
	require.Len(t, failed, 1)
	require.Equal(t, ids[1], failed[0].ID)
	require.Equal(t, "gave up", failed[0].LastError)
	require.Equal(t, "events/b", failed[0].WorkflowID)
	require.Equal(t, "r", failed[0].RunID)
	require.NotNil(t, failed[0].DispatchedAt)
	require.NotNil(t, failed[0].CompletedAt)
	require.Len(t, list(schemas.EventFilter{State: schemas.DispatchDispatched}), 2)
	require.Len(t, list(schemas.EventFilter{State: schemas.DispatchPending}), 17)
	require.Len(t, list(schemas.EventFilter{State: schemas.DispatchCompleted, Type: schemas.EventSessionCreated}), 1)

	recent := list(schemas.EventFilter{Since: later.Add(-time.Minute)})
	require.Len(t, recent, 5)

	// Pagination: every page size walks all events once, in order.
	for _, size := range []int{1, 4, 20, 21} {
		var got []schemas.StoredEvent
		cursor := ""
		for {
			page, next, err := store.ListEvents(ctx, schemas.EventFilter{Limit: size, Cursor: cursor})
			require.NoError(t, err)
			got = append(got, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		require.Equal(t, all, got, "page size %d", size)
	}
	// Pagination combined with a filter.
	page, next, err := store.ListEvents(ctx, schemas.EventFilter{Type: schemas.EventSessionCreated, Limit: 6})
	require.NoError(t, err)
	require.Len(t, page, 6)
	rest, next2, err := store.ListEvents(ctx, schemas.EventFilter{Type: schemas.EventSessionCreated, Limit: 6, Cursor: next})
	require.NoError(t, err)
	require.Len(t, rest, 5)
	require.Empty(t, next2)
	require.Greater(t, page[5].Seq, rest[0].Seq)

	for _, bad := range []string{"x", "YTEuMQ", "ZTEuLTE"} { // garbage; an audit cursor; "e1.-1"
		_, _, err := store.ListEvents(ctx, schemas.EventFilter{Cursor: bad})
		require.ErrorIs(t, err, schemas.ErrInvalidCursor, bad)
	}
}
