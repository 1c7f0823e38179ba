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

// mfaUser creates an active local user with role.
func mfaUser(t *testing.T, store *schemas.Store, username, role string) schemas.User {
	t.Helper()
	ctx := context.Background()
	u := schemas.User{Username: username, Email: username + "@example.com", Role: role, Active: true,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"}
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertUser(ctx, tx, &u) }))
	return u
}

// mfaRace runs fn in n goroutines released together and waits for them.
func mfaRace(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func createMFAMethod(t *testing.T, store *schemas.Store, m schemas.MFAMethod) schemas.MFAMethod {
	t.Helper()
	require.NoError(t, store.CreateMFAMethod(context.Background(), &m))
	return m
}

func verifyMFAMethod(t *testing.T, store *schemas.Store, id int64) (first bool) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		first, err = schemas.VerifyMFAMethod(ctx, tx, id)
		return err
	}))
	return first
}

func deleteMFAMethod(store *schemas.Store, userID uuid.UUID, id int64) (remaining int, err error) {
	ctx := context.Background()
	err = store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		remaining, err = schemas.DeleteMFAMethod(ctx, tx, userID, id)
		return err
	})
	return remaining, err
}

func mfaEnabled(t *testing.T, store *schemas.Store, id uuid.UUID) bool {
	t.Helper()
	u, err := store.GetUser(context.Background(), id)
	require.NoError(t, err)
	return u.MFAEnabled
}

func TestMFAMethodCreateListGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	alice := mfaUser(t, store, "mfa-alice", "user")
	bob := mfaUser(t, store, "mfa-bob", "user")

	totp := createMFAMethod(t, store, schemas.MFAMethod{UserID: alice.ID, Type: schemas.MFATOTP, SecretSealed: []byte("sealed-seed")})
	require.NotZero(t, totp.ID)
	require.WithinDuration(t, time.Now(), totp.CreatedAt, time.Minute)
	require.False(t, totp.Verified())
	sms := createMFAMethod(t, store, schemas.MFAMethod{UserID: alice.ID, Type: schemas.MFASMS, Phone: "+15550100"})
	email := createMFAMethod(t, store, schemas.MFAMethod{UserID: alice.ID, Type: schemas.MFAEmail})
	createMFAMethod(t, store, schemas.MFAMethod{UserID: bob.ID, Type: schemas.MFAEmail})

	list, err := store.ListMFAMethods(ctx, alice.ID)
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, []int64{totp.ID, sms.ID, email.ID}, []int64{list[0].ID, list[1].ID, list[2].ID})
	require.Equal(t, []byte("sealed-seed"), list[0].SecretSealed)
	require.Equal(t, "+15550100", list[1].Phone)
	require.Equal(t, "", list[2].Phone)
	require.Nil(t, list[2].SecretSealed)

	got, err := store.GetMFAMethod(ctx, alice.ID, sms.ID)
	require.NoError(t, err)
	require.Equal(t, schemas.MFASMS, got.Type)
	require.Equal(t, alice.ID, got.UserID)
	require.Nil(t, got.VerifiedAt)
	require.Nil(t, got.LastTOTPStep)
	require.Nil(t, got.LastUsedAt)

	// Bob cannot see Alice's method, and a missing one looks the same.
	_, err = store.GetMFAMethod(ctx, bob.ID, sms.ID)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	_, err = store.GetMFAMethod(ctx, alice.ID, sms.ID+1000)
	require.ErrorIs(t, err, schemas.ErrNotFound)

	none, err := store.ListMFAMethods(ctx, uuid.New())
	require.NoError(t, err)
	require.Empty(t, none)

	// The table's rules hold: TOTP needs a seed, SMS a phone number.
	require.Error(t, store.CreateMFAMethod(ctx, &schemas.MFAMethod{UserID: bob.ID, Type: schemas.MFATOTP}))
	require.Error(t, store.CreateMFAMethod(ctx, &schemas.MFAMethod{UserID: bob.ID, Type: schemas.MFASMS}))
	require.ErrorIs(t, store.CreateMFAMethod(ctx, &schemas.MFAMethod{UserID: uuid.New(), Type: schemas.MFAEmail}),
		schemas.ErrNotFound)
}

func TestMFAMethodSetupRestartAndConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "mfa-restart", "user")

	first := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFASMS, Phone: "+15550101"})
	_, err := store.IssueMFACode(ctx, first.ID, []byte("salt"), []byte("code-to-old-phone"), 10*time.Minute, schemas.CodeThrottle{})
	require.NoError(t, err)

	// Restarting the setup with another number replaces the unverified
	// method; the code sent to the old number is gone with it.
	second := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFASMS, Phone: "+15550102"})
	require.NotEqual(t, first.ID, second.ID)
	_, err = store.GetMFAMethod(ctx, u.ID, first.ID)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	list, err := store.ListMFAMethods(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "+15550102", list[0].Phone)
	_, err = store.CheckMFACode(ctx, second.ID, 5, func(_, hash []byte) bool { return string(hash) == "code-to-old-phone" })
	require.ErrorIs(t, err, schemas.ErrNoCode)

	// Once verified, a new setup of the same type is a conflict and changes
	// nothing.
	require.True(t, verifyMFAMethod(t, store, second.ID))
	err = store.CreateMFAMethod(ctx, &schemas.MFAMethod{UserID: u.ID, Type: schemas.MFASMS, Phone: "+15550199"})
	require.ErrorIs(t, err, schemas.ErrConflict)
	require.ErrorContains(t, err, "verified sms method already exists")
	got, err := store.GetMFAMethod(ctx, u.ID, second.ID)
	require.NoError(t, err)
	require.Equal(t, "+15550102", got.Phone)
	require.True(t, got.Verified())

	// Another type is still welcome.
	createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP, SecretSealed: []byte("s")})
}

func TestMFAMethodVerifyAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "mfa-verify", "admin")
	other := mfaUser(t, store, "mfa-other", "user")
	require.False(t, mfaEnabled(t, store, u.ID))

	totp := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP, SecretSealed: []byte("s")})
	email := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFAEmail})
	require.False(t, mfaEnabled(t, store, u.ID), "an unverified method does not enable MFA")

	require.True(t, verifyMFAMethod(t, store, totp.ID), "the first verified method")
	require.True(t, mfaEnabled(t, store, u.ID))
	got, err := store.GetMFAMethod(ctx, u.ID, totp.ID)
	require.NoError(t, err)
	require.NotNil(t, got.VerifiedAt)
	verifiedAt := *got.VerifiedAt

	require.False(t, verifyMFAMethod(t, store, totp.ID), "verifying again is not a first method")
	got, err = store.GetMFAMethod(ctx, u.ID, totp.ID)
	require.NoError(t, err)
	require.Equal(t, verifiedAt, *got.VerifiedAt, "verified_at is kept")
	require.False(t, verifyMFAMethod(t, store, email.ID), "a second method")

	err = store.InTx(ctx, func(tx pgx.Tx) error {
		_, err := schemas.VerifyMFAMethod(ctx, tx, email.ID+1000)
		return err
	})
	require.ErrorIs(t, err, schemas.ErrNotFound)

	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		return schemas.ReplaceBackupCodes(ctx, tx, u.ID, []string{"b1", "b2", "b3"})
	}))

	// Not theirs: nothing happens.
	_, err = deleteMFAMethod(store, other.ID, totp.ID)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	_, err = deleteMFAMethod(store, u.ID, totp.ID+1000)
	require.ErrorIs(t, err, schemas.ErrNotFound)

	remaining, err := deleteMFAMethod(store, u.ID, totp.ID)
	require.NoError(t, err)
	require.Equal(t, 1, remaining)
	require.True(t, mfaEnabled(t, store, u.ID))
	n, err := store.CountBackupCodes(ctx, u.ID)
	require.NoError(t, err)
	require.Equal(t, 3, n, "backup codes stay while a verified method does")

	// An unverified method left over does not keep MFA on.
	createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFASMS, Phone: "+15550103"})
	remaining, err = deleteMFAMethod(store, u.ID, email.ID)
	require.NoError(t, err)
	require.Equal(t, 0, remaining)
	require.False(t, mfaEnabled(t, store, u.ID))
	n, err = store.CountBackupCodes(ctx, u.ID)
	require.NoError(t, err)
	require.Zero(t, n, "backup codes go with the last verified method")
	var rows int
	require.NoError(t, store.Pool.QueryRow(ctx, `SELECT count(*) FROM mfa_backup_codes WHERE user_id = $1`, u.ID).Scan(&rows))
	require.Zero(t, rows)

	// Starting over is a first method again.
	again := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP, SecretSealed: []byte("s2")})
	require.True(t, verifyMFAMethod(t, store, again.ID))
	require.True(t, mfaEnabled(t, store, u.ID))
}

