package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/clientip"
	"github.com/streamspace/enterprise/schemas"
)

// alertTrustLoopback makes the bundle's server trust the test client as a
// proxy, so X-Forwarded-For chooses the client address of each request.
func alertTrustLoopback(b *apiBundle) {
	b.t.Helper()
	r, err := clientip.New([]string{"127.0.0.1", "::1"})
	require.NoError(b.t, err)
	b.server.deps.ClientIP = r
}

// alertLogin posts a login as from address (X-Forwarded-For; "" for none)
// with a User-Agent, and returns the status.
func alertLogin(b *apiBundle, username, password, address, userAgent string) int {
	b.t.Helper()
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	require.NoError(b.t, err)
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/api/auth/login", bytes.NewReader(body))
	require.NoError(b.t, err)
	if address != "" {
		req.Header.Set("X-Forwarded-For", address)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := b.srv.Client().Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// alertList is GET /api/security/alerts?query as token.
func alertList(b *apiBundle, token, query string) []alertJSON {
	b.t.Helper()
	var out alertListResponse
	b.callJSON("GET", "/api/security/alerts?"+query, token, nil, http.StatusOK, &out)
	return out.Alerts
}

// alertEvents is the security.alert events about one alert in the outbox.
func alertEvents(b *apiBundle, alertID int64) []schemas.SecurityAlertData {
	b.t.Helper()
	rows, err := b.store.Pool.Query(context.Background(), `SELECT payload FROM events
		WHERE type = $1 AND payload->>'alert_id' = $2 ORDER BY seq`,
		string(schemas.EventSecurityAlert), strconv.FormatInt(alertID, 10))
	require.NoError(b.t, err)
	defer rows.Close()
	var out []schemas.SecurityAlertData
	for rows.Next() {
		var raw []byte
		require.NoError(b.t, rows.Scan(&raw))
		var d schemas.SecurityAlertData
		require.NoError(b.t, json.Unmarshal(raw, &d))
		out = append(out, d)
	}
	require.NoError(b.t, rows.Err())
	return out
}

// requireOneEvent checks that alert a was published once, as it is.
func requireOneEvent(b *apiBundle, a alertJSON) {
	b.t.Helper()
	events := alertEvents(b, a.ID)
	require.Len(b.t, events, 1, "security.alert events of alert %d", a.ID)
	want := schemas.SecurityAlertData{AlertID: strconv.FormatInt(a.ID, 10), Kind: a.Kind, Severity: a.Severity,
		Message: events[0].Message}
	if a.UserID != nil {
		want.UserID = a.UserID.String()
	}
	if a.IPAddress != nil {
		want.IPAddress = *a.IPAddress
	}
	require.Equal(b.t, want, events[0])
	require.NotEmpty(b.t, events[0].Message)
}

// alertRaise stores an alert directly, for the tests of the API itself.
func alertRaise(b *apiBundle, u testUser, kind, severity, key string) int64 {
	b.t.Helper()
	in := schemas.AlertInput{Kind: kind, Severity: severity, Message: "raised by a test", DedupKey: key,
		IP: netip.MustParseAddr("192.0.2.44")}
	if u.ID != uuid.Nil {
		in.UserID, in.Username = u.ID, u.Username
	}
	a, _, err := b.store.RaiseAlert(context.Background(), in)
	require.NoError(b.t, err)
	return a.ID
}

// Five wrong passwords for one account within 10 minutes raise one medium
// failed_login alert; more fold into it, and after it is resolved the burst
// raises a new one. An unknown account counts the same way.
func TestAlertFailedLoginPerAccount(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	for i := range loginFailuresPerAccount - 1 {
		require.Equal(t, 401, alertLogin(b, "Alice", "wrong password", "", "curl"), "attempt %d", i+1)
	}
	require.Empty(t, alertList(b, b.admin.Token, "kind=failed_login"), "4 failures are a typo, not an attack")

	require.Equal(t, 401, alertLogin(b, "alice", "wrong password", "", "curl"))
	alerts := alertList(b, b.user.Token, "")
	require.Len(t, alerts, 1, "alice sees the alert about her account")
	a := alerts[0]
	require.Equal(t, "failed_login", a.Kind)
	require.Equal(t, "medium", a.Severity)
	require.Equal(t, "open", a.Status)
	require.Equal(t, b.user.ID, *a.UserID)
	require.Equal(t, "alice", a.Username)
	require.Equal(t, "127.0.0.1", *a.IPAddress)
	require.Equal(t, 1, a.Count)
	require.Equal(t, "account", a.Details["scope"])
	require.EqualValues(t, 5, a.Details["failures"])
	require.Contains(t, a.Message, "5 failed logins")
	requireOneEvent(b, a)

	// More failures fold into the open alert: no new alert, no new event.
	require.Equal(t, 401, alertLogin(b, "alice", "wrong again", "", "curl"))
	require.Equal(t, 401, alertLogin(b, "alice", "and again", "", "curl"))
	alerts = alertList(b, b.admin.Token, "kind=failed_login")
	require.Len(t, alerts, 1)
	require.Equal(t, a.ID, alerts[0].ID)
	require.Equal(t, 3, alerts[0].Count)
	require.EqualValues(t, 7, alerts[0].Details["failures"])
	require.Len(t, alertEvents(b, a.ID), 1)

	// Resolved, the next failure in the burst is a new alert.
	b.callJSON("POST", fmt.Sprintf("/api/security/alerts/%d/resolve", a.ID), b.admin.Token,
		map[string]string{"note": "alice forgot her password"}, 200, nil)
	require.Equal(t, 401, alertLogin(b, "alice", "one more", "", "curl"))
	alerts = alertList(b, b.admin.Token, "kind=failed_login&status=open")
	require.Len(t, alerts, 1)
	require.NotEqual(t, a.ID, alerts[0].ID)
	requireOneEvent(b, alerts[0])

	// A correct password still logs in (the alert does not lock).
	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "", "curl"))

	// An account that does not exist: the alert names the tried username.
	for range loginFailuresPerAccount {
		require.Equal(t, 401, alertLogin(b, "mallory", "guess", "", "curl"))
	}
	alerts = alertList(b, b.admin.Token, "kind=failed_login&status=open")
	require.Len(t, alerts, 2)
	require.Nil(t, alerts[0].UserID)
	require.Equal(t, "mallory", alerts[0].Username)
	require.Equal(t, false, alerts[0].Details["account_exists"])
	requireOneEvent(b, alerts[0])
}

