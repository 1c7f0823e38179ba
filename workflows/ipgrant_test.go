package workflows

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// The expiry run of a temporary allowlist entry: with a mocked activity in
// simulated time, with the real activity and PostgreSQL in simulated time,
// and through the client against the Temporal dev server.

const grantEntry = int64(7)

var grantStart = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func grantEnv() *testsuite.TestWorkflowEnvironment {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.SetStartTime(grantStart)
	return env
}

// An answer of the mocked activity, given the simulated time it runs at.
type grantAnswer func(now time.Time) schemas.ExpireResult

func dueAnswer(now time.Time) schemas.ExpireResult {
	return schemas.ExpireResult{Expired: true, Recorded: true, ExpiresAt: &now, Now: now}
}

func goneAnswer(now time.Time) schemas.ExpireResult {
	return schemas.ExpireResult{Gone: true, Now: now}
}

// notYet answers that the database has the expiry later: left by its clock,
// which reads now+skew.
func notYet(left, skew time.Duration) grantAnswer {
	return func(now time.Time) schemas.ExpireResult {
		db := now.Add(skew)
		at := db.Add(left)
		return schemas.ExpireResult{ExpiresAt: &at, Now: db}
	}
}

// mockChecks mocks the activity with answers in turn (the last repeats) and
// returns the simulated times it ran at.
func mockChecks(env *testsuite.TestWorkflowEnvironment, answers ...grantAnswer) func() []time.Time {
	var mu sync.Mutex
	var at []time.Time
	env.OnActivity(ipGrantActs.ExpireIPGrant, mock.Anything, activities.ExpireIPGrantInput{EntryID: grantEntry}).Return(
		func(_ context.Context, _ activities.ExpireIPGrantInput) (schemas.ExpireResult, error) {
			mu.Lock()
			defer mu.Unlock()
			now := env.Now().UTC()
			at = append(at, now)
			return answers[min(len(at), len(answers))-1](now), nil
		})
	return func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), at...)
	}
}

type grantUpdate struct {
	accepted, rejected bool
	err                error
	status             IPGrantStatus
}

// setExpiryAfter sends the set_expiry Update after delay (simulated).
func setExpiryAfter(env *testsuite.TestWorkflowEnvironment, delay time.Duration, expiresAt *time.Time) *grantUpdate {
	out := &grantUpdate{}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateSetIPGrantExpiry, "set-"+delay.String(), &testsuite.TestUpdateCallback{
			OnAccept: func() { out.accepted = true },
			OnReject: func(err error) { out.rejected, out.err = true, err },
			OnComplete: func(v any, err error) {
				out.err = err
				if st, ok := v.(IPGrantStatus); ok {
					out.status = st
				}
			},
		}, IPGrantExpiry{ExpiresAt: expiresAt})
	}, delay)
	return out
}

func grantResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) IPGrantResult {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res IPGrantResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func at(d time.Duration) time.Time { return grantStart.Add(d) }

func ptr(t time.Time) *time.Time { return &t }

func TestIPGrantID(t *testing.T) {
	require.Equal(t, "ipgrant/42", IPGrantID(42))
}

func TestIPGrantExpiresAtItsTime(t *testing.T) {
	env := grantEnv()
	checks := mockChecks(env, dueAnswer)
	env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(2 * time.Hour)})
	res := grantResult(t, env)
	require.Equal(t, []time.Time{at(2 * time.Hour)}, checks(), "one check, exactly at the expiry")
	require.Equal(t, IPGrantExpired, res.Outcome)
	require.True(t, res.Recorded)
	require.Equal(t, grantEntry, res.EntryID)
	require.True(t, res.ExpiresAt.Equal(at(2*time.Hour)))
}

