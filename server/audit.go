package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamspace/enterprise/schemas"
)

// The audit trail.
//
// withAudit records every mutating request (POST, PUT, PATCH, DELETE — login
// attempts included), and every read refused with 401, 403 or 429, in the append-only audit_log table, whatever its
// outcome. It sits outside authentication and rate limiting, so the 401, 403
// and 429 answers they give are recorded too. Because it runs before them, it
// cannot see who the caller is: it puts a mutable record in the context that
// the inner layers fill through the auditSet* functions:
//
//   - auditSetActor: the authentication middleware, once it knows the
//     caller, and the login handler, once the password checked out;
//   - auditSetTarget: handlers that create a resource, with the new ID (routes
//     with an {id} URL parameter default to it);
//   - auditSetAction: an explicit action name such as "auth.login" (the
//     default is "METHOD /route/pattern");
//   - auditSetDetail: small facts such as the username a failed login tried.
//     Never passwords or tokens: keys that look like secrets are redacted.
//
// When the handler returns, the row is written.
//
// Audit failure policy. The request is not failed because of the audit
// write: by the time it runs the handler has committed its change, and
// answering 500 for a change that happened would invite the client to repeat
// it. Instead the write must not get lost easily:
//
//   - The response is held back (bodies up to 64 KiB, which every mutating
//     answer of this API is), then sent with a Content-Length and flushed
//     before the write, so the client has its whole answer and does not wait
//     for the audit insert. The write still happens inside the request's
//     handler, so graceful shutdown waits for it like for any request.
//   - The insert runs on a context detached from the client's (a client that
//     hangs up does not cancel it) and is retried with backoff for up to 5 s,
//     which rides out a connection reset or a quick PostgreSQL restart.
//   - If it still fails, the whole entry is logged at ERROR with the request
//     ID (so the log is the record of last resort) and
//     streamspace_audit_write_failures_total counts it: alert on it.
type auditKey struct{}

// auditRecord is what the inner layers tell withAudit about a request.
type auditRecord struct {
	mu      sync.Mutex
	actor   *Principal
	target  string
	action  string
	details map[string]any
}

func auditFrom(ctx context.Context) *auditRecord {
	rec, _ := ctx.Value(auditKey{}).(*auditRecord)
	return rec
}

// auditSetActor records who made the request. The authentication middleware
// calls it for every authenticated request, and the login handler for a
// successful login.
func auditSetActor(ctx context.Context, p Principal) {
	if rec := auditFrom(ctx); rec != nil {
		rec.mu.Lock()
		rec.actor = &p
		rec.mu.Unlock()
	}
}

// auditSetTarget records the ID of the resource the request acted on; a
// handler that creates a resource calls it with the new ID. Routes with an
// {id} URL parameter default to that.
func auditSetTarget(ctx context.Context, id string) {
	if rec := auditFrom(ctx); rec != nil {
		rec.mu.Lock()
		rec.target = truncateUTF8(id, auditMaxString)
		rec.mu.Unlock()
	}
}

// auditSetAction names the action explicitly (e.g. "auth.login"); the
// default is "METHOD /route/pattern".
func auditSetAction(ctx context.Context, action string) {
	if rec := auditFrom(ctx); rec != nil {
		rec.mu.Lock()
		rec.action = truncateUTF8(action, auditMaxString)
		rec.mu.Unlock()
	}
}

// auditSetDetail adds one small fact to the entry's details, such as the
// username a failed login tried. Never pass passwords, tokens or other
// secrets: as a safety net, a key that looks like one (password, token,
// secret, otp, …) has its value replaced by "[REDACTED]". Strings are cut to
// 256 bytes.
func auditSetDetail(ctx context.Context, key string, value any) {
	rec := auditFrom(ctx)
	if rec == nil {
		return
	}
	if auditSensitiveKey(key) {
		value = "[REDACTED]"
	}
	if s, ok := value.(string); ok {
		value = truncateUTF8(s, auditMaxString)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.details == nil {
		rec.details = map[string]any{}
	}
	if _, exists := rec.details[key]; exists || len(rec.details) < auditMaxDetails {
		rec.details[key] = value
	}
}

const (
	auditMaxString      = 256      // bytes kept of a target, action or string detail
	auditMaxDetails     = 32       // keys kept in details
	auditMaxDetailBytes = 4 << 10  // encoded details above this are replaced by a marker
	auditBufferLimit    = 64 << 10 // response bytes held back so the client is answered before the write
	auditWriteBudget    = 5 * time.Second
	auditFirstBackoff   = 50 * time.Millisecond
	auditMaxBackoff     = time.Second
)

var auditSecretWords = []string{"password", "passwd", "secret", "token", "otp", "authorization",
	"cookie", "credential", "api_key", "apikey", "private_key"}

func auditSensitiveKey(key string) bool {
	k := strings.ToLower(key)
	return slices.ContainsFunc(auditSecretWords, func(w string) bool { return strings.Contains(k, w) })
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// auditedMethod reports whether requests with method are recorded.
func auditedMethod(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

type auditMetrics struct {
	failures prometheus.Counter
	retries  prometheus.Counter
	duration prometheus.Histogram
}

// registerOrReuse registers c, or returns the collector already registered
// under its name (withAudit may wrap several route groups).
func registerOrReuse[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			if existing, ok := dup.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register audit metrics: %v", err))
	}
	return c
}

func (s *Server) auditMetrics() *auditMetrics {
	var reg prometheus.Registerer
	if s.deps.Registry != nil {
		reg = s.deps.Registry
	}
	return &auditMetrics{
		failures: registerOrReuse(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamspace_audit_write_failures_total",
			Help: "Audit entries that could not be written after retries (each is logged at ERROR in full).",
		})),
		retries: registerOrReuse(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "streamspace_audit_write_retries_total",
			Help: "Audit insert attempts that failed and were retried.",
		})),
		duration: registerOrReuse(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "streamspace_audit_write_duration_seconds",
			Help:    "Time to write one audit entry (retries included), for the entries written.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		})),
	}
}

