package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The expiry of temporary allowlist entries (grants): the ipgrant/<id>
// workflow calls ExpireIPEntry at the entry's expiry. The allowlist check
// ignores an expired entry on its own; this records the expiry for people:
// the row shows it disabled with expired_at, and the audit log says when and
// by which run.

// AuditIPGrantExpired is the audit action of an entry disabled at its expiry.
const AuditIPGrantExpired = "ip_grant.expired"

// ExpireResult is what ExpireIPEntry found and did.
type ExpireResult struct {
	// Gone: the entry no longer exists (deleted); nothing to do.
	Gone bool
	// Expired: the entry's expiry has passed and the entry is disabled
	// (by this call, or before it).
	Expired bool
	// Recorded: this call disabled the entry and wrote the audit row.
	Recorded bool
	// ExpiresAt is the entry's expiry; nil when it no longer expires (and
	// nothing was changed). A time after Now means it is not due yet:
	// nothing was changed, the caller waits until then.
	ExpiresAt *time.Time
	// Now is the database's clock when it looked, the one expiry is judged
	// by: ExpiresAt.Sub(Now) is the time left, whatever the caller's clock.
	Now time.Time
}

// ExpireIPEntry disables allowlist entry id if its expiry has passed by the
// database's clock, and writes the audit row (action ip_grant.expired,
// request_id "<workflowID>:<runID>") in the same transaction. It is
// idempotent: an entry already disabled is left as it is, without a second
// audit row. An entry that is not due, or no longer expires, is not changed.
func (s *Store) ExpireIPEntry(ctx context.Context, id int64, workflowID, runID string) (ExpireResult, error) {
	var res ExpireResult
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		res = ExpireResult{}
		var (
			userID   *uuid.UUID
			cidr     string
			enabled  bool
			granted  bool
			restrict bool
		)
		err := tx.QueryRow(ctx, `SELECT user_id, cidr::text, enabled, granted, restricted, expires_at, now()
			FROM ip_allowlist WHERE id = $1 FOR UPDATE`, id).
			Scan(&userID, &cidr, &enabled, &granted, &restrict, &res.ExpiresAt, &res.Now)
		if errors.Is(err, pgx.ErrNoRows) {
			res.Gone = true
			return nil
		}
		if err != nil {
			return err
		}
		if res.ExpiresAt == nil || res.ExpiresAt.After(res.Now) {
			return nil
		}
		res.Expired = true
		if !enabled {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE ip_allowlist SET enabled = false, expired_at = now(), updated_at = now()
			WHERE id = $1`, id); err != nil {
			return err
		}
		scope := "global"
		if userID != nil {
			scope = userID.String()
		}
		details, err := json.Marshal(map[string]any{"cidr": cidr, "user_id": scope,
			"expires_at": res.ExpiresAt.UTC().Format(time.RFC3339Nano), "granted": granted, "restricted": restrict})
		if err != nil {
			return err
		}
		ref := strconv.FormatInt(id, 10)
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (method, route, action, target_id, status, request_id, details)
			VALUES ('WORKFLOW', $1, $2, $3, 200, $4, $5)`,
			"ipgrant/"+ref, AuditIPGrantExpired, ref, workflowID+":"+runID, string(details)); err != nil {
			return err
		}
		res.Recorded = true
		return nil
	})
	if err != nil {
		return ExpireResult{}, fmt.Errorf("expire allowlist entry %d: %w", id, err)
	}
	res.Now = res.Now.UTC()
	if res.ExpiresAt != nil {
		t := res.ExpiresAt.UTC()
		res.ExpiresAt = &t
	}
	return res, nil
}