func TestIPGrantUpdateMovesTheDeadline(t *testing.T) {
	t.Run("Extended", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, dueAnswer)
		u := setExpiryAfter(env, 30*time.Minute, ptr(at(3*time.Hour)))
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		res := grantResult(t, env)
		require.True(t, u.accepted)
		require.NoError(t, u.err)
		require.True(t, u.status.ExpiresAt.Equal(at(3*time.Hour)), "the Update answers the new deadline")
		require.Equal(t, []time.Time{at(3 * time.Hour)}, checks(), "not at the old expiry, at the new one")
		require.Equal(t, IPGrantExpired, res.Outcome)
	})
	t.Run("ExtendedTwice", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, dueAnswer)
		setExpiryAfter(env, 30*time.Minute, ptr(at(3*time.Hour)))
		setExpiryAfter(env, 2*time.Hour, ptr(at(5*time.Hour)))
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		grantResult(t, env)
		require.Equal(t, []time.Time{at(5 * time.Hour)}, checks())
	})
	t.Run("ShortenedToThePastExpiresNow", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, dueAnswer)
		setExpiryAfter(env, 10*time.Minute, ptr(at(-time.Hour)))
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(24 * time.Hour)})
		require.Equal(t, IPGrantExpired, grantResult(t, env).Outcome)
		require.Equal(t, []time.Time{at(10 * time.Minute)}, checks())
	})
	t.Run("NoLongerExpiresEndsTheRun", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, dueAnswer)
		u := setExpiryAfter(env, 10*time.Minute, nil)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(24 * time.Hour)})
		res := grantResult(t, env)
		require.True(t, u.accepted)
		require.Equal(t, IPGrantNoExpiry, res.Outcome)
		require.False(t, res.Recorded)
		require.Empty(t, checks(), "the entry was not touched")
	})
	t.Run("ZeroTimeRejected", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, dueAnswer)
		u := setExpiryAfter(env, 10*time.Minute, &time.Time{})
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		grantResult(t, env)
		require.True(t, u.rejected)
		var app *temporal.ApplicationError
		require.ErrorAs(t, u.err, &app)
		require.Equal(t, ErrTypeInvalidExpiry, app.Type())
		require.Equal(t, []time.Time{at(time.Hour)}, checks(), "the deadline stayed")
	})
	t.Run("UpdateDuringTheCheckChecksAgain", func(t *testing.T) {
		// The expiry is extended (and the entry re-enabled) while the run
		// checks it at the old expiry: whatever that check found, the run
		// checks again at the new expiry.
		env := grantEnv()
		var mu sync.Mutex
		var checks []time.Time
		env.OnActivity(ipGrantActs.ExpireIPGrant, mock.Anything, mock.Anything).Return(
			func(_ context.Context, _ activities.ExpireIPGrantInput) (schemas.ExpireResult, error) {
				mu.Lock()
				defer mu.Unlock()
				now := env.Now().UTC()
				checks = append(checks, now)
				r := dueAnswer(now)
				r.Recorded = len(checks) == 1
				return r, nil
			}).After(time.Minute)
		setExpiryAfter(env, time.Hour+30*time.Second, ptr(at(4*time.Hour)))
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		res := grantResult(t, env)
		// Each check takes a minute (the mock answers then).
		require.Equal(t, []time.Time{at(time.Hour + time.Minute), at(4*time.Hour + time.Minute)}, checks)
		require.Equal(t, IPGrantExpired, res.Outcome)
		require.True(t, res.Recorded, "the first check recorded it")
	})
}

