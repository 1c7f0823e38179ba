package schemas_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func replaceBackupCodes(t *testing.T, store *schemas.Store, userID uuid.UUID, hashes []string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.ReplaceBackupCodes(ctx, tx, userID, hashes) }))
}

// backupSet stands in for ten argon2id hashes: the store only hands them to
// match.
func backupSet(prefix string) []string {
	out := make([]string, 10)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func hashIs(want string) func(string) bool { return func(h string) bool { return h == want } }

func TestBackupCodeUseOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "backup-once", "user")
	other := mfaUser(t, store, "backup-other", "user")
	replaceBackupCodes(t, store, u.ID, backupSet("a"))
	replaceBackupCodes(t, store, other.ID, backupSet("o"))

	n, err := store.CountBackupCodes(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, 10, n)

	ok, remaining, err := store.UseBackupCode(ctx, u.ID, hashIs("a-3"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 9, remaining)

	ok, remaining, err = store.UseBackupCode(ctx, u.ID, hashIs("a-3"))
	require.NoError(t, err)
	require.False(t, ok, "a backup code works once")
	require.Equal(t, 9, remaining)

	ok, _, err = store.UseBackupCode(ctx, u.ID, hashIs("o-1"))
	require.NoError(t, err)
	require.False(t, ok, "another user's code")
	ok, remaining, err = store.UseBackupCode(ctx, u.ID, hashIs("a-9"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 8, remaining)

	n, err = store.CountBackupCodes(ctx, other.ID)
	require.NoError(t, err)
	require.Equal(t, 10, n)

	// The match function only ever sees unused codes.
	var seen []string
	_, _, err = store.UseBackupCode(ctx, u.ID, func(h string) bool { seen = append(seen, h); return false })
	require.NoError(t, err)
	require.Len(t, seen, 8)
	require.NotContains(t, seen, "a-3")
	require.NotContains(t, seen, "a-9")

	var usedAt *time.Time
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT used_at FROM mfa_backup_codes WHERE code_hash = 'a-3'`).Scan(&usedAt))
	require.NotNil(t, usedAt)
}

func TestBackupCodeRegenerateRevokesOld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "backup-regen", "user")
	replaceBackupCodes(t, store, u.ID, backupSet("old"))
	ok, _, err := store.UseBackupCode(ctx, u.ID, hashIs("old-0"))
	require.NoError(t, err)
	require.True(t, ok)

	replaceBackupCodes(t, store, u.ID, backupSet("new"))
	n, err := store.CountBackupCodes(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, 10, n)
	ok, remaining, err := store.UseBackupCode(ctx, u.ID, hashIs("old-1"))
	require.NoError(t, err)
	require.False(t, ok, "an old code no longer works")
	require.Equal(t, 10, remaining)
	var rows int
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM mfa_backup_codes WHERE user_id = $1`, u.ID).Scan(&rows))
	require.Equal(t, 10, rows, "the old set, used codes included, is deleted")

	ok, remaining, err = store.UseBackupCode(ctx, u.ID, hashIs("new-1"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 9, remaining)

	err = store.InTx(ctx, func(tx pgx.Tx) error { return schemas.ReplaceBackupCodes(ctx, tx, uuid.New(), backupSet("x")) })
	require.ErrorIs(t, err, schemas.ErrNotFound)
}

// Two logins with the same backup code at once: exactly one gets in. match
// holds every request until all have found the code, so each has read it as
// unused before any spends it.
func TestBackupCodeUseRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "backup-race", "user")
	replaceBackupCodes(t, store, u.ID, backupSet("r"))

	for round := range 5 {
		const n = 4
		code := fmt.Sprintf("r-%d", round)
		var arrived sync.WaitGroup
		arrived.Add(n)
		allArrived := make(chan struct{})
		go func() { arrived.Wait(); close(allArrived) }()
		match := func(h string) bool {
			if h != code {
				return false
			}
			arrived.Done()
			select {
			case <-allArrived:
			case <-time.After(10 * time.Second):
			}
			return true
		}
		oks := make([]bool, n)
		remainings := make([]int, n)
		errs := make([]error, n)
		mfaRace(n, func(i int) { oks[i], remainings[i], errs[i] = store.UseBackupCode(ctx, u.ID, match) })
		wins := 0
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, 9-round, remainings[i])
			if oks[i] {
				wins++
			}
		}
		require.Equal(t, 1, wins, "round %d", round)
	}
}
