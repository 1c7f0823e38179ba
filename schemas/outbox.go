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
	DispatchDispatched = "dispatched" // its run (DispatchEvents) has started
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
	WorkflowID       string // events/<batch id>, or event/<id> for a run of the per-event workflow
	RunID            string // the run of WorkflowID that holds the event
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
	coalesce(last_error, ''), coalesce(workflow_id, ''), coalesce(run_id, ''), dispatched_at, completed_at`

func scanEvent(row pgx.Row) (StoredEvent, error) {
	var e StoredEvent
	err := row.Scan(&e.ID, &e.Seq, &e.Type, &e.Payload, &e.OccurredAt, &e.DispatchState,
		&e.DispatchAttempts, &e.LastError, &e.WorkflowID, &e.RunID, &e.DispatchedAt, &e.CompletedAt)
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

// MarkEventsDispatched records that the events are held by the run runID
// of workflowID (their batch's DispatchEvents run).
func MarkEventsDispatched(ctx context.Context, tx pgx.Tx, ids []uuid.UUID, workflowID, runID string) error {
	_, err := tx.Exec(ctx, `UPDATE events SET dispatch_state = 'dispatched', dispatched_at = clock_timestamp(),
		dispatch_attempts = dispatch_attempts + 1, workflow_id = $2, run_id = nullif($3, ''), last_error = NULL
		WHERE id = ANY($1) AND dispatch_state = 'pending'`, ids, workflowID, runID)
	if err != nil {
		return fmt.Errorf("mark events dispatched: %w", err)
	}
	return nil
}

// DeferEvents records a failed dispatch attempt of each event and when to
// try it again: after retryIn(its attempts so far + 1).
func DeferEvents(ctx context.Context, tx pgx.Tx, events []StoredEvent, cause string, retryIn func(attempt int) time.Duration) error {
	ids := make([]uuid.UUID, len(events))
	waits := make([]int64, len(events)) // microseconds
	for i, ev := range events {
		ids[i], waits[i] = ev.ID, retryIn(ev.DispatchAttempts+1).Microseconds()
	}
	_, err := tx.Exec(ctx, `UPDATE events e SET dispatch_attempts = dispatch_attempts + 1, last_error = $3,
		next_attempt_at = clock_timestamp() + d.us * interval '1 microsecond'
		FROM unnest($1::uuid[], $2::bigint[]) AS d(id, us)
		WHERE e.id = d.id AND e.dispatch_state = 'pending'`, ids, waits, cause)
	if err != nil {
		return fmt.Errorf("defer events: %w", err)
	}
	return nil
}

// HeldEvents answers which of ids the run of workflowID holds: those
// still dispatched to it. The relay marks a batch's events in the
// transaction that claimed them, after the run has started; the row locks
// make this wait for that transaction, so a run whose relay rolled back
// (it crashed between the start and the commit, and the events went to a
// later batch) holds none, and an event finished by an earlier task of
// the same run is not answered again.
func (s *Store) HeldEvents(ctx context.Context, workflowID string, ids []uuid.UUID) ([]uuid.UUID, error) {
	// Lock by id alone, and test the run afterwards: in READ COMMITTED a
	// row whose snapshot version fails the WHERE clause is skipped without
	// waiting for its lock, so "AND workflow_id = $2" in the locking query
	// would miss the rows of a relay transaction still committing.
	rows, err := s.Pool.Query(ctx, `WITH locked AS (
			SELECT id, seq, workflow_id, dispatch_state FROM events WHERE id = ANY($1) FOR SHARE)
		SELECT id FROM locked WHERE workflow_id = $2 AND dispatch_state = 'dispatched' ORDER BY seq`, ids, workflowID)
	if err != nil {
		return nil, fmt.Errorf("held events of %s: %w", workflowID, err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("held events of %s: %w", workflowID, err)
	}
	return held, nil
}

// EventOutcome is how the handling of one event ended; Cause is empty on
// success.
type EventOutcome struct {
	ID    uuid.UUID
	Cause string
}

// FinishEvents records the outcomes of events the run of workflowID
// handled, in one statement, and notifies FinishedChannel for each. An
// event no longer dispatched to that run is left as it is. It answers how
// many it finished.
func (s *Store) FinishEvents(ctx context.Context, workflowID string, outcomes []EventOutcome) (int, error) {
	ids := make([]uuid.UUID, len(outcomes))
	causes := make([]string, len(outcomes))
	for i, o := range outcomes {
		ids[i], causes[i] = o.ID, o.Cause
	}
	var n int
	err := s.Pool.QueryRow(ctx, `WITH done AS (
			UPDATE events e SET completed_at = clock_timestamp(), last_error = nullif(o.cause, ''),
				dispatch_state = CASE WHEN o.cause = '' THEN 'completed' ELSE 'failed' END
			FROM unnest($1::uuid[], $2::text[]) AS o(id, cause)
			WHERE e.id = o.id AND e.workflow_id = $3 AND e.dispatch_state = 'dispatched' RETURNING e.id)
		SELECT count(pg_notify($4, id::text)) FROM done`, ids, causes, workflowID, FinishedChannel).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("finish events of %s: %w", workflowID, err)
	}
	return n, nil
}

// EventsInFlight counts the events dispatched to runs that have not
// finished them: the relay's back-pressure.
func (s *Store) EventsInFlight(ctx context.Context) (int, error) {
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE dispatch_state = 'dispatched'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("events in flight: %w", err)
	}
	return n, nil
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
