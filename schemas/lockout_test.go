package schemas_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func dbNow(t *testing.T, store *schemas.Store) time.Time {
	t.Helper()
	var now time.Time
	require.NoError(t, store.Pool.QueryRow(context.Background(), `SELECT now()`).Scan(&now))
	return now
}

func failLogins(t *testing.T, store *schemas.Store, id uuid.UUID, n int) (u schemas.User, lockedNow bool) {
	t.Helper()
	for range n {
		var err error
		u, lockedNow, err = store.RecordLoginFailure(context.Background(), id)
		require.NoError(t, err)
	}
	return u, lockedNow
}

func TestLockoutAtThreshold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "lockout", "user")
	require.Equal(t, 10, schemas.LockoutThreshold)

	for i := 1; i <= 9; i++ {
		got, lockedNow := failLogins(t, store, u.ID, 1)
		require.False(t, lockedNow)
		require.Equal(t, i, got.FailedLogins)
		require.Nil(t, got.LockedUntil)
	}
	before := dbNow(t, store)
	got, lockedNow := failLogins(t, store, u.ID, 1)
	require.True(t, lockedNow, "the 10th failure locks")
	require.Zero(t, got.FailedLogins)
	require.NotNil(t, got.LockedUntil)
	require.WithinDuration(t, before.Add(30*time.Minute), *got.LockedUntil, 5*time.Second)
	require.True(t, got.Locked(before.Add(29*time.Minute)))
	require.False(t, got.Locked(before.Add(31*time.Minute)))
	lockedUntil := *got.LockedUntil

	// Failures while locked neither extend the lock nor count.
	got, lockedNow = failLogins(t, store, u.ID, 15)
	require.False(t, lockedNow)
	require.Zero(t, got.FailedLogins)
	require.Equal(t, lockedUntil, *got.LockedUntil)
	stored, err := store.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, lockedUntil, *stored.LockedUntil)

	// Once the lock has run out (moved into the past rather than waited
	// for), failures count again from zero.
	_, err = store.Pool.Exec(ctx, `UPDATE users SET locked_until = now() - interval '1 second' WHERE id = $1`, u.ID)
	require.NoError(t, err)
	got, lockedNow = failLogins(t, store, u.ID, 1)
	require.False(t, lockedNow)
	require.Equal(t, 1, got.FailedLogins)
	require.False(t, got.Locked(time.Now()))
	got, lockedNow = failLogins(t, store, u.ID, 9)
	require.True(t, lockedNow, "ten more failures lock again")
	require.True(t, got.LockedUntil.After(lockedUntil))

	_, _, err = store.RecordLoginFailure(ctx, uuid.New())
	require.ErrorIs(t, err, schemas.ErrNotFound)
}

func TestLockoutResetOnSuccess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "lockout-reset", "user")

	failLogins(t, store, u.ID, 9)
	require.NoError(t, store.ResetLoginFailures(ctx, u.ID))
	got, err := store.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Zero(t, got.FailedLogins)
	// Failures must be consecutive: nine more do not lock.
	got, lockedNow := failLogins(t, store, u.ID, 9)
	require.False(t, lockedNow)
	require.Equal(t, 9, got.FailedLogins)
	require.Nil(t, got.LockedUntil)
	require.NoError(t, store.ResetLoginFailures(ctx, uuid.New()))
}

// Failures arriving at once (several replicas, a scripted attack) count
// exactly: the 10th locks, once.
func TestLockoutConcurrentFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "lockout-race", "user")

	const n = schemas.LockoutThreshold
	locks := make([]bool, n)
	errs := make([]error, n)
	mfaRace(n, func(i int) { _, locks[i], errs[i] = store.RecordLoginFailure(ctx, u.ID) })
	count := 0
	for i := range n {
		require.NoError(t, errs[i])
		if locks[i] {
			count++
		}
	}
	require.Equal(t, 1, count)
	got, err := store.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.True(t, got.Locked(time.Now()))
	lockedUntil := *got.LockedUntil

	mfaRace(n, func(i int) { _, locks[i], errs[i] = store.RecordLoginFailure(ctx, u.ID) })
	for i := range n {
		require.NoError(t, errs[i])
		require.False(t, locks[i])
	}
	got, err = store.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, lockedUntil, *got.LockedUntil)
}

func TestUnlockUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "lockout-unlock", "user")
	got, lockedNow := failLogins(t, store, u.ID, schemas.LockoutThreshold+2)
	require.False(t, lockedNow)
	require.True(t, got.Locked(time.Now()))

	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.UnlockUser(ctx, tx, u.ID) }))
	got, err := store.GetUser(ctx, u.ID)
	require.NoError(t, err)
	require.Nil(t, got.LockedUntil)
	require.Zero(t, got.FailedLogins)
	require.False(t, got.Locked(time.Now()))

	err = store.InTx(ctx, func(tx pgx.Tx) error { return schemas.UnlockUser(ctx, tx, uuid.New()) })
	require.ErrorIs(t, err, schemas.ErrNotFound)
}
