package server

import (
	"context"

	"github.com/google/uuid"
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
