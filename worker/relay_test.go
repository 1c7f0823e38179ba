package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

type relayBundle struct {
	pool       *pgxpool.Pool
	store      *schemas.Store
	temporal   client.Client // direct to the dev server
	proxy      *testenv.Proxy
	wc         *workflows.Client // the relay's client, through the proxy
	dispatched chan uuid.UUID
	deferred   chan error
}

// setupRelay gives each test its own database, task queue and worker, and a
// relay that reaches Temporal through a proxy the test can switch off.
func setupRelay(t *testing.T) *relayBundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool := testenv.DB(t)
	addr := testenv.TemporalAddress(t)
	proxy := testenv.NewProxy(t, addr)
	taskQueue := "test-" + uuid.NewString()
	b := &relayBundle{
		pool:       pool,
		store:      &schemas.Store{Pool: pool},
		temporal:   testenv.TemporalClient(t, addr),
		proxy:      proxy,
		dispatched: make(chan uuid.UUID, 1000),
		deferred:   make(chan error, 1000),
	}
	b.wc = &workflows.Client{Temporal: testenv.TemporalClient(t, proxy.Addr()),
		Namespace: testenv.TemporalNamespace(), TaskQueue: taskQueue}
	logger := slog.New(slog.DiscardHandler)
	relay := &worker.Relay{
		Pool: pool, Starter: b.wc, Logger: logger,
		Config: worker.RelayConfig{SweepInterval: 200 * time.Millisecond, StartTimeout: time.Second,
			RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond},
		OnDispatched: func(evs []schemas.StoredEvent, _ time.Time) {
			for _, ev := range evs {
				b.dispatched <- ev.ID
			}
		},
		OnDeferred: func(_ int, err error) { b.deferred <- err },
	}
	done := make(chan struct{}, 2)
	go func() {
		_ = worker.Run(ctx, b.temporal, taskQueue, worker.Deps{Store: b.store}, worker.Options{}, logger)
		done <- struct{}{}
	}()
	go func() {
		_ = relay.Run(ctx)
		done <- struct{}{}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	return b
}

func (b *relayBundle) publish(t *testing.T, commit bool) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	var id uuid.UUID
	rollback := errors.New("rollback")
	err := b.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated,
			Data: schemas.SessionEventData{SessionID: "s-" + uuid.NewString()[:8], User: "user1", State: "running"}})
		if err != nil {
			return err
		}
		if !commit {
			return rollback
		}
		return nil
	})
	if commit {
		require.NoError(t, err)
	} else {
		require.ErrorIs(t, err, rollback)
	}
	return id
}

// publishMany commits n session.created events in one transaction and
// answers their ids in order.
func (b *relayBundle) publishMany(t *testing.T, n int) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	var ids []uuid.UUID
	require.NoError(t, b.store.InTx(ctx, func(tx pgx.Tx) error {
		for range n {
			id, err := schemas.Publish(ctx, tx, schemas.Event{Type: schemas.EventSessionCreated,
				Data: schemas.SessionEventData{SessionID: "s-1", User: "user1", State: "running"}})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}))
	return ids
}

// waitDispatched blocks until the relay reports id, failing on any other
// event reported first.
func (b *relayBundle) waitDispatched(t *testing.T, id uuid.UUID) {
	t.Helper()
	select {
	case got := <-b.dispatched:
		require.Equal(t, id, got, "the relay dispatched an unexpected event")
	case <-time.After(30 * time.Second):
		t.Fatalf("event %s was not dispatched", id)
	}
}

// waitCompleted blocks until the batch run named on the event's row
// completes, and returns the event as it is then.
func (b *relayBundle) waitCompleted(t *testing.T, id uuid.UUID) (schemas.StoredEvent, workflows.DispatchBatchResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := b.store.GetEvent(ctx, id)
	require.NoError(t, err)
	require.NotEmpty(t, ev.WorkflowID, "a dispatched event names its run")
	var res workflows.DispatchBatchResult
	require.NoError(t, b.temporal.GetWorkflow(ctx, ev.WorkflowID, ev.RunID).Get(ctx, &res))
	ev, err = b.store.GetEvent(ctx, id)
	require.NoError(t, err)
	return ev, res
}

