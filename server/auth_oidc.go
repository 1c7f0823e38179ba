package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/streamspace/enterprise/schemas"
)

// Limits and timings of the OIDC verifier.
const (
	oidcMaxTokenBytes      = 16 << 10         // a bearer token longer than this is refused unparsed
	oidcMaxResponseBytes   = 1 << 20          // discovery document and JWKS size cap
	oidcHTTPTimeout        = 10 * time.Second // when the given client has none
	oidcDiscoveryTimeout   = 10 * time.Second
	oidcDiscoveryBackoff   = time.Second      // first wait before discovery is retried
	oidcDiscoveryMaxWait   = 30 * time.Second // longest wait between discovery attempts
	oidcJWKSMinRefresh     = 10 * time.Second // at most one JWKS download per interval
	oidcDefaultUserClaim   = "preferred_username"
	oidcMaxSubjectBytes    = 255 // OpenID Connect Core §2
	oidcMaxDisplayNameRune = 200
)

// errOIDCUnavailable is wrapped when a token cannot be checked because the
// issuer's discovery document could not be fetched (the IdP is down or
// unreachable). It is not ErrInvalidToken: the token may be fine, so the
// client gets 503 UNAVAILABLE (writeError maps it) and should retry, not
// sign in again.
var errOIDCUnavailable = &Error{Code: CodeUnavailable, Message: "the identity provider cannot be reached; try again later"}

// oidcVerifier accepts bearer tokens (ID tokens or JWT access tokens) issued
// by the configured external OIDC issuer for the configured audience, and
// maps each to a local account, provisioned on first sight.
//
// Discovery is lazy when it has to be: newOIDCVerifier tries it once, and if
// the IdP cannot be reached the server still starts; Verify retries discovery
// (one attempt at a time, backing off from 1s to 30s) and answers
// errOIDCUnavailable meanwhile. Local logins keep working while the IdP is
// down. Configuration errors (no audience, an issuer that is not https, an
// IdP that announces a different issuer or no jwks_uri) fail at start.
//
// Signing keys come from go-oidc's remote key set: cached in memory and
// re-downloaded when a token names a key ID not in the cache (key rotation).
// Because a forged token with an unknown kid would make every such request
// download the JWKS, downloads are limited to one per oidcJWKSMinRefresh; in
// between, the last downloaded set answers. A rotated key is therefore
// accepted at most that long after the first token signed with it.
type oidcVerifier struct {
	cfg           OIDCConfig
	store         *schemas.Store
	logger        *slog.Logger
	client        *http.Client
	jwks          *jwksThrottle
	admin         map[string]bool
	usernameClaim string

	idv atomic.Pointer[oidc.IDTokenVerifier] // nil until discovery succeeded

	mu          sync.Mutex
	discovering bool
	nextAttempt time.Time
	backoff     time.Duration
	maxBackoff  time.Duration
	lastErr     error
}

// newOIDCVerifier checks cfg and runs discovery against cfg.Issuer with
// httpClient (which should have a timeout; a copy gets oidcHTTPTimeout when it
// has none, and nil means a private client, never http.DefaultClient). A
// discovery failure from an unreachable or failing IdP is logged and retried
// lazily by Verify; a misconfiguration is returned as an error.
// NewOIDCVerifier builds the verifier of tokens from cfg.Issuer, for
// Deps.OIDC; see newOIDCVerifier.
func NewOIDCVerifier(ctx context.Context, cfg OIDCConfig, store *schemas.Store, httpClient *http.Client, logger *slog.Logger) (TokenVerifier, error) {
	return newOIDCVerifier(ctx, cfg, store, httpClient, logger)
}

