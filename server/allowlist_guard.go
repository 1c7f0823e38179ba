package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/ipset"
	"github.com/streamspace/enterprise/schemas"
)

// Enforcement of the IP allowlist (the rules: internal/ipset's package
// documentation; the API: ip_allowlist.go).
//
// Every authenticated request is checked against a compiled ipset.Policy
// held in memory, so the check costs a map lookup and a binary search, not a
// query. The policy is kept current four ways:
//
//   - loaded on first use (lazily: tests that only use Handler() need no
//     background goroutine);
//   - reloaded synchronously after this replica's own writes, before the
//     write's answer is sent, so a client sees its change take effect at once;
//   - recompiled from its own rules when its ValidUntil passes, so an expired
//     entry stops counting by the check alone, even when no workflow ran;
//   - reloaded when another replica changes the table: a trigger notifies
//     schemas.IPAllowlistChannel on every change and watchIPAllowlist LISTENs
//     on a dedicated connection (reconnecting with backoff, and reloading after
//     each reconnect to catch up), with a full reload every refreshEvery as a
//     safety net against lost notifications.
//
// Failure policy. If the allowlist was never loaded (the database could not
// be read on first use), requests are refused with 503 UNAVAILABLE: failing
// open would silently switch off a security control, and an authenticated
// request needs the database anyway (authentication reads the user's row).
// Once a policy is loaded, a failed reload keeps the last good one (logged),
// so a database blip neither locks everyone out nor drops the allowlist.

// Defaults of the cache.
const (
	allowlistRefreshEvery  = 30 * time.Second
	allowlistRetryAfter    = time.Second // a failed load is not retried sooner by requests
	allowlistReloadTimeout = 5 * time.Second
	allowlistMinBackoff    = 100 * time.Millisecond
	allowlistMaxBackoff    = 30 * time.Second
)

// allowlistGuard is the in-memory allowlist. Its zero value is ready: the
// Server's methods below load it from s.deps.Store on first use.
type allowlistGuard struct {
	// now is the clock expiry is judged by; nil: time.Now. Tests move it to
	// expire entries without waiting.
	now func() time.Time
	// refreshEvery is the period of the safety-net full reload of
	// watchIPAllowlist; 0: allowlistRefreshEvery.
	refreshEvery time.Duration

	policy atomic.Pointer[ipset.Policy] // nil until the first successful load
	dirty  atomic.Bool                  // a reload failed after a change: load again before trusting policy

	mu        sync.Mutex // serialises loads and recompiles, so a newer load is never overwritten by an older one
	failedAt  time.Time  // when the last load failed (guarded by mu)
	failedErr error      // and why
}

func (g *allowlistGuard) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// errAllowlistUnavailable answers requests while no allowlist was ever loaded.
func errAllowlistUnavailable() *Error {
	return Errorf(CodeUnavailable, "the IP allowlist could not be loaded from the database; try again shortly")
}

// ipRules turns stored entries into the policy's rules.
func ipRules(entries []schemas.IPEntry) []ipset.Rule {
	rules := make([]ipset.Rule, 0, len(entries))
	for _, e := range entries {
		r := ipset.Rule{ID: e.ID, UserID: e.UserID, Prefix: e.Prefix, Granted: e.Granted, Restricted: e.Restricted}
		if e.ExpiresAt != nil {
			r.ExpiresAt = *e.ExpiresAt
		}
		rules = append(rules, r)
	}
	return rules
}

