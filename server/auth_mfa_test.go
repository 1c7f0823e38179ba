package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/activities/notify"
	"github.com/streamspace/enterprise/internal/testenv"
	"github.com/streamspace/enterprise/schemas"
)

// codeInbox stands in for the SMS provider and the mail server: it keeps
// what was sent to each address.
type codeInbox struct {
	mu     sync.Mutex
	sent   map[string][]string // to -> bodies
	refuse map[string]error    // to -> what the provider answers instead
}

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

func (c *codeInbox) SendSMS(_ context.Context, to, body string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refuse[to]; err != nil {
		return err
	}
	c.sent[to] = append(c.sent[to], body)
	return nil
}

func (c *codeInbox) mail(_ context.Context, to, subject, text string) error {
	return c.SendSMS(context.Background(), to, subject+"\n"+text)
}

// lastCode is the code in the newest message to to.
func (c *codeInbox) lastCode(t *testing.T, to string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := c.sent[to]
	require.NotEmpty(t, msgs, "nothing sent to %s", to)
	code := sixDigits.FindString(msgs[len(msgs)-1])
	require.NotEmpty(t, code, "no code in %q", msgs[len(msgs)-1])
	return code
}

// newMFAAPI is the API with an encryption key (TOTP seeds) and an inbox
// for SMS and email codes.
func newMFAAPI(t testing.TB, mutate ...func(*Config)) (*apiBundle, *codeInbox) {
	t.Helper()
	inbox := &codeInbox{sent: map[string][]string{}, refuse: map[string]error{}}
	b := newAPIDeps(t, func(d *Deps) {
		d.Secrets = webhookTestBox(t)
		d.SMS = inbox
		d.Mail = inbox.mail
	}, mutate...)
	return b, inbox
}

// totpCode is the code an authenticator app shows for secret at t, from
// the tests' independent RFC 6238 implementation.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	return testenv.TOTP(t, secret, at, 6)
}

// previousStepCode is the code of the step before the current one, to
// verify a new TOTP method with: the next login's code (the current step)
// must still be fresh. It is computed away from a step's end (the server,
// a moment later, must still have the previous step in its ±1 window), and
// never for a step whose code equals the current or the next step's (the
// server would take it for the later step, a 1 in 500,000 coincidence, and
// refuse the login's code as a replay).
func previousStepCode(t testing.TB, secret string) string {
	t.Helper()
	for {
		now := testenv.AwayFromTOTPStepEnd(2 * time.Second)
		prev := totpCode(t, secret, now.Add(-30*time.Second))
		if prev != totpCode(t, secret, now) && prev != totpCode(t, secret, now.Add(30*time.Second)) {
			return prev
		}
		testenv.AwayFromTOTPStepEnd(30 * time.Second) // the next step
	}
}

// wrongTOTPCode is a well-formed code that matches none of the steps within
// two of at, so the server refuses it whatever the secret.
func wrongTOTPCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for s := -2; s <= 2; s++ {
		near[totpCode(t, secret, at.Add(time.Duration(s)*30*time.Second))] = true
	}
	for c := 999999; ; c-- {
		if code := fmt.Sprintf("%06d", c); !near[code] {
			return code
		}
	}
}

// enrolTOTP sets up and verifies TOTP for u; it returns the secret and the
// backup codes.
func enrolTOTP(t *testing.T, b *apiBundle, u testUser) (string, []string) {
	t.Helper()
	var setup mfaSetupResponse
	b.callJSON("POST", "/api/security/mfa/setup", u.Token, map[string]any{"type": "totp"}, http.StatusCreated, &setup)
	require.NotEmpty(t, setup.Secret)
	var verified mfaVerifyResponse
	b.callJSON("POST", fmt.Sprintf("/api/security/mfa/%d/verify", setup.MFAID), u.Token,
		map[string]any{"code": previousStepCode(t, setup.Secret)}, http.StatusOK, &verified)
	require.True(t, verified.Verified)
	return setup.Secret, verified.BackupCodes
}

func loginStart(t *testing.T, b *apiBundle, u testUser) mfaChallengeResponse {
	t.Helper()
	var ch mfaChallengeResponse
	b.callJSON("POST", "/api/auth/login", "", map[string]any{"username": u.Username, "password": u.Password}, http.StatusOK, &ch)
	require.True(t, ch.MFARequired)
	require.NotEmpty(t, ch.MFAToken)
	return ch
}

