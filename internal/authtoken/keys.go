// Package authtoken signs and verifies the API's access tokens: JWTs with a
// key ID (kid) in the header, so the signing key can rotate while tokens
// signed by the previous key stay valid until they expire.
package authtoken

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one signing or verification key.
type Key struct {
	ID     string
	method jwt.SigningMethod
	sign   any // private key or HMAC secret; nil for verify-only keys
	verify any // public key or HMAC secret
}

// Alg is the JWS algorithm of the key.
func (k *Key) Alg() string { return k.method.Alg() }

// CanSign reports whether the key holds private material.
func (k *Key) CanSign() bool { return k.sign != nil }

// NewHMACKey makes an HS256 key from a secret of at least 32 bytes. An empty
// id derives one from the secret.
func NewHMACKey(id string, secret []byte) (*Key, error) {
	if len(secret) < 32 {
		return nil, errors.New("an HS256 secret must be at least 32 bytes")
	}
	if id == "" {
		sum := sha256.Sum256(append([]byte("streamspace-kid:"), secret...))
		id = "hs-" + hex.EncodeToString(sum[:8])
	}
	return &Key{ID: id, method: jwt.SigningMethodHS256, sign: secret, verify: secret}, nil
}

// ParsePEMKey reads an Ed25519 or RSA key in PEM form: a private key (PKCS#8,
// or PKCS#1 for RSA) can sign and verify; a public key (PKIX) only verifies.
// An empty id derives one from the public key.
func ParsePEMKey(id string, data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var priv, pub any
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		priv = k
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA private key: %w", err)
		}
		priv = k
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		pub = k
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if priv != nil {
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return nil, errors.New("unsupported private key")
		}
		pub = signer.Public()
	}
	var method jwt.SigningMethod
	switch p := pub.(type) {
	case ed25519.PublicKey:
		method = jwt.SigningMethodEdDSA
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must have at least 2048 bits")
		}
		method = jwt.SigningMethodRS256
	default:
		return nil, fmt.Errorf("unsupported key type %T (use Ed25519 or RSA)", pub)
	}
	if id == "" {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(der)
		id = hex.EncodeToString(sum[:8])
	}
	return &Key{ID: id, method: method, sign: priv, verify: pub}, nil
}

// GenerateEd25519PEM makes a new Ed25519 private key in PKCS#8 PEM form (the
// dev stack's signing key).
func GenerateEd25519PEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
