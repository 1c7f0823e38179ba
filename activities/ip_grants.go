package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/schemas"
)

// IPGrants holds the activity of the temporary allowlist entries' runs
// (ipgrant/<id>).
type IPGrants struct {
	Store *schemas.Store
}

// ExpireIPGrantInput names the allowlist entry whose expiry is due.
type ExpireIPGrantInput struct {
	EntryID int64
}

// ErrTypeBadEntryID is the non-retryable error of an entry id that cannot
// be one (not positive).
const ErrTypeBadEntryID = "BadEntryID"

// ExpireIPGrant disables the entry if its expiry has passed by the
// database's clock and records it in the audit log, with the calling run
// (workflow ID and run ID) as the request ID; see schemas.ExpireIPEntry. A
// retry after a lost answer changes nothing and answers Expired without
// Recorded.
func (a *IPGrants) ExpireIPGrant(ctx context.Context, in ExpireIPGrantInput) (schemas.ExpireResult, error) {
	if in.EntryID <= 0 {
		return schemas.ExpireResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("bad allowlist entry id %d", in.EntryID), ErrTypeBadEntryID, nil)
	}
	run := activity.GetInfo(ctx).WorkflowExecution
	return a.Store.ExpireIPEntry(ctx, in.EntryID, run.ID, run.RunID)
}
