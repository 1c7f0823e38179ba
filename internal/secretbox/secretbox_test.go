package secretbox

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func newKeyBytes(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b, err := New(newKeyBytes(t))
	require.NoError(t, err)
	for _, pt := range []string{"", "whsec_c2VjcmV0", string(bytes.Repeat([]byte{0xff}, 4096))} {
		sealed, err := b.SealString(pt)
		require.NoError(t, err)
		require.Len(t, sealed, 1+4+12+len(pt)+16)
		require.Equal(t, byte(1), sealed[0])
		if pt != "" {
			require.NotContains(t, string(sealed), pt)
		}
		got, err := b.OpenString(sealed)
		require.NoError(t, err)
		require.Equal(t, pt, got)
	}
	sealed, err := b.Seal(nil)
	require.NoError(t, err)
	got, err := b.Open(sealed)
	require.NoError(t, err)
	require.NotNil(t, got)
	require.Empty(t, got)
}

func TestKeyID(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	b, err := New(key)
	require.NoError(t, err)
	sealed, err := b.SealString("x")
	require.NoError(t, err)
	sum := sha256.Sum256(key)
	require.Equal(t, sum[:4], sealed[1:5])
}

func TestTamper(t *testing.T) {
	t.Parallel()
	b, err := New(newKeyBytes(t))
	require.NoError(t, err)
	sealed, err := b.SealString("the webhook secret")
	require.NoError(t, err)
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		_, err := b.Open(bad)
		require.ErrorIs(t, err, ErrCannotOpen, "byte %d flipped", i)
	}
	for _, bad := range [][]byte{nil, {}, sealed[:20], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		_, err := b.Open(bad)
		require.ErrorIs(t, err, ErrCannotOpen)
	}
	other, err := New(newKeyBytes(t))
	require.NoError(t, err)
	_, err = other.Open(sealed)
	require.ErrorIs(t, err, ErrCannotOpen)
	require.Contains(t, err.Error(), "unknown key id")
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newKeyBytes(t), newKeyBytes(t)
	oldBox, err := New(oldKey)
	require.NoError(t, err)
	oldSealed, err := oldBox.SealString("sealed before rotation")
	require.NoError(t, err)

	rotated, err := New(newKey, oldKey, oldKey)
	require.NoError(t, err)
	got, err := rotated.OpenString(oldSealed)
	require.NoError(t, err)
	require.Equal(t, "sealed before rotation", got)
	require.True(t, rotated.NeedsRotation(oldSealed))

	newSealed, err := rotated.SealString("sealed after rotation")
	require.NoError(t, err)
	require.False(t, rotated.NeedsRotation(newSealed))
	require.NotEqual(t, oldSealed[1:5], newSealed[1:5])
	// Sealed with the new key: the old box alone cannot open it, a box with
	// only the new key can.
	_, err = oldBox.Open(newSealed)
	require.ErrorIs(t, err, ErrCannotOpen)
	onlyNew, err := New(newKey)
	require.NoError(t, err)
	got, err = onlyNew.OpenString(newSealed)
	require.NoError(t, err)
	require.Equal(t, "sealed after rotation", got)
	// Once the old key is dropped, old data no longer opens.
	_, err = onlyNew.Open(oldSealed)
	require.True(t, errors.Is(err, ErrCannotOpen))
}

func TestNonceUniqueness(t *testing.T) {
	t.Parallel()
	b, err := New(newKeyBytes(t))
	require.NoError(t, err)
	seen := make(map[string]bool)
	for range 10000 {
		sealed, err := b.SealString("same plaintext")
		require.NoError(t, err)
		nonce := string(sealed[5:17])
		require.False(t, seen[nonce], "nonce reused")
		seen[nonce] = true
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	_, err := New(make([]byte, 16))
	require.ErrorContains(t, err, "must be 32 bytes")
	_, err = New(nil)
	require.Error(t, err)
	_, err = New(make([]byte, 32), make([]byte, 31))
	require.ErrorContains(t, err, "previous key 1")
}
