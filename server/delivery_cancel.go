package server

import (
	"context"
	"time"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
)

// endDeliveryRuns ends what still waited to deliver to a target just
// disabled or deleted (after the change committed): the target's retry
// loop, and the delivery/<id> runs of deliveries that had their own; it
// records how many deliveries were cancelled in the request's audit entry.
// It does not fail the request: a run it cannot reach (Temporal down, or no
// workflow client) stops at its next wake, finding its deliveries cancelled
// or gone.
func (s *Server) endDeliveryRuns(ctx context.Context, target activities.RetryTarget, c schemas.Cancelled) {
	if c.Count == 0 {
		return
	}
	auditSetDetail(ctx, "cancelled_deliveries", c.Count)
	if s.deps.Workflows == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.deps.Workflows.EndTargetRetries(sctx, target); err != nil {
		s.deps.Logger.Warn("cannot end the target's retry loop now; it ends at its next wake", "err", err)
	}
	if err := s.deps.Workflows.EndDeliveryRuns(sctx, c.Runs); err != nil {
		s.deps.Logger.Warn("cannot end the retry runs now; each ends at its next wake", "deliveries", len(c.Runs), "err", err)
	}
}
