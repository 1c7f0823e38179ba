package activities

import (
	"context"

	"github.com/streamspace/enterprise/schemas"
)

// SecuritySignals holds the activity of the hourly prune of the alert
// rules' occurrences (PruneSecuritySignals, schedule security-signals-prune).
type SecuritySignals struct {
	Store *schemas.Store
}

// PruneSignalsBatchInput is one batch of the prune.
type PruneSignalsBatchInput struct {
	Limit int // 1..schemas.MaxSignalPruneBatch
}

// PruneSignalsBatch deletes up to in.Limit occurrences past their
// retention (schemas.PruneSignals) and answers how many it deleted. A retry
// after a lost answer deletes the next batch instead: harmless, as every
// such row is due to go.
func (a *SecuritySignals) PruneSignalsBatch(ctx context.Context, in PruneSignalsBatchInput) (int, error) {
	return a.Store.PruneSignals(ctx, in.Limit)
}
