package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Identities every route is tried as.
const (
	anonymous = iota
	asUser    // alice
	asOther   // bob: another ordinary user
	asAdmin
)

var identityNames = [...]string{"anonymous", "user", "other user", "admin"}

// routeCase says how to call a route and what each identity must get.
type routeCase struct {
	path func(b *apiBundle) string // nil: the pattern itself
	body func(b *apiBundle) any    // nil: no body
	want [4]int                    // by identity: anonymous, user, other user, admin
}

func all(status int) [4]int                  { return [4]int{status, status, status, status} }
func signedIn(status int) [4]int             { return [4]int{401, status, status, status} }
func adminOnly(status int) [4]int            { return [4]int{401, 403, 403, status} }
func fixed(p string) func(*apiBundle) string { return func(*apiBundle) string { return p } }

var seq atomic.Int64

// freshUser creates a user for a destructive call, so each identity's try
// has its own target.
func freshUser(b *apiBundle) string {
	return b.createUser(fmt.Sprintf("victim-%d", seq.Add(1)), "user").ID.String()
}

// routeTable is the access rule of every route in the router. A route the
// router serves without an entry here fails TestRouteAccess, so a new route
// cannot ship without a decision about who may call it.
var routeTable = map[string]routeCase{
	"GET /healthz":               {want: all(200)},
	"GET /readyz":                {want: all(200)},
	"GET /metrics":               {want: all(200)},
	"GET /api/docs/openapi.yaml": {want: all(200)},
	"GET /api/docs":              {want: all(200)}, // redirected to /api/docs/
	"GET /api/docs/*":            {path: fixed("/api/docs/swagger-ui.css"), want: all(200)},
	"POST /api/auth/login":       {body: func(*apiBundle) any { return map[string]string{"username": "alice", "password": testPassword} }, want: all(200)},
	"POST /api/auth/refresh":     {body: func(*apiBundle) any { return map[string]string{"refresh_token": "ssr_unknown"} }, want: all(401)},
	"POST /api/auth/logout":      {body: func(*apiBundle) any { return map[string]string{"refresh_token": "ssr_unknown"} }, want: all(204)},
	"GET /api/me":                {want: signedIn(200)},
	"PATCH /api/me":              {body: func(*apiBundle) any { return map[string]string{"display_name": "Renamed"} }, want: signedIn(200)},
	"GET /api/admin/users":       {want: adminOnly(200)},
	"POST /api/admin/users": {body: func(*apiBundle) any {
		return map[string]string{"username": fmt.Sprintf("new-%d", seq.Add(1)), "password": testPassword}
	}, want: adminOnly(201)},
	"GET /api/admin/users/{id}":    {path: func(b *apiBundle) string { return "/api/admin/users/" + b.user.ID.String() }, want: adminOnly(200)},
	"PATCH /api/admin/users/{id}":  {path: func(b *apiBundle) string { return "/api/admin/users/" + b.user.ID.String() }, body: func(*apiBundle) any { return map[string]string{"display_name": "By admin"} }, want: adminOnly(200)},
	"GET /api/admin/audit":         {want: adminOnly(200)},
	"GET /api/admin/audit/export":  {path: fixed("/api/admin/audit/export?format=csv"), want: adminOnly(200)},
	"GET /api/admin/events":        {want: adminOnly(200)},
	"GET /api/scaling/nodes":       {want: adminOnly(200)}, // TestRouteAccess's server has a Kube (newSessionAPI)
	"DELETE /api/admin/users/{id}": {path: func(b *apiBundle) string { return "/api/admin/users/" + freshUser(b) }, want: adminOnly(204)},
	// sessions, templates and quotas (server/sessionenv_test.go has the fixtures)
	"GET /api/me/quota":               {want: signedIn(200)},
	"GET /api/admin/users/{id}/quota": {path: func(b *apiBundle) string { return "/api/admin/users/" + b.user.ID.String() + "/quota" }, want: adminOnly(200)},
	// everyone signed in has a live session using their home: 409
	"DELETE /api/users/me/home":         {path: rbacHomesInUse, want: signedIn(409)},
	"DELETE /api/admin/users/{id}/home": {path: func(b *apiBundle) string { return "/api/admin/users/" + freshUser(b) + "/home" }, want: adminOnly(404)},
	"PUT /api/admin/users/{id}/quota":   {path: func(b *apiBundle) string { return "/api/admin/users/" + freshUser(b) + "/quota" }, body: func(*apiBundle) any { return map[string]any{"max_sessions": 3} }, want: adminOnly(200)},
	"GET /api/templates":                {want: signedIn(200)},
	"POST /api/templates":               {body: func(*apiBundle) any { return firefoxTemplate(fmt.Sprintf("new-%d", seq.Add(1))) }, want: adminOnly(201)},
	"GET /api/templates/{id}":           {path: func(b *apiBundle) string { return "/api/templates/" + rbacTemplate(b) }, want: signedIn(200)},
	"PUT /api/templates/{id}":           {path: func(b *apiBundle) string { return "/api/templates/" + rbacTemplate(b) }, body: func(b *apiBundle) any { return firefoxTemplate(rbacTemplate(b)) }, want: adminOnly(200)},
	"DELETE /api/templates/{id}":        {path: func(b *apiBundle) string { return "/api/templates/" + rbacNewTemplate(b) }, want: adminOnly(204)},
	"POST /api/sessions":                {body: func(b *apiBundle) any { return map[string]any{"template": rbacTemplate(b)} }, want: signedIn(202)},
	"GET /api/sessions":                 {want: signedIn(200)},
	// the user's own session: another user gets 404, as for a missing one
	"GET /api/sessions/{id}":            {path: func(b *apiBundle) string { return "/api/sessions/" + rbacLiveSession(b) }, want: [4]int{401, 200, 404, 200}},
	"PATCH /api/sessions/{id}":          {path: func(b *apiBundle) string { return "/api/sessions/" + rbacEndedSession(b) }, body: func(*apiBundle) any { return map[string]string{"state": "hibernated"} }, want: [4]int{401, 409, 404, 409}},
	"DELETE /api/sessions/{id}":         {path: func(b *apiBundle) string { return "/api/sessions/" + rbacEndedSession(b) }, want: [4]int{401, 204, 404, 204}},
	"POST /api/sessions/{id}/heartbeat": {path: func(b *apiBundle) string { return "/api/sessions/" + rbacLiveSession(b) + "/heartbeat" }, want: [4]int{401, 204, 404, 204}},
	// webhooks (fixtures in server/webhooks_test.go); redeliver and test name a
	// missing delivery and webhook: webhook_deliveries_test.go runs them
	"POST /api/webhooks":                                         {body: func(*apiBundle) any { return webhookBody() }, want: adminOnly(201)},
	"GET /api/webhooks":                                          {want: adminOnly(200)},
	"GET /api/webhooks/{id}":                                     {path: rbacWebhookPath(""), want: adminOnly(200)},
	"PATCH /api/webhooks/{id}":                                   {path: rbacWebhookPath(""), body: func(*apiBundle) any { return map[string]any{"description": "by admin"} }, want: adminOnly(200)},
	"DELETE /api/webhooks/{id}":                                  {path: func(b *apiBundle) string { return "/api/webhooks/" + rbacNewWebhook(b) }, want: adminOnly(204)},
	"POST /api/webhooks/{id}/rotate-secret":                      {path: rbacWebhookPath("/rotate-secret"), want: adminOnly(200)},
	"GET /api/webhooks/{id}/deliveries":                          {path: rbacWebhookPath("/deliveries"), want: adminOnly(200)},
	"GET /api/webhooks/{id}/deliveries/{delivery_id}":            {path: rbacDeliveryPath(""), want: adminOnly(200)},
	"POST /api/webhooks/{id}/deliveries/{delivery_id}/redeliver": {path: rbacWebhookPath("/deliveries/" + uuid.NewString() + "/redeliver"), want: adminOnly(404)},
	"POST /api/webhooks/{id}/test":                               {path: fixed("/api/webhooks/" + uuid.NewString() + "/test"), want: adminOnly(404)},
	// integrations (fixtures in server/integrations_test.go); test names a
	// missing integration: TestIntegrationSendTest runs it with a worker
	"POST /api/integrations":                              {body: func(*apiBundle) any { return integrationBody() }, want: adminOnly(201)},
	"GET /api/integrations":                               {want: adminOnly(200)},
	"GET /api/integrations/{id}":                          {path: rbacIntegrationPath(""), want: adminOnly(200)},
	"PATCH /api/integrations/{id}":                        {path: rbacIntegrationPath(""), body: func(*apiBundle) any { return map[string]any{"name": "by admin"} }, want: adminOnly(200)},
	"DELETE /api/integrations/{id}":                       {path: func(b *apiBundle) string { return "/api/integrations/" + rbacNewIntegration(b) }, want: adminOnly(204)},
	"POST /api/integrations/{id}/test":                    {path: fixed("/api/integrations/" + uuid.NewString() + "/test"), want: adminOnly(404)},
	"GET /api/integrations/{id}/deliveries":               {path: rbacIntegrationPath("/deliveries"), want: adminOnly(200)},
	"GET /api/integrations/{id}/deliveries/{delivery_id}": {path: rbacIntegrationDeliveryPath, want: adminOnly(200)},
	// security alerts (fixtures in server/security_alerts_test.go): the
	// user's own alert; another user gets 404, as for a missing one
	"GET /api/security/alerts":                   {want: signedIn(200)},
	"GET /api/security/alerts/{id}":              {path: rbacAlertPath(""), want: [4]int{401, 200, 404, 200}},
	"POST /api/security/alerts/{id}/acknowledge": {path: rbacAlertPath("/acknowledge"), want: [4]int{401, 200, 404, 200}},
	"POST /api/security/alerts/{id}/resolve":     {path: rbacNewAlertPath("/resolve"), body: func(*apiBundle) any { return map[string]string{"note": "checked"} }, want: adminOnly(200)},
	// IP allowlist (fixtures in server/ip_allowlist_test.go): each create
	// adds the caller's own entry, covering the test client; the others use
	// disabled entries of the user's, which restrict nobody
	"POST /api/security/ip-whitelist":        {body: func(*apiBundle) any { return map[string]any{"ip_address": "127.0.0.0/8"} }, want: signedIn(201)},
	"GET /api/security/ip-whitelist":         {want: signedIn(200)},
	"GET /api/security/ip-whitelist/{id}":    {path: rbacIPEntryPath, want: [4]int{401, 200, 404, 200}},
	"PATCH /api/security/ip-whitelist/{id}":  {path: rbacIPEntryPath, body: func(*apiBundle) any { return map[string]any{"description": "changed"} }, want: [4]int{401, 200, 404, 200}},
	"DELETE /api/security/ip-whitelist/{id}": {path: func(b *apiBundle) string { return entryPath(rbacNewIPEntry(b)) }, want: [4]int{401, 204, 404, 204}},
	// MFA: the second login step needs a live mfa_token; the method routes
	// act on the caller's own methods only (an unverified TOTP method of
	// alice's: everyone else, admins included, gets 404)
	"POST /api/auth/mfa":                {body: func(*apiBundle) any { return map[string]string{"mfa_token": "x", "method": "totp", "code": "123456"} }, want: all(401)},
	"POST /api/auth/mfa/send":           {body: func(*apiBundle) any { return map[string]string{"mfa_token": "x", "method": "sms"} }, want: all(401)},
	"GET /api/security/mfa":             {want: signedIn(200)},
	"POST /api/security/mfa/setup":      {body: func(*apiBundle) any { return map[string]string{"type": "totp"} }, want: signedIn(201)},
	"GET /api/security/mfa/{id}/qr.png": {path: rbacMFAPath("/qr.png"), want: [4]int{401, 200, 404, 404}},
	"POST /api/security/mfa/{id}/send":  {path: rbacMFAPath("/send"), want: [4]int{401, 400, 404, 404}}, // TOTP has no codes to send
	"POST /api/security/mfa/{id}/verify": {path: rbacMFAPath("/verify"), body: func(b *apiBundle) any {
		return map[string]string{"code": wrongTOTPCode(b.t, rbacTOTPSecret, time.Now())}
	}, want: [4]int{401, 400, 404, 404}},
	"DELETE /api/security/mfa/{id}":                  {path: rbacMFAPath(""), want: [4]int{401, 204, 404, 404}},
	"POST /api/security/mfa/backup-codes/regenerate": {body: func(*apiBundle) any { return map[string]string{"code": "123456"} }, want: signedIn(409)}, // no MFA yet
	"GET /api/admin/security/policy":                 {want: adminOnly(200)},
	"PUT /api/admin/security/policy":                 {body: func(*apiBundle) any { return map[string]string{"mfa_required": "off"} }, want: adminOnly(200)},
	"DELETE /api/admin/users/{id}/lock":              {path: func(b *apiBundle) string { return "/api/admin/users/" + freshUser(b) + "/lock" }, want: adminOnly(204)},
}