// allowlistPolicy is the compiled allowlist in force now: the cached one,
// recompiled if an entry expired since, or loaded if there is none yet (or
// the last reload after a change failed). Error: none could ever be loaded.
func (s *Server) allowlistPolicy(ctx context.Context) (*ipset.Policy, error) {
	g := &s.allowlist
	p := g.policy.Load()
	if p != nil && !g.dirty.Load() && !p.Stale(g.clock()) {
		return p, nil // the fast path: no lock
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p = g.policy.Load()
	now := g.clock()
	if p == nil || g.dirty.Load() {
		// A load that failed a moment ago is not retried by every waiting
		// request: they use the last good policy, or fail closed.
		if g.failedErr == nil || now.Sub(g.failedAt) >= allowlistRetryAfter || now.Before(g.failedAt) {
			np, err := s.loadAllowlistLocked(ctx)
			if err == nil {
				return np, nil
			}
			s.deps.Logger.WarnContext(ctx, "ip allowlist: load failed", "err", err, "have_previous", p != nil)
		}
		if p == nil {
			return nil, errAllowlistUnavailable()
		}
	}
	if p.Stale(now) {
		p = ipset.Compile(p.Rules(), now)
		g.policy.Store(p)
	}
	return p, nil
}

// loadAllowlistLocked reads the active entries and compiles them; g.mu held.
func (s *Server) loadAllowlistLocked(ctx context.Context) (*ipset.Policy, error) {
	g := &s.allowlist
	if s.deps.Store == nil || s.deps.Store.Pool == nil {
		return nil, errors.New("ip allowlist: no database configured")
	}
	entries, err := s.deps.Store.ListActiveIPEntries(ctx)
	if err != nil {
		if ctx.Err() == nil { // a caller that gave up says nothing about the database
			g.failedAt, g.failedErr = g.clock(), err
		}
		return nil, err
	}
	p := ipset.Compile(ipRules(entries), g.clock())
	g.policy.Store(p)
	g.dirty.Store(false)
	g.failedAt, g.failedErr = time.Time{}, nil
	return p, nil
}

// reloadAllowlist reads the allowlist again now (after a change). On
// failure the last good policy stays in use and the next request tries
// again.
func (s *Server) reloadAllowlist(ctx context.Context) error {
	g := &s.allowlist
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := s.loadAllowlistLocked(ctx); err != nil {
		g.dirty.Store(true)
		return fmt.Errorf("reload ip allowlist: %w", err)
	}
	return nil
}

// reloadAllowlistAfterWrite is reloadAllowlist after this replica committed
// a change: on its own context, so a client that hangs up does not cut it
// short, and logged rather than failed (the change is committed; the next
// request retries the load).
func (s *Server) reloadAllowlistAfterWrite(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), allowlistReloadTimeout)
	defer cancel()
	if err := s.reloadAllowlist(ctx); err != nil {
		s.deps.Logger.WarnContext(ctx, "ip allowlist: reload after change failed; retried on the next request", "err", err)
	}
}

// checkIPAllowlist decides whether userID may act from the request's client
// address (clientIP: the trusted resolver's answer, never a header read
// here). The login and token refresh handlers call it once the credentials
// checked out, and enforceIPAllowlist for every authenticated request. The
// error is a 503 when no allowlist could ever be loaded.
func (s *Server) checkIPAllowlist(ctx context.Context, userID uuid.UUID) (ipset.Verdict, error) {
	p, err := s.allowlistPolicy(ctx)
	if err != nil {
		return ipset.Verdict{}, err
	}
	return p.Check(userID, clientIP(ctx)), nil
}

// ipRefused records a refusal by the allowlist — the audit action
// security.ip_denied with the reason, and an ip_violation alert (repeats from
// one address fold into one open alert) — and returns the 403
// IP_NOT_ALLOWED to answer with.
func (s *Server) ipRefused(ctx context.Context, userID uuid.UUID, username string, v ipset.Verdict) *Error {
	ip := clientIP(ctx)
	addr := addrString(ip)
	auditSetAction(ctx, "security.ip_denied")
	auditSetDetail(ctx, "client_ip", addr)
	auditSetDetail(ctx, "reason", string(v.Reason))
	shown := addr
	if shown == "" {
		shown = "unknown"
	}
	s.raiseAlert(ctx, schemas.AlertInput{
		Kind:     schemas.AlertIPViolation,
		Severity: schemas.SeverityHigh,
		UserID:   userID,
		Username: username,
		IP:       ip,
		Message:  fmt.Sprintf("request by %s from %s refused: the address is not on the IP allowlist", username, shown),
		Details:  map[string]any{"client_ip": addr, "reason": string(v.Reason)},
		DedupKey: fmt.Sprintf("%s:%s:%s", schemas.AlertIPViolation, userID, shown),
	})
	return &Error{Code: CodeIPNotAllowed,
		Message: fmt.Sprintf("your address %s is not on the IP allowlist", shown),
		Details: map[string]any{"client_ip": addr}}
}

// requireAllowedAddress is nil when userID may act from the request's client
// address, else the refusal (recorded by ipRefused) or a 503 when no
// allowlist could be loaded. The middleware, login and refresh use it.
func (s *Server) requireAllowedAddress(ctx context.Context, userID uuid.UUID, username string) error {
	v, err := s.checkIPAllowlist(ctx, userID)
	if err != nil {
		return err
	}
	if !v.Allowed {
		return s.ipRefused(ctx, userID, username, v)
	}
	return nil
}

