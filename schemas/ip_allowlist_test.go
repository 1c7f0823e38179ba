package schemas_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func insertAllowlistEntry(t *testing.T, store *schemas.Store, e *schemas.IPEntry) error {
	t.Helper()
	ctx := context.Background()
	return store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertIPEntry(ctx, tx, e) })
}

func allowlistTestUser(t *testing.T, store *schemas.Store, name string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	u := schemas.User{Username: name, Email: name + "@example.com", Role: "user", Active: true}
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertUser(ctx, tx, &u) }))
	return u.ID
}

func TestIPAllowlistStoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	alice := allowlistTestUser(t, store, "alice")
	admin := allowlistTestUser(t, store, "admin")

	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	global := schemas.IPEntry{Prefix: netip.MustParsePrefix("10.0.0.0/24"), Description: "office", Enabled: true, CreatedBy: admin}
	grant := schemas.IPEntry{UserID: alice, Prefix: netip.MustParsePrefix("2001:db8::/32"), Enabled: true, Granted: true,
		ExpiresAt: &expires, CreatedBy: admin}
	own := schemas.IPEntry{UserID: alice, Prefix: netip.MustParsePrefix("192.0.2.7/32"), Enabled: true, CreatedBy: alice}
	for _, e := range []*schemas.IPEntry{&global, &grant, &own} {
		require.NoError(t, insertAllowlistEntry(t, store, e))
		require.NotZero(t, e.ID)
		require.False(t, e.CreatedAt.IsZero())
	}

	got, err := store.GetIPEntry(ctx, grant.ID)
	require.NoError(t, err)
	require.Equal(t, alice, got.UserID)
	require.Equal(t, netip.MustParsePrefix("2001:db8::/32"), got.Prefix)
	require.True(t, got.Granted)
	require.Equal(t, expires, got.ExpiresAt.UTC())
	require.Equal(t, admin, got.CreatedBy)
	require.False(t, got.Global())

	got, err = store.GetIPEntry(ctx, global.ID)
	require.NoError(t, err)
	require.True(t, got.Global())
	require.Equal(t, "office", got.Description)

	_, err = store.GetIPEntry(ctx, 1<<40)
	require.ErrorIs(t, err, schemas.ErrNotFound)

	// The same prefix twice in one scope conflicts; in another scope it does not.
	err = insertAllowlistEntry(t, store, &schemas.IPEntry{Prefix: netip.MustParsePrefix("10.0.0.0/24"), Enabled: true})
	require.ErrorIs(t, err, schemas.ErrConflict)
	require.NoError(t, insertAllowlistEntry(t, store, &schemas.IPEntry{UserID: alice, Prefix: netip.MustParsePrefix("10.0.0.0/24")}))
	// An unknown user, or a prefix with host bits set, is refused.
	err = insertAllowlistEntry(t, store, &schemas.IPEntry{UserID: uuid.New(), Prefix: netip.MustParsePrefix("10.9.0.0/16")})
	require.ErrorIs(t, err, schemas.ErrNotFound)
	err = insertAllowlistEntry(t, store, &schemas.IPEntry{Prefix: netip.MustParsePrefix("10.9.0.5/16")})
	require.Error(t, err)

	// Update: new prefix and description, expiry cleared; a taken prefix conflicts.
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error {
		e, err := schemas.LockIPEntry(ctx, tx, grant.ID)
		if err != nil {
			return err
		}
		e.Prefix, e.Description, e.ExpiresAt = netip.MustParsePrefix("2001:db8:1::/48"), "vpn", nil
		return schemas.UpdateIPEntry(ctx, tx, &e)
	}))
	got, err = store.GetIPEntry(ctx, grant.ID)
	require.NoError(t, err)
	require.Equal(t, "2001:db8:1::/48", got.Prefix.String())
	require.Equal(t, "vpn", got.Description)
	require.Nil(t, got.ExpiresAt)
	err = store.InTx(ctx, func(tx pgx.Tx) error {
		e, err := schemas.LockIPEntry(ctx, tx, own.ID)
		if err != nil {
			return err
		}
		e.Prefix = netip.MustParsePrefix("10.0.0.0/24")
		return schemas.UpdateIPEntry(ctx, tx, &e)
	})
	require.ErrorIs(t, err, schemas.ErrConflict)

	// Listing by scope and user, newest first.
	all, next, err := store.ListIPEntries(ctx, schemas.IPEntryFilter{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, all, 4)
	for i := 1; i < len(all); i++ {
		require.Greater(t, all[i-1].ID, all[i].ID)
	}
	globals, _, err := store.ListIPEntries(ctx, schemas.IPEntryFilter{Scope: schemas.IPScopeGlobal})
	require.NoError(t, err)
	require.Equal(t, []int64{global.ID}, allowlistIDs(globals))
	users, _, err := store.ListIPEntries(ctx, schemas.IPEntryFilter{Scope: schemas.IPScopeUser, UserID: alice})
	require.NoError(t, err)
	require.Len(t, users, 3)
	none, _, err := store.ListIPEntries(ctx, schemas.IPEntryFilter{UserID: admin})
	require.NoError(t, err)
	require.Empty(t, none)

	// Delete.
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.DeleteIPEntry(ctx, tx, own.ID) }))
	err = store.InTx(ctx, func(tx pgx.Tx) error { return schemas.DeleteIPEntry(ctx, tx, own.ID) })
	require.ErrorIs(t, err, schemas.ErrNotFound)
	// Deleting the user deletes their entries.
	_, err = store.Pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, alice)
	require.NoError(t, err)
	all, _, err = store.ListIPEntries(ctx, schemas.IPEntryFilter{})
	require.NoError(t, err)
	require.Equal(t, []int64{global.ID}, allowlistIDs(all))
}