func TestRouteAccess(t *testing.T) {
	t.Parallel()
	b := newSessionAPI(t, sessionAPIOptions{}).apiBundle // Kubernetes and Temporal behind the session routes
	routed := map[string]bool{}
	require.NoError(t, chi.Walk(b.server.Handler().(*chi.Mux), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + strings.TrimSuffix(route, "/")
		routed[key] = true
		if _, ok := routeTable[key]; !ok {
			t.Errorf("route %s has no entry in routeTable (server/rbac_test.go): decide who may call it", key)
		}
		return nil
	}))
	for key, rc := range routeTable {
		if !routed[key] {
			t.Errorf("routeTable lists %s, which the router does not serve", key)
			continue
		}
		checkRouteCase(t, b, key, rc)
	}
}

// checkRouteCase calls the route of key ("METHOD pattern") as each identity
// and reports every status that is not rc's.
func checkRouteCase(t *testing.T, b *apiBundle, key string, rc routeCase) {
	t.Helper()
	tokens := [4]string{"", b.user.Token, b.other.Token, b.admin.Token}
	method, pattern, _ := strings.Cut(key, " ")
	for who := range tokens {
		path := pattern
		if rc.path != nil {
			path = rc.path(b)
		}
		var body any
		if rc.body != nil {
			body = rc.body(b)
		}
		resp, data := b.call(method, path, tokens[who], body)
		if resp.StatusCode != rc.want[who] {
			t.Errorf("%s as %s: got %d, want %d: %s", key, identityNames[who], resp.StatusCode, rc.want[who], data)
		}
	}
}

