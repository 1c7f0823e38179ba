package workflows

import (
	"context"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/activities"
)

// StartUserDelete starts (or joins the running) deletion run of a user.
func (c *Client) StartUserDelete(ctx context.Context, in activities.UserDeleteInput) (client.WorkflowRun, error) {
	local := UserDeleteID(in.UserID)
	// A deletion started before the prefix is joined while it runs.
	if open, err := c.openLegacy(ctx, local); err != nil {
		return nil, fmt.Errorf("start %s: %w", local, err)
	} else if open {
		return c.Temporal.GetWorkflow(ctx, local, ""), nil
	}
	id := c.id(local)
	run, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue(),
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, DeleteUser, in)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	return run, nil
}

// EndSession terminates a session through its run and waits until it has
// ended (activities.SessionEnder). A session whose run is gone or already
// completed answers activities.ErrNoSessionRun.
func (c *Client) EndSession(ctx context.Context, sessionID, reason string) error {
	_, err := c.TerminateSession(ctx, sessionID, reason)
	if isNotFound(err) {
		return fmt.Errorf("%w: %v", activities.ErrNoSessionRun, err)
	}
	return err
}
