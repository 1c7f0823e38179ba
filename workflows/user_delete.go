package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
)

// Deleting a user. DELETE /api/admin/users/{id} deactivates the account (it
// can no longer sign in or start a session) and, when the user has live
// sessions, starts DeleteUser (ID user-delete/<user id>): it ends each
// session through its lifecycle run, then deletes the account. Starting it
// again while it runs joins the running one; after it ends, a new run finds
// nothing left to do.

var userActs *activities.Users

// UserDeleteID is the workflow ID of a user's deletion run.
func UserDeleteID(userID string) string { return "user-delete/" + userID }

// UserDeleteResult is what a deletion run did.
type UserDeleteResult struct {
	SessionsEnded int
	// Deleted is false when the account was already gone.
	Deleted bool
}

// endSessionsOptions: ending a session waits for its run (seconds each);
// the activity heartbeats per session and is retried for an hour.
var endSessionsOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Minute,
	HeartbeatTimeout:       2 * time.Minute,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
}

// DeleteUser ends the user's sessions and deletes the account.
func DeleteUser(ctx workflow.Context, in activities.UserDeleteInput) (UserDeleteResult, error) {
	var res UserDeleteResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, endSessionsOptions),
		userActs.EndUserSessions, in).Get(ctx, &res.SessionsEnded)
	if err != nil {
		return res, err
	}
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, dbOptions),
		userActs.FinishUserDelete, in).Get(ctx, &res.Deleted)
	return res, err
}
