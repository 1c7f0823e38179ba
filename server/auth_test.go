package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/streamspace/enterprise/internal/authtoken"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	b := newAPI(t)

	t.Run("Success", func(t *testing.T) {
		var tr tokenResponse
		b.callJSON("POST", "/api/auth/login", "", map[string]string{"username": "ALICE", "password": testPassword}, 200, &tr)
		require.Equal(t, "Bearer", tr.TokenType)
		require.InDelta(t, 900, tr.ExpiresIn, 2)
		require.NotEmpty(t, tr.RefreshToken)
		require.False(t, tr.MFARequired)
		require.Equal(t, "alice", tr.User.Username)
		var me userJSON
		b.callJSON("GET", "/api/me", tr.AccessToken, nil, 200, &me)
		require.Equal(t, b.user.ID, me.ID)
		require.NotNil(t, me.LastLoginAt)
	})
	for name, body := range map[string]map[string]string{
		"WrongPassword": {"username": "alice", "password": "not the password"},
		"UnknownUser":   {"username": "mallory", "password": testPassword},
	} {
		t.Run(name, func(t *testing.T) {
			resp, data := b.call("POST", "/api/auth/login", "", body)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Equal(t, "UNAUTHORIZED", errorCode(t, data))
			require.Contains(t, string(data), "invalid username or password", "the same answer either way")
		})
	}
	t.Run("MissingField", func(t *testing.T) {
		resp, data := b.call("POST", "/api/auth/login", "", `{"username":"alice"}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, string(data), `"field":"password"`)
	})
	t.Run("Deactivated", func(t *testing.T) {
		c := b.createUser("carol", "user")
		b.callJSON("PATCH", "/api/admin/users/"+c.ID.String(), b.admin.Token, map[string]any{"active": false}, 200, nil)
		resp, _ := b.call("POST", "/api/auth/login", "", map[string]string{"username": "carol", "password": testPassword})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp, _ = b.call("GET", "/api/me", c.Token, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a token issued before deactivation stops working at once")
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	var first tokenResponse
	b.callJSON("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": testPassword}, 200, &first)

	var second tokenResponse
	b.callJSON("POST", "/api/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken}, 200, &second)
	require.NotEqual(t, first.RefreshToken, second.RefreshToken, "refresh rotates the token")
	b.callJSON("GET", "/api/me", second.AccessToken, nil, 200, nil)

	// The first token was rotated: presenting it again is reuse.
	resp, data := b.call("POST", "/api/auth/refresh", "", map[string]string{"refresh_token": first.RefreshToken})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, string(data), "session has been revoked")
	// ...which revoked the whole family, including the legitimate newest token.
	resp, _ = b.call("POST", "/api/auth/refresh", "", map[string]string{"refresh_token": second.RefreshToken})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	resp, _ = b.call("POST", "/api/auth/refresh", "", map[string]string{"refresh_token": "ssr_made-up"})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestLogout(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	var tr tokenResponse
	b.callJSON("POST", "/api/auth/login", "", map[string]string{"username": "alice", "password": testPassword}, 200, &tr)
	b.callJSON("POST", "/api/auth/logout", "", map[string]string{"refresh_token": tr.RefreshToken}, 204, nil)
	resp, _ := b.call("POST", "/api/auth/refresh", "", map[string]string{"refresh_token": tr.RefreshToken})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestBearerTokens(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	expired := func() string {
		past, err := authtoken.NewAuthority("streamspace", "streamspace-api", time.Minute, b.tokenKey)
		require.NoError(t, err)
		past.SetClock(func() time.Time { return time.Now().Add(-time.Hour) })
		tok, _, err := past.Issue(b.user.ID, "alice", "user")
		require.NoError(t, err)
		return tok
	}()
	unknownKey := func() string {
		k, err := authtoken.NewHMACKey("rogue", []byte(strings.Repeat("r", 32)))
		require.NoError(t, err)
		a, _ := authtoken.NewAuthority("streamspace", "streamspace-api", time.Minute, k)
		tok, _, _ := a.Issue(b.admin.ID, "root-admin", "admin")
		return tok
	}()
	// The signature's last characters replaced (by others when they already
	// were these: a 1 in 4 million chance with a random key).
	tail := "AAAA"
	if strings.HasSuffix(b.user.Token, tail) {
		tail = "BBBA"
	}
	tampered := b.user.Token[:len(b.user.Token)-4] + tail
	cases := map[string]string{
		"Missing":    "",
		"Garbage":    "not-a-jwt",
		"Expired":    expired,
		"Tampered":   tampered,
		"UnknownKey": unknownKey,
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			resp, data := b.call("GET", "/api/me", tok, nil)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Equal(t, "UNAUTHORIZED", errorCode(t, data))
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		})
	}
	t.Run("DeletedUser", func(t *testing.T) {
		c := b.createUser("dave", "user")
		b.callJSON("DELETE", "/api/admin/users/"+c.ID.String(), b.admin.Token, nil, 204, nil)
		resp, _ := b.call("GET", "/api/me", c.Token, nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("RoleFromDatabaseNotToken", func(t *testing.T) {
		// A token minted while the user was admin does not keep admin rights
		// once the role is taken away.
		c := b.createUser("erin", "admin")
		b.callJSON("GET", "/api/admin/users", c.Token, nil, 200, nil)
		b.callJSON("PATCH", "/api/admin/users/"+c.ID.String(), b.admin.Token, map[string]any{"role": "user"}, 200, nil)
		resp, _ := b.call("GET", "/api/admin/users", c.Token, nil)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
}

// Through the real router: a user's 101st request in a minute is refused,
// and so is a login on an account after 5 failures from the address.
func TestRouterRateLimits(t *testing.T) {
	t.Parallel()
	b := newAPI(t, func(c *Config) { c.RateLimits = RateLimitConfig{} }) // the defaults
	var last *http.Response
	for i := range 101 {
		resp, _ := b.call("GET", "/api/me", b.user.Token, nil)
		require.NotEmpty(t, resp.Header.Get("RateLimit-Limit"))
		if i < 100 && resp.StatusCode != http.StatusOK {
			// a minute boundary can only add allowance, never take it away
			t.Fatalf("request %d: %d", i+1, resp.StatusCode)
		}
		last = resp
	}
	require.Equal(t, http.StatusTooManyRequests, last.StatusCode)
	require.NotEmpty(t, last.Header.Get("Retry-After"))
	resp, _ := b.call("GET", "/api/me", b.other.Token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "another user has their own allowance")

	for range 5 {
		b.call("POST", "/api/auth/login", "", map[string]string{"username": "bob", "password": "wrong password!"})
	}
	resp, data := b.call("POST", "/api/auth/login", "", map[string]string{"username": "bob", "password": testPassword})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s", data)
	require.Equal(t, "RATE_LIMITED", errorCode(t, data))
}

// A refused read (403 here) is in the audit log; an allowed read is not.
func TestRefusedReadsAudited(t *testing.T) {
	t.Parallel()
	b := newAPI(t)
	resp, _ := b.call("GET", "/api/admin/users", b.user.Token, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	b.callJSON("GET", "/api/me", b.user.Token, nil, 200, nil)

	var page struct {
		Entries []struct {
			Action string `json:"action"`
			Status int    `json:"status"`
		} `json:"entries"`
	}
	b.callJSON("GET", "/api/admin/audit?actor=alice", b.admin.Token, nil, 200, &page)
	require.Len(t, page.Entries, 1, "%+v", page.Entries)
	require.Equal(t, "GET /api/admin/users", page.Entries[0].Action)
	require.Equal(t, http.StatusForbidden, page.Entries[0].Status)
}
