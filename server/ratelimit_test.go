package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// replica is one API server's rate limits over pool.
func replica(pool *pgxpool.Pool, cfg RateLimitConfig) *rateLimits {
	// The production 250 ms statement timeout fails the API open (no
	// RateLimit headers): on a loaded test machine a new pool's first
	// connection can take longer, and these tests are about the counting.
	return newRateLimits(cfg, schemas.NewRateCounter(pool, schemas.RateCounterOptions{Timeout: 10 * time.Second}),
		slog.New(slog.DiscardHandler))
}

// anotherPool opens a second pool on pool's database, as a second server
// process would.
func anotherPool(t testing.TB, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.NewWithConfig(context.Background(), pool.Config())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// freezeClock stops the limiters' clock at the present, so no window
// boundary falls inside a test that counts exactly. The counters key their
// rows by the window the clock names, and those rows expire two windows
// on: in the real clock's future too.
func freezeClock(rls ...*rateLimits) time.Time {
	now := time.Now()
	for _, rl := range rls {
		rl.now = func() time.Time { return now }
	}
	return now
}

// caller is who a test request comes from.
type caller struct {
	user  uuid.UUID // zero: anonymous
	admin bool
	ip    string
}

// asCaller stands in for client-IP resolution and authentication in front
// of h.
func asCaller(c caller, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), clientIPKey, netip.MustParseAddr(c.ip))
		if c.user != uuid.Nil {
			role := RoleUser
			if c.admin {
				role = RoleAdmin
			}
			ctx = withPrincipal(ctx, Principal{UserID: c.user, Username: "u", Role: role, Source: "local"})
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
})

// get sends one request through rl.API as c.
func get(rl *rateLimits, c caller) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	asCaller(c, rl.API(okHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/me", nil))
	return rec
}

// login counts one failed login attempt as c for username: admitted and
// never given back.
func login(rl *rateLimits, c caller, username string) (bool, *httptest.ResponseRecorder) {
	return loginAs(rl, c, username, false)
}

// loginAs is one login attempt as c for username; succeed: its credentials
// check out, so the handler gives its counts back.
func loginAs(rl *rateLimits, c caller, username string, succeed bool) (bool, *httptest.ResponseRecorder) {
	rec := httptest.NewRecorder()
	var allowed bool
	asCaller(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a *loginAttempt
		a, allowed = rl.AllowLogin(w, r, username)
		if allowed && succeed {
			rl.LoginSucceeded(r.Context(), a)
		}
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/auth/login", nil))
	return allowed, rec
}

func headerInt(t *testing.T, rec *httptest.ResponseRecorder, name string) int {
	t.Helper()
	v := rec.Header().Get(name)
	require.NotEmpty(t, v, "header %s missing", name)
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "header %s=%q", name, v)
	return n
}

// requireAdmitted checks an admitted answer and its RateLimit headers.
func requireAdmitted(t *testing.T, rec *httptest.ResponseRecorder, limit, remaining int, window time.Duration, msg string) {
	t.Helper()
	require.Equal(t, http.StatusNoContent, rec.Code, msg)
	require.Equal(t, limit, headerInt(t, rec, headerRateLimitLimit), msg)
	require.Equal(t, remaining, headerInt(t, rec, headerRateLimitRemaining), msg)
	reset := headerInt(t, rec, headerRateLimitReset)
	require.True(t, reset >= 0 && reset <= int(window/time.Second), "%s: RateLimit-Reset %d", msg, reset)
	require.Empty(t, rec.Header().Get(headerRetryAfter), msg)
}

// requireLimited checks a 429 answer: the envelope, Retry-After and the
// RateLimit headers; it returns Retry-After.
func requireLimited(t *testing.T, rec *httptest.ResponseRecorder, limit int, window time.Duration, msg string) int {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, rec.Code, msg)
	retry := headerInt(t, rec, headerRetryAfter)
	// A full window frees its first slot some way into the next one.
	require.True(t, retry >= 1 && retry <= 2*int(window/time.Second), "%s: Retry-After %d", msg, retry)
	require.Equal(t, limit, headerInt(t, rec, headerRateLimitLimit), msg)
	require.Equal(t, 0, headerInt(t, rec, headerRateLimitRemaining), msg)
	require.Equal(t, retry, headerInt(t, rec, headerRateLimitReset), msg)

	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), msg)
	require.Equal(t, "RATE_LIMITED", body.Error.Code, msg)
	require.NotEmpty(t, body.Error.Message)
	require.Equal(t, map[string]any{"retry_after_seconds": float64(retry), "limit": float64(limit)},
		body.Error.Details, msg)
	return retry
}

