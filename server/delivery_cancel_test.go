package server

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// waitingRetry gives the webhook a delivery waiting an hour to retry, in
// its own DeliverWithRetry run as a batch run of an earlier version starts
// it, and answers the run.
func waitingRetry(t *testing.T, b *apiBundle, webhookID uuid.UUID) (uuid.UUID, client.WorkflowRun) {
	t.Helper()
	id := insertWebhookDelivery(t, b, webhookID, "session.created", schemas.DeliveryRetrying, time.Now())
	_, err := b.store.Pool.Exec(context.Background(), `UPDATE deliveries SET own_run = true WHERE id = $1`, id)
	require.NoError(t, err)
	wf := b.server.deps.Workflows
	run, err := wf.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflows.DeliveryWorkflowID(id.String()), TaskQueue: workflows.EventsTaskQueue(wf.TaskQueue),
	}, workflows.DeliverWithRetry, workflows.DeliverInput{DeliveryID: id.String(), EventType: "session.created",
		WebhookID: webhookID.String(), NextAttempt: 2, Try: 2, Wait: time.Hour})
	require.NoError(t, err)
	return id, run
}

// requireCancelled waits for the run to close and checks it was cancelled.
func requireCancelled(t *testing.T, run client.WorkflowRun) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run.Get(ctx, nil)
	require.True(t, temporal.IsCanceledError(err), "the retry run ends cancelled, not after its hour: %v", err)
}

// Disabling or deleting a webhook ends the pending retries of deliveries
// with runs of their own at once, recorded as cancelled; other webhooks'
// retries carry on.
func TestDisablingAWebhookEndsItsOwnRetryRuns(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookEngineAPI(t)
	rc := newHookReceiver(t)
	newHook := func() uuid.UUID {
		return createWebhookViaAPI(b, webhookBody(func(m map[string]any) { m["url"] = rc.srv.URL + "/hook" })).ID
	}
	disabled, deleted, kept := newHook(), newHook(), newHook()
	d1, run1 := waitingRetry(t, b, disabled)
	_, run2 := waitingRetry(t, b, deleted)
	_, run3 := waitingRetry(t, b, kept)

	b.callJSON("PATCH", "/api/webhooks/"+disabled.String(), b.admin.Token, map[string]any{"enabled": false}, 200, nil)
	requireCancelled(t, run1)
	var detail deliveryDetailJSON
	b.callJSON("GET", "/api/webhooks/"+disabled.String()+"/deliveries/"+d1.String(), b.admin.Token, nil, 200, &detail)
	require.Equal(t, schemas.DeliveryCancelled, detail.State)
	require.Equal(t, "webhook disabled", detail.LastError)
	require.Empty(t, rc.requests(), "no attempt was made")

	// Enabled again, a cancelled delivery can be redelivered.
	b.callJSON("PATCH", "/api/webhooks/"+disabled.String(), b.admin.Token, map[string]any{"enabled": true}, 200, nil)
	b.callJSON("POST", "/api/webhooks/"+disabled.String()+"/deliveries/"+d1.String()+"/redeliver", b.admin.Token, nil, 202, nil)
	require.Eventually(t, func() bool {
		detail = deliveryDetailJSON{}
		b.callJSON("GET", "/api/webhooks/"+disabled.String()+"/deliveries/"+d1.String(), b.admin.Token, nil, 200, &detail)
		return detail.State == schemas.DeliverySucceeded
	}, 30*time.Second, 50*time.Millisecond, "the redelivery never succeeded: %+v", detail)
	require.Len(t, rc.requests(), 1)

	b.callJSON("DELETE", "/api/webhooks/"+deleted.String(), b.admin.Token, nil, 204, nil)
	requireCancelled(t, run2)

	desc, err := b.server.deps.Workflows.Temporal.DescribeWorkflowExecution(context.Background(), run3.GetID(), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status, "another webhook's retry still waits")
}

// waitingLoop gives the webhook a delivery waiting an hour to retry in the
// webhook's retry loop, wakes the loop, and answers it.
func waitingLoop(t *testing.T, b *apiBundle, webhookID uuid.UUID) (uuid.UUID, client.WorkflowRun) {
	t.Helper()
	ctx := context.Background()
	id := insertWebhookDelivery(t, b, webhookID, "session.created", schemas.DeliveryRetrying, time.Now())
	_, err := b.store.Pool.Exec(ctx, `UPDATE deliveries SET attempts = 1, next_attempt_at = now() + interval '1 hour'
		WHERE id = $1`, id)
	require.NoError(t, err)
	wf := b.server.deps.Workflows
	target := workflows.WebhookTarget(webhookID)
	require.NoError(t, wf.WakeTargetRetries(ctx, []activities.RetryTarget{target}))
	return id, wf.Temporal.GetWorkflow(ctx, workflows.TargetRetriesWorkflowID(target), "")
}

// Disabling or deleting a webhook cancels its retry loop at once (its
// deliveries recorded as cancelled); a redelivery after enabling it again
// goes out in a new loop, which ends once nothing waits; another webhook's
// loop carries on.
func TestDisablingAWebhookEndsItsRetryLoop(t *testing.T) {
	t.Parallel()
	b, _ := newWebhookEngineAPI(t)
	rc := newHookReceiver(t)
	newHook := func() uuid.UUID {
		return createWebhookViaAPI(b, webhookBody(func(m map[string]any) { m["url"] = rc.srv.URL + "/hook" })).ID
	}
	disabled, deleted, kept := newHook(), newHook(), newHook()
	d1, loop1 := waitingLoop(t, b, disabled)
	_, loop2 := waitingLoop(t, b, deleted)
	_, loop3 := waitingLoop(t, b, kept)

	b.callJSON("PATCH", "/api/webhooks/"+disabled.String(), b.admin.Token, map[string]any{"enabled": false}, 200, nil)
	requireCancelled(t, loop1)
	var detail deliveryDetailJSON
	b.callJSON("GET", "/api/webhooks/"+disabled.String()+"/deliveries/"+d1.String(), b.admin.Token, nil, 200, &detail)
	require.Equal(t, schemas.DeliveryCancelled, detail.State)
	require.Empty(t, rc.requests(), "no attempt was made")

	b.callJSON("PATCH", "/api/webhooks/"+disabled.String(), b.admin.Token, map[string]any{"enabled": true}, 200, nil)
	b.callJSON("POST", "/api/webhooks/"+disabled.String()+"/deliveries/"+d1.String()+"/redeliver", b.admin.Token, nil, 202, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	again := b.server.deps.Workflows.Temporal.GetWorkflow(ctx, loop1.GetID(), "")
	require.NotEqual(t, loop1.GetRunID(), again.GetRunID(), "a new loop")
	require.NoError(t, again.Get(ctx, nil), "the loop ends once the redelivery went out")
	b.callJSON("GET", "/api/webhooks/"+disabled.String()+"/deliveries/"+d1.String(), b.admin.Token, nil, 200, &detail)
	require.Equal(t, schemas.DeliverySucceeded, detail.State)
	require.Equal(t, 2, detail.AttemptCount, "the attempt after the first")
	require.Len(t, detail.Attempts, 1)
	require.Equal(t, 2, detail.Attempts[0].Attempt)
	require.Len(t, rc.requests(), 1)

	b.callJSON("DELETE", "/api/webhooks/"+deleted.String(), b.admin.Token, nil, 204, nil)
	requireCancelled(t, loop2)

	desc, err := b.server.deps.Workflows.Temporal.DescribeWorkflowExecution(context.Background(), loop3.GetID(), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status, "another webhook's loop still waits")
}
