package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/schemas/kubeapi"
)

// SessionRow is a session's read model: ownership, what it holds against
// quotas, and the phase its lifecycle workflow last recorded.
type SessionRow struct {
	ID             string // the Session's Kubernetes name
	Namespace      string
	UserID         uuid.UUID
	Username       string
	Template       string
	State          string // kubeapi.State*
	Phase          string // kubeapi.Phase*
	Message        string
	NodeName       string
	CPUMillis      int64
	MemoryBytes    int64
	Spec           kubeapi.SessionSpec
	CreatedAt      time.Time
	UpdatedAt      time.Time
	RunningAt      *time.Time
	LastActivityAt *time.Time
	EndedAt        *time.Time
}

// Live reports whether the session still exists in Kubernetes (it has not
// failed or been terminated).
func (s SessionRow) Live() bool {
	return s.Phase != kubeapi.PhaseFailed && s.Phase != kubeapi.PhaseTerminated
}

// EventData is the payload of the session's session.* events.
func (s SessionRow) EventData(reason string) SessionEventData {
	return SessionEventData{SessionID: s.ID, User: s.Username, Template: s.Template,
		State: s.State, Node: s.NodeName, Reason: reason}
}

const sessionColumns = `id, namespace, user_id, username, template, state, phase, message, node_name,
	cpu_millis, memory_bytes, spec, created_at, updated_at, running_at, last_activity_at, ended_at`

func scanSession(row pgx.Row) (SessionRow, error) {
	var s SessionRow
	var spec []byte
	err := row.Scan(&s.ID, &s.Namespace, &s.UserID, &s.Username, &s.Template, &s.State, &s.Phase, &s.Message,
		&s.NodeName, &s.CPUMillis, &s.MemoryBytes, &spec, &s.CreatedAt, &s.UpdatedAt, &s.RunningAt,
		&s.LastActivityAt, &s.EndedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return SessionRow{}, ErrNotFound
	}
	if err != nil {
		return SessionRow{}, err
	}
	if err := json.Unmarshal(spec, &s.Spec); err != nil {
		return SessionRow{}, fmt.Errorf("session %s spec: %w", s.ID, err)
	}
	return s, nil
}

// GetSession loads one session.
func (s *Store) GetSession(ctx context.Context, id string) (SessionRow, error) {
	row, err := scanSession(s.Pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	if err != nil {
		return SessionRow{}, fmt.Errorf("session %s: %w", id, err)
	}
	return row, nil
}

// SessionFilter selects sessions for ListSessions.
type SessionFilter struct {
	UserID *uuid.UUID // only this user's
	Phase  string     // only this phase
	Live   bool       // only sessions that are not Failed or Terminated
	Limit  int        // page size (default 50, at most 500)
	Cursor string     // from the previous page
}

// ListSessions pages through sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter) ([]SessionRow, string, error) {
	limit := pageSize(f.Limit)
	q := `SELECT ` + sessionColumns + ` FROM sessions WHERE true`
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.UserID != nil {
		q += ` AND user_id = ` + arg(*f.UserID)
	}
	if f.Phase != "" {
		q += ` AND phase = ` + arg(f.Phase)
	}
	if f.Live {
		q += ` AND phase NOT IN ('Failed', 'Terminated')`
	}
	if f.Cursor != "" {
		c, err := decodeSessionCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) < (` + arg(c.CreatedAt) + `, ` + arg(c.ID) + `)`
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SessionRow, error) { return scanSession(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		next = sessionCursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode()
	}
	return list, next, nil
}

// sessionIDs runs query, which selects session ids, and collects them;
// what names the set in errors.
func (s *Store) sessionIDs(ctx context.Context, what, query string, args ...any) ([]string, error) {
	rows, err := s.Pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ids, nil
}