// decisions reads rl's decision counter for limiter and result.
func decisions(t *testing.T, rl *rateLimits, limiter, result string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, rl.decisions.WithLabelValues(limiter, result).Write(&m))
	return m.GetCounter().GetValue()
}

func TestRateLimitConfigDefaults(t *testing.T) {
	t.Parallel()
	require.Equal(t, RateLimitConfig{
		Window: time.Minute, UserLimit: 100, AdminLimit: 1000,
		LoginPerAccountIP: 5, LoginPerAccount: 50, LoginPerIP: 30, LoginWindow: 15 * time.Minute,
	}, RateLimitConfig{}.WithDefaults())
	require.Equal(t, 5, RateLimitConfig{UserLimit: 5}.WithDefaults().UserLimit)
}

// The seed's user tier: 100 requests a minute; the 101st gets 429 with
// Retry-After, and every answer carries the RateLimit headers.
func TestRateLimitUserTier(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	freezeClock(rl)

	alice := caller{user: uuid.New(), ip: "192.0.2.10"}
	for i := range 100 {
		requireAdmitted(t, get(rl, alice), 100, 99-i, time.Minute, fmt.Sprintf("request %d", i+1))
	}
	requireLimited(t, get(rl, alice), 100, time.Minute, "request 101")
	requireLimited(t, get(rl, alice), 100, time.Minute, "request 102")

	// Keyed by user: another address does not help, another user is not
	// affected.
	alice.ip = "198.51.100.7"
	requireLimited(t, get(rl, alice), 100, time.Minute, "same user, other IP")
	requireAdmitted(t, get(rl, caller{user: uuid.New(), ip: "192.0.2.10"}), 100, 99, time.Minute, "other user")

	require.InDelta(t, 101, decisions(t, rl, "api", "allowed"), 0)
	require.InDelta(t, 3, decisions(t, rl, "api", "limited"), 0)
}

// Admins get 1000 a minute: the 1000th passes, the 1001st is refused.
func TestRateLimitAdminTier(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	freezeClock(rl)

	admin := caller{user: uuid.New(), admin: true, ip: "192.0.2.20"}
	for i := range 1000 {
		rec := get(rl, admin)
		if i == 0 || i >= 998 {
			requireAdmitted(t, rec, 1000, 999-i, time.Minute, fmt.Sprintf("request %d", i+1))
		} else {
			require.Equal(t, http.StatusNoContent, rec.Code, "request %d", i+1)
		}
	}
	requireLimited(t, get(rl, admin), 1000, time.Minute, "request 1001")
}

// Before login the key is the client address (IPv6 by its /64); once the
// request has a principal the user's own count applies instead.
func TestRateLimitByClientIPBeforeLogin(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	freezeClock(rl)

	anon := caller{ip: "203.0.113.5"}
	for i := range 100 {
		requireAdmitted(t, get(rl, anon), 100, 99-i, time.Minute, fmt.Sprintf("request %d", i+1))
	}
	requireLimited(t, get(rl, anon), 100, time.Minute, "request 101")
	requireAdmitted(t, get(rl, caller{ip: "203.0.113.6"}), 100, 99, time.Minute, "other address")
	requireAdmitted(t, get(rl, caller{user: uuid.New(), ip: "203.0.113.5"}), 100, 99, time.Minute,
		"signed in from the limited address")
	requireAdmitted(t, get(rl, caller{ip: "::ffff:203.0.113.6"}), 100, 98, time.Minute, "IPv4-mapped is the IPv4 address")

	for i := range 100 {
		ip := fmt.Sprintf("2001:db8:0:1::%x", i+1) // one /64, many addresses
		requireAdmitted(t, get(rl, caller{ip: ip}), 100, 99-i, time.Minute, "IPv6 "+ip)
	}
	requireLimited(t, get(rl, caller{ip: "2001:db8:0:1:ffff::1"}), 100, time.Minute, "same /64")
	requireAdmitted(t, get(rl, caller{ip: "2001:db8:0:2::1"}), 100, 99, time.Minute, "other /64")
}

