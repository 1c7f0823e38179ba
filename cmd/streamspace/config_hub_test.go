package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHubConfig(t *testing.T) {
	t.Parallel()
	cfg, err := readWorkerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB}))
	require.NoError(t, err)
	require.Equal(t, HubConfig{Timeout: 15 * time.Second, DisableAfter: 5 * 24 * time.Hour, RateLimit: 10,
		FirstAttemptParallelism: 64}, cfg.Hub)

	cfg, err = readWorkerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB,
		"WEBHOOK_ALLOWED_CIDRS": "10.20.0.0/16, 127.0.0.1,::1", "WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_TIMEOUT": "30s",
		"WEBHOOK_DISABLE_AFTER": "72h", "WEBHOOK_RATE_LIMIT": "50", "DELIVERY_FIRST_ATTEMPT_PARALLELISM": "8"}))
	require.NoError(t, err)
	require.Equal(t, HubConfig{
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("127.0.0.1/32"),
			netip.MustParsePrefix("::1/128")},
		AllowHTTP: true, Timeout: 30 * time.Second, DisableAfter: 72 * time.Hour, RateLimit: 50,
		FirstAttemptParallelism: 8}, cfg.Hub)
	opts := cfg.Hub.SafeHTTP("ua")
	require.Equal(t, cfg.Hub.AllowedCIDRs, opts.AllowedCIDRs)
	require.True(t, opts.AllowHTTP)
	require.Equal(t, 30*time.Second, opts.Timeout)
	require.Equal(t, "ua", opts.UserAgent)

	_, err = readWorkerConfig(lookupFrom(map[string]string{"DATABASE_URL": goodDB,
		"WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/33,nope", "WEBHOOK_TIMEOUT": "5m", "WEBHOOK_RATE_LIMIT": "0",
		"WEBHOOK_DISABLE_AFTER": "1s", "WEBHOOK_ALLOW_HTTP": "maybe"}))
	require.Error(t, err)
	for _, want := range []string{`WEBHOOK_ALLOWED_CIDRS "10.0.0.0/33"`, `WEBHOOK_ALLOWED_CIDRS "nope"`,
		"WEBHOOK_TIMEOUT", "WEBHOOK_RATE_LIMIT", "WEBHOOK_DISABLE_AFTER", "WEBHOOK_ALLOW_HTTP"} {
		require.Contains(t, err.Error(), want)
	}

	// dev reaches receivers on this machine unless told otherwise.
	dev, err := readDevConfig(lookupFrom(map[string]string{}))
	require.NoError(t, err)
	require.Equal(t, devLoopback, dev.Hub.AllowedCIDRs)
	dev, err = readDevConfig(lookupFrom(map[string]string{"WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/8"}))
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, dev.Hub.AllowedCIDRs)
}
