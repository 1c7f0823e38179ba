package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/mfa"
	"github.com/streamspace/enterprise/schemas"
)

// MFA methods (any signed-in user, for their own account):
//
//	POST   /api/security/mfa/setup                   {type, phone_number?}: a new, unverified method
//	GET    /api/security/mfa/{id}/qr.png             the TOTP QR code, while unverified
//	POST   /api/security/mfa/{id}/send               a new SMS or email code
//	POST   /api/security/mfa/{id}/verify             {code}: completes setup; the first method gets backup codes
//	GET    /api/security/mfa                         the methods and how many backup codes remain
//	DELETE /api/security/mfa/{id}                    {code, method?}: needs a fresh code
//	POST   /api/security/mfa/backup-codes/regenerate {code, method?}: a new set, the old one revoked
//
// The TOTP seed is sealed with ENCRYPTION_KEY and shown only by setup (and
// its QR code, until verified). These routes stay reachable while an MFA
// policy makes the user enrol (requireMFAEnrollment).
func (s *Server) mfaRoutes(user chi.Router) {
	h := func(fn handlerFunc) http.HandlerFunc { return handle(s.deps.Logger, fn) }
	user.Post("/api/security/mfa/setup", h(s.setupMFA))
	user.Get("/api/security/mfa", h(s.listMFA))
	user.Get("/api/security/mfa/{id}/qr.png", h(s.mfaQRCode))
	user.Post("/api/security/mfa/{id}/send", h(s.sendMFACode))
	user.Post("/api/security/mfa/{id}/verify", h(s.verifyMFA))
	user.Delete("/api/security/mfa/{id}", h(s.deleteMFA))
	user.Post("/api/security/mfa/backup-codes/regenerate", h(s.regenerateBackupCodes))
}

func errNoMFAMethod() *Error { return Errorf(CodeNotFound, "no such MFA method") }

// mfaMethodParam loads the caller's method named by {id}; another user's is
// not found.
func (s *Server) mfaMethodParam(r *http.Request) (schemas.MFAMethod, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		return schemas.MFAMethod{}, errNoMFAMethod()
	}
	p, _ := principalFrom(r.Context())
	m, err := s.deps.Store.GetMFAMethod(r.Context(), p.UserID, id)
	if errors.Is(err, schemas.ErrNotFound) {
		return schemas.MFAMethod{}, errNoMFAMethod()
	}
	return m, err
}

// localUser is the caller's account; MFA belongs to accounts that sign in
// with a password here (an OIDC provider runs its own MFA).
func (s *Server) localUser(ctx context.Context) (schemas.User, error) {
	u, err := s.callerUser(ctx)
	if err != nil {
		return schemas.User{}, err
	}
	if u.PasswordHash == "" {
		return schemas.User{}, Errorf(CodeConflict,
			"this account signs in through the identity provider (OIDC), whose MFA applies; StreamSpace MFA is for password accounts")
	}
	return u, nil
}

func (s *Server) setupMFA(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.mfa.setup")
	var req mfaSetupRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	auditSetDetail(ctx, "type", req.Type)
	switch {
	case req.Type != schemas.MFATOTP && req.Type != schemas.MFASMS && req.Type != schemas.MFAEmail:
		return fieldError("type", "must be totp, sms or email")
	case req.Type == schemas.MFASMS && !notify.ValidPhoneNumber(req.PhoneNumber):
		return fieldError("phone_number", "must be an E.164 number such as +15551234567")
	case req.Type != schemas.MFASMS && req.PhoneNumber != "":
		return fieldError("phone_number", "only for type sms")
	}
	u, err := s.localUser(ctx)
	if err != nil {
		return err
	}
	if u.MFAEnabled {
		if err := s.requireFreshFactor(ctx, u, mfaCodeRequest{Code: req.Code, Method: req.Method}); err != nil {
			return err
		}
	}
	if req.Type == schemas.MFATOTP {
		return s.setupTOTP(ctx, w, u)
	}
	m := schemas.MFAMethod{UserID: u.ID, Type: req.Type, Phone: req.PhoneNumber}
	if err := s.codeChannelReady(m.Type, u); err != nil {
		return err
	}
	if err := s.createMFAMethod(ctx, &m); err != nil {
		return err
	}
	auditSetTarget(ctx, strconv.FormatInt(m.ID, 10))
	code, err := s.sendCode(ctx, w, m, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, mfaSetupResponse{MFAID: m.ID, Type: m.Type,
		PhoneNumber: maskPhone(m.Phone), Email: maskEmailFor(m, u), CodeSent: true, CodeExpiresAt: &code.ExpiresAt})
	return nil
}

