package workflows

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// TestDispatchEventReplaysOldHistory replays a DispatchEvent history
// recorded from the per-event pipeline (before batched dispatch: an event
// with two webhooks, one first attempt succeeding and one going to a
// DeliverWithRetry run) against today's code. Runs open when a new version
// deploys finish on it; a change to DispatchEvent's commands fails here
// with a nondeterminism error instead of in production.
func TestDispatchEventReplaysOldHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(DispatchEvent)
	r.RegisterWorkflow(DeliverWithRetry)
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, "testdata/dispatch_event_v1.json"))
}

// TestDispatchEventsReplaysOldHistory replays a DispatchEvents history
// recorded before the per-target retry loops (commit bbad2ea: two events,
// two webhooks, the failing one's deliveries each handed to a
// DeliverWithRetry child): batch runs open when the loops deploy finish as
// they began.
func TestDispatchEventsReplaysOldHistory(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(DispatchEvents)
	r.RegisterWorkflow(DeliverWithRetry)
	logger := log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(logger, "testdata/dispatch_events_v1.json"))
}
