package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// auditHarness serves a test router with the real withAudit, the audit and
// events routes, and a fake authentication: "Authorization: Bearer
// role/username/uuid" authenticates, anything else is 401.
type auditHarness struct {
	srv   *httptest.Server
	store *schemas.Store
	reg   *prometheus.Registry
	logs  *testenv.SyncBuffer
}

func newAuditHarness(t *testing.T, pool *pgxpool.Pool) *auditHarness {
	t.Helper()
	h := &auditHarness{store: &schemas.Store{Pool: pool}, reg: prometheus.NewRegistry(), logs: &testenv.SyncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := New(Config{MaxBodyBytes: 1 << 20}, Deps{Logger: logger, Registry: h.reg, Store: h.store})

	fakeAuth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := parseFakeToken(r.Header.Get("Authorization"))
			if !ok {
				writeError(w, r, logger, Errorf(CodeUnauthorized, "missing bearer token"))
				return
			}
			auditSetActor(r.Context(), p)
			next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
		})
	}
	adminOnly := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, _ := principalFrom(r.Context()); !p.IsAdmin() {
				writeError(w, r, logger, Errorf(CodeForbidden, "admin role required"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}

	r := chi.NewRouter()
	r.Use(withRequestID, withRecovery(logger), s.withClientIP, s.withAudit)
	r.Post("/api/auth/login", handle(logger, func(w http.ResponseWriter, r *http.Request) error {
		var req struct{ Username, Password string }
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		auditSetAction(r.Context(), "auth.login")
		auditSetDetail(r.Context(), "username", req.Username)
		if req.Password != "right" {
			return Errorf(CodeUnauthorized, "invalid username or password")
		}
		auditSetActor(r.Context(), Principal{UserID: fakeUserID(req.Username), Username: req.Username, Role: RoleUser})
		writeJSON(w, http.StatusOK, map[string]string{"access_token": "t"})
		return nil
	}))
	r.Group(func(r chi.Router) {
		r.Use(fakeAuth)
		r.Post("/x", func(w http.ResponseWriter, r *http.Request) {
			id := uuid.NewString()
			auditSetTarget(r.Context(), id)
			auditSetDetail(r.Context(), "password", "hunter2") // must never be stored
			writeJSON(w, http.StatusCreated, map[string]string{"id": id})
		})
		r.Get("/x/{id}", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"id": chi.URLParam(r, "id")})
		})
		r.Patch("/x/{id}", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"id": chi.URLParam(r, "id")})
		})
		r.Delete("/x/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
		r.Post("/x/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
		r.Post("/x/big", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(bytes.Repeat([]byte("a"), auditBufferLimit+10))
		})
		r.Group(func(r chi.Router) {
			r.Use(adminOnly)
			r.Post("/admin/thing", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
			s.auditRoutes(r)
			s.eventRoutes(r)
		})
	})
	h.srv = httptest.NewServer(r)
	t.Cleanup(h.srv.Close)
	return h
}

func fakeUserID(username string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(username))
}

func fakeToken(role Role, username string) string {
	return fmt.Sprintf("Bearer %s/%s/%s", role, username, fakeUserID(username))
}

func parseFakeToken(h string) (Principal, bool) {
	parts := strings.Split(strings.TrimPrefix(h, "Bearer "), "/")
	if len(parts) != 3 {
		return Principal{}, false
	}
	id, err := uuid.Parse(parts[2])
	if err != nil {
		return Principal{}, false
	}
	return Principal{UserID: id, Username: parts[1], Role: Role(parts[0]), Source: "local"}, true
}

