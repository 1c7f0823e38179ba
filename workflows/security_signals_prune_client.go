package workflows

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// EnsurePruneSignalsSchedule creates the Schedule that runs
// PruneSecuritySignals every hour on the client's task queue (overlap:
// skip, so a slow prune is never run twice at once). A Schedule that
// already exists (another replica, an earlier start) is left as it is;
// it answers the Schedule's ID and whether this call created it.
func (c *Client) EnsurePruneSignalsSchedule(ctx context.Context) (id string, created bool, err error) {
	id = c.id(PruneSignalsScheduleID)
	_, err = c.Temporal.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      id,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: pruneSignalsEvery}}},
		Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    "created by the StreamSpace worker: deletes security_signals rows past their retention",
		Action: &client.ScheduleWorkflowAction{
			ID:        id,
			Workflow:  PruneSecuritySignals,
			Args:      []any{PruneSignalsInput{}},
			TaskQueue: c.taskQueue(),
		},
	})
	switch {
	case errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return id, false, nil
	case err != nil:
		return id, false, fmt.Errorf("create schedule %s: %w", id, err)
	}
	return id, true, nil
}
