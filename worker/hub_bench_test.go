package worker_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// BenchmarkWebhookDeliveries measures delivery end to end: events committed
// into the outbox, the relay, DispatchEvent on a worker in this process (its
// first attempts as local activities), signed POSTs to 10 subscribed
// webhooks whose receivers answer 204, every attempt recorded in PostgreSQL.
// The Temporal dev server and PostgreSQL run beside it, on the same machine.
// Run it with `make bench-webhooks`.
//
//   - rate=65/s: 65 events a second (650 deliveries/s) for 20 s; p50/p99 from
//     an event's commit to each receipt;
//
//   - rate=130/s: the same at 1,300 deliveries/s;
//
//   - burst: 2,000 events committed as fast as one publisher can (20,000
//     deliveries): the sustained ceiling, first commit to last receipt;
//
//   - pending-retries: 1,000 events to 10 receivers that answer 500, with an
//     hour's backoff: 10,000 deliveries wait to retry, in PostgreSQL, behind
//     10 retry loops (one per webhook); reports how fast they were handed
//     over and the memory that takes in the worker (Go heap, with its
//     workflow cache) and in the Temporal dev server (resident set).
//
//   - dispatch-only: the burst with no webhook at all, for comparison: how
//     many DispatchEvent runs a second the relay, the dev server and the
//     worker complete here; deliveries/s cannot exceed it times the number
//     of subscribed webhooks.
//
// HUB_BENCH_WEBHOOKS=n subscribes n webhooks instead of 10. The webhooks'
// rate limit is set to 10,000/s (the default 10/s would cap
// each receiver, and so the run, at 100 deliveries/s).
//
// Besides the rates, each run reports the CPU time spent per delivery (per
// event for dispatch-only) by this process (worker, relay, receivers,
// publisher), the Temporal dev server and PostgreSQL: on a shared machine
// the rates depend on what else runs, the CPU costs much less.
func BenchmarkWebhookDeliveries(b *testing.B) {
	b.Run("dispatch-only", func(b *testing.B) { benchDeliveries(b, 0, 2000, 0) })
	b.Run("rate=30/s", func(b *testing.B) { benchDeliveries(b, 30, 20*30, benchWebhooks) })
	b.Run("rate=65/s", func(b *testing.B) { benchDeliveries(b, 65, 20*65, benchWebhooks) })
	b.Run("rate=130/s", func(b *testing.B) { benchDeliveries(b, 130, 20*130, benchWebhooks) })
	b.Run("burst", func(b *testing.B) { benchDeliveries(b, 0, 2000, benchWebhooks) })
	b.Run("pending-retries", benchPendingRetries)
}

var benchWebhooks = func() int {
	if n, _ := strconv.Atoi(os.Getenv("HUB_BENCH_WEBHOOKS")); n > 0 {
		return n
	}
	return 10
}()

// timingReceiver records when each webhook-id first arrived.
type timingReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   map[string]time.Time
	dups  int
	total *counter
}

type counter struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (c *counter) add() {
	c.mu.Lock()
	c.n++
	if c.n == c.want {
		close(c.done)
	}
	c.mu.Unlock()
}

func newTimingReceiver(b *testing.B, total *counter, code int) *timingReceiver {
	rv := &timingReceiver{got: map[string]time.Time{}, total: total}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		rv.mu.Lock()
		_, dup := rv.got[id]
		if dup {
			rv.dups++
		} else {
			rv.got[id] = now
		}
		rv.mu.Unlock()
		w.WriteHeader(code)
		if !dup && rv.total != nil {
			rv.total.add()
		}
	}))
	b.Cleanup(rv.Close)
	return rv
}

func benchDeliveries(b *testing.B, rate, events, webhooks int) {
	for b.Loop() {
		runDeliveryLoad(b, rate, events, webhooks)
	}
}

