package schemas

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// LiveHomeSessionIDsOf lists the user's live sessions (not Failed or
// Terminated; hibernated ones too, which mount the home again when they
// wake) that use the persistent home (spec.persistentHome not false), oldest
// first.
func (s *Store) LiveHomeSessionIDsOf(ctx context.Context, userID uuid.UUID) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id FROM sessions WHERE user_id = $1
		AND phase NOT IN ('Failed', 'Terminated')
		AND coalesce((spec->>'persistentHome')::boolean, true) ORDER BY created_at`, userID)
	if err != nil {
		return nil, fmt.Errorf("live sessions with the home of %s: %w", userID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("live sessions with the home of %s: %w", userID, err)
	}
	return ids, nil
}