// withAudit records every mutating request, and every refused read, in the
// audit log; see the
// comment at the top of this file. Place it after withRequestID and
// withClientIP and before authentication, rate limiting and the body limit.
func (s *Server) withAudit(next http.Handler) http.Handler {
	m := s.auditMetrics()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auditFrom(r.Context()) != nil {
			next.ServeHTTP(w, r) // already audited by an outer withAudit
			return
		}
		start := time.Now()
		rec := &auditRecord{}
		if !auditedMethod(r.Method) {
			// Reads are recorded only when refused: a 401, 403 or 429 is an
			// access attempt worth keeping (repeated 403s on admin routes are
			// how privilege escalation shows). The answer is not held back.
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), auditKey{}, rec)))
			if refusal(ww.Status()) {
				s.writeAudit(r, rec, start, ww.Status(), m)
			}
			return
		}
		aw := &auditResponseWriter{w: w}
		returned := false
		defer func() {
			if returned {
				return
			}
			// The handler panicked (or called runtime.Goexit). Record it without
			// recovering, so the panic goes on to withRecovery with its stack.
			status := http.StatusInternalServerError
			if aw.streaming && aw.wroteHeader {
				status = aw.status // already on the wire
			}
			rec.mu.Lock()
			if rec.details == nil {
				rec.details = map[string]any{}
			}
			rec.details["aborted"] = true
			rec.mu.Unlock()
			s.writeAudit(r, rec, start, status, m)
		}()
		next.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), auditKey{}, rec)))
		returned = true
		status := aw.finish()
		s.writeAudit(r, rec, start, status, m)
	})
}

// refusal reports whether status refuses access: such answers to reads are
// audited too.
func refusal(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
}

// auditEntry assembles the row from the request and what the inner layers
// recorded.
func auditEntry(r *http.Request, rec *auditRecord, start time.Time, status int) schemas.AuditEntry {
	ctx := r.Context()
	e := schemas.AuditEntry{
		Time:      start,
		ClientIP:  clientIP(ctx),
		Method:    r.Method,
		Route:     routePattern(r),
		Status:    status,
		RequestID: requestID(ctx),
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	details := rec.details
	if e.Route == "" {
		e.Route = "unmatched" // as in the metrics; the raw path goes in details
		details = maps.Clone(details)
		if details == nil {
			details = map[string]any{}
		}
		details["path"] = truncateUTF8(r.URL.Path, auditMaxString)
	}
	if rec.actor != nil {
		e.ActorID = rec.actor.UserID
		e.ActorUsername = rec.actor.Username
		e.ActorRole = string(rec.actor.Role)
	}
	e.Action = rec.action
	if e.Action == "" {
		e.Action = r.Method + " " + e.Route
	}
	e.TargetID = rec.target
	if e.TargetID == "" {
		if rctx := chi.RouteContext(ctx); rctx != nil {
			e.TargetID = truncateUTF8(rctx.URLParam("id"), auditMaxString)
		}
	}
	e.Details = encodeAuditDetails(details)
	return e
}

func encodeAuditDetails(details map[string]any) json.RawMessage {
	if len(details) == 0 {
		return json.RawMessage(`{}`)
	}
	b, err := json.Marshal(details)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"_error": "details could not be encoded"})
	}
	if len(b) > auditMaxDetailBytes {
		keys := make([]string, 0, len(details))
		for k := range details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b, _ = json.Marshal(map[string]any{"_truncated": true, "keys": keys})
	}
	return b
}

