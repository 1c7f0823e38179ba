package schemas_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/httprate"
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

func TestRateCounterGetIncrement(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	c.Config(100, time.Minute)

	cur := time.Now().UTC().Truncate(time.Minute)
	prev := cur.Add(-time.Minute)

	n, p, err := c.Get("k", cur, prev)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 0}, [2]int{n, p})

	require.NoError(t, c.Increment("k", prev))
	require.NoError(t, c.IncrementBy("k", prev, 4))
	require.NoError(t, c.Increment("k", cur))
	require.NoError(t, c.IncrementBy("k", cur, 2))
	require.NoError(t, c.Increment("other", cur))

	n, p, err = c.Get("k", cur, prev)
	require.NoError(t, err)
	require.Equal(t, [2]int{3, 5}, [2]int{n, p}, "current, previous")

	// A window two lengths back is not read.
	n, p, err = c.Get("k", cur.Add(time.Minute), cur)
	require.NoError(t, err)
	require.Equal(t, [2]int{0, 3}, [2]int{n, p})

	n, p, err = c.Get("other", cur, prev)
	require.NoError(t, err)
	require.Equal(t, [2]int{1, 0}, [2]int{n, p})
}

// Two counters on two pools (two replicas) share the counts, and concurrent
// increments are never lost.
func TestRateCounterSharedAndAtomic(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	// Eight clients on one key queue on its row lock: a generous timeout
	// for slow (-race, busy) machines.
	opts := schemas.RateCounterOptions{Timeout: 10 * time.Second}
	a := schemas.NewRateCounter(pool, opts)
	b := schemas.NewRateCounter(secondPool(t, pool), opts)
	a.Config(1000, time.Hour)
	b.Config(1000, time.Hour)
	cur := time.Now().UTC().Truncate(time.Hour)

	var wg sync.WaitGroup
	for i := range 8 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			for range 50 {
				if err := c.Increment("shared", cur); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, c := range []*schemas.RateCounter{a, b} {
		n, _, err := c.Get("shared", cur, cur.Add(-time.Hour))
		require.NoError(t, err)
		require.Equal(t, 400, n)
	}
}

// Rows live for twice the longest configured window; expired ones are
// deleted by DeleteExpired and, opportunistically, by increments.
func TestRateCounterCleanup(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	a := schemas.NewRateCounter(pool, schemas.RateCounterOptions{CleanupEvery: time.Hour})
	a.Config(100, time.Minute)
	// Windows need not be aligned for the counter; an unaligned "now"
	// keeps a minute boundary from moving an expiry under the test.
	cur := time.Now().UTC()

	// The first increment of a fresh counter runs a cleanup; the next ones
	// do not for an hour.
	require.NoError(t, a.Increment("live", cur))
	require.NoError(t, a.Increment("live", cur.Add(-time.Minute))) // previous window: still read
	require.NoError(t, a.Increment("old", cur.Add(-3*time.Minute)))
	require.NoError(t, a.Increment("older", cur.Add(-time.Hour)))
	require.Equal(t, 4, countRows(t, pool))

	n, err := a.DeleteExpired(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Equal(t, 2, countRows(t, pool))

	// Another replica's first increment cleans up on its own.
	require.NoError(t, a.Increment("old", cur.Add(-5*time.Minute)))
	require.Equal(t, 3, countRows(t, pool))
	b := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	b.Config(100, time.Minute)
	require.NoError(t, b.Increment("live", cur))
	require.Equal(t, 2, countRows(t, pool))

	// A longer window configured on the same counter keeps rows longer.
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{CleanupEvery: time.Hour})
	c.Config(100, time.Minute)
	c.Config(10, 15*time.Minute)
	require.NoError(t, c.Increment("login", cur.Add(-20*time.Minute))) // within 2×15 min
	n, err = c.DeleteExpired(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 0, n)
}

// The counter drives httprate's own limiter: the request past the limit is
// refused, whichever replica serves it.
func TestRateCounterWithHTTPRate(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	replicas := []http.Handler{
		httprate.LimitBy(3, time.Hour, httprate.Key("k"),
			httprate.WithLimitCounter(schemas.NewRateCounter(pool, schemas.RateCounterOptions{})))(ok),
		httprate.LimitBy(3, time.Hour, httprate.Key("k"),
			httprate.WithLimitCounter(schemas.NewRateCounter(secondPool(t, pool), schemas.RateCounterOptions{})))(ok),
	}
	for i, want := range []int{200, 200, 200, 429, 429} {
		rec := httptest.NewRecorder()
		replicas[i%2].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		require.Equal(t, want, rec.Code, "request %d", i+1)
	}
}

// A database error is returned (within the timeout), never hidden.
func TestRateCounterErrors(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	closed := secondPool(t, pool)
	closed.Close()
	c := schemas.NewRateCounter(closed, schemas.RateCounterOptions{Timeout: 100 * time.Millisecond})
	c.Config(1, time.Minute)
	now := time.Now().UTC().Truncate(time.Minute)
	_, _, err := c.Get("k", now, now.Add(-time.Minute))
	require.Error(t, err)
	require.Error(t, c.Increment("k", now))
}

// BenchmarkRateCounter measures each of the counter's two statements (an
// admitted request costs one of each) over 1000 keys.
func BenchmarkRateCounter(b *testing.B) {
	pool := testenv.DB(b)
	c := schemas.NewRateCounter(pool, schemas.RateCounterOptions{})
	c.Config(100, time.Minute)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	cur := time.Now().UTC().Truncate(time.Minute)
	b.Run("IncrementBy", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := c.IncrementBy(keys[i%len(keys)], cur, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := c.Get(keys[i%len(keys)], cur, cur.Add(-time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
