package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

type auditListBody struct {
	Entries    []auditEntryJSON `json:"entries"`
	NextCursor *string          `json:"next_cursor"`
}

func (h *auditHarness) listAudit(t *testing.T, query url.Values) auditListBody {
	t.Helper()
	resp, data := h.do(t, http.MethodGet, "/api/admin/audit?"+query.Encode(), fakeToken(RoleAdmin, "root"), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	var out auditListBody
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&out))
	require.NotNil(t, out.Entries, "entries is an array, never null")
	return out
}

// seedAuditAPI writes n entries, one second apart from base, alternating
// between two actors and two actions.
func seedAuditAPI(t *testing.T, store *schemas.Store, base time.Time, n int) (alice, bob uuid.UUID) {
	t.Helper()
	alice, bob = uuid.New(), uuid.New()
	for i := range n {
		e := schemas.AuditEntry{Time: base.Add(time.Duration(i) * time.Second), Method: "POST", Route: "/x",
			Action: "POST /x", Status: 201, RequestID: fmt.Sprint("seed-", i), ClientIP: netip.MustParseAddr("10.0.0.1")}
		if i%2 == 0 {
			e.ActorID, e.ActorUsername, e.ActorRole = alice, "Alice", "admin"
		} else {
			e.ActorID, e.ActorUsername, e.ActorRole, e.Action = bob, "bob", "user", "auth.login"
		}
		require.NoError(t, store.InsertAudit(context.Background(), e))
	}
	return alice, bob
}