func allowlistIDs(list []schemas.IPEntry) []int64 {
	out := make([]int64, 0, len(list))
	for _, e := range list {
		out = append(out, e.ID)
	}
	return out
}

func TestIPAllowlistStorePaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	for i := range 7 {
		require.NoError(t, insertAllowlistEntry(t, store, &schemas.IPEntry{Prefix: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", i)), Enabled: true}))
	}
	var seen []int64
	cursor := ""
	for {
		page, next, err := store.ListIPEntries(ctx, schemas.IPEntryFilter{Cursor: cursor, Limit: 3})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 3)
		seen = append(seen, allowlistIDs(page)...)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Len(t, seen, 7)
	for i := 1; i < len(seen); i++ {
		require.Greater(t, seen[i-1], seen[i])
	}
	_, _, err := store.ListIPEntries(ctx, schemas.IPEntryFilter{Cursor: "bm90LWEtY3Vyc29y"})
	require.ErrorIs(t, err, schemas.ErrInvalidCursor)
}

func TestIPAllowlistStoreActiveEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	alice := allowlistTestUser(t, store, "alice")
	past := time.Now().Add(-time.Minute)
	future := time.Now().Add(time.Hour)
	active := schemas.IPEntry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Enabled: true}
	disabled := schemas.IPEntry{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Enabled: false}
	expired := schemas.IPEntry{UserID: alice, Prefix: netip.MustParsePrefix("192.0.2.0/24"), Enabled: true, Granted: true, ExpiresAt: &past}
	temporary := schemas.IPEntry{UserID: alice, Prefix: netip.MustParsePrefix("192.0.2.9/32"), Enabled: true, Granted: true, ExpiresAt: &future}
	for _, e := range []*schemas.IPEntry{&active, &disabled, &expired, &temporary} {
		require.NoError(t, insertAllowlistEntry(t, store, e))
	}
	list, err := store.ListActiveIPEntries(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{active.ID, temporary.ID}, allowlistIDs(list))

	// Inside a transaction the list includes its own uncommitted change, and
	// nothing of it once it rolls back.
	rollback := errors.New("rollback")
	err = store.InTx(ctx, func(tx pgx.Tx) error {
		if err := schemas.DeleteIPEntry(ctx, tx, active.ID); err != nil {
			return err
		}
		list, err := schemas.ListActiveIPEntriesTx(ctx, tx)
		if err != nil {
			return err
		}
		require.Equal(t, []int64{temporary.ID}, allowlistIDs(list))
		return rollback
	})
	require.ErrorIs(t, err, rollback)
	list, err = store.ListActiveIPEntries(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
}

// Every committed change notifies the channel the replicas listen on.
func TestIPAllowlistStoreNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	conn, err := store.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "LISTEN "+schemas.IPAllowlistChannel)
	require.NoError(t, err)
	defer func() { _, _ = conn.Exec(context.Background(), "UNLISTEN *") }()

	e := schemas.IPEntry{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Enabled: true}
	require.NoError(t, insertAllowlistEntry(t, store, &e))
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := conn.Conn().WaitForNotification(wait)
	require.NoError(t, err)
	require.Equal(t, schemas.IPAllowlistChannel, n.Channel)
}
