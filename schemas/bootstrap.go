package schemas

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// bootstrapLock serialises first-admin creation between replicas starting at
// the same moment.
const bootstrapLock = 0x5354524d41444d // "STRMADM"

// CreateFirstAdmin inserts u (an admin) only if there are no users at all,
// publishing user.created with it. It reports whether it did.
func (s *Store) CreateFirstAdmin(ctx context.Context, u *User) (bool, error) {
	created := false
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, bootstrapLock); err != nil {
			return err
		}
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users)`).Scan(&any); err != nil || any {
			return err
		}
		if err := InsertUser(ctx, tx, u); err != nil {
			return err
		}
		created = true
		_, err := Publish(ctx, tx, Event{Type: EventUserCreated, Data: UserEventData{
			UserID: u.ID.String(), Username: u.Username, Email: u.Email, Role: u.Role}})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap admin: %w", err)
	}
	return created, nil
}