// counter reads a counter from the server's registry (0 when absent).
func (h *auditHarness) counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// do sends a request and returns the response with its body read.
func (h *auditHarness) do(t *testing.T, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := h.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

// auditRow waits for the audit row of a request (it is written after the
// response has been sent) and checks there is exactly one.
func auditRow(t *testing.T, pool *pgxpool.Pool, requestID string) schemas.AuditEntry {
	t.Helper()
	ctx := context.Background()
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE request_id = $1`, requestID).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	require.Eventually(t, func() bool { return count() > 0 }, 5*time.Second, 10*time.Millisecond,
		"no audit row for request %s", requestID)
	require.Equal(t, 1, count(), "one row per request")
	var got schemas.AuditEntry
	store := &schemas.Store{Pool: pool}
	require.NoError(t, store.StreamAudit(ctx, schemas.AuditFilter{}, func(e schemas.AuditEntry) error {
		if e.RequestID == requestID {
			got = e
		}
		return nil
	}))
	return got
}

func TestAuditRecordsMutatingRequests(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	h := newAuditHarness(t, pool)
	admin, user := fakeToken(RoleAdmin, "root"), fakeToken(RoleUser, "bob")

	t.Run("LoginFailure", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/api/auth/login", "", `{"Username":"mallory","Password":"guess"}`)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "auth.login", e.Action)
		require.Equal(t, http.MethodPost, e.Method)
		require.Equal(t, "/api/auth/login", e.Route)
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.Equal(t, uuid.Nil, e.ActorID, "a failed login has no actor")
		require.Empty(t, e.ActorUsername)
		require.Equal(t, "127.0.0.1", e.ClientIP.String())
		require.JSONEq(t, `{"username":"mallory"}`, string(e.Details))
		require.NotContains(t, string(e.Details), "guess")
	})
	t.Run("LoginSuccess", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/api/auth/login", "", `{"Username":"bob","Password":"right"}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "auth.login", e.Action)
		require.Equal(t, http.StatusOK, e.Status)
		require.Equal(t, fakeUserID("bob"), e.ActorID)
		require.Equal(t, "bob", e.ActorUsername)
		require.Equal(t, "user", e.ActorRole)
	})

	var created string
	t.Run("Create", func(t *testing.T) {
		resp, body := h.do(t, http.MethodPost, "/x", admin, `{}`)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		var out struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &out))
		created = out.ID
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "POST /x", e.Action)
		require.Equal(t, "/x", e.Route)
		require.Equal(t, created, e.TargetID)
		require.Equal(t, http.StatusCreated, e.Status)
		require.Equal(t, fakeUserID("root"), e.ActorID)
		require.Equal(t, "root", e.ActorUsername)
		require.Equal(t, "admin", e.ActorRole)
		require.JSONEq(t, `{"password":"[REDACTED]"}`, string(e.Details))
		require.WithinDuration(t, time.Now(), e.Time, time.Minute)
	})
	t.Run("Update", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPatch, "/x/"+created, admin, `{}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "PATCH /x/{id}", e.Action)
		require.Equal(t, "/x/{id}", e.Route)
		require.Equal(t, created, e.TargetID, "the {id} URL parameter is the default target")
		require.Equal(t, http.StatusOK, e.Status)
	})
	t.Run("Delete", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodDelete, "/x/"+created, user, "")
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "DELETE /x/{id}", e.Action)
		require.Equal(t, created, e.TargetID)
		require.Equal(t, http.StatusNoContent, e.Status)
		require.Equal(t, "bob", e.ActorUsername)
	})
	t.Run("Unauthenticated", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/x", "", `{}`)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, http.StatusUnauthorized, e.Status)
		require.Equal(t, uuid.Nil, e.ActorID)
		require.Equal(t, "POST /x", e.Action)
	})
	t.Run("Forbidden", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/admin/thing", user, "")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, http.StatusForbidden, e.Status)
		require.Equal(t, "bob", e.ActorUsername)
	})
	t.Run("Unmatched", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/no/such/route", admin, "")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "unmatched", e.Route)
		require.Equal(t, "POST unmatched", e.Action)
		require.JSONEq(t, `{"path":"/no/such/route"}`, string(e.Details))
	})
	t.Run("Panic", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodPost, "/x/panic", admin, "")
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, http.StatusInternalServerError, e.Status)
		require.JSONEq(t, `{"aborted":true}`, string(e.Details))
	})
	t.Run("LargeResponseStreams", func(t *testing.T) {
		resp, body := h.do(t, http.MethodPost, "/x/big", admin, "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Len(t, body, auditBufferLimit+10)
		e := auditRow(t, pool, resp.Header.Get("X-Request-ID"))
		require.Equal(t, http.StatusOK, e.Status)
	})
	t.Run("GetsAreNotAudited", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodGet, "/x/"+created, admin, "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		rid := resp.Header.Get("X-Request-ID")
		// A later mutating request's row is there, the GET's never is.
		resp2, _ := h.do(t, http.MethodPatch, "/x/"+created, admin, "")
		auditRow(t, pool, resp2.Header.Get("X-Request-ID"))
		var n int
		require.NoError(t, pool.QueryRow(context.Background(),
			`SELECT count(*) FROM audit_log WHERE request_id = $1 OR method = 'GET'`, rid).Scan(&n))
		require.Zero(t, n)
	})
	require.Zero(t, h.counter(t, "streamspace_audit_write_failures_total"))
}

// TestAuditAnswersBeforeWrite: the client has its whole answer while the
// audit insert is still blocked, and the row arrives once the block lifts.
func TestAuditAnswersBeforeWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	h := newAuditHarness(t, pool)

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	// SHARE mode conflicts with the ROW EXCLUSIVE lock an INSERT needs.
	_, err = tx.Exec(ctx, `LOCK TABLE audit_log IN SHARE MODE`)
	require.NoError(t, err)

	client := &http.Client{Timeout: 3 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/x", strings.NewReader("{}"))
	req.Header.Set("Authorization", fakeToken(RoleAdmin, "root"))
	resp, err := client.Do(req)
	require.NoError(t, err, "the answer must not wait for the audit insert")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Contains(t, string(body), `"id"`)
	require.Equal(t, fmt.Sprint(len(body)), resp.Header.Get("Content-Length"))

	rid := resp.Header.Get("X-Request-ID")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE request_id = $1`, rid).Scan(&n))
	require.Zero(t, n, "the insert is still waiting for the lock")
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, http.StatusCreated, auditRow(t, pool, rid).Status)
}

