package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
)

// The prune of the alert rules' occurrences (security_signals). CountSignal
// prunes the rows of the subject it counts; the rows of subjects never seen
// again (a username tried once in a spray) are deleted by this workflow,
// which the worker's Schedule (PruneSignalsScheduleID) starts every hour.

var signalActs *activities.SecuritySignals

// Sizes of the prune: rows per batch (one short transaction each), and
// batches per run before it continues as new, so a backlog of millions
// keeps each run's history small.
const (
	pruneSignalsBatch   = 5000
	pruneBatchesPerRun  = 200
	pruneSignalsEvery   = time.Hour
	pruneScheduleIDBase = "security-signals-prune"
)

// PruneSignalsScheduleID is the ID, within a deployment, of the Schedule
// that starts PruneSecuritySignals; the client puts the deployment prefix
// in front (several installations may share a namespace, each pruning its
// own database). The runs it starts are named after it.
const PruneSignalsScheduleID = pruneScheduleIDBase

// PruneSignalsInput tunes a run (zero fields take the defaults) and carries
// the count across continue-as-new.
type PruneSignalsInput struct {
	BatchSize     int // rows per activity; 0 = pruneSignalsBatch
	BatchesPerRun int // batches before continuing as new; 0 = pruneBatchesPerRun
	Deleted       int // rows deleted by the earlier runs of this chain
}

// PruneSecuritySignals deletes the occurrences past retention batch by
// batch until a batch comes back short (nothing was left), and answers how
// many rows it deleted in all.
func PruneSecuritySignals(ctx workflow.Context, in PruneSignalsInput) (int, error) {
	if in.BatchSize <= 0 {
		in.BatchSize = pruneSignalsBatch
	}
	if in.BatchesPerRun <= 0 {
		in.BatchesPerRun = pruneBatchesPerRun
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		// The next hour's run starts over: a few tries are enough.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	for range in.BatchesPerRun {
		var n int
		err := workflow.ExecuteActivity(actx, signalActs.PruneSignalsBatch,
			activities.PruneSignalsBatchInput{Limit: in.BatchSize}).Get(ctx, &n)
		if err != nil {
			return in.Deleted, err
		}
		in.Deleted += n
		if n < in.BatchSize {
			workflow.GetLogger(ctx).Info("security signals pruned", "deleted", in.Deleted)
			return in.Deleted, nil
		}
	}
	return in.Deleted, workflow.NewContinueAsNewError(ctx, PruneSecuritySignals, in)
}