func loginMFA(b *apiBundle, token, method, code string) (*http.Response, []byte) {
	return b.call("POST", "/api/auth/mfa", "", map[string]any{"mfa_token": token, "method": method, "code": code})
}

func TestTOTPEnrolmentAndLogin(t *testing.T) {
	b, _ := newMFAAPI(t, func(c *Config) { c.MFAIssuer = "Acme Streams" })

	var setup mfaSetupResponse
	b.callJSON("POST", "/api/security/mfa/setup", b.user.Token, map[string]any{"type": "totp"}, http.StatusCreated, &setup)
	require.Regexp(t, `^otpauth://totp/Acme%20Streams:alice@example.com\?`, setup.QRCodeURL)
	key, err := otp.NewKeyFromURL(setup.QRCodeURL)
	require.NoError(t, err)
	require.Equal(t, setup.Secret, key.Secret())
	require.Equal(t, "Acme Streams", key.Issuer())

	// The QR code is a PNG, shown only to its owner and only until verified.
	resp, data := b.call("GET", setup.QRCodePNG, b.user.Token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	img, err := png.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.GreaterOrEqual(t, img.Bounds().Dx(), 200)
	resp, _ = b.call("GET", setup.QRCodePNG, b.other.Token, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Until verified, login is password only; a wrong code does not verify.
	resp, data = b.call("POST", fmt.Sprintf("/api/security/mfa/%d/verify", setup.MFAID), b.user.Token,
		map[string]any{"code": wrongTOTPCode(t, setup.Secret, time.Now())})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", data)
	var verified mfaVerifyResponse
	b.callJSON("POST", fmt.Sprintf("/api/security/mfa/%d/verify", setup.MFAID), b.user.Token,
		map[string]any{"code": previousStepCode(t, setup.Secret)}, http.StatusOK, &verified)
	require.True(t, verified.Verified)
	require.Len(t, verified.BackupCodes, 10)
	for _, c := range verified.BackupCodes {
		require.Regexp(t, `^[A-Z]{3}[0-9]{3}-[0-9]{6}$`, c)
	}
	resp, _ = b.call("GET", setup.QRCodePNG, b.user.Token, nil)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "the QR code (the secret) is gone after verification")

	var list mfaListResponse
	b.callJSON("GET", "/api/security/mfa", b.user.Token, nil, http.StatusOK, &list)
	require.True(t, list.MFAEnabled)
	require.Equal(t, 10, list.BackupCodesRemaining)
	require.Len(t, list.Methods, 1)
	require.True(t, list.Methods[0].Verified)
	_, data = b.call("GET", "/api/security/mfa", b.user.Token, nil)
	require.NotContains(t, string(data), setup.Secret)

	// Password alone no longer signs in.
	ch := loginStart(t, b, b.user)
	require.Equal(t, []string{"totp", "backup"}, ch.Methods)
	code := totpCode(t, setup.Secret, time.Now())
	resp, data = loginMFA(b, ch.MFAToken, "totp", code)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	var tokens tokenResponse
	require.NoError(t, json.Unmarshal(data, &tokens))
	require.NotEmpty(t, tokens.AccessToken)
	b.callJSON("GET", "/api/me", tokens.AccessToken, nil, http.StatusOK, nil)

	// The same code again, in a new login, is a replay.
	ch = loginStart(t, b, b.user)
	resp, data = loginMFA(b, ch.MFAToken, "totp", code)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", data)
	// The mfa_token is single use: after a success it is dead.
	resp, _ = loginMFA(b, tokens.RefreshToken, "totp", code)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The audit log shows the steps.
	var audit struct {
		Entries []struct {
			Action string `json:"action"`
			Status int    `json:"status"`
		} `json:"entries"`
	}
	b.callJSON("GET", "/api/admin/audit?action=auth.mfa", b.admin.Token, nil, http.StatusOK, &audit)
	require.GreaterOrEqual(t, len(audit.Entries), 2)
}

func TestBackupCodes(t *testing.T) {
	b, _ := newMFAAPI(t)
	secret, codes := enrolTOTP(t, b, b.user)

	ch := loginStart(t, b, b.user)
	resp, data := loginMFA(b, ch.MFAToken, "backup", codes[3])
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)

	// Used once: refused the second time (lower case without the dash is
	// the same code).
	ch = loginStart(t, b, b.user)
	resp, _ = loginMFA(b, ch.MFAToken, "backup", codes[3])
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	var list mfaListResponse
	b.callJSON("GET", "/api/security/mfa", b.user.Token, nil, http.StatusOK, &list)
	require.Equal(t, 9, list.BackupCodesRemaining)

	// Regenerating needs a fresh factor and revokes the old set.
	resp, data = b.call("POST", "/api/security/mfa/backup-codes/regenerate", b.user.Token, map[string]any{})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "MFA_REQUIRED", errorCode(t, data))
	var fresh mfaVerifyResponse
	b.callJSON("POST", "/api/security/mfa/backup-codes/regenerate", b.user.Token,
		map[string]any{"code": totpCode(t, secret, time.Now())}, http.StatusOK, &fresh)
	require.Len(t, fresh.BackupCodes, 10)
	ch = loginStart(t, b, b.user)
	resp, _ = loginMFA(b, ch.MFAToken, "backup", codes[5])
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "an old code after regeneration")
	resp, data = loginMFA(b, ch.MFAToken, "backup", fresh.BackupCodes[0])
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
}

