package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/httprate"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamspace/enterprise/schemas"
)

// RateLimitConfig sets the seed's rate-limit tiers and the login limits.
// Zero fields take the defaults (WithDefaults).
//
// The login limits count failed sign-ins only (AllowLogin): a successful one
// gives its count back. LoginPerAccountIP is below the lockout threshold
// (schemas.LockoutThreshold, 10), so one address alone cannot lock an
// account; LoginPerAccount bounds the guesses on one account from all
// addresses together; LoginPerIP bounds one address's guesses over all
// accounts (a spray of one password over many names).
type RateLimitConfig struct {
	Window            time.Duration // API window (1 minute)
	UserLimit         int           // API requests per Window for a user, and per client IP before login (100)
	AdminLimit        int           // API requests per Window for an admin (1000)
	LoginPerAccountIP int           // failed logins per LoginWindow for one username from one client IP (5)
	LoginPerAccount   int           // failed logins per LoginWindow for one username from all addresses (50)
	LoginPerIP        int           // failed logins per LoginWindow from one client IP over all usernames (30)
	LoginWindow       time.Duration // login window (15 minutes)
}

// WithDefaults fills the zero (or negative) fields with the defaults.
func (c RateLimitConfig) WithDefaults() RateLimitConfig {
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.UserLimit <= 0 {
		c.UserLimit = 100
	}
	if c.AdminLimit <= 0 {
		c.AdminLimit = 1000
	}
	if c.LoginPerAccountIP <= 0 {
		c.LoginPerAccountIP = 5
	}
	if c.LoginPerAccount <= 0 {
		c.LoginPerAccount = 50
	}
	if c.LoginPerIP <= 0 {
		c.LoginPerIP = 30
	}
	if c.LoginWindow <= 0 {
		c.LoginWindow = 15 * time.Minute
	}
	return c
}

// The headers of draft-ietf-httpapi-ratelimit-headers (RateLimit-Reset is in
// delta seconds, not a timestamp) and RFC 9110's Retry-After.
const (
	headerRateLimitLimit     = "RateLimit-Limit"
	headerRateLimitRemaining = "RateLimit-Remaining"
	headerRateLimitReset     = "RateLimit-Reset"
	headerRetryAfter         = "Retry-After"
)

// rateLimits applies the API tiers and the login limits.
//
// Failure policy when the counter fails (the database is down or slower than
// the counter's timeout): the API fails OPEN, the request goes on without
// RateLimit headers, the error is logged (at most every 10 s) and counted in
// streamspace_rate_limit_decisions_total{result="error"}. A blip must not
// turn into a 429 for everyone, and the handlers behind the limiter need the
// database anyway, so they report a real outage themselves. Login fails
// CLOSED with 503 UNAVAILABLE: it is the one place worth brute-forcing, and
// it cannot succeed without the database anyway, so refusing costs nothing
// while the database is really down, and password guessing is never
// unmetered.
type rateLimits struct {
	cfg         RateLimitConfig
	logger      *slog.Logger
	api         *limiter
	loginIP     *limiter
	loginAcctIP *limiter
	loginAcct   *limiter
	decisions   *prometheus.CounterVec
	lastLog     atomic.Int64 // unix nanoseconds of the last counter-error log line
	now         func() time.Time
}

// newRateLimits builds the limits over c, shared by every limit (the keys do
// not overlap). A *schemas.RateCounter decides and counts each request in one
// database round trip, shared by every replica. A nil c keeps the counts in
// process memory, per replica: for tests and single-process setups only.
func newRateLimits(cfg RateLimitConfig, c counter, logger *slog.Logger) *rateLimits {
	cfg = cfg.WithDefaults()
	rl := &rateLimits{
		cfg:    cfg,
		logger: logger,
		now:    time.Now,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "streamspace_rate_limit_decisions_total",
			Help: "Rate-limit decisions by limiter (api, login_ip, login_account_ip, login_account) and result (allowed, limited, error).",
		}, []string{"limiter", "result"}),
	}
	rl.api = newLimiter("api", cfg.UserLimit, cfg.Window, c)
	rl.loginIP = newLimiter("login_ip", cfg.LoginPerIP, cfg.LoginWindow, c)
	rl.loginAcctIP = newLimiter("login_account_ip", cfg.LoginPerAccountIP, cfg.LoginWindow, c)
	rl.loginAcct = newLimiter("login_account", cfg.LoginPerAccount, cfg.LoginWindow, c)
	for _, l := range []*limiter{rl.api, rl.loginIP, rl.loginAcctIP, rl.loginAcct} {
		for _, res := range []string{"allowed", "limited", "error"} {
			rl.decisions.WithLabelValues(l.name, res) // export zeros
		}
	}
	return rl
}

