package schemas

import (
	"context"
)

// StartedSessionIDs lists the sessions in namespace whose Session resource
// certainly exists: those recorded Running or Hibernated (their run created
// the Session and saw it run). A Pending session is left out, as its run
// may not have created the Session yet (or is waking it), and so are ended
// ones.
func (s *Store) StartedSessionIDs(ctx context.Context, namespace string) ([]string, error) {
	return s.sessionIDs(ctx, "started sessions in "+namespace, `SELECT id FROM sessions WHERE namespace = $1
		AND phase IN ('Running', 'Hibernated') ORDER BY created_at`, namespace)
}