// Two server replicas (two limiters, two pools) on one database share the
// count.
func TestRateLimitSharedBetweenReplicas(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	replicas := []*rateLimits{
		replica(pool, RateLimitConfig{}),
		replica(anotherPool(t, pool), RateLimitConfig{}),
	}
	freezeClock(replicas...)

	bob := caller{user: uuid.New(), ip: "192.0.2.30"}
	for i := range 100 {
		requireAdmitted(t, get(replicas[i%2], bob), 100, 99-i, time.Minute,
			fmt.Sprintf("request %d on replica %d", i+1, i%2))
	}
	requireLimited(t, get(replicas[0], bob), 100, time.Minute, "request 101 on replica 0")
	requireLimited(t, get(replicas[1], bob), 100, time.Minute, "request 102 on replica 1")

	// Login limits are shared too.
	for i := range 50 {
		ok, _ := login(replicas[i%2], caller{ip: fmt.Sprintf("192.0.2.%d", 100+i)}, "carol")
		require.True(t, ok, "failure %d", i+1)
	}
	ok, rec := login(replicas[0], caller{ip: "192.0.2.99"}, "carol")
	require.False(t, ok)
	requireLimited(t, rec, 50, 15*time.Minute, "attempt 51")
}

// Failed logins per account, from all addresses together: the username is
// compared lower-cased; other accounts are not affected.
func TestLoginLimitPerAccount(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	now := freezeClock(rl)

	for i := range 50 {
		ok, rec := login(rl, caller{ip: fmt.Sprintf("198.51.100.%d", i+1)}, "Alice")
		require.True(t, ok, "failure %d", i+1)
		// The headers describe the tighter limit: each new address's pair
		// (4 left of 5) until the account has fewer left (of 50).
		limit, remaining := 5, 4
		if 49-i < 4 {
			limit, remaining = 50, 49-i
		}
		require.Equal(t, limit, headerInt(t, rec, headerRateLimitLimit), "failure %d", i+1)
		require.Equal(t, remaining, headerInt(t, rec, headerRateLimitRemaining), "failure %d", i+1)
	}
	ok, rec := login(rl, caller{ip: "198.51.100.150"}, " ALICE ")
	require.False(t, ok)
	retry := requireLimited(t, rec, 50, 15*time.Minute, "attempt 51")
	// Not before the window that holds the 50 failures has ended (and then
	// some 9 s more, until its weight has fallen below 49.5 of 50): how long
	// that is depends on when in the window the test runs.
	windowEnd := now.Truncate(15 * time.Minute).Add(15 * time.Minute)
	require.GreaterOrEqual(t, retry, int(windowEnd.Sub(now)/time.Second)+8)

	ok, _ = login(rl, caller{ip: "198.51.100.150"}, "bob")
	require.True(t, ok, "another account")

	// An absurdly long name is still one account.
	long := strings.Repeat("x", 1000)
	for i := range 50 {
		ok, _ := login(rl, caller{ip: fmt.Sprintf("198.51.101.%d", 100+i)}, long)
		require.True(t, ok, "long name failure %d", i+1)
	}
	ok, _ = login(rl, caller{ip: "198.51.101.200"}, long)
	require.False(t, ok)
}

// Failed logins per (account, address): one address exhausts only its own
// allowance on the account; the account signs in from elsewhere, and the
// address still reaches other accounts.
func TestLoginLimitPerAccountAndIP(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	freezeClock(rl)

	attacker := caller{ip: "203.0.113.70"}
	for i := range 5 {
		ok, rec := login(rl, attacker, "grace")
		require.True(t, ok, "failure %d", i+1)
		require.Equal(t, 5, headerInt(t, rec, headerRateLimitLimit))
		require.Equal(t, 4-i, headerInt(t, rec, headerRateLimitRemaining), "failure %d", i+1)
	}
	for range 3 {
		ok, rec := login(rl, attacker, "Grace")
		require.False(t, ok)
		requireLimited(t, rec, 5, 15*time.Minute, "the address's sixth try on the account")
	}
	ok, _ := loginAs(rl, caller{ip: "203.0.113.71"}, "grace", true)
	require.True(t, ok, "the account from another address")
	ok, _ = login(rl, attacker, "heidi")
	require.True(t, ok, "another account from the address")
	require.InDelta(t, 3, decisions(t, rl, "login_account_ip", "limited"), 0)
}

