package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/streamspace/enterprise/internal/clientip"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
	"github.com/streamspace/enterprise/worker"
	"github.com/streamspace/enterprise/workflows"
)

// allowlistAPI is the real router over a fresh database, with a clock the
// allowlist judges expiry by that a test can move forward.
type allowlistAPI struct {
	*apiBundle
	offset atomic.Int64 // nanoseconds added to the real time
}

type allowlistOptions struct {
	// trustProxy makes the server trust the test client (127.0.0.1) as a
	// proxy, so X-Forwarded-For chooses each request's client address;
	// otherwise the server trusts no proxy, like newAPI's.
	trustProxy bool
	workflows  *workflows.Client // nil: no Temporal
}

func newAllowlistAPI(t *testing.T, opts allowlistOptions) *allowlistAPI {
	t.Helper()
	return allowlistServer(t, newAPI(t), opts)
}

// allowlistServer replaces the bundle's server with one built for opts.
func allowlistServer(t *testing.T, b *apiBundle, opts allowlistOptions) *allowlistAPI {
	t.Helper()
	resolver, err := clientip.New(nil)
	if opts.trustProxy {
		resolver, err = clientip.New([]string{"127.0.0.1", "::1"})
	}
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := New(b.server.cfg, Deps{Logger: logger, Registry: prometheus.NewRegistry(), Store: b.store,
		Tokens: b.tokens, ClientIP: resolver, Workflows: opts.workflows})
	a := &allowlistAPI{apiBundle: b}
	s.allowlist.now = a.clock
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	b.srv, b.server = srv, s
	return a
}

func (a *allowlistAPI) clock() time.Time { return time.Now().Add(time.Duration(a.offset.Load())) }

// advance moves the allowlist's clock forward by d.
func (a *allowlistAPI) advance(d time.Duration) { a.offset.Add(int64(d)) }