func TestIPGrantFollowsTheDatabase(t *testing.T) {
	t.Run("ExpiryMovedLaterWaitsAgain", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, notYet(time.Hour, 0), notYet(30*time.Minute, 0), dueAnswer)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(2 * time.Hour)})
		require.Equal(t, IPGrantExpired, grantResult(t, env).Outcome)
		require.Equal(t, []time.Time{at(2 * time.Hour), at(3 * time.Hour), at(3*time.Hour + 30*time.Minute)}, checks())
	})
	t.Run("WaitsWhatTheDatabaseClockHasLeft", func(t *testing.T) {
		// The database's clock is 5 minutes behind the workflow's: it has 6
		// minutes left when its expiry reads 1 minute after the workflow's
		// now. The run waits the 6 minutes, not 1.
		env := grantEnv()
		checks := mockChecks(env, notYet(6*time.Minute, -5*time.Minute), dueAnswer)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		grantResult(t, env)
		require.Equal(t, []time.Time{at(time.Hour), at(time.Hour + 6*time.Minute)}, checks())
	})
	t.Run("AlmostDueWaitsAtLeastASecond", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, notYet(time.Millisecond, 0), dueAnswer)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		grantResult(t, env)
		require.Equal(t, []time.Time{at(time.Hour), at(time.Hour + time.Second)}, checks())
	})
	t.Run("GoneEnds", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, goneAnswer)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		res := grantResult(t, env)
		require.Equal(t, IPGrantGone, res.Outcome)
		require.False(t, res.Recorded)
		require.Len(t, checks(), 1)
	})
	t.Run("NoLongerExpiresEnds", func(t *testing.T) {
		env := grantEnv()
		checks := mockChecks(env, func(now time.Time) schemas.ExpireResult { return schemas.ExpireResult{Now: now} })
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		require.Equal(t, IPGrantNoExpiry, grantResult(t, env).Outcome)
		require.Len(t, checks(), 1)
	})
	t.Run("AlreadyDisabledIsNotRecordedAgain", func(t *testing.T) {
		env := grantEnv()
		mockChecks(env, func(now time.Time) schemas.ExpireResult {
			return schemas.ExpireResult{Expired: true, ExpiresAt: &now, Now: now}
		})
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		res := grantResult(t, env)
		require.Equal(t, IPGrantExpired, res.Outcome)
		require.False(t, res.Recorded)
	})
	t.Run("DatabaseDownIsRetriedWithBackoff", func(t *testing.T) {
		// Nine failures, then an answer. (The policy has no attempt cap;
		// the test environment caps "unlimited" at ten attempts.)
		env := grantEnv()
		var tries []time.Time
		env.OnActivity(ipGrantActs.ExpireIPGrant, mock.Anything, mock.Anything).Return(
			func(_ context.Context, _ activities.ExpireIPGrantInput) (schemas.ExpireResult, error) {
				tries = append(tries, env.Now().UTC())
				if len(tries) < 10 {
					return schemas.ExpireResult{}, errors.New("connection refused")
				}
				return dueAnswer(env.Now()), nil
			})
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
		require.Equal(t, IPGrantExpired, grantResult(t, env).Outcome)
		require.Len(t, tries, 10)
		for i := 1; i < len(tries); i++ {
			require.Equal(t, time.Second<<(i-1), tries[i].Sub(tries[i-1]), "backoff before attempt %d", i+1)
		}
	})
}

func TestIPGrantContinuesAsNewAfterManyUpdates(t *testing.T) {
	env := grantEnv()
	checks := mockChecks(env, dueAnswer)
	for i := 1; i <= ipGrantUpdateCap; i++ {
		setExpiryAfter(env, time.Duration(i)*time.Second, ptr(at(time.Hour+time.Duration(i)*time.Minute)))
	}
	env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour)})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next IPGrantInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, IPGrantInput{EntryID: grantEntry, ExpiresAt: at(time.Hour + ipGrantUpdateCap*time.Minute)}, next)
	require.Empty(t, checks())
}

// The workflow with the real activity and PostgreSQL, in simulated time.
// The database's clock is real: the workflow's deadlines are simulated, but
// the activity asks the database whether the entry is due, by its own clock.

type liveGrants struct {
	t     *testing.T
	store *schemas.Store
	user  uuid.UUID
}

