package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
)

// Retries per target: a delivery that needs another attempt waits in
// PostgreSQL, and its target's retry loop (workflows.TargetRetries) takes
// the due ones with DueRetries and attempts them with AttemptDeliveries. A
// batch run wakes the loops of the targets it left deliveries to with
// WakeTargetRetries.

// RetryTarget names a webhook or an integration: exactly one of the two.
type RetryTarget struct {
	WebhookID     string `json:",omitempty"`
	IntegrationID string `json:",omitempty"`
}

// ids parses the target.
func (t RetryTarget) ids() (webhookID, integrationID *uuid.UUID, err error) {
	parse := func(s string) (*uuid.UUID, error) {
		if s == "" {
			return nil, nil
		}
		id, err := uuid.Parse(s)
		return &id, err
	}
	if webhookID, err = parse(t.WebhookID); err == nil {
		integrationID, err = parse(t.IntegrationID)
	}
	if err == nil && (webhookID == nil) == (integrationID == nil) {
		err = errors.New("name exactly one of webhook and integration")
	}
	if err != nil {
		return nil, nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("bad retry target %+v", t),
			"BadDeliveryID", err)
	}
	return webhookID, integrationID, nil
}

// RetryWaker wakes the retry loops of targets, starting those that do not
// run: workflows.Client is one.
type RetryWaker interface {
	WakeTargetRetries(ctx context.Context, targets []RetryTarget) error
}

// DueRetriesInput asks for a target's due deliveries, at most Limit.
type DueRetriesInput struct {
	Target RetryTarget
	Limit  int
}

// DueRetriesResult is what a target's loop does next.
type DueRetriesResult struct {
	// Attempts are the attempts to make now, the earliest due first.
	Attempts []AttemptInput
	// Waiting counts the deliveries waiting for the loop, due or not; 0
	// (or Gone) ends the loop.
	Waiting int
	// NextAt is when the next delivery not in Attempts is due (nil: none).
	NextAt *time.Time
	// Gone: the target was deleted (its deliveries with it).
	Gone bool
	// CircuitOpen is the circuit as last recorded on the target (SetCircuit).
	CircuitOpen bool
}

// DueRetries reads a target's waiting deliveries (one statement).
func (a *Deliveries) DueRetries(ctx context.Context, in DueRetriesInput) (DueRetriesResult, error) {
	webhookID, integrationID, err := in.Target.ids()
	if err != nil {
		return DueRetriesResult{}, err
	}
	r, err := a.Store.DueRetries(ctx, webhookID, integrationID, in.Limit)
	if err != nil {
		return DueRetriesResult{}, err
	}
	out := DueRetriesResult{Waiting: r.Waiting, NextAt: r.NextAt, Gone: !r.Exists, CircuitOpen: r.CircuitOpen}
	for _, d := range r.Due {
		out.Attempts = append(out.Attempts, AttemptInput{DeliveryID: d.ID.String(), Attempt: d.Attempt, Try: d.Try})
	}
	return out, nil
}

// SetCircuitInput records a target's circuit.
type SetCircuitInput struct {
	Target RetryTarget
	Open   bool
}

// SetCircuit records whether a target's circuit is open: while it is,
// batch runs leave the target's new deliveries to its loop.
func (a *Deliveries) SetCircuit(ctx context.Context, in SetCircuitInput) error {
	webhookID, integrationID, err := in.Target.ids()
	if err != nil {
		return err
	}
	return a.Store.SetCircuit(ctx, webhookID, integrationID, in.Open)
}

// WakeTargetRetries wakes (or starts) the retry loops of targets.
func (a *Deliveries) WakeTargetRetries(ctx context.Context, targets []RetryTarget) error {
	if a.Waker == nil {
		return errors.New("wake retry loops: this worker has no Temporal client (Deliveries.Waker)")
	}
	return a.Waker.WakeTargetRetries(ctx, targets)
}

// deferThrottled moves the throttled attempts' deliveries to their next
// try, so their target's loop takes them then (a loop would otherwise find
// them due at once again).
func (a *Deliveries) deferThrottled(ctx context.Context, results []AttemptResult) error {
	var ids []uuid.UUID
	var ats []time.Time
	now := a.now()
	for _, r := range results {
		if r.Outcome != OutcomeThrottled {
			continue
		}
		id, err := uuid.Parse(r.DeliveryID)
		if err != nil {
			continue // checked before the attempt
		}
		ids, ats = append(ids, id), append(ats, now.Add(r.Delay))
	}
	return a.Store.DeferDeliveries(ctx, ids, ats)
}
