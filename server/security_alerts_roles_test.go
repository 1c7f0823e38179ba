package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/clientip"
)

// Creating an account with the admin role through the admin API raises one
// medium privilege_escalation alert naming who made whom an admin; a plain
// user raises none. The password is in no alert.
func TestAlertAdminCreatedDirectly(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	const secret = "a long and secret passphrase"
	b.callJSON("POST", "/api/admin/users", b.admin.Token, map[string]string{
		"username": "carol", "email": "carol@example.com", "password": secret}, http.StatusCreated, nil)
	b.callJSON("POST", "/api/admin/users", b.admin.Token, map[string]string{
		"username": "dave", "email": "dave@example.com", "role": "user", "password": secret}, http.StatusCreated, nil)
	require.Empty(t, alertList(b, b.admin.Token, ""), "plain users raise no alert")

	var admin userJSON
	b.callJSON("POST", "/api/admin/users", b.admin.Token, map[string]string{
		"username": "erin", "email": "erin@example.com", "role": "admin", "password": secret}, http.StatusCreated, &admin)
	alerts := alertList(b, b.admin.Token, "")
	require.Len(t, alerts, 1)
	a := alerts[0]
	require.Equal(t, "privilege_escalation", a.Kind)
	require.Equal(t, "medium", a.Severity)
	require.Equal(t, admin.ID, *a.UserID)
	require.Equal(t, "erin", a.Username)
	require.Equal(t, "root-admin created erin with role admin", a.Message)
	require.Equal(t, map[string]any{"actor_id": b.admin.ID.String(), "actor_username": "root-admin",
		"target_id": admin.ID.String(), "target_username": "erin", "new_role": "admin", "created": true}, a.Details)
	require.NotContains(t, a.Message+a.Username, secret)
	requireOneEvent(b, a)
}

// An OIDC sign-in whose role claim promotes or demotes the account raises
// one privilege_escalation alert each, in the transaction of the change,
// naming the identity provider, the account, the old and new role and the
// address the token came from; a sign-in that changes nothing raises none,
// and an account provisioned as an admin raises one.
func TestAlertOIDCRoleClaimChanges(t *testing.T) {
	t.Parallel()
	idp := newTestIdP(t)
	resolver, err := clientip.New([]string{"127.0.0.1", "::1"})
	require.NoError(t, err)
	b := newAPIDeps(t, func(d *Deps) {
		v, err := newOIDCVerifier(context.Background(), defaultOIDCConfig(idp.URL()), d.Store, idp.srv.Client(),
			slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		d.OIDC, d.ClientIP = v, resolver
	})
	me := func(sub string, roles any) userJSON {
		t.Helper()
		claims := map[string]any{"preferred_username": sub}
		if roles != nil {
			claims["roles"] = roles
		}
		req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/api/me", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+idp.token(t, "sub-"+sub, claims))
		req.Header.Set("X-Forwarded-For", "198.51.100.20")
		var out userJSON
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}
	roleAlerts := func() []alertJSON { return alertList(b, b.admin.Token, "kind=privilege_escalation") }

	frank := me("frank", []string{"staff"})
	me("frank", []string{"staff"})
	require.Empty(t, roleAlerts(), "a user provisioned and signing in as a user raises nothing")

	require.Equal(t, RoleAdmin, me("frank", []string{"staff", "admin"}).Role)
	me("frank", "admin")
	alerts := roleAlerts()
	require.Len(t, alerts, 1, "one promotion, one alert")
	a := alerts[0]
	require.Equal(t, "medium", a.Severity)
	require.Equal(t, frank.ID, *a.UserID)
	require.Equal(t, "the identity provider "+idp.URL()+" changed the role of frank from user to admin", a.Message)
	require.Equal(t, map[string]any{"issuer": idp.URL(), "target_id": frank.ID.String(), "target_username": "frank",
		"old_role": "user", "new_role": "admin"}, a.Details)
	require.NotNil(t, a.IPAddress)
	require.Equal(t, "198.51.100.20", *a.IPAddress)
	requireOneEvent(b, a)

	require.Equal(t, RoleUser, me("frank", nil).Role, "removed from the admin group")
	alerts = roleAlerts()
	require.Len(t, alerts, 2, "the demotion is its own alert")
	require.Equal(t, "the identity provider "+idp.URL()+" changed the role of frank from admin to user",
		alerts[0].Message)
	requireOneEvent(b, alerts[0])

	grace := me("grace", "streamspace-admins")
	alerts = roleAlerts()
	require.Len(t, alerts, 3)
	require.Equal(t, grace.ID, *alerts[0].UserID)
	require.Equal(t, "the identity provider "+idp.URL()+" created grace with role admin", alerts[0].Message)
	require.Equal(t, true, alerts[0].Details["created"])
}
