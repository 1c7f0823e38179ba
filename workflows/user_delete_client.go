package workflows

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/activities"
)

// StartUserDelete starts (or joins the running) deletion run of a user.
func (c *Client) StartUserDelete(ctx context.Context, in activities.UserDeleteInput) (client.WorkflowRun, error) {
	id := UserDeleteID(in.UserID)
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
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("%w: %v", activities.ErrNoSessionRun, err)
	}
	return err
}
