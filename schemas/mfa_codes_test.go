package schemas_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// The store is given a salt and a hash and compares through match; these
// tests use the code itself as the "hash", which the store cannot tell.
func codeIs(code string) func(salt, hash []byte) bool {
	return func(salt, hash []byte) bool {
		return bytes.Equal(salt, []byte("salt")) && bytes.Equal(hash, []byte(code))
	}
}

func issueCode(t *testing.T, store *schemas.Store, methodID int64, code string, throttle schemas.CodeThrottle) schemas.MFACode {
	t.Helper()
	c, err := store.IssueMFACode(context.Background(), methodID, []byte("salt"), []byte(code), 10*time.Minute, throttle)
	require.NoError(t, err)
	return c
}

func codeMethod(t *testing.T, store *schemas.Store, username string) schemas.MFAMethod {
	t.Helper()
	u := mfaUser(t, store, username, "user")
	return createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFASMS, Phone: "+15550110"})
}

func countCodes(t *testing.T, store *schemas.Store, methodID int64) int {
	t.Helper()
	var n int
	require.NoError(t, store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM mfa_codes WHERE method_id = $1`,
		methodID).Scan(&n))
	return n
}

func TestMFACodeIssueAndCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	m := codeMethod(t, store, "mfa-code")

	c := issueCode(t, store, m.ID, "123456", schemas.CodeThrottle{})
	require.NotZero(t, c.ID)
	require.Equal(t, m.ID, c.MethodID)
	require.Zero(t, c.Attempts)
	require.Nil(t, c.ConsumedAt)
	require.Equal(t, 10*time.Minute, c.ExpiresAt.Sub(c.CreatedAt))

	ok, err := store.CheckMFACode(ctx, m.ID, 5, codeIs("654321"))
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = store.CheckMFACode(ctx, m.ID, 5, codeIs("123456"))
	require.NoError(t, err)
	require.True(t, ok)
	var attempts int
	var consumed *time.Time
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT attempts, consumed_at FROM mfa_codes WHERE id = $1`, c.ID).
		Scan(&attempts, &consumed))
	require.Equal(t, 2, attempts, "right and wrong tries both count")
	require.NotNil(t, consumed)

	// A code works once.
	_, err = store.CheckMFACode(ctx, m.ID, 5, codeIs("123456"))
	require.ErrorIs(t, err, schemas.ErrNoCode)

	// No code was ever sent for this method, or it does not exist.
	other := codeMethod(t, store, "mfa-code-none")
	_, err = store.CheckMFACode(ctx, other.ID, 5, codeIs("123456"))
	require.ErrorIs(t, err, schemas.ErrNoCode)
	_, err = store.IssueMFACode(ctx, other.ID+1000, []byte("salt"), []byte("1"), time.Minute, schemas.CodeThrottle{})
	require.ErrorIs(t, err, schemas.ErrNotFound)
}

func TestMFACodeAttemptsLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	m := codeMethod(t, store, "mfa-code-tries")
	issueCode(t, store, m.ID, "111111", schemas.CodeThrottle{})

	for range 5 {
		ok, err := store.CheckMFACode(ctx, m.ID, 5, codeIs("000000"))
		require.NoError(t, err)
		require.False(t, ok)
	}
	// The sixth try is refused even with the right code.
	_, err := store.CheckMFACode(ctx, m.ID, 5, codeIs("111111"))
	require.ErrorIs(t, err, schemas.ErrNoCode)
}

func TestMFACodeExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	m := codeMethod(t, store, "mfa-code-expiry")
	c := issueCode(t, store, m.ID, "222222", schemas.CodeThrottle{})

	_, err := store.Pool.Exec(ctx, `UPDATE mfa_codes SET expires_at = now() - interval '1 second' WHERE id = $1`, c.ID)
	require.NoError(t, err)
	_, err = store.CheckMFACode(ctx, m.ID, 5, codeIs("222222"))
	require.ErrorIs(t, err, schemas.ErrNoCode)
}