func newOIDCVerifier(ctx context.Context, cfg OIDCConfig, store *schemas.Store, httpClient *http.Client, logger *slog.Logger) (*oidcVerifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oidc: issuer is not set")
	}
	if err := checkOIDCURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("oidc: issuer: %w", err)
	}
	if cfg.Audience == "" {
		return nil, errors.New("oidc: audience (the client ID tokens are issued for) is not set")
	}
	if store == nil {
		return nil, errors.New("oidc: no store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{Timeout: oidcHTTPTimeout}
	if httpClient != nil {
		c := *httpClient
		client = &c
		if client.Timeout == 0 {
			client.Timeout = oidcHTTPTimeout
		}
	}
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	throttle := &jwksThrottle{base: base, minInterval: oidcJWKSMinRefresh}
	client.Transport = throttle
	v := &oidcVerifier{
		cfg:           cfg,
		store:         store,
		logger:        logger.With("component", "oidc", "issuer", cfg.Issuer),
		client:        client,
		jwks:          throttle,
		admin:         make(map[string]bool, len(cfg.AdminValues)),
		usernameClaim: cfg.UsernameClaim,
		backoff:       oidcDiscoveryBackoff,
		maxBackoff:    oidcDiscoveryMaxWait,
	}
	for _, a := range cfg.AdminValues {
		v.admin[a] = true
	}
	if v.usernameClaim == "" {
		v.usernameClaim = oidcDefaultUserClaim
	}
	iv, err := v.discover(ctx)
	var perm *permanentOIDCError
	switch {
	case errors.As(err, &perm):
		return nil, err
	case err != nil:
		v.logger.WarnContext(ctx, "oidc discovery failed; tokens from this issuer are refused with 503 until it succeeds",
			"err", err)
		v.failed(err)
	default:
		v.idv.Store(iv)
	}
	return v, nil
}

// Issuer is the configured issuer; the authentication middleware sends it
// the tokens whose (unverified) iss equals it.
func (v *oidcVerifier) Issuer() string { return v.cfg.Issuer }

// Verify checks raw's signature against the issuer's JWKS, its issuer,
// audience, expiry and not-before, then returns the caller's account,
// creating it on first sight or updating it when the IdP's claims changed.
// Every failure of the token, and a deactivated account, wraps
// ErrInvalidToken; an unreachable IdP wraps errOIDCUnavailable; anything else
// (the database) is an internal error.
func (v *oidcVerifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if len(raw) > oidcMaxTokenBytes {
		return Principal{}, fmt.Errorf("%w: oidc: token longer than %d bytes", ErrInvalidToken, oidcMaxTokenBytes)
	}
	iv, err := v.verifier(ctx)
	if err != nil {
		return Principal{}, err
	}
	tok, err := iv.Verify(ctx, raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: oidc: claims: %v", ErrInvalidToken, err)
	}
	id, err := v.identity(tok, claims)
	if err != nil {
		return Principal{}, err
	}
	id.ClientIP = clientIP(ctx) // named by the alert of a role the claim changes
	u, created, changed, err := v.store.ProvisionOIDCUser(ctx, id)
	if err != nil {
		return Principal{}, fmt.Errorf("oidc: %w", err)
	}
	if !u.Active {
		return Principal{}, fmt.Errorf("%w: oidc: account %s is deactivated", ErrInvalidToken, u.ID)
	}
	switch {
	case created:
		v.logger.InfoContext(ctx, "oidc user provisioned", "user_id", u.ID, "username", u.Username, "role", u.Role)
	case len(changed) > 0:
		v.logger.InfoContext(ctx, "oidc user updated from the identity provider's claims",
			"user_id", u.ID, "username", u.Username, "changed", changed)
	}
	v.touchLogin(ctx, u, tok, claims)
	return Principal{UserID: u.ID, Username: u.Username, Role: Role(u.Role), Source: "oidc"}, nil
}

// identity maps a verified token's claims to the account it stands for.
func (v *oidcVerifier) identity(tok *oidc.IDToken, claims map[string]any) (schemas.OIDCIdentity, error) {
	if tok.Subject == "" || len(tok.Subject) > oidcMaxSubjectBytes {
		return schemas.OIDCIdentity{}, fmt.Errorf("%w: oidc: missing or overlong sub claim", ErrInvalidToken)
	}
	email, _ := claims["email"].(string)
	if verified, ok := claims["email_verified"]; ok && (verified == false || verified == "false") {
		// An address the IdP has not verified is not stored (notifications
		// would go to whoever typed it in).
		email = ""
	}
	if len(email) > 254 || !strings.Contains(email, "@") {
		email = ""
	}
	name, _ := claims["name"].(string)
	if r := []rune(strings.TrimSpace(name)); len(r) > oidcMaxDisplayNameRune {
		name = string(r[:oidcMaxDisplayNameRune])
	}
	username, _ := lookupClaim(claims, v.usernameClaim).(string)
	return schemas.OIDCIdentity{
		Issuer:      tok.Issuer,
		Subject:     tok.Subject,
		Username:    username,
		Email:       email,
		DisplayName: strings.TrimSpace(name),
		Role:        v.role(claims),
	}, nil
}

// role maps the configured role claim to a role: admin when any of its
// values (a string, or an array of strings) is one of AdminValues, exactly,
// else user, including when the claim is absent, so removing someone from the
// admin group at the IdP demotes them at their next request. With no role
// claim configured, roles are managed in StreamSpace: "" leaves the account's
// role alone (new accounts are users).
func (v *oidcVerifier) role(claims map[string]any) string {
	if v.cfg.RoleClaim == "" {
		return ""
	}
	switch val := lookupClaim(claims, v.cfg.RoleClaim).(type) {
	case string:
		if v.admin[val] {
			return string(RoleAdmin)
		}
	case []any:
		for _, e := range val {
			if s, ok := e.(string); ok && v.admin[s] {
				return string(RoleAdmin)
			}
		}
	}
	return string(RoleUser)
}

// lookupClaim finds a claim by its exact name (which may contain dots, as
// namespaced claims like "https://example.com/roles" do), else by a dotted
// path into nested objects ("realm_access.roles" in Keycloak).
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}