// Two methods verified at the same time: only one of them is the first, so
// backup codes are issued once.
func TestMFAMethodVerifyConcurrentFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	for round := range 5 {
		u := mfaUser(t, store, fmt.Sprintf("mfa-race-verify-%d", round), "user")
		ids := []int64{
			createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP, SecretSealed: []byte("s")}).ID,
			createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFAEmail}).ID,
			createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFASMS, Phone: "+15550104"}).ID,
		}
		firsts := make([]bool, len(ids))
		errs := make([]error, len(ids))
		mfaRace(len(ids), func(i int) {
			errs[i] = store.InTx(ctx, func(tx pgx.Tx) error {
				var err error
				firsts[i], err = schemas.VerifyMFAMethod(ctx, tx, ids[i])
				return err
			})
		})
		wins := 0
		for i := range ids {
			require.NoError(t, errs[i])
			if firsts[i] {
				wins++
			}
		}
		require.Equal(t, 1, wins, "round %d: %v", round, firsts)
		require.True(t, mfaEnabled(t, store, u.ID))
	}
}

func TestMFAAcceptTOTPStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "mfa-totp", "user")
	m := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP, SecretSealed: []byte("s")})

	const step = 58_000_000
	for _, tc := range []struct {
		step int64
		want bool
	}{
		{step, true},
		{step, false},     // the same code again: a replay
		{step - 1, false}, // an earlier step, though within the ±1 window
		{step + 1, true},
		{step + 1, false},
		{step, false},
		{step + 3, true},
	} {
		ok, err := store.AcceptTOTPStep(ctx, m.ID, tc.step)
		require.NoError(t, err)
		require.Equal(t, tc.want, ok, "step %d", tc.step)
	}
	got, err := store.GetMFAMethod(ctx, u.ID, m.ID)
	require.NoError(t, err)
	require.NotNil(t, got.LastTOTPStep)
	require.EqualValues(t, step+3, *got.LastTOTPStep)
	require.NotNil(t, got.LastUsedAt)
	require.WithinDuration(t, time.Now(), *got.LastUsedAt, time.Minute)

	_, err = store.AcceptTOTPStep(ctx, m.ID+1000, step)
	require.ErrorIs(t, err, schemas.ErrNotFound)
}

// The same code presented by several requests at once is accepted once.
func TestMFAAcceptTOTPStepRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "mfa-totp-race", "user")
	m := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFATOTP, SecretSealed: []byte("s")})

	for step := int64(1000); step < 1020; step++ {
		const n = 8
		oks := make([]bool, n)
		errs := make([]error, n)
		mfaRace(n, func(i int) { oks[i], errs[i] = store.AcceptTOTPStep(ctx, m.ID, step) })
		wins := 0
		for i := range n {
			require.NoError(t, errs[i])
			if oks[i] {
				wins++
			}
		}
		require.Equal(t, 1, wins, "step %d", step)
	}
}

func TestMFATouchMethod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := mfaUser(t, store, "mfa-touch", "user")
	m := createMFAMethod(t, store, schemas.MFAMethod{UserID: u.ID, Type: schemas.MFAEmail})

	require.NoError(t, store.TouchMFAMethod(ctx, m.ID))
	got, err := store.GetMFAMethod(ctx, u.ID, m.ID)
	require.NoError(t, err)
	require.NotNil(t, got.LastUsedAt)
	require.WithinDuration(t, time.Now(), *got.LastUsedAt, time.Minute)
	require.ErrorIs(t, store.TouchMFAMethod(ctx, m.ID+1000), schemas.ErrNotFound)
}
