package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/internal/mfa"
	"github.com/streamspace/enterprise/schemas"
)

// Checking a second factor: one function for the login's second step and for
// the fresh code that sensitive MFA changes ask for.

// factorResult says how a code check ended.
type factorResult int

const (
	factorOK       factorResult = iota
	factorWrong                 // wrong, reused, expired or exhausted code
	factorNoMethod              // the user has no verified method of that type
)

// checkFactor checks code against the user's verified method of type method
// (totp, sms, email) or against their backup codes (backup). An empty method
// infers it: a code shaped like a backup code is one, else TOTP when the
// user has it, else the live SMS or email code.
//
// A TOTP code is accepted once per 30-second step: the step it matched is
// stored, and a code for that step or an earlier one is refused, so an
// observed code cannot be replayed within its window. SMS and email codes
// are single use and die after 5 tries; backup codes are single use.
func (s *Server) checkFactor(ctx context.Context, userID uuid.UUID, method, code string) (factorResult, string, error) {
	code = strings.TrimSpace(code)
	methods, err := s.deps.Store.ListMFAMethods(ctx, userID)
	if err != nil {
		return 0, "", err
	}
	if method == "" {
		method = inferFactor(methods, code)
	}
	if method == schemas.MFABackup {
		norm, ok := mfa.NormalizeBackupCode(code)
		if !ok {
			return factorWrong, method, nil
		}
		ok, _, err := s.deps.Store.UseBackupCode(ctx, userID, func(hash string) bool { return mfa.CheckBackupCode(norm, hash) })
		if err != nil || !ok {
			return factorWrong, method, err
		}
		return factorOK, method, nil
	}
	m, found := verifiedMethod(methods, method)
	if !found {
		return factorNoMethod, method, nil
	}
	ok, err := s.checkMethodCode(ctx, m, code)
	if err != nil || !ok {
		return factorWrong, method, err
	}
	return factorOK, method, nil
}

// checkMethodCode checks a code against one method, verified or not (setup
// verifies with it too). Replays and exhausted codes are just wrong.
func (s *Server) checkMethodCode(ctx context.Context, m schemas.MFAMethod, code string) (bool, error) {
	switch m.Type {
	case schemas.MFATOTP:
		box, err := s.secrets()
		if err != nil {
			return false, err
		}
		secret, err := box.OpenString(m.SecretSealed)
		if err != nil {
			return false, fmt.Errorf("open totp seed of method %d: %w", m.ID, err)
		}
		step, ok := mfa.MatchTOTP(secret, code, time.Now())
		if !ok {
			return false, nil
		}
		return s.deps.Store.AcceptTOTPStep(ctx, m.ID, step)
	case schemas.MFASMS, schemas.MFAEmail:
		ok, err := s.deps.Store.CheckMFACode(ctx, m.ID, mfa.OOBMaxAttempts, func(salt, hash []byte) bool {
			return mfa.CheckOOBCode(code, salt, hash)
		})
		if errors.Is(err, schemas.ErrNoCode) {
			return false, nil
		}
		if err != nil || !ok {
			return false, err
		}
		return true, s.deps.Store.TouchMFAMethod(ctx, m.ID)
	}
	return false, fmt.Errorf("method %d has unknown type %q", m.ID, m.Type)
}

func inferFactor(methods []schemas.MFAMethod, code string) string {
	if mfa.LooksLikeBackupCode(code) {
		return schemas.MFABackup
	}
	for _, t := range []string{schemas.MFATOTP, schemas.MFASMS, schemas.MFAEmail} {
		if _, ok := verifiedMethod(methods, t); ok {
			return t
		}
	}
	return schemas.MFATOTP
}

func verifiedMethod(methods []schemas.MFAMethod, typ string) (schemas.MFAMethod, bool) {
	for _, m := range methods {
		if m.Type == typ && m.Verified() {
			return m, true
		}
	}
	return schemas.MFAMethod{}, false
}

// loginMethods lists what a user can complete a login with.
func loginMethods(methods []schemas.MFAMethod, backupCodes int) []string {
	var out []string
	for _, m := range methods {
		if m.Verified() {
			out = append(out, m.Type)
		}
	}
	if backupCodes > 0 {
		out = append(out, schemas.MFABackup)
	}
	return out
}
