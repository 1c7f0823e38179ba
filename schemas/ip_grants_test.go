package schemas_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// ipEntryRow is what an allowlist row holds after ExpireIPEntry.
type ipEntryRow struct {
	Enabled   bool
	ExpiresAt *time.Time
	ExpiredAt *time.Time
	UpdatedAt time.Time
}

func readIPEntry(t *testing.T, store *schemas.Store, id int64) ipEntryRow {
	t.Helper()
	var r ipEntryRow
	require.NoError(t, store.Pool.QueryRow(context.Background(), `SELECT enabled, expires_at, expired_at, updated_at
		FROM ip_allowlist WHERE id = $1`, id).Scan(&r.Enabled, &r.ExpiresAt, &r.ExpiredAt, &r.UpdatedAt))
	return r
}

// insertIPEntry adds an entry; expires is an SQL expression ("NULL",
// "now() - interval '1 minute'"); user nil makes it global.
func insertIPEntry(t *testing.T, store *schemas.Store, user *uuid.UUID, cidr string, granted, enabled bool, expires string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, store.Pool.QueryRow(context.Background(), `INSERT INTO ip_allowlist
			(user_id, cidr, granted, enabled, expires_at, updated_at)
		VALUES ($1, $2, $3, $4, `+expires+`, now() - interval '1 day') RETURNING id`,
		user, cidr, granted, enabled).Scan(&id))
	return id
}

func expiredAudit(t *testing.T, store *schemas.Store) []schemas.AuditEntry {
	t.Helper()
	rows, _, err := store.ListAudit(context.Background(), schemas.AuditFilter{Action: schemas.AuditIPGrantExpired})
	require.NoError(t, err)
	return rows
}

func TestExpireIPEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	u := schemas.User{Username: "grantee", Role: "user", Active: true}
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertUser(ctx, tx, &u) }))

	t.Run("DueGrantIsDisabledAndAuditedOnce", func(t *testing.T) {
		id := insertIPEntry(t, store, &u.ID, "198.51.100.0/24", true, true, "now() - interval '1 minute'")
		before := readIPEntry(t, store, id)
		res, err := store.ExpireIPEntry(ctx, id, "ipgrant/"+strconv.FormatInt(id, 10), "run-1")
		require.NoError(t, err)
		require.True(t, res.Expired)
		require.True(t, res.Recorded)
		require.False(t, res.Gone)
		require.NotNil(t, res.ExpiresAt)
		require.True(t, res.ExpiresAt.Equal(*before.ExpiresAt))
		require.WithinDuration(t, time.Now(), res.Now, time.Minute)

		after := readIPEntry(t, store, id)
		require.False(t, after.Enabled)
		require.NotNil(t, after.ExpiredAt)
		require.True(t, after.ExpiredAt.Equal(res.Now), "expired_at is the database's now()")
		require.True(t, after.UpdatedAt.Equal(res.Now))
		require.True(t, after.ExpiresAt.Equal(*before.ExpiresAt), "the expiry itself is kept")

		audit := expiredAudit(t, store)
		require.Len(t, audit, 1)
		a := audit[0]
		require.Equal(t, "WORKFLOW", a.Method)
		require.Equal(t, "ipgrant/"+strconv.FormatInt(id, 10), a.Route)
		require.Equal(t, strconv.FormatInt(id, 10), a.TargetID)
		require.Equal(t, 200, a.Status)
		require.Equal(t, "ipgrant/"+strconv.FormatInt(id, 10)+":run-1", a.RequestID)
		require.Equal(t, uuid.Nil, a.ActorID)
		require.Empty(t, a.ActorUsername)
		var details struct {
			CIDR      string    `json:"cidr"`
			UserID    string    `json:"user_id"`
			ExpiresAt time.Time `json:"expires_at"`
			Granted   bool      `json:"granted"`
		}
		require.NoError(t, json.Unmarshal(a.Details, &details))
		require.Equal(t, "198.51.100.0/24", details.CIDR)
		require.Equal(t, u.ID.String(), details.UserID)
		require.True(t, details.ExpiresAt.Equal(*before.ExpiresAt))
		require.True(t, details.Granted)

		// Again (an activity retried after its answer was lost): the same
		// answer, nothing changed, no second audit row.
		again, err := store.ExpireIPEntry(ctx, id, "ipgrant/"+strconv.FormatInt(id, 10), "run-1")
		require.NoError(t, err)
		require.True(t, again.Expired)
		require.False(t, again.Recorded)
		require.Equal(t, after, readIPEntry(t, store, id))
		require.Len(t, expiredAudit(t, store), 1)
	})

	t.Run("GlobalEntry", func(t *testing.T) {
		id := insertIPEntry(t, store, nil, "2001:db8:7::/48", false, true, "now()")
		res, err := store.ExpireIPEntry(ctx, id, "ipgrant/x", "run-2")
		require.NoError(t, err)
		require.True(t, res.Recorded)
		var details map[string]any
		for _, a := range expiredAudit(t, store) {
			if a.TargetID == strconv.FormatInt(id, 10) {
				require.NoError(t, json.Unmarshal(a.Details, &details))
			}
		}
		require.Equal(t, "global", details["user_id"])
		require.Equal(t, "2001:db8:7::/48", details["cidr"])
		require.Equal(t, false, details["granted"])
	})

	t.Run("NotDueYetIsLeftAlone", func(t *testing.T) {
		id := insertIPEntry(t, store, &u.ID, "203.0.113.7/32", true, true, "now() + interval '1 hour'")
		before := readIPEntry(t, store, id)
		audits := len(expiredAudit(t, store))
		res, err := store.ExpireIPEntry(ctx, id, "ipgrant/x", "run-3")
		require.NoError(t, err)
		require.False(t, res.Expired)
		require.False(t, res.Recorded)
		require.False(t, res.Gone)
		require.NotNil(t, res.ExpiresAt)
		require.True(t, res.ExpiresAt.Equal(*before.ExpiresAt), "the new expiry to wait for")
		require.InDelta(t, time.Hour.Seconds(), res.ExpiresAt.Sub(res.Now).Seconds(), 60)
		require.Equal(t, before, readIPEntry(t, store, id))
		require.Len(t, expiredAudit(t, store), audits)
	})

	t.Run("NoLongerExpires", func(t *testing.T) {
		id := insertIPEntry(t, store, &u.ID, "203.0.113.8/32", true, true, "NULL")
		before := readIPEntry(t, store, id)
		res, err := store.ExpireIPEntry(ctx, id, "ipgrant/x", "run-4")
		require.NoError(t, err)
		require.Equal(t, schemas.ExpireResult{Now: res.Now}, res)
		require.Equal(t, before, readIPEntry(t, store, id))
	})

	t.Run("DisabledBeforeItsExpiry", func(t *testing.T) {
		// An admin switched the grant off before it expired: it stays as
		// the admin left it, with no expiry recorded.
		id := insertIPEntry(t, store, &u.ID, "203.0.113.9/32", true, false, "now() - interval '1 second'")
		before := readIPEntry(t, store, id)
		audits := len(expiredAudit(t, store))
		res, err := store.ExpireIPEntry(ctx, id, "ipgrant/x", "run-5")
		require.NoError(t, err)
		require.True(t, res.Expired)
		require.False(t, res.Recorded)
		require.Equal(t, before, readIPEntry(t, store, id))
		require.Nil(t, before.ExpiredAt)
		require.Len(t, expiredAudit(t, store), audits)
	})

	t.Run("Gone", func(t *testing.T) {
		id := insertIPEntry(t, store, &u.ID, "203.0.113.10/32", true, true, "now()")
		_, err := store.Pool.Exec(ctx, `DELETE FROM ip_allowlist WHERE id = $1`, id)
		require.NoError(t, err)
		res, err := store.ExpireIPEntry(ctx, id, "ipgrant/x", "run-6")
		require.NoError(t, err)
		require.Equal(t, schemas.ExpireResult{Gone: true}, res)
	})
}
