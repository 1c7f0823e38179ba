package schemas

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Backup codes (migration 00008): a set of single-use codes, stored as
// argon2id PHC strings made by the caller (internal/mfa). The store never
// sees a code, only its hash and a function that compares.

// ReplaceBackupCodes gives a user a new set of backup codes inside tx: the
// old set, used or not, is deleted, so its codes stop working when tx
// commits. ErrNotFound when the user does not exist.
func ReplaceBackupCodes(ctx context.Context, tx pgx.Tx, userID uuid.UUID, hashes []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM mfa_backup_codes WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("replace backup codes of user %s: %w", userID, err)
	}
	if len(hashes) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO mfa_backup_codes (user_id, code_hash)
		SELECT $1, h FROM unnest($2::text[]) WITH ORDINALITY AS t (h, n) ORDER BY n`, userID, hashes)
	if isForeignKeyViolation(err) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("replace backup codes of user %s: %w", userID, err)
	}
	return nil
}

// UseBackupCode spends the user's unused backup code that match accepts and
// answers whether one did and how many unused codes are left.
//
// match is a slow hash (argon2id), up to one per code, so it runs on a
// snapshot of the unused codes without holding any lock; the code is then
// spent with a conditional update (used_at IS NULL), which only one of two
// requests racing with the same code can win. A set regenerated meanwhile
// makes the old code fail, as it should.
func (s *Store) UseBackupCode(ctx context.Context, userID uuid.UUID, match func(hash string) bool) (ok bool,
	remaining int, err error) {
	type code struct {
		id   int64
		hash string
	}
	rows, err := s.Pool.Query(ctx, `SELECT id, code_hash FROM mfa_backup_codes
		WHERE user_id = $1 AND used_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return false, 0, fmt.Errorf("use backup code of user %s: %w", userID, err)
	}
	codes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (code, error) {
		var c code
		return c, r.Scan(&c.id, &c.hash)
	})
	if err != nil {
		return false, 0, fmt.Errorf("use backup code of user %s: %w", userID, err)
	}
	for _, c := range codes {
		if !match(c.hash) {
			continue
		}
		// One statement spends the code and counts the others, so a spent
		// code is never reported as a failure. Both parts read the snapshot
		// from before the update; the count leaves the code out.
		var used int
		err := s.Pool.QueryRow(ctx, `WITH used AS (
				UPDATE mfa_backup_codes SET used_at = now()
				WHERE id = $1 AND user_id = $2 AND used_at IS NULL RETURNING id)
			SELECT (SELECT count(*) FROM used),
				(SELECT count(*) FROM mfa_backup_codes WHERE user_id = $2 AND used_at IS NULL AND id <> $1)`,
			c.id, userID).Scan(&used, &remaining)
		if err != nil {
			return false, 0, fmt.Errorf("use backup code of user %s: %w", userID, err)
		}
		// Codes are random, so no other one matches the same input: a
		// lost race is a failure, not a reason to look further.
		return used == 1, remaining, nil
	}
	remaining, err = s.CountBackupCodes(ctx, userID)
	if err != nil {
		return false, 0, err
	}
	return false, remaining, nil
}

// CountBackupCodes counts a user's unused backup codes.
func (s *Store) CountBackupCodes(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL`,
		userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count backup codes of user %s: %w", userID, err)
	}
	return n, nil
}
