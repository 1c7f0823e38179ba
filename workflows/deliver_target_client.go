package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/activities"
)

// wakeInFlight bounds the signal-with-start requests WakeTargetRetries
// has open at once.
const wakeInFlight = 16

// WakeTargetRetries wakes the retry loop of each target, starting it on
// the events task queue when it does not run (signal-with-start, so two
// callers never start two). It implements activities.RetryWaker.
func (c *Client) WakeTargetRetries(ctx context.Context, targets []activities.RetryTarget) error {
	errs := make([]error, len(targets))
	sem := make(chan struct{}, wakeInFlight)
	var wg sync.WaitGroup
	for i, t := range targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = c.wakeTarget(ctx, t)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Client) wakeTarget(ctx context.Context, t activities.RetryTarget) error {
	local := TargetRetriesWorkflowID(t)
	// A loop started before the prefix keeps its run while it is open.
	if done, err := c.signalLegacy(ctx, local, SignalWakeRetries, nil); done || err != nil {
		if err != nil {
			return fmt.Errorf("wake %s: %w", local, err)
		}
		return nil
	}
	id := c.id(local)
	var attrs []temporal.SearchAttributeUpdate
	if t.WebhookID != "" {
		attrs = append(attrs, WebhookIDAttr.ValueSet(t.WebhookID))
	} else {
		attrs = append(attrs, IntegrationIDAttr.ValueSet(t.IntegrationID))
	}
	_, err := c.Temporal.SignalWithStartWorkflow(ctx, id, SignalWakeRetries, nil, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             EventsTaskQueue(c.taskQueue()),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
	}, TargetRetries, TargetRetriesInput{Target: t, IDPrefix: c.IDPrefix})
	if err != nil {
		return fmt.Errorf("wake %s: %w", id, err)
	}
	return nil
}

// EndTargetRetries cancels the retry loop of a target just disabled or
// deleted (its waiting deliveries are cancelled already); a loop that does
// not run is fine.
func (c *Client) EndTargetRetries(ctx context.Context, t activities.RetryTarget) error {
	id := TargetRetriesWorkflowID(t)
	if err := c.cancel(ctx, id); err != nil && !isNotFound(err) {
		return fmt.Errorf("end %s: %w", c.id(id), err)
	}
	return nil
}

// WebhookTarget names a webhook as a retry target.
func WebhookTarget(id uuid.UUID) activities.RetryTarget {
	return activities.RetryTarget{WebhookID: id.String()}
}

// IntegrationTarget names an integration as a retry target.
func IntegrationTarget(id uuid.UUID) activities.RetryTarget {
	return activities.RetryTarget{IntegrationID: id.String()}
}