// from sends a request as from addr (X-Forwarded-For; "" for none).
func (a *allowlistAPI) from(addr, method, path, token string, body any) (*http.Response, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(a.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	require.NoError(a.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return resp, data
}

// me is GET /api/me as u from addr: its status.
func (a *allowlistAPI) me(addr string, u testUser) int {
	a.t.Helper()
	resp, _ := a.from(addr, "GET", "/api/me", u.Token, nil)
	return resp.StatusCode
}

// requireRefused checks that u is refused from addr with IP_NOT_ALLOWED
// naming the address.
func (a *allowlistAPI) requireRefused(addr string, u testUser) {
	a.t.Helper()
	resp, data := a.from(addr, "GET", "/api/me", u.Token, nil)
	require.Equal(a.t, http.StatusForbidden, resp.StatusCode, "%s from %s: %s", u.Username, addr, data)
	var e errorBody
	require.NoError(a.t, json.Unmarshal(data, &e), "%s", data)
	require.Equal(a.t, "IP_NOT_ALLOWED", e.Error.Code)
	require.Contains(a.t, e.Error.Message, "not on the IP allowlist")
	require.Equal(a.t, addr, e.Error.Details["client_ip"])
}

// create posts an entry as u from addr and checks the status; on 201 it
// returns the entry.
func (a *allowlistAPI) create(addr string, u testUser, body map[string]any, want int) (ipEntryJSON, errorBody) {
	a.t.Helper()
	resp, data := a.from(addr, "POST", "/api/security/ip-whitelist", u.Token, body)
	require.Equal(a.t, want, resp.StatusCode, "create %v as %s from %s: %s", body, u.Username, addr, data)
	var e ipEntryJSON
	var eb errorBody
	if want == http.StatusCreated {
		require.NoError(a.t, json.Unmarshal(data, &e))
		require.Equal(a.t, fmt.Sprintf("/api/security/ip-whitelist/%d", e.ID), resp.Header.Get("Location"))
	} else {
		require.NoError(a.t, json.Unmarshal(data, &eb), "%s", data)
	}
	return e, eb
}

func entryPath(id int64) string { return "/api/security/ip-whitelist/" + strconv.FormatInt(id, 10) }

func TestIPAllowlistIPv4AddressAndCIDR(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	// No entries: everyone from anywhere.
	require.Equal(t, 200, a.me("198.51.100.1", a.user))

	single, _ := a.create("192.168.1.100", a.user, map[string]any{"ip_address": "192.168.1.100", "description": "desk"}, 201)
	require.Equal(t, "192.168.1.100", single.IPAddress)
	require.Equal(t, "user", single.Scope)
	require.Equal(t, a.user.ID, *single.UserID)
	require.Equal(t, "desk", single.Description)
	require.True(t, single.Enabled)
	require.True(t, single.Active)
	require.False(t, single.Granted)
	require.Nil(t, single.ExpiresAt)
	require.Equal(t, a.user.ID, *single.CreatedBy)

	require.Equal(t, 200, a.me("192.168.1.100", a.user))
	a.requireRefused("192.168.1.101", a.user)
	// Only alice narrowed her own access.
	require.Equal(t, 200, a.me("192.168.1.101", a.other))

	cidr, _ := a.create("192.168.1.100", a.user, map[string]any{"ip_address": "10.0.0.0/24", "description": "VPN subnet"}, 201)
	require.Equal(t, "10.0.0.0/24", cidr.IPAddress)
	require.Equal(t, 200, a.me("10.0.0.77", a.user))
	require.Equal(t, 200, a.me("10.0.0.255", a.user))
	a.requireRefused("10.0.1.1", a.user)

	// The same network written another way is the same entry.
	_, e := a.create("10.0.0.1", a.user, map[string]any{"ip_address": "192.168.1.100/32"}, 409)
	require.Equal(t, "CONFLICT", e.Error.Code)
	// A disabled entry admits no one.
	off, _ := a.create("10.0.0.1", a.user, map[string]any{"ip_address": "172.16.0.0/12", "enabled": false}, 201)
	require.False(t, off.Enabled)
	require.False(t, off.Active)
	a.requireRefused("172.16.5.5", a.user)
}

func TestIPAllowlistIPv6(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	g, _ := a.create("2001:db8:abcd::1", a.admin, map[string]any{"ip_address": "2001:DB8:ABCD::/48", "scope": "global"}, 201)
	require.Equal(t, "2001:db8:abcd::/48", g.IPAddress)
	require.Equal(t, "global", g.Scope)
	require.Nil(t, g.UserID)

	require.Equal(t, 200, a.me("2001:db8:abcd:0:1::5", a.user))
	require.Equal(t, 200, a.me("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", a.user))
	a.requireRefused("2001:db8:abce::1", a.user)
	a.requireRefused("192.0.2.1", a.user)

	// A single IPv6 address is shown without /128; IPv4-mapped forms are
	// stored as the IPv4 address they carry, and match IPv4 clients.
	one, _ := a.create("2001:db8:abcd::1", a.admin, map[string]any{"ip_address": "2001:db8:ffff::1", "scope": "global"}, 201)
	require.Equal(t, "2001:db8:ffff::1", one.IPAddress)
	mapped, _ := a.create("2001:db8:abcd::1", a.admin, map[string]any{"ip_address": "::ffff:198.51.100.0/120", "scope": "global"}, 201)
	require.Equal(t, "198.51.100.0/24", mapped.IPAddress)
	require.Equal(t, 200, a.me("2001:db8:ffff::1", a.user))
	require.Equal(t, 200, a.me("198.51.100.9", a.user))
	require.Equal(t, 200, a.me("::ffff:198.51.100.9", a.user))
	a.requireRefused("2001:db8:ffff::2", a.user)
}

func TestIPAllowlistGlobalAndPerUser(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global", "description": "corp"}, 201)
	require.Equal(t, 200, a.me("10.2.3.4", a.user))
	require.Equal(t, 200, a.me("10.2.3.4", a.other))
	a.requireRefused("172.16.0.1", a.user)
	a.requireRefused("172.16.0.1", a.other)

	// Alice narrows her own access to part of the global list.
	a.create("10.5.0.1", a.user, map[string]any{"ip_address": "10.5.0.0/16"}, 201)
	require.Equal(t, 200, a.me("10.5.1.1", a.user))
	a.requireRefused("10.2.3.4", a.user)
	require.Equal(t, 200, a.me("10.2.3.4", a.other))

	// She cannot widen it: her entry outside the global list admits nothing
	// the global list refuses.
	a.create("10.5.0.1", a.user, map[string]any{"ip_address": "172.16.0.0/12"}, 201)
	a.requireRefused("172.16.0.1", a.user)
	// Nor touch the global list, nor add entries for others.
	_, e := a.create("10.5.0.1", a.user, map[string]any{"ip_address": "172.16.0.0/12", "scope": "global"}, 403)
	require.Equal(t, "FORBIDDEN", e.Error.Code)
	_, e = a.create("10.5.0.1", a.user, map[string]any{"ip_address": "172.16.0.0/12", "user_id": a.other.ID.String()}, 403)
	require.Equal(t, "FORBIDDEN", e.Error.Code)
	// Naming herself is the same as naming nobody.
	self, _ := a.create("10.5.0.1", a.user, map[string]any{"ip_address": "10.6.0.0/16", "user_id": a.user.ID.String(), "scope": "user"}, 201)
	require.False(t, self.Granted)
	require.Equal(t, 200, a.me("10.6.0.1", a.user))
}

func TestIPAllowlistAdminGrant(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 201)
	a.requireRefused("198.51.100.7", a.user)

	// Granting another user an address outside the global list does not
	// risk the admin's own access: no force needed from anywhere inside.
	grant, _ := a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "198.51.100.7", "user_id": a.user.ID.String(),
		"description": "travel"}, 201)
	require.True(t, grant.Granted)
	require.Equal(t, a.user.ID, *grant.UserID)
	require.Equal(t, a.admin.ID, *grant.CreatedBy)

	require.Equal(t, 200, a.me("198.51.100.7", a.user))
	require.Equal(t, 200, a.me("10.9.9.9", a.user), "a grant does not take away the normal addresses")
	a.requireRefused("198.51.100.7", a.other)
	a.requireRefused("198.51.100.7", a.admin)

	// A grant admits its user even when they narrowed their own list.
	a.create("10.9.9.9", a.user, map[string]any{"ip_address": "10.9.0.0/16"}, 201)
	require.Equal(t, 200, a.me("198.51.100.7", a.user))

	// Alice sees her grant but cannot change or delete it.
	var list ipEntryListResponse
	resp, data := a.from("10.9.9.9", "GET", "/api/security/ip-whitelist", a.user.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &list))
	require.Len(t, list.Entries, 2)
	require.Contains(t, []int64{list.Entries[0].ID, list.Entries[1].ID}, grant.ID)
	resp, data = a.from("10.9.9.9", "GET", entryPath(grant.ID), a.user.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	resp, data = a.from("10.9.9.9", "PATCH", entryPath(grant.ID), a.user.Token, map[string]any{"ip_address": "0.0.0.0/0"})
	require.Equal(t, 403, resp.StatusCode, "%s", data)
	require.Equal(t, "FORBIDDEN", errorCode(t, data))
	resp, data = a.from("10.9.9.9", "DELETE", entryPath(grant.ID), a.user.Token, nil)
	require.Equal(t, 403, resp.StatusCode, "%s", data)

	// The admin revokes it.
	resp, data = a.from("10.1.1.1", "DELETE", entryPath(grant.ID), a.admin.Token, nil)
	require.Equal(t, 204, resp.StatusCode, "%s", data)
	a.requireRefused("198.51.100.7", a.user)
}

