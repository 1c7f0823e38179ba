package server

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// Role is a user's role; the seed has two.
type Role string

// The roles. Admin functions (integrations, scaling, compliance, user
// management, audit) need RoleAdmin.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID   uuid.UUID
	Username string
	Role     Role
	// Source says how the caller authenticated: "local" (a token this
	// server issued) or "oidc" (a token from the configured OIDC issuer).
	Source string

	// user is the account as authentication read it during this request,
	// when it did (saves handlers a second read of the same row).
	user *schemas.User
}

// callerUser is the signed-in caller's account: the row authentication read
// during this request, or read now (an OIDC principal has none cached).
func (s *Server) callerUser(ctx context.Context) (schemas.User, error) {
	p, _ := principalFrom(ctx)
	if p.user != nil {
		return *p.user, nil
	}
	return s.deps.Store.GetUser(ctx, p.UserID)
}

// IsAdmin reports whether the principal has the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

const principalKey ctxKey = iota + 100

// withPrincipal stores the authenticated caller in ctx.
func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// principalFrom returns the authenticated caller, if the request has one.
func principalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// ErrInvalidToken is wrapped by every token verification failure; the
// authentication middleware answers 401 UNAUTHORIZED for it.
var ErrInvalidToken = errors.New("invalid token")

// OIDCConfig configures acceptance of tokens from an external OIDC issuer.
type OIDCConfig struct {
	Issuer        string   // e.g. https://login.example.com/realms/acme; "" disables OIDC
	Audience      string   // the client ID tokens must be issued for
	RoleClaim     string   // claim holding the user's roles or groups ("roles")
	AdminValues   []string // values of RoleClaim that make a user admin (["admin"])
	UsernameClaim string   // claim used as the username on first sight ("preferred_username")
}

// TokenVerifier checks bearer tokens of one external issuer.
type TokenVerifier interface {
	Issuer() string
	Verify(ctx context.Context, raw string) (Principal, error)
}
