package workflows

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// SetIPGrantExpiry tells allowlist entry entryID's expiry run (ipgrant/<id>)
// the entry's expiry, once the change is in the database; it returns when
// the run has taken it.
//
// A time (in the past = now) moves the running run's deadline, or starts a
// run when none is open: one Update-with-Start, so a run that is starting or
// ending at the same moment still ends up with exactly one open run holding
// the new deadline. nil says the entry no longer expires, or was deleted:
// an open run ends; with none open there is nothing to do.
//
// The call needs a worker to take the Update: while no worker polls the
// task queue it waits, until ctx ends. The allowlist check refuses expired
// entries by itself, so a failed call only delays the recording of the
// expiry; the caller may log it and go on.
func (c *Client) SetIPGrantExpiry(ctx context.Context, entryID int64, expiresAt *time.Time) error {
	local := IPGrantID(entryID)
	id := c.id(local)
	update := client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   UpdateSetIPGrantExpiry,
		Args:         []any{IPGrantExpiry{ExpiresAt: expiresAt}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	if expiresAt == nil {
		err := c.update(ctx, local, update, nil)
		if err != nil && !isNotFound(err) { // NotFound: no run, or it already ended
			return fmt.Errorf("end %s: %w", id, err)
		}
		return nil
	}
	if expiresAt.IsZero() {
		return fmt.Errorf("set expiry of %s: a zero time (nil means none)", id)
	}
	// A grant whose run was started before the prefix keeps that run.
	if done, err := c.updateLegacy(ctx, local, update); done || err != nil {
		if err != nil {
			return fmt.Errorf("set expiry of %s: %w", local, err)
		}
		return nil
	}
	start := c.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                c.taskQueue(),
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, IPGrant, IPGrantInput{EntryID: entryID, ExpiresAt: *expiresAt})
	h, err := c.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions:          update,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("set expiry of %s: %w", id, err)
	}
	return nil
}
