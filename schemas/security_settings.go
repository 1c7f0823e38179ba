package schemas

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The security settings row (migration 00008): today the admin MFA policy.

// SecuritySettings is the single settings row. UpdatedBy is uuid.Nil until
// an admin first changes it.
type SecuritySettings struct {
	MFARequired string // MFAPolicyOff | MFAPolicyAdmins | MFAPolicyEveryone
	UpdatedAt   time.Time
	UpdatedBy   uuid.UUID
}

// ErrInvalidMFAPolicy is returned by SetMFAPolicy for a value other than
// off, admins or everyone.
var ErrInvalidMFAPolicy = errors.New("mfa policy must be off, admins or everyone")

// ValidMFAPolicy reports whether policy is one of the MFAPolicy values.
func ValidMFAPolicy(policy string) bool {
	return policy == MFAPolicyOff || policy == MFAPolicyAdmins || policy == MFAPolicyEveryone
}

// MFARequiredFor reports whether the policy makes a user with role enrol a
// second factor: admins for MFAPolicyAdmins, everyone for
// MFAPolicyEveryone. An unknown policy requires nothing (SetMFAPolicy never
// stores one).
func MFARequiredFor(policy, role string) bool {
	switch policy {
	case MFAPolicyEveryone:
		return true
	case MFAPolicyAdmins:
		return role == "admin"
	default:
		return false
	}
}

func scanSecuritySettings(row pgx.Row) (SecuritySettings, error) {
	var st SecuritySettings
	var by *uuid.UUID
	err := row.Scan(&st.MFARequired, &st.UpdatedAt, &by)
	if errors.Is(err, pgx.ErrNoRows) {
		return SecuritySettings{}, ErrNotFound
	}
	if err != nil {
		return SecuritySettings{}, err
	}
	if by != nil {
		st.UpdatedBy = *by
	}
	return st, nil
}

// GetSecuritySettings reads the settings. The migration inserts the row; its
// absence is an error (ErrNotFound) rather than a silent "off".
func (s *Store) GetSecuritySettings(ctx context.Context) (SecuritySettings, error) {
	st, err := scanSecuritySettings(s.Pool.QueryRow(ctx, `SELECT mfa_required, updated_at, updated_by
		FROM security_settings WHERE id`))
	if err != nil {
		return SecuritySettings{}, fmt.Errorf("get security settings: %w", err)
	}
	return st, nil
}

// SetMFAPolicy changes the MFA policy inside tx (so the caller audits it in
// the same transaction) and answers the settings as stored.
// ErrInvalidMFAPolicy for a value other than the MFAPolicy constants.
func SetMFAPolicy(ctx context.Context, tx pgx.Tx, policy string, by uuid.UUID) (SecuritySettings, error) {
	if !ValidMFAPolicy(policy) {
		return SecuritySettings{}, fmt.Errorf("set mfa policy %q: %w", policy, ErrInvalidMFAPolicy)
	}
	var byID *uuid.UUID
	if by != uuid.Nil {
		byID = &by
	}
	st, err := scanSecuritySettings(tx.QueryRow(ctx, `INSERT INTO security_settings (id, mfa_required, updated_at, updated_by)
		VALUES (true, $1, now(), $2)
		ON CONFLICT (id) DO UPDATE SET mfa_required = EXCLUDED.mfa_required, updated_at = now(),
			updated_by = EXCLUDED.updated_by
		RETURNING mfa_required, updated_at, updated_by`, policy, byID))
	if err != nil {
		return SecuritySettings{}, fmt.Errorf("set mfa policy: %w", err)
	}
	return st, nil
}
