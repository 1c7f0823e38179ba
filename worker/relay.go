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

// Starter starts the DispatchEvents run of a batch; *workflows.Client is one.
type Starter interface {
	StartDispatchBatch(ctx context.Context, in workflows.DispatchBatchInput) (workflowID, runID string, err error)
}

// Relay moves events from the outbox into Temporal: it claims pending events
// in batches and starts one DispatchEvents run per batch, recording the run
// on each event row in the transaction that claimed them. It wakes on the
// events table's NOTIFY, so a lone event is started within milliseconds;
// under load, batch starts are at least BatchWindow apart and what arrives
// meanwhile joins the next batch. It also sweeps on a timer, so events
// written while Temporal (or the listener) was down are dispatched once it
// is back. Several relays may run at once: rows are claimed with FOR UPDATE
// SKIP LOCKED, and a run handles only the events whose rows name it
// (DispatchEvents' HoldEvents), so an event is never handled by two runs.
//
// Back-pressure: while MaxInFlight events are dispatched but not finished,
// the relay claims nothing more; the events wait, durable, in the outbox,
// and Temporal and the worker hold only what they can work through.
type Relay struct {
	Pool    *pgxpool.Pool
	Starter Starter
	Logger  *slog.Logger
	Config  RelayConfig
	Metrics *RelayMetrics // optional

	lastStart time.Time // of this relay's latest batch (BatchWindow)
	throttled bool      // the latest drain stopped at MaxInFlight

	// OnDispatched, when set, is called after each batch commits with the
	// events whose runs were started and the time the batch committed.
	OnDispatched func(events []schemas.StoredEvent, at time.Time)
	// OnDeferred, when set, is called after each batch whose start failed,
	// with how many events it deferred and the error.
	OnDeferred func(failed int, err error)
}

// RelayConfig tunes the relay; zero fields take the defaults.
type RelayConfig struct {
	BatchSize     int           // events claimed per transaction, and per DispatchEvents run (100)
	BatchWindow   time.Duration // least time between two batch starts (25ms)
	MaxInFlight   int           // dispatched events not yet finished, beyond which nothing is claimed (20000)
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
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 20000
	}
	def(&c.BatchWindow, 25*time.Millisecond)
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

// drain dispatches batches until no due event is left, or until
// MaxInFlight events are in flight.
func (r *Relay) drain(ctx context.Context, cfg RelayConfig) error {
	store := &schemas.Store{Pool: r.Pool}
	for ctx.Err() == nil {
		if wait := time.Until(r.lastStart.Add(cfg.BatchWindow)); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		inFlight, err := store.EventsInFlight(ctx)
		if err != nil {
			return err
		}
		if inFlight >= cfg.MaxInFlight {
			r.throttled = true
			return nil
		}
		r.throttled = false
		claimed, err := r.dispatchBatch(ctx, cfg, min(cfg.BatchSize, cfg.MaxInFlight-inFlight))
		if err != nil || claimed < cfg.BatchSize {
			return err
		}
	}
	return nil
}

// nextSweep is how long to wait before sweeping again: until the earliest
// deferred event is due, at most SweepInterval; soon while back-pressure
// holds events back.
func (r *Relay) nextSweep(ctx context.Context, cfg RelayConfig) time.Duration {
	if r.throttled {
		return throttledPoll
	}
	due, ok, err := (&schemas.Store{Pool: r.Pool}).NextPendingEventDue(ctx)
	if err != nil || !ok {
		return cfg.SweepInterval
	}
	return min(max(time.Until(due), 10*time.Millisecond), cfg.SweepInterval)
}

// throttledPoll is how often a relay held back by MaxInFlight looks again.
const throttledPoll = 100 * time.Millisecond

// dispatchBatch claims one batch of up to limit due events, starts their
// run and records it, all in one transaction. It returns how many it
// claimed.
func (r *Relay) dispatchBatch(ctx context.Context, cfg RelayConfig, limit int) (int, error) {
	tx, err := r.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	events, err := schemas.ClaimPendingEvents(ctx, tx, limit)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	batchID, err := uuid.NewV7()
	if err != nil {
		return 0, err
	}
	in := workflows.DispatchBatchInput{BatchID: batchID.String(), Events: make([]workflows.DispatchEventInput, len(events))}
	ids := make([]uuid.UUID, len(events))
	for i, ev := range events {
		in.Events[i] = workflows.DispatchEventInput{EventID: ev.ID.String(), Type: string(ev.Type)}
		ids[i] = ev.ID
	}
	sctx, scancel := context.WithTimeout(ctx, cfg.StartTimeout)
	wid, runID, startErr := r.Starter.StartDispatchBatch(sctx, in)
	scancel()
	r.lastStart = time.Now()
	if startErr != nil {
		if err := schemas.DeferEvents(ctx, tx, events, startErr.Error(), cfg.retryDelay); err != nil {
			return 0, err
		}
	} else if err := schemas.MarkEventsDispatched(ctx, tx, ids, wid, runID); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	now := time.Now()
	if startErr != nil {
		r.Metrics.observe(nil, len(events), now)
		r.Logger.Warn("event dispatch deferred", "events", len(events), "err", startErr)
		if r.OnDeferred != nil {
			r.OnDeferred(len(events), startErr)
		}
		return 0, nil // Temporal is likely down: stop draining until the next sweep
	}
	r.Metrics.observe(events, 0, now)
	if r.OnDispatched != nil {
		r.OnDispatched(events, now)
	}
	return len(events), nil
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
