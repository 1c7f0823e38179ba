package worker_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/streamspace/enterprise/activities"
	"github.com/streamspace/enterprise/internal/safehttp"
	"github.com/streamspace/enterprise/internal/secretbox"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// End-to-end delivery tests: the outbox relay and real workers against the
// Temporal dev server and PostgreSQL, delivering to httptest receivers.

// hubStack is one test's database, task queue, relay and sealed secrets.
type hubStack struct {
	t         testing.TB
	ctx       context.Context
	pool      *pgxpool.Pool
	store     *schemas.Store
	dbURL     string
	temporal  client.Client
	wc        *workflows.Client
	taskQueue string
	key       []byte
	box       *secretbox.Box
}

func newHubStack(t testing.TB) *hubStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool := testenv.DB(t)
	cc := pool.Config().ConnConfig
	s := &hubStack{t: t, ctx: ctx, pool: pool, store: &schemas.Store{Pool: pool},
		dbURL: fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cc.User, cc.Password, cc.Host, cc.Port,
			cc.Database),
		temporal: testenv.TemporalClient(t, testenv.TemporalAddress(t)), taskQueue: "hub-" + uuid.NewString(),
		key: make([]byte, secretbox.KeySize)}
	_, _ = rand.Read(s.key)
	var err error
	s.box, err = secretbox.New(s.key)
	require.NoError(t, err)
	s.wc = &workflows.Client{Temporal: s.temporal, Namespace: testenv.TemporalNamespace(), TaskQueue: s.taskQueue}
	require.NoError(t, s.wc.EnsureSearchAttributes(ctx))

	relay := &worker.Relay{Pool: pool, Starter: s.wc, Logger: slog.New(slog.DiscardHandler),
		Config: worker.RelayConfig{SweepInterval: 500 * time.Millisecond}}
	done := make(chan struct{})
	go func() { _ = relay.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// deliveries is the engine a test worker runs: loopback receivers allowed.
func hubDeliveries(store *schemas.Store, box *secretbox.Box) *activities.Deliveries {
	return &activities.Deliveries{Store: store, Secrets: box,
		HTTP: safehttp.NewClient(safehttp.Options{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			Timeout: 5 * time.Second})}
}

// runWorker runs a worker in this process until the returned stop is called.
func (s *hubStack) runWorker() (stop func()) {
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	go func() {
		_ = worker.Run(ctx, s.temporal, s.taskQueue, worker.Deps{Store: s.store, Deliveries: hubDeliveries(s.store, s.box)},
			worker.PollerOptions(worker.DefaultPollers, worker.DefaultEventsPollers), slog.New(slog.DiscardHandler))
		close(done)
	}()
	return func() { cancel(); <-done }
}

// startWorkerProcess runs a worker in a child process (this test binary's
// TestDeliveryWorkerProcess), which kill SIGKILLs: nothing it does is
// finished cleanly.
func (s *hubStack) startWorkerProcess() (kill func()) {
	t := s.t
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeliveryWorkerProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), "HUB_WORKER_PROCESS=1", "HUB_DATABASE_URL="+s.dbURL,
		"HUB_TASK_QUEUE="+s.taskQueue, "HUB_KEY="+hex.EncodeToString(s.key))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		_ = cmd.Process.Kill()
		t.Fatalf("worker process: %q, %v", line, err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	return kill
}

// TestDeliveryWorkerProcess is not a test: startWorkerProcess runs it in a
// child process as a worker.
func TestDeliveryWorkerProcess(t *testing.T) {
	if os.Getenv("HUB_WORKER_PROCESS") != "1" {
		t.Skip("helper process of the crash tests")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("HUB_DATABASE_URL"))
	require.NoError(t, err)
	key, err := hex.DecodeString(os.Getenv("HUB_KEY"))
	require.NoError(t, err)
	box, err := secretbox.New(key)
	require.NoError(t, err)
	store := &schemas.Store{Pool: pool}
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	go func() {
		time.Sleep(200 * time.Millisecond)
		fmt.Println("ready")
	}()
	_ = worker.Run(ctx, tc, os.Getenv("HUB_TASK_QUEUE"), worker.Deps{Store: store, Deliveries: hubDeliveries(store, box)},
		worker.Options{}, slog.New(slog.DiscardHandler))
}

