package schemas

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventFilter selects outbox events. Zero fields do not filter; the caller
// validates Type (LookupEvent) and State (one of the Dispatch* states).
type EventFilter struct {
	Type   EventType
	State  string
	Since  time.Time // occurred_at >= Since
	Cursor string    // continues after the page that returned it
	Limit  int       // page size: default 50, at most 200
}

const eventCursorPrefix = "e1."

func encodeEventCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(eventCursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeEventCursor(s string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), eventCursorPrefix) {
		return 0, ErrInvalidCursor
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(string(raw), eventCursorPrefix), 10, 64)
	if err != nil || seq <= 0 {
		return 0, ErrInvalidCursor
	}
	return seq, nil
}

// ListEvents returns one page of the events f selects, newest first (by
// seq, the commit-order sequence of the outbox), and the cursor of the next
// page ("" when this is the last one). A cursor this function did not return
// is ErrInvalidCursor.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]StoredEvent, string, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Cursor != "" {
		seq, err := decodeEventCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("event cursor: %w", err)
		}
		where = append(where, "seq < "+arg(seq))
	}
	if f.Type != "" {
		where = append(where, "type = "+arg(string(f.Type)))
	}
	if f.State != "" {
		where = append(where, "dispatch_state = "+arg(f.State))
	}
	if !f.Since.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.Since))
	}
	limit := pageSize(f.Limit)
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC LIMIT ` + arg(limit+1)

	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredEvent, error) { return scanEvent(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	if len(events) <= limit {
		return events, "", nil
	}
	events = events[:limit]
	return events, encodeEventCursor(events[limit-1].Seq), nil
}
