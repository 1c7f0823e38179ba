package server

import (
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// userJSON is a user as the API shows it; the password hash never leaves
// the server.
type userJSON struct {
	ID          uuid.UUID  `json:"id"`
	Username    string     `json:"username"`
	Email       string     `json:"email"`
	DisplayName string     `json:"display_name"`
	Role        Role       `json:"role"`
	Active      bool       `json:"active"`
	AuthSource  string     `json:"auth_source"` // local | oidc
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
	// MFAEnabled: the user has a verified MFA method.
	MFAEnabled bool `json:"mfa_enabled"`
	// LockedUntil is set while the account is locked after failed logins
	// (an admin clears it with DELETE /api/admin/users/{id}/lock);
	// FailedLogins counts the consecutive failures so far.
	LockedUntil  *time.Time `json:"locked_until"`
	FailedLogins int        `json:"failed_logins"`
}

func toUserJSON(u schemas.User) userJSON {
	source := "local"
	if u.OIDCSubject != "" {
		source = "oidc"
	}
	out := userJSON{ID: u.ID, Username: u.Username, Email: u.Email, DisplayName: u.DisplayName,
		Role: Role(u.Role), Active: u.Active, AuthSource: source, CreatedAt: u.CreatedAt,
		UpdatedAt: u.UpdatedAt, LastLoginAt: u.LastLoginAt, MFAEnabled: u.MFAEnabled,
		FailedLogins: u.FailedLogins}
	if u.Locked(time.Now()) {
		out.LockedUntil = u.LockedUntil
	}
	return out
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func validateUsername(s string) error {
	if !usernamePattern.MatchString(s) {
		return fieldError("username", "must be 1-64 characters: letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	return nil
}

func validateEmail(s string) error {
	if s == "" {
		return nil
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return fieldError("email", "Must be valid email address")
	}
	return nil
}

func validateDisplayName(s string) error {
	if len(s) > 128 || strings.ContainsAny(s, "\x00\r\n") {
		return fieldError("display_name", "must be at most 128 characters on one line")
	}
	return nil
}

func validateRole(r Role) error {
	if !r.Valid() {
		return fieldError("role", "must be user or admin")
	}
	return nil
}