func TestRelay(t *testing.T) {
	t.Parallel()

	t.Run("DispatchesCommittedEvent", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		id := b.publish(t, true)
		b.waitDispatched(t, id)
		ev, res := b.waitCompleted(t, id)
		require.Equal(t, workflows.DispatchBatchResult{Handled: 1}, res)
		require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
		require.True(t, strings.HasPrefix(ev.WorkflowID, "events/"), ev.WorkflowID)
		require.NotEmpty(t, ev.RunID)
		require.NotNil(t, ev.CompletedAt)

		desc, err := b.temporal.DescribeWorkflowExecution(context.Background(), ev.WorkflowID, ev.RunID)
		require.NoError(t, err)
		require.Equal(t, "DispatchEvents", desc.WorkflowExecutionInfo.Type.Name)
		require.Equal(t, b.wc.TaskQueue+"-events", desc.WorkflowExecutionInfo.TaskQueue,
			"batch runs have their own task queue, so a backlog of events does not delay sessions")
	})

	t.Run("OneRunPerBatch", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		// 150 events in one transaction: the relay sees them all at once and
		// claims them in batches of RELAY_BATCH_SIZE (100).
		ids := b.publishMany(t, 150)
		runs := map[string]int{}
		for range ids {
			select {
			case <-b.dispatched:
			case <-time.After(30 * time.Second):
				t.Fatal("not every event was dispatched")
			}
		}
		for _, id := range ids {
			ev, _ := b.waitCompleted(t, id)
			require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
			runs[ev.WorkflowID+"/"+ev.RunID]++
		}
		require.Len(t, runs, 2, "150 events in batches of 100: %v", runs)
		counts := []int{}
		for _, n := range runs {
			counts = append(counts, n)
		}
		require.ElementsMatch(t, []int{100, 50}, counts)
	})

	t.Run("RunHandlesOnlyEventsThatNameIt", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		ctx := context.Background()
		id := b.publish(t, true)
		b.waitDispatched(t, id)
		before, _ := b.waitCompleted(t, id)

		// A relay that started a run and then failed to commit (it crashed,
		// or its database connection dropped) leaves a run for events whose
		// rows do not name it: that run must leave them alone.
		wid, runID, err := b.wc.StartDispatchBatch(ctx, workflows.DispatchBatchInput{BatchID: uuid.NewString(),
			Events: []workflows.DispatchEventInput{{EventID: id.String(), Type: "session.created"}}})
		require.NoError(t, err)
		var res workflows.DispatchBatchResult
		require.NoError(t, b.temporal.GetWorkflow(ctx, wid, runID).Get(ctx, &res))
		require.Equal(t, workflows.DispatchBatchResult{Skipped: 1}, res)
		after, err := b.store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, before.WorkflowID, after.WorkflowID)
		require.Equal(t, before.RunID, after.RunID)
		require.Equal(t, before.CompletedAt, after.CompletedAt)
	})

	t.Run("TwoRelaysHandleEachEventOnce", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		ctx := context.Background()
		second := &worker.Relay{Pool: b.pool, Starter: b.wc, Logger: slog.New(slog.DiscardHandler),
			Config: worker.RelayConfig{BatchSize: 7, BatchWindow: time.Millisecond},
			OnDispatched: func(evs []schemas.StoredEvent, _ time.Time) {
				for _, ev := range evs {
					b.dispatched <- ev.ID
				}
			}}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = second.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })

		const n = 300
		var ids []uuid.UUID
		for i := 0; i < n; i += 10 {
			ids = append(ids, b.publishMany(t, 10)...)
		}
		seen := map[uuid.UUID]int{}
		for range n {
			select {
			case id := <-b.dispatched:
				seen[id]++
			case <-time.After(30 * time.Second):
				t.Fatalf("only %d of %d events were dispatched", len(seen), n)
			}
		}
		require.Len(t, seen, n)
		results := map[string]workflows.DispatchBatchResult{}
		for _, id := range ids {
			require.Equal(t, 1, seen[id], "event %s dispatched %d times", id, seen[id])
			ev, res := b.waitCompleted(t, id)
			require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
			results[ev.WorkflowID] = res
		}
		handled := 0
		for _, res := range results {
			require.Zero(t, res.Skipped+res.Failed, "%+v", res)
			handled += res.Handled
		}
		require.Equal(t, n, handled, "the runs together handled each event once")
	})

	t.Run("NothingForRolledBackTransaction", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		ctx := context.Background()
		b.publish(t, false)
		kept := b.publish(t, true)
		// Events are dispatched in commit order, so once the later committed
		// event is through, a dispatch of the rolled-back one would have shown.
		b.waitDispatched(t, kept)
		_, res := b.waitCompleted(t, kept)
		require.Equal(t, workflows.DispatchBatchResult{Handled: 1}, res)
		require.Empty(t, b.dispatched)
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n))
		require.Equal(t, 1, n)
	})

	t.Run("DispatchesAfterTemporalReturns", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		ctx := context.Background()
		b.proxy.SetUp(false)
		id := b.publish(t, true)

		select {
		case err := <-b.deferred:
			require.Error(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("the relay never tried to start the event while Temporal was down")
		}
		ev, err := b.store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchPending, ev.DispatchState)
		require.GreaterOrEqual(t, ev.DispatchAttempts, 1)
		require.NotEmpty(t, ev.LastError)
		require.Empty(t, ev.WorkflowID)

		b.proxy.SetUp(true)
		b.waitDispatched(t, id)
		ev, _ = b.waitCompleted(t, id)
		require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
		require.Empty(t, ev.LastError)
	})
}