// enforceIPAllowlist refuses authenticated requests from addresses outside
// the caller's allowlist (403 IP_NOT_ALLOWED, audited, alerted). It sits
// right after authenticate, so it knows the caller; local and OIDC
// principals are checked alike.
func (s *Server) enforceIPAllowlist(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, ok := principalFrom(ctx)
		if !ok {
			writeError(w, r, s.deps.Logger, Errorf(CodeUnauthorized, "missing bearer token"))
			return
		}
		if err := s.requireAllowedAddress(ctx, p.UserID, p.Username); err != nil {
			writeError(w, r, s.deps.Logger, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowlistLockoutCheck is the self-lockout guard: judged inside tx, after
// the change and before it commits, would the caller's own current request
// still be admitted? If not, the change is refused with 409 LOCKOUT_RISK
// (which rolls tx back) unless force is set; a forced override is recorded
// in the audit details.
func (s *Server) allowlistLockoutCheck(ctx context.Context, tx pgx.Tx, force bool) error {
	p, _ := principalFrom(ctx)
	entries, err := schemas.ListActiveIPEntriesTx(ctx, tx)
	if err != nil {
		return err
	}
	ip := clientIP(ctx)
	v := ipset.Compile(ipRules(entries), s.allowlist.clock()).Check(p.UserID, ip)
	if v.Allowed {
		return nil
	}
	addr := addrString(ip)
	if force {
		auditSetDetail(ctx, "force", true)
		auditSetDetail(ctx, "lockout_overridden", true)
		auditSetDetail(ctx, "client_ip", addr)
		return nil
	}
	shown := addr
	if shown == "" {
		shown = "(unknown)"
	}
	return &Error{Code: CodeLockoutRisk,
		Message: fmt.Sprintf("this change would refuse your own current address %s; add an entry that covers it first, "+
			"or repeat the request with force to apply it anyway", shown),
		Details: map[string]any{"client_ip": addr, "reason": string(v.Reason)}}
}

// watchIPAllowlist keeps this replica's allowlist in step with changes made
// elsewhere until ctx ends: it LISTENs for the table's notifications and
// also reloads everything every refreshEvery. Server.Serve runs it.
func (s *Server) watchIPAllowlist(ctx context.Context) {
	if s.deps.Store == nil || s.deps.Store.Pool == nil {
		return
	}
	every := s.allowlist.refreshEvery
	if every <= 0 {
		every = allowlistRefreshEvery
	}
	kick := make(chan struct{}, 1) // one pending reload absorbs a burst of notifications
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.listenIPAllowlist(ctx, kick) })
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
		if err := s.reloadAllowlist(ctx); err != nil && ctx.Err() == nil {
			s.deps.Logger.WarnContext(ctx, "ip allowlist: reload failed; keeping the last good list", "err", err)
		}
	}
}

func kickReload(kick chan<- struct{}) {
	select {
	case kick <- struct{}{}:
	default: // a reload is already pending
	}
}

// listenIPAllowlist holds a LISTEN on the allowlist channel and signals kick
// for each notification, reconnecting with exponential backoff when the
// connection is lost.
func (s *Server) listenIPAllowlist(ctx context.Context, kick chan<- struct{}) {
	backoff := allowlistMinBackoff
	for {
		err := s.listenIPAllowlistOnce(ctx, kick, func() { backoff = allowlistMinBackoff })
		if ctx.Err() != nil {
			return
		}
		s.deps.Logger.WarnContext(ctx, "ip allowlist: listener lost its connection; reconnecting",
			"err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, allowlistMaxBackoff)
	}
}

// listenIPAllowlistOnce runs one LISTEN connection until it fails or ctx
// ends. The connection is taken out of the pool (it carries LISTEN state no
// other user should inherit) and closed at the end.
func (s *Server) listenIPAllowlistOnce(ctx context.Context, kick chan<- struct{}, connected func()) error {
	pc, err := s.deps.Store.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	conn := pc.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{schemas.IPAllowlistChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	kickReload(kick) // catch up with changes made while nobody listened
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		kickReload(kick)
	}
}

// allowlistNow is the allowlist's clock, for the API's expiry checks and
// "active" flags (the same clock the check uses).
func (s *Server) allowlistNow() time.Time { return s.allowlist.clock() }

// addrString is a's text, or "" when the address is unknown.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