// setupTOTP makes an unverified TOTP method and answers its secret and
// otpauth URI, the only time they are shown (no-store).
func (s *Server) setupTOTP(ctx context.Context, w http.ResponseWriter, u schemas.User) error {
	box, err := s.secrets()
	if err != nil {
		return err
	}
	k, err := mfa.NewTOTP(s.mfaIssuer(), accountLabel(u))
	if err != nil {
		return err
	}
	m := schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP}
	if m.SecretSealed, err = box.SealString(k.Secret()); err != nil {
		return err
	}
	if err := s.createMFAMethod(ctx, &m); err != nil {
		return err
	}
	auditSetTarget(ctx, strconv.FormatInt(m.ID, 10))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, mfaSetupResponse{MFAID: m.ID, Type: m.Type, Secret: k.Secret(),
		QRCodeURL: mfa.TOTPURI(k), QRCodePNG: mfaQRPath(m.ID)})
	return nil
}

func (s *Server) createMFAMethod(ctx context.Context, m *schemas.MFAMethod) error {
	err := s.deps.Store.CreateMFAMethod(ctx, m)
	if errors.Is(err, schemas.ErrConflict) {
		return Errorf(CodeConflict, "a verified %s method exists; delete it first to set up a new one", m.Type)
	}
	return err
}

// accountLabel is the account name authenticator apps show.
func accountLabel(u schemas.User) string {
	if u.Email != "" {
		return u.Email
	}
	return u.Username
}

func (s *Server) mfaQRCode(w http.ResponseWriter, r *http.Request) error {
	m, err := s.mfaMethodParam(r)
	if err != nil {
		return err
	}
	if m.Type != schemas.MFATOTP {
		return Errorf(CodeNotFound, "only TOTP methods have a QR code")
	}
	if m.Verified() {
		return Errorf(CodeConflict, "the QR code holds the secret and is shown only until the method is verified")
	}
	box, err := s.secrets()
	if err != nil {
		return err
	}
	secret, err := box.OpenString(m.SecretSealed)
	if err != nil {
		return err
	}
	u, err := s.callerUser(r.Context())
	if err != nil {
		return err
	}
	uri, err := mfa.TOTPURIFor(s.mfaIssuer(), accountLabel(u), secret)
	if err != nil {
		return err
	}
	size, err := mfa.QRImageSize(uri, 256)
	if err != nil {
		return err
	}
	png, err := mfa.QRPNG(uri, size)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(png)
	return nil
}

func (s *Server) sendMFACode(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.mfa.send_code")
	m, err := s.mfaMethodParam(r)
	if err != nil {
		return err
	}
	u, err := s.callerUser(ctx)
	if err != nil {
		return err
	}
	code, err := s.sendCode(ctx, w, m, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, codeSentResponse{CodeSent: true, ExpiresAt: code.ExpiresAt})
	return nil
}

func (s *Server) verifyMFA(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.mfa.verify")
	var req mfaCodeRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Code == "" {
		return fieldError("code", "required")
	}
	m, err := s.mfaMethodParam(r)
	if err != nil {
		return err
	}
	auditSetDetail(ctx, "type", m.Type)
	if m.Verified() {
		return Errorf(CodeConflict, "this method is already verified")
	}
	ok, err := s.checkMethodCode(ctx, m, req.Code)
	if err != nil {
		return err
	}
	if !ok {
		return fieldError("code", "wrong or expired code")
	}
	var codes []string
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		first, err := schemas.VerifyMFAMethod(ctx, tx, m.ID)
		if err != nil || !first {
			return err
		}
		codes, err = newBackupCodes(ctx, tx, m.UserID)
		return err
	})
	if err != nil {
		return err
	}
	s.raiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertMFAChange, Severity: schemas.SeverityLow,
		UserID: m.UserID, Message: "MFA method " + m.Type + " added",
		Details:  map[string]any{"change": "method_added", "type": m.Type, "mfa_id": m.ID},
		DedupKey: "mfa_change:added:" + strconv.FormatInt(m.ID, 10)})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, mfaVerifyResponse{Verified: true, BackupCodes: codes})
	return nil
}

// newBackupCodes makes a new set of backup codes, replacing the old one, and
// returns them in clear (shown once).
func newBackupCodes(ctx context.Context, tx pgx.Tx, userID uuid.UUID) ([]string, error) {
	codes, err := mfa.NewBackupCodes()
	if err != nil {
		return nil, err
	}
	hashes := make([]string, len(codes))
	for i, c := range codes {
		if hashes[i], err = mfa.HashBackupCode(c); err != nil {
			return nil, err
		}
	}
	return codes, schemas.ReplaceBackupCodes(ctx, tx, userID, hashes)
}

