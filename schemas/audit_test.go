package schemas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

func auditCount(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log`).Scan(&n))
	return n
}

func TestAuditInsertRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	actor := uuid.New()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	in := schemas.AuditEntry{
		Time: at, ActorID: actor, ActorUsername: "alice", ActorRole: "admin",
		ClientIP: netip.MustParseAddr("2001:db8::7"), Method: "PATCH", Route: "/api/admin/users/{id}",
		Action: "PATCH /api/admin/users/{id}", TargetID: "u-1", Status: 200, RequestID: "req-1",
		Details: json.RawMessage(`{"k":"v"}`),
	}
	require.NoError(t, store.InsertAudit(ctx, in))
	// An anonymous entry with no IP, target or details.
	require.NoError(t, store.InsertAudit(ctx, schemas.AuditEntry{Method: "POST", Route: "/api/auth/login",
		Action: "auth.login", Status: 401, RequestID: "req-2"}))

	got, next, err := store.ListAudit(ctx, schemas.AuditFilter{})
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, got, 2)
	anon, e := got[0], got[1] // the anonymous one has time = now, so it is newest
	require.Equal(t, "req-2", anon.RequestID)
	require.Equal(t, uuid.Nil, anon.ActorID)
	require.False(t, anon.ClientIP.IsValid())
	require.Empty(t, anon.TargetID)
	require.JSONEq(t, `{}`, string(anon.Details))
	require.WithinDuration(t, time.Now(), anon.Time, time.Minute)

	require.Positive(t, e.ID)
	require.Equal(t, at, e.Time)
	require.Equal(t, actor, e.ActorID)
	require.Equal(t, "alice", e.ActorUsername)
	require.Equal(t, "admin", e.ActorRole)
	require.Equal(t, in.ClientIP, e.ClientIP)
	require.Equal(t, in.Route, e.Route)
	require.Equal(t, in.Action, e.Action)
	require.Equal(t, "u-1", e.TargetID)
	require.Equal(t, 200, e.Status)
	require.JSONEq(t, `{"k":"v"}`, string(e.Details))
}

func requireAppendOnly(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%v", err)
	require.Equal(t, "42501", pgErr.Code, "%v", err)
	require.Contains(t, pgErr.Message, "append-only")
}

func TestAuditAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	old := time.Now().Add(-100 * 24 * time.Hour)
	for i, at := range []time.Time{old, old.Add(time.Hour), time.Now().Add(-24 * time.Hour), {}} {
		require.NoError(t, store.InsertAudit(ctx, schemas.AuditEntry{Time: at, Method: "POST", Route: "/x",
			Action: "POST /x", Status: 201, RequestID: fmt.Sprint("r", i)}))
	}

	_, err := pool.Exec(ctx, `UPDATE audit_log SET status = 200`)
	requireAppendOnly(t, err)
	_, err = pool.Exec(ctx, `DELETE FROM audit_log`)
	requireAppendOnly(t, err)
	_, err = pool.Exec(ctx, `DELETE FROM audit_log WHERE occurred_at < now() - interval '90 days'`)
	requireAppendOnly(t, err)
	_, err = pool.Exec(ctx, `TRUNCATE audit_log`)
	requireAppendOnly(t, err)
	require.Equal(t, 4, auditCount(t, pool))

	// The purge's bypass never reaches rows younger than 30 days, even when
	// someone sets its setting by hand.
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `SELECT set_config('streamspace.audit_purge_before', extract(epoch FROM now())::text, false)`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DELETE FROM audit_log WHERE occurred_at > now() - interval '2 days'`)
	requireAppendOnly(t, err)
	conn.Release()

	// Retention: audit_purge refuses a cut-off younger than 30 days…
	_, err = pool.Exec(ctx, `SELECT audit_purge(now() - interval '1 day')`)
	require.ErrorContains(t, err, "younger than 30 days")
	// …and removes what is older than the cut-off, nothing else.
	var purged int
	require.NoError(t, pool.QueryRow(ctx, `SELECT audit_purge(now() - interval '90 days')`).Scan(&purged))
	require.Equal(t, 2, purged)
	require.Equal(t, 2, auditCount(t, pool))
	// The bypass was local to the purge: a plain DELETE fails again.
	_, err = pool.Exec(ctx, `DELETE FROM audit_log`)
	requireAppendOnly(t, err)
}

// seedAudit inserts n rows spread over actors, actions and time; every third
// row shares its timestamp with the previous one, so pagination has ties to
// break on id.
func seedAudit(t testing.TB, store *schemas.Store, base time.Time, n int, actors []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	at := base
	for i := range n {
		if i%3 != 2 {
			at = at.Add(time.Second)
		}
		a := actors[i%len(actors)]
		require.NoError(t, store.InsertAudit(ctx, schemas.AuditEntry{
			Time: at, ActorID: a, ActorUsername: fmt.Sprintf("User-%d", i%len(actors)), ActorRole: "user",
			Method: "POST", Route: "/x", Action: []string{"POST /x", "auth.login"}[i%2], Status: 201,
			RequestID: fmt.Sprint("req-", i),
		}))
	}
}

func TestListAuditFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	actors := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	seedAudit(t, store, base, 30, actors)

	list := func(f schemas.AuditFilter) []schemas.AuditEntry {
		t.Helper()
		f.Limit = 200
		got, next, err := store.ListAudit(ctx, f)
		require.NoError(t, err)
		require.Empty(t, next)
		return got
	}
	require.Len(t, list(schemas.AuditFilter{}), 30)

	byID := list(schemas.AuditFilter{Actor: actors[1].String()})
	require.Len(t, byID, 10)
	for _, e := range byID {
		require.Equal(t, actors[1], e.ActorID)
	}
	byName := list(schemas.AuditFilter{Actor: "user-1"}) // case-insensitive
	require.Equal(t, byID, byName)
	require.Empty(t, list(schemas.AuditFilter{Actor: "nobody"}))

	logins := list(schemas.AuditFilter{Action: "auth.login"})
	require.Len(t, logins, 15)
	for _, e := range logins {
		require.Equal(t, "auth.login", e.Action)
	}

	from, to := base.Add(5*time.Second), base.Add(10*time.Second)
	window := list(schemas.AuditFilter{From: from, To: to})
	require.NotEmpty(t, window)
	for _, e := range window {
		require.False(t, e.Time.Before(from), "from is inclusive")
		require.True(t, e.Time.Before(to), "to is exclusive")
	}
	var want int
	for _, e := range list(schemas.AuditFilter{}) {
		if !e.Time.Before(from) && e.Time.Before(to) {
			want++
		}
	}
	require.Len(t, window, want)

	both := list(schemas.AuditFilter{Actor: actors[0].String(), Action: "POST /x", From: from})
	for _, e := range both {
		require.Equal(t, actors[0], e.ActorID)
		require.Equal(t, "POST /x", e.Action)
		require.False(t, e.Time.Before(from))
	}
	require.NotEmpty(t, both)
}

func TestListAuditPagination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	seedAudit(t, store, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 23, []uuid.UUID{uuid.New(), uuid.New()})

	all, _, err := store.ListAudit(ctx, schemas.AuditFilter{Limit: 200})
	require.NoError(t, err)
	require.Len(t, all, 23)
	for i := 1; i < len(all); i++ {
		prev, cur := all[i-1], all[i]
		require.True(t, prev.Time.After(cur.Time) || (prev.Time.Equal(cur.Time) && prev.ID > cur.ID),
			"newest first, ties broken by id")
	}

	for _, size := range []int{1, 5, 7, 23} {
		var (
			got    []schemas.AuditEntry
			cursor string
			pages  int
		)
		for {
			page, next, err := store.ListAudit(ctx, schemas.AuditFilter{Limit: size, Cursor: cursor})
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), size)
			got = append(got, page...)
			pages++
			if next == "" {
				break
			}
			cursor = next
		}
		require.Equal(t, all, got, "page size %d: no duplicates, no gaps", size)
		require.Equal(t, (23+size-1)/size, pages)
	}

	// A page size of 0 is the default, above the maximum is the maximum.
	page, _, err := store.ListAudit(ctx, schemas.AuditFilter{Limit: 0})
	require.NoError(t, err)
	require.Len(t, page, 23)

	for _, bad := range []string{"garbage!", "YTEuMQ", "ZTEuMTI"} { // not base64; "a1.1"; an events cursor
		_, _, err := store.ListAudit(ctx, schemas.AuditFilter{Cursor: bad})
		require.ErrorIs(t, err, schemas.ErrInvalidCursor, bad)
	}
}

func TestStreamAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	// 1234 rows in three batches, with ties at the batch boundaries.
	_, err := pool.Exec(ctx, `INSERT INTO audit_log (occurred_at, method, route, action, status, request_id)
		SELECT '2026-01-01'::timestamptz + (i / 4) * interval '1 second', 'POST', '/x',
			CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, 201, 'req-' || i
		FROM generate_series(1, 1234) AS i`)
	require.NoError(t, err)

	var got []schemas.AuditEntry
	require.NoError(t, store.StreamAudit(ctx, schemas.AuditFilter{Limit: 3}, func(e schemas.AuditEntry) error {
		got = append(got, e)
		return nil
	}))
	require.Len(t, got, 1234, "Limit does not cap a stream")
	seen := map[int64]bool{}
	for i, e := range got {
		require.False(t, seen[e.ID])
		seen[e.ID] = true
		if i > 0 {
			prev := got[i-1]
			require.True(t, prev.Time.After(e.Time) || (prev.Time.Equal(e.Time) && prev.ID > e.ID))
		}
	}

	n := 0
	require.NoError(t, store.StreamAudit(ctx, schemas.AuditFilter{Action: "odd"}, func(e schemas.AuditEntry) error {
		require.Equal(t, "odd", e.Action)
		n++
		return nil
	}))
	require.Equal(t, 617, n)

	stop := errors.New("enough")
	n = 0
	err = store.StreamAudit(ctx, schemas.AuditFilter{}, func(schemas.AuditEntry) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 10, n)

	require.ErrorIs(t, store.StreamAudit(ctx, schemas.AuditFilter{Cursor: "nope"}, func(schemas.AuditEntry) error { return nil }),
		schemas.ErrInvalidCursor)
}

// BenchmarkAuditWrite measures one audit insert against real PostgreSQL:
// "serial" is the latency of one write, "parallel" the throughput of many
// concurrent writers (GOMAXPROCS goroutines) through one pool.
func BenchmarkAuditWrite(b *testing.B) {
	ctx := context.Background()
	pool := testenv.DB(b)
	store := &schemas.Store{Pool: pool}
	entry := schemas.AuditEntry{
		ActorID: uuid.New(), ActorUsername: "bench", ActorRole: "admin",
		ClientIP: netip.MustParseAddr("10.1.2.3"), Method: "PATCH", Route: "/api/admin/users/{id}",
		Action: "PATCH /api/admin/users/{id}", TargetID: uuid.NewString(), Status: 200,
		RequestID: uuid.NewString(), Details: json.RawMessage(`{"fields":["role"]}`),
	}
	require.NoError(b, store.InsertAudit(ctx, entry)) // warm the pool and the plan cache

	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := store.InsertAudit(ctx, entry); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := store.InsertAudit(ctx, entry); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
