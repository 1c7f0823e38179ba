package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/schemas"
)

// Temporary allowlist entries (grants).
//
// An entry with an expiry has one run, IPGrant (ID ipgrant/<entry id>), that
// sleeps on a durable timer until the expiry and then has the activity
// disable the entry and write the audit row. The database decides: the
// activity judges the expiry by the database's clock and against the row as
// it is then, so a run that wakes early (a clock ahead, an extension it did
// not hear of) is told the expiry and sleeps again, and a run for an entry
// deleted meanwhile ends. The allowlist check refuses expired entries on its
// own, so a late or lost run never lets anyone in: the run is what records
// the expiry for people.
//
// Changing an entry's expiry reaches its run as the set_expiry Update
// (Client.SetIPGrantExpiry), which restarts the timer; an Update that
// arrives while the run checks the row makes it check again at the new
// deadline, whatever the check answered.

var ipGrantActs *activities.IPGrants

// IPGrantID is the workflow ID of an allowlist entry's expiry run.
func IPGrantID(entryID int64) string { return "ipgrant/" + strconv.FormatInt(entryID, 10) }

// UpdateSetIPGrantExpiry moves the deadline of an entry's expiry run; its
// argument is an IPGrantExpiry, its answer the run's IPGrantStatus. The
// run's status answers the Query QueryStatus ("status").
const UpdateSetIPGrantExpiry = "set_expiry"

// ErrTypeInvalidExpiry is the set_expiry Update's rejection of a zero time.
const ErrTypeInvalidExpiry = "InvalidIPGrantExpiry"

// Outcomes of an expiry run (IPGrantResult.Outcome).
const (
	IPGrantExpired  = "expired"   // the expiry passed; the entry is disabled
	IPGrantGone     = "gone"      // the entry was deleted
	IPGrantNoExpiry = "no_expiry" // the entry no longer expires
)

const (
	// ipGrantMinWait is the least wait after a check that found the entry
	// not due, so clocks that disagree cannot make the run spin.
	ipGrantMinWait = time.Second
	// ipGrantUpdateCap is how many set_expiry Updates one run takes before
	// it continues as new, keeping its history small.
	ipGrantUpdateCap = 500
)

// IPGrantInput starts an entry's expiry run (or continues it as new).
type IPGrantInput struct {
	EntryID int64
	// ExpiresAt is when to check the entry; zero = it does not expire
	// (the run ends at once).
	ExpiresAt time.Time
}

// IPGrantExpiry is the set_expiry Update's argument: the entry's new
// expiry; nil = it no longer expires (the run ends). A time in the past
// means now. A non-nil zero time is refused.
type IPGrantExpiry struct {
	ExpiresAt *time.Time
}

// IPGrantStatus is what the status Query and the set_expiry Update answer.
type IPGrantStatus struct {
	EntryID int64
	// ExpiresAt is when the run checks the entry next, by the workflow's
	// clock; zero = no expiry (the run is ending).
	ExpiresAt time.Time
	// Checks is how many times this run has had the entry checked.
	Checks int
}

// IPGrantResult is how an expiry run ended.
type IPGrantResult struct {
	EntryID int64
	Outcome string // IPGrantExpired | IPGrantGone | IPGrantNoExpiry
	// Recorded: this run disabled the entry and wrote the audit row (false
	// when the entry was already disabled).
	Recorded bool
	// ExpiresAt is the expiry that passed (Outcome expired).
	ExpiresAt *time.Time
}

// IPGrant is the expiry run of one allowlist entry: it waits until the
// expiry, has the entry disabled and recorded, and ends; see above.
func IPGrant(ctx workflow.Context, in IPGrantInput) (IPGrantResult, error) {
	g := &ipGrantRun{st: IPGrantStatus{EntryID: in.EntryID, ExpiresAt: in.ExpiresAt}}
	res := IPGrantResult{EntryID: in.EntryID}
	if err := g.register(ctx); err != nil {
		return res, err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		// The entry must be disabled eventually: retry until the database
		// answers, at most every five minutes.
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadEntryID},
		},
	})
	for {
		if err := g.waitForDeadline(ctx); err != nil {
			return res, err
		}
		if g.st.ExpiresAt.IsZero() {
			res.Outcome = IPGrantNoExpiry
			return res, nil
		}
		if g.updates >= ipGrantUpdateCap || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return res, err
			}
			return res, workflow.NewContinueAsNewError(ctx, IPGrant,
				IPGrantInput{EntryID: in.EntryID, ExpiresAt: g.st.ExpiresAt})
		}

		seen := g.updates
		var r schemas.ExpireResult
		err := workflow.ExecuteActivity(actx, ipGrantActs.ExpireIPGrant,
			activities.ExpireIPGrantInput{EntryID: in.EntryID}).Get(ctx, &r)
		if err != nil {
			return res, err
		}
		g.st.Checks++
		res.Recorded = res.Recorded || r.Recorded
		if g.updates != seen {
			continue // the expiry changed while the row was checked: check again at the new one
		}
		switch {
		case r.Gone:
			res.Outcome = IPGrantGone
			return res, nil
		case r.Expired:
			res.Outcome, res.ExpiresAt = IPGrantExpired, r.ExpiresAt
			return res, nil
		case r.ExpiresAt == nil:
			res.Outcome = IPGrantNoExpiry
			return res, nil
		}
		// Not due yet by the database's clock: wait what it has left.
		left := r.ExpiresAt.Sub(r.Now)
		if r.Now.IsZero() {
			left = r.ExpiresAt.Sub(workflow.Now(ctx))
		}
		g.st.ExpiresAt = workflow.Now(ctx).Add(max(left, ipGrantMinWait))
	}
}

// ipGrantRun is the state of one run.
type ipGrantRun struct {
	st      IPGrantStatus
	updates int // set_expiry Updates this run took
}

func (g *ipGrantRun) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (IPGrantStatus, error) { return g.st, nil }); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetIPGrantExpiry,
		func(ctx workflow.Context, req IPGrantExpiry) (IPGrantStatus, error) {
			g.updates++
			if req.ExpiresAt == nil {
				g.st.ExpiresAt = time.Time{}
			} else {
				g.st.ExpiresAt = *req.ExpiresAt
			}
			return g.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(req IPGrantExpiry) error {
			if req.ExpiresAt != nil && req.ExpiresAt.IsZero() {
				return temporal.NewApplicationError("the expiry is a zero time; use nil for none", ErrTypeInvalidExpiry)
			}
			return nil
		}})
}

// waitForDeadline sleeps on a durable timer until the deadline, restarting
// it whenever an Update moves the deadline. It returns at once when there is
// no deadline, and when the run should continue as new.
func (g *ipGrantRun) waitForDeadline(ctx workflow.Context) error {
	for !g.st.ExpiresAt.IsZero() && g.updates < ipGrantUpdateCap {
		d := g.st.ExpiresAt.Sub(workflow.Now(ctx))
		if d <= 0 {
			return nil
		}
		seen := g.updates
		if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return g.updates != seen }); err != nil {
			return err
		}
	}
	return nil
}