// Twenty failures from one address across accounts within 10 minutes (a
// password spray) raise one high failed_login alert for the address.
func TestAlertFailedLoginPerAddress(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	alertTrustLoopback(b)
	const sprayer = "198.51.100.7"
	for i := range loginFailuresPerAddress - 1 {
		require.Equal(t, 401, alertLogin(b, fmt.Sprintf("user%d", i), "Winter2026!", sprayer, "spray"))
	}
	require.Equal(t, 401, alertLogin(b, "alice", "Winter2026!", "198.51.100.8", "spray"), "another address")
	require.Empty(t, alertList(b, b.admin.Token, "kind=failed_login"))

	require.Equal(t, 401, alertLogin(b, "bob", "Winter2026!", sprayer, "spray"))
	alerts := alertList(b, b.admin.Token, "kind=failed_login")
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "high", a.Severity)
	require.Equal(t, sprayer, *a.IPAddress)
	require.Nil(t, a.UserID)
	require.Equal(t, "address", a.Details["scope"])
	require.EqualValues(t, 20, a.Details["failures"])
	require.Equal(t, "bob", a.Details["last_account"])
	requireOneEvent(b, a)
	require.Empty(t, alertList(b, b.other.Token, ""), "an address alert belongs to no user")

	require.Equal(t, 401, alertLogin(b, "carol", "Winter2026!", sprayer, "spray"))
	alerts = alertList(b, b.admin.Token, "kind=failed_login")
	require.Len(t, alerts, 1)
	require.Equal(t, 2, alerts[0].Count)

	// IPv6: the address is its /64, so rotating within it does not escape.
	for i := range loginFailuresPerAddress {
		require.Equal(t, 401, alertLogin(b, fmt.Sprintf("v6user%d", i), "x", fmt.Sprintf("2001:db8:7:7::%x", i+1), "spray"))
	}
	alerts = alertList(b, b.admin.Token, "kind=failed_login&severity=high")
	require.Len(t, alerts, 2)
	require.Equal(t, "2001:db8:7:7::/64", alerts[0].Details["address"])
	requireOneEvent(b, alerts[0])
}

