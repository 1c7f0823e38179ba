package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

const testOIDCAudience = "streamspace"

// testIdP is a local OIDC issuer: a discovery document and a JWKS over
// httptest, and keys the test signs tokens with.
type testIdP struct {
	srv *httptest.Server

	mu        sync.Mutex
	published []jose.JSONWebKey // public keys in the JWKS
	issuer    string            // "issuer" of the discovery document ("" = srv.URL)
	noJWKSURI bool

	discoveryDown atomic.Bool // answer discovery with 503
	discoveryHits atomic.Int32
	jwksHits      atomic.Int32

	rsaKey *rsa.PrivateKey   // kid "rsa-1", published
	ecKey  *ecdsa.PrivateKey // kid "ec-1", published
}

func newTestIdP(t testing.TB) *testIdP {
	t.Helper()
	p := &testIdP{rsaKey: newRSAKey(t)}
	var err error
	p.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.publish("rsa-1", jose.RS256, &p.rsaKey.PublicKey)
	p.publish("ec-1", jose.ES256, &p.ecKey.PublicKey)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discoveryHits.Add(1)
		if p.discoveryDown.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		doc := map[string]any{
			"issuer":                                p.srv.URL,
			"authorization_endpoint":                p.srv.URL + "/authorize",
			"token_endpoint":                        p.srv.URL + "/token",
			"jwks_uri":                              p.srv.URL + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		}
		if p.issuer != "" {
			doc["issuer"] = p.issuer
		}
		if p.noJWKSURI {
			delete(doc, "jwks_uri")
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), p.published...)}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

func (p *testIdP) URL() string { return p.srv.URL }

// publish adds a public key to the JWKS.
func (p *testIdP) publish(kid string, alg jose.SignatureAlgorithm, pub any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(alg), Use: "sig"})
}

// claims are valid claims for subject, with extra merged in (a nil value
// deletes a claim).
func (p *testIdP) claims(sub string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": p.URL(), "aud": testOIDCAudience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs claims as a compact JWS with key under kid.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	var sk any = key
	if kid != "" {
		sk = jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(alg)}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	raw, err := jws.CompactSerialize()
	require.NoError(t, err)
	return raw
}

// token is a valid RS256 token of the IdP for sub.
func (p *testIdP) token(t *testing.T, sub string, extra map[string]any) string {
	t.Helper()
	return sign(t, jose.RS256, p.rsaKey, "rsa-1", p.claims(sub, extra))
}

type oidcFixture struct {
	idp   *testIdP
	pool  *pgxpool.Pool
	store *schemas.Store
	v     *oidcVerifier
}

func defaultOIDCConfig(issuer string) OIDCConfig {
	return OIDCConfig{
		Issuer:        issuer,
		Audience:      testOIDCAudience,
		RoleClaim:     "roles",
		AdminValues:   []string{"admin", "streamspace-admins"},
		UsernameClaim: "preferred_username",
	}
}

