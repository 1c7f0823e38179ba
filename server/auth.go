package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/internal/authtoken"
	"github.com/streamspace/enterprise/schemas"
)

// bearerToken extracts the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authenticate admits requests with a valid bearer token and puts the caller
// in the context; anything else is 401. The user is read from the database on
// every request, so a deactivated user or a changed role takes effect at once,
// not when the token expires.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamspace"`)
			writeError(w, r, s.deps.Logger, Errorf(CodeUnauthorized, "missing bearer token"))
			return
		}
		p, err := s.verifyToken(r.Context(), raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				writeError(w, r, s.deps.Logger, err)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamspace", error="invalid_token"`)
			writeError(w, r, s.deps.Logger, Errorf(CodeUnauthorized, "invalid or expired token"))
			return
		}
		auditSetActor(r.Context(), p)
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

// verifyToken checks a token this server issued, or one from the configured
// OIDC issuer, and returns the caller.
func (s *Server) verifyToken(ctx context.Context, raw string) (Principal, error) {
	if s.deps.OIDC != nil {
		if iss, ok := authtoken.PeekIssuer(raw); ok && iss == s.deps.OIDC.Issuer() {
			return s.deps.OIDC.Verify(ctx, raw)
		}
	}
	claims, err := s.deps.Tokens.Verify(raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	id, _ := uuid.Parse(claims.Subject) // Verify checked it parses
	u, err := s.deps.Store.GetUser(ctx, id)
	if errors.Is(err, schemas.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: user no longer exists", ErrInvalidToken)
	}
	if err != nil {
		return Principal{}, err
	}
	if !u.Active {
		return Principal{}, fmt.Errorf("%w: user is deactivated", ErrInvalidToken)
	}
	return principalOf(u, "local"), nil
}

func principalOf(u schemas.User, source string) Principal {
	return Principal{UserID: u.ID, Username: u.Username, Role: Role(u.Role), Source: source, user: &u}
}

// requireRole answers 403 FORBIDDEN to callers without the role. It must sit
// inside authenticate.
func (s *Server) requireRole(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := principalFrom(r.Context())
			if !ok || p.Role != role {
				if ok && role == RoleAdmin {
					s.noteAdminRefusal(r, p) // repeated refusals raise an alert (security_signals.go)
				}
				writeError(w, r, s.deps.Logger, Errorf(CodeForbidden, "this operation needs the %s role", role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