// Collectors are the limiter's metrics, for the server's registry.
func (rl *rateLimits) Collectors() []prometheus.Collector {
	return []prometheus.Collector{rl.decisions}
}

// API limits every request by who makes it: "user:<id>" with the role's
// limit when the request has a principal (so it must run after
// authentication), else "ip:<client IP>" with the user limit. Over the
// limit it answers 429 RATE_LIMITED with Retry-After; every answer it lets
// through carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
func (rl *rateLimits) API(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, limit := "", rl.cfg.UserLimit
		if p, ok := principalFrom(r.Context()); ok && p.UserID != uuid.Nil {
			key = "user:" + p.UserID.String()
			if p.IsAdmin() {
				limit = rl.cfg.AdminLimit
			}
		} else {
			key = "ip:" + ipKey(clientIP(r.Context()))
		}
		d := rl.take(r, rl.api, key, limit)
		switch {
		case d.err != nil:
			rl.counterFailed(r, rl.api, d.err)
		case !d.Allowed:
			rl.reject(w, r, rl.api, d, "too many requests: the limit is %d per %s")
			return
		default:
			rl.allowed(w, rl.api, d)
		}
		next.ServeHTTP(w, r)
	})
}

// AllowLogin admits a login attempt under the failed-login limits of the
// client IP, of the (account, client IP) pair and of the account
// (lower-cased username), and counts it against each, before the password
// is checked: counting first keeps concurrent guesses from overshooting a
// limit. When a limit is exhausted it answers 429 RATE_LIMITED (503
// UNAVAILABLE if the counter fails) and returns false; the caller then
// returns without writing anything. Otherwise the caller calls
// LoginSucceeded on the attempt once the credentials check out, which gives
// the counts back: only failures stay counted.
//
// The address is checked first, then the pair, then the account: an address
// over its limit does not use up the allowance of the accounts it tries, so
// it cannot shut their owners out, and an address over its limit on one
// account leaves the account's ceiling alone. An attempt refused by a later
// limit still counts against the earlier ones.
func (rl *rateLimits) AllowLogin(w http.ResponseWriter, r *http.Request, username string) (*loginAttempt, bool) {
	const msg = "too many failed login attempts: the limit is %d per %s"
	ip, acct := ipKey(clientIP(r.Context())), accountKey(username)
	limits := []struct {
		l     *limiter
		key   string
		limit int
	}{
		{rl.loginIP, "login:ip:" + ip, rl.cfg.LoginPerIP},
		// The address never contains a space, so the pair's key is unique.
		{rl.loginAcctIP, "login:account-ip:" + ip + " " + acct, rl.cfg.LoginPerAccountIP},
		{rl.loginAcct, "login:account:" + acct, rl.cfg.LoginPerAccount},
	}
	a := &loginAttempt{}
	var tightest *limiter
	var tight decision
	for _, lim := range limits {
		d := rl.take(r, lim.l, lim.key, lim.limit)
		if !rl.loginAdmitted(w, r, lim.l, d, msg) {
			return nil, false
		}
		a.taken = append(a.taken, loginTaken{l: lim.l, key: lim.key, window: d.window})
		// The headers describe the tightest limit (the first on a tie).
		if tightest == nil || d.remaining() < tight.remaining() {
			tightest, tight = lim.l, d
		}
	}
	rl.allowed(w, tightest, tight)
	return a, true
}

// loginAttempt is what AllowLogin counted for one admitted attempt.
type loginAttempt struct {
	taken []loginTaken
}

type loginTaken struct {
	l      *limiter
	key    string
	window schemas.RateWindow
}

