package workflows

import (
	"context"
	"errors"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/streamspace/enterprise/internal/wfid"
)

// Deployment-scoped workflow IDs. The ID builders of this package
// (SessionWorkflowID, IPGrantID, …) name a run within one deployment; the
// Client puts its IDPrefix in front (wfid.Join), and a workflow that starts
// or cancels other runs takes the prefix from its input (IDPrefix fields),
// never from the environment, so a replay builds the same IDs. Runs started
// before prefixes existed have legacy, unprefixed IDs, and inputs without
// an IDPrefix: they go on building legacy IDs, the commands they recorded.
//
// Until those runs have ended, code that reaches an existing run by ID
// tries the prefixed ID first and the legacy one when Temporal answers
// NotFound (signal, cancel, query, update), and a signal- or
// update-with-start reaches an open legacy run before it starts a
// prefixed one.

// id is the workflow ID of the run local names (e.g. IPGrantID(42)) in
// this client's deployment.
func (c *Client) id(local string) string { return wfid.Join(c.IDPrefix, local) }

// hasLegacy reports whether a run named local may also exist under its
// legacy ID (the client has a prefix).
func (c *Client) hasLegacy() bool { return c.IDPrefix != "" }

func isNotFound(err error) bool {
	var notFound *serviceerror.NotFound
	return errors.As(err, &notFound)
}

// reach calls op with the prefixed ID of local and, when that run is not
// found, with the legacy ID (a run started before the prefix).
func (c *Client) reach(local string, op func(id string) error) error {
	err := op(c.id(local))
	if err != nil && c.hasLegacy() && isNotFound(err) {
		if lerr := op(local); !isNotFound(lerr) {
			return lerr
		}
	}
	return err
}

// signal signals the run named local (prefixed, else legacy).
func (c *Client) signal(ctx context.Context, local, name string, arg any) error {
	return c.reach(local, func(id string) error { return c.Temporal.SignalWorkflow(ctx, id, "", name, arg) })
}

// cancel asks the run named local (prefixed, else legacy) to cancel.
func (c *Client) cancel(ctx context.Context, local string) error {
	return c.reach(local, func(id string) error { return c.Temporal.CancelWorkflow(ctx, id, "") })
}

// query queries the run named local (prefixed, else legacy).
func (c *Client) query(ctx context.Context, local, name string) (converter.EncodedValue, error) {
	var v converter.EncodedValue
	err := c.reach(local, func(id string) (err error) {
		v, err = c.Temporal.QueryWorkflow(ctx, id, "", name)
		return err
	})
	return v, err
}

// update sends an Update to the run named local (prefixed, else legacy)
// and waits for its result.
func (c *Client) update(ctx context.Context, local string, opts client.UpdateWorkflowOptions, result any) error {
	return c.reach(local, func(id string) error {
		opts.WorkflowID = id
		h, err := c.Temporal.UpdateWorkflow(ctx, opts)
		if err != nil {
			return err
		}
		return h.Get(ctx, result)
	})
}

// signalLegacy signals the legacy run named local if it is open, for a
// signal-with-start: true when it took the signal, false when the prefixed
// run is the one to signal or start.
func (c *Client) signalLegacy(ctx context.Context, local, name string, arg any) (bool, error) {
	if !c.hasLegacy() {
		return false, nil
	}
	err := c.Temporal.SignalWorkflow(ctx, local, "", name, arg)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// updateLegacy sends an Update to the legacy run named local if it is
// open, for an update-with-start: true when it took the Update (its
// result discarded), false when the prefixed run is the one to update or
// start.
func (c *Client) updateLegacy(ctx context.Context, local string, opts client.UpdateWorkflowOptions) (bool, error) {
	if !c.hasLegacy() {
		return false, nil
	}
	opts.WorkflowID = local
	h, err := c.Temporal.UpdateWorkflow(ctx, opts)
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// openLegacy reports whether the legacy run named local is open, for a
// start that joins a running run.
func (c *Client) openLegacy(ctx context.Context, local string) (bool, error) {
	if !c.hasLegacy() {
		return false, nil
	}
	d, err := c.Temporal.DescribeWorkflowExecution(ctx, local, "")
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
