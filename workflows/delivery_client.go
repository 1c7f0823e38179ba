package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/schemas"
)

// TestTarget names the target of a test send: exactly one of the two.
type TestTarget struct {
	WebhookID     *uuid.UUID
	IntegrationID *uuid.UUID
}

// testSendTimeout bounds a test send's run: one attempt (at most
// WEBHOOK_TIMEOUT) and two inserts.
const testSendTimeout = 2 * time.Minute

// SendTest sends a test event (event type "test", data {"message": "This is
// a test event from StreamSpace"}) to a webhook or an integration: it creates
// a test delivery and makes exactly one attempt, without retries, in the run
// delivery/<new delivery id>, waits for it and answers the attempt as
// recorded (its Outcome is succeeded or failed; a receiver's failure is not
// an error). A target that does not exist answers an error wrapping
// schemas.ErrNotFound. A disabled target is sent to all the same.
func (c *Client) SendTest(ctx context.Context, target TestTarget) (schemas.DeliveryAttempt, error) {
	if (target.WebhookID == nil) == (target.IntegrationID == nil) {
		return schemas.DeliveryAttempt{}, errors.New("send test: name exactly one of webhook and integration")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return schemas.DeliveryAttempt{}, err
	}
	in := TestDeliveryInput{DeliveryID: id.String()}
	if target.WebhookID != nil {
		in.WebhookID = target.WebhookID.String()
	} else {
		in.IntegrationID = target.IntegrationID.String()
	}
	run, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       c.id(DeliveryWorkflowID(in.DeliveryID)),
		TaskQueue:                c.taskQueue(),
		WorkflowExecutionTimeout: testSendTimeout,
		TypedSearchAttributes:    deliverySearchAttributes(in.DeliveryID, "test", in.WebhookID, in.IntegrationID),
	}, TestDelivery, in)
	if err != nil {
		return schemas.DeliveryAttempt{}, fmt.Errorf("send test: %w", err)
	}
	var attempt schemas.DeliveryAttempt
	if err := run.Get(ctx, &attempt); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == "NotFound" {
			return schemas.DeliveryAttempt{}, fmt.Errorf("send test: %w", schemas.ErrNotFound)
		}
		return schemas.DeliveryAttempt{}, fmt.Errorf("send test: %w", err)
	}
	return attempt, nil
}

// Redeliver asks for one more attempt of a delivery, with the same delivery
// id (webhook-id) and the next attempt number, and the webhook's retry
// policy afresh if it fails. If the delivery's run is waiting to retry, it
// stops waiting and attempts now; otherwise a new run of delivery/<id>
// starts. It returns once the request is with Temporal; the attempt shows in
// the delivery log. The caller checks that the delivery exists (a run for
// an unknown one ends at once) and should refuse a delivery that is still
// pending (its first attempt is under way).
func (c *Client) Redeliver(ctx context.Context, deliveryID uuid.UUID) error {
	id := deliveryID.String()
	// A delivery whose run was started before the prefix keeps that run.
	if done, err := c.signalLegacy(ctx, DeliveryWorkflowID(id), SignalRedeliver, nil); done || err != nil {
		if err != nil {
			return fmt.Errorf("redeliver %s: %w", id, err)
		}
		return nil
	}
	wid := c.id(DeliveryWorkflowID(id))
	_, err := c.Temporal.SignalWithStartWorkflow(ctx, wid, SignalRedeliver, nil,
		client.StartWorkflowOptions{
			ID:                    wid,
			TaskQueue:             c.taskQueue(),
			WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes: deliverySearchAttributes(id, "", "", ""),
		}, DeliverWithRetry, DeliverInput{DeliveryID: id, Try: 1, IDPrefix: c.IDPrefix})
	if err != nil {
		return fmt.Errorf("redeliver %s: %w", id, err)
	}
	return nil
}
