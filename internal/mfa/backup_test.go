package mfa

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var backupShape = regexp.MustCompile(`^[A-Z]{3}[0-9]{3}-[0-9]{6}$`)

func TestNewBackupCodes(t *testing.T) {
	t.Parallel()
	codes, err := NewBackupCodes()
	require.NoError(t, err)
	require.Len(t, codes, BackupCodeCount)
	seen := map[string]bool{}
	for _, c := range codes {
		require.Regexp(t, backupShape, c)
		require.False(t, seen[c], "duplicate %s", c)
		seen[c] = true
		n, ok := NormalizeBackupCode(c)
		require.True(t, ok)
		require.Equal(t, c, n, "codes are issued in canonical form")
	}
	again, err := NewBackupCodes()
	require.NoError(t, err)
	for _, c := range again {
		require.False(t, seen[c], "a new set repeats %s", c)
	}
}

// TestBackupCodeDistribution: over many codes every letter and digit turns
// up in every position, and no symbol dominates (a gross bias, such as a
// modulo of a byte, would show).
func TestBackupCodeDistribution(t *testing.T) {
	t.Parallel()
	const rounds = 300 // x 10 codes
	counts := make([]map[byte]int, 13)
	for i := range counts {
		counts[i] = map[byte]int{}
	}
	for range rounds {
		codes, err := NewBackupCodes()
		require.NoError(t, err)
		for _, c := range codes {
			for i := 0; i < len(c); i++ {
				counts[i][c[i]]++
			}
		}
	}
	total := rounds * BackupCodeCount
	for i, m := range counts {
		switch {
		case i == 6:
			require.Equal(t, map[byte]int{'-': total}, m)
		case i < 3:
			require.Len(t, m, 26, "position %d", i)
			for sym, n := range m {
				require.InDelta(t, total/26, n, float64(total)/26*0.5, "position %d symbol %c", i, sym)
			}
		default:
			require.Len(t, m, 10, "position %d", i)
			for sym, n := range m {
				require.InDelta(t, total/10, n, float64(total)/10*0.3, "position %d symbol %c", i, sym)
			}
		}
	}
}

func TestNormalizeBackupCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ABC123-456789":       "ABC123-456789",
		"abc123-456789":       "ABC123-456789",
		"AbC123456789":        "ABC123-456789",
		" abc 123 456 789 ":   "ABC123-456789",
		"abc-123-456-789":     "ABC123-456789",
		"\tXyz000-000001\t":   "XYZ000-000001",
		"aBc123 - 456789    ": "ABC123-456789",
	} {
		got, ok := NormalizeBackupCode(in)
		require.True(t, ok, "%q", in)
		require.Equal(t, want, got, "%q", in)
		require.True(t, LooksLikeBackupCode(in))
	}
	for _, bad := range []string{"", "123456", "ABC123-45678", "ABC123-4567890", "AB1123-456789",
		"ABC12A-456789", "ABCD23-456789", "ÀBC123-456789", "ABC123_456789", "ABC123-45678９"} {
		_, ok := NormalizeBackupCode(bad)
		require.False(t, ok, "%q", bad)
		require.False(t, LooksLikeBackupCode(bad), "%q", bad)
	}
}

func TestBackupCodeHash(t *testing.T) {
	t.Parallel()
	codes, err := NewBackupCodes()
	require.NoError(t, err)
	code := codes[0]
	h, err := HashBackupCode(code)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$"), "argon2id PHC string")
	require.NotContains(t, h, code)
	require.NotContains(t, h, strings.ReplaceAll(code, "-", ""))
	h2, err := HashBackupCode(code)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salted: the same code hashes differently")

	require.True(t, CheckBackupCode(code, h))
	require.True(t, CheckBackupCode(code, h2))
	require.True(t, CheckBackupCode(strings.ToLower(strings.ReplaceAll(code, "-", " ")), h), "as typed")
	require.False(t, CheckBackupCode(codes[1], h), "another code")
	last := code[len(code)-1]
	require.False(t, CheckBackupCode(code[:len(code)-1]+string('0'+(last-'0'+1)%10), h), "one digit off")
	require.False(t, CheckBackupCode("123456", h))
	require.False(t, CheckBackupCode(code, ""))

	_, err = HashBackupCode("123456")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "123456", "the error does not echo the input")
}
