package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// NotifyChannel is the PostgreSQL channel an insert into events notifies.
const NotifyChannel = "streamspace_events"

// FinishedChannel is the PostgreSQL channel FinishEvent notifies, with the
// event ID as payload, when an event's DispatchEvent run has finished.
const FinishedChannel = "streamspace_event_finished"

// Dispatch states of an event row.
const (
	DispatchPending    = "pending"    // written, no workflow started yet
	DispatchDispatched = "dispatched" // its DispatchEvent workflow has started
	DispatchCompleted  = "completed"  // the workflow finished its work
	DispatchFailed     = "failed"     // the workflow gave up; last_error says why
)

// Event is one occurrence of a catalogued event type.
type Event struct {
	ID   uuid.UUID
	Type EventType
	// Data is the payload; its Go type must be the catalogue's payload type
	// for Type (or a pointer to it).
	Data any
}

// StoredEvent is an event row as the outbox keeps it.
type StoredEvent struct {
	ID               uuid.UUID
	Seq              int64
	Type             EventType
	Payload          json.RawMessage
	OccurredAt       time.Time
	DispatchState    string
	DispatchAttempts int
	LastError        string
	WorkflowID       string
	DispatchedAt     *time.Time
	CompletedAt      *time.Time
}

// ErrUnknownEvent is returned by Publish for a type outside the catalogue or
// a payload of the wrong Go type.
var ErrUnknownEvent = errors.New("event not in catalogue")

// Publish writes ev into the outbox inside tx, the transaction that makes the
// change the event reports. If tx rolls back, the event never existed. The
// event's ID is generated when empty and returned.
func Publish(ctx context.Context, tx pgx.Tx, ev Event) (uuid.UUID, error) {
	spec, ok := LookupEvent(ev.Type)
	if !ok {
		return uuid.Nil, fmt.Errorf("%w: type %q", ErrUnknownEvent, ev.Type)
	}
	t := reflect.TypeOf(ev.Data)
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != spec.Payload {
		return uuid.Nil, fmt.Errorf("%w: %s takes %s, got %v", ErrUnknownEvent, ev.Type, spec.Payload, t)
	}
	payload, err := json.Marshal(ev.Data)
	if err != nil {
		return uuid.Nil, fmt.Errorf("encode %s payload: %w", ev.Type, err)
	}
	id := ev.ID
	if id == uuid.Nil {
		if id, err = uuid.NewV7(); err != nil {
			return uuid.Nil, fmt.Errorf("event id: %w", err)
		}
	}
	const q = `INSERT INTO events (id, type, payload) VALUES ($1, $2, $3)`
	if _, err := tx.Exec(ctx, q, id, string(ev.Type), payload); err != nil {
		return uuid.Nil, fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return id, nil
}

const eventColumns = `id, seq, type, payload, occurred_at, dispatch_state, dispatch_attempts,
	coalesce(last_error, ''), coalesce(workflow_id, ''), dispatched_at, completed_at`

func scanEvent(row pgx.Row) (StoredEvent, error) {
	var e StoredEvent
	err := row.Scan(&e.ID, &e.Seq, &e.Type, &e.Payload, &e.OccurredAt, &e.DispatchState,
		&e.DispatchAttempts, &e.LastError, &e.WorkflowID, &e.DispatchedAt, &e.CompletedAt)
	return e, err
}

// GetEvent loads one event.
func (s *Store) GetEvent(ctx context.Context, id uuid.UUID) (StoredEvent, error) {
	e, err := scanEvent(s.Pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM events WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredEvent{}, fmt.Errorf("event %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return StoredEvent{}, fmt.Errorf("get event %s: %w", id, err)
	}
	return e, nil
}

// ClaimPendingEvents locks up to limit pending events that are due, oldest
// first, skipping rows another relay holds. The locks last as long as tx.
func ClaimPendingEvents(ctx context.Context, tx pgx.Tx, limit int) ([]StoredEvent, error) {
	rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE dispatch_state = 'pending' AND next_attempt_at <= clock_timestamp()
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return nil, fmt.Errorf("claim pending events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredEvent, error) { return scanEvent(r) })
	if err != nil {
		return nil, fmt.Errorf("claim pending events: %w", err)
	}
	return events, nil
}

// MarkEventsDispatched records that the events' workflows have started.
func MarkEventsDispatched(ctx context.Context, tx pgx.Tx, ids []uuid.UUID, workflowIDs []string) error {
	_, err := tx.Exec(ctx, `UPDATE events e SET dispatch_state = 'dispatched', dispatched_at = clock_timestamp(),
		dispatch_attempts = dispatch_attempts + 1, workflow_id = w.wid, last_error = NULL
		FROM unnest($1::uuid[], $2::text[]) AS w(id, wid)
		WHERE e.id = w.id AND e.dispatch_state = 'pending'`, ids, workflowIDs)
	if err != nil {
		return fmt.Errorf("mark events dispatched: %w", err)
	}
	return nil
}

// DeferEvent records a failed dispatch attempt and when to try again.
func DeferEvent(ctx context.Context, tx pgx.Tx, id uuid.UUID, cause string, retryIn time.Duration) error {
	_, err := tx.Exec(ctx, `UPDATE events SET dispatch_attempts = dispatch_attempts + 1, last_error = $2,
		next_attempt_at = clock_timestamp() + $3::interval WHERE id = $1 AND dispatch_state = 'pending'`,
		id, cause, retryIn)
	if err != nil {
		return fmt.Errorf("defer event %s: %w", id, err)
	}
	return nil
}

// NextPendingEventDue tells when the earliest pending event becomes due; ok
// is false when nothing is pending.
func (s *Store) NextPendingEventDue(ctx context.Context) (due time.Time, ok bool, err error) {
	var t *time.Time
	err = s.Pool.QueryRow(ctx, `SELECT greatest(min(next_attempt_at), '2000-01-01'::timestamptz)
		FROM events WHERE dispatch_state = 'pending'`).Scan(&t)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next pending event: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// FinishEvent records the outcome of an event's DispatchEvent workflow.
// cause is empty on success.
func (s *Store) FinishEvent(ctx context.Context, id uuid.UUID, cause string) error {
	state := DispatchCompleted
	if cause != "" {
		state = DispatchFailed
	}
	var found bool
	err := s.Pool.QueryRow(ctx, `WITH done AS (
			UPDATE events SET dispatch_state = $2, completed_at = clock_timestamp(), last_error = nullif($3, '')
			WHERE id = $1 RETURNING id)
		SELECT count(pg_notify($4, id::text)) > 0 FROM done`, id, state, cause, FinishedChannel).Scan(&found)
	if err != nil {
		return fmt.Errorf("finish event %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("finish event %s: %w", id, ErrNotFound)
	}
	return nil
}
