package mfa

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/streamspace/enterprise/internal/password"
)

// Backup codes look like "ABC123-456789": three capital letters, three
// digits, a dash, six digits. That is 26^3 x 10^9, about 44 bits per code,
// above NIST's 20-bit floor for look-up secrets but below the 112 bits that
// would allow a plain hash, so each code is stored salted and hashed with
// argon2id (HashBackupCode), never in clear.
const backupCodeLen = len("ABC123456789") // without the dash

// NewBackupCodes returns BackupCodeCount distinct backup codes drawn from
// crypto/rand. They are shown to the user once; only their hashes are kept.
func NewBackupCodes() ([]string, error) {
	codes := make([]string, 0, BackupCodeCount)
	seen := make(map[string]bool, BackupCodeCount)
	for len(codes) < BackupCodeCount {
		c, err := newBackupCode()
		if err != nil {
			return nil, err
		}
		if !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return codes, nil
}

func newBackupCode() (string, error) {
	var b [backupCodeLen + 1]byte
	for i := range b {
		var alphabet string
		switch {
		case i < 3:
			alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		case i == 6:
			b[i] = '-'
			continue
		default:
			alphabet = "0123456789"
		}
		c, err := randIndex(len(alphabet))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[c]
	}
	return string(b[:]), nil
}

// randIndex draws a uniform integer in [0, n) from crypto/rand (rand.Int
// rejects out-of-range samples, so there is no modulo bias).
func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("random: %w", err)
	}
	return int(v.Int64()), nil
}

// NormalizeBackupCode returns the canonical form ("ABC123-456789") of what a
// user typed: letters in any case, spaces and dashes anywhere ignored. ok is
// false when s is not shaped like a backup code.
func NormalizeBackupCode(s string) (string, bool) {
	var b strings.Builder
	b.Grow(backupCodeLen + 1)
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '-':
			continue
		case n < 3 && c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case n < 3 && c >= 'A' && c <= 'Z':
		case n >= 3 && n < backupCodeLen && c >= '0' && c <= '9':
		default:
			return "", false
		}
		if n == 6 {
			b.WriteByte('-')
		}
		b.WriteByte(c)
		n++
	}
	if n != backupCodeLen {
		return "", false
	}
	return b.String(), true
}

// LooksLikeBackupCode reports whether s has the shape of a backup code, so
// a login form can take either a 6-digit code or a backup code in one field.
func LooksLikeBackupCode(s string) bool {
	_, ok := NormalizeBackupCode(s)
	return ok
}

// HashBackupCode returns the argon2id hash (PHC string, random salt) of the
// canonical form of code.
func HashBackupCode(code string) (string, error) {
	c, ok := NormalizeBackupCode(code)
	if !ok {
		return "", errors.New("backup code: not shaped like ABC123-456789")
	}
	return password.Hash(c)
}

// CheckBackupCode reports whether code (as typed) matches hash. Each check
// costs one argon2id evaluation (tens of milliseconds); a malformed code is
// refused without one, which tells nothing an attacker does not know.
func CheckBackupCode(code, hash string) bool {
	c, ok := NormalizeBackupCode(code)
	if !ok || hash == "" {
		return false
	}
	return password.Check(c, hash)
}
