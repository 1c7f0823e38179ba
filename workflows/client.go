package workflows

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// Client is the typed starter the server and the relay use: the only code
// outside this package's workflows that knows workflow IDs, the task queue and
// start options.
type Client struct {
	Temporal  client.Client
	Namespace string
	TaskQueue string // "" = DefaultTaskQueue
	// IDPrefix scopes every workflow ID the client builds to one deployment
	// (ids.go); "" builds the legacy, unprefixed IDs.
	IDPrefix string
}

func (c *Client) taskQueue() string {
	if c.TaskQueue == "" {
		return DefaultTaskQueue
	}
	return c.TaskQueue
}

// StartDispatchBatch starts the DispatchEvents run of a batch and returns
// its workflow and run IDs. The batch ID is new for every start, so a start
// retried after a timeout may leave a second run: it holds no event
// (HoldEvents) and ends at once.
func (c *Client) StartDispatchBatch(ctx context.Context, in DispatchBatchInput) (workflowID, runID string, err error) {
	id := c.id(DispatchBatchID(in.BatchID))
	in.IDPrefix = c.IDPrefix
	var types []string
	seen := map[string]bool{}
	for _, e := range in.Events {
		if !seen[e.Type] {
			seen[e.Type] = true
			types = append(types, e.Type)
		}
	}
	run, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             EventsTaskQueue(c.taskQueue()),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(EventTypesAttr.ValueSet(types)),
	}, DispatchEvents, in)
	if err != nil {
		return "", "", fmt.Errorf("start %s: %w", id, err)
	}
	return id, run.GetRunID(), nil
}

// EnsureSearchAttributes registers the custom search attributes the workflows
// use in the client's namespace, adding only those that are missing.
func (c *Client) EnsureSearchAttributes(ctx context.Context) error {
	have, err := c.Temporal.OperatorService().ListSearchAttributes(ctx,
		&operatorservice.ListSearchAttributesRequest{Namespace: c.Namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range SearchAttributes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.Temporal.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        c.Namespace,
		SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
