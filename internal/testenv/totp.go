package testenv

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TOTP is an independent RFC 6238 / RFC 4226 implementation, the code an
// authenticator app shows for a base32 secret at a time: HMAC-SHA1 of the
// big-endian 30-second step, dynamic truncation, the last `digits` digits.
// Tests check the server's TOTP (pquerna/otp underneath) against it.
func TOTP(t testing.TB, secretB32 string, at time.Time, digits int) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secretB32))
	if err != nil {
		t.Fatalf("TOTP secret %q is not base32: %v", secretB32, err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// AwayFromTOTPStepEnd waits, if need be, until at least margin is left of
// the current 30-second TOTP step, and returns the time then. A request
// carrying a code of a neighbouring step (the previous one, say) computed
// just before a step ends reaches the server's clock in the next step, where
// that code is outside the ±1 window.
func AwayFromTOTPStepEnd(margin time.Duration) time.Time {
	now := time.Now()
	const step = 30 * time.Second
	if left := step - time.Duration(now.UnixNano()%int64(step)); left < margin {
		time.Sleep(left + 10*time.Millisecond)
		now = time.Now()
	}
	return now
}
