package workflows

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/internal/wfid"
)

// EndDeliveryRunsInput names the deliveries whose DeliverWithRetry runs
// are to end: those of a webhook or integration just disabled or deleted
// (their rows already say cancelled, or are gone).
type EndDeliveryRunsInput struct {
	DeliveryIDs []string
	// IDPrefix is the deployment's workflow ID prefix (ids.go); "" in runs
	// started before it existed.
	IDPrefix string
}

// Cancellation requests a run of EndDeliveryRuns sends at once, and per run
// before it continues as new (its history stays small however many
// deliveries a dead endpoint piled up).
const (
	endRunsInFlight = 100
	endRunsPerRun   = 1000
)

// EndDeliveryRuns asks each named delivery's run to cancel: the run's timer
// and any attempt in flight end, and it closes as cancelled. A run that
// already closed (or never started) is skipped. With a prefix, a delivery
// whose prefixed run is not open has its legacy run (started before the
// prefix) asked instead.
func EndDeliveryRuns(ctx workflow.Context, in EndDeliveryRunsInput) (int, error) {
	ids, rest := in.DeliveryIDs, []string(nil)
	if len(ids) > endRunsPerRun {
		ids, rest = ids[:endRunsPerRun], ids[endRunsPerRun:]
	}
	ended := 0
	for lo := 0; lo < len(ids); lo += endRunsInFlight {
		chunk := ids[lo:min(lo+endRunsInFlight, len(ids))]
		futures := make([]workflow.Future, len(chunk))
		for i, id := range chunk {
			futures[i] = workflow.RequestCancelExternalWorkflow(ctx, wfid.Join(in.IDPrefix, DeliveryWorkflowID(id)), "")
		}
		var legacy []workflow.Future
		for i, f := range futures {
			if f.Get(ctx, nil) == nil { // an error: no such run open
				ended++
			} else if in.IDPrefix != "" {
				legacy = append(legacy, workflow.RequestCancelExternalWorkflow(ctx, DeliveryWorkflowID(chunk[i]), ""))
			}
		}
		for _, f := range legacy {
			if f.Get(ctx, nil) == nil {
				ended++
			}
		}
	}
	if len(rest) > 0 {
		return ended, workflow.NewContinueAsNewError(ctx, EndDeliveryRuns, EndDeliveryRunsInput{DeliveryIDs: rest, IDPrefix: in.IDPrefix})
	}
	return ended, nil
}

// endRunsAfter is the runs to end after the attempt of delivery by
// disabled their target.
type endRunsAfter struct {
	by  string
	ids []string
}

// endRuns starts, from a workflow, the EndDeliveryRuns run for the
// deliveries cancelled when the attempt of delivery by disabled their
// target, and waits until it has started (it outlives the caller).
func endRuns(ctx workflow.Context, prefix, by string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            wfid.Join(prefix, "end-deliveries/after/"+by),
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	err := workflow.ExecuteChildWorkflow(cctx, EndDeliveryRuns, EndDeliveryRunsInput{DeliveryIDs: ids, IDPrefix: prefix}).
		GetChildWorkflowExecution().Get(ctx, nil)
	if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return err
	}
	return nil
}

// EndDeliveryRuns starts an EndDeliveryRuns run for ids (nothing when
// there are none) on the events task queue. When it cannot start
// (Temporal unreachable), each run still ends at its next wake, finding
// its delivery cancelled or gone; the error says so.
func (c *Client) EndDeliveryRuns(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	runID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	in := EndDeliveryRunsInput{DeliveryIDs: make([]string, len(ids)), IDPrefix: c.IDPrefix}
	for i, id := range ids {
		in.DeliveryIDs[i] = id.String()
	}
	_, err = c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    c.id("end-deliveries/" + runID.String()),
		TaskQueue:             EventsTaskQueue(c.taskQueue()),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, EndDeliveryRuns, in)
	if err != nil {
		return fmt.Errorf("end the retry runs of %d deliveries: %w", len(ids), err)
	}
	return nil
}
