package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/testenv"
)

// secClient calls the API as a user behind the trusted loopback proxy, from
// the address it names (X-Forwarded-For).
type secClient struct {
	t          *testing.T
	api, token string
	from       string
}

func (c *secClient) call(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.api+path, rd)
	require.NoError(c.t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("X-Forwarded-For", c.from)
	req.Header.Set("User-Agent", "e2e-security/1.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, data
}

func (c *secClient) json(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	status, data := c.call(method, path, body)
	require.Equal(c.t, want, status, "%s %s: %s", method, path, data)
	var out map[string]any
	if len(data) > 0 && data[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // ids are int64
		require.NoError(c.t, dec.Decode(&out))
	}
	return out
}

// readQR reads the text of a QR code PNG. pure says the image is a
// generated, unrotated code (gozxing's PURE_BARCODE): the reader takes the
// modules at their known places, which is exact for what the API renders.
// Without it the reader hunts for the code as a phone camera does, and
// gozxing's finder then misreads about one valid code in a hundred (its
// version-information check; zbar reads the same images), so the test
// does not lean on that path for the secret.
func readQR(pngData []byte, pure bool) (string, error) {
	img, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return "", err
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	var hints map[gozxing.DecodeHintType]any
	if pure {
		hints = map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}

// enrolTOTPByQR sets up TOTP for c and reads the secret out of the QR code
// the API serves. The code must also scan as a camera would (no hint);
// where gozxing's finder misreads this one, the user does what a person
// with a stubborn phone does, starts the set-up again (a new secret, a new
// code: each set-up replaces the unverified one), up to three times, so a
// one-in-a-hundred decoder miss cannot fail the run.
func enrolTOTPByQR(t *testing.T, c *secClient) (setup map[string]any, secret string) {
	t.Helper()
	for try := 1; ; try++ {
		setup = c.json("POST", "/api/security/mfa/setup", map[string]any{"type": "totp"}, 201)
		status, qr := c.call("GET", setup["qr_code_png"].(string), nil)
		require.Equal(t, 200, status)
		text, err := readQR(qr, true)
		require.NoError(t, err)
		u, err := url.Parse(text)
		require.NoError(t, err)
		require.Equal(t, "otpauth", u.Scheme)
		require.Equal(t, "StreamSpace", u.Query().Get("issuer"))
		secret = u.Query().Get("secret")
		require.Equal(t, setup["secret"], secret)
		camera, err := readQR(qr, false)
		if err == nil {
			require.Equal(t, text, camera)
			return setup, secret
		}
		require.Less(t, try, 3, "a camera-style decode failed on three different codes: %v", err)
		t.Logf("camera-style decode of set-up %d failed (%v); setting up again", try, err)
	}
}

// walkThroughSecurity is the security walk-through of docs/security.md against the
// running server and worker: a user enrols TOTP by scanning the QR code,
// signs out, signs in with password and code, uses a backup code once, is
// refused from outside their allowlist; an admin's temporary grant is
// disabled by its workflow at expiry; the audit log and the alerts show it.
func walkThroughSecurity(t *testing.T, api string) {
	t.Helper()
	const home, office, hotel = "198.51.100.7", "203.0.113.10", "192.0.2.55"
	admin := &secClient{t: t, api: api, from: office}
	admin.token = admin.json("POST", "/api/auth/login", map[string]any{"username": "admin", "password": "e2e admin password"}, 200)["access_token"].(string)
	admin.json("POST", "/api/admin/users", map[string]any{"username": "carol", "password": "carol's long passphrase",
		"email": "carol@example.com"}, 201)

	carol := &secClient{t: t, api: api, from: office}
	carol.token = carol.json("POST", "/api/auth/login", map[string]any{"username": "carol", "password": "carol's long passphrase"}, 200)["access_token"].(string)

	// Enrol TOTP: scan the QR code, type the code.
	setup, secret := enrolTOTPByQR(t, carol)
	verified := carol.json("POST", fmt.Sprintf("/api/security/mfa/%v/verify", setup["mfa_id"]),
		map[string]any{"code": testenv.TOTP(t, secret, time.Now().Add(-30*time.Second), 6)}, 200)
	backups := verified["backup_codes"].([]any)
	require.Len(t, backups, 10)

	// Sign out, sign in with password and code.
	anon := &secClient{t: t, api: api, from: office}
	ch := anon.json("POST", "/api/auth/login", map[string]any{"username": "carol", "password": "carol's long passphrase"}, 200)
	require.Equal(t, true, ch["mfa_required"])
	require.Nil(t, ch["access_token"])
	tokens := anon.json("POST", "/api/auth/mfa", map[string]any{"mfa_token": ch["mfa_token"], "method": "totp",
		"code": testenv.TOTP(t, secret, time.Now(), 6)}, 200)
	anon.json("POST", "/api/auth/logout", map[string]any{"refresh_token": tokens["refresh_token"]}, 204)

	// A backup code works once.
	ch = anon.json("POST", "/api/auth/login", map[string]any{"username": "carol", "password": "carol's long passphrase"}, 200)
	anon.json("POST", "/api/auth/mfa", map[string]any{"mfa_token": ch["mfa_token"], "method": "backup", "code": backups[0]}, 200)
	ch = anon.json("POST", "/api/auth/login", map[string]any{"username": "carol", "password": "carol's long passphrase"}, 200)
	anon.json("POST", "/api/auth/mfa", map[string]any{"mfa_token": ch["mfa_token"], "method": "backup", "code": backups[0]}, 401)

	// Carol allows only her home network: the guard first refuses a list
	// that shuts out the office she is calling from.
	entry := map[string]any{"ip_address": "198.51.100.0/24", "description": "home"}
	refused := carol.json("POST", "/api/security/ip-whitelist", entry, 409)
	require.Equal(t, "LOCKOUT_RISK", refused["error"].(map[string]any)["code"])
	entry["force"] = true
	carol.json("POST", "/api/security/ip-whitelist", entry, 201)
	denied := carol.json("GET", "/api/me", nil, 403)
	require.Equal(t, "IP_NOT_ALLOWED", denied["error"].(map[string]any)["code"])
	carol.from = home
	carol.json("GET", "/api/me", nil, 200)

	// An admin's temporary grant lets her in from a hotel until it expires;
	// the grant's workflow then disables it.
	carolID := carol.json("GET", "/api/me", nil, 200)["id"].(string)
	grant := admin.json("POST", "/api/security/ip-whitelist", map[string]any{"ip_address": hotel, "user_id": carolID,
		"description": "conference", "expires_at": time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)}, 201)
	require.Equal(t, true, grant["granted"])
	carol.from = hotel
	carol.json("GET", "/api/me", nil, 200)
	deadline := time.Now().Add(60 * time.Second)
	for {
		e := admin.json("GET", fmt.Sprintf("/api/security/ip-whitelist/%v", grant["id"]), nil, 200)
		if e["expired_at"] != nil {
			require.Equal(t, false, e["enabled"])
			break
		}
		require.True(t, time.Now().Before(deadline), "the grant's workflow did not disable it: %v", e)
		time.Sleep(200 * time.Millisecond)
	}
	carol.json("GET", "/api/me", nil, 403)

	// Every step is in the audit log, and the alerts tell the story.
	audit := admin.json("GET", "/api/admin/audit?actor=carol&limit=200", nil, 200)
	actions := map[string]bool{}
	for _, e := range audit["entries"].([]any) {
		actions[e.(map[string]any)["action"].(string)] = true
	}
	for _, want := range []string{"auth.login", "security.mfa.setup", "security.mfa.verify", "auth.mfa",
		"security.ip_denied"} {
		require.True(t, actions[want], "audit lacks %s: %v", want, actions)
	}
	expired := admin.json("GET", "/api/admin/audit?action=ip_grant.expired", nil, 200)
	require.NotEmpty(t, expired["entries"])
	alerts := admin.json("GET", "/api/security/alerts?user_id="+carolID, nil, 200)
	kinds := map[string]bool{}
	for _, a := range alerts["alerts"].([]any) {
		kinds[a.(map[string]any)["kind"].(string)] = true
	}
	require.True(t, kinds["mfa_change"], "alerts: %v", kinds)
	require.True(t, kinds["ip_violation"], "alerts: %v", kinds)
}