// Successful logins are given back: however many in a row, none is refused
// and none uses up the allowance for failures.
func TestLoginSuccessesNotCountedByLimits(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	freezeClock(rl)

	office := caller{ip: "192.0.2.80"}
	for i := range 60 {
		ok, rec := loginAs(rl, office, "ivan", true)
		require.True(t, ok, "sign-in %d", i+1)
		require.Equal(t, 4, headerInt(t, rec, headerRateLimitRemaining), "sign-in %d", i+1)
	}
	for i := range 5 {
		ok, _ := login(rl, office, "ivan")
		require.True(t, ok, "failure %d after the sign-ins", i+1)
	}
	ok, _ := loginAs(rl, office, "ivan", true)
	require.False(t, ok, "five failures still exhaust the address's allowance")
}

// Failed logins per client address over all accounts; attempts refused for
// the address do not use up the accounts' allowance.
func TestLoginLimitPerIP(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	rl := replica(pool, RateLimitConfig{})
	freezeClock(rl)

	attacker := caller{ip: "203.0.113.66"}
	for i := range 30 {
		ok, rec := login(rl, attacker, fmt.Sprintf("user%d", i))
		require.True(t, ok, "failure %d", i+1)
		// The headers describe the tightest limit: each new account's pair
		// with the address (4 left of 5) until the address has no more
		// left (of 30).
		limit, remaining := 5, 4
		if 29-i <= 4 {
			limit, remaining = 30, 29-i
		}
		require.Equal(t, limit, headerInt(t, rec, headerRateLimitLimit), "failure %d", i+1)
		require.Equal(t, remaining, headerInt(t, rec, headerRateLimitRemaining), "failure %d", i+1)
	}
	for range 20 {
		ok, rec := login(rl, attacker, "dave")
		require.False(t, ok)
		requireLimited(t, rec, 30, 15*time.Minute, "attempt from the limited address")
	}
	ok, _ := login(rl, caller{ip: "203.0.113.67"}, "user0")
	require.True(t, ok, "another address")
	for i := range 5 {
		ok, _ := login(rl, caller{ip: "203.0.113.68"}, "dave")
		require.True(t, ok, "dave's own failure %d", i+1)
	}
}

// With no counter given, the counts stay in process memory.
func TestRateLimitInMemory(t *testing.T) {
	t.Parallel()
	rl := newRateLimits(RateLimitConfig{UserLimit: 3, LoginPerAccountIP: 2}, nil, slog.New(slog.DiscardHandler))
	freezeClock(rl)
	c := caller{ip: "192.0.2.1"}
	for i := range 3 {
		requireAdmitted(t, get(rl, c), 3, 2-i, time.Minute, fmt.Sprintf("request %d", i+1))
	}
	requireLimited(t, get(rl, c), 3, time.Minute, "request 4")
	for range 2 {
		ok, _ := login(rl, c, "eve")
		require.True(t, ok)
	}
	ok, _ := login(rl, c, "eve")
	require.False(t, ok)
	for range 5 {
		ok, _ := loginAs(rl, c, "mallory", true)
		require.True(t, ok, "successes are given back in memory too")
	}
}

