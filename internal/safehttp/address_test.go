package safehttp

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	blockedCases := map[string]string{
		"127.0.0.1":              "loopback",
		"127.255.0.9":            "loopback",
		"::1":                    "loopback",
		"10.1.2.3":               "private",
		"172.16.0.1":             "private",
		"172.31.255.255":         "private",
		"192.168.1.1":            "private",
		"fd12:3456::1":           "private",
		"fd00:ec2::254":          "private", // AWS IMDS over IPv6
		"169.254.169.254":        "link-local",
		"fe80::1":                "link-local",
		"fe80::1%eth0":           "link-local",
		"100.64.0.1":             "CGNAT",
		"0.0.0.0":                "unspecified",
		"0.1.2.3":                "this network",
		"::":                     "unspecified",
		"224.0.0.1":              "multicast",
		"ff02::1":                "multicast",
		"255.255.255.255":        "broadcast",
		"240.0.0.1":              "reserved",
		"::ffff:127.0.0.1":       "loopback address (IPv4-mapped 127.0.0.1)",
		"::ffff:169.254.169.254": "link-local address (IPv4-mapped",
		"::ffff:10.0.0.1":        "private address (IPv4-mapped",
		"64:ff9b::7f00:1":        "loopback address (NAT64 127.0.0.1)",
		"64:ff9b::a9fe:a9fe":     "link-local address (NAT64 169.254.169.254)",
		"2002:c0a8:0101::1":      "private address (6to4 192.168.1.1)",
		"::127.0.0.1":            "reserved",
	}
	for s, why := range blockedCases {
		err := checkAddr("", netip.MustParseAddr(s), nil)
		require.ErrorIs(t, err, ErrBlockedAddress, s)
		require.ErrorContains(t, err, why, s)
		var be *BlockedError
		require.True(t, errors.As(err, &be))
	}
	for _, s := range []string{"8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1",
		"2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:0808:0808::1"} {
		require.NoError(t, checkAddr("", netip.MustParseAddr(s), nil), s)
	}
}

func TestCheckAddrAllowed(t *testing.T) {
	t.Parallel()
	allowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.20.0.0/16")}
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.20.3.4", "64:ff9b::a14:304"} {
		require.NoError(t, checkAddr("", netip.MustParseAddr(s), allowed), s)
	}
	for _, s := range []string{"::1", "10.21.0.1", "169.254.169.254"} {
		require.ErrorIs(t, checkAddr("", netip.MustParseAddr(s), allowed), ErrBlockedAddress, s)
	}
}

func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr("10.0.0.5")
	require.EqualError(t, checkAddr("", a, nil), "10.0.0.5 is a private address")
	require.EqualError(t, checkAddr("intranet.example", a, nil), "intranet.example resolves to 10.0.0.5, a private address")
}