// A client that is not a trusted proxy cannot choose its address with
// X-Forwarded-For: the server (trusting no proxy, the default) judges the
// socket peer.
func TestIPAllowlistSpoofedForwardedFor(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{})
	// The admin's own address (127.0.0.1) is outside the list: forced.
	_, e := a.create("203.0.113.5", a.admin, map[string]any{"ip_address": "203.0.113.0/24", "scope": "global"}, 409)
	require.Equal(t, "LOCKOUT_RISK", e.Error.Code)
	require.Equal(t, "127.0.0.1", e.Error.Details["client_ip"], "the forged header was not believed")
	a.create("203.0.113.5", a.admin, map[string]any{"ip_address": "203.0.113.0/24", "scope": "global", "force": true}, 201)

	for _, forged := range []string{"203.0.113.5", "10.0.0.1, 203.0.113.5", "203.0.113.5, 127.0.0.1"} {
		resp, data := a.from(forged, "GET", "/api/me", a.user.Token, nil)
		require.Equal(t, 403, resp.StatusCode, "X-Forwarded-For %q: %s", forged, data)
		env := decodeEnvelope(t, data)
		require.Equal(t, "IP_NOT_ALLOWED", env.Error.Code)
		require.Equal(t, "127.0.0.1", env.Error.Details["client_ip"])
	}
}