// The sliding window through the limiter, on a stopped clock: the previous
// window's count weighs in by the share of it still within a minute, on two
// replicas sharing PostgreSQL as in process memory.
func TestRateLimitSlidingWindow(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	// In the future: the rows must outlive the counter's cleanup, which
	// goes by the real clock.
	start := time.Date(2100, 1, 1, 12, 0, 0, 0, time.UTC)
	for name, replicas := range map[string][]*rateLimits{
		"postgres": {replica(pool, RateLimitConfig{}), replica(anotherPool(t, pool), RateLimitConfig{})},
		"memory":   {newRateLimits(RateLimitConfig{}, nil, slog.New(slog.DiscardHandler))},
	} {
		t.Run(name, func(t *testing.T) {
			var now time.Time
			for _, rl := range replicas {
				rl.now = func() time.Time { return now }
			}
			n := 0
			next := func() *rateLimits { n++; return replicas[n%len(replicas)] }
			at := func(d time.Duration) { now = start.Add(d) }
			alice := caller{user: uuid.New(), ip: "192.0.2.10"}

			at(10 * time.Second)
			for i := range 100 {
				rec := get(next(), alice)
				requireAdmitted(t, rec, 100, 99-i, time.Minute, fmt.Sprintf("request %d", i+1))
				require.Equal(t, 50, headerInt(t, rec, headerRateLimitReset))
			}
			require.Equal(t, 51, requireLimited(t, get(next(), alice), 100, time.Minute, "request 101"))

			// 0.2 s into the next window the previous one still weighs
			// 99.67: full. At 0.4 s it weighs 99.33: one more.
			at(time.Minute + 200*time.Millisecond)
			require.Equal(t, 1, requireLimited(t, get(next(), alice), 100, time.Minute, "0.2 s into the next window"))
			at(time.Minute + 400*time.Millisecond)
			requireAdmitted(t, get(next(), alice), 100, 0, time.Minute, "0.4 s in")
			require.Equal(t, 1, requireLimited(t, get(next(), alice), 100, time.Minute, "0.4 s in, again"))

			// Halfway it weighs 50: on top of the 1 counted, 49 more fit.
			at(90 * time.Second)
			for i := range 49 {
				requireAdmitted(t, get(next(), alice), 100, 48-i, time.Minute, fmt.Sprintf("halfway, request %d", i+1))
			}
			// 50 + 50: the next fits once the previous window weighs under
			// 49.5, 0.3 s later.
			require.Equal(t, 1, requireLimited(t, get(next(), alice), 100, time.Minute, "halfway, request 50"))

			// Two windows on, nothing weighs in.
			at(3*time.Minute + 10*time.Second)
			requireAdmitted(t, get(next(), alice), 100, 99, time.Minute, "two windows later")
		})
	}
}

// failingCounter is a counter whose database is gone.
type failingCounter struct{}

func (failingCounter) Take(context.Context, string, schemas.RateWindow, int) (schemas.RateTake, error) {
	return schemas.RateTake{}, errors.New("connection refused")
}

func (failingCounter) Give(context.Context, string, schemas.RateWindow) error {
	return errors.New("connection refused")
}

// When the counter fails the API fails open (no RateLimit headers, counted
// as an error) and login fails closed with 503.
func TestRateLimitCounterFailure(t *testing.T) {
	t.Parallel()
	closed := anotherPool(t, testenv.DB(t))
	closed.Close()
	for name, lc := range map[string]counter{
		"postgres": schemas.NewRateCounter(closed, schemas.RateCounterOptions{Timeout: 100 * time.Millisecond}),
		"failing":  failingCounter{},
	} {
		t.Run(name, func(t *testing.T) {
			rl := newRateLimits(RateLimitConfig{}, lc, slog.New(slog.DiscardHandler))
			for range 3 {
				rec := get(rl, caller{user: uuid.New(), ip: "192.0.2.1"})
				require.Equal(t, http.StatusNoContent, rec.Code)
				for _, h := range []string{headerRateLimitLimit, headerRateLimitRemaining, headerRateLimitReset, headerRetryAfter} {
					require.Empty(t, rec.Header().Get(h), h)
				}
			}
			require.InDelta(t, 3, decisions(t, rl, "api", "error"), 0)

			ok, rec := login(rl, caller{ip: "192.0.2.1"}, "frank")
			require.False(t, ok)
			require.Equal(t, http.StatusServiceUnavailable, rec.Code)
			require.Contains(t, rec.Body.String(), `"code":"UNAVAILABLE"`)
			require.Equal(t, "1", rec.Header().Get(headerRetryAfter))
			require.InDelta(t, 1, decisions(t, rl, "login_ip", "error"), 0)
		})
	}

	// Login behind an API limiter that admitted it: the 503 drops the API
	// limiter's headers.
	rl := newRateLimits(RateLimitConfig{}, loginDown{}, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	var ok bool
	asCaller(caller{ip: "192.0.2.1"}, rl.API(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok = rl.AllowLogin(w, r, "frank")
	}))).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/auth/login", nil))
	require.False(t, ok)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "1", rec.Header().Get(headerRetryAfter))
	for _, h := range []string{headerRateLimitLimit, headerRateLimitRemaining, headerRateLimitReset} {
		require.Empty(t, rec.Header().Get(h), h)
	}
	require.InDelta(t, 1, decisions(t, rl, "api", "allowed"), 0)
	require.InDelta(t, 1, decisions(t, rl, "login_ip", "error"), 0)
}

