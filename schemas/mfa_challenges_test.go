package schemas_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func TestMFAChallengeLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "challenge-user", "user")

	c, err := store.CreateMFAChallenge(ctx, u.ID, tokenHash("tok-1"), netip.MustParseAddr("::ffff:203.0.113.9"), 5*time.Minute)
	require.NoError(t, err)
	require.NotZero(t, c.ID)
	require.Equal(t, u.ID, c.UserID)
	require.Equal(t, netip.MustParseAddr("203.0.113.9"), c.ClientIP, "an IPv4-mapped address is stored as IPv4")
	require.Equal(t, 5*time.Minute, c.ExpiresAt.Sub(c.CreatedAt))

	got, err := store.GetMFAChallenge(ctx, tokenHash("tok-1"), 5)
	require.NoError(t, err)
	require.Equal(t, c, got)
	_, err = store.GetMFAChallenge(ctx, tokenHash("tok-2"), 5)
	require.ErrorIs(t, err, schemas.ErrNotFound)

	for want := 1; want <= 4; want++ {
		n, err := store.FailMFAChallenge(ctx, c.ID)
		require.NoError(t, err)
		require.Equal(t, want, n)
	}
	got, err = store.GetMFAChallenge(ctx, tokenHash("tok-1"), 5)
	require.NoError(t, err)
	require.Equal(t, 4, got.Attempts)

	ok, err := store.ConsumeMFAChallenge(ctx, c.ID)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = store.ConsumeMFAChallenge(ctx, c.ID)
	require.NoError(t, err)
	require.False(t, ok, "a challenge completes one login")
	_, err = store.GetMFAChallenge(ctx, tokenHash("tok-1"), 5)
	require.ErrorIs(t, err, schemas.ErrNotFound, "a used token is gone")

	_, err = store.FailMFAChallenge(ctx, c.ID+1000)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	_, err = store.CreateMFAChallenge(ctx, uuid.New(), tokenHash("tok-3"), netip.Addr{}, time.Minute)
	require.ErrorIs(t, err, schemas.ErrNotFound)
}

func TestMFAChallengeClientIP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "challenge-ip", "user")
	for i, ip := range []netip.Addr{netip.MustParseAddr("2001:db8::42"), netip.MustParseAddr("10.0.0.1"), {}} {
		token := tokenHash(fmt.Sprintf("ip-%d", i))
		_, err := store.CreateMFAChallenge(ctx, u.ID, token, ip, time.Minute)
		require.NoError(t, err)
		got, err := store.GetMFAChallenge(ctx, token, 5)
		require.NoError(t, err)
		require.Equal(t, ip, got.ClientIP)
	}
}

func TestMFAChallengeTooManyAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "challenge-tries", "user")
	c, err := store.CreateMFAChallenge(ctx, u.ID, tokenHash("tries"), netip.Addr{}, 5*time.Minute)
	require.NoError(t, err)
	for range 5 {
		_, err := store.FailMFAChallenge(ctx, c.ID)
		require.NoError(t, err)
	}
	_, err = store.GetMFAChallenge(ctx, tokenHash("tries"), 5)
	require.ErrorIs(t, err, schemas.ErrNotFound, "five wrong codes end the challenge")
	_, err = store.GetMFAChallenge(ctx, tokenHash("tries"), 6)
	require.NoError(t, err)
}

func TestMFAChallengeExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "challenge-expiry", "user")
	c, err := store.CreateMFAChallenge(ctx, u.ID, tokenHash("late"), netip.Addr{}, 5*time.Minute)
	require.NoError(t, err)
	_, err = store.Pool.Exec(ctx, `UPDATE mfa_challenges SET expires_at = now() - interval '1 second' WHERE id = $1`, c.ID)
	require.NoError(t, err)

	_, err = store.GetMFAChallenge(ctx, tokenHash("late"), 5)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	ok, err := store.ConsumeMFAChallenge(ctx, c.ID)
	require.NoError(t, err)
	require.False(t, ok, "an expired challenge cannot complete a login")
}

func TestMFAChallengePrunesExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "challenge-prune", "user")
	_, err := store.Pool.Exec(ctx, `INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at)
		VALUES ('old', $1, now() - interval '2 days', now() - interval '2 days' + interval '5 minutes'),
		       ('recent', $1, now() - interval '1 hour', now() - interval '55 minutes')`, u.ID)
	require.NoError(t, err)

	_, err = store.CreateMFAChallenge(ctx, u.ID, tokenHash("new"), netip.Addr{}, 5*time.Minute)
	require.NoError(t, err)
	var tokens []string
	rows, err := store.Pool.Query(ctx, `SELECT convert_from(token_hash, 'UTF8') FROM mfa_challenges
		WHERE token_hash IN ('old', 'recent') ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tokens = append(tokens, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"recent"}, tokens, "challenges expired over a day ago are deleted")
}

// Two requests completing one login at once: one gets the tokens.
func TestMFAChallengeConsumeRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "challenge-race", "user")
	for round := range 10 {
		c, err := store.CreateMFAChallenge(ctx, u.ID, tokenHash(fmt.Sprintf("race-%d", round)), netip.Addr{}, time.Minute)
		require.NoError(t, err)
		const n = 8
		oks := make([]bool, n)
		errs := make([]error, n)
		mfaRace(n, func(i int) { oks[i], errs[i] = store.ConsumeMFAChallenge(ctx, c.ID) })
		wins := 0
		for i := range n {
			require.NoError(t, errs[i])
			if oks[i] {
				wins++
			}
		}
		require.Equal(t, 1, wins, "round %d", round)
	}
}
