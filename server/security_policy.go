package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/schemas"
)

// The MFA policy and account locks (admin):
//
//	GET    /api/admin/security/policy   {"mfa_required": "off"|"admins"|"everyone"}
//	PUT    /api/admin/security/policy   the same
//	DELETE /api/admin/users/{id}/lock   clears a lockout (and the failure count)
//
// A user the policy covers who has no verified method can, until they enrol,
// reach only GET /api/me and the /api/security/mfa routes: everything else
// answers 403 MFA_ENROLLMENT_REQUIRED (requireMFAEnrollment). The policy
// concerns password accounts; OIDC users are subject to their provider's MFA.
func (s *Server) securityPolicyRoutes(admin chi.Router) {
	h := func(fn handlerFunc) http.HandlerFunc { return handle(s.deps.Logger, fn) }
	admin.Get("/api/admin/security/policy", h(s.getSecurityPolicy))
	admin.Put("/api/admin/security/policy", h(s.putSecurityPolicy))
	admin.Delete("/api/admin/users/{id}/lock", h(s.unlockUser))
}

type securityPolicyJSON struct {
	MFARequired string     `json:"mfa_required"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	UpdatedBy   *uuid.UUID `json:"updated_by,omitempty"`
}

func toSecurityPolicyJSON(st schemas.SecuritySettings) securityPolicyJSON {
	out := securityPolicyJSON{MFARequired: st.MFARequired, UpdatedAt: &st.UpdatedAt}
	if st.UpdatedBy != uuid.Nil {
		out.UpdatedBy = &st.UpdatedBy
	}
	return out
}

func (s *Server) getSecurityPolicy(w http.ResponseWriter, r *http.Request) error {
	st, err := s.deps.Store.GetSecuritySettings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toSecurityPolicyJSON(st))
	return nil
}

func (s *Server) putSecurityPolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.policy.update")
	var req securityPolicyJSON
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	switch req.MFARequired {
	case schemas.MFAPolicyOff, schemas.MFAPolicyAdmins, schemas.MFAPolicyEveryone:
	default:
		return fieldError("mfa_required", "must be off, admins or everyone")
	}
	auditSetDetail(ctx, "mfa_required", req.MFARequired)
	p, _ := principalFrom(ctx)
	var st schemas.SecuritySettings
	err := s.deps.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		st, err = schemas.SetMFAPolicy(ctx, tx, req.MFARequired, p.UserID)
		return err
	})
	if err != nil {
		return err
	}
	s.mfaPolicy.set(st.MFARequired)
	writeJSON(w, http.StatusOK, toSecurityPolicyJSON(st))
	return nil
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	auditSetAction(ctx, "security.user.unlock")
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return Errorf(CodeNotFound, "no such user")
	}
	err = s.deps.Store.InTx(ctx, func(tx pgx.Tx) error { return schemas.UnlockUser(ctx, tx, id) })
	if errors.Is(err, schemas.ErrNotFound) {
		return Errorf(CodeNotFound, "no such user")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mfaPolicyCache keeps the MFA policy for the per-request enrolment check.
// A change on this replica applies at once; other replicas see it within
// mfaPolicyTTL.
type mfaPolicyCache struct {
	mu      sync.Mutex
	policy  string
	fetched time.Time
}

const mfaPolicyTTL = 10 * time.Second

func (c *mfaPolicyCache) set(policy string) {
	c.mu.Lock()
	c.policy, c.fetched = policy, time.Now()
	c.mu.Unlock()
}

func (s *Server) currentMFAPolicy(ctx context.Context) (string, error) {
	c := &s.mfaPolicy
	c.mu.Lock()
	policy, fresh := c.policy, time.Since(c.fetched) < mfaPolicyTTL
	c.mu.Unlock()
	if fresh {
		return policy, nil
	}
	st, err := s.deps.Store.GetSecuritySettings(ctx)
	if err != nil {
		return "", err
	}
	c.set(st.MFARequired)
	return st.MFARequired, nil
}

// mfaRequiredFor reports whether the policy makes u use MFA.
func (s *Server) mfaRequiredFor(ctx context.Context, u schemas.User) (bool, error) {
	if u.PasswordHash == "" {
		return false, nil // OIDC account: the provider's MFA applies
	}
	policy, err := s.currentMFAPolicy(ctx)
	if err != nil {
		return false, err
	}
	return schemas.MFARequiredFor(policy, u.Role), nil
}

// requireMFAEnrollment answers 403 MFA_ENROLLMENT_REQUIRED to a user the
// policy covers who has not enrolled yet, except on the routes they need to
// enrol. It runs after authentication, which read the user row.
func (s *Server) requireMFAEnrollment(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principalFrom(r.Context())
		if !ok || p.user == nil || p.Source != "local" || p.user.MFAEnabled || enrollmentRoute(r) {
			next.ServeHTTP(w, r)
			return
		}
		required, err := s.mfaRequiredFor(r.Context(), *p.user)
		if err != nil {
			writeError(w, r, s.deps.Logger, err)
			return
		}
		if required {
			writeError(w, r, s.deps.Logger, &Error{Code: CodeMFAEnrollmentRequired,
				Message: "your account must set up MFA first: POST /api/security/mfa/setup, then verify it"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// enrollmentRoute: what a user who must enrol can still reach.
func enrollmentRoute(r *http.Request) bool {
	pattern := routePattern(r)
	return (pattern == "/api/me" && r.Method == http.MethodGet) || strings.HasPrefix(pattern, "/api/security/mfa")
}
