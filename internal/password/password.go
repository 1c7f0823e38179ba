// Package password hashes and checks account passwords with argon2id, using
// the OWASP-recommended minimum cost (19 MiB, 2 passes, 1 lane), and holds
// the password policy.
package password

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// Policy bounds, after NIST SP 800-63B: long enough, no composition rules,
// an upper bound only to cap hashing cost.
const (
	MinLength = 12
	MaxLength = 256
)

var params = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash is checked against when the account does not exist, so a login
// for an unknown user costs the same time as one for a known user.
var dummyHash = mustHash("streamspace-dummy-password")

func mustHash(pw string) string {
	h, err := argon2id.CreateHash(pw, params)
	if err != nil {
		panic(err)
	}
	return h
}

// Validate applies the policy.
func Validate(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return errors.New("must be valid UTF-8")
	case n < MinLength:
		return fmt.Errorf("must be at least %d characters", MinLength)
	case n > MaxLength:
		return fmt.Errorf("must be at most %d characters", MaxLength)
	}
	return nil
}

// Hash returns the argon2id PHC string of pw, with a fresh salt.
func Hash(pw string) (string, error) {
	return argon2id.CreateHash(pw, params)
}

// Check reports whether pw matches hash. An empty hash (an account without a
// password) never matches, at the cost of a real comparison.
func Check(pw, hash string) bool {
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(pw, dummyHash)
		return false
	}
	ok, err := argon2id.ComparePasswordAndHash(pw, hash)
	return err == nil && ok
}
