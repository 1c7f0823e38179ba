package schemas

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrInvalidCursor is returned by the list queries for a cursor they did not
// hand out.
var ErrInvalidCursor = errors.New("invalid cursor")

// Page sizes of the list queries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// pageSize clamps a requested page size to [1, MaxPageSize], 0 meaning the
// default.
func pageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	default:
		return n
	}
}

// AuditEntry is one row of the append-only audit log: who did what, from
// where, and how it ended.
type AuditEntry struct {
	ID   int64     // assigned by the database
	Time time.Time // when the request arrived; zero means now
	// The caller, as they were at the time (a snapshot: renames and deletions
	// of the account do not change the row). ActorID is uuid.Nil when the
	// request had no authenticated caller.
	ActorID       uuid.UUID
	ActorUsername string
	ActorRole     string
	ClientIP      netip.Addr // invalid when unknown
	Method        string
	Route         string // the route pattern, e.g. /api/admin/users/{id}
	Action        string // "auth.login", or "METHOD /route/pattern" by default
	TargetID      string // the resource acted on, "" when none
	Status        int    // the HTTP status answered
	RequestID     string
	Details       json.RawMessage // a JSON object; nil is {}
}

// AuditFilter selects audit rows. Zero fields do not filter.
type AuditFilter struct {
	// Actor is a user ID or a username (case-insensitive). A value that
	// parses as a UUID is taken as an ID. A username matches the snapshot
	// taken when the row was written, so rows from before a rename are found
	// by the old name, or by the ID (which finds them all).
	Actor  string
	Action string    // exact action
	From   time.Time // inclusive
	To     time.Time // exclusive
	// Cursor continues a listing after the page that returned it.
	Cursor string
	// Limit is the page size of ListAudit (default 50, at most 200).
	Limit int
}

// InsertAudit appends e to the audit log.
func (s *Store) InsertAudit(ctx context.Context, e AuditEntry) error {
	var (
		at      *time.Time
		actorID *uuid.UUID
		ip      *netip.Addr
		details = []byte("{}")
	)
	if !e.Time.IsZero() {
		at = &e.Time
	}
	if e.ActorID != uuid.Nil {
		actorID = &e.ActorID
	}
	if e.ClientIP.IsValid() {
		a := e.ClientIP.Unmap().WithZone("")
		ip = &a
	}
	if len(e.Details) > 0 {
		details = e.Details
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO audit_log (occurred_at, actor_id, actor_username, actor_role,
			client_ip, method, route, action, target_id, status, request_id, details)
		VALUES (coalesce($1, clock_timestamp()), $2, nullif($3, ''), nullif($4, ''),
			$5, $6, $7, $8, nullif($9, ''), $10, $11, $12)`,
		at, actorID, e.ActorUsername, e.ActorRole, ip, e.Method, e.Route, e.Action, e.TargetID,
		e.Status, e.RequestID, string(details))
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

const auditColumns = `id, occurred_at, actor_id, coalesce(actor_username, ''), coalesce(actor_role, ''),
	client_ip, method, route, action, coalesce(target_id, ''), status, request_id, details`

func scanAudit(row pgx.Row) (AuditEntry, error) {
	var (
		e       AuditEntry
		actorID *uuid.UUID
		ip      *netip.Prefix
		details []byte
	)
	err := row.Scan(&e.ID, &e.Time, &actorID, &e.ActorUsername, &e.ActorRole, &ip, &e.Method,
		&e.Route, &e.Action, &e.TargetID, &e.Status, &e.RequestID, &details)
	if err != nil {
		return AuditEntry{}, err
	}
	if actorID != nil {
		e.ActorID = *actorID
	}
	if ip != nil {
		e.ClientIP = ip.Addr()
	}
	e.Time = e.Time.UTC()
	e.Details = json.RawMessage(details)
	return e, nil
}

// seqCursor is the position after the last row of a page of rows listed
// newest first by (a time, a bigint id) descending: the audit log and the
// security alerts. Its prefix tells one listing's cursors from another's.
type seqCursor struct {
	at time.Time
	id int64
}

// Cursor prefixes of the listings that page with seqCursor.
const (
	auditCursorPrefix = "a1."
	alertCursorPrefix = "sa1."
)

func (c seqCursor) encode(prefix string) string {
	raw := fmt.Sprintf("%s%d.%d", prefix, c.at.UnixMicro(), c.id)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeSeqCursor(prefix, s string) (seqCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(raw), prefix) {
		return seqCursor{}, ErrInvalidCursor
	}
	micros, id, ok := strings.Cut(strings.TrimPrefix(string(raw), prefix), ".")
	if !ok {
		return seqCursor{}, ErrInvalidCursor
	}
	us, err1 := strconv.ParseInt(micros, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if err1 != nil || err2 != nil || n <= 0 {
		return seqCursor{}, ErrInvalidCursor
	}
	return seqCursor{at: time.UnixMicro(us).UTC(), id: n}, nil
}

// auditQuery builds the SELECT for f, continuing after `after` when set,
// returning at most limit rows.
func auditQuery(f AuditFilter, after *seqCursor, limit int) (string, []any) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		if id, err := uuid.Parse(f.Actor); err == nil {
			where = append(where, "actor_id = "+arg(id))
		} else {
			where = append(where, fmt.Sprintf("lower(actor_username) = lower(%s)", arg(f.Actor)))
		}
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if !f.From.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "occurred_at < "+arg(f.To))
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(occurred_at, id) < (%s, %s)", arg(after.at), arg(after.id)))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY occurred_at DESC, id DESC LIMIT ` + arg(limit)
	return q, args
}

// auditPage reads one page after `after` (nil: from the newest).
func (s *Store) auditPage(ctx context.Context, f AuditFilter, after *seqCursor, limit int) ([]AuditEntry, error) {
	q, args := auditQuery(f, after, limit)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) { return scanAudit(r) })
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return entries, nil
}

func (f AuditFilter) start() (*seqCursor, error) {
	if f.Cursor == "" {
		return nil, nil
	}
	c, err := decodeSeqCursor(auditCursorPrefix, f.Cursor)
	if err != nil {
		return nil, fmt.Errorf("audit cursor: %w", err)
	}
	return &c, nil
}

// ListAudit returns one page of the audit rows f selects, newest first, and
// the cursor of the next page ("" when this is the last one). A cursor this
// function did not return is ErrInvalidCursor.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, string, error) {
	after, err := f.start()
	if err != nil {
		return nil, "", err
	}
	limit := pageSize(f.Limit)
	entries, err := s.auditPage(ctx, f, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	if len(entries) <= limit {
		return entries, "", nil
	}
	entries = entries[:limit]
	last := entries[limit-1]
	return entries, seqCursor{at: last.Time, id: last.ID}.encode(auditCursorPrefix), nil
}

// auditStreamBatch is how many rows StreamAudit reads per query.
const auditStreamBatch = 500

// StreamAudit calls fn for every audit row f selects, newest first (starting
// after f.Cursor when set; f.Limit is ignored). It reads in short keyset-paged
// queries of a few hundred rows, so memory stays bounded and no connection or
// snapshot is held while a slow client drains the export. It stops at the
// first error fn returns, and returns it.
func (s *Store) StreamAudit(ctx context.Context, f AuditFilter, fn func(AuditEntry) error) error {
	after, err := f.start()
	if err != nil {
		return err
	}
	for {
		entries, err := s.auditPage(ctx, f, after, auditStreamBatch)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(entries) < auditStreamBatch {
			return nil
		}
		last := entries[len(entries)-1]
		after = &seqCursor{at: last.Time, id: last.ID}
	}
}