func runDeliveryLoad(b *testing.B, rate, events, webhooks int) {
	s := newHubStack(b)
	want := events * webhooks
	total := &counter{want: want, done: make(chan struct{})}
	receivers := make([]*timingReceiver, webhooks)
	for i := range receivers {
		receivers[i] = newTimingReceiver(b, total, http.StatusNoContent)
		s.webhook(receivers[i].URL, []int{1}, 10000)
	}
	stop := s.runWorker()
	defer stop()

	stmts := countStatements(s.ctx, s.pool)
	cpu0 := takeCPU(b)
	start := time.Now()
	var committed map[uuid.UUID]time.Time
	if rate == 0 {
		committed = s.publish(events, 50)
	} else {
		committed = make(map[uuid.UUID]time.Time, events)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for range events {
			<-tick.C
			for id, at := range s.publish(1, 1) {
				committed[id] = at
			}
		}
		tick.Stop()
	}
	published := time.Since(start)
	if webhooks == 0 {
		s.waitFor("every event completed", 10*time.Minute, func() bool {
			var n int
			_ = s.pool.QueryRow(s.ctx, `SELECT count(*) FROM events WHERE dispatch_state = 'completed'`).Scan(&n)
			return n == events
		})
		elapsed := time.Since(start)
		cpu := takeCPU(b).sub(cpu0)
		b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
		cpu.report(b, events, "event")
		stmts.report(s.ctx, b, events, "event")
		b.Logf("%d events, no webhook: all completed after %v (%.0f events/s); CPU per event: %s",
			events, elapsed.Round(time.Millisecond), float64(events)/elapsed.Seconds(), cpu.per(events))
		return
	}
	select {
	case <-total.done:
	case <-time.After(5 * time.Minute):
		total.mu.Lock()
		b.Errorf("only %d of %d deliveries received", total.n, want)
		total.mu.Unlock()
		s.explain()
		b.FailNow()
	}

	// Delivery id -> event id, for the latency from the event's commit.
	rows, err := s.pool.Query(s.ctx, `SELECT id, event_id FROM deliveries`)
	if err != nil {
		b.Fatal(err)
	}
	eventOf := map[string]uuid.UUID{}
	for rows.Next() {
		var id, ev uuid.UUID
		if err := rows.Scan(&id, &ev); err != nil {
			b.Fatal(err)
		}
		eventOf[id.String()] = ev
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, want)
	var first, last time.Time
	dups := 0
	for _, rv := range receivers {
		rv.mu.Lock()
		dups += rv.dups
		for id, at := range rv.got {
			c, ok := committed[eventOf[id]]
			if !ok {
				b.Fatalf("receipt of unknown delivery %s", id)
			}
			lat = append(lat, max(at.Sub(c), 0))
			if at.After(last) {
				last = at
			}
			if first.IsZero() || c.Before(first) {
				first = c
			}
		}
		rv.mu.Unlock()
	}
	cpu := takeCPU(b).sub(cpu0)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	perSec := float64(want) / last.Sub(first).Seconds()
	cpu.report(b, want, "delivery")
	stmts.report(s.ctx, b, want, "delivery")
	b.ReportMetric(perSec, "deliveries/s")
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(dups), "duplicates")
	b.Logf("%d events (%d deliveries) published in %v, all received after %v: %.0f deliveries/s, p50 %v p99 %v max %v, "+
		"%d duplicates; CPU per delivery: %s", events, want, published.Round(time.Millisecond),
		last.Sub(first).Round(time.Millisecond), perSec, pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond),
		lat[len(lat)-1].Round(time.Millisecond), dups, cpu.per(want))
}