// touchLogin records the sign-in the token stands for: auth_time (when the
// user authenticated at the IdP), else iat. A request with a token whose
// sign-in is already recorded writes nothing, so this is one write per
// sign-in or token refresh, not per request. Failures are only logged.
func (v *oidcVerifier) touchLogin(ctx context.Context, u schemas.User, tok *oidc.IDToken, claims map[string]any) {
	at := tok.IssuedAt
	if t, ok := claims["auth_time"].(float64); ok && t > 0 {
		at = time.Unix(int64(t), 0)
	}
	if now := time.Now(); at.After(now) {
		at = now
	}
	if at.IsZero() || (u.LastLoginAt != nil && !u.LastLoginAt.Before(at)) {
		return
	}
	if err := v.store.TouchLogin(ctx, u.ID); err != nil {
		v.logger.WarnContext(ctx, "recording oidc sign-in failed", "user_id", u.ID, "err", err)
	}
}

// verifier returns the token verifier, running discovery first when it has
// not succeeded yet (at most one attempt at a time, with back-off).
func (v *oidcVerifier) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if iv := v.idv.Load(); iv != nil {
		return iv, nil
	}
	v.mu.Lock()
	if iv := v.idv.Load(); iv != nil {
		v.mu.Unlock()
		return iv, nil
	}
	if v.discovering || time.Now().Before(v.nextAttempt) {
		cause := v.lastErr
		v.mu.Unlock()
		return nil, fmt.Errorf("oidc discovery of %s: %v: %w", v.cfg.Issuer, cause, errOIDCUnavailable)
	}
	v.discovering = true
	v.mu.Unlock()

	iv, err := v.discover(ctx)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.discovering = false
	if err != nil {
		v.logger.WarnContext(ctx, "oidc discovery failed", "err", err, "retry_in", v.backoff)
		v.failedLocked(err)
		return nil, fmt.Errorf("oidc discovery of %s: %v: %w", v.cfg.Issuer, err, errOIDCUnavailable)
	}
	v.logger.InfoContext(ctx, "oidc discovery succeeded")
	v.idv.Store(iv)
	v.lastErr = nil
	return iv, nil
}

func (v *oidcVerifier) failed(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.failedLocked(err)
}