func TestSMSAndEmailLogin(t *testing.T) {
	b, inbox := newMFAAPI(t)

	// SMS: setup sends a code to the number, verify completes it.
	var setup mfaSetupResponse
	b.callJSON("POST", "/api/security/mfa/setup", b.user.Token,
		map[string]any{"type": "sms", "phone_number": "+15551234567"}, http.StatusCreated, &setup)
	require.True(t, setup.CodeSent)
	require.NotContains(t, setup.PhoneNumber, "1234567", "the number is masked")
	resp, data := b.call("POST", "/api/security/mfa/setup", b.user.Token, map[string]any{"type": "sms", "phone_number": "555"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", data)
	var verified mfaVerifyResponse
	b.callJSON("POST", fmt.Sprintf("/api/security/mfa/%d/verify", setup.MFAID), b.user.Token,
		map[string]any{"code": inbox.lastCode(t, "+15551234567")}, http.StatusOK, &verified)
	require.Len(t, verified.BackupCodes, 10)

	// Email is a second method: adding it needs a fresh code of the first,
	// and gives no new backup codes.
	smsID := setup.MFAID
	resp, data = b.call("POST", "/api/security/mfa/setup", b.user.Token, map[string]any{"type": "email"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "MFA_REQUIRED", errorCode(t, data))
	ageSentCodes(t, b)
	b.callJSON("POST", fmt.Sprintf("/api/security/mfa/%d/send", smsID), b.user.Token, nil, http.StatusOK, nil)
	b.callJSON("POST", "/api/security/mfa/setup", b.user.Token, map[string]any{"type": "email",
		"code": inbox.lastCode(t, "+15551234567"), "method": "sms"}, http.StatusCreated, &setup)
	var second mfaVerifyResponse
	b.callJSON("POST", fmt.Sprintf("/api/security/mfa/%d/verify", setup.MFAID), b.user.Token,
		map[string]any{"code": inbox.lastCode(t, "alice@example.com")}, http.StatusOK, &second)
	require.True(t, second.Verified)
	require.Empty(t, second.BackupCodes)

	for _, tc := range []struct{ method, to string }{{"sms", "+15551234567"}, {"email", "alice@example.com"}} {
		ageSentCodes(t, b) // the setup's send is past the resend interval
		ch := loginStart(t, b, b.user)
		require.ElementsMatch(t, []string{"sms", "email", "backup"}, ch.Methods)
		var sent codeSentResponse
		b.callJSON("POST", "/api/auth/mfa/send", "", map[string]any{"mfa_token": ch.MFAToken, "method": tc.method}, http.StatusOK, &sent)
		// A resend within 30 s is throttled.
		resp, data := b.call("POST", "/api/auth/mfa/send", "", map[string]any{"mfa_token": ch.MFAToken, "method": tc.method})
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", data)
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
		code := inbox.lastCode(t, tc.to)
		resp, _ = loginMFA(b, ch.MFAToken, tc.method, wrongCode(code))
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp, data = loginMFA(b, ch.MFAToken, tc.method, code)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tc.method, data)
		// Single use.
		ch = loginStart(t, b, b.user)
		resp, _ = loginMFA(b, ch.MFAToken, tc.method, code)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
}

// ageSentCodes moves every code sent so far an hour into the past (the
// resend throttle runs on the database clock).
func ageSentCodes(t *testing.T, b *apiBundle) {
	t.Helper()
	_, err := b.store.Pool.Exec(context.Background(), `UPDATE mfa_codes SET created_at = created_at - interval '1 hour'`)
	require.NoError(t, err)
}

func wrongCode(code string) string {
	if code == "999999" {
		return "999998"
	}
	return "999999"
}

func TestLockoutAfterTenFailures(t *testing.T) {
	b, _ := newMFAAPI(t)
	secret, _ := enrolTOTP(t, b, b.user)

	// Nine wrong passwords, then one wrong MFA code: ten in a row.
	for range 9 {
		resp, _ := b.call("POST", "/api/auth/login", "", map[string]any{"username": "alice", "password": "wrong password!"})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	ch := loginStart(t, b, b.user)
	resp, _ := loginMFA(b, ch.MFAToken, "totp", wrongTOTPCode(t, secret, time.Now()))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Locked: even the right password and code are refused.
	resp, data := b.call("POST", "/api/auth/login", "", map[string]any{"username": "alice", "password": testPassword})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "ACCOUNT_LOCKED", errorCode(t, data))

	// Visible to an admin, with an alert.
	var u userJSON
	b.callJSON("GET", "/api/admin/users/"+b.user.ID.String(), b.admin.Token, nil, http.StatusOK, &u)
	require.NotNil(t, u.LockedUntil)
	require.WithinDuration(t, time.Now().Add(30*time.Minute), *u.LockedUntil, time.Minute)
	locks := 0
	for _, a := range alertList(b, b.admin.Token, "kind=failed_login&user_id="+b.user.ID.String()) {
		if a.Severity == schemas.SeverityHigh {
			locks++
			requireOneEvent(b, a)
		}
	}
	require.Equal(t, 1, locks, "the lock raises one high failed_login alert")

	// It expires after 30 minutes…
	restore := timeNow
	timeNow = func() time.Time { return time.Now().Add(31 * time.Minute) }
	t.Cleanup(func() { timeNow = restore })
	_ = loginStart(t, b, b.user)
	timeNow = restore

	// …and an admin clears it at once; users cannot.
	resp, _ = b.call("POST", "/api/auth/login", "", map[string]any{"username": "alice", "password": testPassword})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = b.call("DELETE", "/api/admin/users/"+b.user.ID.String()+"/lock", b.user.Token, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "users cannot unlock")
	b.callJSON("DELETE", "/api/admin/users/"+b.user.ID.String()+"/lock", b.admin.Token, nil, http.StatusNoContent, nil)
	_ = loginStart(t, b, b.user)
	b.callJSON("GET", "/api/admin/users/"+b.user.ID.String(), b.admin.Token, nil, http.StatusOK, &u)
	require.Nil(t, u.LockedUntil)
}

func TestMFAPolicyEnrolment(t *testing.T) {
	b, _ := newMFAAPI(t)
	b.callJSON("PUT", "/api/admin/security/policy", b.admin.Token, map[string]any{"mfa_required": "everyone"}, http.StatusOK, nil)

	var tokens tokenResponse
	b.callJSON("POST", "/api/auth/login", "", map[string]any{"username": "bob", "password": testPassword}, http.StatusOK, &tokens)
	require.True(t, tokens.MFAEnrollmentRequired)
	resp, data := b.call("GET", "/api/sessions", tokens.AccessToken, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "MFA_ENROLLMENT_REQUIRED", errorCode(t, data))
	b.callJSON("GET", "/api/me", tokens.AccessToken, nil, http.StatusOK, nil)

	bob := b.other
	bob.Token = tokens.AccessToken
	secret, _ := enrolTOTP(t, b, bob)
	resp, _ = b.call("GET", "/api/templates", tokens.AccessToken, nil)
	require.NotEqual(t, http.StatusForbidden, resp.StatusCode)

	// The last method cannot be removed while the policy requires MFA.
	var list mfaListResponse
	b.callJSON("GET", "/api/security/mfa", bob.Token, nil, http.StatusOK, &list)
	resp, data = b.call("DELETE", fmt.Sprintf("/api/security/mfa/%d", list.Methods[0].ID), bob.Token,
		map[string]any{"code": totpCode(t, secret, time.Now())})
	require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", data)
}

func TestMFAChangeAlerts(t *testing.T) {
	b, _ := newMFAAPI(t)
	secret, _ := enrolTOTP(t, b, b.user)
	var list mfaListResponse
	b.callJSON("GET", "/api/security/mfa", b.user.Token, nil, http.StatusOK, &list)

	// Removing a method needs a fresh code.
	path := fmt.Sprintf("/api/security/mfa/%d", list.Methods[0].ID)
	resp, data := b.call("DELETE", path, b.user.Token, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	require.Equal(t, "MFA_REQUIRED", errorCode(t, data))
	resp, data = b.call("DELETE", path, b.user.Token, map[string]any{"code": "123"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", data)
	b.callJSON("DELETE", path, b.user.Token, map[string]any{"code": totpCode(t, secret, time.Now())}, http.StatusNoContent, nil)

	var changes []string
	for _, a := range alertList(b, b.user.Token, "kind=mfa_change") {
		changes = append(changes, fmt.Sprint(a.Details["change"]))
		requireOneEvent(b, a)
	}
	require.ElementsMatch(t, []string{"method_added", "method_removed"}, changes)

	// Without MFA the password signs in again, and the backup codes are gone.
	// (With it, moving the email address needed the password.)
	var tokens tokenResponse
	b.callJSON("POST", "/api/auth/login", "", map[string]any{"username": "alice", "password": testPassword}, http.StatusOK, &tokens)
	require.NotEmpty(t, tokens.AccessToken)
	b.callJSON("GET", "/api/security/mfa", b.user.Token, nil, http.StatusOK, &list)
	require.False(t, list.MFAEnabled)
	require.Zero(t, list.BackupCodesRemaining)
}

// rbacMFAPath is the path of a new unverified TOTP method of alice's, for
// the route table.
// rbacTOTPSecret is the seed of the TOTP method rbacMFAPath creates.
const rbacTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func rbacMFAPath(suffix string) func(*apiBundle) string {
	return func(b *apiBundle) string {
		sealed, err := b.server.deps.Secrets.SealString(rbacTOTPSecret)
		require.NoError(b.t, err)
		m := schemas.MFAMethod{UserID: b.user.ID, Type: schemas.MFATOTP, SecretSealed: sealed}
		require.NoError(b.t, b.store.CreateMFAMethod(context.Background(), &m))
		return fmt.Sprintf("/api/security/mfa/%d%s", m.ID, suffix)
	}
}

// With MFA, an access token alone cannot move the account's email address
// (where email codes go): the password must come with it.
func TestEmailChangeNeedsPasswordWithMFA(t *testing.T) {
	b, _ := newMFAAPI(t)
	b.callJSON("PATCH", "/api/me", b.user.Token, map[string]any{"email": "alice2@example.com"}, http.StatusOK, nil)
	enrolTOTP(t, b, b.user)
	resp, data := b.call("PATCH", "/api/me", b.user.Token, map[string]any{"email": "thief@example.com"})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", data)
	var u userJSON
	b.callJSON("PATCH", "/api/me", b.user.Token, map[string]any{"email": "alice3@example.com",
		"current_password": testPassword}, http.StatusOK, &u)
	require.Equal(t, "alice3@example.com", u.Email)
}

// A provider's refusal reaches the user: a permanent one with what the
// provider said, a temporary one as "try again shortly".
func TestCodeSendFailures(t *testing.T) {
	b, inbox := newMFAAPI(t)
	inbox.refuse["+15550000001"] = &notify.DeliveryError{Provider: "twilio", Status: 400, Code: 21211,
		Message: "Invalid 'To' Phone Number"}
	inbox.refuse["+15550000002"] = &notify.DeliveryError{Provider: "twilio", Status: 503, Temp: true}
	resp, data := b.call("POST", "/api/security/mfa/setup", b.user.Token, map[string]any{"type": "sms", "phone_number": "+15550000001"})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", data)
	require.Contains(t, string(data), "Invalid 'To' Phone Number")
	resp, data = b.call("POST", "/api/security/mfa/setup", b.user.Token, map[string]any{"type": "sms", "phone_number": "+15550000002"})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", data)
	require.Contains(t, string(data), "try again shortly")
}