func TestIPAllowlistSelfLockoutGuard(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	list := func() []schemas.IPEntry {
		entries, _, err := a.store.ListIPEntries(context.Background(), schemas.IPEntryFilter{})
		require.NoError(t, err)
		return entries
	}

	// An admin saving a global list without their own address.
	_, e := a.create("192.0.2.10", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 409)
	require.Equal(t, "LOCKOUT_RISK", e.Error.Code)
	require.Equal(t, "192.0.2.10", e.Error.Details["client_ip"])
	require.Contains(t, e.Error.Message, "192.0.2.10")
	require.Empty(t, list(), "nothing was saved")
	require.Equal(t, 200, a.me("192.0.2.10", a.admin))

	forced, _ := a.create("192.0.2.10", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global", "force": true}, 201)
	a.requireRefused("192.0.2.10", a.admin)
	entries := auditActions(t, a.store, "security.ip_whitelist.create", 2) // the refused attempt and the forced one
	require.Equal(t, 409, entries[1].Status)
	require.Equal(t, 201, entries[0].Status)
	var details map[string]any
	require.NoError(t, json.Unmarshal(entries[0].Details, &details))
	require.Equal(t, true, details["force"])
	require.Equal(t, "10.0.0.0/8", details["cidr"])
	require.Equal(t, "global", details["scope"])

	// Changing the entry so it no longer covers the caller: refused unless forced.
	resp, data := a.from("10.0.0.1", "PATCH", entryPath(forced.ID), a.admin.Token, map[string]any{"ip_address": "10.1.0.0/16"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, "LOCKOUT_RISK", errorCode(t, data))
	resp, data = a.from("10.0.0.1", "PATCH", entryPath(forced.ID), a.admin.Token, map[string]any{"enabled": false})
	require.Equal(t, 200, resp.StatusCode, "disabling the only global entry opens the list: %s", data)
	resp, data = a.from("192.0.2.10", "PATCH", entryPath(forced.ID), a.admin.Token, map[string]any{"enabled": true})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	other, _ := a.create("192.0.2.10", a.admin, map[string]any{"ip_address": "192.0.2.0/24", "scope": "global"}, 201)
	resp, data = a.from("192.0.2.10", "PATCH", entryPath(forced.ID), a.admin.Token, map[string]any{"enabled": true})
	require.Equal(t, 200, resp.StatusCode, "covered by the other entry now: %s", data)

	// Deleting the entry that covers the caller, leaving one that does not.
	resp, data = a.from("192.0.2.10", "DELETE", entryPath(other.ID), a.admin.Token, nil)
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, "LOCKOUT_RISK", errorCode(t, data))
	resp, data = a.from("192.0.2.10", "DELETE", entryPath(other.ID)+"?force=true", a.admin.Token, nil)
	require.Equal(t, 204, resp.StatusCode, "%s", data)
	a.requireRefused("192.0.2.10", a.admin)

	// A user narrowing their own list away from their address.
	_, e = a.create("10.0.0.50", a.other, map[string]any{"ip_address": "10.200.0.0/16"}, 409)
	require.Equal(t, "LOCKOUT_RISK", e.Error.Code)
	require.Equal(t, "10.0.0.50", e.Error.Details["client_ip"])
	require.Equal(t, 200, a.me("10.0.0.50", a.other))
	a.create("10.0.0.50", a.other, map[string]any{"ip_address": "10.200.0.0/16", "force": true}, 201)
	a.requireRefused("10.0.0.50", a.other)
	require.Equal(t, 200, a.me("10.200.0.3", a.other))
}

// auditActions waits until the audit log holds n rows with action (a row
// is written after its answer is sent) and returns them, newest first.
func auditActions(t *testing.T, store *schemas.Store, action string, n int) []schemas.AuditEntry {
	t.Helper()
	var rows []schemas.AuditEntry
	var err error
	require.Eventually(t, func() bool {
		rows, _, err = store.ListAudit(context.Background(), schemas.AuditFilter{Action: action})
		return err != nil || len(rows) >= n
	}, 10*time.Second, 10*time.Millisecond, "audit rows %s", action)
	require.NoError(t, err)
	require.Len(t, rows, n, "audit rows %s", action)
	return rows
}

func TestIPAllowlistValidation(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		body  map[string]any
		field string
		issue string
	}{
		{map[string]any{}, "ip_address", "is required"},
		{map[string]any{"ip_address": "not-an-ip"}, "ip_address", "must be an IPv4 or IPv6 address or CIDR"},
		{map[string]any{"ip_address": "300.1.1.1"}, "ip_address", "must be an IPv4 or IPv6"},
		{map[string]any{"ip_address": "10.0.0.0/33"}, "ip_address", "must be an IPv4 or IPv6"},
		{map[string]any{"ip_address": "10.0.0.5/24"}, "ip_address", "10.0.0.5/24 has host bits set; did you mean 10.0.0.0/24?"},
		{map[string]any{"ip_address": "2001:db8::1/32"}, "ip_address", "did you mean 2001:db8::/32?"},
		{map[string]any{"ip_address": "fe80::1%eth0"}, "ip_address", "zone"},
		{map[string]any{"ip_address": "::ffff:0:0/80"}, "ip_address", "did you mean ::/80?"},
		{map[string]any{"ip_address": "10.0.0.1", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at", "must be in the future"},
		{map[string]any{"ip_address": "10.0.0.1", "expires_at": "tomorrow"}, "expires_at", "RFC 3339"},
		{map[string]any{"ip_address": "10.0.0.1", "scope": "everyone"}, "scope", `must be "global" or "user"`},
		{map[string]any{"ip_address": "10.0.0.1", "user_id": "alice"}, "user_id", "UUID"},
		{map[string]any{"ip_address": "10.0.0.1", "user_id": uuid.NewString()}, "user_id", "no such user"},
		{map[string]any{"ip_address": "10.0.0.1", "scope": "global", "user_id": uuid.NewString()}, "user_id", "left out"},
		{map[string]any{"ip_address": "10.0.0.1", "description": strings.Repeat("x", 257)}, "description", "at most 256"},
		{map[string]any{"ip_address": "10.0.0.1", "cidr": "10.0.0.0/8"}, "cidr", "unknown field"},
	}
	for _, c := range cases {
		_, e := a.create("10.0.0.1", a.admin, c.body, 400)
		require.Equal(t, "VALIDATION_ERROR", e.Error.Code, "%v", c.body)
		require.Equal(t, c.field, e.Error.Details["field"], "%v", c.body)
		require.Contains(t, e.Error.Details["issue"], c.issue, "%v", c.body)
	}

	// A temporary entry needs Temporal; a permanent one does not.
	resp, data := a.from("10.0.0.1", "POST", "/api/security/ip-whitelist", a.user.Token,
		map[string]any{"ip_address": "10.0.0.0/8", "expires_at": future})
	require.Equal(t, 503, resp.StatusCode, "%s", data)
	require.Equal(t, "UNAVAILABLE", errorCode(t, data))
	require.Contains(t, decodeEnvelope(t, data).Error.Message, "Temporal")
	entry, _ := a.create("10.0.0.1", a.user, map[string]any{"ip_address": "10.0.0.0/8"}, 201)

	// PATCH validates the same way.
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"ip_address": "10.0.0.5/24"}, "ip_address"},
		{map[string]any{"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"},
		{map[string]any{"expires_at": 5}, "expires_at"},
		{map[string]any{"description": strings.Repeat("x", 257)}, "description"},
		{map[string]any{"scope": "global"}, "scope"},
	} {
		resp, data := a.from("10.0.0.1", "PATCH", entryPath(entry.ID), a.user.Token, c.body)
		require.Equal(t, 400, resp.StatusCode, "%v: %s", c.body, data)
		require.Equal(t, c.field, decodeEnvelope(t, data).Error.Details["field"], "%v: %s", c.body, data)
	}
	resp, data = a.from("10.0.0.1", "DELETE", entryPath(entry.ID)+"?force=maybe", a.user.Token, nil)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	resp, data = a.from("10.0.0.1", "GET", "/api/security/ip-whitelist?scope=sideways", a.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	resp, data = a.from("10.0.0.1", "GET", "/api/security/ip-whitelist?cursor=bogus", a.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	resp, data = a.from("10.0.0.1", "GET", "/api/security/ip-whitelist?colour=red", a.admin.Token, nil)
	require.Equal(t, 400, resp.StatusCode, "%s", data)
}

func TestIPAllowlistVisibility(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	const addr = "10.0.0.1"
	mine, _ := a.create(addr, a.user, map[string]any{"ip_address": "10.0.0.0/24", "description": "alice"}, 201)
	global, _ := a.create(addr, a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 201)
	bobs, _ := a.create(addr, a.other, map[string]any{"ip_address": "10.0.0.0/16"}, 201)
	grant, _ := a.create(addr, a.admin, map[string]any{"ip_address": "192.0.2.1", "user_id": a.other.ID.String()}, 201)

	listAs := func(u testUser, query string) ([]int64, int) {
		resp, data := a.from(addr, "GET", "/api/security/ip-whitelist"+query, u.Token, nil)
		if resp.StatusCode != 200 {
			return nil, resp.StatusCode
		}
		var out ipEntryListResponse
		require.NoError(t, json.Unmarshal(data, &out))
		ids := []int64{}
		for _, e := range out.Entries {
			ids = append(ids, e.ID)
		}
		return ids, 200
	}
	ids, _ := listAs(a.user, "")
	require.Equal(t, []int64{mine.ID}, ids)
	ids, _ = listAs(a.other, "")
	require.Equal(t, []int64{grant.ID, bobs.ID}, ids, "newest first, grants included")
	_, status := listAs(a.other, "?user_id="+a.user.ID.String())
	require.Equal(t, 403, status)
	_, status = listAs(a.other, "?scope=global")
	require.Equal(t, 403, status)
	ids, _ = listAs(a.other, "?user_id="+a.other.ID.String())
	require.Len(t, ids, 2)

	ids, _ = listAs(a.admin, "")
	require.Equal(t, []int64{grant.ID, bobs.ID, global.ID, mine.ID}, ids)
	ids, _ = listAs(a.admin, "?scope=global")
	require.Equal(t, []int64{global.ID}, ids)
	ids, _ = listAs(a.admin, "?scope=user")
	require.Equal(t, []int64{grant.ID, bobs.ID, mine.ID}, ids)
	ids, _ = listAs(a.admin, "?user_id="+a.user.ID.String())
	require.Equal(t, []int64{mine.ID}, ids)
	ids, _ = listAs(a.admin, "?limit=2")
	require.Len(t, ids, 2)

	// Another user's entry, or a global one, is not there for a user.
	for _, id := range []int64{mine.ID, global.ID} {
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = map[string]any{"description": "mine now"}
			}
			resp, data := a.from(addr, m, entryPath(id), a.other.Token, body)
			require.Equal(t, 404, resp.StatusCode, "%s %d as bob: %s", m, id, data)
			require.Equal(t, "NOT_FOUND", errorCode(t, data))
		}
	}
	resp, data := a.from(addr, "GET", "/api/security/ip-whitelist/abc", a.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)
	resp, data = a.from(addr, "GET", entryPath(1<<40), a.admin.Token, nil)
	require.Equal(t, 404, resp.StatusCode, "%s", data)

	// Alice changes her own entry; an admin changes anyone's.
	var got ipEntryJSON
	resp, data = a.from(addr, "PATCH", entryPath(mine.ID), a.user.Token, map[string]any{"description": "home", "ip_address": "10.0.0.0/25"})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, "home", got.Description)
	require.Equal(t, "10.0.0.0/25", got.IPAddress)
	require.False(t, got.UpdatedAt.Before(got.CreatedAt))
	resp, data = a.from(addr, "PATCH", entryPath(mine.ID), a.admin.Token, map[string]any{"description": "by admin"})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &got))
	require.Equal(t, "by admin", got.Description)
	require.False(t, got.Granted, "changing an entry does not make it a grant")
	// A prefix already on the user's list (grants included) or the global
	// list conflicts.
	resp, data = a.from(addr, "PATCH", entryPath(bobs.ID), a.other.Token, map[string]any{"ip_address": "192.0.2.1"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, "CONFLICT", errorCode(t, data))
	resp, data = a.from(addr, "POST", "/api/security/ip-whitelist", a.admin.Token, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"})
	require.Equal(t, 409, resp.StatusCode, "%s", data)
	require.Equal(t, "CONFLICT", errorCode(t, data))

	// Every attempt is in the audit log under its action, with its outcome.
	statuses := func(action string, n int) []int {
		var out []int
		for _, e := range auditActions(t, a.store, action, n) {
			out = append(out, e.Status)
		}
		return out
	}
	require.Equal(t, []int{409, 201, 201, 201, 201}, statuses("security.ip_whitelist.create", 5))
	require.Equal(t, []int{409, 200, 200, 404, 404}, statuses("security.ip_whitelist.update", 5))
	updates := auditActions(t, a.store, "security.ip_whitelist.update", 5)
	require.Equal(t, strconv.FormatInt(mine.ID, 10), updates[1].TargetID)
	var details map[string]any
	require.NoError(t, json.Unmarshal(updates[1].Details, &details))
	require.Equal(t, "10.0.0.0/25", details["cidr"])
	require.Equal(t, []any{"description"}, details["changed"])
	resp, data = a.from(addr, "DELETE", entryPath(mine.ID), a.user.Token, nil)
	require.Equal(t, 204, resp.StatusCode, "%s", data)
	deletes := auditActions(t, a.store, "security.ip_whitelist.delete", 3)
	require.Equal(t, 204, deletes[0].Status)
	require.Equal(t, a.user.ID, deletes[0].ActorID)
	require.Equal(t, strconv.FormatInt(mine.ID, 10), deletes[0].TargetID)
}

// An expired entry stops counting by the check alone: no workflow runs
// here, the row stays enabled, and the allowlist's clock passing expires_at
// is enough.
func TestIPAllowlistExpiryByCheckAlone(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	ctx := context.Background()
	a.create("10.0.0.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 201)
	expires := time.Now().Add(time.Hour)
	grant := schemas.IPEntry{UserID: a.user.ID, Prefix: netip.MustParsePrefix("198.51.100.7/32"), Enabled: true,
		Granted: true, ExpiresAt: &expires, CreatedBy: a.admin.ID}
	require.NoError(t, a.store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertIPEntry(ctx, tx, &grant) }))
	require.NoError(t, a.server.reloadAllowlist(ctx)) // as after this replica's own write

	require.Equal(t, 200, a.me("198.51.100.7", a.user))
	a.advance(59 * time.Minute)
	require.Equal(t, 200, a.me("198.51.100.7", a.user))
	a.advance(2 * time.Minute)
	a.requireRefused("198.51.100.7", a.user)
	require.Equal(t, 200, a.me("10.0.0.2", a.user), "the global list still admits her")

	var got ipEntryJSON
	resp, data := a.from("10.0.0.1", "GET", entryPath(grant.ID), a.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &got))
	require.True(t, got.Enabled, "no workflow disabled the row")
	require.Nil(t, got.ExpiredAt)
	require.False(t, got.Active)

	// Re-enabling an expired entry needs a new expiry.
	resp, data = a.from("10.0.0.1", "PATCH", entryPath(grant.ID), a.admin.Token, map[string]any{"enabled": true})
	require.Equal(t, 400, resp.StatusCode, "%s", data)
	require.Equal(t, "expires_at", decodeEnvelope(t, data).Error.Details["field"])
	// Making it permanent needs no Temporal (nothing to schedule) and
	// admits her again.
	resp, data = a.from("10.0.0.1", "PATCH", entryPath(grant.ID), a.admin.Token, map[string]any{"expires_at": nil})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &got))
	require.Nil(t, got.ExpiresAt)
	require.True(t, got.Active)
	require.Equal(t, 200, a.me("198.51.100.7", a.user))
}