func newOIDCFixture(t *testing.T, edit func(*OIDCConfig)) *oidcFixture {
	t.Helper()
	idp := newTestIdP(t)
	pool := testenv.DB(t)
	store := &schemas.Store{Pool: pool}
	cfg := defaultOIDCConfig(idp.URL())
	if edit != nil {
		edit(&cfg)
	}
	v, err := newOIDCVerifier(context.Background(), cfg, store, idp.srv.Client(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return &oidcFixture{idp: idp, pool: pool, store: store, v: v}
}

// events returns the payloads of the events of type typ about userID.
func (f *oidcFixture) events(t *testing.T, typ schemas.EventType, userID uuid.UUID) []schemas.UserEventData {
	t.Helper()
	return userEvents(t, f.pool, typ, userID)
}

func (f *oidcFixture) countUsers(t *testing.T) int {
	t.Helper()
	n, err := f.store.CountUsers(context.Background())
	require.NoError(t, err)
	return n
}

func TestOIDCAcceptance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)

	t.Run("ProvisionedOnFirstSight", func(t *testing.T) {
		raw := f.idp.token(t, "sub-alice", map[string]any{
			"preferred_username": "alice", "email": "alice@example.com", "email_verified": true,
			"name": "Alice Liddell", "roles": "admin",
		})
		p, err := f.v.Verify(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, "alice", p.Username)
		require.Equal(t, RoleAdmin, p.Role, "role claim as a string naming an admin value")
		require.Equal(t, "oidc", p.Source)

		u, err := f.store.GetUserByOIDC(ctx, f.idp.URL(), "sub-alice")
		require.NoError(t, err)
		require.Equal(t, p.UserID, u.ID)
		require.Equal(t, "alice@example.com", u.Email)
		require.Equal(t, "Alice Liddell", u.DisplayName)
		require.Equal(t, "admin", u.Role)
		require.True(t, u.Active)
		require.Empty(t, u.PasswordHash, "an OIDC account has no local password")
		require.NotNil(t, u.LastLoginAt, "the sign-in is recorded")

		created := f.events(t, schemas.EventUserCreated, u.ID)
		require.Equal(t, []schemas.UserEventData{{UserID: u.ID.String(), Username: "alice",
			Email: "alice@example.com", Role: "admin"}}, created)

		// The same token again: same account, nothing written.
		p2, err := f.v.Verify(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, p, p2)
		require.Len(t, f.events(t, schemas.EventUserCreated, u.ID), 1)
		require.Empty(t, f.events(t, schemas.EventUserUpdated, u.ID))
	})

	roles := []struct {
		name  string
		roles any // nil: no claim
		want  Role
	}{
		{"ArrayWithAdminValue", []string{"staff", "streamspace-admins"}, RoleAdmin},
		{"ArrayWithoutAdminValue", []string{"staff", "developers"}, RoleUser},
		{"StringNotAdmin", "staff", RoleUser},
		{"AdminValueCaseDiffers", "Admin", RoleUser},
		{"ClaimAbsent", nil, RoleUser},
		{"ClaimOfWrongType", map[string]any{"admin": true}, RoleUser},
	}
	for _, tc := range roles {
		t.Run("Role"+tc.name, func(t *testing.T) {
			extra := map[string]any{"preferred_username": "role-" + tc.name}
			if tc.roles != nil {
				extra["roles"] = tc.roles
			}
			p, err := f.v.Verify(ctx, f.idp.token(t, "sub-role-"+tc.name, extra))
			require.NoError(t, err)
			require.Equal(t, tc.want, p.Role)
		})
	}

	t.Run("ES256", func(t *testing.T) {
		raw := sign(t, jose.ES256, f.idp.ecKey, "ec-1", f.idp.claims("sub-ec", map[string]any{"preferred_username": "eve"}))
		p, err := f.v.Verify(ctx, raw)
		require.NoError(t, err)
		require.Equal(t, "eve", p.Username)
	})

	t.Run("AudienceArray", func(t *testing.T) {
		raw := f.idp.token(t, "sub-multi-aud", map[string]any{"aud": []string{"other-client", testOIDCAudience}})
		_, err := f.v.Verify(ctx, raw)
		require.NoError(t, err)
	})

	t.Run("UnverifiedEmailNotStored", func(t *testing.T) {
		raw := f.idp.token(t, "sub-unverified", map[string]any{
			"preferred_username": "mallory", "email": "ceo@example.com", "email_verified": false,
		})
		p, err := f.v.Verify(ctx, raw)
		require.NoError(t, err)
		u, err := f.store.GetUser(ctx, p.UserID)
		require.NoError(t, err)
		require.Empty(t, u.Email)
	})
}

func TestOIDCNestedRoleClaim(t *testing.T) {
	t.Parallel()
	f := newOIDCFixture(t, func(c *OIDCConfig) { c.RoleClaim = "realm_access.roles" })
	raw := f.idp.token(t, "sub-kc", map[string]any{
		"preferred_username": "kc", "realm_access": map[string]any{"roles": []string{"offline_access", "admin"}},
	})
	p, err := f.v.Verify(context.Background(), raw)
	require.NoError(t, err)
	require.Equal(t, RoleAdmin, p.Role)
}

func TestOIDCRolesManagedLocallyWithoutRoleClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, func(c *OIDCConfig) { c.RoleClaim = "" })
	raw := f.idp.token(t, "sub-local-role", map[string]any{"preferred_username": "lr", "roles": "admin"})
	p, err := f.v.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, RoleUser, p.Role, "without a role claim configured, new accounts are users")

	// An admin promotes the account in StreamSpace; the IdP does not undo it.
	_, err = f.pool.Exec(ctx, `UPDATE users SET role = 'admin' WHERE id = $1`, p.UserID)
	require.NoError(t, err)
	p, err = f.v.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, RoleAdmin, p.Role)
	require.Empty(t, f.events(t, schemas.EventUserUpdated, p.UserID))
}

