package server

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// auditRoutes mounts the audit log API. The caller puts it behind admin
// authorization.
//
//	GET /api/admin/audit          one page, newest first: {"entries":[…],"next_cursor":…}
//	GET /api/admin/audit/export   everything the filters select, streamed as CSV or JSON
func (s *Server) auditRoutes(r chi.Router) {
	r.Get("/api/admin/audit", handle(s.deps.Logger, s.listAudit))
	r.Get("/api/admin/audit/export", handle(s.deps.Logger, s.exportAudit))
}

// auditEntryJSON is an audit row as the API shows it.
type auditEntryJSON struct {
	ID            int64           `json:"id"`
	Time          time.Time       `json:"time"`
	ActorID       *uuid.UUID      `json:"actor_id"`
	ActorUsername *string         `json:"actor_username"`
	ActorRole     *string         `json:"actor_role"`
	ClientIP      *string         `json:"client_ip"`
	Method        string          `json:"method"`
	Route         string          `json:"route"`
	Action        string          `json:"action"`
	TargetID      *string         `json:"target_id"`
	Status        int             `json:"status"`
	RequestID     string          `json:"request_id"`
	Details       json.RawMessage `json:"details"`
}

// optString is s, or null when empty.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toAuditEntryJSON(e schemas.AuditEntry) auditEntryJSON {
	out := auditEntryJSON{
		ID:            e.ID,
		Time:          e.Time.UTC(),
		ActorUsername: optString(e.ActorUsername),
		ActorRole:     optString(e.ActorRole),
		ClientIP:      optString(auditIP(e)),
		Method:        e.Method,
		Route:         e.Route,
		Action:        e.Action,
		TargetID:      optString(e.TargetID),
		Status:        e.Status,
		RequestID:     e.RequestID,
		Details:       e.Details,
	}
	if e.ActorID != uuid.Nil {
		id := e.ActorID
		out.ActorID = &id
	}
	if len(out.Details) == 0 {
		out.Details = json.RawMessage(`{}`)
	}
	return out
}

type auditListResponse struct {
	Entries    []auditEntryJSON `json:"entries"`
	NextCursor *string          `json:"next_cursor"`
}

// adminListQuery is the query string of an admin list endpoint, checked to
// hold only known parameters, each at most once: a misspelt filter is an
// error rather than a silently unfiltered answer.
type adminListQuery struct{ url.Values }

func parseAdminListQuery(r *http.Request, allowed ...string) (adminListQuery, error) {
	q := r.URL.Query()
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			return adminListQuery{}, fieldError(name, "unknown query parameter; known: "+strings.Join(allowed, ", "))
		}
		if len(q[name]) > 1 {
			return adminListQuery{}, fieldError(name, "must be given at most once")
		}
	}
	return adminListQuery{q}, nil
}

