package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/authtoken"
	"github.com/streamspace/enterprise/internal/password"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// apiBundle is the real router and middleware over a fresh database, with
// three signed-in users: an admin and two ordinary users.
type apiBundle struct {
	t      testing.TB
	srv    *httptest.Server
	server *Server
	store  *schemas.Store
	tokens *authtoken.Authority
	// tokenKey signs the bundle's tokens, for tests that need an authority
	// with another clock over the same key.
	tokenKey *authtoken.Key

	admin, user, other testUser
}

type testUser struct {
	schemas.User
	Password string
	Token    string
}

const testPassword = "correct horse battery staple"

func newAPI(t testing.TB, mutate ...func(*Config)) *apiBundle {
	t.Helper()
	return newAPIDeps(t, nil, mutate...)
}

// newAPIDeps is newAPI with the server's Deps adjusted by deps (when not
// nil) before the server is built: a client-IP resolver that trusts the
// loopback proxy, an encryption key, SMS and mail senders…
func newAPIDeps(t testing.TB, deps func(*Deps), mutate ...func(*Config)) *apiBundle {
	t.Helper()
	pool := testenv.DB(t)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	key, err := authtoken.NewHMACKey("test", secret)
	require.NoError(t, err)
	tokens, err := authtoken.NewAuthority("streamspace", "streamspace-api", 15*time.Minute, key)
	require.NoError(t, err)
	// Generous limits: tests of the limits themselves set their own.
	cfg := Config{MaxBodyBytes: 1 << 20, RefreshTTL: time.Hour, RateLimits: RateLimitConfig{
		UserLimit: 100000, AdminLimit: 100000, LoginPerAccountIP: 100000, LoginPerAccount: 100000, LoginPerIP: 100000}}
	for _, m := range mutate {
		m(&cfg)
	}
	store := &schemas.Store{Pool: pool}
	d := Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Registry: prometheus.NewRegistry(),
		Store:    store,
		Tokens:   tokens,
	}
	if deps != nil {
		deps(&d)
	}
	s := New(cfg, d)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b := &apiBundle{t: t, srv: srv, server: s, store: store, tokens: tokens, tokenKey: key}
	b.admin = b.createUser("root-admin", "admin")
	b.user = b.createUser("alice", "user")
	b.other = b.createUser("bob", "user")
	return b
}

func (b *apiBundle) createUser(username, role string) testUser {
	b.t.Helper()
	hash, err := password.Hash(testPassword)
	require.NoError(b.t, err)
	u := schemas.User{Username: username, Email: username + "@example.com", Role: role, Active: true, PasswordHash: hash}
	require.NoError(b.t, b.store.InTx(context.Background(), func(tx pgx.Tx) error { return schemas.InsertUser(context.Background(), tx, &u) }))
	tok, _, err := b.tokens.Issue(u.ID, u.Username, u.Role)
	require.NoError(b.t, err)
	return testUser{User: u, Password: testPassword, Token: tok}
}

// call sends a request with an optional bearer token and JSON body.
func (b *apiBundle) call(method, path, token string, body any) (*http.Response, []byte) {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(v)
	default:
		data, err := json.Marshal(v)
		require.NoError(b.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(b.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp, data
}

// callJSON is call that decodes a JSON answer into out and checks the status.
func (b *apiBundle) callJSON(method, path, token string, body any, wantStatus int, out any) {
	b.t.Helper()
	resp, data := b.call(method, path, token, body)
	require.Equal(b.t, wantStatus, resp.StatusCode, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(b.t, json.Unmarshal(data, out), "%s", data)
	}
}

func errorCode(t *testing.T, data []byte) string {
	t.Helper()
	var e errorBody
	require.NoError(t, json.Unmarshal(data, &e), "%s", data)
	return e.Error.Code
}

// userEvents lists the payloads of the outbox events of type typ, oldest
// first; only those about userID unless it is uuid.Nil.
func userEvents(t *testing.T, pool *pgxpool.Pool, typ schemas.EventType, userID uuid.UUID) []schemas.UserEventData {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT payload FROM events
		WHERE type = $1 AND ($2 = '' OR payload->>'user_id' = $2) ORDER BY seq`, string(typ), uuidOrEmpty(userID))
	require.NoError(t, err)
	defer rows.Close()
	var out []schemas.UserEventData
	for rows.Next() {
		var raw []byte
		require.NoError(t, rows.Scan(&raw))
		var d schemas.UserEventData
		require.NoError(t, json.Unmarshal(raw, &d))
		out = append(out, d)
	}
	require.NoError(t, rows.Err())
	return out
}

func uuidOrEmpty(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}
