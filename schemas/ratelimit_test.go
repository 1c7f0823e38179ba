package schemas_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// secondPool opens another pool on pool's database: a second replica.
func secondPool(t *testing.T, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.NewWithConfig(context.Background(), pool.Config())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func countRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM rate_limit_counters`).Scan(&n))
	return n
}

func TestRateWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 45, 0, time.FixedZone("CET", 3600))
	w := schemas.RateWindowAt(now, time.Minute)
	require.True(t, w.Start.Equal(time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)))
	require.Equal(t, time.UTC, w.Start.Location())
	require.Equal(t, time.Minute, w.Length)
	require.InDelta(t, 0.25, w.Weight, 1e-12)

	// 0.25·prev + curr before the request; it fits while round(that) + 1 <= 10.
	require.Equal(t, 9, w.Remaining(10, 0, 0))
	require.Equal(t, 0, w.Remaining(10, 9, 0))
	require.Equal(t, -1, w.Remaining(10, 10, 0))
	require.Equal(t, 0, w.Remaining(10, 8, 5))  // 9.25 rounds to 9
	require.Equal(t, -1, w.Remaining(10, 8, 6)) // 9.5 rounds to 10
	require.Equal(t, 1, w.Remaining(10, 0, 33)) // 8.25
}

// take is one Take at now in a window of length.
func take(t *testing.T, c *schemas.RateCounter, key string, now time.Time, length time.Duration, limit int) schemas.RateTake {
	t.Helper()
	r, err := c.Take(context.Background(), key, schemas.RateWindowAt(now, length), limit)
	require.NoError(t, err)
	return r
}

// Take admits and counts while the sliding-window estimate fits, and refuses
// without counting; the previous window counts by the share of it still
// within one window length.
func TestRateCounterTake(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	// A clock in the future: the rows must outlive the cleanup that runs
	// after the first take (by the real clock).
	start := time.Date(2100, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }

	for i := range 10 {
		require.Equal(t, schemas.RateTake{Allowed: true, Curr: i}, take(t, c, "k", at(10*time.Second), time.Minute, 10))
	}
	require.Equal(t, schemas.RateTake{Curr: 10}, take(t, c, "k", at(20*time.Second), time.Minute, 10))
	require.Equal(t, schemas.RateTake{Curr: 10}, take(t, c, "k", at(59*time.Second), time.Minute, 10), "refusals are not counted")
	require.Equal(t, schemas.RateTake{Allowed: true}, take(t, c, "other", at(59*time.Second), time.Minute, 10))

	// Next window, 2 s in: 10·(58/60) rounds to 10, full; the current window
	// has no row yet and gets none.
	require.Equal(t, schemas.RateTake{Prev: 10}, take(t, c, "k", at(62*time.Second), time.Minute, 10))
	var rows int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM rate_limit_counters WHERE key = 'k'`).Scan(&rows))
	require.Equal(t, 1, rows)
	// 6 s in: 9 + 0 fits, 9 + 1 does not.
	require.Equal(t, schemas.RateTake{Allowed: true, Prev: 10}, take(t, c, "k", at(66*time.Second), time.Minute, 10))
	require.Equal(t, schemas.RateTake{Curr: 1, Prev: 10}, take(t, c, "k", at(66*time.Second), time.Minute, 10))
	// Halfway: 5 + 1 up to 5 + 4 fit, 5 + 5 does not.
	for i := 1; i <= 4; i++ {
		require.Equal(t, schemas.RateTake{Allowed: true, Curr: i, Prev: 10}, take(t, c, "k", at(90*time.Second), time.Minute, 10))
	}
	require.Equal(t, schemas.RateTake{Curr: 5, Prev: 10}, take(t, c, "k", at(90*time.Second), time.Minute, 10))

	// Two windows on, the old counts no longer matter.
	require.Equal(t, schemas.RateTake{Allowed: true}, take(t, c, "k", at(3*time.Minute), time.Minute, 10))
	// The limit is the caller's, per request.
	require.Equal(t, schemas.RateTake{Allowed: true, Curr: 1}, take(t, c, "k", at(3*time.Minute), time.Minute, 2))
	require.Equal(t, schemas.RateTake{Curr: 2}, take(t, c, "k", at(3*time.Minute), time.Minute, 2))
}