func TestMFACodeNewCodeReplacesOld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	m := codeMethod(t, store, "mfa-code-resend")
	old := issueCode(t, store, m.ID, "333333", schemas.CodeThrottle{})
	issueCode(t, store, m.ID, "444444", schemas.CodeThrottle{})

	var consumed *time.Time
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT consumed_at FROM mfa_codes WHERE id = $1`, old.ID).Scan(&consumed))
	require.NotNil(t, consumed, "the resent code invalidates the earlier one")
	ok, err := store.CheckMFACode(ctx, m.ID, 5, codeIs("333333"))
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = store.CheckMFACode(ctx, m.ID, 5, codeIs("444444"))
	require.NoError(t, err)
	require.True(t, ok)
}

func TestMFACodeThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}

	t.Run("MinInterval", func(t *testing.T) {
		m := codeMethod(t, store, "mfa-throttle-interval")
		throttle := schemas.CodeThrottle{MinInterval: time.Minute}
		first := issueCode(t, store, m.ID, "1", throttle)

		_, err := store.IssueMFACode(ctx, m.ID, []byte("salt"), []byte("2"), 10*time.Minute, throttle)
		require.ErrorIs(t, err, schemas.ErrThrottled)
		var te *schemas.ThrottledError
		require.True(t, errors.As(err, &te))
		require.Greater(t, te.RetryAfter, 50*time.Second)
		require.LessOrEqual(t, te.RetryAfter, time.Minute)
		require.Equal(t, 1, countCodes(t, store, m.ID), "a refused request stores nothing")
		ok, err := store.CheckMFACode(ctx, m.ID, 5, codeIs("1"))
		require.NoError(t, err)
		require.True(t, ok, "a refused request does not invalidate the live code")

		// 61 seconds later (the code is moved back rather than waited for).
		_, err = store.Pool.Exec(ctx, `UPDATE mfa_codes SET created_at = created_at - interval '61 seconds' WHERE id = $1`, first.ID)
		require.NoError(t, err)
		issueCode(t, store, m.ID, "3", throttle)
	})

	t.Run("MaxSendsInWindow", func(t *testing.T) {
		m := codeMethod(t, store, "mfa-throttle-window")
		throttle := schemas.CodeThrottle{MaxSends: 3, Window: time.Hour}
		// Three codes sent 50, 40 and 30 minutes ago.
		_, err := store.Pool.Exec(ctx, `INSERT INTO mfa_codes (method_id, code_hash, salt, created_at, expires_at)
			SELECT $1, 'x', 'salt', now() - m * interval '1 minute', now() - m * interval '1 minute' + interval '10 minutes'
			FROM unnest(ARRAY[50, 40, 30]) AS m`, m.ID)
		require.NoError(t, err)

		_, err = store.IssueMFACode(ctx, m.ID, []byte("salt"), []byte("4"), 10*time.Minute, throttle)
		var te *schemas.ThrottledError
		require.True(t, errors.As(err, &te), "%v", err)
		// The one from 50 minutes ago leaves the window in 10 minutes.
		require.InDelta(t, (10 * time.Minute).Seconds(), te.RetryAfter.Seconds(), 5)
		require.Equal(t, 3, countCodes(t, store, m.ID))

		_, err = store.Pool.Exec(ctx, `UPDATE mfa_codes SET created_at = now() - interval '61 minutes'
			WHERE method_id = $1 AND created_at < now() - interval '45 minutes'`, m.ID)
		require.NoError(t, err)
		issueCode(t, store, m.ID, "5", throttle)
		_, err = store.IssueMFACode(ctx, m.ID, []byte("salt"), []byte("6"), 10*time.Minute, throttle)
		require.True(t, errors.As(err, &te), "%v", err)
		// Now the one from 40 minutes ago is the third newest.
		require.InDelta(t, (20 * time.Minute).Seconds(), te.RetryAfter.Seconds(), 5)
	})

	t.Run("ConcurrentRequests", func(t *testing.T) {
		throttle := schemas.CodeThrottle{MinInterval: time.Minute, MaxSends: 5, Window: time.Hour}
		for round := range 10 {
			m := codeMethod(t, store, fmt.Sprintf("mfa-throttle-race-%d", round))
			const n = 4
			errs := make([]error, n)
			mfaRace(n, func(i int) {
				_, errs[i] = store.IssueMFACode(ctx, m.ID, []byte("salt"), []byte("7"), 10*time.Minute, throttle)
			})
			sent := 0
			for _, err := range errs {
				if err == nil {
					sent++
					continue
				}
				require.ErrorIs(t, err, schemas.ErrThrottled)
			}
			require.Equal(t, 1, sent, "round %d", round)
			require.Equal(t, 1, countCodes(t, store, m.ID))
		}
	})
}

func TestMFACodePrunesOldCodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	m := codeMethod(t, store, "mfa-code-prune")
	other := codeMethod(t, store, "mfa-code-prune-other")
	for _, id := range []int64{m.ID, other.ID} {
		_, err := store.Pool.Exec(ctx, `INSERT INTO mfa_codes (method_id, code_hash, salt, created_at, expires_at)
			VALUES ($1, 'x', 'salt', now() - interval '25 hours', now() - interval '24 hours'),
			       ($1, 'y', 'salt', now() - interval '23 hours', now() - interval '22 hours')`, id)
		require.NoError(t, err)
	}
	issueCode(t, store, m.ID, "8", schemas.CodeThrottle{MinInterval: time.Minute, MaxSends: 5, Window: time.Hour})
	require.Equal(t, 2, countCodes(t, store, m.ID), "the day-old code is pruned, the newer ones stay")
	require.Equal(t, 2, countCodes(t, store, other.ID), "other methods' codes are left alone")
}

// Two requests with the same right code at once: one logs in.
func TestMFACodeCheckRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	m := codeMethod(t, store, "mfa-code-race")
	for round := range 10 {
		issueCode(t, store, m.ID, "999999", schemas.CodeThrottle{})
		const n = 4
		oks := make([]bool, n)
		errs := make([]error, n)
		mfaRace(n, func(i int) { oks[i], errs[i] = store.CheckMFACode(ctx, m.ID, 5, codeIs("999999")) })
		wins := 0
		for i := range n {
			if errs[i] != nil {
				require.ErrorIs(t, errs[i], schemas.ErrNoCode)
				continue
			}
			if oks[i] {
				wins++
			}
		}
		require.Equal(t, 1, wins, "round %d", round)
	}
}
