package schemas

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// RateWindow places a request in a limit's windows, with httprate's
// sliding-window estimate: fixed windows of Length aligned to the UTC wall
// clock, of which the current one (from Start) counts in full and the
// previous one by Weight, the share of it that still lies within Length of
// the request. (httprate computes prev·(Length − elapsed)/Length; prev·Weight
// is the same up to float rounding.) Each replica places requests by its own
// clock, as httprate does: clocks apart by d can put a request in the
// neighbouring window within d of a boundary.
type RateWindow struct {
	Start  time.Time
	Length time.Duration
	Weight float64
}

// RateWindowAt is the window of a request at now.
func RateWindowAt(now time.Time, length time.Duration) RateWindow {
	start := now.UTC().Truncate(length)
	return RateWindow{Start: start, Length: length, Weight: 1 - float64(now.Sub(start))/float64(length)}
}

// Remaining is how many more requests limit allows once one more is counted
// on top of curr (this window) and prev (the previous one): limit −
// round(estimate) − 1, where estimate = prev·Weight + curr. A request fits
// when it is not negative, as in httprate: round(estimate) + 1 ≤ limit, which
// is estimate < limit − ½ (rateTakeSQL's test).
func (w RateWindow) Remaining(limit, curr, prev int) int {
	// The conversion rounds the product, so that no fused multiply-add makes
	// this differ from PostgreSQL's float8 arithmetic.
	estimate := float64(float64(prev)*w.Weight) + float64(curr)
	return limit - int(math.Round(estimate)) - 1
}

// RateTake is the outcome of a Take.
type RateTake struct {
	Allowed bool // the request fits and was counted
	Curr    int  // the key's count in the current window before this request
	Prev    int  // the key's count in the previous window
}

// RateCounter counts requests per key and window in PostgreSQL (the
// rate_limit_counters table): every API server replica on the same database
// shares the counts, so a client's limit holds however its requests are
// spread over the replicas.
//
// Take decides and counts a request in one statement (one round trip): it
// reads the previous window's count and adds one to the current window's
// only if the estimate stays under the limit, atomically under the row lock
// of the current window, so concurrent requests on any replica never admit
// more than the limit. A refused request adds nothing.
//
// Errors. Every statement is bounded by Timeout; errors are returned, never
// hidden: whether to fail open or closed is the caller's decision
// (server/ratelimit.go fails open for the API and closed for login).
//
// Cleanup. A row is read for two window lengths after its window began and is
// written with that expiry; after a take the counter deletes expired rows, at
// most once per CleanupEvery per replica and at most cleanupBatch rows at a
// time (the next take continues a longer backlog).
//
// RateCounter is also an httprate.LimitCounter (Get, then IncrementBy: two
// round trips, and another replica may admit between them), because the
// server hands it over as one; the server itself only calls Take.
type RateCounter struct {
	pool         *pgxpool.Pool
	timeout      time.Duration
	cleanupEvery time.Duration
	logger       *slog.Logger
	lastCleanup  atomic.Int64 // unix nanoseconds of the last cleanup started
}

// RateCounterOptions tune a RateCounter; the zero value is the defaults.
type RateCounterOptions struct {
	// Timeout bounds each database statement (default 250ms).
	Timeout time.Duration
	// CleanupEvery is how often a replica deletes expired windows (default
	// one minute).
	CleanupEvery time.Duration
	// Logger reports failed cleanups (default: discard).
	Logger *slog.Logger
}

// cleanupBatch bounds the rows one cleanup deletes, so the request that runs
// it is never held up by a large backlog.
const cleanupBatch = 5000