// LoginSucceeded gives back what AllowLogin counted for a, because its
// credentials checked out: successful sign-ins do not count toward the
// login limits. A failure to give back is logged and leaves the count (one
// attempt too many, never too few).
func (rl *rateLimits) LoginSucceeded(ctx context.Context, a *loginAttempt) {
	for _, t := range a.taken {
		if err := t.l.counter.Give(ctx, t.key, t.window); err != nil {
			rl.logger.WarnContext(ctx, "rate limit counter: give back a successful login's count",
				"limiter", t.l.name, "err", err, "request_id", requestID(ctx))
		}
	}
}

func (rl *rateLimits) loginAdmitted(w http.ResponseWriter, r *http.Request, l *limiter, d decision, msg string) bool {
	switch {
	case d.err != nil:
		rl.counterFailed(r, l, d.err)
		clearRateLimitHeaders(w) // the API limiter's, set before the handler ran
		w.Header().Set(headerRetryAfter, "1")
		writeError(w, r, rl.logger, Errorf(CodeUnavailable, "login is temporarily unavailable; retry shortly"))
		return false
	case !d.Allowed:
		rl.reject(w, r, l, d, msg)
		return false
	}
	return true
}

// allowed sets the headers of an admitted request; RateLimit-Reset is the
// number of seconds until the current window ends.
func (rl *rateLimits) allowed(w http.ResponseWriter, l *limiter, d decision) {
	rl.decisions.WithLabelValues(l.name, "allowed").Inc()
	h := w.Header()
	h.Set(headerRateLimitLimit, strconv.Itoa(d.limit))
	h.Set(headerRateLimitRemaining, strconv.Itoa(d.remaining()))
	h.Set(headerRateLimitReset, strconv.Itoa(ceilSeconds(d.window.Start.Add(d.window.Length).Sub(d.now))))
}

// reject answers 429 with the envelope; Retry-After (and RateLimit-Reset) is
// the number of seconds until the window admits one more request.
func (rl *rateLimits) reject(w http.ResponseWriter, r *http.Request, l *limiter, d decision, format string) {
	rl.decisions.WithLabelValues(l.name, "limited").Inc()
	secs := retryAfterSeconds(d.now, d.window.Start, d.window.Length, d.limit, d.Curr, d.Prev)
	h := w.Header()
	h.Set(headerRateLimitLimit, strconv.Itoa(d.limit))
	h.Set(headerRateLimitRemaining, "0")
	h.Set(headerRateLimitReset, strconv.Itoa(secs))
	h.Set(headerRetryAfter, strconv.Itoa(secs))
	e := Errorf(CodeRateLimited, format, d.limit, humanDuration(d.window.Length))
	e.Details = map[string]any{"retry_after_seconds": secs, "limit": d.limit}
	writeError(w, r, rl.logger, e)
}

func (rl *rateLimits) counterFailed(r *http.Request, l *limiter, err error) {
	rl.decisions.WithLabelValues(l.name, "error").Inc()
	now := rl.now().UnixNano()
	last := rl.lastLog.Load()
	if now-last >= int64(10*time.Second) && rl.lastLog.CompareAndSwap(last, now) {
		policy := "failing open"
		if l != rl.api {
			policy = "failing closed"
		}
		rl.logger.ErrorContext(r.Context(), "rate limit counter failed; "+policy,
			"limiter", l.name, "err", err, "request_id", requestID(r.Context()))
	}
}

func clearRateLimitHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Del(headerRateLimitLimit)
	h.Del(headerRateLimitRemaining)
	h.Del(headerRateLimitReset)
}

// limiter is one limit: a window length and the counter it counts on (the
// request limit is the caller's, by tier).
type limiter struct {
	name    string
	window  time.Duration
	counter counter
}

// counter decides and counts one request for key in window w against limit,
// atomically, and gives a counted one back (never below zero).
type counter interface {
	Take(ctx context.Context, key string, w schemas.RateWindow, limit int) (schemas.RateTake, error)
	Give(ctx context.Context, key string, w schemas.RateWindow) error
}

func newLimiter(name string, limit int, window time.Duration, c counter) *limiter {
	if c == nil {
		// httprate's in-memory counter tracks one window length only, so
		// each limiter gets its own.
		lc := httprate.NewLocalLimitCounter(window)
		lc.Config(limit, window)
		c = &lockedCounter{lc: lc}
	}
	return &limiter{name: name, window: window, counter: c}
}

