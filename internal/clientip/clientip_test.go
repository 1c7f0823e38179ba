package clientip

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	r, err := New([]string{"10.0.0.0/8", "fd00::/8", "192.0.2.7"})
	require.NoError(t, err)
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"NoProxy", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"SpoofFromUntrustedPeerIgnored", "203.0.113.9:5000", []string{"1.2.3.4"}, "203.0.113.9"},
		{"TrustedProxyOneHop", "10.1.2.3:443", []string{"198.51.100.20"}, "198.51.100.20"},
		{"TrustedChainWalked", "10.1.2.3:443", []string{"198.51.100.20, 10.9.9.9, 192.0.2.7"}, "198.51.100.20"},
		{"ClientPrependedSpoofStopsAtFirstUntrusted", "10.1.2.3:443", []string{"1.1.1.1, 198.51.100.20, 10.9.9.9"}, "198.51.100.20"},
		{"SeveralHeaders", "10.1.2.3:443", []string{"1.1.1.1", "198.51.100.20, 10.9.9.9"}, "198.51.100.20"},
		{"AllTrusted", "10.1.2.3:443", []string{"10.4.4.4"}, "10.4.4.4"},
		{"MalformedHopStops", "10.1.2.3:443", []string{"garbage, 10.9.9.9"}, "10.9.9.9"},
		{"TrustedPeerNoHeader", "10.1.2.3:443", nil, "10.1.2.3"},
		{"IPv6Peer", "[2001:db8::1]:443", []string{"1.2.3.4"}, "2001:db8::1"},
		{"IPv6TrustedProxy", "[fd00::5]:443", []string{"2001:db8::42"}, "2001:db8::42"},
		{"IPv4MappedPeer", "[::ffff:10.1.2.3]:443", []string{"198.51.100.20"}, "198.51.100.20"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, tc.want, r.Resolve(req).String())
		})
	}
}

func TestNewRejectsBadProxy(t *testing.T) {
	t.Parallel()
	_, err := New([]string{"10.0.0.0/33"})
	require.ErrorContains(t, err, `trusted proxy "10.0.0.0/33"`)
	_, err = New([]string{"proxy.internal"})
	require.Error(t, err)
}
