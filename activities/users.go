package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/schemas"
)

// Users holds the activities of a user's deletion run (user-delete/<id>):
// end the user's sessions, then delete the account.
type Users struct {
	Store *schemas.Store
	// Kube deletes the Session resources of sessions no run holds; nil:
	// only their rows are ended.
	Kube *Kube
	// Sessions ends sessions through their lifecycle runs.
	Sessions SessionEnder
}

// SessionEnder ends a session through its lifecycle run and waits until it
// has ended (its Session resource is gone and the row says Terminated).
type SessionEnder interface {
	EndSession(ctx context.Context, sessionID, reason string) error
}

// ErrNoSessionRun is a SessionEnder's answer for a session no run holds.
var ErrNoSessionRun = errors.New("no lifecycle run holds the session")

// UserDeleteInput names the user being deleted and who asked.
type UserDeleteInput struct {
	UserID   string
	Username string
	Actor    string
}

// ErrTypeBadUserID is the non-retryable error of an id that is no UUID.
const ErrTypeBadUserID = "BadUserID"

func (in UserDeleteInput) id() (uuid.UUID, error) {
	id, err := uuid.Parse(in.UserID)
	if err != nil {
		return uuid.Nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bad user id %q", in.UserID), ErrTypeBadUserID, err)
	}
	return id, nil
}

func (in UserDeleteInput) reason() string {
	return fmt.Sprintf("user %s deleted by %s", in.Username, in.Actor)
}

// EndUserSessions ends every live session of the user, one after another,
// heartbeating after each, and answers how many it ended. A session no run
// holds is ended directly. Run again it finds only what is still live.
func (a *Users) EndUserSessions(ctx context.Context, in UserDeleteInput) (int, error) {
	id, err := in.id()
	if err != nil {
		return 0, err
	}
	if a.Sessions == nil {
		return 0, errors.New("end user sessions: this worker has no Temporal client (Users.Sessions)")
	}
	ids, err := a.Store.LiveSessionIDsOf(ctx, id)
	if err != nil {
		return 0, err
	}
	for i, sessionID := range ids {
		err := a.Sessions.EndSession(ctx, sessionID, in.reason())
		if errors.Is(err, ErrNoSessionRun) {
			err = a.endOrphan(ctx, sessionID, in.reason())
		}
		if err != nil {
			return i, fmt.Errorf("end session %s: %w", sessionID, err)
		}
		activity.RecordHeartbeat(ctx, i+1)
	}
	return len(ids), nil
}

// endOrphan ends a live session no run holds (EndOrphanSession).
func (a *Users) endOrphan(ctx context.Context, sessionID, reason string) error {
	row, err := a.Store.GetSession(ctx, sessionID)
	if errors.Is(err, schemas.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return EndOrphanSession(ctx, a.Kube, a.Store, row, reason)
}

// FinishUserDelete deletes the account once no session of it is live (a
// live one is a retryable error: the ending is still being recorded), then
// the user's persistent home claim, and answers whether this call deleted
// the account.
func (a *Users) FinishUserDelete(ctx context.Context, in UserDeleteInput) (bool, error) {
	id, err := in.id()
	if err != nil {
		return false, err
	}
	deleted, err := a.Store.FinishUserDelete(ctx, id)
	if errors.Is(err, schemas.ErrConflict) {
		return false, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeUserReactivated, err)
	}
	if err != nil {
		return false, err
	}
	// The account is gone: so goes its persistent home (a retry after a
	// failed delete finds the account gone and deletes the home).
	if err := DeleteHomeIfAny(ctx, a.Kube, in.UserID); err != nil {
		return deleted, err
	}
	return deleted, nil
}

// ErrTypeUserReactivated: an admin reactivated the account while it was
// being deleted; the deletion stops and the account stays.
const ErrTypeUserReactivated = "UserReactivated"
