package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/streamspace/enterprise/schemas"
)

// Events holds the activities that work on the event outbox.
type Events struct {
	Store *schemas.Store
}

// FinishEventInput names the event whose dispatch finished, and why it
// failed (empty when it succeeded).
type FinishEventInput struct {
	EventID string
	Failure string
}

// FinishEvent records the outcome of an event's DispatchEvent run.
func (a *Events) FinishEvent(ctx context.Context, in FinishEventInput) error {
	id, err := uuid.Parse(in.EventID)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("bad event id %q", in.EventID), "BadEventID", err)
	}
	err = a.Store.FinishEvent(ctx, id, in.Failure)
	if errors.Is(err, schemas.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "EventNotFound", err)
	}
	return err
}

// HoldEventsInput names a batch run and the events the relay gave it.
type HoldEventsInput struct {
	WorkflowID string
	EventIDs   []string
}

// HoldEvents answers which of the batch's events its run holds and must
// handle (schemas.Store.HeldEvents): a run whose relay rolled back, or an
// event another run handles, is skipped.
func (a *Events) HoldEvents(ctx context.Context, in HoldEventsInput) ([]string, error) {
	ids, err := parseEventIDs(in.EventIDs)
	if err != nil {
		return nil, err
	}
	held, err := a.Store.HeldEvents(ctx, in.WorkflowID, ids)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(held))
	for i, id := range held {
		out[i] = id.String()
	}
	return out, nil
}

// FinishEventsInput records how a batch run's events ended.
type FinishEventsInput struct {
	WorkflowID string
	Events     []FinishEventInput
}

// FinishEvents records the outcomes of a batch run's events in one
// statement and answers how many it finished (an event the run no longer
// holds is left alone).
func (a *Events) FinishEvents(ctx context.Context, in FinishEventsInput) (int, error) {
	outcomes := make([]schemas.EventOutcome, len(in.Events))
	for i, e := range in.Events {
		ids, err := parseEventIDs([]string{e.EventID})
		if err != nil {
			return 0, err
		}
		outcomes[i] = schemas.EventOutcome{ID: ids[0], Cause: e.Failure}
	}
	return a.Store.FinishEvents(ctx, in.WorkflowID, outcomes)
}

func parseEventIDs(in []string) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, len(in))
	for i, s := range in {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("bad event id %q", s), "BadEventID", err)
		}
		ids[i] = id
	}
	return ids, nil
}
