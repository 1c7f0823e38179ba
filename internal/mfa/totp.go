package mfa

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// NewTOTP makes a TOTP key for account at issuer: a fresh 160-bit random
// secret, SHA-1, 6 digits, 30 s steps. The key's Secret() (base32) is what
// must be stored, sealed; its URL() is the otpauth URI for the QR code.
func NewTOTP(issuer, account string) (*otp.Key, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      TOTPPeriod,
		SecretSize:  TOTPSecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	return key, nil
}

// TOTPURI is the otpauth:// URI of key, what an authenticator app scans.
func TOTPURI(key *otp.Key) string { return key.URL() }

// TOTPURIFor is the otpauth:// URI of a stored base32 secret, the same one
// NewTOTP's key gave (for showing the QR code again during setup).
func TOTPURIFor(issuer, account, secret string) (string, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		return "", fmt.Errorf("totp: secret is not base32: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      TOTPPeriod,
		Secret:      raw,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", fmt.Errorf("totp: %w", err)
	}
	return key.URL(), nil
}

// TOTPStep is the RFC 6238 time step of t: Unix time / 30 s.
func TOTPStep(t time.Time) int64 { return floorDiv(t.Unix(), TOTPPeriod) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// MatchTOTP checks code against the base32 secret at time now. It accepts
// the current step and TOTPSkew steps either side, and returns the step the
// code belongs to. A code is usable once: the caller must refuse a match
// whose step is not after the last step it accepted for the user (RFC 6238
// section 5.2, NIST SP 800-63B), and then store the new step.
//
// The code must be exactly 6 digits; spaces (apps show "123 456") are
// ignored. Every step of the window is computed and compared in constant
// time, so the answer time does not tell which step matched. If two steps
// match (a 1 in 10^6 coincidence) the later one is returned, so a replay
// check errs towards refusing.
func MatchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.ReplaceAll(code, " ", "")
	if !allDigits(code, TOTPDigits) {
		return 0, false
	}
	cur := TOTPStep(now)
	matched := false
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{
			Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil { // not base32: nothing matches
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, matched = s, true
		}
	}
	if !matched {
		return 0, false
	}
	return step, true
}

// allDigits reports whether s is exactly n ASCII digits.
func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Limits of the names in an otpauth URI. The account is a username (at
// most 64 characters) or an email address (at most 254, RFC 5321); the
// issuer is the operator's MFA_ISSUER.
const (
	MaxIssuerLen  = 64
	MaxAccountLen = 254
)

// ValidIssuer reports what is wrong with issuer as the name authenticator
// apps show, or nil: 1 to MaxIssuerLen bytes, no colon (the otpauth label
// is "issuer:account", so a colon in the issuer would be misread).
func ValidIssuer(issuer string) error {
	switch {
	case issuer == "" || len(issuer) > MaxIssuerLen:
		return fmt.Errorf("must be 1 to %d bytes", MaxIssuerLen)
	case strings.ContainsAny(issuer, ":\x00\r\n"):
		return errors.New("must not contain a colon or a line break")
	}
	return nil
}