func (v *oidcVerifier) failedLocked(err error) {
	v.lastErr = err
	v.nextAttempt = time.Now().Add(v.backoff)
	v.backoff = min(2*v.backoff, v.maxBackoff)
}

// permanentOIDCError is a discovery failure that retrying will not fix.
type permanentOIDCError struct{ err error }

func (e *permanentOIDCError) Error() string { return e.err.Error() }
func (e *permanentOIDCError) Unwrap() error { return e.err }

// discover fetches the discovery document and builds the token verifier.
// The request is not cancelled with ctx (a client hanging up should not waste
// the attempt) but is bounded by oidcDiscoveryTimeout.
func (v *oidcVerifier) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oidcDiscoveryTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.cfg.Issuer)
	var mismatch *oidc.IssuerMismatchError
	switch {
	case errors.As(err, &mismatch):
		return nil, &permanentOIDCError{fmt.Errorf("oidc: %w (the configured issuer must be exactly the discovery document's \"issuer\")", err)}
	case err != nil:
		return nil, fmt.Errorf("oidc: discovery: %w", err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery document: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, &permanentOIDCError{errors.New("oidc: the discovery document has no jwks_uri")}
	}
	if err := checkOIDCURL(meta.JWKSURI); err != nil {
		return nil, &permanentOIDCError{fmt.Errorf("oidc: jwks_uri: %w", err)}
	}
	v.jwks.setURL(meta.JWKSURI)
	// The key set lives as long as the verifier: its context carries only the
	// HTTP client, never a deadline.
	keyCtx := oidc.ClientContext(context.Background(), v.client)
	return provider.VerifierContext(keyCtx, &oidc.Config{ClientID: v.cfg.Audience}), nil
}

// checkOIDCURL accepts https URLs, and http ones only on loopback (tests,
// local IdPs): keys fetched over plain HTTP could be replaced in transit,
// which would let anyone mint accepted tokens.
func checkOIDCURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("%q must be an https URL (http is accepted only on loopback)", raw)
}

// jwksThrottle is the verifier's HTTP transport. It caps every response body
// at oidcMaxResponseBytes and lets at most one request per minInterval reach
// the JWKS URL; in between, the last downloaded key set is served from memory
// (or, when the last download failed, an error is returned at once).
type jwksThrottle struct {
	base        http.RoundTripper
	minInterval time.Duration

	mu      sync.Mutex
	url     string
	last    time.Time // last download attempt
	body    []byte    // last downloaded key set
	header  http.Header
	lastErr error
}

func (t *jwksThrottle) setURL(u string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.url = u
}

func (t *jwksThrottle) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	isJWKS := t.url != "" && req.Method == http.MethodGet && req.URL.String() == t.url
	if isJWKS && !t.last.IsZero() && time.Since(t.last) < t.minInterval {
		body, header, lastErr := t.body, t.header.Clone(), t.lastErr
		t.mu.Unlock()
		if body == nil {
			if lastErr == nil {
				lastErr = errors.New("no key set downloaded yet")
			}
			return nil, fmt.Errorf("jwks download throttled: %w", lastErr)
		}
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
		}, nil
	}
	if isJWKS {
		t.last = time.Now()
	}
	t.mu.Unlock()

	resp, err := t.base.RoundTrip(req)
	if !isJWKS {
		if err == nil {
			resp.Body = limitBody(resp.Body)
		}
		return resp, err
	}
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, oidcMaxResponseBytes+1))
		_ = resp.Body.Close()
		switch {
		case err != nil:
		case len(body) > oidcMaxResponseBytes:
			err = fmt.Errorf("jwks larger than %d bytes", oidcMaxResponseBytes)
		case resp.StatusCode != http.StatusOK:
			err = fmt.Errorf("jwks: %s", resp.Status)
		}
	}
	t.mu.Lock()
	t.lastErr = err
	if err == nil {
		t.body, t.header = body, resp.Header.Clone()
	}
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}

func limitBody(rc io.ReadCloser) io.ReadCloser {
	return limitedBody{Reader: io.LimitReader(rc, oidcMaxResponseBytes), Closer: rc}
}