// A login from an address or client never seen for the user raises an
// unusual_access alert (low; medium when both are new); the first login
// only records; IPv6 addresses are known by their /64.
func TestAlertUnusualAccess(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	alertTrustLoopback(b)
	const firefox, chrome, safari = "Mozilla/5.0 Firefox/140.0", "Mozilla/5.0 Chrome/141.0", "Mozilla/5.0 Safari/19.0"
	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "203.0.113.1", firefox))
	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "203.0.113.1", firefox))
	require.Empty(t, alertList(b, b.user.Token, ""), "the first login has nothing to compare with")

	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "203.0.113.1", chrome))
	alerts := alertList(b, b.user.Token, "")
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "unusual_access", a.Kind)
	require.Equal(t, "low", a.Severity)
	require.Equal(t, b.user.ID, *a.UserID)
	require.Equal(t, "203.0.113.1", *a.IPAddress)
	require.Equal(t, true, a.Details["new_client"])
	require.Equal(t, false, a.Details["new_address"])
	require.Equal(t, chrome, a.Details["user_agent"])
	require.Len(t, a.Details["client_hash"], 16)
	requireOneEvent(b, a)

	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "203.0.113.2", firefox))
	alerts = alertList(b, b.user.Token, "")
	require.Len(t, alerts, 2)
	a = alerts[0]
	require.Equal(t, "low", a.Severity)
	require.Equal(t, "203.0.113.2", *a.IPAddress)
	require.Equal(t, true, a.Details["new_address"])
	require.Equal(t, false, a.Details["new_client"])
	requireOneEvent(b, a)

	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "2001:db8:5:6::1", safari))
	alerts = alertList(b, b.user.Token, "")
	require.Len(t, alerts, 3)
	a = alerts[0]
	require.Equal(t, "medium", a.Severity, "a new address and a new client")
	require.Contains(t, a.Message, "2001:db8:5:6::/64")
	requireOneEvent(b, a)

	// Known again: the same /64, a known client; bob's first login.
	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "2001:db8:5:6::beef", safari))
	require.Equal(t, 200, alertLogin(b, "alice", testPassword, "203.0.113.1", chrome))
	require.Equal(t, 200, alertLogin(b, "bob", testPassword, "203.0.113.99", "bob's browser"))
	require.Len(t, alertList(b, b.admin.Token, "kind=unusual_access"), 3)
}

// Three admin requests refused to a user within 10 minutes raise one high
// privilege_escalation alert about them.
func TestAlertPrivilegeEscalationRefusals(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	for range adminRefusalsPerUser - 1 {
		resp, _ := b.call("GET", "/api/admin/users", b.user.Token, nil)
		require.Equal(t, 403, resp.StatusCode)
		resp, _ = b.call("GET", "/api/admin/audit", b.other.Token, nil)
		require.Equal(t, 403, resp.StatusCode)
	}
	require.Empty(t, alertList(b, b.admin.Token, ""), "two refusals each")

	resp, _ := b.call("DELETE", "/api/admin/users/"+b.admin.ID.String(), b.user.Token, nil)
	require.Equal(t, 403, resp.StatusCode)
	alerts := alertList(b, b.admin.Token, "kind=privilege_escalation")
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "high", a.Severity)
	require.Equal(t, b.user.ID, *a.UserID)
	require.Equal(t, "alice", a.Username)
	require.EqualValues(t, 3, a.Details["refused_requests"])
	require.Equal(t, "DELETE /api/admin/users/"+b.admin.ID.String(), a.Details["last_request"])
	requireOneEvent(b, a)

	// Trying to resolve it herself is one more refused admin request.
	resp, _ = b.call("POST", fmt.Sprintf("/api/security/alerts/%d/resolve", a.ID), b.user.Token, nil)
	require.Equal(t, 403, resp.StatusCode)
	got := alertList(b, b.user.Token, "")
	require.Len(t, got, 1)
	require.Equal(t, 2, got[0].Count)
	require.Len(t, alertEvents(b, a.ID), 1)
}

