package mfa

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOOBCode(t *testing.T) {
	t.Parallel()
	code, salt, hash, err := NewOOBCode()
	require.NoError(t, err)
	require.Regexp(t, `^[0-9]{6}$`, code)
	require.Len(t, salt, 16)
	want := sha256.Sum256(append(append([]byte{}, salt...), code...))
	require.Equal(t, want[:], hash, "SHA-256(salt || code)")

	require.True(t, CheckOOBCode(code, salt, hash))
	require.True(t, CheckOOBCode(" "+code[:3]+" "+code[3:], salt, hash))
	wrong := []byte(code)
	wrong[5] = '0' + (wrong[5]-'0'+1)%10
	require.False(t, CheckOOBCode(string(wrong), salt, hash))
	require.False(t, CheckOOBCode(code+"0", salt, hash))
	require.False(t, CheckOOBCode(code[:5], salt, hash))
	require.False(t, CheckOOBCode("", salt, hash))
	otherSalt := bytes.Clone(salt)
	otherSalt[0] ^= 1
	require.False(t, CheckOOBCode(code, otherSalt, hash))
	require.False(t, CheckOOBCode(code, nil, hash))
	require.False(t, CheckOOBCode(code, salt, hash[:16]))

	_, salt2, hash2, err := NewOOBCode()
	require.NoError(t, err)
	require.NotEqual(t, salt, salt2)
	require.NotEqual(t, hash, hash2)
}

// TestOOBCodeDistribution: each digit position takes all ten values about
// equally often.
func TestOOBCodeDistribution(t *testing.T) {
	t.Parallel()
	const n = 5000
	var counts [6][10]int
	seen := map[string]int{}
	for range n {
		code, _, _, err := NewOOBCode()
		require.NoError(t, err)
		seen[code]++
		for i := range 6 {
			counts[i][code[i]-'0']++
		}
	}
	for i := range counts {
		for d, c := range counts[i] {
			require.InDelta(t, n/10, c, n/10*0.25, "position %d digit %d", i, d)
		}
	}
	require.Greater(t, len(seen), n*9/10, "codes hardly repeat")
}
