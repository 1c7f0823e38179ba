package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// The alert rules that watch requests: failed-login bursts, logins from an
// address or client never seen for the user, refused admin requests and
// role changes. Each hook is best effort: it logs what it cannot record and
// never fails the request it watches. Counts live in PostgreSQL
// (schemas.CountSignal), so every replica sees the same burst.

// Failed-login bursts. Per account, 5 in 10 minutes is above a person
// mistyping (two or three tries) and below the lockout
// (schemas.LockoutThreshold, 10), so the alert comes before the lock. Per
// address, 20 in 10 minutes across accounts is password spraying: one
// password tried on many accounts never trips the per-account rule, while
// honest users behind one NAT rarely fail that often together.
const (
	loginFailureWindow      = 10 * time.Minute
	loginFailuresPerAccount = 5
	loginFailuresPerAddress = 20
)

// Refused admin requests. A user who opens an admin page by mistake is
// refused once or twice; three refusals in 10 minutes is someone probing
// the admin API with a user's token.
const (
	adminRefusalWindow   = 10 * time.Minute
	adminRefusalsPerUser = 3
)

// Signal kinds counted in security_signals.
const (
	signalLoginFailureAccount = "login_failure_account" // subject: accountKey(username)
	signalLoginFailureAddress = "login_failure_address" // subject: ipKey(client address)
	signalAdminRefusal        = "admin_refusal"         // subject: user ID
)

// maxAlertUserAgent is how much of a User-Agent an alert keeps.
const maxAlertUserAgent = 256

// signalContext detaches a hook's database work from the request, so a
// client that hangs up mid-attack does not stop it being counted.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), alertWriteTimeout)
}

func (s *Server) logSignalError(ctx context.Context, rule string, err error) {
	s.deps.Logger.ErrorContext(ctx, "security alert rule failed", "rule", rule, "err", err,
		"request_id", requestID(ctx))
}