// loginDown admits every API request and fails every login take.
type loginDown struct{}

func (loginDown) Take(_ context.Context, key string, _ schemas.RateWindow, _ int) (schemas.RateTake, error) {
	if strings.HasPrefix(key, "login:") {
		return schemas.RateTake{}, errors.New("timeout")
	}
	return schemas.RateTake{Allowed: true}, nil
}

func (loginDown) Give(context.Context, string, schemas.RateWindow) error { return nil }

// Retry-After follows httprate's sliding-window estimate: a full window frees
// its first slot only some way into the next one.
func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	for _, tc := range []struct {
		name        string
		now         time.Time
		window      time.Duration
		limit, curr int
		prev        int
		want        int
	}{
		// 100 in this window, none before: the next window starts 50 s from
		// now and admits once 100·(1−f) < 99.5, f > 0.005, i.e. 0.3 s in.
		{"full window", at(10 * time.Second), time.Minute, 100, 100, 0, 51},
		{"full window, late", at(59*time.Second + 900*time.Millisecond), time.Minute, 100, 100, 0, 1},
		// 50 now, 100 before: admits once 100·(1−f)+50 < 99.5, f > 0.505.
		{"previous window decays", at(10 * time.Second), time.Minute, 100, 50, 100, 21},
		// Overshoot (another replica): 200 in this window needs f > 0.5025
		// of the next: 50 s + 30.15 s.
		{"over the limit", at(10 * time.Second), time.Minute, 100, 200, 0, 81},
		{"login window", at(time.Minute), 15 * time.Minute, 10, 10, 0, 14*60 + 46},
		{"already free", at(time.Second), time.Minute, 100, 10, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, retryAfterSeconds(tc.now, start, tc.window, tc.limit, tc.curr, tc.prev))
		})
	}
}

// BenchmarkRateLimit measures what the API limiter adds to a request: the
// PostgreSQL counter (one round trip per request), from one client
// (latency) and from many concurrent ones (throughput: ns/op is wall time
// divided by requests), and for comparison one bare round trip and the
// in-memory counter.
// Every request is admitted (a limit no client reaches) and spread over 1000
// users, as on a busy server.
func BenchmarkRateLimit(b *testing.B) {
	const users = 1000
	callers := make([]http.Handler, users)
	build := func(rl *rateLimits) {
		h := rl.API(okHandler)
		for i := range callers {
			callers[i] = asCaller(caller{user: uuid.New(), ip: "192.0.2.1"}, h)
		}
	}
	run := func(b *testing.B, parallel bool) {
		req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
		b.ReportAllocs()
		b.ResetTimer()
		if !parallel {
			for i := 0; b.Loop(); i++ {
				rec := httptest.NewRecorder()
				callers[i%users].ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Fatalf("status %d", rec.Code)
				}
			}
			return
		}
		var next atomic.Int64
		b.SetParallelism(16) // 16 goroutines per CPU: a server's concurrent requests
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				callers[next.Add(1)%users].ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Errorf("status %d", rec.Code)
					return
				}
			}
		})
	}
	cfg := RateLimitConfig{UserLimit: 1 << 30, AdminLimit: 1 << 30}
	pool := testenv.DB(b)
	serial, parallel := replica(pool, cfg), replica(pool, cfg)
	memory := newRateLimits(cfg, nil, slog.New(slog.DiscardHandler))

	b.Run("postgres", func(b *testing.B) {
		build(serial)
		run(b, false)
	})
	b.Run("postgres-parallel", func(b *testing.B) {
		build(parallel)
		run(b, true)
	})
	b.Run("roundtrip", func(b *testing.B) { // reference: one SELECT 1
		var one int
		for b.Loop() {
			if err := pool.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memory", func(b *testing.B) {
		build(memory)
		run(b, false)
	})
}
