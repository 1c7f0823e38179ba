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
}

func (c *Client) taskQueue() string {
	if c.TaskQueue == "" {
		return DefaultTaskQueue
	}
	return c.TaskQueue
}

// StartDispatchEvent starts the DispatchEvent run of an event and returns its
// workflow ID. Starting an event that was already dispatched is not an error:
// the workflow ID is derived from the event ID, so Temporal keeps one run.
func (c *Client) StartDispatchEvent(ctx context.Context, in DispatchEventInput) (string, error) {
	id := DispatchEventID(in.EventID)
	_, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                c.taskQueue(),
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(EventTypeAttr.ValueSet(in.Type)),
	}, DispatchEvent, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return "", fmt.Errorf("start %s: %w", id, err)
	}
	return id, nil
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
