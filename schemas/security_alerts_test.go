package schemas_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func alertTestUser(t *testing.T, store *schemas.Store, name string) schemas.User {
	t.Helper()
	ctx := context.Background()
	u := schemas.User{Username: name, Role: "user", Active: true}
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertUser(ctx, tx, &u) }))
	return u
}

// alertEvents is the security.alert events in the outbox, oldest first.
func alertEvents(t *testing.T, pool *pgxpool.Pool) []schemas.SecurityAlertData {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT payload FROM events WHERE type = $1 ORDER BY seq`,
		string(schemas.EventSecurityAlert))
	require.NoError(t, err)
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	require.NoError(t, err)
	out := make([]schemas.SecurityAlertData, len(raws))
	for i, raw := range raws {
		require.NoError(t, json.Unmarshal(raw, &out[i]))
	}
	return out
}

func TestAlertRaiseFoldsRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	alice := alertTestUser(t, store, "alert-alice")

	in := schemas.AlertInput{Kind: schemas.AlertFailedLogin, Severity: schemas.SeverityMedium, UserID: alice.ID,
		Username: alice.Username, IP: netip.MustParseAddr("::ffff:192.0.2.10"), Message: "5 failed logins",
		Details: map[string]any{"failures": 5, "scope": "account"}}
	first, created, err := store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, 1, first.Count)
	require.Equal(t, schemas.AlertOpen, first.Status)
	require.Equal(t, "192.0.2.10", first.IP.String(), "an IPv4-mapped address is stored as IPv4")
	require.Equal(t, alice.ID, first.UserID)

	in.Severity, in.Message, in.Details = schemas.SeverityHigh, "6 failed logins", map[string]any{"failures": 6}
	folded, created, err := store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first.ID, folded.ID)
	require.Equal(t, 2, folded.Count)
	require.Equal(t, schemas.SeverityHigh, folded.Severity, "a fold raises the severity")
	require.Equal(t, "6 failed logins", folded.Message)
	require.Equal(t, map[string]any{"failures": float64(6), "scope": "account"}, folded.Details)
	require.False(t, folded.LastSeen.Before(first.LastSeen))
	require.Equal(t, first.FirstSeen, folded.FirstSeen)

	in.Severity = schemas.SeverityLow
	folded, _, err = store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	require.Equal(t, 3, folded.Count)
	require.Equal(t, schemas.SeverityHigh, folded.Severity, "a fold never lowers the severity")

	// Another address is another default dedup key.
	in.IP = netip.MustParseAddr("192.0.2.11")
	other, created, err := store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	require.True(t, created)
	require.NotEqual(t, first.ID, other.ID)

	events := alertEvents(t, pool)
	require.Equal(t, []schemas.SecurityAlertData{
		{AlertID: strconv.FormatInt(first.ID, 10), Kind: "failed_login", Severity: "medium", UserID: alice.ID.String(),
			IPAddress: "192.0.2.10", Message: "5 failed logins"},
		{AlertID: strconv.FormatInt(other.ID, 10), Kind: "failed_login", Severity: "low", UserID: alice.ID.String(),
			IPAddress: "192.0.2.11", Message: "6 failed logins"},
	}, events, "one event per new alert, none for a fold")
}

func TestAlertResolvedKeyRaisesNewAlert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	admin := alertTestUser(t, store, "alert-admin")

	in := schemas.AlertInput{Kind: schemas.AlertPrivilegeEscalation, Severity: schemas.SeverityHigh,
		Message: "3 refused admin requests", DedupKey: "privilege_escalation:refused:x"}
	first, _, err := store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	resolved, err := store.ResolveAlert(ctx, first.ID, admin.ID, "a tester")
	require.NoError(t, err)
	require.Equal(t, schemas.AlertResolved, resolved.Status)

	second, created, err := store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	require.True(t, created, "a resolved alert takes no folds")
	require.NotEqual(t, first.ID, second.ID)
	require.Equal(t, 1, second.Count)
	third, created, err := store.RaiseAlert(ctx, in)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, second.ID, third.ID)

	events := alertEvents(t, pool)
	require.Len(t, events, 2)
	require.Equal(t, strconv.FormatInt(first.ID, 10), events[0].AlertID)
	require.Equal(t, strconv.FormatInt(second.ID, 10), events[1].AlertID)
	require.Empty(t, events[0].UserID)
	require.Empty(t, events[0].IPAddress)
}

// Replicas raising the same alert at once store one alert and one event.
func TestAlertConcurrentRaisesFold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	in := schemas.AlertInput{Kind: schemas.AlertFailedLogin, Severity: schemas.SeverityHigh,
		IP: netip.MustParseAddr("2001:db8::1"), Message: "spray"}
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, _, err := store.RaiseAlert(ctx, in)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	list, _, err := store.ListAlerts(ctx, schemas.AlertFilter{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, n, list[0].Count)
	require.Len(t, alertEvents(t, pool), 1)
}

func TestAlertRaiseValidates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	for name, in := range map[string]schemas.AlertInput{
		"kind":     {Kind: "burglary", Severity: schemas.SeverityLow, Message: "m"},
		"severity": {Kind: schemas.AlertMFAChange, Severity: "apocalyptic", Message: "m"},
		"message":  {Kind: schemas.AlertMFAChange, Severity: schemas.SeverityLow, Message: " "},
	} {
		_, _, err := store.RaiseAlert(ctx, in)
		require.ErrorIs(t, err, schemas.ErrInvalidAlert, name)
	}
	require.Empty(t, alertEvents(t, pool))
}

func TestAlertAcknowledgeAndResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	alice := alertTestUser(t, store, "ack-alice")
	admin := alertTestUser(t, store, "ack-admin")
	a, _, err := store.RaiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertUnusualAccess,
		Severity: schemas.SeverityLow, UserID: alice.ID, Message: "new address"})
	require.NoError(t, err)

	acked, err := store.AcknowledgeAlert(ctx, a.ID, alice.ID)
	require.NoError(t, err)
	require.Equal(t, schemas.AlertAcknowledged, acked.Status)
	require.Equal(t, alice.ID, acked.AcknowledgedBy)
	require.NotNil(t, acked.AcknowledgedAt)
	again, err := store.AcknowledgeAlert(ctx, a.ID, admin.ID)
	require.NoError(t, err)
	require.Equal(t, alice.ID, again.AcknowledgedBy, "the first acknowledgement stays")
	require.Equal(t, *acked.AcknowledgedAt, *again.AcknowledgedAt)

	// An acknowledged alert still takes folds.
	folded, created, err := store.RaiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertUnusualAccess,
		Severity: schemas.SeverityLow, UserID: alice.ID, Message: "new address"})
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, a.ID, folded.ID)
	require.Equal(t, schemas.AlertAcknowledged, folded.Status)

	res, err := store.ResolveAlert(ctx, a.ID, admin.ID, "it was me on holiday")
	require.NoError(t, err)
	require.Equal(t, schemas.AlertResolved, res.Status)
	require.Equal(t, admin.ID, res.ResolvedBy)
	require.Equal(t, "it was me on holiday", res.ResolutionNote)
	require.NotNil(t, res.ResolvedAt)

	_, err = store.ResolveAlert(ctx, a.ID, admin.ID, "twice")
	require.ErrorIs(t, err, schemas.ErrAlertResolved)
	_, err = store.AcknowledgeAlert(ctx, a.ID, admin.ID)
	require.ErrorIs(t, err, schemas.ErrAlertResolved)
	_, err = store.AcknowledgeAlert(ctx, a.ID+1000, admin.ID)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	_, err = store.ResolveAlert(ctx, a.ID+1000, admin.ID, "")
	require.ErrorIs(t, err, schemas.ErrNotFound)
	_, err = store.GetAlert(ctx, a.ID+1000)
	require.ErrorIs(t, err, schemas.ErrNotFound)
	got, err := store.GetAlert(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, res, got)
}

func TestAlertListFiltersAndPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{Pool: testenv.DB(t)}
	alice := alertTestUser(t, store, "list-alice")
	bob := alertTestUser(t, store, "list-bob")
	var ids []int64
	for i := range 7 {
		u, sev := alice, schemas.SeverityLow
		if i%2 == 1 {
			u, sev = bob, schemas.SeverityHigh
		}
		a, _, err := store.RaiseAlert(ctx, schemas.AlertInput{Kind: schemas.AlertIPViolation, Severity: sev,
			UserID: u.ID, Message: fmt.Sprint("refused ", i), DedupKey: fmt.Sprint("k", i)})
		require.NoError(t, err)
		ids = append(ids, a.ID)
	}
	_, err := store.AcknowledgeAlert(ctx, ids[0], alice.ID)
	require.NoError(t, err)

	// Every page of 3, newest first.
	var got []int64
	cursor := ""
	for {
		page, next, err := store.ListAlerts(ctx, schemas.AlertFilter{Cursor: cursor, Limit: 3})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 3)
		for _, a := range page {
			got = append(got, a.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, []int64{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, got)

	count := func(f schemas.AlertFilter) int {
		list, _, err := store.ListAlerts(ctx, f)
		require.NoError(t, err)
		return len(list)
	}
	require.Equal(t, 4, count(schemas.AlertFilter{UserID: alice.ID}))
	require.Equal(t, 3, count(schemas.AlertFilter{UserID: bob.ID}))
	require.Equal(t, 3, count(schemas.AlertFilter{Severity: schemas.SeverityHigh}))
	require.Equal(t, 1, count(schemas.AlertFilter{Status: schemas.AlertAcknowledged}))
	require.Equal(t, 3, count(schemas.AlertFilter{UserID: alice.ID, Status: schemas.AlertOpen}))
	require.Equal(t, 7, count(schemas.AlertFilter{Kind: schemas.AlertIPViolation}))
	require.Equal(t, 0, count(schemas.AlertFilter{Kind: schemas.AlertMFAChange}))
	require.Equal(t, 0, count(schemas.AlertFilter{UserID: uuid.New()}))

	for _, bad := range []string{"junk!", "w1.1.1", "sa1.123.abc", "sa1.123", "sa1.x.5"} {
		_, _, err := store.ListAlerts(ctx, schemas.AlertFilter{Cursor: base64.RawURLEncoding.EncodeToString([]byte(bad))})
		require.ErrorIs(t, err, schemas.ErrInvalidCursor, bad)
		_, _, err = store.ListAlerts(ctx, schemas.AlertFilter{Cursor: bad})
		require.ErrorIs(t, err, schemas.ErrInvalidCursor, bad)
	}
}
