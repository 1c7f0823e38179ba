package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/schemas"
)

func TestUserAdmin(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	var created userJSON
	b.callJSON("POST", "/api/admin/users", b.admin.Token, map[string]any{
		"username": "frank", "email": "frank@example.com", "display_name": "Frank", "password": "a long enough password"},
		201, &created)
	require.Equal(t, RoleUser, created.Role)
	require.True(t, created.Active)
	require.Equal(t, "local", created.AuthSource)

	t.Run("NewUserCanLogIn", func(t *testing.T) {
		var tr tokenResponse
		b.callJSON("POST", "/api/auth/login", "", map[string]string{"username": "frank", "password": "a long enough password"}, 200, &tr)
		resp, _ := b.call("GET", "/api/admin/users", tr.AccessToken, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("PasswordNeverReturned", func(t *testing.T) {
		_, data := b.call("GET", "/api/admin/users/"+created.ID.String(), b.admin.Token, nil)
		require.NotContains(t, string(data), "argon2")
		require.NotContains(t, string(data), "password")
	})
	t.Run("Validation", func(t *testing.T) {
		cases := map[string]struct {
			body  map[string]any
			field string
		}{
			"BadUsername":   {map[string]any{"username": "no spaces", "password": testPassword}, "username"},
			"BadEmail":      {map[string]any{"username": "gina", "email": "not-an-email", "password": testPassword}, "email"},
			"ShortPassword": {map[string]any{"username": "gina", "password": "short"}, "password"},
			"BadRole":       {map[string]any{"username": "gina", "password": testPassword, "role": "root"}, "role"},
			"UnknownField":  {map[string]any{"username": "gina", "password": testPassword, "is_admin": true}, "is_admin"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				resp, data := b.call("POST", "/api/admin/users", b.admin.Token, tc.body)
				require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", data)
				var e errorBody
				require.NoError(t, json.Unmarshal(data, &e))
				require.Equal(t, tc.field, e.Error.Details["field"])
			})
		}
	})
	t.Run("DuplicateUsername", func(t *testing.T) {
		resp, data := b.call("POST", "/api/admin/users", b.admin.Token, map[string]any{"username": "FRANK", "password": testPassword})
		require.Equal(t, http.StatusConflict, resp.StatusCode)
		require.Equal(t, "CONFLICT", errorCode(t, data))
	})
	t.Run("UpdateAndEvents", func(t *testing.T) {
		var updated userJSON
		b.callJSON("PATCH", "/api/admin/users/"+created.ID.String(), b.admin.Token,
			map[string]any{"role": "admin", "display_name": "Franklin"}, 200, &updated)
		require.Equal(t, RoleAdmin, updated.Role)
		require.Equal(t, "Franklin", updated.DisplayName)

		createdEvents := userEvents(t, b.store.Pool, schemas.EventUserCreated, uuid.Nil)
		require.Len(t, createdEvents, 1)
		require.Equal(t, "frank", createdEvents[0].Username)
		updatedEvents := userEvents(t, b.store.Pool, schemas.EventUserUpdated, uuid.Nil)
		require.Len(t, updatedEvents, 1)
		require.ElementsMatch(t, []string{"role", "display_name"}, updatedEvents[0].Changed)
	})
	t.Run("CannotLockSelfOut", func(t *testing.T) {
		resp, _ := b.call("PATCH", "/api/admin/users/"+b.admin.ID.String(), b.admin.Token, map[string]any{"role": "user"})
		require.Equal(t, http.StatusConflict, resp.StatusCode)
		resp, _ = b.call("DELETE", "/api/admin/users/"+b.admin.ID.String(), b.admin.Token, nil)
		require.Equal(t, http.StatusConflict, resp.StatusCode)
	})
	t.Run("Delete", func(t *testing.T) {
		b.callJSON("DELETE", "/api/admin/users/"+created.ID.String(), b.admin.Token, nil, 204, nil)
		resp, _ := b.call("GET", "/api/admin/users/"+created.ID.String(), b.admin.Token, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		resp, _ = b.call("GET", "/api/admin/users/not-a-uuid", b.admin.Token, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})
	t.Run("ListPaginates", func(t *testing.T) {
		seen := map[string]bool{}
		cursor := ""
		for range 10 {
			var page struct {
				Users      []userJSON `json:"users"`
				NextCursor *string    `json:"next_cursor"`
			}
			b.callJSON("GET", "/api/admin/users?limit=2&cursor="+cursor, b.admin.Token, nil, 200, &page)
			for _, u := range page.Users {
				require.False(t, seen[u.Username], "duplicate %s", u.Username)
				seen[u.Username] = true
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		require.True(t, seen["alice"] && seen["bob"] && seen["root-admin"])
	})
}

func TestUpdateMe(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	var me userJSON
	b.callJSON("PATCH", "/api/me", b.user.Token, map[string]any{"display_name": "Alice A."}, 200, &me)
	require.Equal(t, "Alice A.", me.DisplayName)

	resp, data := b.call("PATCH", "/api/me", b.user.Token, map[string]any{"password": "brand new password", "current_password": "wrong"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(data), "current_password")

	resp, _ = b.call("PATCH", "/api/me", b.user.Token, map[string]any{"role": "admin"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "users cannot change their own role")

	b.callJSON("PATCH", "/api/me", b.user.Token, map[string]any{"password": "brand new password", "current_password": testPassword}, 200, nil)
	b.callJSON("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": "brand new password"}, 200, nil)
}
