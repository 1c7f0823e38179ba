package workflows

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// StartSession starts a session's lifecycle run. Starting one that already
// runs is not an error.
func (c *Client) StartSession(ctx context.Context, in SessionInput, username string) error {
	id := c.id(SessionWorkflowID(in.SessionID))
	_, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                c.taskQueue(),
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SessionIDAttr.ValueSet(in.SessionID), SessionUserAttr.ValueSet(username)),
	}, SessionLifecycle, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}

// HibernateSession asks a running session to hibernate and waits until it
// has (its pod is gone).
func (c *Client) HibernateSession(ctx context.Context, sessionID string) (SessionStatus, error) {
	return c.updateSession(ctx, sessionID, UpdateHibernate)
}

// WakeSession asks a hibernated session to run again and waits until it is
// Running.
func (c *Client) WakeSession(ctx context.Context, sessionID string) (SessionStatus, error) {
	return c.updateSession(ctx, sessionID, UpdateWake)
}

// TerminateSession ends a session: its Session resource and pod are deleted
// and its run completes.
func (c *Client) TerminateSession(ctx context.Context, sessionID, reason string) (SessionStatus, error) {
	return c.updateSession(ctx, sessionID, UpdateTerminate, TerminateRequest{Reason: reason})
}

func (c *Client) updateSession(ctx context.Context, sessionID, name string, args ...any) (SessionStatus, error) {
	var st SessionStatus
	err := c.update(ctx, SessionWorkflowID(sessionID), client.UpdateWorkflowOptions{
		UpdateName:   name,
		Args:         args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}, &st)
	return st, err
}

// RecordSessionActivity tells a session's run that its user is active.
func (c *Client) RecordSessionActivity(ctx context.Context, sessionID string) error {
	return c.signal(ctx, SessionWorkflowID(sessionID), SignalActivity, nil)
}

// SessionStatusOf asks a session's run for its status.
func (c *Client) SessionStatusOf(ctx context.Context, sessionID string) (SessionStatus, error) {
	v, err := c.query(ctx, SessionWorkflowID(sessionID), QueryStatus)
	if err != nil {
		return SessionStatus{}, err
	}
	var st SessionStatus
	err = v.Get(&st)
	return st, err
}

// SignalSessionObserved tells the run of session sessionID (prefixed, else
// legacy) what the session watcher saw happen to its Session. A run that
// has ended, or never existed, is not an error: there is nothing left to
// tell.
func (c *Client) SignalSessionObserved(ctx context.Context, sessionID string, ev SessionObserved) error {
	err := c.signal(ctx, SessionWorkflowID(sessionID), SignalObserved, ev)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}
