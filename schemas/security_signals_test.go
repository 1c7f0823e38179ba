package schemas_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// The window slides: occurrences older than the window are not counted,
// others of the subject in it are, whatever bucket boundary lies between.
func TestSignalCountSlidingWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	const kind, subject = "login_failure_account", "alice"

	// Earlier occurrences: 9½ and 10½ minutes ago, 23 h and 25 h ago.
	_, err := pool.Exec(ctx, `INSERT INTO security_signals (kind, subject, occurred_at) VALUES
		($1, $2, now() - interval '9 minutes 30 seconds'),
		($1, $2, now() - interval '10 minutes 30 seconds'),
		($1, $2, now() - interval '23 hours'),
		($1, $2, now() - interval '25 hours'),
		($1, 'bob', now() - interval '1 minute'),
		('admin_refusal', $2, now() - interval '1 minute')`, kind, subject)
	require.NoError(t, err)

	n, err := store.CountSignal(ctx, kind, subject, 10*time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, n, "this one and the one 9½ minutes ago")
	n, err = store.CountSignal(ctx, kind, subject, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, 5, n, "two now, 9½ min, 10½ min, 23 h; the 25 h one was pruned")

	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM security_signals
		WHERE kind = $1 AND subject = $2 AND occurred_at < now() - interval '24 hours'`, kind, subject).Scan(&left))
	require.Zero(t, left, "rows past retention are pruned")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM security_signals`).Scan(&left))
	require.Equal(t, 7, left, "5 of alice's, bob's, the other kind's")

	n, err = store.CountSignal(ctx, kind, "bob", 10*time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, n, "subjects count apart")

	for _, w := range []time.Duration{0, -time.Minute, 25 * time.Hour} {
		_, err = store.CountSignal(ctx, kind, subject, w)
		require.Error(t, err, "window %s", w)
	}
}

// Concurrent occurrences all land: whatever each call saw, the next one
// counts them all.
func TestSignalCountConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := store.CountSignal(ctx, "login_failure_address", "192.0.2.1", time.Minute)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, err := store.CountSignal(ctx, "login_failure_address", "192.0.2.1", time.Minute)
	require.NoError(t, err)
	require.Equal(t, 21, n)
}

func TestSignalSeenClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	alice := alertTestUser(t, store, "seen-alice")
	bob := alertTestUser(t, store, "seen-bob")

	seen := func(u schemas.User, kind, value string) [2]bool {
		t.Helper()
		first, isNew, err := store.SeenClient(ctx, u.ID, kind, value)
		require.NoError(t, err)
		return [2]bool{first, isNew}
	}
	require.Equal(t, [2]bool{true, true}, seen(alice, schemas.KnownClientIP, "192.0.2.1"), "first ever")
	require.Equal(t, [2]bool{false, false}, seen(alice, schemas.KnownClientIP, "192.0.2.1"), "known")
	require.Equal(t, [2]bool{false, true}, seen(alice, schemas.KnownClientIP, "2001:db8::/64"), "new")
	require.Equal(t, [2]bool{true, true}, seen(alice, schemas.KnownClientAgent, "ab12"), "kinds apart")
	require.Equal(t, [2]bool{true, true}, seen(bob, schemas.KnownClientIP, "192.0.2.1"), "users apart")

	var lastSeen, firstSeen time.Time
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT first_seen, last_seen FROM user_known_clients
		WHERE user_id = $1 AND kind = 'ip' AND value = '192.0.2.1'`, alice.ID).Scan(&firstSeen, &lastSeen))
	require.False(t, lastSeen.Before(firstSeen))

	_, _, err := store.SeenClient(ctx, alice.ID, "cookie", "x")
	require.Error(t, err)
	_, _, err = store.SeenClient(ctx, alice.ID, schemas.KnownClientIP, "")
	require.Error(t, err)
}

// The global prune deletes every occurrence past retention, whatever its
// subject, in batches of at most the limit, and keeps the recent ones.
func TestPruneSignalsDeletesOldRowsOfAnySubject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}

	// 25 old rows of subjects never seen again, and recent rows (one just
	// inside retention) of subjects that may still count.
	_, err := pool.Exec(ctx, `INSERT INTO security_signals (kind, subject, occurred_at)
		SELECT 'login_failure_account', 'sprayed-' || i, now() - interval '25 hours' - i * interval '1 minute'
		FROM generate_series(1, 25) AS i`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO security_signals (kind, subject, occurred_at) VALUES
		('login_failure_account', 'alice', now() - interval '23 hours 59 minutes'),
		('login_failure_address', '203.0.113.9', now() - interval '1 minute'),
		('admin_refusal', 'sprayed-1', now())`)
	require.NoError(t, err)

	var batches []int
	for {
		n, err := store.PruneSignals(ctx, 10)
		require.NoError(t, err)
		batches = append(batches, n)
		if n < 10 {
			break
		}
	}
	require.Equal(t, []int{10, 10, 5}, batches, "bounded batches until a short one")

	rows, err := pool.Query(ctx, `SELECT subject FROM security_signals ORDER BY subject`)
	require.NoError(t, err)
	var left []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		left = append(left, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"203.0.113.9", "alice", "sprayed-1"}, left, "recent rows stay")

	n, err := store.PruneSignals(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to prune")
	for _, limit := range []int{0, -1, schemas.MaxSignalPruneBatch + 1} {
		_, err := store.PruneSignals(ctx, limit)
		require.Error(t, err, "limit %d", limit)
	}
}
