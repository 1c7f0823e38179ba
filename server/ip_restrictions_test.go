package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// An admin's restriction confines one user: refused from outside it even
// where the global list or a grant would admit them, on every request and
// at login; a grant still widens access for others.
func TestIPAllowlistRestriction(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 201)
	bobGrant, _ := a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "198.51.100.0/24",
		"user_id": a.other.ID.String()}, 201)
	require.Equal(t, "grant", bobGrant.Kind, "an admin's entry for another user is a grant by default")

	r, _ := a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.5.0.0/16", "user_id": a.user.ID.String(),
		"kind": "restrict", "description": "contractor"}, 201)
	require.Equal(t, "restrict", r.Kind)
	require.False(t, r.Granted)
	require.Equal(t, a.user.ID, *r.UserID)
	kinds := map[string]any{}
	for _, row := range auditActions(t, a.store, auditIPCreate, 3) {
		var details map[string]any
		require.NoError(t, json.Unmarshal(row.Details, &details))
		kinds[row.TargetID] = details["kind"]
	}
	require.Equal(t, "restrict", kinds[strconv.FormatInt(r.ID, 10)], "the restriction is audited with its kind")
	require.Equal(t, "grant", kinds[strconv.FormatInt(bobGrant.ID, 10)])

	require.Equal(t, 200, a.me("10.5.1.1", a.user), "inside the restriction")
	a.requireRefused("10.2.3.4", a.user) // in the global list, outside the restriction
	// Even a grant does not admit her outside it.
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "198.51.100.0/24", "user_id": a.user.ID.String()}, 201)
	a.requireRefused("198.51.100.7", a.user)
	// Others are not confined; a grant still widens for them.
	require.Equal(t, 200, a.me("198.51.100.7", a.other))
	require.Equal(t, 200, a.me("10.2.3.4", a.other))

	// At login too.
	body := map[string]string{"username": "alice", "password": testPassword}
	resp, data := a.from("10.2.3.4", "POST", "/api/auth/login", "", body)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "IP_NOT_ALLOWED", errorCode(t, data))
	resp, data = a.from("10.5.1.1", "POST", "/api/auth/login", "", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)

	// She sees her restriction but cannot change or delete it.
	resp, data = a.from("10.5.1.1", "GET", entryPath(r.ID), a.user.Token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	resp, data = a.from("10.5.1.1", "PATCH", entryPath(r.ID), a.user.Token, map[string]any{"enabled": false})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	resp, data = a.from("10.5.1.1", "DELETE", entryPath(r.ID), a.user.Token, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "FORBIDDEN", errorCode(t, data))

	// Lifted by the admin, the global list and her grant apply again.
	resp, data = a.from("10.1.1.1", "DELETE", entryPath(r.ID), a.admin.Token, nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s", data)
	require.Equal(t, 200, a.me("10.2.3.4", a.user))
	require.Equal(t, 200, a.me("198.51.100.7", a.user))
	auditActions(t, a.store, auditIPDelete, 2) // her refused try and the admin's delete
}

// A contractor confined to a network outside the global list gets a grant
// and a restriction for the same network.
func TestIPAllowlistRestrictionWithGrant(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global"}, 201)
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "192.0.2.0/24", "user_id": a.user.ID.String(), "kind": "restrict"}, 201)
	a.requireRefused("192.0.2.5", a.user) // a restriction never admits by itself
	a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "192.0.2.0/24", "user_id": a.user.ID.String(), "kind": "grant"}, 201)
	require.Equal(t, 200, a.me("192.0.2.5", a.user))
	a.requireRefused("10.2.3.4", a.user)
	// The same kind twice is still a conflict.
	_, e := a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "192.0.2.0/24", "user_id": a.user.ID.String(), "kind": "restrict"}, 409)
	require.Equal(t, "CONFLICT", e.Error.Code)
}

// Bad kinds get a 400 naming the field; only admins make restrictions, and
// only for another user.
func TestIPAllowlistRestrictionValidation(t *testing.T) {
	t.Parallel()
	a := newAllowlistAPI(t, allowlistOptions{trustProxy: true})
	_, e := a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.5.0.0/16", "user_id": a.user.ID.String(), "kind": "deny"}, 400)
	require.Equal(t, "kind", e.Error.Details["field"])
	_, e = a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.0.0.0/8", "scope": "global", "kind": "restrict"}, 400)
	require.Equal(t, "kind", e.Error.Details["field"])
	_, e = a.create("10.1.1.1", a.admin, map[string]any{"ip_address": "10.5.0.0/16", "kind": "restrict"}, 400)
	require.Equal(t, "kind", e.Error.Details["field"], "an admin does not restrict themselves")
	_, e = a.create("10.1.1.1", a.user, map[string]any{"ip_address": "10.5.0.0/16", "kind": "restrict"}, 403)
	require.Equal(t, "FORBIDDEN", e.Error.Code)
	_, e = a.create("10.1.1.1", a.user, map[string]any{"ip_address": "10.5.0.0/16", "user_id": a.other.ID.String(), "kind": "restrict"}, 403)
	require.Equal(t, "FORBIDDEN", e.Error.Code)
	require.Equal(t, 200, a.me("10.9.9.9", a.other), "nothing was made")
}