// An admin changing a user's role raises a medium privilege_escalation
// alert naming who did it, the user, and the old and new role.
func TestAlertPrivilegeEscalationRoleChange(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	path := "/api/admin/users/" + b.other.ID.String()
	b.callJSON("PATCH", path, b.admin.Token, map[string]string{"display_name": "Bob B."}, 200, nil)
	require.Empty(t, alertList(b, b.admin.Token, ""), "no role change, no alert")

	b.callJSON("PATCH", path, b.admin.Token, map[string]string{"role": "admin"}, 200, nil)
	alerts := alertList(b, b.admin.Token, "kind=privilege_escalation")
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "medium", a.Severity)
	require.Equal(t, b.other.ID, *a.UserID)
	require.Equal(t, "bob", a.Username)
	require.Equal(t, "root-admin changed the role of bob from user to admin", a.Message)
	require.Equal(t, map[string]any{"actor_id": b.admin.ID.String(), "actor_username": "root-admin",
		"target_id": b.other.ID.String(), "target_username": "bob", "old_role": "user", "new_role": "admin"}, a.Details)
	requireOneEvent(b, a)
	require.Len(t, alertList(b, b.other.Token, "user_id="+b.other.ID.String()), 1, "bob, now an admin, sees it")

	b.callJSON("PATCH", path, b.admin.Token, map[string]string{"role": "user"}, 200, nil)
	alerts = alertList(b, b.admin.Token, "kind=privilege_escalation")
	require.Len(t, alerts, 2, "a demotion is its own alert")
	require.Equal(t, "admin", alerts[0].Details["old_role"])
	require.Equal(t, "user", alerts[0].Details["new_role"])
	requireOneEvent(b, alerts[0])
}

// Users see only the alerts about themselves; admins see all and filter.
func TestAlertVisibility(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	aliceAlert := alertRaise(b, b.user, schemas.AlertMFAChange, schemas.SeverityMedium, "a1")
	bobAlert := alertRaise(b, b.other, schemas.AlertIPViolation, schemas.SeverityHigh, "b1")
	anonAlert := alertRaise(b, testUser{}, schemas.AlertFailedLogin, schemas.SeverityHigh, "n1")

	ids := func(list []alertJSON) []int64 {
		out := []int64{}
		for _, a := range list {
			out = append(out, a.ID)
		}
		return out
	}
	require.Equal(t, []int64{aliceAlert}, ids(alertList(b, b.user.Token, "")))
	require.Equal(t, []int64{aliceAlert}, ids(alertList(b, b.user.Token, "user_id="+b.user.ID.String())))
	require.Equal(t, []int64{bobAlert}, ids(alertList(b, b.other.Token, "")))
	require.Equal(t, []int64{anonAlert, bobAlert, aliceAlert}, ids(alertList(b, b.admin.Token, "")))
	require.Equal(t, []int64{bobAlert}, ids(alertList(b, b.admin.Token, "user_id="+b.other.ID.String())))
	require.Equal(t, []int64{anonAlert, bobAlert}, ids(alertList(b, b.admin.Token, "severity=high")))
	require.Equal(t, []int64{aliceAlert}, ids(alertList(b, b.admin.Token, "kind=mfa_change&status=open")))

	var page alertListResponse
	b.callJSON("GET", "/api/security/alerts?limit=2", b.admin.Token, nil, 200, &page)
	require.Equal(t, []int64{anonAlert, bobAlert}, ids(page.Alerts))
	require.NotNil(t, page.NextCursor)
	b.callJSON("GET", "/api/security/alerts?limit=2&cursor="+*page.NextCursor, b.admin.Token, nil, 200, &page)
	require.Equal(t, []int64{aliceAlert}, ids(page.Alerts))
	require.Nil(t, page.NextCursor)

	resp, data := b.call("GET", "/api/security/alerts?user_id="+b.other.ID.String(), b.user.Token, nil)
	require.Equal(t, 403, resp.StatusCode, "%s", data)
	for _, q := range []string{"kind=burglary", "status=closed", "severity=extreme", "user_id=bob", "limit=0",
		"cursor=nonsense", "colour=red"} {
		resp, data := b.call("GET", "/api/security/alerts?"+q, b.admin.Token, nil)
		require.Equal(t, 400, resp.StatusCode, "%s: %s", q, data)
		require.Equal(t, "VALIDATION_ERROR", errorCode(t, data))
	}

	var got alertJSON
	b.callJSON("GET", fmt.Sprintf("/api/security/alerts/%d", aliceAlert), b.user.Token, nil, 200, &got)
	require.Equal(t, aliceAlert, got.ID)
	require.Equal(t, "192.0.2.44", *got.IPAddress)
	for _, path := range []string{fmt.Sprint(bobAlert), fmt.Sprint(anonAlert), "999999", "abc", "-1"} {
		resp, data := b.call("GET", "/api/security/alerts/"+path, b.user.Token, nil)
		require.Equal(t, 404, resp.StatusCode, "%s: %s", path, data)
	}
	b.callJSON("GET", fmt.Sprintf("/api/security/alerts/%d", bobAlert), b.admin.Token, nil, 200, &got)
	require.Equal(t, "bob", got.Username)
}

