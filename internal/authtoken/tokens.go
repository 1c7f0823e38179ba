package authtoken

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// ErrInvalid is wrapped by every verification failure.
var ErrInvalid = errors.New("invalid access token")

// Claims are what an access token asserts.
type Claims struct {
	jwt.RegisteredClaims
	Username string `json:"preferred_username"`
	Role     string `json:"role"`
}

// Authority issues and verifies access tokens. The first key signs; every
// key verifies the tokens whose kid names it.
type Authority struct {
	issuer   string
	audience string
	ttl      time.Duration
	signer   *Key
	keys     map[string]*Key
	now      func() time.Time
}

// NewAuthority builds an authority. signer must hold private material;
// previous keys (private or public) keep verifying tokens they signed.
func NewAuthority(issuer, audience string, ttl time.Duration, signer *Key, previous ...*Key) (*Authority, error) {
	if signer == nil || !signer.CanSign() {
		return nil, errors.New("the signing key must hold private material")
	}
	a := &Authority{issuer: issuer, audience: audience, ttl: ttl, signer: signer,
		keys: map[string]*Key{signer.ID: signer}, now: time.Now}
	for _, k := range previous {
		if _, dup := a.keys[k.ID]; dup {
			return nil, fmt.Errorf("two keys share the key ID %q", k.ID)
		}
		a.keys[k.ID] = k
	}
	return a, nil
}

// SetClock replaces the clock (tests).
func (a *Authority) SetClock(now func() time.Time) { a.now = now }

// Issuer is the iss claim this authority writes.
func (a *Authority) Issuer() string { return a.issuer }

// TTL is how long an access token lives.
func (a *Authority) TTL() time.Duration { return a.ttl }

// Issue signs an access token for a user.
func (a *Authority) Issue(userID uuid.UUID, username, role string) (string, time.Time, error) {
	now := a.now()
	exp := now.Add(a.ttl)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{a.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
		Username: username,
		Role:     role,
	}
	tok := jwt.NewWithClaims(a.signer.method, claims)
	tok.Header["kid"] = a.signer.ID
	signed, err := tok.SignedString(a.signer.sign)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks an access token's signature (by the key its kid names, with
// that key's algorithm only), issuer, audience and lifetime.
func (a *Authority) Verify(raw string) (Claims, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := a.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		if t.Method.Alg() != k.method.Alg() {
			return nil, fmt.Errorf("algorithm %s does not match key %q", t.Method.Alg(), kid)
		}
		return k.verify, nil
	},
		jwt.WithIssuer(a.issuer),
		jwt.WithAudience(a.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithTimeFunc(a.now),
		jwt.WithValidMethods([]string{"EdDSA", "RS256", "HS256"}),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := uuid.Parse(claims.Subject); err != nil {
		return Claims{}, fmt.Errorf("%w: subject is not a user id", ErrInvalid)
	}
	return claims, nil
}

// PeekIssuer reads a JWT's iss claim without verifying anything, to choose
// which verifier to use. Never trust anything else read this way.
func PeekIssuer(raw string) (string, bool) {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil {
		return "", false
	}
	return claims.Issuer, claims.Issuer != ""
}
