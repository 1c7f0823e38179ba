package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/workflows"
)

// Starter starts the DispatchEvent run of an event; *workflows.Client is one.
type Starter interface {
	StartDispatchEvent(ctx context.Context, in workflows.DispatchEventInput) (string, error)
}

// Relay moves events from the outbox into Temporal: each pending event becomes
// exactly one DispatchEvent run. It wakes on the events table's NOTIFY, so a
// committed event is started within milliseconds, and it also sweeps on a
// timer, so events written while Temporal (or the listener) was down are
// dispatched once it is back. Several relays may run at once: rows are
// claimed with FOR UPDATE SKIP LOCKED and workflow IDs are derived from event
// IDs, so an event is never started twice.
type Relay struct {
	Pool    *pgxpool.Pool
	Starter Starter
	Logger  *slog.Logger
	Config  RelayConfig
	Metrics *RelayMetrics // optional

	// OnDispatched, when set, is called after each batch commits with the
	// events whose runs were started and the time the batch committed.
	OnDispatched func(events []schemas.StoredEvent, at time.Time)
	// OnDeferred, when set, is called after each batch in which starts failed,
	// with how many failed and the first error.
	OnDeferred func(failed int, err error)
}

// RelayConfig tunes the relay; zero fields take the defaults.
type RelayConfig struct {
	BatchSize     int           // events claimed per transaction (100)
	Concurrency   int           // workflow starts in flight at once (32)
	SweepInterval time.Duration // longest wait between sweeps (5s)
	StartTimeout  time.Duration // per workflow start (5s)
	RetryMin      time.Duration // first delay after a failed start (1s)
	RetryMax      time.Duration // largest delay between attempts (1m)
}

func (c RelayConfig) withDefaults() RelayConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	def(&c.SweepInterval, 5*time.Second)
	def(&c.StartTimeout, 5*time.Second)
	def(&c.RetryMin, time.Second)
	def(&c.RetryMax, time.Minute)
	return c
}

// retryDelay is the wait after the attempt-th failed start (1-based).
func (c RelayConfig) retryDelay(attempt int) time.Duration {
	d := c.RetryMin
	for i := 1; i < attempt && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// Run relays events until ctx ends.
func (r *Relay) Run(ctx context.Context) error {
	cfg := r.Config.withDefaults()
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { r.listen(ctx, wake) })
	defer wg.Wait()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-timer.C:
		}
		if err := r.drain(ctx, cfg); err != nil && ctx.Err() == nil {
			r.Logger.Error("event relay", "err", err)
		}
		timer.Reset(r.nextSweep(ctx, cfg))
	}
}

// drain dispatches batches until no due event is left.
func (r *Relay) drain(ctx context.Context, cfg RelayConfig) error {
	for ctx.Err() == nil {
		claimed, err := r.dispatchBatch(ctx, cfg)
		if err != nil || claimed < cfg.BatchSize {
			return err
		}
	}
	return nil
}

// nextSweep is how long to wait before sweeping again: until the earliest
// deferred event is due, at most SweepInterval.
func (r *Relay) nextSweep(ctx context.Context, cfg RelayConfig) time.Duration {
	due, ok, err := (&schemas.Store{Pool: r.Pool}).NextPendingEventDue(ctx)
	if err != nil || !ok {
		return cfg.SweepInterval
	}
	return min(max(time.Until(due), 10*time.Millisecond), cfg.SweepInterval)
}

type startResult struct {
	workflowID string
	err        error
}

// dispatchBatch claims one batch of due events, starts their runs and records
// the outcome, all in one transaction. It returns how many it claimed.
func (r *Relay) dispatchBatch(ctx context.Context, cfg RelayConfig) (int, error) {
	tx, err := r.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	events, err := schemas.ClaimPendingEvents(ctx, tx, cfg.BatchSize)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	results := r.startAll(ctx, cfg, events)

	var ids []uuid.UUID
	var wids []string
	var started []schemas.StoredEvent
	var failures int
	for i, ev := range events {
		res := results[i]
		if res.err == nil {
			ids, wids, started = append(ids, ev.ID), append(wids, res.workflowID), append(started, ev)
			continue
		}
		failures++
		if err := schemas.DeferEvent(ctx, tx, ev.ID, res.err.Error(), cfg.retryDelay(ev.DispatchAttempts+1)); err != nil {
			return 0, err
		}
	}
	if err := schemas.MarkEventsDispatched(ctx, tx, ids, wids); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	now := time.Now()
	r.Metrics.observe(started, failures, now)
	if r.OnDispatched != nil && len(started) > 0 {
		r.OnDispatched(started, now)
	}
	if failures > 0 {
		r.Logger.Warn("event dispatch deferred", "failed", failures, "started", len(started),
			"first_error", firstErr(results))
		if r.OnDeferred != nil {
			r.OnDeferred(failures, firstErr(results))
		}
		if len(started) == 0 {
			return 0, nil // Temporal is likely down: stop draining until the next sweep
		}
	}
	return len(events), nil
}

// startAll starts the runs of events concurrently. After the first failure the
// rest are not attempted (when Temporal is unreachable every start would wait
// out its timeout); they are deferred with the same error.
func (r *Relay) startAll(ctx context.Context, cfg RelayConfig, events []schemas.StoredEvent) []startResult {
	results := make([]startResult, len(events))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for i, ev := range events {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i].err = context.Cause(ctx)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := context.Cause(ctx); err != nil {
				results[i].err = err
				return
			}
			sctx, scancel := context.WithTimeout(ctx, cfg.StartTimeout)
			defer scancel()
			wid, err := r.Starter.StartDispatchEvent(sctx, workflows.DispatchEventInput{
				EventID: ev.ID.String(), Type: string(ev.Type)})
			results[i] = startResult{workflowID: wid, err: err}
			if err != nil {
				cancel(fmt.Errorf("not attempted after an earlier failure: %w", err))
			}
		})
	}
	wg.Wait()
	return results
}

func firstErr(results []startResult) error {
	for _, r := range results {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// listen holds a LISTEN connection and signals wake for each notification.
// When the connection drops it reconnects and wakes the relay, which sweeps
// for anything committed in between.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, signal)
		if ctx.Err() != nil {
			return
		}
		r.Logger.Warn("event listener lost its connection; relying on sweeps until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
		signal()
	}
}

func (r *Relay) listenOnce(ctx context.Context, signal func()) error {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection that has run LISTEN must not go back to the pool.
	defer func() { _ = conn.Hijack().Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{schemas.NotifyChannel}.Sanitize()); err != nil {
		return err
	}
	signal() // catch anything committed before LISTEN took effect
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		signal()
	}
}
