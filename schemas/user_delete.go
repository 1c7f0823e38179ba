package schemas

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Deleting a user is two steps with the user's sessions ended in between
// (the DeleteUser workflow): BeginUserDelete deactivates the account, so it
// can neither sign in nor start another session, and FinishUserDelete
// removes it once its sessions have ended.

// BeginUserDelete deactivates a user and revokes their refresh tokens, and
// returns the user as it was.
func (s *Store) BeginUserDelete(ctx context.Context, id uuid.UUID) (User, error) {
	var was User
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		u, err := LockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		was = u
		u.Active = false
		if err := UpdateUser(ctx, tx, &u); err != nil {
			return err
		}
		return RevokeUserRefreshTokens(ctx, tx, id)
	})
	return was, err
}

// LiveSessionIDsOf lists the ids of a user's live sessions.
func (s *Store) LiveSessionIDsOf(ctx context.Context, userID uuid.UUID) ([]string, error) {
	return s.sessionIDs(ctx, "live sessions of "+userID.String(), `SELECT id FROM sessions WHERE user_id = $1
		AND phase NOT IN ('Failed', 'Terminated') ORDER BY created_at`, userID)
}

// ErrUserHasSessions is FinishUserDelete's answer while the user still has a
// live session.
var ErrUserHasSessions = errors.New("the user still has live sessions")

// FinishUserDelete deletes a deactivated user without live sessions (their
// rows go with them) and publishes user.updated with changed ["deleted"].
// A user already gone is not an error (deleted reports false), so a retried
// step is harmless.
func (s *Store) FinishUserDelete(ctx context.Context, id uuid.UUID) (deleted bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		u, err := LockUser(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if u.Active {
			return fmt.Errorf("delete user %s: %w: the account was reactivated meanwhile", id, ErrConflict)
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE user_id = $1
			AND phase NOT IN ('Failed', 'Terminated')`, id).Scan(&live); err != nil {
			return fmt.Errorf("count live sessions of %s: %w", id, err)
		}
		if live > 0 {
			return fmt.Errorf("delete user %s: %w (%d)", id, ErrUserHasSessions, live)
		}
		if err := DeleteUser(ctx, tx, id); err != nil {
			return err
		}
		deleted = true
		_, err = Publish(ctx, tx, Event{Type: EventUserUpdated, Data: UserEventData{UserID: u.ID.String(),
			Username: u.Username, Email: u.Email, Role: u.Role, Changed: []string{"deleted"}}})
		return err
	})
	return deleted, err
}
