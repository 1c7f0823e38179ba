package schemas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrConflict is returned when a write would break a uniqueness rule.
var ErrConflict = errors.New("conflict")

// User is an account. PasswordHash is never serialised to clients.
type User struct {
	ID           uuid.UUID
	Username     string
	Email        string
	DisplayName  string
	Role         string // "user" | "admin"
	Active       bool
	PasswordHash string // argon2id PHC string; "" for OIDC-only users
	OIDCIssuer   string
	OIDCSubject  string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastLoginAt  *time.Time
	// FailedLogins counts consecutive failed logins (password or MFA);
	// LockedUntil is set when they reach LockoutThreshold.
	FailedLogins int
	LockedUntil  *time.Time
	// MFAEnabled is true while the user has a verified MFA method.
	MFAEnabled bool
}

// Locked reports whether the account is locked at now.
func (u User) Locked(now time.Time) bool { return u.LockedUntil != nil && now.Before(*u.LockedUntil) }

const userColumns = `id, username, coalesce(email, ''), display_name, role, active, coalesce(password_hash, ''),
	coalesce(oidc_issuer, ''), coalesce(oidc_subject, ''), created_at, updated_at, last_login_at,
	failed_logins, locked_until, mfa_enabled`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.DisplayName, &u.Role, &u.Active, &u.PasswordHash,
		&u.OIDCIssuer, &u.OIDCSubject, &u.CreatedAt, &u.UpdatedAt, &u.LastLoginAt,
		&u.FailedLogins, &u.LockedUntil, &u.MFAEnabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

// uniqueViolation turns a unique-constraint error into ErrConflict naming
// the column, and passes other errors through.
func uniqueViolation(err error, what string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		field := "username"
		switch pgErr.ConstraintName {
		case "users_email_key":
			field = "email"
		case "users_oidc_issuer_oidc_subject_key":
			field = "oidc_subject"
		}
		return fmt.Errorf("%s: %w: %s already taken", what, ErrConflict, field)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// InsertUser creates u inside tx (so the caller can publish user.created in
// the same transaction). It fills ID and timestamps.
func InsertUser(ctx context.Context, tx pgx.Tx, u *User) error {
	if u.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		u.ID = id
	}
	err := tx.QueryRow(ctx, `INSERT INTO users (id, username, email, display_name, role, active, password_hash,
			oidc_issuer, oidc_subject)
		VALUES ($1, $2, nullif($3, ''), $4, $5, $6, nullif($7, ''), nullif($8, ''), nullif($9, ''))
		RETURNING created_at, updated_at`,
		u.ID, u.Username, u.Email, u.DisplayName, u.Role, u.Active, u.PasswordHash, u.OIDCIssuer, u.OIDCSubject,
	).Scan(&u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return uniqueViolation(err, "insert user")
	}
	return nil
}

// GetUser loads a user by ID.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := scanUser(s.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, fmt.Errorf("get user %s: %w", id, err)
	}
	return u, nil
}

// GetUserByUsername loads a user by username, case-insensitively.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1)`, username))
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", username, err)
	}
	return u, nil
}

// GetUserByOIDC loads the user provisioned for an OIDC issuer and subject.
func (s *Store) GetUserByOIDC(ctx context.Context, issuer, subject string) (User, error) {
	u, err := scanUser(s.Pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users
		WHERE oidc_issuer = $1 AND oidc_subject = $2`, issuer, subject))
	if err != nil {
		return User{}, fmt.Errorf("get oidc user: %w", err)
	}
	return u, nil
}

// ListUsers lists users ordered by username, after the cursor (a username)
// when it is not empty, at most limit.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]User, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE $1 = '' OR lower(username) > lower($1) ORDER BY lower(username) LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
}

// CountUsers counts every account.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

// UpdateUser writes u's mutable fields inside tx and refreshes UpdatedAt.
func UpdateUser(ctx context.Context, tx pgx.Tx, u *User) error {
	err := tx.QueryRow(ctx, `UPDATE users SET username = $2, email = nullif($3, ''), display_name = $4, role = $5,
			active = $6, password_hash = nullif($7, ''), updated_at = now()
		WHERE id = $1 RETURNING updated_at`,
		u.ID, u.Username, u.Email, u.DisplayName, u.Role, u.Active, u.PasswordHash).Scan(&u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("update user %s: %w", u.ID, ErrNotFound)
	}
	if err != nil {
		return uniqueViolation(err, "update user")
	}
	return nil
}

// LockUser locks u's row inside tx and returns it, for read-modify-write.
func LockUser(ctx context.Context, tx pgx.Tx, id uuid.UUID) (User, error) {
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return User{}, fmt.Errorf("lock user %s: %w", id, err)
	}
	return u, nil
}

// DeleteUser removes a user (their refresh tokens go with them).
func DeleteUser(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete user %s: %w", id, ErrNotFound)
	}
	return nil
}

// TouchLogin records a successful login.
func (s *Store) TouchLogin(ctx context.Context, id uuid.UUID) error {
	_, err := s.Pool.Exec(ctx, `UPDATE users SET last_login_at = now() WHERE id = $1`, id)
	return err
}
