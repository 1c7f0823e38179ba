package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
)

// OOBSaltSize is the length of the random salt of an out-of-band code.
const OOBSaltSize = 16

// NewOOBCode makes a code to send by SMS or email: 6 uniformly random
// digits, with a random salt and hash = SHA-256(salt || code) to store in
// its place.
//
// A fast hash is enough here, unlike backup codes. The code is valid for
// OOBCodeTTL and dies after OOBMaxAttempts wrong tries, so what protects it
// is the short life and the attempt limit, not the hash: with only 10^6
// possible codes, anyone reading the live table could search any hash,
// argon2id included, inside those 10 minutes. The hash keeps the code out
// of the database, its backups and logs (a copy read later holds only dead
// codes), and the per-code salt stops one precomputed table from serving
// every code. A slow KDF would add CPU cost on the login path, which
// senders and guessers could drive, for no real gain.
func NewOOBCode() (code string, salt, hash []byte, err error) {
	var b strings.Builder
	for range OOBCodeDigits {
		d, err := randIndex(10)
		if err != nil {
			return "", nil, nil, err
		}
		b.WriteByte(byte('0' + d))
	}
	code = b.String()
	salt = make([]byte, OOBSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", nil, nil, fmt.Errorf("random: %w", err)
	}
	return code, salt, oobHash(code, salt), nil
}

func oobHash(code string, salt []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(code))
	return h.Sum(nil)
}

// CheckOOBCode reports whether code (spaces ignored) is the one hashed with
// salt into hash, comparing the digests in constant time. Expiry and the
// attempt count are the caller's to enforce.
func CheckOOBCode(code string, salt, hash []byte) bool {
	code = strings.ReplaceAll(code, " ", "")
	if !allDigits(code, OOBCodeDigits) || len(salt) == 0 || len(hash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(oobHash(code, salt), hash) == 1
}