// A user acknowledges their own alerts; only admins resolve; a resolved
// alert takes neither again. Both are audited under their action names.
func TestAlertAcknowledgeResolvePermissions(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	id := alertRaise(b, b.user, schemas.AlertUnusualAccess, schemas.SeverityLow, "u1")
	path := fmt.Sprintf("/api/security/alerts/%d", id)

	resp, data := b.call("POST", path+"/acknowledge", b.other.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "bob cannot see alice's alert: %s", data)
	var a alertJSON
	b.callJSON("POST", path+"/acknowledge", b.user.Token, nil, 200, &a)
	require.Equal(t, "acknowledged", a.Status)
	require.Equal(t, b.user.ID, *a.AcknowledgedBy)
	require.NotNil(t, a.AcknowledgedAt)
	b.callJSON("POST", path+"/acknowledge", b.admin.Token, nil, 200, &a)
	require.Equal(t, b.user.ID, *a.AcknowledgedBy, "the first acknowledgement stays")

	resp, data = b.call("POST", path+"/resolve", b.user.Token, map[string]string{"note": "mine"})
	require.Equal(t, 403, resp.StatusCode, "%s", data)
	resp, data = b.call("POST", path+"/resolve", b.admin.Token, map[string]string{"note": string(make([]byte, maxResolutionNote+1))})
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	b.callJSON("POST", path+"/resolve", b.admin.Token, map[string]string{"note": "alice on a new laptop"}, 200, &a)
	require.Equal(t, "resolved", a.Status)
	require.Equal(t, b.admin.ID, *a.ResolvedBy)
	require.Equal(t, "alice on a new laptop", a.ResolutionNote)
	require.NotNil(t, a.ResolvedAt)

	for _, p := range []string{"/resolve", "/acknowledge"} {
		resp, data = b.call("POST", path+p, b.admin.Token, nil)
		require.Equal(t, 409, resp.StatusCode, "%s: %s", p, data)
		require.Equal(t, "CONFLICT", errorCode(t, data))
	}
	resp, _ = b.call("POST", "/api/security/alerts/424242/resolve", b.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode)
	var got alertJSON
	b.callJSON("GET", path, b.user.Token, nil, 200, &got)
	require.Equal(t, a, got)

	// The audit entry is written after the answer: poll for it.
	want := map[string]int{"security.alert.acknowledge 404": 1, "security.alert.acknowledge 200": 2,
		"security.alert.acknowledge 409": 1, "security.alert.resolve 400": 1, "security.alert.resolve 200": 1,
		"security.alert.resolve 409": 1}
	var audited map[string]int
	matches := func() bool {
		rows, err := b.store.Pool.Query(context.Background(), `SELECT action, status FROM audit_log
			WHERE action LIKE 'security.alert.%' AND target_id = $1`, strconv.FormatInt(id, 10))
		if err != nil {
			return false
		}
		defer rows.Close()
		audited = map[string]int{}
		for rows.Next() {
			var action string
			var status int
			if rows.Scan(&action, &status) != nil {
				return false
			}
			audited[fmt.Sprintf("%s %d", action, status)]++
		}
		return rows.Err() == nil && fmt.Sprint(audited) == fmt.Sprint(want)
	}
	require.Eventually(t, matches, 5*time.Second, 20*time.Millisecond, "audit entries")
	require.Equal(t, want, audited)
}

// rbacAlertPath is a path under the user's (alice's) alert, one per bundle.
func rbacAlertPath(suffix string) func(*apiBundle) string {
	return func(b *apiBundle) string {
		id := rbacOnce(b, "alert", func() string {
			return strconv.FormatInt(alertRaise(b, b.user, schemas.AlertMFAChange, schemas.SeverityMedium, "rbac"), 10)
		})
		return "/api/security/alerts/" + id + suffix
	}
}

// rbacNewAlertPath is a path under a new alert of the user, for a call that
// closes it.
func rbacNewAlertPath(suffix string) func(*apiBundle) string {
	return func(b *apiBundle) string {
		id := alertRaise(b, b.user, schemas.AlertMFAChange, schemas.SeverityMedium, fmt.Sprint("rbac-", seq.Add(1)))
		return fmt.Sprintf("/api/security/alerts/%d%s", id, suffix)
	}
}