// allowlistWorker runs a worker (the grant expiry workflow) on its own task
// queue until the test ends, and returns the client that starts runs there.
func allowlistWorker(t *testing.T, store *schemas.Store) *workflows.Client {
	t.Helper()
	testenv.SpreadIDs(t, store.Pool, "ip_allowlist") // ipgrant/<id> is unique on the shared dev server
	tc := testenv.TemporalClient(t, testenv.TemporalAddress(t))
	wf := &workflows.Client{Temporal: tc, Namespace: testenv.TemporalNamespace(), TaskQueue: "allowlist-test-" + uuid.NewString()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	wg.Go(func() {
		_ = worker.Run(ctx, tc, wf.TaskQueue, worker.Deps{Store: store}, worker.Options{}, logger)
	})
	return wf
}

// Temporary entries through the API: each has its expiry run, which moves
// with the entry's expiry, ends when the entry stops expiring, and disables
// the entry when the expiry passes.
func TestIPAllowlistGrantWorkflow(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	wf := allowlistWorker(t, b.store)
	a := allowlistServer(t, b, allowlistOptions{trustProxy: true, workflows: wf})
	ctx := context.Background()
	describe := func(id int64) enums.WorkflowExecutionStatus {
		d, err := wf.Temporal.DescribeWorkflowExecution(ctx, workflows.IPGrantID(id), "")
		require.NoError(t, err)
		return d.GetWorkflowExecutionInfo().GetStatus()
	}
	waitStatus := func(id int64, want enums.WorkflowExecutionStatus) {
		t.Helper()
		require.Eventually(t, func() bool { return describe(id) == want }, 30*time.Second, 20*time.Millisecond,
			"ipgrant/%d never reached %s", id, want)
	}

	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	grant, _ := a.create("10.0.0.1", a.admin, map[string]any{"ip_address": "198.51.100.7", "user_id": a.user.ID.String(),
		"expires_at": expires.Format(time.RFC3339)}, 201)
	require.True(t, grant.Granted)
	require.Equal(t, expires, grant.ExpiresAt.UTC())
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, describe(grant.ID))
	require.Equal(t, 200, a.me("198.51.100.7", a.user))

	// Extending it moves the run's deadline.
	later := expires.Add(time.Hour)
	resp, data := a.from("10.0.0.1", "PATCH", entryPath(grant.ID), a.admin.Token, map[string]any{"expires_at": later.Format(time.RFC3339)})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	v, err := wf.Temporal.QueryWorkflow(ctx, workflows.IPGrantID(grant.ID), "", workflows.QueryStatus)
	require.NoError(t, err)
	var st workflows.IPGrantStatus
	require.NoError(t, v.Get(&st))
	require.True(t, later.Equal(st.ExpiresAt), "run deadline %s, want %s", st.ExpiresAt, later)

	// Making it permanent ends the run.
	resp, data = a.from("10.0.0.1", "PATCH", entryPath(grant.ID), a.admin.Token, map[string]any{"expires_at": nil})
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	waitStatus(grant.ID, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED)

	// A short grant is disabled by its run when it expires, and recorded.
	short, _ := a.create("10.0.0.1", a.admin, map[string]any{"ip_address": "198.51.100.8", "user_id": a.user.ID.String(),
		"expires_at": time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)}, 201)
	require.Eventually(t, func() bool {
		e, err := a.store.GetIPEntry(ctx, short.ID)
		require.NoError(t, err)
		return !e.Enabled && e.ExpiredAt != nil
	}, 30*time.Second, 50*time.Millisecond, "the grant was never disabled by its run")
	waitStatus(short.ID, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED)
	auditActions(t, a.store, schemas.AuditIPGrantExpired, 1)
	var got ipEntryJSON
	resp, data = a.from("10.0.0.1", "GET", entryPath(short.ID), a.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &got))
	require.False(t, got.Enabled)
	require.NotNil(t, got.ExpiredAt)
	require.False(t, got.Active)

	// Deleting a temporary entry ends its run.
	temp, _ := a.create("10.0.0.1", a.admin, map[string]any{"ip_address": "198.51.100.9", "user_id": a.user.ID.String(),
		"expires_at": expires.Format(time.RFC3339)}, 201)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, describe(temp.ID))
	resp, data = a.from("10.0.0.1", "DELETE", entryPath(temp.ID), a.admin.Token, nil)
	require.Equal(t, 204, resp.StatusCode, "%s", data)
	waitStatus(temp.ID, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED)
}