// TestAuditSurvivesDatabaseBlip: the database is unreachable when the write
// starts and back a moment later; the row is written by a retry.
func TestAuditSurvivesDatabaseBlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct := testenv.DB(t)
	cfg := direct.Config().Copy()
	proxy := testenv.NewProxy(t, fmt.Sprintf("%s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port))
	host, port, _ := strings.Cut(proxy.Addr(), ":")
	cfg.ConnConfig.Host = host
	_, _ = fmt.Sscan(port, &cfg.ConnConfig.Port)
	cfg.ConnConfig.ConnectTimeout = time.Second
	viaProxy, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(viaProxy.Close)
	require.NoError(t, viaProxy.Ping(ctx))

	h := newAuditHarness(t, viaProxy)
	proxy.SetUp(false)
	resp, _ := h.do(t, http.MethodPost, "/x", fakeToken(RoleAdmin, "root"), "{}")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	time.Sleep(400 * time.Millisecond)
	proxy.SetUp(true)

	e := auditRow(t, direct, resp.Header.Get("X-Request-ID"))
	require.Equal(t, http.StatusCreated, e.Status)
	require.Positive(t, h.counter(t, "streamspace_audit_write_retries_total"))
	require.Zero(t, h.counter(t, "streamspace_audit_write_failures_total"))
}

// TestAuditWriteFailure: when the database stays away, the request is still
// answered, and the lost entry is logged at ERROR in full and counted.
func TestAuditWriteFailure(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every connection attempt is refused.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	h := newAuditHarness(t, pool)

	start := time.Now()
	resp, _ := h.do(t, http.MethodPost, "/x", fakeToken(RoleAdmin, "root"), "{}")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Less(t, time.Since(start), auditWriteBudget/2, "answered before the write gave up")
	rid := resp.Header.Get("X-Request-ID")

	require.Eventually(t, func() bool { return h.counter(t, "streamspace_audit_write_failures_total") == 1 },
		auditWriteBudget+5*time.Second, 50*time.Millisecond)
	require.Positive(t, h.counter(t, "streamspace_audit_write_retries_total"))

	var line map[string]any
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "audit write failed") {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
		}
	}
	require.NotNil(t, line, "logs: %s", h.logs.String())
	require.Equal(t, "ERROR", line["level"])
	require.Equal(t, rid, line["request_id"])
	audit := line["audit"].(map[string]any)
	require.Equal(t, "POST /x", audit["action"])
	require.Equal(t, "root", audit["actor_username"])
	require.EqualValues(t, 201, audit["status"])
	require.NotEmpty(t, audit["target_id"])
}

func TestAuditSetDetailLimits(t *testing.T) {
	t.Parallel()
	rec := &auditRecord{}
	ctx := context.WithValue(context.Background(), auditKey{}, rec)
	for _, k := range []string{"password", "new_password", "refresh_token", "TOTP", "client_secret", "Authorization"} {
		auditSetDetail(ctx, k, "s3cr3t")
	}
	auditSetDetail(ctx, "username", strings.Repeat("é", 300))
	for _, v := range rec.details {
		require.NotEqual(t, "s3cr3t", v)
	}
	require.LessOrEqual(t, len(rec.details["username"].(string)), auditMaxString)
	require.True(t, strings.HasPrefix(strings.Repeat("é", 300), rec.details["username"].(string)))

	for i := range 100 {
		auditSetDetail(ctx, fmt.Sprint("k", i), strings.Repeat("x", 200))
	}
	require.Len(t, rec.details, auditMaxDetails)
	enc := encodeAuditDetails(rec.details)
	require.LessOrEqual(t, len(enc), auditMaxDetailBytes)
	require.Contains(t, string(enc), `"_truncated":true`)

	// Without withAudit in the chain the setters do nothing.
	auditSetActor(context.Background(), Principal{})
	auditSetDetail(context.Background(), "k", "v")
}