// benchPendingRetries parks 10,000 deliveries on their retry timers and
// measures what they cost in memory.
func benchPendingRetries(b *testing.B) {
	for b.Loop() {
		s := newHubStack(b)
		const events = 1000
		want := events * benchWebhooks
		firsts := &counter{want: want, done: make(chan struct{})}
		for range benchWebhooks {
			rv := newTimingReceiver(b, firsts, http.StatusInternalServerError)
			s.webhook(rv.URL, []int{3600}, 10000)
		}
		temporalPID := devServerPID(b)
		heapBefore := heapInUse()
		rssBefore := rssKiB(temporalPID)
		stop := s.runWorker()

		start := time.Now()
		for sent := 0; sent < events; sent += 50 {
			err := s.store.InTx(s.ctx, func(tx pgx.Tx) error {
				for range 50 {
					if _, err := schemas.Publish(s.ctx, tx, schemas.Event{Type: schemas.EventSessionCreated,
						Data: schemas.SessionEventData{SessionID: "s"}}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-firsts.done:
		case <-time.After(10 * time.Minute):
			b.Fatalf("first attempts: %d of %d", firsts.n, want)
		}
		// Wait until every event is complete (once its deliveries were
		// handed to their webhooks' loops).
		deadline := time.Now().Add(15 * time.Minute)
		for {
			var n int
			if err := s.pool.QueryRow(s.ctx, `SELECT count(*) FROM events WHERE dispatch_state = 'completed'`).
				Scan(&n); err != nil {
				b.Fatal(err)
			}
			if n == events {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d events completed", n, events)
			}
			time.Sleep(time.Second)
		}
		elapsed := time.Since(start)
		var retrying int
		if err := s.pool.QueryRow(s.ctx, `SELECT count(*) FROM deliveries WHERE state = 'retrying'`).
			Scan(&retrying); err != nil {
			b.Fatal(err)
		}
		if retrying != want {
			b.Fatalf("%d deliveries retrying, want %d", retrying, want)
		}
		heapCached := heapInUse()
		rssAfter := rssKiB(temporalPID)
		stop() // the worker's workflow cache goes with it
		heapStopped := heapInUse()
		b.ReportMetric(float64(want)/elapsed.Seconds(), "retries-handed-over/s")
		b.ReportMetric(float64(heapCached-heapBefore)/(1<<20), "worker-heap-MiB/10k")
		b.ReportMetric(float64(rssAfter-rssBefore)/1024, "temporal-rss-MiB/10k")
		b.Logf("%d deliveries waiting to retry after %v: worker heap +%.1f MiB with its workflow cache (+%.1f MiB stopped), "+
			"Temporal dev server RSS %.0f -> %.0f MiB (+%.1f MiB)", want, elapsed.Round(time.Second),
			float64(heapCached-heapBefore)/(1<<20), float64(heapStopped-heapBefore)/(1<<20),
			float64(rssBefore)/1024, float64(rssAfter)/1024, float64(rssAfter-rssBefore)/1024)
	}
}

// cpuTimes is CPU time used so far by this process, the Temporal dev server
// and PostgreSQL (the postmaster, its reaped children and the live ones).
type cpuTimes struct{ self, temporal, postgres time.Duration }

func takeCPU(b *testing.B) cpuTimes {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuTimes{self: self, temporal: procCPU(devServerPID(b), false), postgres: postgresCPU(b)}
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{self: c.self - o.self, temporal: c.temporal - o.temporal, postgres: c.postgres - o.postgres}
}

func (c cpuTimes) per(n int) string {
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return fmt.Sprintf("worker process %.0f µs, Temporal %.0f µs, PostgreSQL %.0f µs", us(c.self), us(c.temporal),
		us(c.postgres))
}

func (c cpuTimes) report(b *testing.B, n int, unit string) {
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(us(c.self), "worker-cpu-µs/"+unit)
	b.ReportMetric(us(c.temporal), "temporal-cpu-µs/"+unit)
	b.ReportMetric(us(c.postgres), "postgres-cpu-µs/"+unit)
}

// procCPU is a process's user+system time (with its reaped children's).
func procCPU(pid int, children bool) time.Duration {
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after ") ".
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ticks := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	t := ticks(11) + ticks(12) // utime, stime (fields 14, 15)
	if children {
		t += ticks(13) + ticks(14) // cutime, cstime
	}
	return time.Duration(t) * time.Second / 100 // USER_HZ
}

// postgresCPU sums the PostgreSQL server of DATABASE_URL's port.
func postgresCPU(b *testing.B) time.Duration {
	port := ""
	if i := strings.LastIndex(os.Getenv("DATABASE_URL"), "@"); i >= 0 {
		rest := os.Getenv("DATABASE_URL")[i+1:]
		if _, p, err := net.SplitHostPort(strings.SplitN(rest, "/", 2)[0]); err == nil {
			port = p
		}
	}
	matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	master := 0
	for _, m := range matches {
		raw, _ := os.ReadFile(m)
		args := strings.Split(string(raw), "\x00")
		if i := slices.Index(args, "-p"); i >= 0 && i+1 < len(args) && args[i+1] == port &&
			strings.HasSuffix(args[0], "postgres") {
			master, _ = strconv.Atoi(filepath.Base(filepath.Dir(m)))
		}
	}
	if master == 0 {
		return 0
	}
	total := procCPU(master, true)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		raw, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		if len(f) > 1 && f[1] == strconv.Itoa(master) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			total += procCPU(pid, false)
		}
	}
	return total
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// devServerPID finds the Temporal dev server listening on TEMPORAL_ADDRESS
// (0 when it is not a local process).
func devServerPID(b *testing.B) int {
	_, port, err := net.SplitHostPort(testenv.TemporalAddress(b))
	if err != nil {
		return 0
	}
	matches, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, m := range matches {
		raw, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if !slices.Contains(args, "start-dev") {
			continue
		}
		if i := slices.Index(args, "--port"); i >= 0 && i+1 < len(args) && args[i+1] == port {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(m)))
			return pid
		}
	}
	return 0
}

func rssKiB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
