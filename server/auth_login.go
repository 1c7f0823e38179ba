package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/internal/password"
	"github.com/streamspace/enterprise/schemas"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// tokenResponse is a completed login. A login that needs a second factor
// answers mfaChallengeResponse instead, so clients check mfa_required first.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	MFARequired      bool   `json:"mfa_required"`
	// MFAEnrollmentRequired: an MFA policy covers the user, who has no
	// method yet; until they enrol, only /api/me and /api/security/mfa
	// answer.
	MFAEnrollmentRequired bool     `json:"mfa_enrollment_required,omitempty"`
	User                  userJSON `json:"user"`
}

var errBadCredentials = Errorf(CodeUnauthorized, "invalid username or password")

// timeNow is the server's clock for lockouts (a variable for tests).
var timeNow = time.Now

// login checks a username and password. A user without MFA gets a session
// (a short-lived access JWT and a rotating refresh token); a user with MFA
// gets an mfa_token to complete with POST /api/auth/mfa. Every attempt is
// audited.
//
// Lockout: 10 consecutive failures (wrong password or wrong MFA code) lock
// the account for 30 minutes (PCI DSS 8.3.4) and raise an alert. While it is
// locked the password is not even checked, so the lock cannot be used to
// test guesses. The login rate limits (failures per address, per account
// and address, per account: ratelimit.go) apply first; every attempt that
// does not get this far (unknown user, locked, wrong password, deactivated)
// stays counted, the others are given back.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	auditSetAction(ctx, "auth.login")
	auditSetDetail(ctx, "username", req.Username)
	if req.Username == "" {
		return fieldError("username", "required")
	}
	if req.Password == "" {
		return fieldError("password", "required")
	}
	attempt, ok := s.rateLimits.AllowLogin(w, r, req.Username)
	if !ok {
		return nil // answered 429 (or 503)
	}
	u, err := s.deps.Store.GetUserByUsername(ctx, req.Username)
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		password.Check(req.Password, "") // same cost as a real check: no user enumeration by timing
		s.noteLoginFailure(ctx, req.Username, uuid.Nil)
		return errBadCredentials
	case err != nil:
		return err
	case u.Locked(timeNow()):
		auditSetDetail(ctx, "outcome", "locked")
		s.noteLoginFailure(ctx, u.Username, u.ID) // a spray over locked accounts still counts per address
		return errAccountLocked(u)
	case !password.Check(req.Password, u.PasswordHash):
		auditSetDetail(ctx, "outcome", "bad_password")
		if err := s.recordFailure(ctx, u, "password"); err != nil {
			return err
		}
		return errBadCredentials
	case !u.Active:
		return Errorf(CodeUnauthorized, "account is deactivated")
	}
	// The credentials checked out: this attempt is no failure, so it does
	// not count toward the login limits.
	s.rateLimits.LoginSucceeded(ctx, attempt)
	auditSetActor(ctx, principalOf(u, "local"))
	if err := s.requireAllowedAddress(ctx, u.ID, u.Username); err != nil {
		return err
	}
	if u.MFAEnabled {
		return s.startMFAChallenge(ctx, w, u)
	}
	return s.completeLogin(ctx, w, r, u)
}

// completeLogin starts the session of a user who passed every check.
func (s *Server) completeLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, u schemas.User) error {
	if err := s.deps.Store.ResetLoginFailures(ctx, u.ID); err != nil {
		return err
	}
	if err := s.deps.Store.TouchLogin(ctx, u.ID); err != nil {
		return err
	}
	s.noteLoginSuccess(ctx, u, r.UserAgent())
	rt, err := s.deps.Store.IssueRefreshToken(ctx, u.ID, s.cfg.RefreshTTL)
	if err != nil {
		return err
	}
	enrol, err := s.mfaRequiredFor(ctx, u)
	if err != nil {
		return err
	}
	return s.respondTokens(w, u, rt, enrol && !u.MFAEnabled)
}

// recordFailure counts a failed login (or a wrong fresh MFA code) toward the
// lockout and the failed-login alerts; the lock raises its own alert.
func (s *Server) recordFailure(ctx context.Context, u schemas.User, what string) error {
	s.noteLoginFailure(ctx, u.Username, u.ID)
	locked, lockedNow, err := s.deps.Store.RecordLoginFailure(ctx, u.ID)
	if err != nil {
		return err
	}
	if lockedNow {
		s.raiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertFailedLogin, Severity: schemas.SeverityHigh,
			UserID: u.ID, Username: u.Username,
			Message:  "account locked after 10 consecutive failed sign-in attempts",
			Details:  map[string]any{"locked_until": locked.LockedUntil, "last_failure": what},
			DedupKey: "failed_login:locked:" + u.ID.String()})
	}
	return nil
}

func errAccountLocked(u schemas.User) *Error {
	return &Error{Code: CodeAccountLocked,
		Message: "the account is locked after too many failed sign-in attempts; try again later or ask an administrator",
		Details: map[string]any{"locked_until": u.LockedUntil}}
}

func (s *Server) respondTokens(w http.ResponseWriter, u schemas.User, rt schemas.RefreshToken, enrol bool) error {
	access, exp, err := s.deps.Tokens.Issue(u.ID, u.Username, u.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:           access,
		TokenType:             "Bearer",
		ExpiresIn:             int(time.Until(exp).Round(time.Second).Seconds()),
		RefreshToken:          rt.Token,
		RefreshExpiresIn:      int(time.Until(rt.ExpiresAt).Round(time.Second).Seconds()),
		MFAEnrollmentRequired: enrol,
		User:                  toUserJSON(u),
	})
	return nil
}

// refresh exchanges a refresh token for a new pair. A token presented a
// second time revokes its whole session (someone copied it). The allowlist
// applies here too: a session does not outlive a move to a refused address.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return fieldError("refresh_token", "required")
	}
	ctx := r.Context()
	auditSetAction(ctx, "auth.refresh")
	rt, err := s.deps.Store.RotateRefreshToken(ctx, req.RefreshToken, s.cfg.RefreshTTL)
	switch {
	case errors.Is(err, schemas.ErrRefreshReused):
		s.deps.Logger.WarnContext(ctx, "refresh token reuse detected; session revoked",
			"request_id", requestID(ctx), "client_ip", clientIP(ctx).String())
		return Errorf(CodeUnauthorized, "refresh token already used; the session has been revoked")
	case errors.Is(err, schemas.ErrRefreshInvalid):
		return Errorf(CodeUnauthorized, "refresh token invalid or expired")
	case err != nil:
		return err
	}
	u, err := s.deps.Store.GetUser(ctx, rt.UserID)
	if err != nil {
		return err
	}
	auditSetActor(ctx, principalOf(u, "local"))
	if !u.Active {
		return Errorf(CodeUnauthorized, "account is deactivated")
	}
	if err := s.requireAllowedAddress(ctx, u.ID, u.Username); err != nil {
		return err
	}
	enrol, err := s.mfaRequiredFor(ctx, u)
	if err != nil {
		return err
	}
	return s.respondTokens(w, u, rt, enrol && !u.MFAEnabled)
}

// logout revokes the session the refresh token belongs to. Access tokens
// already issued stay valid until they expire (minutes).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	auditSetAction(r.Context(), "auth.logout")
	var req refreshRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return fieldError("refresh_token", "required")
	}
	if _, err := s.deps.Store.RevokeRefreshFamily(r.Context(), req.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
