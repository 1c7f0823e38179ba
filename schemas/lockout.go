package schemas

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Account lockout (PCI DSS v4.0.1 8.3.4): LockoutThreshold consecutive
// failed logins, password or second factor, lock the account for
// LockoutDuration. The count and the lock live on the users row and change
// in single statements, so concurrent failures on several replicas count
// exactly and lock once.

// RecordLoginFailure counts a failed login and answers the user as it now
// is. The failure that reaches LockoutThreshold locks the account until
// now() + LockoutDuration, resets the count and reports lockedNow. A failure
// while the account is locked changes nothing: it neither extends the lock
// nor counts towards the next one. ErrNotFound when the user does not exist.
func (s *Store) RecordLoginFailure(ctx context.Context, userID uuid.UUID) (u User, lockedNow bool, err error) {
	// The CASEs read the row as it is under the update's lock, so of
	// concurrent failures exactly one sees the threshold reached. The lock
	// this statement set is the one ending at now() + the duration: now()
	// is the transaction's start, which no earlier lock shares.
	row := s.Pool.QueryRow(ctx, `UPDATE users SET
			failed_logins = CASE
				WHEN locked_until > now() THEN failed_logins
				WHEN failed_logins + 1 >= $2 THEN 0
				ELSE failed_logins + 1 END,
			locked_until = CASE
				WHEN locked_until > now() THEN locked_until
				WHEN failed_logins + 1 >= $2 THEN now() + $3::bigint * interval '1 microsecond'
				ELSE locked_until END
		WHERE id = $1
		RETURNING `+userColumns+`, coalesce(locked_until = now() + $3::bigint * interval '1 microsecond', false)`,
		userID, LockoutThreshold, intervalMicros(LockoutDuration))
	u, err = scanUser(rowWithExtra{Row: row, extra: []any{&lockedNow}})
	if err != nil {
		return User{}, false, fmt.Errorf("record login failure of user %s: %w", userID, err)
	}
	return u, lockedNow, nil
}

// rowWithExtra scans the columns a scan function knows and then extra ones
// the query appended.
type rowWithExtra struct {
	pgx.Row
	extra []any
}

func (r rowWithExtra) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.extra...)...) }

// ResetLoginFailures clears the failure count after a successful login. It
// writes only when there is something to clear.
func (s *Store) ResetLoginFailures(ctx context.Context, userID uuid.UUID) error {
	_, err := s.Pool.Exec(ctx, `UPDATE users SET failed_logins = 0 WHERE id = $1 AND failed_logins <> 0`, userID)
	if err != nil {
		return fmt.Errorf("reset login failures of user %s: %w", userID, err)
	}
	return nil
}

// UnlockUser lifts a lock inside tx (an admin's action) and clears the
// failure count; ErrNotFound when the user does not exist.
func UnlockUser(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	tag, err := tx.Exec(ctx, `UPDATE users SET locked_until = NULL, failed_logins = 0 WHERE id = $1`, userID)
	if err != nil {
		return fmt.Errorf("unlock user %s: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("unlock user %s: %w", userID, ErrNotFound)
	}
	return nil
}
