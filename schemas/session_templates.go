package schemas

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// templateLockClass is the first key of the advisory locks that make a
// template's deletion and the sessions created from it atomic: a session's
// insert holds the lock shared (so sessions still start in parallel), a
// template's deletion holds it exclusively while it counts the template's
// live sessions and deletes it.
const templateLockClass = 0x54504c // "TPL"

// lockTemplate takes the template's lock until the transaction ends.
func lockTemplate(ctx context.Context, tx pgx.Tx, namespace, template string, exclusive bool) error {
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	_, err := tx.Exec(ctx, `SELECT `+fn+`($1, hashtext($2 || '/' || $3))`, templateLockClass, namespace, template)
	if err != nil {
		return fmt.Errorf("lock template %s/%s: %w", namespace, template, err)
	}
	return nil
}

// DeleteTemplateIfUnused deletes a template (del, the Kubernetes delete) only
// if no live session uses it, and answers how many do (0 when deleted).
// While del runs no session of the template can be created: the check and
// the delete are one step against CreateSession, which confirms the
// template still exists under the same lock.
func (s *Store) DeleteTemplateIfUnused(ctx context.Context, namespace, template string,
	del func(context.Context) error) (live int, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockTemplate(ctx, tx, namespace, template, true); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE namespace = $1 AND template = $2
			AND phase NOT IN ('Failed', 'Terminated')`, namespace, template).Scan(&live)
		if err != nil {
			return fmt.Errorf("count live sessions of template %s: %w", template, err)
		}
		if live > 0 {
			return nil
		}
		return del(ctx)
	})
	return live, err
}