// IP restrictions share the allowlist routes (routeTable has their other
// entries): only admins make, change or delete them.
func TestIPRestrictionAccess(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	restrictVictim := func(b *apiBundle) any {
		return map[string]any{"ip_address": "10.77.0.0/16", "user_id": freshUser(b), "kind": "restrict"}
	}
	restrictSelf := func(*apiBundle) any { return map[string]any{"ip_address": "10.78.0.0/16", "kind": "restrict"} }
	aliceRestriction := func(b *apiBundle) string { return entryPath(rbacNewIPRestriction(b)) }
	for _, c := range []struct {
		key string
		rc  routeCase
	}{
		{"POST /api/security/ip-whitelist", routeCase{body: restrictVictim, want: adminOnly(201)}},
		{"POST /api/security/ip-whitelist", routeCase{body: restrictSelf, want: [4]int{401, 403, 403, 400}}},
		{"PATCH /api/security/ip-whitelist/{id}", routeCase{path: aliceRestriction,
			body: func(*apiBundle) any { return map[string]any{"description": "changed"} }, want: [4]int{401, 403, 404, 200}}},
		{"DELETE /api/security/ip-whitelist/{id}", routeCase{path: aliceRestriction, want: [4]int{401, 403, 404, 204}}},
	} {
		checkRouteCase(t, b, c.key, c.rc)
	}
}
