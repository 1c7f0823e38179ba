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
