package server

import (
	"errors"
	"net/http"
	"time"

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
// will answer {"mfa_required": true, "mfa_token": ..., "methods": [...]}
// instead (the security feature), so clients check mfa_required first.
type tokenResponse struct {
	AccessToken      string   `json:"access_token"`
	TokenType        string   `json:"token_type"`
	ExpiresIn        int      `json:"expires_in"`
	RefreshToken     string   `json:"refresh_token"`
	RefreshExpiresIn int      `json:"refresh_expires_in"`
	MFARequired      bool     `json:"mfa_required"`
	User             userJSON `json:"user"`
}

var errBadCredentials = Errorf(CodeUnauthorized, "invalid username or password")

// login checks a username and password and starts a session: a short-lived
// access JWT and a rotating refresh token. Every attempt is audited.
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
	if !s.rateLimits.AllowLogin(w, r, req.Username) {
		return nil // answered 429 (or 503)
	}
	u, err := s.deps.Store.GetUserByUsername(ctx, req.Username)
	switch {
	case errors.Is(err, schemas.ErrNotFound):
		password.Check(req.Password, "") // same cost as a real check: no user enumeration by timing
		return errBadCredentials
	case err != nil:
		return err
	case !password.Check(req.Password, u.PasswordHash):
		return errBadCredentials
	case !u.Active:
		return Errorf(CodeUnauthorized, "account is deactivated")
	}
	auditSetActor(ctx, principalOf(u, "local"))
	if err := s.deps.Store.TouchLogin(ctx, u.ID); err != nil {
		return err
	}
	rt, err := s.deps.Store.IssueRefreshToken(ctx, u.ID, s.cfg.RefreshTTL)
	if err != nil {
		return err
	}
	return s.respondTokens(w, u, rt)
}

func (s *Server) respondTokens(w http.ResponseWriter, u schemas.User, rt schemas.RefreshToken) error {
	access, exp, err := s.deps.Tokens.Issue(u.ID, u.Username, u.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:      access,
		TokenType:        "Bearer",
		ExpiresIn:        int(time.Until(exp).Round(time.Second).Seconds()),
		RefreshToken:     rt.Token,
		RefreshExpiresIn: int(time.Until(rt.ExpiresAt).Round(time.Second).Seconds()),
		User:             toUserJSON(u),
	})
	return nil
}

// refresh exchanges a refresh token for a new pair. A token presented a
// second time revokes its whole session (someone copied it).
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
	return s.respondTokens(w, u, rt)
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