func (s *Server) listMFA(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := s.callerUser(ctx)
	if err != nil {
		return err
	}
	methods, err := s.deps.Store.ListMFAMethods(ctx, u.ID)
	if err != nil {
		return err
	}
	remaining, err := s.deps.Store.CountBackupCodes(ctx, u.ID)
	if err != nil {
		return err
	}
	required, err := s.mfaRequiredFor(ctx, u)
	if err != nil {
		return err
	}
	out := mfaListResponse{Methods: make([]mfaMethodJSON, 0, len(methods)), MFAEnabled: u.MFAEnabled,
		BackupCodesRemaining: remaining, PolicyRequiresMFA: required}
	for _, m := range methods {
		out.Methods = append(out.Methods, toMFAMethodJSON(m, u))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteMFA(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.mfa.delete")
	m, err := s.mfaMethodParam(r)
	if err != nil {
		return err
	}
	auditSetDetail(ctx, "type", m.Type)
	u, err := s.callerUser(ctx)
	if err != nil {
		return err
	}
	// Removing a factor needs proof of one (a stolen access token alone
	// must not strip MFA); an unfinished setup can be dropped freely.
	if u.MFAEnabled {
		var req mfaCodeRequest
		if err := decodeOptionalJSON(r, &req); err != nil {
			return err
		}
		if err := s.requireFreshFactor(ctx, u, req); err != nil {
			return err
		}
	}
	if m.Verified() {
		required, err := s.mfaRequiredFor(ctx, u)
		if err != nil {
			return err
		}
		methods, err := s.deps.Store.ListMFAMethods(ctx, u.ID)
		if err != nil {
			return err
		}
		if required && len(loginMethods(methods, 0)) == 1 {
			return Errorf(CodeConflict, "MFA is required for your account by policy: set up another method before removing the last one")
		}
	}
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		_, err := schemas.DeleteMFAMethod(ctx, tx, u.ID, m.ID)
		return err
	})
	if errors.Is(err, schemas.ErrNotFound) {
		return errNoMFAMethod()
	}
	if err != nil {
		return err
	}
	if m.Verified() {
		s.raiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertMFAChange, Severity: schemas.SeverityMedium,
			UserID: u.ID, Message: "MFA method " + m.Type + " removed",
			Details:  map[string]any{"change": "method_removed", "type": m.Type, "mfa_id": m.ID},
			DedupKey: "mfa_change:removed:" + strconv.FormatInt(m.ID, 10)})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) regenerateBackupCodes(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.mfa.backup_codes.regenerate")
	var req mfaCodeRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	u, err := s.callerUser(ctx)
	if err != nil {
		return err
	}
	if !u.MFAEnabled {
		return Errorf(CodeConflict, "set up and verify an MFA method first; backup codes come with it")
	}
	if err := s.requireFreshFactor(ctx, u, req); err != nil {
		return err
	}
	var codes []string
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		codes, err = newBackupCodes(ctx, tx, u.ID)
		return err
	})
	if err != nil {
		return err
	}
	s.raiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertMFAChange, Severity: schemas.SeverityLow,
		UserID: u.ID, Message: "backup codes regenerated; the previous set no longer works",
		Details: map[string]any{"change": "backup_codes_regenerated"}, DedupKey: "mfa_change:backup:" + u.ID.String()})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, mfaVerifyResponse{Verified: true, BackupCodes: codes})
	return nil
}

// requireFreshFactor checks the code a sensitive change came with. Wrong
// codes count toward the account lockout like failed logins: otherwise a
// stolen access token could guess TOTP codes here without limit.
func (s *Server) requireFreshFactor(ctx context.Context, u schemas.User, req mfaCodeRequest) error {
	if req.Code == "" {
		return &Error{Code: CodeMFARequired, Message: "this change needs a fresh MFA code (field code; method optional)"}
	}
	if u.Locked(timeNow()) {
		return errAccountLocked(u)
	}
	res, method, err := s.checkFactor(ctx, u.ID, req.Method, req.Code)
	if err != nil {
		return err
	}
	auditSetDetail(ctx, "factor", method)
	switch res {
	case factorOK:
		return s.deps.Store.ResetLoginFailures(ctx, u.ID)
	case factorNoMethod:
		return fieldError("method", "you have no verified "+method+" method")
	}
	if err := s.recordFailure(ctx, u, "mfa_reauth"); err != nil {
		return err
	}
	return &Error{Code: CodeMFARequired, Message: "the MFA code is wrong, expired or already used"}
}
