package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// eventRoutes mounts the read-only view of the event outbox. The caller puts
// it behind admin authorization.
//
//	GET /api/admin/events   one page, newest first: {"events":[…],"next_cursor":…}
func (s *Server) eventRoutes(r chi.Router) {
	r.Get("/api/admin/events", handle(s.deps.Logger, s.listEvents))
}

// eventRecordJSON is an outbox event as the API shows it: the event and how
// far its dispatch got.
type eventRecordJSON struct {
	ID               uuid.UUID         `json:"id"`
	Seq              int64             `json:"seq"`
	Type             schemas.EventType `json:"type"`
	OccurredAt       time.Time         `json:"occurred_at"`
	DispatchState    string            `json:"dispatch_state"`
	DispatchAttempts int               `json:"dispatch_attempts"`
	LastError        *string           `json:"last_error"`
	WorkflowID       *string           `json:"workflow_id"`
	RunID            *string           `json:"run_id"`
	DispatchedAt     *time.Time        `json:"dispatched_at"`
	CompletedAt      *time.Time        `json:"completed_at"`
	Data             json.RawMessage   `json:"data"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toEventRecordJSON(e schemas.StoredEvent) eventRecordJSON {
	return eventRecordJSON{
		ID:               e.ID,
		Seq:              e.Seq,
		Type:             e.Type,
		OccurredAt:       e.OccurredAt.UTC(),
		DispatchState:    e.DispatchState,
		DispatchAttempts: e.DispatchAttempts,
		LastError:        optString(e.LastError),
		WorkflowID:       optString(e.WorkflowID),
		RunID:            optString(e.RunID),
		DispatchedAt:     utcPtr(e.DispatchedAt),
		CompletedAt:      utcPtr(e.CompletedAt),
		Data:             e.Payload,
	}
}

type eventListResponse struct {
	Events     []eventRecordJSON `json:"events"`
	NextCursor *string           `json:"next_cursor"`
}

// listEvents answers one page of published events with their dispatch
// state, newest first. Query: type (a catalogued event type), state
// (pending, dispatched, completed or failed), since (RFC 3339, inclusive),
// cursor, limit (1–200, default 50).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAdminListQuery(r, "type", "state", "since", "cursor", "limit")
	if err != nil {
		return err
	}
	f := schemas.EventFilter{Type: schemas.EventType(q.Get("type")), State: q.Get("state"), Cursor: q.Get("cursor")}
	if f.Type != "" {
		if _, ok := schemas.LookupEvent(f.Type); !ok {
			return fieldError("type", "must be a catalogued event type such as session.created")
		}
	}
	switch f.State {
	case "", schemas.DispatchPending, schemas.DispatchDispatched, schemas.DispatchCompleted, schemas.DispatchFailed:
	default:
		return fieldError("state", "must be pending, dispatched, completed or failed")
	}
	if f.Since, err = q.time("since"); err != nil {
		return err
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	events, next, err := s.deps.Store.ListEvents(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := eventListResponse{Events: make([]eventRecordJSON, 0, len(events)), NextCursor: optString(next)}
	for _, e := range events {
		out.Events = append(out.Events, toEventRecordJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