func newLiveGrants(t *testing.T) *liveGrants {
	ctx := context.Background()
	g := &liveGrants{t: t, store: &schemas.Store{Pool: testenv.DB(t)}}
	u := schemas.User{Username: "grantee", Role: "user", Active: true}
	require.NoError(t, g.store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertUser(ctx, tx, &u) }))
	g.user = u.ID
	return g
}

// grant inserts a grant for the user; expires is an SQL expression. id 0
// lets the database number it.
func (g *liveGrants) grant(id int64, cidr, expires string) int64 {
	g.t.Helper()
	q := `INSERT INTO ip_allowlist (user_id, cidr, granted, expires_at) VALUES ($1, $2, true, ` + expires + `) RETURNING id`
	args := []any{g.user, cidr}
	if id != 0 {
		q = `INSERT INTO ip_allowlist (id, user_id, cidr, granted, expires_at) OVERRIDING SYSTEM VALUE
			VALUES ($3, $1, $2, true, ` + expires + `) RETURNING id`
		args = append(args, id)
	}
	require.NoError(g.t, g.store.Pool.QueryRow(context.Background(), q, args...).Scan(&id))
	return id
}

type grantRow struct {
	Enabled   bool
	ExpiresAt *time.Time
	ExpiredAt *time.Time
}

func (g *liveGrants) row(id int64) grantRow {
	g.t.Helper()
	var r grantRow
	require.NoError(g.t, g.store.Pool.QueryRow(context.Background(),
		`SELECT enabled, expires_at, expired_at FROM ip_allowlist WHERE id = $1`, id).
		Scan(&r.Enabled, &r.ExpiresAt, &r.ExpiredAt))
	return r
}

func (g *liveGrants) audit(id int64) []schemas.AuditEntry {
	g.t.Helper()
	rows, _, err := g.store.ListAudit(context.Background(), schemas.AuditFilter{Action: schemas.AuditIPGrantExpired})
	require.NoError(g.t, err)
	var mine []schemas.AuditEntry
	for _, r := range rows {
		if r.TargetID == strconv.FormatInt(id, 10) {
			mine = append(mine, r)
		}
	}
	return mine
}

func (g *liveGrants) env(entry int64) (*testsuite.TestWorkflowEnvironment, func() []time.Time) {
	env := (&testsuite.WorkflowTestSuite{}).NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.IPGrants{Store: g.store})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: IPGrantID(entry)})
	var mu sync.Mutex
	var checks []time.Time
	env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		checks = append(checks, env.Now())
	})
	return env, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), checks...)
	}
}

