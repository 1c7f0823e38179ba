package authtoken

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func ed25519Key(t *testing.T, id string) *Key {
	t.Helper()
	pemBytes, err := GenerateEd25519PEM()
	require.NoError(t, err)
	k, err := ParsePEMKey(id, pemBytes)
	require.NoError(t, err)
	return k
}

func TestIssueAndVerify(t *testing.T) {
	t.Parallel()
	user := uuid.New()
	key := ed25519Key(t, "")
	a, err := NewAuthority("streamspace", "streamspace-api", 15*time.Minute, key)
	require.NoError(t, err)
	raw, exp, err := a.Issue(user, "alice", "admin")
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(15*time.Minute), exp, time.Second)

	claims, err := a.Verify(raw)
	require.NoError(t, err)
	require.Equal(t, user.String(), claims.Subject)
	require.Equal(t, "alice", claims.Username)
	require.Equal(t, "admin", claims.Role)
	iss, ok := PeekIssuer(raw)
	require.True(t, ok)
	require.Equal(t, "streamspace", iss)

	t.Run("Expired", func(t *testing.T) {
		later, _ := NewAuthority("streamspace", "streamspace-api", 15*time.Minute, key)
		later.SetClock(func() time.Time { return time.Now().Add(16 * time.Minute) })
		_, err := later.Verify(raw)
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("Tampered", func(t *testing.T) {
		parts := strings.Split(raw, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		forged := strings.Replace(string(payload), `"role":"admin"`, `"role":"user"`, 1)
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
		_, err := a.Verify(strings.Join(parts, "."))
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("UnknownKey", func(t *testing.T) {
		other, _ := NewAuthority("streamspace", "streamspace-api", time.Minute, ed25519Key(t, "other"))
		forged, _, _ := other.Issue(user, "alice", "admin")
		_, err := a.Verify(forged)
		require.ErrorIs(t, err, ErrInvalid)
		require.ErrorContains(t, err, `unknown key id "other"`)
	})
	t.Run("WrongAudienceOrIssuer", func(t *testing.T) {
		b, _ := NewAuthority("streamspace", "another-api", time.Minute, key)
		tok, _, _ := b.Issue(user, "alice", "user")
		_, err := a.Verify(tok)
		require.ErrorIs(t, err, ErrInvalid)
		c, _ := NewAuthority("evil", "streamspace-api", time.Minute, key)
		tok, _, _ = c.Issue(user, "alice", "user")
		_, err = a.Verify(tok)
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("AlgNone", func(t *testing.T) {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "streamspace", "aud": "streamspace-api",
			"sub": user.String(), "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
		tok.Header["kid"] = key.ID
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		_, err = a.Verify(s)
		require.ErrorIs(t, err, ErrInvalid)
	})
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := ed25519Key(t, "2026-10"), ed25519Key(t, "2026-11")
	before, err := NewAuthority("streamspace", "api", time.Hour, oldKey)
	require.NoError(t, err)
	tok, _, err := before.Issue(uuid.New(), "bob", "user")
	require.NoError(t, err)

	after, err := NewAuthority("streamspace", "api", time.Hour, newKey, oldKey)
	require.NoError(t, err)
	_, err = after.Verify(tok)
	require.NoError(t, err, "tokens of the previous key stay valid after rotation")
	fresh, _, err := after.Issue(uuid.New(), "bob", "user")
	require.NoError(t, err)
	_, err = before.Verify(fresh)
	require.ErrorIs(t, err, ErrInvalid)

	_, err = NewAuthority("streamspace", "api", time.Hour, newKey, newKey)
	require.ErrorContains(t, err, "share the key ID")
}

// An RSA public key must never be usable as an HMAC secret (the classic
// algorithm-confusion attack): the kid fixes the algorithm.
func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	key, err := ParsePEMKey("rsa1", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	require.Equal(t, "RS256", key.Alg())
	a, err := NewAuthority("streamspace", "api", time.Hour, key)
	require.NoError(t, err)

	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "streamspace", "aud": "api",
		"sub": uuid.NewString(), "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	tok.Header["kid"] = "rsa1"
	forged, err := tok.SignedString(pubPEM)
	require.NoError(t, err)
	_, err = a.Verify(forged)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestKeyParsing(t *testing.T) {
	t.Parallel()
	_, err := NewHMACKey("", []byte("short"))
	require.Error(t, err)
	k, err := NewHMACKey("", []byte(strings.Repeat("s", 32)))
	require.NoError(t, err)
	require.Equal(t, "HS256", k.Alg())
	require.True(t, strings.HasPrefix(k.ID, "hs-"))
	_, err = ParsePEMKey("", []byte("not pem"))
	require.Error(t, err)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	_, err = ParsePEMKey("", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.ErrorContains(t, err, "2048")
}

// BenchmarkVerify is the JWT check of every authenticated request.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{"HS256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			var key *Key
			var err error
			if alg == "HS256" {
				key, err = NewHMACKey("", []byte(strings.Repeat("k", 32)))
			} else {
				var p []byte
				if p, err = GenerateEd25519PEM(); err == nil {
					key, err = ParsePEMKey("", p)
				}
			}
			if err != nil {
				b.Fatal(err)
			}
			a, _ := NewAuthority("streamspace", "api", time.Hour, key)
			tok, _, _ := a.Issue(uuid.New(), "alice", "user")
			for b.Loop() {
				if _, err := a.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