func TestAuditListAPI(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	h := newAuditHarness(t, pool)
	base := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	alice, _ := seedAuditAPI(t, h.store, base, 11)

	all := h.listAudit(t, nil)
	require.Len(t, all.Entries, 11)
	require.Nil(t, all.NextCursor)
	first := all.Entries[0]
	require.Equal(t, "seed-10", first.RequestID, "newest first")
	require.Equal(t, base.Add(10*time.Second), first.Time)
	require.Equal(t, alice, *first.ActorID)
	require.Equal(t, "Alice", *first.ActorUsername)
	require.Equal(t, "admin", *first.ActorRole)
	require.Equal(t, "10.0.0.1", *first.ClientIP)
	require.Nil(t, first.TargetID)
	require.JSONEq(t, `{}`, string(first.Details))

	t.Run("Filters", func(t *testing.T) {
		byName := h.listAudit(t, url.Values{"actor": {"alice"}})
		require.Len(t, byName.Entries, 6)
		byID := h.listAudit(t, url.Values{"actor": {alice.String()}})
		require.Equal(t, byName, byID)
		logins := h.listAudit(t, url.Values{"action": {"auth.login"}})
		require.Len(t, logins.Entries, 5)
		for _, e := range logins.Entries {
			require.Equal(t, "auth.login", e.Action)
		}
		window := h.listAudit(t, url.Values{
			"from": {base.Add(2 * time.Second).Format(time.RFC3339)},
			"to":   {base.Add(5 * time.Second).In(time.FixedZone("x", 3600)).Format(time.RFC3339)},
		})
		require.Len(t, window.Entries, 3) // seconds 2, 3 and 4
		require.Equal(t, "seed-4", window.Entries[0].RequestID)
		require.Equal(t, "seed-2", window.Entries[2].RequestID)
	})

	t.Run("Pagination", func(t *testing.T) {
		var got []auditEntryJSON
		q := url.Values{"limit": {"3"}}
		pages := 0
		for {
			page := h.listAudit(t, q)
			require.LessOrEqual(t, len(page.Entries), 3)
			got = append(got, page.Entries...)
			pages++
			if page.NextCursor == nil {
				break
			}
			q.Set("cursor", *page.NextCursor)
		}
		require.Equal(t, 4, pages)
		require.Equal(t, all.Entries, got, "no duplicates, no gaps")
	})

	t.Run("BadParameters", func(t *testing.T) {
		for query, field := range map[string]string{
			"limit=0":        "limit",
			"limit=201":      "limit",
			"limit=ten":      "limit",
			"from=yesterday": "from",
			"to=2026-02-01":  "to",
			"from=2026-02-02T00:00:00Z&to=2026-02-01T00:00:00Z": "to",
			"cursor=not-a-cursor":                               "cursor",
			"actr=alice":                                        "actr",
			"actor=a&actor=b":                                   "actor",
		} {
			resp, data := h.do(t, http.MethodGet, "/api/admin/audit?"+query, fakeToken(RoleAdmin, "root"), "")
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
			e := decodeEnvelope(t, data)
			require.Equal(t, "VALIDATION_ERROR", e.Error.Code, query)
			require.Equal(t, field, e.Error.Details["field"], query)
		}
	})

	t.Run("Access", func(t *testing.T) {
		resp, _ := h.do(t, http.MethodGet, "/api/admin/audit", "", "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp, _ = h.do(t, http.MethodGet, "/api/admin/audit", fakeToken(RoleUser, "bob"), "")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
}

func TestAuditExportCSV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	h := newAuditHarness(t, pool)
	base := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	seedAuditAPI(t, h.store, base, 4)
	evil := schemas.AuditEntry{
		Time: base.Add(time.Hour), ActorID: uuid.New(), ActorUsername: `=HYPERLINK("http://evil.example","x")`,
		ActorRole: "user", Method: "DELETE", Route: "/x/{id}", Action: "+cmd|' /C calc'!A0", TargetID: "@SUM(A1)",
		Status: 204, RequestID: "-evil", Details: json.RawMessage(`{"note":"a, \"quoted\"\nsecond line"}`),
	}
	require.NoError(t, h.store.InsertAudit(ctx, evil))

	resp, data := h.do(t, http.MethodGet, "/api/admin/audit/export?format=csv", fakeToken(RoleAdmin, "root"), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	require.Equal(t, "text/csv; charset=utf-8; header=present", resp.Header.Get("Content-Type"))
	require.Regexp(t, `^attachment; filename="streamspace-audit-\d{8}T\d{6}Z\.csv"$`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	body := string(data)
	require.True(t, strings.HasSuffix(body, "\r\n"), "RFC 4180 line ends")
	require.True(t, strings.HasPrefix(body,
		"id,time,actor_id,actor_username,actor_role,client_ip,method,route,action,target_id,status,request_id,details\r\n"))
	// RFC 4180 quoting: the cell holding quotes is quoted, its quotes doubled.
	require.Contains(t, body, `"'=HYPERLINK(""http://evil.example"",""x"")"`)

	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 1+5)
	require.Equal(t, auditCSVHeader, records[0])
	row := records[1] // newest first: the evil one
	cell := map[string]string{}
	for i, name := range records[0] {
		cell[name] = row[i]
	}
	require.Equal(t, `'=HYPERLINK("http://evil.example","x")`, cell["actor_username"])
	require.Equal(t, `'+cmd|' /C calc'!A0`, cell["action"])
	require.Equal(t, `'@SUM(A1)`, cell["target_id"])
	require.Equal(t, `'-evil`, cell["request_id"])
	require.Equal(t, "DELETE", cell["method"])
	require.Equal(t, "204", cell["status"])
	require.Equal(t, evil.ActorID.String(), cell["actor_id"])
	require.Equal(t, "2026-02-01T13:00:00Z", cell["time"])
	require.Empty(t, cell["client_ip"])
	var details map[string]string
	require.NoError(t, json.Unmarshal([]byte(cell["details"]), &details))
	require.Equal(t, "a, \"quoted\"\nsecond line", details["note"])

	last := records[5]
	require.Equal(t, "seed-0", last[11])
	require.Equal(t, "10.0.0.1", last[5])

	t.Run("Filtered", func(t *testing.T) {
		resp, data := h.do(t, http.MethodGet, "/api/admin/audit/export?format=csv&action=auth.login",
			fakeToken(RoleAdmin, "root"), "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		records, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		require.NoError(t, err)
		require.Len(t, records, 1+2)
	})
	t.Run("Empty", func(t *testing.T) {
		resp, data := h.do(t, http.MethodGet, "/api/admin/audit/export?format=csv&actor=nobody",
			fakeToken(RoleAdmin, "root"), "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, strings.Join(auditCSVHeader, ",")+"\r\n", string(data))
	})
}

func TestAuditExportJSON(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	h := newAuditHarness(t, pool)
	// More rows than one read batch, to cross batch boundaries.
	_, err := pool.Exec(ctx, `INSERT INTO audit_log (occurred_at, actor_username, method, route, action, status, request_id, details)
		SELECT '2026-01-01'::timestamptz + (i / 3) * interval '1 second', 'user' || (i % 4), 'POST', '/x', 'POST /x',
			201, 'req-' || i, jsonb_build_object('i', i)
		FROM generate_series(1, 1201) AS i`)
	require.NoError(t, err)

	resp, data := h.do(t, http.MethodGet, "/api/admin/audit/export?format=json", fakeToken(RoleAdmin, "root"), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Regexp(t, `^attachment; filename="streamspace-audit-\d{8}T\d{6}Z\.json"$`, resp.Header.Get("Content-Disposition"))
	var entries []auditEntryJSON
	require.NoError(t, json.Unmarshal(data, &entries), "one JSON array")
	require.Equal(t, 1201, len(entries))
	seen := map[int64]bool{}
	for i, e := range entries {
		require.False(t, seen[e.ID])
		seen[e.ID] = true
		if i > 0 {
			prev := entries[i-1]
			require.True(t, prev.Time.After(e.Time) || (prev.Time.Equal(e.Time) && prev.ID > e.ID))
		}
	}
	require.Nil(t, entries[0].ActorID)
	require.NotNil(t, entries[0].ActorUsername)

	resp, data = h.do(t, http.MethodGet, "/api/admin/audit/export?format=json&actor=USER1", fakeToken(RoleAdmin, "root"), "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(data, &entries))
	require.Equal(t, 301, len(entries)) // i % 4 == 1 for i in 1..1201

	resp, data = h.do(t, http.MethodGet, "/api/admin/audit/export?format=json&actor=nobody", fakeToken(RoleAdmin, "root"), "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(data, &entries))
	require.Empty(t, entries)
	require.NotNil(t, entries, "an empty export is []")

	for query, field := range map[string]string{
		"":                      "format",
		"format=xml":            "format",
		"format=csv&from=2026":  "from",
		"format=csv&cursor=abc": "cursor",
		"format=json&limit=10":  "limit",
	} {
		resp, data := h.do(t, http.MethodGet, "/api/admin/audit/export?"+query, fakeToken(RoleAdmin, "root"), "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
		require.Equal(t, field, decodeEnvelope(t, data).Error.Details["field"], query)
	}
	resp, _ = h.do(t, http.MethodGet, "/api/admin/audit/export?format=csv", fakeToken(RoleUser, "bob"), "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestCSVSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":        "",
		"plain":   "plain",
		"=1+2":    "'=1+2",
		"+1":      "'+1",
		"-1":      "'-1",
		"@x":      "'@x",
		"\tx":     "'\tx",
		"\rx":     "'\rx",
		"a=b":     "a=b",
		"'quoted": "'quoted",
	} {
		require.Equal(t, want, csvSafe(in), "%q", in)
	}
}
