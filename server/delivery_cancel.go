package server

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// endDeliveryRuns ends the retry runs of deliveries whose target was just
// disabled or deleted (after the change committed), and records how many
// in the request's audit entry. It does not fail the request: a run it
// cannot reach (Temporal down, or no workflow client) stops at its next
// wake, finding its delivery cancelled or gone.
func (s *Server) endDeliveryRuns(ctx context.Context, ids []uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	auditSetDetail(ctx, "cancelled_deliveries", len(ids))
	if s.deps.Workflows == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.deps.Workflows.EndDeliveryRuns(sctx, ids); err != nil {
		s.deps.Logger.Warn("cannot end the retry runs now; each ends at its next wake", "deliveries", len(ids), "err", err)
	}
}
