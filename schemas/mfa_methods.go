package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MFA method rows (migration 00008). The store keeps the sealed TOTP seed as
// bytes: sealing, opening and checking codes is internal/mfa's.
//
// Lock order. Every write that changes which methods a user has verified
// (create, verify, delete) first locks the user's row, then the method rows,
// so two of them for one user run one after the other and users.mfa_enabled
// always matches "has a verified method".

const mfaMethodColumns = `id, user_id, type, secret_sealed, coalesce(phone, ''), verified_at, last_totp_step,
	last_used_at, created_at`

func scanMFAMethod(row pgx.Row) (MFAMethod, error) {
	var m MFAMethod
	err := row.Scan(&m.ID, &m.UserID, &m.Type, &m.SecretSealed, &m.Phone, &m.VerifiedAt, &m.LastTOTPStep,
		&m.LastUsedAt, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return MFAMethod{}, ErrNotFound
	}
	return m, err
}

// lockUserForMFA locks a user's row against the other MFA writes of the same
// user (FOR NO KEY UPDATE: inserts that reference the user still proceed);
// ErrNotFound when there is no such user.
func lockUserForMFA(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// CreateMFAMethod starts the setup of m (UserID, Type, SecretSealed for
// TOTP, Phone for SMS) and fills ID and CreatedAt. An unverified method of
// the same type is replaced (the user restarted the setup): it is deleted
// with the codes sent for it, so a code sent to a previous phone number
// cannot verify the new one, and m gets a new ID. A verified one is
// ErrConflict: the user deletes it first. ErrNotFound when the user does not
// exist.
func (s *Store) CreateMFAMethod(ctx context.Context, m *MFAMethod) error {
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockUserForMFA(ctx, tx, m.UserID); err != nil {
			return err
		}
		var verified bool
		err := tx.QueryRow(ctx, `SELECT verified_at IS NOT NULL FROM mfa_methods WHERE user_id = $1 AND type = $2`,
			m.UserID, m.Type).Scan(&verified)
		switch {
		case err == nil && verified:
			return fmt.Errorf("%w: a verified %s method already exists; delete it first", ErrConflict, m.Type)
		case err == nil:
			if _, err := tx.Exec(ctx, `DELETE FROM mfa_methods WHERE user_id = $1 AND type = $2`, m.UserID, m.Type); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO mfa_methods (user_id, type, secret_sealed, phone)
			VALUES ($1, $2, $3, nullif($4, '')) RETURNING id, created_at`,
			m.UserID, m.Type, m.SecretSealed, m.Phone).Scan(&m.ID, &m.CreatedAt)
	})
	if err != nil {
		return fmt.Errorf("create %s mfa method for user %s: %w", m.Type, m.UserID, err)
	}
	m.VerifiedAt, m.LastTOTPStep, m.LastUsedAt = nil, nil, nil
	return nil
}

// ListMFAMethods lists a user's methods, verified or not, oldest first.
func (s *Store) ListMFAMethods(ctx context.Context, userID uuid.UUID) ([]MFAMethod, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+mfaMethodColumns+` FROM mfa_methods WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list mfa methods of user %s: %w", userID, err)
	}
	methods, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MFAMethod, error) { return scanMFAMethod(r) })
	if err != nil {
		return nil, fmt.Errorf("list mfa methods of user %s: %w", userID, err)
	}
	return methods, nil
}

// GetMFAMethod reads one of a user's methods; ErrNotFound when there is no
// such method or it belongs to someone else (the two are not told apart).
func (s *Store) GetMFAMethod(ctx context.Context, userID uuid.UUID, id int64) (MFAMethod, error) {
	m, err := scanMFAMethod(s.Pool.QueryRow(ctx, `SELECT `+mfaMethodColumns+` FROM mfa_methods
		WHERE id = $1 AND user_id = $2`, id, userID))
	if err != nil {
		return MFAMethod{}, fmt.Errorf("get mfa method %d: %w", id, err)
	}
	return m, nil
}

// AcceptTOTPStep records that a TOTP code for RFC 6238 time step step was
// accepted, and reports false when that step or a later one was accepted
// before: the code is a replay (or older than one already used) and must be
// refused. The test and the write are one statement under the row lock, so
// of two requests racing with the same code exactly one gets true.
// ErrNotFound when the method does not exist.
func (s *Store) AcceptTOTPStep(ctx context.Context, methodID int64, step int64) (bool, error) {
	var accepted, exists bool
	err := s.Pool.QueryRow(ctx, `WITH accepted AS (
			UPDATE mfa_methods SET last_totp_step = $2, last_used_at = now()
			WHERE id = $1 AND (last_totp_step IS NULL OR last_totp_step < $2)
			RETURNING id)
		SELECT EXISTS (SELECT 1 FROM accepted), EXISTS (SELECT 1 FROM mfa_methods WHERE id = $1)`,
		methodID, step).Scan(&accepted, &exists)
	if err != nil {
		return false, fmt.Errorf("accept totp step for mfa method %d: %w", methodID, err)
	}
	if !exists {
		return false, fmt.Errorf("accept totp step for mfa method %d: %w", methodID, ErrNotFound)
	}
	return accepted, nil
}