// A refused request is in the audit log as security.ip_denied and raises
// one ip_violation alert (published as security.alert); repeats fold into it.
func TestIPAllowlistRefusalAuditedAndAlerted(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	a.create("10.0.0.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 201)
	a.requireRefused("203.0.113.9", a.user)
	resp, data := a.from("203.0.113.9", "POST", "/api/sessions", a.user.Token, map[string]any{"template": "x"})
	require.Equal(t, 403, resp.StatusCode, "%s", data)
	a.requireRefused("203.0.113.10", a.user)

	var audit auditListResponse
	require.Eventually(t, func() bool { // each row is written after its answer is sent
		resp, data := a.from("10.0.0.1", "GET", "/api/admin/audit?action=security.ip_denied", a.admin.Token, nil)
		audit = auditListResponse{}
		return resp.StatusCode == 200 && json.Unmarshal(data, &audit) == nil && len(audit.Entries) >= 3
	}, 10*time.Second, 10*time.Millisecond, "the refusals never reached the audit log")
	require.Len(t, audit.Entries, 3)
	e := audit.Entries[len(audit.Entries)-1] // the oldest: the first GET
	require.Equal(t, 403, e.Status)
	require.Equal(t, "203.0.113.9", *e.ClientIP)
	require.Equal(t, a.user.ID, *e.ActorID)
	require.Equal(t, "GET", e.Method)
	var details map[string]any
	require.NoError(t, json.Unmarshal(e.Details, &details))
	require.Equal(t, "not_in_global", details["reason"])
	require.Equal(t, "203.0.113.9", details["client_ip"])

	var alerts alertListResponse
	resp, data = a.from("10.0.0.1", "GET", "/api/security/alerts?kind=ip_violation", a.admin.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
	require.NoError(t, json.Unmarshal(data, &alerts))
	require.Len(t, alerts.Alerts, 2, "one alert per address: %s", data)
	byIP := map[string]alertJSON{}
	for _, al := range alerts.Alerts {
		require.Equal(t, schemas.SeverityHigh, al.Severity)
		require.Equal(t, a.user.ID, *al.UserID)
		byIP[*al.IPAddress] = al
	}
	first := byIP["203.0.113.9"]
	require.Equal(t, 2, first.Count, "the two refusals from one address fold into one alert")
	require.Equal(t, 1, byIP["203.0.113.10"].Count)
	require.Contains(t, first.Message, "not on the IP allowlist")
	var events int
	require.NoError(t, a.store.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events
		WHERE type = $1 AND payload->>'alert_id' = $2`, string(schemas.EventSecurityAlert),
		strconv.FormatInt(first.ID, 10)).Scan(&events))
	require.Equal(t, 1, events, "one security.alert event for the folded alert")
	// The user sees their own alerts too.
	resp, data = a.from("10.0.0.2", "GET", "/api/security/alerts?kind=ip_violation", a.user.Token, nil)
	require.Equal(t, 200, resp.StatusCode, "%s", data)
}

// A change written by another replica (here: straight into the database)
// reaches this replica's allowlist through LISTEN/NOTIFY.
func TestIPAllowlistFollowsOtherReplicas(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	a.server.allowlist.refreshEvery = time.Hour      // only notifications can deliver the change in time
	require.Equal(t, 200, a.me("192.0.2.1", a.user)) // loaded: no entries

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.server.watchIPAllowlist(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	insert := func(cidr string) {
		e := schemas.IPEntry{Prefix: netip.MustParsePrefix(cidr), Enabled: true}
		require.NoError(t, a.store.InTx(context.Background(), func(tx pgx.Tx) error {
			return schemas.InsertIPEntry(context.Background(), tx, &e)
		}))
	}

	// The first change may arrive through the reload the listener does once
	// it listens; once seen, the listener is listening, so the second can
	// only arrive by notification.
	insert("10.0.0.0/8")
	require.Eventually(t, func() bool { return a.me("192.0.2.1", a.user) == 403 }, 10*time.Second, 10*time.Millisecond,
		"the global entry written elsewhere never took effect")
	insert("192.0.2.0/24")
	require.Eventually(t, func() bool { return a.me("192.0.2.1", a.user) == 200 }, 10*time.Second, 10*time.Millisecond,
		"the second entry never took effect")
	_, err := a.store.Pool.Exec(context.Background(), `DELETE FROM ip_allowlist`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.me("172.16.0.1", a.user) == 200 }, 10*time.Second, 10*time.Millisecond,
		"the deletion never took effect")
}

// Failure policy: with no allowlist ever loaded the check fails closed
// (503); once one is loaded, a failed reload keeps it.
func TestIPAllowlistFailurePolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	admin := uuid.New()
	e := schemas.IPEntry{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Enabled: true}
	require.NoError(t, store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertIPEntry(ctx, tx, &e) }))

	newServer := func() (*Server, *pgxpool.Pool) {
		own, err := pgxpool.NewWithConfig(ctx, pool.Config())
		require.NoError(t, err)
		t.Cleanup(own.Close)
		return New(Config{}, Deps{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
			Store: &schemas.Store{Pool: own}}), own
	}
	inside := context.WithValue(ctx, clientIPKey, netip.MustParseAddr("10.1.2.3"))
	outside := context.WithValue(ctx, clientIPKey, netip.MustParseAddr("192.0.2.1"))

	never, neverPool := newServer()
	neverPool.Close()
	_, err := never.checkIPAllowlist(inside, admin)
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, CodeUnavailable, apiErr.Code)

	loaded, loadedPool := newServer()
	v, err := loaded.checkIPAllowlist(inside, admin)
	require.NoError(t, err)
	require.True(t, v.Allowed)
	loadedPool.Close()
	require.Error(t, loaded.reloadAllowlist(ctx))
	v, err = loaded.checkIPAllowlist(inside, admin)
	require.NoError(t, err, "the last good list stays in use")
	require.True(t, v.Allowed)
	v, err = loaded.checkIPAllowlist(outside, admin)
	require.NoError(t, err)
	require.False(t, v.Allowed)
}

// rbacNewIPEntry stores a disabled entry of the bundle's user (it restricts
// nobody), for a destructive call.
func rbacNewIPEntry(b *apiBundle) int64 { return rbacStoreIPEntry(b, false) }

// rbacNewIPRestriction stores a disabled restriction of the bundle's user
// (it confines nobody), for a call that changes or deletes it.
func rbacNewIPRestriction(b *apiBundle) int64 { return rbacStoreIPEntry(b, true) }

func rbacStoreIPEntry(b *apiBundle, restricted bool) int64 {
	b.t.Helper()
	n := seq.Add(1)
	e := schemas.IPEntry{UserID: b.user.ID, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 0}), 24),
		Description: "rbac", Restricted: restricted}
	ctx := context.Background()
	require.NoError(b.t, b.store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertIPEntry(ctx, tx, &e) }))
	return e.ID
}

// rbacIPEntryPath is the path of a disabled entry of the bundle's user that
// every route test may use.
func rbacIPEntryPath(b *apiBundle) string {
	return "/api/security/ip-whitelist/" + rbacOnce(b, "ip-entry", func() string {
		return strconv.FormatInt(rbacNewIPEntry(b), 10)
	})
}

// Callers signed in through the OIDC issuer are judged like local ones,
// by the account their token maps to.
func TestIPAllowlistOIDCPrincipal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)
	resolver, err := clientip.New([]string{"127.0.0.1"})
	require.NoError(t, err)
	s := New(Config{MaxBodyBytes: 1 << 20}, Deps{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Store: f.store, OIDC: f.v, ClientIP: resolver})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	raw := f.idp.token(t, "sub-carol", map[string]any{"preferred_username": "carol"})
	me := func(addr string) int {
		req, err := http.NewRequest("GET", srv.URL+"/api/me", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+raw)
		req.Header.Set("X-Forwarded-For", addr)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, me("192.0.2.1"))
	carol, err := f.store.GetUserByOIDC(ctx, f.idp.URL(), "sub-carol")
	require.NoError(t, err)

	for _, e := range []schemas.IPEntry{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Enabled: true},
		{UserID: carol.ID, Prefix: netip.MustParsePrefix("198.51.100.7/32"), Enabled: true, Granted: true},
	} {
		require.NoError(t, f.store.InTx(ctx, func(tx pgx.Tx) error { return schemas.InsertIPEntry(ctx, tx, &e) }))
	}
	require.NoError(t, s.reloadAllowlist(ctx))
	require.Equal(t, 403, me("192.0.2.1"))
	require.Equal(t, 200, me("10.3.3.3"))
	require.Equal(t, 200, me("198.51.100.7"), "her grant")
}