// writeAudit inserts the entry, retrying transient failures, and reports a
// final failure loudly (ERROR log with the whole entry, and the counter).
func (s *Server) writeAudit(r *http.Request, rec *auditRecord, start time.Time, status int, m *auditMetrics) {
	e := auditEntry(r, rec, start, status)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditWriteBudget)
	defer cancel()
	began := time.Now()
	attempts, err := 0, error(nil)
	backoff := auditFirstBackoff
	for {
		attempts++
		if s.deps.Store == nil || s.deps.Store.Pool == nil {
			err = errors.New("no audit store configured")
			break
		}
		if err = s.deps.Store.InsertAudit(ctx, e); err == nil {
			m.duration.Observe(time.Since(began).Seconds())
			return
		}
		if auditPermanent(err) || ctx.Err() != nil {
			break
		}
		m.retries.Inc()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		backoff = min(2*backoff, auditMaxBackoff)
	}
	// The entry is logged before it is counted: whoever sees the count can
	// find the line.
	s.deps.Logger.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelError, "audit write failed",
		slog.String("request_id", e.RequestID),
		slog.Any("err", err),
		slog.Int("attempts", attempts),
		slog.Group("audit",
			slog.Time("time", e.Time),
			slog.String("actor_id", auditActorID(e)),
			slog.String("actor_username", e.ActorUsername),
			slog.String("actor_role", e.ActorRole),
			slog.String("client_ip", auditIP(e)),
			slog.String("method", e.Method),
			slog.String("route", e.Route),
			slog.String("action", e.Action),
			slog.String("target_id", e.TargetID),
			slog.Int("status", e.Status),
			slog.String("details", string(e.Details)),
		))
	m.failures.Inc()
}

// auditPermanent reports errors a retry cannot fix: the database rejected
// the data or the statement itself.
func auditPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "42": // data exception, integrity violation, syntax or privilege
			return true
		}
	}
	return false
}

func auditActorID(e schemas.AuditEntry) string {
	if e.ActorID == uuid.Nil {
		return ""
	}
	return e.ActorID.String()
}

func auditIP(e schemas.AuditEntry) string {
	if !e.ClientIP.IsValid() {
		return ""
	}
	return e.ClientIP.String()
}

// auditResponseWriter learns the status of the answer and holds back a body
// of up to auditBufferLimit bytes, so that finish can send the whole answer,
// with its Content-Length, before the audit write. A larger body, or a
// handler that flushes, streams straight through instead.
type auditResponseWriter struct {
	w           http.ResponseWriter
	status      int
	wroteHeader bool
	streaming   bool
	buf         []byte
}

func (a *auditResponseWriter) Header() http.Header { return a.w.Header() }

func (a *auditResponseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		a.w.WriteHeader(code) // informational, e.g. 103 Early Hints
		return
	}
	if a.wroteHeader {
		return
	}
	a.wroteHeader, a.status = true, code
	if a.streaming {
		a.w.WriteHeader(code)
	}
}

func (a *auditResponseWriter) Write(p []byte) (int, error) {
	if !a.wroteHeader {
		a.WriteHeader(http.StatusOK)
	}
	if !a.streaming && len(a.buf)+len(p) <= auditBufferLimit {
		a.buf = append(a.buf, p...)
		return len(p), nil
	}
	if err := a.stream(); err != nil {
		return 0, err
	}
	return a.w.Write(p)
}

// stream sends what was held back and passes everything through from now on.
func (a *auditResponseWriter) stream() error {
	if a.streaming {
		return nil
	}
	a.streaming = true
	if !a.wroteHeader {
		return nil
	}
	a.w.WriteHeader(a.status)
	if len(a.buf) == 0 {
		return nil
	}
	_, err := a.w.Write(a.buf)
	a.buf = nil
	return err
}

// FlushError lets http.ResponseController (and Flush) reach the client.
func (a *auditResponseWriter) FlushError() error {
	if !a.wroteHeader {
		a.WriteHeader(http.StatusOK)
	}
	if err := a.stream(); err != nil {
		return err
	}
	return http.NewResponseController(a.w).Flush()
}

func (a *auditResponseWriter) Flush() { _ = a.FlushError() }

// Unwrap exposes the underlying writer to http.ResponseController.
func (a *auditResponseWriter) Unwrap() http.ResponseWriter { return a.w }

// finish sends the held-back answer, complete with Content-Length, flushes
// it to the client and returns the status answered.
func (a *auditResponseWriter) finish() int {
	if !a.wroteHeader {
		a.WriteHeader(http.StatusOK)
	}
	if a.streaming {
		return a.status
	}
	a.streaming = true
	h := a.w.Header()
	if bodyAllowed(a.status) && h.Get("Content-Length") == "" && h.Get("Transfer-Encoding") == "" {
		h.Set("Content-Length", strconv.Itoa(len(a.buf)))
	}
	a.w.WriteHeader(a.status)
	if len(a.buf) > 0 && bodyAllowed(a.status) {
		_, _ = a.w.Write(a.buf)
	}
	a.buf = nil
	_ = http.NewResponseController(a.w).Flush()
	return a.status
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
