package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/streamspace/enterprise/schemas"
)

// The second step of a login with MFA:
//
//	POST /api/auth/login      → {"mfa_required":true,"mfa_token","methods":[…],"expires_in":300}
//	POST /api/auth/mfa/send   {mfa_token, method: sms|email} sends a code
//	POST /api/auth/mfa        {mfa_token, method, code} → the tokens of a login
//
// The mfa_token is random, stored as its SHA-256, good for 5 minutes, 5
// wrong codes and one success. Wrong codes also count toward the account
// lockout, so a stolen password buys at most 10 guesses per 30 minutes.

const (
	mfaChallengeTTL      = 5 * time.Minute
	mfaChallengeAttempts = 5
)

type mfaChallengeResponse struct {
	MFARequired bool     `json:"mfa_required"`
	MFAToken    string   `json:"mfa_token"`
	Methods     []string `json:"methods"`
	ExpiresIn   int      `json:"expires_in"`
}

type mfaLoginRequest struct {
	MFAToken string `json:"mfa_token"`
	Method   string `json:"method"`
	Code     string `json:"code"`
}

func (s *Server) startMFAChallenge(ctx context.Context, w http.ResponseWriter, u schemas.User) error {
	methods, err := s.deps.Store.ListMFAMethods(ctx, u.ID)
	if err != nil {
		return err
	}
	backups, err := s.deps.Store.CountBackupCodes(ctx, u.ID)
	if err != nil {
		return err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := s.deps.Store.CreateMFAChallenge(ctx, u.ID, mfaTokenHash(token), clientIP(ctx), mfaChallengeTTL); err != nil {
		return err
	}
	auditSetDetail(ctx, "outcome", "mfa_required")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, mfaChallengeResponse{MFARequired: true, MFAToken: token,
		Methods: loginMethods(methods, backups), ExpiresIn: int(mfaChallengeTTL.Seconds())})
	return nil
}

func mfaTokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

var errBadMFAToken = Errorf(CodeUnauthorized, "mfa_token invalid, expired or used up; sign in again")

// challengeUser loads the user of a live challenge, refusing locked and
// deactivated accounts.
func (s *Server) challengeUser(ctx context.Context, token string) (schemas.MFAChallenge, schemas.User, error) {
	if token == "" {
		return schemas.MFAChallenge{}, schemas.User{}, fieldError("mfa_token", "required")
	}
	ch, err := s.deps.Store.GetMFAChallenge(ctx, mfaTokenHash(token), mfaChallengeAttempts)
	if errors.Is(err, schemas.ErrNotFound) {
		return ch, schemas.User{}, errBadMFAToken
	}
	if err != nil {
		return ch, schemas.User{}, err
	}
	u, err := s.deps.Store.GetUser(ctx, ch.UserID)
	if errors.Is(err, schemas.ErrNotFound) {
		return ch, u, errBadMFAToken
	}
	if err != nil {
		return ch, u, err
	}
	auditSetActor(ctx, principalOf(u, "local"))
	switch {
	case u.Locked(timeNow()):
		return ch, u, errAccountLocked(u)
	case !u.Active:
		return ch, u, Errorf(CodeUnauthorized, "account is deactivated")
	}
	return ch, u, nil
}

// loginMFA completes a login with a second factor.
func (s *Server) loginMFA(w http.ResponseWriter, r *http.Request) error {
	var req mfaLoginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	auditSetAction(ctx, "auth.mfa")
	auditSetDetail(ctx, "method", req.Method)
	switch req.Method {
	case schemas.MFATOTP, schemas.MFASMS, schemas.MFAEmail, schemas.MFABackup:
	default:
		return fieldError("method", "must be totp, sms, email or backup")
	}
	if req.Code == "" {
		return fieldError("code", "required")
	}
	ch, u, err := s.challengeUser(ctx, req.MFAToken)
	if err != nil {
		return err
	}
	res, _, err := s.checkFactor(ctx, u.ID, req.Method, req.Code)
	if err != nil {
		return err
	}
	switch res {
	case factorNoMethod:
		return fieldError("method", "no verified "+req.Method+" method on this account")
	case factorWrong:
		auditSetDetail(ctx, "outcome", "bad_code")
		if _, err := s.deps.Store.FailMFAChallenge(ctx, ch.ID); err != nil {
			return err
		}
		if err := s.recordFailure(ctx, u, "mfa"); err != nil {
			return err
		}
		return Errorf(CodeUnauthorized, "invalid MFA code")
	}
	ok, err := s.deps.Store.ConsumeMFAChallenge(ctx, ch.ID)
	if err != nil {
		return err
	}
	if !ok {
		return errBadMFAToken
	}
	if err := s.requireAllowedAddress(ctx, u.ID, u.Username); err != nil {
		return err
	}
	auditSetDetail(ctx, "outcome", "ok")
	return s.completeLogin(ctx, w, r, u)
}

type mfaSendRequest struct {
	MFAToken string `json:"mfa_token"`
	Method   string `json:"method"`
}

// loginMFASend sends an SMS or email code for a pending login.
func (s *Server) loginMFASend(w http.ResponseWriter, r *http.Request) error {
	var req mfaSendRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	auditSetAction(ctx, "auth.mfa.send_code")
	auditSetDetail(ctx, "method", req.Method)
	if req.Method != schemas.MFASMS && req.Method != schemas.MFAEmail {
		return fieldError("method", "must be sms or email")
	}
	_, u, err := s.challengeUser(ctx, req.MFAToken)
	if err != nil {
		return err
	}
	methods, err := s.deps.Store.ListMFAMethods(ctx, u.ID)
	if err != nil {
		return err
	}
	m, ok := verifiedMethod(methods, req.Method)
	if !ok {
		return fieldError("method", "no verified "+req.Method+" method on this account")
	}
	code, err := s.sendCode(ctx, w, m, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, codeSentResponse{CodeSent: true, ExpiresAt: code.ExpiresAt})
	return nil
}