func TestOIDCSecondLoginUpdatesChangedClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)
	first, err := f.v.Verify(ctx, f.idp.token(t, "sub-bob", map[string]any{
		"preferred_username": "bob", "email": "bob@example.com", "name": "Bob", "roles": []string{"staff"},
	}))
	require.NoError(t, err)
	require.Equal(t, RoleUser, first.Role)

	second, err := f.v.Verify(ctx, f.idp.token(t, "sub-bob", map[string]any{
		"preferred_username": "robert", "email": "robert@example.com", "name": "Robert Tables",
		"roles": []string{"staff", "admin"},
	}))
	require.NoError(t, err)
	require.Equal(t, first.UserID, second.UserID, "same identity, same account")
	require.Equal(t, "robert", second.Username)
	require.Equal(t, RoleAdmin, second.Role)

	u, err := f.store.GetUser(ctx, first.UserID)
	require.NoError(t, err)
	require.Equal(t, "robert@example.com", u.Email)
	require.Equal(t, "Robert Tables", u.DisplayName)
	require.Equal(t, []schemas.UserEventData{{UserID: u.ID.String(), Username: "robert", Email: "robert@example.com",
		Role: "admin", Changed: []string{"username", "email", "display_name", "role"}}},
		f.events(t, schemas.EventUserUpdated, u.ID))

	// Removed from the admin group at the IdP: demoted at the next request.
	third, err := f.v.Verify(ctx, f.idp.token(t, "sub-bob", map[string]any{
		"preferred_username": "robert", "email": "robert@example.com", "name": "Robert Tables",
	}))
	require.NoError(t, err)
	require.Equal(t, RoleUser, third.Role)
	updates := f.events(t, schemas.EventUserUpdated, u.ID)
	require.Len(t, updates, 2)
	require.Equal(t, []string{"role"}, updates[1].Changed)
	require.Len(t, f.events(t, schemas.EventUserCreated, u.ID), 1)
}

func TestOIDCRejections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)
	idp := f.idp
	otherKey := newRSAKey(t)
	der, err := x509.MarshalPKIXPublicKey(&idp.rsaKey.PublicKey)
	require.NoError(t, err)
	valid := idp.token(t, "sub-victim", map[string]any{"preferred_username": "victim"})

	tamper := func(raw string, edit func(map[string]any)) string {
		parts := strings.Split(raw, ".")
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		require.NoError(t, err)
		var c map[string]any
		require.NoError(t, json.Unmarshal(payload, &c))
		edit(c)
		payload, err = json.Marshal(c)
		require.NoError(t, err)
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}
	unsigned := func(header map[string]any, claims map[string]any) string {
		h, _ := json.Marshal(header)
		c, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
	}

	cases := []struct {
		name string
		raw  string
	}{
		{"WrongAudience", idp.token(t, "sub-x", map[string]any{"aud": "some-other-app"})},
		{"NoAudience", idp.token(t, "sub-x", map[string]any{"aud": nil})},
		{"WrongIssuer", idp.token(t, "sub-x", map[string]any{"iss": "https://evil.example.com"})},
		{"Expired", idp.token(t, "sub-x", map[string]any{
			"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-time.Minute).Unix()})},
		{"NoExpiry", idp.token(t, "sub-x", map[string]any{"exp": nil})},
		{"NotYetValid", idp.token(t, "sub-x", map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})},
		{"SignedByUnknownKeyUnknownKid", sign(t, jose.RS256, otherKey, "attacker-1", idp.claims("sub-x", nil))},
		{"SignedByUnknownKeyPublishedKid", sign(t, jose.RS256, otherKey, "rsa-1", idp.claims("sub-x", nil))},
		{"SignedByUnknownKeyNoKid", sign(t, jose.RS256, otherKey, "", idp.claims("sub-x", nil))},
		{"TamperedPayload", tamper(valid, func(c map[string]any) { c["sub"] = "sub-admin"; c["roles"] = "admin" })},
		{"AlgNone", unsigned(map[string]any{"alg": "none", "typ": "JWT"}, idp.claims("sub-x", nil))},
		{"AlgNoneWithKid", unsigned(map[string]any{"alg": "none", "kid": "rsa-1"}, idp.claims("sub-x", nil))},
		{"HS256WithThePublicKeyAsSecret", sign(t, jose.HS256, der, "rsa-1", idp.claims("sub-x", nil))},
		{"NoSubject", idp.token(t, "", nil)},
		{"Garbage", "not.a.jwt"},
		{"Empty", ""},
		{"Oversized", idp.token(t, "sub-x", map[string]any{"pad": strings.Repeat("x", oidcMaxTokenBytes)})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.v.Verify(ctx, tc.raw)
			require.ErrorIs(t, err, ErrInvalidToken)
			t.Log(err)
		})
	}
	require.Zero(t, f.countUsers(t), "no rejected token provisions an account")

	// The untampered token is fine: the failures above are the changes.
	_, err = f.v.Verify(ctx, valid)
	require.NoError(t, err)
}

func TestOIDCDeactivatedUserRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)
	p, err := f.v.Verify(ctx, f.idp.token(t, "sub-carol", map[string]any{"preferred_username": "carol"}))
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `UPDATE users SET active = false WHERE id = $1`, p.UserID)
	require.NoError(t, err)

	// Even with changed claims: refused, and the account is left as it is.
	_, err = f.v.Verify(ctx, f.idp.token(t, "sub-carol", map[string]any{"preferred_username": "caroline", "roles": "admin"}))
	require.ErrorIs(t, err, ErrInvalidToken)
	u, err := f.store.GetUser(ctx, p.UserID)
	require.NoError(t, err)
	require.Equal(t, "carol", u.Username)
	require.Equal(t, "user", u.Role)
	require.False(t, u.Active)
	require.Empty(t, f.events(t, schemas.EventUserUpdated, p.UserID))
	require.Equal(t, 1, f.countUsers(t), "a deactivated identity is not provisioned again")
}

func TestOIDCConcurrentFirstLogins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)
	raw := f.idp.token(t, "sub-dave", map[string]any{"preferred_username": "dave", "email": "dave@example.com"})
	const n = 12
	ids := make([]uuid.UUID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			p, err := f.v.Verify(ctx, raw)
			ids[i], errs[i] = p.UserID, err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, ids[0], ids[i])
	}
	require.Equal(t, 1, f.countUsers(t))
	require.Len(t, f.events(t, schemas.EventUserCreated, ids[0]), 1)
	require.Empty(t, f.events(t, schemas.EventUserUpdated, ids[0]))
}

func TestOIDCLazyDiscovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp := newTestIdP(t)
	idp.discoveryDown.Store(true)
	store := &schemas.Store{Pool: testenv.DB(t)}
	v, err := newOIDCVerifier(ctx, defaultOIDCConfig(idp.URL()), store, idp.srv.Client(), slog.New(slog.DiscardHandler))
	require.NoError(t, err, "an unreachable IdP does not stop the server from starting")
	require.EqualValues(t, 1, idp.discoveryHits.Load())

	raw := idp.token(t, "sub-erin", map[string]any{"preferred_username": "erin"})
	_, err = v.Verify(ctx, raw)
	require.ErrorIs(t, err, errOIDCUnavailable)
	require.NotErrorIs(t, err, ErrInvalidToken, "the token may be fine: 503, not 401")
	var apiErr *Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, CodeUnavailable, apiErr.Code)
	require.EqualValues(t, 1, idp.discoveryHits.Load(), "retries back off instead of hitting the IdP per request")

	idp.discoveryDown.Store(false)
	v.mu.Lock()
	v.nextAttempt = time.Time{} // the back-off has passed
	v.mu.Unlock()
	p, err := v.Verify(ctx, raw)
	require.NoError(t, err)
	require.Equal(t, "erin", p.Username)
	require.EqualValues(t, 2, idp.discoveryHits.Load())
	_, err = v.Verify(ctx, raw)
	require.NoError(t, err)
	require.EqualValues(t, 2, idp.discoveryHits.Load(), "discovery runs once it has succeeded")
}

func TestOIDCStartupConfigErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &schemas.Store{} // never reached
	logger := slog.New(slog.DiscardHandler)

	t.Run("IssuerMismatch", func(t *testing.T) {
		idp := newTestIdP(t)
		idp.issuer = "https://login.example.com"
		_, err := newOIDCVerifier(ctx, defaultOIDCConfig(idp.URL()), store, idp.srv.Client(), logger)
		var mismatch *oidc.IssuerMismatchError
		require.ErrorAs(t, err, &mismatch)
	})
	t.Run("NoJWKSURI", func(t *testing.T) {
		idp := newTestIdP(t)
		idp.noJWKSURI = true
		_, err := newOIDCVerifier(ctx, defaultOIDCConfig(idp.URL()), store, idp.srv.Client(), logger)
		require.ErrorContains(t, err, "jwks_uri")
	})
	for name, cfg := range map[string]OIDCConfig{
		"NoIssuer":          {Audience: testOIDCAudience},
		"NoAudience":        {Issuer: "https://login.example.com"},
		"PlainHTTPIssuer":   {Issuer: "http://login.example.com", Audience: testOIDCAudience},
		"RelativeIssuer":    {Issuer: "login.example.com", Audience: testOIDCAudience},
		"UnsupportedScheme": {Issuer: "ftp://login.example.com", Audience: testOIDCAudience},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newOIDCVerifier(ctx, cfg, store, nil, logger)
			require.Error(t, err)
		})
	}
}

func TestOIDCKeyRotationAndJWKSThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newOIDCFixture(t, nil)
	_, err := f.v.Verify(ctx, f.idp.token(t, "sub-frank", map[string]any{"preferred_username": "frank"}))
	require.NoError(t, err)
	require.EqualValues(t, 1, f.idp.jwksHits.Load())

	// Forged tokens naming unknown keys do not turn into a JWKS download each.
	attacker := newRSAKey(t)
	for i := range 20 {
		raw := sign(t, jose.RS256, attacker, "attacker-"+string(rune('a'+i)), f.idp.claims("sub-frank", nil))
		_, err := f.v.Verify(ctx, raw)
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	require.EqualValues(t, 1, f.idp.jwksHits.Load(), "downloads are throttled")

	// The IdP rotates to a new key; once the throttle interval has passed,
	// the first token naming it triggers a download and is accepted.
	rotated := newRSAKey(t)
	f.idp.publish("rsa-2", jose.RS256, &rotated.PublicKey)
	f.v.jwks.mu.Lock()
	f.v.jwks.last = time.Now().Add(-oidcJWKSMinRefresh)
	f.v.jwks.mu.Unlock()
	raw := sign(t, jose.RS256, rotated, "rsa-2", f.idp.claims("sub-frank", map[string]any{"preferred_username": "frank"}))
	_, err = f.v.Verify(ctx, raw)
	require.NoError(t, err)
	require.EqualValues(t, 2, f.idp.jwksHits.Load())
	// The old key is still in the cache.
	_, err = f.v.Verify(ctx, f.idp.token(t, "sub-frank", map[string]any{"preferred_username": "frank"}))
	require.NoError(t, err)
	require.EqualValues(t, 2, f.idp.jwksHits.Load())
}

func TestOIDCErrorsMapToStatus(t *testing.T) {
	t.Parallel()
	// The middleware answers 401 for ErrInvalidToken and writeError's table
	// for the rest: an unreachable IdP must come out as 503.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/me", nil)
	writeError(rec, req, slog.New(slog.DiscardHandler), errors.Join(errors.New("discovery: dial tcp: refused"), errOIDCUnavailable))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "UNAVAILABLE", decodeEnvelope(t, rec.Body.Bytes()).Error.Code)
}

// BenchmarkOIDCVerify measures the hot path: a known account, unchanged
// claims (signature check, claims mapping, one indexed read).
func BenchmarkOIDCVerify(b *testing.B) {
	ctx := context.Background()
	idp := newTestIdP(b)
	store := &schemas.Store{Pool: testenv.DB(b)}
	v, err := newOIDCVerifier(ctx, defaultOIDCConfig(idp.URL()), store, idp.srv.Client(), slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	claims := idp.claims("sub-bench", map[string]any{"preferred_username": "bench", "roles": []string{"admin"}})
	payload, err := json.Marshal(claims)
	require.NoError(b, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
		Key: jose.JSONWebKey{Key: idp.rsaKey, KeyID: "rsa-1", Algorithm: "RS256"}}, nil)
	require.NoError(b, err)
	jws, err := signer.Sign(payload)
	require.NoError(b, err)
	raw, err := jws.CompactSerialize()
	require.NoError(b, err)
	_, err = v.Verify(ctx, raw)
	require.NoError(b, err)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
