package schemas

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-chi/httprate"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RateCounter is httprate's LimitCounter over PostgreSQL (the
// rate_limit_counters table): every API server replica on the same database
// shares the counts, so a client's limit holds however its requests are
// spread over the replicas.
//
// Round trips. httprate v0.16.1 (RateLimiter.OnLimit) calls Get for the
// current and the previous window, decides, and calls IncrementBy only for a
// request it admits. Get reads both windows in one statement and IncrementBy
// is one upsert, so an admitted request costs two round trips and a rejected
// one costs one. The interface leaves no honest way to fold the two: Get
// carries neither the amount nor the request's limit, and IncrementBy returns
// no count, so a combined "increment and return" would have to be done in Get
// and would count rejected requests too, which keeps a client that retries
// past its limit locked out long after its Retry-After, and makes Status
// (also a Get) count as a request.
//
// Consistency. The upsert is atomic, so no increment is ever lost. Between a
// replica's Get and its IncrementBy another replica may admit a request for
// the same key (inside one replica httprate's mutex serialises the pair), so
// under concurrent load on several replicas one key can go over its limit by
// at most one request per replica that has one in flight for it.
//
// Errors. The interface carries no context, so every statement is bounded by
// Timeout; errors are returned, never hidden: whether to fail open or closed
// is the caller's decision (server/ratelimit.go fails open for the API and
// closed for login).
//
// Cleanup. A row can be read for two window lengths after its window began;
// it is written with that expiry, and after an increment the counter deletes
// expired rows, at most once per CleanupEvery per replica and at most
// cleanupBatch rows at a time (the next increment continues a longer backlog).
type RateCounter struct {
	pool         *pgxpool.Pool
	timeout      time.Duration
	cleanupEvery time.Duration
	logger       *slog.Logger

	// longest is the longest window a limiter has configured on this
	// counter: several limiters (API, login) with different windows may
	// share it, and IncrementBy is not told the window length, so every row
	// is kept for twice the longest one.
	longest     atomic.Int64
	lastCleanup atomic.Int64 // unix nanoseconds of the last cleanup started
}

var _ httprate.LimitCounter = (*RateCounter)(nil)

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

// defaultRetentionWindow is the window length assumed before any limiter has
// called Config (httprate always does; this only guards direct use).
const defaultRetentionWindow = time.Hour

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

// Config records the limiter's window length (httprate calls it once per
// limiter); the request limit is not needed here.
func (c *RateCounter) Config(_ int, windowLength time.Duration) {
	for {
		cur := c.longest.Load()
		if int64(windowLength) <= cur || c.longest.CompareAndSwap(cur, int64(windowLength)) {
			return
		}
	}
}

func (c *RateCounter) retention() time.Duration {
	if w := time.Duration(c.longest.Load()); w > 0 {
		return 2 * w
	}
	return 2 * defaultRetentionWindow
}

// Increment adds one request to key's count in the window starting at
// currentWindow.
func (c *RateCounter) Increment(key string, currentWindow time.Time) error {
	return c.IncrementBy(key, currentWindow, 1)
}

// IncrementBy adds amount requests to key's count in the window starting at
// currentWindow, in one upsert; now and then it also deletes expired windows.
func (c *RateCounter) IncrementBy(key string, currentWindow time.Time, amount int) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	_, err := c.pool.Exec(ctx, `
		INSERT INTO rate_limit_counters AS c (key, window_start, count, expires_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (key, window_start) DO UPDATE
		   SET count = c.count + EXCLUDED.count,
		       expires_at = GREATEST(c.expires_at, EXCLUDED.expires_at)`,
		key, currentWindow, int64(amount), currentWindow.Add(c.retention()))
	if err != nil {
		return fmt.Errorf("rate limit counter: increment: %w", err)
	}
	c.maybeCleanup()
	return nil
}

// Get returns key's counts in the current and the previous window, in one
// statement.
func (c *RateCounter) Get(key string, currentWindow, previousWindow time.Time) (int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var curr, prev int64
	err := c.pool.QueryRow(ctx, `
		SELECT coalesce(sum(count) FILTER (WHERE window_start = $2), 0),
		       coalesce(sum(count) FILTER (WHERE window_start = $3), 0)
		  FROM rate_limit_counters
		 WHERE key = $1 AND window_start IN ($2, $3)`,
		key, currentWindow, previousWindow).Scan(&curr, &prev)
	if err != nil {
		return 0, 0, fmt.Errorf("rate limit counter: get: %w", err)
	}
	return int(curr), int(prev), nil
}

// maybeCleanup deletes one batch of expired windows if this replica has not
// done so for CleanupEvery. Only one caller at a time wins the slot; a failed
// cleanup is logged and retried at the next interval, a full batch lets the
// next increment continue at once.
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
// deleted. Increments already call it in small batches; this is for tests
// and maintenance jobs.
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
