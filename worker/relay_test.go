package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

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
		_ = worker.Run(ctx, b.temporal, taskQueue, worker.Deps{Store: b.store}, sdkworker.Options{}, logger)
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

// waitCompleted blocks until the event's DispatchEvent run completes.
func (b *relayBundle) waitCompleted(t *testing.T, id uuid.UUID) workflows.DispatchEventResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res workflows.DispatchEventResult
	require.NoError(t, b.temporal.GetWorkflow(ctx, workflows.DispatchEventID(id.String()), "").Get(ctx, &res))
	return res
}

func TestRelay(t *testing.T) {
	t.Parallel()

	t.Run("DispatchesCommittedEvent", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		id := b.publish(t, true)
		b.waitDispatched(t, id)
		res := b.waitCompleted(t, id)
		require.Equal(t, id.String(), res.EventID)
		require.Equal(t, "session.created", res.Type)

		ev, err := b.store.GetEvent(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
		require.Equal(t, workflows.DispatchEventID(id.String()), ev.WorkflowID)
		require.NotNil(t, ev.CompletedAt)
	})

	t.Run("SameEventTwiceStartsOneRun", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		ctx := context.Background()
		id := b.publish(t, true)
		b.waitDispatched(t, id)
		b.waitCompleted(t, id)
		wid := workflows.DispatchEventID(id.String())
		first, err := b.temporal.DescribeWorkflowExecution(ctx, wid, "")
		require.NoError(t, err)

		// A relay that crashed after starting the run but before marking the
		// row would see the event as pending again: dispatch it a second time.
		_, err = b.pool.Exec(ctx, `UPDATE events SET dispatch_state = 'pending', dispatched_at = NULL WHERE id = $1`, id)
		require.NoError(t, err)
		b.waitDispatched(t, id)
		// And a direct second start, as a second relay racing the first would make.
		gotID, err := b.wc.StartDispatchEvent(ctx, workflows.DispatchEventInput{EventID: id.String(), Type: "session.created"})
		require.NoError(t, err)
		require.Equal(t, wid, gotID)

		second, err := b.temporal.DescribeWorkflowExecution(ctx, wid, "")
		require.NoError(t, err)
		require.Equal(t, first.WorkflowExecutionInfo.Execution.RunId, second.WorkflowExecutionInfo.Execution.RunId,
			"a second dispatch must not start a second run")
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, second.WorkflowExecutionInfo.Status)
	})

	t.Run("NothingForRolledBackTransaction", func(t *testing.T) {
		t.Parallel()
		b := setupRelay(t)
		ctx := context.Background()
		lost := b.publish(t, false)
		kept := b.publish(t, true)
		// Events are dispatched in commit order, so once the later committed
		// event is through, a dispatch of the rolled-back one would have shown.
		b.waitDispatched(t, kept)
		b.waitCompleted(t, kept)
		require.Empty(t, b.dispatched)
		_, err := b.temporal.DescribeWorkflowExecution(ctx, workflows.DispatchEventID(lost.String()), "")
		var notFound *serviceerror.NotFound
		require.ErrorAs(t, err, &notFound, "no run may exist for a rolled-back event")
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

		b.proxy.SetUp(true)
		b.waitDispatched(t, id)
		b.waitCompleted(t, id)
		ev, err = b.store.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, schemas.DispatchCompleted, ev.DispatchState)
		require.Empty(t, ev.LastError)
	})
}
