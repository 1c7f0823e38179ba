package schemas

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// StartedSessionIDs lists the sessions in namespace whose Session resource
// certainly exists: those recorded Running or Hibernated (their run created
// the Session and saw it run). A Pending session is left out, as its run
// may not have created the Session yet (or is waking it), and so are ended
// ones.
func (s *Store) StartedSessionIDs(ctx context.Context, namespace string) ([]string, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id FROM sessions WHERE namespace = $1
		AND phase IN ('Running', 'Hibernated') ORDER BY created_at`, namespace)
	if err != nil {
		return nil, fmt.Errorf("started sessions in %s: %w", namespace, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("started sessions in %s: %w", namespace, err)
	}
	return ids, nil
}