// decision is the outcome of one take.
type decision struct {
	schemas.RateTake
	err    error // the counter failed; RateTake is meaningless
	limit  int
	now    time.Time
	window schemas.RateWindow
}

// remaining is RateLimit-Remaining of an admitted request.
func (d decision) remaining() int {
	// Never negative, even if the database's float arithmetic admitted a
	// request right at the boundary that this one would not.
	return max(0, d.window.Remaining(d.limit, d.Curr, d.Prev))
}

// take counts the request against key in l with the given limit.
func (rl *rateLimits) take(r *http.Request, l *limiter, key string, limit int) decision {
	d := decision{limit: limit, now: rl.now()}
	d.window = schemas.RateWindowAt(d.now, l.window)
	d.RateTake, d.err = l.counter.Take(r.Context(), key, d.window, limit)
	return d
}

// lockedCounter takes through httprate's in-memory counter, its Get and then
// its IncrementBy, under a mutex.
type lockedCounter struct {
	mu sync.Mutex
	lc httprate.LimitCounter
}

func (c *lockedCounter) Take(_ context.Context, key string, w schemas.RateWindow, limit int) (t schemas.RateTake, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Curr, t.Prev, err = c.lc.Get(key, w.Start, w.Start.Add(-w.Length))
	if err != nil || w.Remaining(limit, t.Curr, t.Prev) < 0 {
		return t, err
	}
	if err = c.lc.IncrementBy(key, w.Start, 1); err != nil {
		return t, err
	}
	t.Allowed = true
	return t, nil
}

// Give takes one back from key's count in w. httprate's counter keeps only
// the latest window and adds to it whatever window is named, so once w is
// no longer the latest (its curr then reads 0) nothing is given back.
func (c *lockedCounter) Give(_ context.Context, key string, w schemas.RateWindow) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	curr, _, err := c.lc.Get(key, w.Start, w.Start.Add(-w.Length))
	if err != nil || curr == 0 {
		return err
	}
	return c.lc.IncrementBy(key, w.Start, -1)
}

// ipKey is the client address as a limit key: IPv4 as is, IPv6 by its /64
// (a client usually holds a whole /64 and could rotate through it), an
// unknown address as "unknown" (one shared bucket, stricter, never looser).
func ipKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// accountKey is the lower-cased username. A name longer than any valid
// username (64) is hashed, so a client cannot make the key arbitrarily long.
func accountKey(username string) string {
	name := strings.ToLower(strings.TrimSpace(username))
	if len(name) > 64 {
		sum := sha256.Sum256([]byte(name))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return name
}

// retryAfterSeconds is how many whole seconds from now until httprate's
// sliding-window estimate admits one more request, assuming nothing else is
// admitted meanwhile. httprate admits when round(E)+1 <= limit, where
// E = prev·(1 − elapsed/window) + curr, i.e. when E < limit − ½. Because the
// previous window weighs in, a window that has filled up frees its first slot
// only some way into the next one. The result is at least 1.
func retryAfterSeconds(now, start time.Time, window time.Duration, limit, curr, prev int) int {
	threshold := float64(limit) - 0.5
	var at time.Time
	switch {
	case float64(curr) < threshold && prev > 0:
		// Freed within this window once the previous one has decayed enough.
		f := 1 - (threshold-float64(curr))/float64(prev)
		at = start.Add(time.Duration(f * float64(window)))
	case float64(curr) < threshold:
		at = now // not actually limited (a concurrent change); retry at once
	default:
		// This window's own count is too high: wait for the next window,
		// where it becomes the previous one and decays.
		f := 1 - threshold/float64(curr)
		at = start.Add(window).Add(time.Duration(f * float64(window)))
	}
	// Strictly after the instant: the estimate must fall below the threshold.
	secs := int(at.Sub(now)/time.Second) + 1
	return max(secs, 1)
}

// ceilSeconds rounds d up to whole seconds (at least 0).
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// humanDuration writes a window as "minute", "15 minutes", "hour", "30s" …
func humanDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	case d%time.Second == 0:
		return unit(int64(d/time.Second), "second")
	}
	return d.String()
}
