package schemas

import (
	"context"

	"github.com/google/uuid"
)

// LiveHomeSessionIDsOf lists the user's live sessions (not Failed or
// Terminated; hibernated ones too, which mount the home again when they
// wake) that use the persistent home (spec.persistentHome not false), oldest
// first.
func (s *Store) LiveHomeSessionIDsOf(ctx context.Context, userID uuid.UUID) ([]string, error) {
	return s.sessionIDs(ctx, "live sessions with the home of "+userID.String(), `SELECT id FROM sessions WHERE user_id = $1
		AND phase NOT IN ('Failed', 'Terminated')
		AND coalesce((spec->>'persistentHome')::boolean, true) ORDER BY created_at`, userID)
}