// Concurrent takes on one key from two replicas admit exactly the limit:
// each decides on the count left by the others.
// Give takes one back from the window it was taken in, never below zero,
// and a full key admits again.
func TestRateCounterGive(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{Timeout: 10 * time.Second})
	start := time.Date(2100, 1, 1, 12, 0, 0, 0, time.UTC) // rows outlive the real clock's cleanup
	w := schemas.RateWindowAt(start.Add(10*time.Second), time.Minute)
	for i := range 3 {
		require.Equal(t, schemas.RateTake{Allowed: true, Curr: i}, take(t, c, "g", w.Start.Add(10*time.Second), time.Minute, 3))
	}
	require.False(t, take(t, c, "g", w.Start.Add(10*time.Second), time.Minute, 3).Allowed)
	require.NoError(t, c.Give(context.Background(), "g", w))
	require.Equal(t, schemas.RateTake{Allowed: true, Curr: 2}, take(t, c, "g", w.Start.Add(20*time.Second), time.Minute, 3))
	for range 5 {
		require.NoError(t, c.Give(context.Background(), "g", w))
	}
	require.Equal(t, schemas.RateTake{Allowed: true}, take(t, c, "g", w.Start.Add(30*time.Second), time.Minute, 3), "not below zero")
	require.NoError(t, c.Give(context.Background(), "absent", w), "no row: nothing to give back")
}

func TestRateCounterTakeExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	// Sixteen clients on one key queue on its row lock: a generous timeout
	// for slow (-race, busy) machines.
	opts := schemas.RateCounterOptions{Timeout: 10 * time.Second}
	replicas := []*schemas.RateCounter{
		schemas.NewRateCounter(pool, opts),
		schemas.NewRateCounter(secondPool(t, pool), opts),
	}
	w := schemas.RateWindowAt(time.Date(2100, 1, 1, 12, 0, 30, 0, time.UTC), time.Minute)
	const limit = 100
	var (
		mu      sync.Mutex
		counted = map[int]int{} // Curr of each admitted take
		refused int
		wg      sync.WaitGroup
	)
	for i := range 16 {
		c := replicas[i%2]
		wg.Go(func() {
			for range 20 {
				r, err := c.Take(context.Background(), "shared", w, limit)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if r.Allowed {
					counted[r.Curr]++
				} else {
					refused++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, counted, limit, "admitted")
	for n := range limit {
		require.Equal(t, 1, counted[n], "admitted on a count of %d", n)
	}
	require.Equal(t, 16*20-limit, refused)
}

func TestRateCounterCleanup(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	a := schemas.NewRateCounter(pool, schemas.RateCounterOptions{CleanupEvery: time.Hour})
	// A window that starts now: no expiry moves under the test.
	cur := time.Now().UTC()
	in := func(start time.Time, length time.Duration) schemas.RateWindow {
		return schemas.RateWindow{Start: start, Length: length, Weight: 1}
	}
	takeIn := func(c *schemas.RateCounter, key string, w schemas.RateWindow) {
		t.Helper()
		r, err := c.Take(context.Background(), key, w, 100)
		require.NoError(t, err)
		require.True(t, r.Allowed)
	}

	// The first take of a fresh counter runs a cleanup; the next ones do
	// not for an hour.
	takeIn(a, "live", in(cur, time.Minute))
	takeIn(a, "live", in(cur.Add(-time.Minute), time.Minute)) // previous window: still read
	takeIn(a, "old", in(cur.Add(-3*time.Minute), time.Minute))
	takeIn(a, "older", in(cur.Add(-time.Hour), time.Minute))
	require.Equal(t, 4, countRows(t, pool))

	n, err := a.DeleteExpired(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Equal(t, 2, countRows(t, pool))

	// Another replica's first take cleans up on its own.
	takeIn(a, "old", in(cur.Add(-5*time.Minute), time.Minute))
	require.Equal(t, 3, countRows(t, pool))
	b := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	takeIn(b, "live", in(cur, time.Minute))
	require.Equal(t, 2, countRows(t, pool))

	// A longer window keeps its rows longer: a login window 20 minutes ago
	// is within 2×15 minutes.
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{CleanupEvery: time.Hour})
	takeIn(c, "login", in(cur.Add(-20*time.Minute), 15*time.Minute))
	n, err = c.DeleteExpired(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 0, n)
}

// A database error is returned (within the timeout), never hidden.
func TestRateCounterErrors(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	closed := secondPool(t, pool)
	closed.Close()
	c := schemas.NewRateCounter(closed, schemas.RateCounterOptions{Timeout: 100 * time.Millisecond})
	_, err := c.Take(context.Background(), "k", schemas.RateWindowAt(time.Now(), time.Minute), 1)
	require.Error(t, err)
}

// BenchmarkRateCounter measures Take, what one request costs, over 1000 keys.
func BenchmarkRateCounter(b *testing.B) {
	pool := testenv.DB(b)
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	for i := 0; b.Loop(); i++ {
		r, err := c.Take(context.Background(), keys[i%len(keys)], schemas.RateWindowAt(time.Now(), time.Minute), 1<<30)
		if err != nil || !r.Allowed {
			b.Fatal(r, err)
		}
	}
}
