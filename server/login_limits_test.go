package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// loginLimitsAPI is the real router with the given login limits (generous
// API tiers) that believes X-Forwarded-For from the test client, so each
// request can come from an address of the test's choosing.
func loginLimitsAPI(t *testing.T, limits RateLimitConfig) *allowlistAPI {
	t.Helper()
	limits.UserLimit, limits.AdminLimit = 100000, 100000
	b := newAPI(t, func(c *Config) { c.RateLimits = limits })
	// Exact counts: no 15-minute window boundary may fall inside the test.
	freezeClock(b.server.rateLimits)
	return allowlistServer(t, b, allowlistOptions{trustProxy: true})
}

// signIn is POST /api/auth/login as username from addr: the status and the
// error code ("" on success).
func (a *allowlistAPI) signIn(addr, username, password string) (int, string) {
	a.t.Helper()
	resp, data := a.from(addr, "POST", "/api/auth/login", "", map[string]string{"username": username, "password": password})
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	var e errorBody
	require.NoError(a.t, json.Unmarshal(data, &e), "%s", data)
	return resp.StatusCode, e.Error.Code
}

// Many successful sign-ins in a row, from one address, are never refused:
// only failures count.
func TestLoginLimitsSuccessesNotCounted(t *testing.T) {
	t.Parallel()
	a := loginLimitsAPI(t, RateLimitConfig{}) // the defaults: 5 per account and address
	for i := range 25 {
		status, code := a.signIn("192.0.2.10", "alice", testPassword)
		require.Equal(t, http.StatusOK, status, "sign-in %d: %s", i+1, code)
	}
	// Failures still count in full after them.
	for i := range 5 {
		status, code := a.signIn("192.0.2.10", "alice", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, status, "failure %d: %s", i+1, code)
	}
	status, code := a.signIn("192.0.2.10", "alice", testPassword)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "RATE_LIMITED", code)
}

// Failures from one address exhaust that address's allowance on the account
// (5 by default, under the lockout's 10): the address is refused even with
// the right password, while the owner signs in from another address and the
// address still reaches other accounts.
func TestLoginLimitsPerAccountAndAddress(t *testing.T) {
	t.Parallel()
	a := loginLimitsAPI(t, RateLimitConfig{})
	for i := range 5 {
		status, code := a.signIn("203.0.113.5", "alice", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, status, "failure %d: %s", i+1, code)
	}
	status, code := a.signIn("203.0.113.5", "alice", testPassword)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "RATE_LIMITED", code)

	status, code = a.signIn("198.51.100.9", "alice", testPassword)
	require.Equal(t, http.StatusOK, status, "the owner from another address: %s", code)
	status, code = a.signIn("203.0.113.5", "bob", testPassword)
	require.Equal(t, http.StatusOK, status, "another account from the address: %s", code)
}

// Failures spread over many addresses hit the account's ceiling: then the
// account is refused from any address, other accounts are not.
func TestLoginLimitsPerAccountCeiling(t *testing.T) {
	t.Parallel()
	a := loginLimitsAPI(t, RateLimitConfig{LoginPerAccountIP: 2, LoginPerAccount: 6})
	for i := range 6 {
		status, code := a.signIn(fmt.Sprintf("198.51.100.%d", i+1), "alice", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, status, "failure %d: %s", i+1, code)
	}
	status, code := a.signIn("192.0.2.200", "alice", testPassword)
	require.Equal(t, http.StatusTooManyRequests, status, "a fresh address, the right password")
	require.Equal(t, "RATE_LIMITED", code)
	status, code = a.signIn("192.0.2.200", "bob", testPassword)
	require.Equal(t, http.StatusOK, status, "another account: %s", code)
}

// The lockout (10 consecutive failures) still holds under the default
// limits: one address alone cannot reach it, two can, and then even the
// right password from a third address is refused with ACCOUNT_LOCKED.
func TestLoginLimitsLockoutStillWorks(t *testing.T) {
	t.Parallel()
	a := loginLimitsAPI(t, RateLimitConfig{})
	for _, addr := range []string{"203.0.113.1", "203.0.113.2"} {
		for i := range 5 {
			status, code := a.signIn(addr, "alice", "wrong password!")
			require.Equal(t, http.StatusUnauthorized, status, "failure %d from %s: %s", i+1, addr, code)
		}
	}
	status, code := a.signIn("192.0.2.33", "alice", testPassword)
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "ACCOUNT_LOCKED", code)
}