func TestIPGrantLive(t *testing.T) {
	t.Parallel()
	g := newLiveGrants(t)

	t.Run("DueEntryIsDisabledAndAudited", func(t *testing.T) {
		// Due by the database's clock from the start; the run's own
		// deadline is two hours of simulated time away.
		id := g.grant(0, "198.51.100.0/24", "clock_timestamp()")
		env, checks := g.env(id)
		start := env.Now()
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: id, ExpiresAt: start.Add(2 * time.Hour)})
		res := grantResult(t, env)
		require.Equal(t, IPGrantExpired, res.Outcome)
		require.True(t, res.Recorded)
		got := checks()
		require.Len(t, got, 1)
		require.Equal(t, 2*time.Hour, got[0].Sub(start), "checked at the run's deadline, not before")

		row := g.row(id)
		require.False(t, row.Enabled)
		require.NotNil(t, row.ExpiredAt)
		require.WithinDuration(t, time.Now(), *row.ExpiredAt, time.Minute)
		audit := g.audit(id)
		require.Len(t, audit, 1)
		require.Regexp(t, `^ipgrant/`+strconv.FormatInt(id, 10)+`:.+`, audit[0].RequestID)
		require.Equal(t, "WORKFLOW", audit[0].Method)
		require.JSONEq(t, fmt.Sprintf(`{"cidr":"198.51.100.0/24","user_id":%q,"granted":true,"restricted":false,"expires_at":%q}`,
			g.user, row.ExpiresAt.UTC().Format(time.RFC3339Nano)), string(audit[0].Details))
	})

	t.Run("NotDueWaitsUntilAnAdminEndsIt", func(t *testing.T) {
		// The run wakes an hour before the database's expiry (a stale
		// deadline): the entry is left alone and the run waits what the
		// database has left. Half an hour later an admin makes it expire
		// now: the database first, then the Update; the run disables it.
		id := g.grant(0, "2001:db8:42::/64", "clock_timestamp() + interval '2 hours'")
		env, checks := g.env(id)
		start := env.Now()
		var afterFirst grantRow
		var next IPGrantStatus
		env.RegisterDelayedCallback(func() {
			afterFirst = g.row(id)
			v, err := env.QueryWorkflow(QueryStatus)
			require.NoError(t, err)
			require.NoError(t, v.Get(&next))
		}, time.Hour+10*time.Minute)
		var u grantUpdate
		env.RegisterDelayedCallback(func() {
			_, err := g.store.Pool.Exec(context.Background(),
				`UPDATE ip_allowlist SET expires_at = clock_timestamp() WHERE id = $1`, id)
			require.NoError(t, err)
			env.UpdateWorkflow(UpdateSetIPGrantExpiry, "now", &testsuite.TestUpdateCallback{
				OnAccept: func() { u.accepted = true }, OnReject: func(err error) { u.err = err },
				OnComplete: func(any, error) {},
			}, IPGrantExpiry{ExpiresAt: ptr(env.Now())})
		}, time.Hour+30*time.Minute)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: id, ExpiresAt: start.Add(time.Hour)})
		res := grantResult(t, env)
		require.True(t, u.accepted, "%v", u.err)
		require.Equal(t, IPGrantExpired, res.Outcome)
		require.True(t, res.Recorded)

		got := checks()
		require.Len(t, got, 2)
		require.Equal(t, time.Hour, got[0].Sub(start))
		require.Equal(t, time.Hour+30*time.Minute, got[1].Sub(start))
		require.True(t, afterFirst.Enabled, "the first check left the entry alone")
		require.Nil(t, afterFirst.ExpiredAt)
		require.WithinDuration(t, start.Add(3*time.Hour), next.ExpiresAt, time.Minute,
			"after the first check the run waits the two hours the database had left")
		require.Equal(t, 1, next.Checks)
		require.False(t, g.row(id).Enabled)
		require.Len(t, g.audit(id), 1)
	})

	t.Run("DeletedEntryEnds", func(t *testing.T) {
		id := g.grant(0, "203.0.113.0/24", "clock_timestamp()")
		_, err := g.store.Pool.Exec(context.Background(), `DELETE FROM ip_allowlist WHERE id = $1`, id)
		require.NoError(t, err)
		env, _ := g.env(id)
		env.ExecuteWorkflow(IPGrant, IPGrantInput{EntryID: id, ExpiresAt: env.Now().Add(time.Minute)})
		require.Equal(t, IPGrantGone, grantResult(t, env).Outcome)
		require.Empty(t, g.audit(id))
	})
}

// The client against the Temporal dev server, with a worker on a task queue
// of its own and the real activity. Workflow IDs are per namespace and other
// tests' runs share it: the entries here have random ids.

