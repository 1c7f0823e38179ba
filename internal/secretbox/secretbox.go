// Package secretbox seals small secrets (webhook secrets, integration
// configurations, TOTP seeds) for storage at rest with AES-256-GCM.
//
// A sealed value is
//
//	version (1 byte) | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag
//
// where the key id is the first 4 bytes of SHA-256(key). The version and key
// id are authenticated as associated data. Values are always sealed with the
// current key; previous keys only open, so keys rotate without a flag day:
// deploy the new key with the old one as previous, re-seal what NeedsRotation
// reports, then drop the old key.
//
// Nonces are random, which bounds one key to about 2^32 seals (NIST SP
// 800-38D); rotate well before that.
package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

const (
	version    = 1
	idSize     = 4
	headerSize = 1 + idSize
	nonceSize  = 12
	tagSize    = 16
)

// ErrCannotOpen is returned (wrapped, with the reason) for a value that was
// sealed with an unknown key, was altered, or is not a sealed value.
var ErrCannotOpen = errors.New("secretbox: cannot open sealed value")

type key struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Box seals with the current key and opens with it or any previous key. It is
// safe for concurrent use.
type Box struct {
	current *key
	keys    []*key // current first
}

// New returns a Box that seals with key and also opens values sealed with any
// of the previous keys. Every key must be KeySize bytes.
func New(current []byte, previous ...[]byte) (*Box, error) {
	cur, err := newKey(current)
	if err != nil {
		return nil, fmt.Errorf("secretbox: current key: %w", err)
	}
	b := &Box{current: cur, keys: []*key{cur}}
	for i, p := range previous {
		k, err := newKey(p)
		if err != nil {
			return nil, fmt.Errorf("secretbox: previous key %d: %w", i+1, err)
		}
		if b.find(k.id[:]) == nil { // the same key listed twice is harmless
			b.keys = append(b.keys, k)
		}
	}
	return b, nil
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw) // copies the key
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block) // nonce||ciphertext||tag
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	k := &key{aead: aead}
	copy(k.id[:], sum[:idSize])
	return k, nil
}

func (b *Box) find(id []byte) *key {
	for _, k := range b.keys {
		if bytes.Equal(k.id[:], id) {
			return k
		}
	}
	return nil
}

// Seal encrypts plaintext with the current key and a fresh random nonce.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	out := make([]byte, headerSize, headerSize+nonceSize+len(plaintext)+tagSize)
	out[0] = version
	copy(out[1:], b.current.id[:])
	return b.current.aead.Seal(out, nil, plaintext, out[:headerSize]), nil
}

// Open decrypts a value sealed by Seal with the current or a previous key.
// Any failure wraps ErrCannotOpen.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < headerSize+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrCannotOpen)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrCannotOpen, sealed[0])
	}
	k := b.find(sealed[1:headerSize])
	if k == nil {
		return nil, fmt.Errorf("%w: sealed with unknown key id %x (is it missing from the previous keys?)",
			ErrCannotOpen, sealed[1:headerSize])
	}
	pt, err := k.aead.Open(nil, nil, sealed[headerSize:], sealed[:headerSize])
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCannotOpen)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// SealString seals s.
func (b *Box) SealString(s string) ([]byte, error) { return b.Seal([]byte(s)) }

// OpenString opens a value sealed by SealString.
func (b *Box) OpenString(sealed []byte) (string, error) {
	pt, err := b.Open(sealed)
	return string(pt), err
}

// NeedsRotation reports whether sealed was not sealed with the current key,
// i.e. whether a rotation job should open and re-seal it.
func (b *Box) NeedsRotation(sealed []byte) bool {
	return len(sealed) < headerSize || sealed[0] != version ||
		!bytes.Equal(sealed[1:headerSize], b.current.id[:])
}
