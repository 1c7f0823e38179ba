package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// timingStarter records when each event's workflow start returned.
type timingStarter struct {
	next    worker.Starter
	mu      sync.Mutex
	started map[string]time.Time
	all     chan struct{}
	want    int
}

func (s *timingStarter) StartDispatchBatch(ctx context.Context, in workflows.DispatchBatchInput) (string, string, error) {
	wid, runID, err := s.next.StartDispatchBatch(ctx, in)
	if err == nil {
		now := time.Now()
		s.mu.Lock()
		for _, ev := range in.Events {
			s.started[ev.EventID] = now
		}
		if len(s.started) == s.want {
			close(s.all)
		}
		s.mu.Unlock()
	}
	return wid, runID, err
}

// BenchmarkRelay publishes events into the outbox and measures the relay
// against the real Temporal dev server with a worker running the
// DispatchEvents runs. Run it with `make bench`.
//
//   - burst: 3000 events committed as fast as one publisher can, reporting
//     events/s from the first commit to the last workflow start;
//   - rate=100/s and rate=300/s: events committed one per transaction at a
//     fixed rate for 10 s, reporting p50/p99 from commit to workflow start.
//   - relay-only: the burst with a starter that returns at once instead of
//     calling Temporal: the relay's own ceiling (PostgreSQL claim + mark).
func BenchmarkRelay(b *testing.B) {
	b.Run("burst", func(b *testing.B) { benchRelay(b, 3000, 0, false) })
	b.Run("rate=100/s", func(b *testing.B) { benchRelay(b, 1000, 100, false) })
	b.Run("rate=300/s", func(b *testing.B) { benchRelay(b, 3000, 300, false) })
	b.Run("relay-only", func(b *testing.B) { benchRelay(b, 10000, 0, true) })
}

// instantStarter stands in for Temporal to measure the relay alone.
type instantStarter struct{}

func (instantStarter) StartDispatchBatch(_ context.Context, in workflows.DispatchBatchInput) (string, string, error) {
	return workflows.DispatchBatchID(in.BatchID), uuid.NewString(), nil
}

func benchRelay(b *testing.B, events, rate int, relayOnly bool) {
	for b.Loop() {
		runRelayLoad(b, events, rate, relayOnly)
	}
}

func runRelayLoad(b *testing.B, events, rate int, relayOnly bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := testenv.DB(b)
	store := &schemas.Store{Pool: pool}
	tc := testenv.TemporalClient(b, testenv.TemporalAddress(b))
	taskQueue := "bench-" + uuid.NewString()
	starter := &timingStarter{
		next:    &workflows.Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: taskQueue},
		started: map[string]time.Time{}, all: make(chan struct{}), want: events,
	}
	if relayOnly {
		starter.next = instantStarter{}
	}
	logger := slog.New(slog.DiscardHandler)
	relay := &worker.Relay{Pool: pool, Starter: starter, Logger: logger}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = relay.Run(ctx) })
	if !relayOnly {
		wg.Go(func() {
			_ = worker.Run(ctx, tc, taskQueue, worker.Deps{Store: store}, worker.Options{}, logger)
		})
	}

	committed := make(map[string]time.Time, events)
	publish := func(n int) {
		err := store.InTx(ctx, func(tx pgx.Tx) error {
			for range n {
				id, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionUpdated,
					Data: schemas.SessionEventData{SessionID: "bench", User: "bench", State: "running"}})
				if err != nil {
					return err
				}
				committed[id.String()] = time.Time{}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		for id, t := range committed {
			if t.IsZero() {
				committed[id] = now
			}
		}
	}

	start := time.Now()
	if rate == 0 {
		for sent := 0; sent < events; sent += 50 {
			publish(min(50, events-sent))
		}
	} else {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for range events {
			<-tick.C
			publish(1)
		}
		tick.Stop()
	}
	select {
	case <-starter.all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d events started", len(starter.started), events)
	}
	elapsed := time.Since(start)

	starter.mu.Lock()
	defer starter.mu.Unlock()
	lat := make([]time.Duration, 0, events)
	var last time.Time
	for id, at := range starter.started {
		lat = append(lat, max(at.Sub(committed[id]), 0))
		if at.After(last) {
			last = at
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	b.ReportMetric(float64(events)/last.Sub(start).Seconds(), "events/s")
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("%d events in %v: %s", events, elapsed.Round(time.Millisecond),
		fmt.Sprintf("p50 %v p99 %v", pct(0.50), pct(0.99)))
}
