package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

type eventListBody struct {
	Events     []eventRecordJSON `json:"events"`
	NextCursor *string           `json:"next_cursor"`
}

func (h *auditHarness) listEvents(t *testing.T, query url.Values) eventListBody {
	t.Helper()
	resp, data := h.do(t, http.MethodGet, "/api/admin/events?"+query.Encode(), fakeToken(RoleAdmin, "root"), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	var out eventListBody
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&out))
	require.NotNil(t, out.Events)
	return out
}

func TestEventsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	h := newAuditHarness(t, pool)

	var ids []uuid.UUID
	require.NoError(t, h.store.InTx(ctx, func(tx pgx.Tx) error {
		for i := range 9 {
			ev := schemas.Event{Type: schemas.EventSessionCreated, Data: schemas.SessionEventData{
				SessionID: fmt.Sprint("s-", i), User: "u", Template: "firefox", State: "running"}}
			if i%3 == 2 {
				ev = schemas.Event{Type: schemas.EventNodeUnhealthy, Data: schemas.NodeUnhealthyData{
					NodeName: fmt.Sprint("node-", i), Reason: "NotReady"}}
			}
			id, err := schemas.Publish(ctx, tx, ev)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return schemas.MarkEventsDispatched(ctx, tx, ids[:2], "events/batch-1", "run-1")
	}))
	n, err := h.store.FinishEvents(ctx, "events/batch-1", []schemas.EventOutcome{{ID: ids[0]}, {ID: ids[1], Cause: "webhook gave up"}})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	_, err = pool.Exec(ctx, `UPDATE events SET occurred_at = $1 WHERE id = ANY($2)`, later, ids[6:])
	require.NoError(t, err)

	all := h.listEvents(t, nil)
	require.Len(t, all.Events, 9)
	require.Nil(t, all.NextCursor)
	require.Equal(t, ids[8], all.Events[0].ID, "newest first")

	failed := h.listEvents(t, url.Values{"state": {"failed"}})
	require.Len(t, failed.Events, 1)
	f := failed.Events[0]
	require.Equal(t, ids[1], f.ID)
	require.Equal(t, schemas.EventSessionCreated, f.Type)
	require.Equal(t, "failed", f.DispatchState)
	require.Equal(t, 1, f.DispatchAttempts)
	require.Equal(t, "webhook gave up", *f.LastError)
	require.Equal(t, "events/batch-1", *f.WorkflowID)
	require.Equal(t, "run-1", *f.RunID)
	require.NotNil(t, f.DispatchedAt)
	require.NotNil(t, f.CompletedAt)
	require.JSONEq(t, `{"session_id":"s-1","user":"u","template":"firefox","state":"running"}`, string(f.Data))

	pending := h.listEvents(t, url.Values{"state": {"pending"}})
	require.Len(t, pending.Events, 7)
	p := pending.Events[0]
	require.Nil(t, p.LastError)
	require.Nil(t, p.WorkflowID)
	require.Nil(t, p.RunID)
	require.Nil(t, p.DispatchedAt)
	require.Nil(t, p.CompletedAt)

	nodes := h.listEvents(t, url.Values{"type": {"node.unhealthy"}})
	require.Len(t, nodes.Events, 3)
	for _, e := range nodes.Events {
		require.Equal(t, schemas.EventNodeUnhealthy, e.Type)
	}
	recent := h.listEvents(t, url.Values{"since": {later.Format(time.RFC3339)}})
	require.Len(t, recent.Events, 3)
	require.Len(t, h.listEvents(t, url.Values{"since": {later.Format(time.RFC3339)}, "type": {"node.unhealthy"}}).Events, 1)

	var got []eventRecordJSON
	q := url.Values{"limit": {"2"}}
	for {
		page := h.listEvents(t, q)
		require.LessOrEqual(t, len(page.Events), 2)
		got = append(got, page.Events...)
		if page.NextCursor == nil {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	require.Equal(t, all.Events, got, "no duplicates, no gaps")

	for query, field := range map[string]string{
		"type=session.exploded": "type",
		"state=lost":            "state",
		"since=last-week":       "since",
		"limit=500":             "limit",
		"cursor=zzz":            "cursor",
		"kind=x":                "kind",
	} {
		resp, data := h.do(t, http.MethodGet, "/api/admin/events?"+query, fakeToken(RoleAdmin, "root"), "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
		e := decodeEnvelope(t, data)
		require.Equal(t, "VALIDATION_ERROR", e.Error.Code)
		require.Equal(t, field, e.Error.Details["field"], query)
	}
	resp, _ := h.do(t, http.MethodGet, "/api/admin/events", fakeToken(RoleUser, "bob"), "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}