// webhook subscribes a receiver to session.created.
func (s *hubStack) webhook(url string, backoff []int, rate int) uuid.UUID {
	s.t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	sealed, err := s.box.SealString("whsec_" + base64.StdEncoding.EncodeToString(b))
	require.NoError(s.t, err)
	id := uuid.Must(uuid.NewV7())
	_, err = s.pool.Exec(s.ctx, `INSERT INTO webhooks (id, name, url, events, secret_enc, backoff_seconds,
			rate_limit_per_second) VALUES ($1, 'receiver', $2, '{session.created}', $3, $4, $5)`,
		id, url, sealed, backoff, rate)
	require.NoError(s.t, err)
	return id
}

// publish commits n session.created events, batch per transaction, and
// answers their commit times by event id.
func (s *hubStack) publish(n, batch int) map[uuid.UUID]time.Time {
	s.t.Helper()
	out := make(map[uuid.UUID]time.Time, n)
	for sent := 0; sent < n; sent += batch {
		var ids []uuid.UUID
		err := s.store.InTx(s.ctx, func(tx pgx.Tx) error {
			for range min(batch, n-sent) {
				id, err := schemas.Publish(s.ctx, tx, schemas.Event{Type: schemas.EventSessionCreated,
					Data: schemas.SessionEventData{SessionID: "s", User: "u", State: "pending"}})
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		})
		require.NoError(s.t, err)
		now := time.Now()
		for _, id := range ids {
			out[id] = now
		}
	}
	return out
}

// countDeliveries counts deliveries by state.
func (s *hubStack) countDeliveries() map[string]int {
	rows, err := s.pool.Query(s.ctx, `SELECT state, count(*) FROM deliveries GROUP BY state`)
	require.NoError(s.t, err)
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		require.NoError(s.t, rows.Scan(&st, &n))
		out[st] = n
	}
	require.NoError(s.t, rows.Err())
	return out
}

// explain logs where the deliveries and events stand, when a test fails.
func (s *hubStack) explain() {
	s.t.Logf("deliveries by state: %v", s.countDeliveries())
	for _, q := range []string{
		`SELECT dispatch_state || ' ' || count(*) FROM events GROUP BY dispatch_state`,
		`SELECT outcome || ' ' || count(*) FROM delivery_attempts GROUP BY outcome`,
		`SELECT left(last_error, 200) || ' x' || count(*) FROM deliveries WHERE last_error <> '' GROUP BY left(last_error, 200) LIMIT 10`,
		`SELECT left(coalesce(last_error, ''), 200) || ' x' || count(*) FROM events WHERE last_error <> '' GROUP BY left(coalesce(last_error, ''), 200) LIMIT 10`,
	} {
		rows, err := s.pool.Query(context.Background(), q)
		if err != nil {
			s.t.Logf("%s: %v", q, err)
			continue
		}
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			s.t.Logf("  %s", line)
		}
		rows.Close()
	}
}

func (s *hubStack) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.explain()
			s.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dedupReceiver counts requests by webhook-id, as a receiver that
// deduplicates does; failFirst answers 500 to the first request of each id.
type dedupReceiver struct {
	*httptest.Server
	mu        sync.Mutex
	total     int
	byID      map[string]int
	firstSeen map[string]time.Time
	failFirst bool
}

func newDedupReceiver(t testing.TB, failFirst bool) *dedupReceiver {
	rv := &dedupReceiver{byID: map[string]int{}, firstSeen: map[string]time.Time{}, failFirst: failFirst}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		rv.mu.Lock()
		rv.total++
		rv.byID[id]++
		n := rv.byID[id]
		if n == 1 {
			rv.firstSeen[id] = time.Now()
		}
		rv.mu.Unlock()
		if rv.failFirst && n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.Close)
	return rv
}

func (rv *dedupReceiver) counts() (total, distinct int) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.total, len(rv.byID)
}