// time parses an RFC 3339 timestamp parameter (zero when absent).
func (q adminListQuery) time(name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fieldError(name, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// limit parses the page size (schemas.DefaultPageSize when absent).
func (q adminListQuery) limit() (int, error) {
	v := q.Get("limit")
	if v == "" {
		return schemas.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > schemas.MaxPageSize {
		return 0, fieldError("limit", fmt.Sprintf("must be a whole number from 1 to %d", schemas.MaxPageSize))
	}
	return n, nil
}

// auditFilter reads the filters shared by the list and the export.
func (q adminListQuery) auditFilter() (schemas.AuditFilter, error) {
	var f schemas.AuditFilter
	var err error
	f.Actor = q.Get("actor")
	if len(f.Actor) > 256 {
		return f, fieldError("actor", "must be a user ID or a username")
	}
	f.Action = q.Get("action")
	if len(f.Action) > 256 {
		return f, fieldError("action", "must be at most 256 bytes")
	}
	if f.From, err = q.time("from"); err != nil {
		return f, err
	}
	if f.To, err = q.time("to"); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return f, fieldError("to", "must be later than from")
	}
	return f, nil
}

func errBadCursor() error { return fieldError("cursor", "is not a cursor this API returned") }

// listAudit answers one page of the audit log, newest first.
// Query: actor (user ID or username), action, from, to (RFC 3339; from
// inclusive, to exclusive), cursor, limit (1–200, default 50).
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAdminListQuery(r, "actor", "action", "from", "to", "cursor", "limit")
	if err != nil {
		return err
	}
	f, err := q.auditFilter()
	if err != nil {
		return err
	}
	if f.Limit, err = q.limit(); err != nil {
		return err
	}
	f.Cursor = q.Get("cursor")
	entries, next, err := s.deps.Store.ListAudit(r.Context(), f)
	if errors.Is(err, schemas.ErrInvalidCursor) {
		return errBadCursor()
	}
	if err != nil {
		return err
	}
	out := auditListResponse{Entries: make([]auditEntryJSON, 0, len(entries)), NextCursor: optString(next)}
	for _, e := range entries {
		out.Entries = append(out.Entries, toAuditEntryJSON(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditExportWriteWindow is how long the client may take to accept each
// batch of an export; the server's write timeout would otherwise cut off
// large exports.
const auditExportWriteWindow = 2 * time.Minute

// auditExporter writes one export format.
type auditExporter interface {
	begin() error
	row(schemas.AuditEntry) error
	end() error
}

// exportAudit streams every audit row the filters select, newest first.
// Query: format (csv or json, required) and the list's filters actor,
// action, from, to. CSV: a header row, RFC 4180 (CRLF, quoted as needed),
// cells that a spreadsheet would run as a formula prefixed with '. JSON: one
// array streamed element by element, so a cut-off download is invalid JSON
// rather than a silently short log. Both are attachments.
//
// An error before the first byte is an ordinary error answer. An error after
// it cannot change the status any more, so the connection is aborted: the
// client sees a failed transfer, never a complete-looking partial file.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseAdminListQuery(r, "format", "actor", "action", "from", "to")
	if err != nil {
		return err
	}
	f, err := q.auditFilter()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	var exp auditExporter
	format := q.Get("format")
	switch format {
	case "csv":
		cw := csv.NewWriter(bw)
		cw.UseCRLF = true
		exp = &auditCSV{w: cw}
	case "json":
		exp = &auditJSONArray{w: bw}
	default:
		return fieldError("format", "must be csv or json")
	}

	rc := http.NewResponseController(w)
	started, n := false, 0
	start := func() error {
		started = true
		h := w.Header()
		if format == "csv" {
			h.Set("Content-Type", "text/csv; charset=utf-8; header=present")
		} else {
			h.Set("Content-Type", "application/json; charset=utf-8")
		}
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="streamspace-audit-%s.%s"`,
			time.Now().UTC().Format("20060102T150405Z"), format))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		return exp.begin()
	}
	err = s.deps.Store.StreamAudit(r.Context(), f, func(e schemas.AuditEntry) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		if n%500 == 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(auditExportWriteWindow))
		}
		n++
		return exp.row(e)
	})
	if err == nil && !started {
		err = start()
	}
	if err == nil {
		if err = exp.end(); err == nil {
			err = bw.Flush()
		}
	}
	if err == nil {
		return nil
	}
	if !started {
		return err
	}
	level := slog.LevelError
	if r.Context().Err() != nil {
		level = slog.LevelInfo // the client went away
	}
	s.deps.Logger.Log(r.Context(), level, "audit export cut off", "err", err, "rows", n,
		"request_id", requestID(r.Context()))
	panic(http.ErrAbortHandler)
}

var auditCSVHeader = []string{"id", "time", "actor_id", "actor_username", "actor_role", "client_ip",
	"method", "route", "action", "target_id", "status", "request_id", "details"}

type auditCSV struct{ w *csv.Writer }

func (c *auditCSV) begin() error { return c.w.Write(auditCSVHeader) }

func (c *auditCSV) row(e schemas.AuditEntry) error {
	details := string(e.Details)
	if details == "" {
		details = "{}"
	}
	rec := []string{strconv.FormatInt(e.ID, 10), e.Time.UTC().Format(time.RFC3339Nano), auditActorID(e),
		e.ActorUsername, e.ActorRole, auditIP(e), e.Method, e.Route, e.Action, e.TargetID,
		strconv.Itoa(e.Status), e.RequestID, details}
	for i := range rec {
		rec[i] = csvSafe(rec[i])
	}
	return c.w.Write(rec)
}

func (c *auditCSV) end() error {
	c.w.Flush()
	return c.w.Error()
}

// csvSafe defuses CSV injection: a cell a spreadsheet would evaluate as a
// formula (starting with = + - @, or a tab or carriage return) gets a
// leading single quote, which makes it text.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type auditJSONArray struct {
	w *bufio.Writer
	n int
}

func (j *auditJSONArray) begin() error {
	_, err := j.w.WriteString("[")
	return err
}

func (j *auditJSONArray) row(e schemas.AuditEntry) error {
	b, err := json.Marshal(toAuditEntryJSON(e))
	if err != nil {
		return err
	}
	sep := ",\n"
	if j.n == 0 {
		sep = "\n"
	}
	j.n++
	if _, err := j.w.WriteString(sep); err != nil {
		return err
	}
	_, err = j.w.Write(b)
	return err
}

func (j *auditJSONArray) end() error {
	_, err := j.w.WriteString("\n]\n")
	return err
}
