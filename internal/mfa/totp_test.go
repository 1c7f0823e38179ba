package mfa

import (
	"encoding/base32"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
)

// refTOTP is the independent RFC 6238 implementation of the tests.
var refTOTP = testenv.TOTP

// The RFC 6238 appendix B vector for SHA-1: the ASCII secret
// "12345678901234567890" at T=59 s gives 94287082 (8 digits); 6 digits are
// its last six.
func TestTOTPRFC6238Vector(t *testing.T) {
	t.Parallel()
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	at := time.Unix(59, 0)
	require.Equal(t, "94287082", refTOTP(t, secret, at, 8))
	require.Equal(t, "287082", refTOTP(t, secret, at, 6))
	// the other SHA-1 vectors of appendix B, to trust the reference
	for unix, want := range map[int64]string{1111111109: "07081804", 1111111111: "14050471",
		1234567890: "89005924", 2000000000: "69279037", 20000000000: "65353130"} {
		require.Equal(t, want, refTOTP(t, secret, time.Unix(unix, 0), 8), "T=%d", unix)
		step, ok := MatchTOTP(secret, want[2:], time.Unix(unix, 0))
		require.True(t, ok, "T=%d", unix)
		require.Equal(t, unix/30, step)
	}

	step, ok := MatchTOTP(secret, "287082", at)
	require.True(t, ok)
	require.Equal(t, int64(1), step)
	_, ok = MatchTOTP(secret, "94287082", at) // 8 digits: not our format
	require.False(t, ok)
}

func TestNewTOTPKey(t *testing.T) {
	t.Parallel()
	key, err := NewTOTP("StreamSpace", "alice@example.com")
	require.NoError(t, err)
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(key.Secret())
	require.NoError(t, err)
	require.Len(t, raw, 20, "160-bit secret")

	u, err := url.Parse(TOTPURI(key))
	require.NoError(t, err)
	require.Equal(t, "otpauth", u.Scheme)
	require.Equal(t, "totp", u.Host)
	require.Equal(t, "/StreamSpace:alice@example.com", u.Path)
	q := u.Query()
	require.Equal(t, key.Secret(), q.Get("secret"))
	require.Equal(t, "StreamSpace", q.Get("issuer"))
	require.Equal(t, "SHA1", q.Get("algorithm"))
	require.Equal(t, "6", q.Get("digits"))
	require.Equal(t, "30", q.Get("period"))

	other, err := NewTOTP("StreamSpace", "alice@example.com")
	require.NoError(t, err)
	require.NotEqual(t, key.Secret(), other.Secret())

	_, err = NewTOTP("", "alice")
	require.Error(t, err)
}

// TestMatchTOTPWindow: codes from the independent implementation at the
// current step and one step either side are accepted with their own step
// number; two steps away they are refused.
func TestMatchTOTPWindow(t *testing.T) {
	t.Parallel()
	key, err := NewTOTP("StreamSpace", "bob")
	require.NoError(t, err)
	secret := key.Secret()
	now := time.Date(2025, 11, 15, 10, 30, 17, 0, time.UTC) // 17 s into a step
	cur := now.Unix() / 30

	for _, d := range []int64{-1, 0, 1} {
		at := now.Add(time.Duration(d) * 30 * time.Second)
		step, ok := MatchTOTP(secret, refTOTP(t, secret, at, 6), now)
		require.True(t, ok, "offset %d steps", d)
		require.Equal(t, cur+d, step, "offset %d steps", d)
	}
	for _, d := range []int64{-2, 2, -3, 3} {
		code := refTOTP(t, secret, now.Add(time.Duration(d)*30*time.Second), 6)
		// a code of a far step could equal one inside the window by chance
		inWindow := false
		for w := int64(-1); w <= 1; w++ {
			inWindow = inWindow || code == refTOTP(t, secret, now.Add(time.Duration(w)*30*time.Second), 6)
		}
		if inWindow {
			continue
		}
		_, ok := MatchTOTP(secret, code, now)
		require.False(t, ok, "offset %d steps must be refused", d)
	}

	// the step boundaries: the last second of the step still matches the
	// previous step's code, the first second of the next does not match
	// the code from two steps back
	stepStart := time.Unix(cur*30, 0)
	prev := refTOTP(t, secret, stepStart.Add(-30*time.Second), 6)
	step, ok := MatchTOTP(secret, prev, stepStart.Add(29*time.Second))
	require.True(t, ok)
	require.Equal(t, cur-1, step)
	if prev != refTOTP(t, secret, stepStart.Add(60*time.Second), 6) &&
		prev != refTOTP(t, secret, stepStart.Add(30*time.Second), 6) &&
		prev != refTOTP(t, secret, stepStart, 6) {
		_, ok = MatchTOTP(secret, prev, stepStart.Add(30*time.Second))
		require.False(t, ok)
	}
}

func TestMatchTOTPFormat(t *testing.T) {
	t.Parallel()
	key, err := NewTOTP("StreamSpace", "carol")
	require.NoError(t, err)
	now := time.Unix(1_700_000_000, 0)
	code := refTOTP(t, key.Secret(), now, 6)

	for _, typed := range []string{code, " " + code + " ", code[:3] + " " + code[3:]} {
		_, ok := MatchTOTP(key.Secret(), typed, now)
		require.True(t, ok, "%q", typed)
	}
	for _, bad := range []string{"", code[:5], code + "0", "0" + code, code[:5] + "a", "abcdef", "12345６",
		"+" + code[1:], "-" + code[1:], code[:5] + "\x00"} {
		_, ok := MatchTOTP(key.Secret(), bad, now)
		require.False(t, ok, "%q", bad)
	}
	// a secret that is not base32 matches nothing
	_, ok := MatchTOTP("not base32!", code, now)
	require.False(t, ok)
	// another user's secret does not accept this code (barring a 1e-6 chance)
	other, err := NewTOTP("StreamSpace", "dave")
	require.NoError(t, err)
	if refTOTP(t, other.Secret(), now, 6) != code {
		_, ok = MatchTOTP(other.Secret(), code, now)
		require.False(t, ok)
	}
}

func TestTOTPURIForRebuildsTheSetupURI(t *testing.T) {
	key, err := NewTOTP("Acme Streams", "alice@example.com")
	require.NoError(t, err)
	uri, err := TOTPURIFor("Acme Streams", "alice@example.com", key.Secret())
	require.NoError(t, err)
	require.Equal(t, key.URL(), uri)
	_, err = TOTPURIFor("Acme", "a", "not base32!")
	require.Error(t, err)
}