// TouchMFAMethod records that the method was just used (an SMS or email code
// was accepted); ErrNotFound when it does not exist.
func (s *Store) TouchMFAMethod(ctx context.Context, methodID int64) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE mfa_methods SET last_used_at = now() WHERE id = $1`, methodID)
	if err != nil {
		return fmt.Errorf("touch mfa method %d: %w", methodID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("touch mfa method %d: %w", methodID, ErrNotFound)
	}
	return nil
}

// VerifyMFAMethod completes the setup of a method inside tx: it sets
// verified_at (kept when already set) and the user's mfa_enabled.
// firstMethod is true when this call took the user from no verified method
// to one (the method was unverified and no other was verified): the caller
// then issues the first backup codes. Verifying an already verified method
// again reports false. ErrNotFound when the method does not exist.
func VerifyMFAMethod(ctx context.Context, tx pgx.Tx, methodID int64) (firstMethod bool, err error) {
	var userID uuid.UUID
	err = tx.QueryRow(ctx, `SELECT user_id FROM mfa_methods WHERE id = $1`, methodID).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("verify mfa method %d: %w", methodID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("verify mfa method %d: %w", methodID, err)
	}
	if err := lockUserForMFA(ctx, tx, userID); err != nil {
		return false, fmt.Errorf("verify mfa method %d: %w", methodID, err)
	}
	// Under the user's lock no other verify or delete of theirs runs, so
	// these counts cannot change before the writes below.
	var wasVerified bool
	var othersVerified int
	err = tx.QueryRow(ctx, `SELECT m.verified_at IS NOT NULL,
			(SELECT count(*) FROM mfa_methods o WHERE o.user_id = m.user_id AND o.id <> m.id AND o.verified_at IS NOT NULL)
		FROM mfa_methods m WHERE m.id = $1 FOR UPDATE OF m`, methodID).Scan(&wasVerified, &othersVerified)
	if errors.Is(err, pgx.ErrNoRows) { // deleted while we waited for the lock
		return false, fmt.Errorf("verify mfa method %d: %w", methodID, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("verify mfa method %d: %w", methodID, err)
	}
	if !wasVerified {
		if _, err := tx.Exec(ctx, `UPDATE mfa_methods SET verified_at = now() WHERE id = $1`, methodID); err != nil {
			return false, fmt.Errorf("verify mfa method %d: %w", methodID, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET mfa_enabled = true WHERE id = $1 AND NOT mfa_enabled`, userID); err != nil {
		return false, fmt.Errorf("verify mfa method %d: enable mfa for user %s: %w", methodID, userID, err)
	}
	return !wasVerified && othersVerified == 0, nil
}

// DeleteMFAMethod removes one of a user's methods inside tx and answers how
// many verified methods they have left. users.mfa_enabled follows; when no
// verified method remains the backup codes are deleted too (they are a
// fallback for a second factor the user no longer has). ErrNotFound when
// there is no such method or it belongs to someone else.
func DeleteMFAMethod(ctx context.Context, tx pgx.Tx, userID uuid.UUID, id int64) (remainingVerified int, err error) {
	if err := lockUserForMFA(ctx, tx, userID); err != nil {
		return 0, fmt.Errorf("delete mfa method %d: %w", id, err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM mfa_methods WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return 0, fmt.Errorf("delete mfa method %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("delete mfa method %d: %w", id, ErrNotFound)
	}
	err = tx.QueryRow(ctx, `SELECT count(*) FROM mfa_methods WHERE user_id = $1 AND verified_at IS NOT NULL`,
		userID).Scan(&remainingVerified)
	if err != nil {
		return 0, fmt.Errorf("delete mfa method %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET mfa_enabled = $2 WHERE id = $1 AND mfa_enabled <> $2`,
		userID, remainingVerified > 0); err != nil {
		return 0, fmt.Errorf("delete mfa method %d: update user %s: %w", id, userID, err)
	}
	if remainingVerified == 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_backup_codes WHERE user_id = $1`, userID); err != nil {
			return 0, fmt.Errorf("delete mfa method %d: delete backup codes: %w", id, err)
		}
	}
	return remainingVerified, nil
}