// NewRateCounter returns a counter over the rate_limit_counters table.
func NewRateCounter(pool *pgxpool.Pool, opts RateCounterOptions) *RateCounter {
	if opts.Timeout <= 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	if opts.CleanupEvery <= 0 {
		opts.CleanupEvery = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &RateCounter{pool: pool, timeout: opts.Timeout, cleanupEvery: opts.CleanupEvery, logger: opts.Logger}
}

// rateTakeSQL is Take's statement. $1 key, $2 current window start, $3
// previous window start, $4 expiry of the current window's row, $5 the
// previous window's weight, $6 the limit.
//
// prev reads the previous window's count. taken adds one to the current
// window's row, inserting it with 1 if it does not exist, but only while the
// estimate before the request is under limit − ½ (RateWindow.Remaining). ON
// CONFLICT locks the existing row and tests the guard against its latest
// count, so concurrent takes on any replica queue there and each sees the
// others' increments. A refused take adds nothing and reads the current count
// from the statement's snapshot, which may miss increments committed since it
// began (used for Retry-After only; that lookup runs only when nothing was
// taken).
const rateTakeSQL = `
WITH prev AS (
	SELECT coalesce(max(count), 0) AS n
	  FROM rate_limit_counters
	 WHERE key = $1 AND window_start = $3
), taken AS (
	INSERT INTO rate_limit_counters AS c (key, window_start, count, expires_at)
	SELECT $1, $2, 1, $4
	  FROM prev
	 WHERE prev.n * $5::float8 < $6::int8 - 0.5::float8
	    ON CONFLICT (key, window_start) DO UPDATE SET count = c.count + 1
	 WHERE (SELECT n FROM prev) * $5::float8 + c.count < $6::int8 - 0.5::float8
	RETURNING c.count - 1 AS curr
)
SELECT EXISTS (SELECT FROM taken),
       coalesce((SELECT curr FROM taken),
                (SELECT count FROM rate_limit_counters WHERE key = $1 AND window_start = $2),
                0),
       (SELECT n FROM prev)`

// Take counts one request for key in window w if it fits under limit, in
// one statement, and returns the counts it decided on.
func (c *RateCounter) Take(ctx context.Context, key string, w RateWindow, limit int) (RateTake, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var t RateTake
	err := c.pool.QueryRow(ctx, rateTakeSQL, key, w.Start, w.Start.Add(-w.Length),
		w.Start.Add(2*w.Length), w.Weight, limit).Scan(&t.Allowed, &t.Curr, &t.Prev)
	if err != nil {
		return RateTake{}, fmt.Errorf("rate limit counter: take: %w", err)
	}
	c.maybeCleanup()
	return t, nil
}

// Give takes back one request counted for key in window w (the login
// limits count an attempt before its outcome is known and give a successful
// one back). The count never goes below zero; a row already gone (expired)
// is left gone.
func (c *RateCounter) Give(ctx context.Context, key string, w RateWindow) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.pool.Exec(ctx, `UPDATE rate_limit_counters SET count = count - 1
		WHERE key = $1 AND window_start = $2 AND count > 0`, key, w.Start)
	if err != nil {
		return fmt.Errorf("rate limit counter: give back: %w", err)
	}
	return nil
}

// maybeCleanup deletes one batch of expired windows if this replica has not
// done so for CleanupEvery. Only one caller at a time wins the slot; a failed
// cleanup is logged and retried at the next interval, a full batch lets the
// next take continue at once.
func (c *RateCounter) maybeCleanup() {
	now := time.Now()
	last := c.lastCleanup.Load()
	if now.UnixNano()-last < int64(c.cleanupEvery) || !c.lastCleanup.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := c.deleteExpiredBatch(ctx, now)
	if err != nil {
		c.logger.Warn("rate limit counter: delete expired windows", "err", err)
		return
	}
	if n == cleanupBatch {
		c.lastCleanup.CompareAndSwap(now.UnixNano(), last)
	}
}

func (c *RateCounter) deleteExpiredBatch(ctx context.Context, now time.Time) (int64, error) {
	tag, err := c.pool.Exec(ctx, `
		DELETE FROM rate_limit_counters
		 WHERE (key, window_start) IN (
		       SELECT key, window_start FROM rate_limit_counters
		        WHERE expires_at < $1
		        LIMIT $2)`, now, cleanupBatch)
	if err != nil {
		return 0, fmt.Errorf("rate limit counter: delete expired: %w", err)
	}
	return tag.RowsAffected(), nil
}

// DeleteExpired deletes every expired window and returns how many rows it
// deleted. Takes already do so in small batches; this is for tests and
// maintenance jobs.
func (c *RateCounter) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := c.deleteExpiredBatch(ctx, time.Now())
		total += n
		if err != nil || n < cleanupBatch {
			return total, err
		}
	}
}