// noteLoginFailure counts a failed login (a wrong password, an unknown
// account, a wrong second factor) for username (userID: uuid.Nil when no
// such account exists) and for the client address, and raises a
// failed_login alert when either burst rule trips: medium per account (one
// alert per account while unresolved), high per address (one per address).
func (s *Server) noteLoginFailure(ctx context.Context, username string, userID uuid.UUID) {
	if s.deps.Store == nil {
		return
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	minutes := int(loginFailureWindow.Minutes())

	account := accountKey(username)
	n, err := s.deps.Store.CountSignal(ctx, signalLoginFailureAccount, account, loginFailureWindow)
	switch {
	case err != nil:
		s.logSignalError(ctx, "failed_login/account", err)
	case n >= loginFailuresPerAccount:
		s.raiseAlert(ctx, schemas.AlertInput{
			Kind: schemas.AlertFailedLogin, Severity: schemas.SeverityMedium,
			UserID: userID, Username: account,
			Message: fmt.Sprintf("%d failed logins for account %q within %d minutes", n, account, minutes),
			Details: map[string]any{"scope": "account", "failures": n, "window_minutes": minutes,
				"account_exists": userID != uuid.Nil},
			DedupKey: "failed_login:account:" + account,
		})
	}

	ip := clientIP(ctx)
	if !ip.IsValid() {
		return
	}
	key := ipKey(ip)
	n, err = s.deps.Store.CountSignal(ctx, signalLoginFailureAddress, key, loginFailureWindow)
	switch {
	case err != nil:
		s.logSignalError(ctx, "failed_login/address", err)
	case n >= loginFailuresPerAddress:
		s.raiseAlert(ctx, schemas.AlertInput{
			Kind: schemas.AlertFailedLogin, Severity: schemas.SeverityHigh, IP: ip,
			Message: fmt.Sprintf("%d failed logins from %s within %d minutes", n, key, minutes),
			Details: map[string]any{"scope": "address", "address": key, "failures": n, "window_minutes": minutes,
				"last_account": account},
			DedupKey: "failed_login:address:" + key,
		})
	}
}

// clientHash is a short, stable name for a User-Agent: known clients are
// stored by it, and alerts show it beside the (truncated) text.
func clientHash(userAgent string) string {
	sum := sha256.Sum256([]byte(userAgent))
	return hex.EncodeToString(sum[:8])
}

// noteLoginSuccess records the address (IPv4 exact, IPv6 by its /64) and
// client (User-Agent) of a completed login, and raises an unusual_access
// alert when either was never seen for the user: low for one, medium for
// both. The user's first recorded login only records: there is nothing yet
// to call it unusual against.
func (s *Server) noteLoginSuccess(ctx context.Context, u schemas.User, userAgent string) {
	if s.deps.Store == nil {
		return
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()

	var newAddress, newClient bool
	ip := clientIP(ctx)
	if ip.IsValid() {
		first, isNew, err := s.deps.Store.SeenClient(ctx, u.ID, schemas.KnownClientIP, ipKey(ip))
		if err != nil {
			s.logSignalError(ctx, "unusual_access/address", err)
		}
		newAddress = isNew && !first
	}
	userAgent = strings.TrimSpace(userAgent)
	hash := clientHash(userAgent)
	first, isNew, err := s.deps.Store.SeenClient(ctx, u.ID, schemas.KnownClientAgent, hash)
	if err != nil {
		s.logSignalError(ctx, "unusual_access/client", err)
	}
	newClient = isNew && !first
	if !newAddress && !newClient {
		return
	}

	severity, what := schemas.SeverityLow, "a new client"
	switch {
	case newAddress && newClient:
		severity, what = schemas.SeverityMedium, fmt.Sprintf("a new address (%s) and a new client", ipKey(ip))
	case newAddress:
		what = fmt.Sprintf("a new address (%s)", ipKey(ip))
	}
	s.raiseAlert(ctx, schemas.AlertInput{
		Kind: schemas.AlertUnusualAccess, Severity: severity, UserID: u.ID, Username: u.Username, IP: ip,
		Message: fmt.Sprintf("login by %s from %s", u.Username, what),
		Details: map[string]any{"new_address": newAddress, "new_client": newClient, "client_hash": hash,
			"user_agent": truncateUTF8(userAgent, maxAlertUserAgent)},
	})
}

// noteAdminRefusal counts an admin route refused to a signed-in user
// (requireRole) and raises a high privilege_escalation alert, one per user
// while unresolved, when they reach adminRefusalsPerUser within the window.
func (s *Server) noteAdminRefusal(r *http.Request, p Principal) {
	if s.deps.Store == nil || p.UserID == uuid.Nil {
		return
	}
	ctx, cancel := signalContext(r.Context())
	defer cancel()
	n, err := s.deps.Store.CountSignal(ctx, signalAdminRefusal, p.UserID.String(), adminRefusalWindow)
	if err != nil {
		s.logSignalError(ctx, "privilege_escalation/refused", err)
		return
	}
	if n < adminRefusalsPerUser {
		return
	}
	minutes := int(adminRefusalWindow.Minutes())
	s.raiseAlert(ctx, schemas.AlertInput{
		Kind: schemas.AlertPrivilegeEscalation, Severity: schemas.SeverityHigh,
		UserID: p.UserID, Username: p.Username,
		Message: fmt.Sprintf("%s (role %s) was refused %d admin requests within %d minutes",
			p.Username, p.Role, n, minutes),
		Details: map[string]any{"refused_requests": n, "window_minutes": minutes, "role": string(p.Role),
			"last_request": truncateUTF8(r.Method+" "+r.URL.Path, auditMaxString)},
		DedupKey: "privilege_escalation:refused:" + p.UserID.String(),
	})
}

// noteRoleChange raises the privilege_escalation alert about target, whose
// role actor changed from oldRole ("" for an account actor created with
// target.Role): see schemas.RoleChangeAlert.
func (s *Server) noteRoleChange(ctx context.Context, actor Principal, target schemas.User, oldRole string) {
	s.raiseAlert(ctx, schemas.RoleChangeAlert(schemas.RoleActor{UserID: actor.UserID, Username: actor.Username},
		target, oldRole))
}