// TestDeliveryCrashSafety: a worker is SIGKILLed while deliveries wait to
// retry; a new worker makes the retries, with the same webhook-ids.
func TestDeliveryCrashSafety(t *testing.T) {
	t.Parallel()
	s := newHubStack(t)
	rv := newDedupReceiver(t, true)
	// 12 s (±10%) between the attempts: long enough for every first attempt
	// to be made before the first retry is due, even on a busy machine.
	hook := s.webhook(rv.URL, []int{12}, 1000)

	kill := s.startWorkerProcess()
	const n = 20
	s.publish(n, n)
	// The batch run finishes its events once it has woken the webhook's
	// retry loop: wait for that, not only for the first attempts.
	s.waitFor("every delivery's first attempt failed and the retry loop waits", time.Minute, func() bool {
		var finished int
		require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM events WHERE dispatch_state = 'completed'`).Scan(&finished))
		return s.countDeliveries()[schemas.DeliveryRetrying] == n && finished == n
	})
	total, distinct := rv.counts()
	require.Equal(t, n, total)
	require.Equal(t, n, distinct)
	kill() // while every delivery waits for its next attempt

	// One loop for the webhook waits, with nothing polling for it; no
	// delivery has a run of its own.
	var ids []string
	rows, err := s.pool.Query(s.ctx, `SELECT id FROM deliveries`)
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id.String())
	}
	require.Len(t, ids, n)
	loopID := workflows.TargetRetriesWorkflowID(workflows.WebhookTarget(hook))
	desc, err := s.temporal.DescribeWorkflowExecution(s.ctx, loopID, "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status)
	require.Equal(t, "TargetRetries", desc.WorkflowExecutionInfo.Type.Name)
	require.Contains(t, string(desc.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()["StreamSpaceWebhookID"].GetData()),
		hook.String())
	_, err = s.temporal.DescribeWorkflowExecution(s.ctx, workflows.DeliveryWorkflowID(ids[0]), "")
	var notFound *serviceerror.NotFound
	require.ErrorAs(t, err, &notFound, "no run per delivery")

	stop := s.runWorker() // a new worker
	defer stop()
	s.waitFor("every delivery succeeded on the new worker", 2*time.Minute, func() bool {
		return s.countDeliveries()[schemas.DeliverySucceeded] == n
	})
	total, distinct = rv.counts()
	require.Equal(t, n, distinct, "the same webhook-ids")
	require.Equal(t, 2*n, total, "one failed and one successful request each")
	rv.mu.Lock()
	for _, id := range ids {
		require.Equal(t, 2, rv.byID[id], "delivery %s", id)
	}
	rv.mu.Unlock()
	var attempts int
	require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM delivery_attempts`).Scan(&attempts))
	require.Equal(t, 2*n, attempts)

	// Nothing waits any more: the loop ended (visible in the Web UI).
	require.NoError(t, s.temporal.GetWorkflow(s.ctx, loopID, "").Get(s.ctx, nil))
}

// TestThousandEventsDeliveredOnce: 1,000 events to one receiver, 1,000
// deliveries, each received exactly once.
func TestThousandEventsDeliveredOnce(t *testing.T) {
	t.Parallel()
	s := newHubStack(t)
	rv := newDedupReceiver(t, false)
	hook := s.webhook(rv.URL, []int{1}, 10000)
	stop := s.runWorker()
	defer stop()

	const n = 1000
	start := time.Now()
	events := s.publish(n, 50)
	s.waitFor("1,000 deliveries", 3*time.Minute, func() bool {
		_, distinct := rv.counts()
		return distinct == n
	})
	elapsed := time.Since(start)
	s.waitFor("every delivery recorded", 30*time.Second, func() bool {
		return s.countDeliveries()[schemas.DeliverySucceeded] == n
	})
	total, distinct := rv.counts()
	require.Equal(t, n, distinct)
	require.Equal(t, n, total, "exactly once: no duplicates")
	require.Equal(t, map[string]int{schemas.DeliverySucceeded: n}, s.countDeliveries())

	// One delivery per event, each id the one received.
	rows, err := s.pool.Query(s.ctx, `SELECT id, event_id FROM deliveries WHERE webhook_id = $1`, hook)
	require.NoError(t, err)
	seen := map[uuid.UUID]bool{}
	rv.mu.Lock()
	for rows.Next() {
		var id, ev uuid.UUID
		require.NoError(t, rows.Scan(&id, &ev))
		require.Contains(t, events, ev)
		require.False(t, seen[ev], "one delivery per event")
		seen[ev] = true
		require.Equal(t, 1, rv.byID[id.String()])
	}
	rv.mu.Unlock()
	require.Len(t, seen, n)
	var completed int
	require.NoError(t, s.pool.QueryRow(s.ctx, `SELECT count(*) FROM events WHERE dispatch_state = 'completed'`).
		Scan(&completed))
	require.Equal(t, n, completed)
	t.Logf("%d events delivered in %v (%.0f/s)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
}