func TestIPGrantClientLive(t *testing.T) {
	t.Parallel()
	g := newLiveGrants(t)
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	wf := &Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: "ipgrant-test-" + uuid.NewString()}
	w := sdkworker.New(tc, wf.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflow(IPGrant)
	w.RegisterActivity(&activities.IPGrants{Store: g.store})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	randomID := func() int64 { return rand.Int64N(1<<53) + 1<<40 }

	status := func(id int64) IPGrantStatus {
		t.Helper()
		v, err := tc.QueryWorkflow(ctx, IPGrantID(id), "", QueryStatus)
		require.NoError(t, err)
		var st IPGrantStatus
		require.NoError(t, v.Get(&st))
		return st
	}
	describe := func(id int64) (runID string, status enums.WorkflowExecutionStatus) {
		t.Helper()
		d, err := tc.DescribeWorkflowExecution(ctx, IPGrantID(id), "")
		require.NoError(t, err)
		info := d.GetWorkflowExecutionInfo()
		return info.GetExecution().GetRunId(), info.GetStatus()
	}
	result := func(id int64, runID string) IPGrantResult {
		t.Helper()
		var res IPGrantResult
		require.NoError(t, tc.GetWorkflow(ctx, IPGrantID(id), runID).Get(ctx, &res))
		return res
	}

	t.Run("StartUpdateEndRestart", func(t *testing.T) {
		id := g.grant(randomID(), "192.0.2.0/24", "clock_timestamp() + interval '1 hour'")
		first := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		require.NoError(t, wf.SetIPGrantExpiry(ctx, id, &first))
		run1, st := describe(id)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, st)
		require.True(t, status(id).ExpiresAt.Equal(first))

		// Extended: the same run, the new deadline.
		later := first.Add(time.Hour)
		require.NoError(t, wf.SetIPGrantExpiry(ctx, id, &later))
		run, _ := describe(id)
		require.Equal(t, run1, run, "the running run took it")
		require.True(t, status(id).ExpiresAt.Equal(later))

		// No longer expires: the run ends, without touching the entry.
		require.NoError(t, wf.SetIPGrantExpiry(ctx, id, nil))
		require.Equal(t, IPGrantNoExpiry, result(id, run1).Outcome)
		require.True(t, g.row(id).Enabled)
		// Again, with no run open: nothing to do.
		require.NoError(t, wf.SetIPGrantExpiry(ctx, id, nil))

		// Made to expire now (the database first): a new run, which
		// disables it at once.
		_, err := g.store.Pool.Exec(ctx, `UPDATE ip_allowlist SET expires_at = clock_timestamp() WHERE id = $1`, id)
		require.NoError(t, err)
		now := time.Now()
		require.NoError(t, wf.SetIPGrantExpiry(ctx, id, &now))
		run2, _ := describe(id)
		require.NotEqual(t, run1, run2)
		res := result(id, run2)
		require.Equal(t, IPGrantExpired, res.Outcome)
		require.True(t, res.Recorded)
		require.False(t, g.row(id).Enabled)
		audit := g.audit(id)
		require.Len(t, audit, 1)
		require.Equal(t, IPGrantID(id)+":"+run2, audit[0].RequestID)
	})

	t.Run("NoRunNothingToEnd", func(t *testing.T) {
		require.NoError(t, wf.SetIPGrantExpiry(ctx, randomID(), nil))
	})

	t.Run("ZeroTimeRefused", func(t *testing.T) {
		require.Error(t, wf.SetIPGrantExpiry(ctx, randomID(), &time.Time{}))
	})

	t.Run("ConcurrentCallsShareOneRun", func(t *testing.T) {
		id := g.grant(randomID(), "192.0.2.77/32", "clock_timestamp() + interval '1 day'")
		base := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Microsecond)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				at := base.Add(time.Duration(i) * time.Minute)
				errs[i] = wf.SetIPGrantExpiry(ctx, id, &at)
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		run, st := describe(id)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, st)
		got := status(id).ExpiresAt
		require.True(t, !got.Before(base) && !got.After(base.Add(7*time.Minute)), "one of the deadlines sent: %v", got)
		// That run took all eight: no other run started and lost some.
		accepted := 0
		it := tc.GetWorkflowHistory(ctx, IPGrantID(id), run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
				accepted++
			}
		}
		require.Equal(t, len(errs), accepted)
		require.NoError(t, wf.SetIPGrantExpiry(ctx, id, nil))
		require.Equal(t, IPGrantNoExpiry, result(id, run).Outcome)
	})
}
