// Package mfa holds the building blocks of multi-factor authentication:
// TOTP secrets and codes (RFC 6238), backup codes, and the one-time codes
// sent by SMS or email. It keeps no state: the caller stores what these
// functions return (TOTP seeds sealed with secretbox, backup-code hashes,
// out-of-band code digests) and enforces single use, attempt limits and
// resend throttling with the constants below.
//
// The factors are not equal. TOTP (an authenticator app) is the one to
// recommend. SMS is the weakest: NIST SP 800-63B rates the phone network
// RESTRICTED (SIM swap, number porting, SS7 interception), so it is offered
// for users who have nothing else, and the UI should say so. NIST forbids
// email for out-of-band authentication altogether; an emailed code proves
// control of the mailbox, nothing more. Backup codes are the recovery path
// when the device is lost.
package mfa

import "time"

// TOTP parameters: what every authenticator app supports (RFC 6238
// defaults, as Google Authenticator, Authy, 1Password, Authelia use them).
const (
	TOTPPeriod     = 30 // seconds per step
	TOTPDigits     = 6
	TOTPSecretSize = 20 // bytes: 160 bits, the RFC 4226 recommendation
	// TOTPSkew is how many steps either side of the current one are
	// accepted, for clock drift and typing time. RFC 6238 recommends at
	// most one step back; one forward covers a phone clock slightly ahead.
	TOTPSkew = 1
)

// Out-of-band (SMS and email) codes, after NIST SP 800-63B (at most 10
// minutes) and Twilio Verify (10 minutes, 5 checks, 5 sends).
const (
	OOBCodeDigits = 6
	// OOBCodeTTL is how long a sent code stays valid.
	OOBCodeTTL = 10 * time.Minute
	// OOBMaxAttempts is how many wrong guesses kill a code: with 10^6
	// codes, 5 tries give an attacker a 1 in 200,000 chance per code sent.
	OOBMaxAttempts = 5
	// OOBResendInterval is the least time between two sends to one method.
	OOBResendInterval = 30 * time.Second
	// OOBMaxSends is how many codes one method may be sent per
	// OOBSendWindow (Twilio Verify's error 60203 after 5 sends).
	OOBMaxSends   = 5
	OOBSendWindow = 10 * time.Minute
)

// BackupCodeCount is how many backup codes a user gets; regenerating
// replaces the whole set.
const BackupCodeCount = 10
