package safehttp

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// refusedAddrs are dialed directly, bypassing CheckURL, so the connect-time
// check is what refuses them.
var refusedAddrs = []string{"127.0.0.1", "::1", "10.0.0.1", "172.16.5.4", "192.168.0.1",
	"169.254.169.254", "fe80::1", "100.64.0.1", "::ffff:127.0.0.1", "0.0.0.0", "fd00:ec2::254",
	"64:ff9b::a9fe:a9fe"}

func TestDialRefused(t *testing.T) {
	t.Parallel()
	d := newDialer(Options{AllowHTTP: true, Timeout: 2 * time.Second})
	for _, a := range refusedAddrs {
		c, err := d.dial(context.Background(), "tcp", net.JoinHostPort(a, "80"))
		require.ErrorIs(t, err, ErrBlockedAddress, a)
		require.Nil(t, c)
		// The Control hook refuses it too (it sees the socket's address).
		require.ErrorIs(t, d.control("tcp", net.JoinHostPort(a, "80"), nil), ErrBlockedAddress, a)
	}
	// Through the client as well (CheckURL refuses the literal first).
	client := NewClient(Options{AllowHTTP: true, Timeout: 2 * time.Second})
	for _, a := range refusedAddrs {
		_, err := client.Get("http://" + net.JoinHostPort(a, "80") + "/")
		require.ErrorIs(t, err, ErrBlockedAddress, a)
	}
}

func TestLoopbackServer(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ua.Store(r.UserAgent())
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)

	_, err := NewClient(Options{AllowHTTP: true}).Get(srv.URL)
	require.ErrorIs(t, err, ErrBlockedAddress)
	require.ErrorContains(t, err, "127.0.0.1 is a loopback address")
	require.Zero(t, hits.Load())

	// 127.0.0.0/8 allowed: plain http to an allowed IP literal is fine too.
	client := NewClient(Options{AllowedCIDRs: loopback, UserAgent: "StreamSpace-Webhooks/1"})
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ok", string(body))
	require.Equal(t, int32(1), hits.Load())
	require.Equal(t, "StreamSpace-Webhooks/1", ua.Load())
}

func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	public := netip.MustParseAddr("93.184.216.34")
	dns := startFakeDNS(t, func(name string, typ dnsmessage.Type, n int) []netip.Addr {
		switch {
		case name == "rebind.example.com" && typ == dnsmessage.TypeA && n == 0:
			return []netip.Addr{public} // what the save-time check sees
		case name == "rebind.example.com" && typ == dnsmessage.TypeA:
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")} // what the connect sees
		case name == "both.example.com" && typ == dnsmessage.TypeA:
			return []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	opts := Options{AllowHTTP: true, Resolver: dns.resolver(), Timeout: 5 * time.Second}

	// The first answer is public: a URL check done now would pass.
	addrs, err := opts.Resolver.LookupNetIP(context.Background(), "ip4", "rebind.example.com")
	require.NoError(t, err)
	require.Equal(t, []netip.Addr{public}, addrs)
	require.NoError(t, checkAddr("rebind.example.com", addrs[0], nil))
	_, err = CheckURL("http://rebind.example.com:"+port+"/", opts)
	require.NoError(t, err)

	// At connect time the name points at loopback: refused.
	_, err = NewClient(opts).Get("http://rebind.example.com:" + port + "/")
	require.ErrorIs(t, err, ErrBlockedAddress)
	require.ErrorContains(t, err, "rebind.example.com resolves to 127.0.0.1, a loopback address")
	require.Zero(t, hits.Load())

	// Every address is checked: 10.0.0.1 is refused even when 127/8 is allowed,
	// 127.0.0.1 is then dialed. With nothing allowed, both are refused.
	opts.AllowedCIDRs = loopback
	resp, err := NewClient(opts).Get("http://both.example.com:" + port + "/")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, int32(1), hits.Load())
	opts.AllowedCIDRs = nil
	_, err = NewClient(opts).Get("http://both.example.com:" + port + "/")
	require.ErrorIs(t, err, ErrBlockedAddress)
	require.ErrorContains(t, err, "10.0.0.1, a private address")
	require.Equal(t, int32(1), hits.Load())
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { followed.Store(true) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, err := NewClient(Options{AllowedCIDRs: loopback}).Post(srv.URL+"/hook", "application/json", nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/elsewhere", resp.Header.Get("Location"))
	require.False(t, followed.Load())
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	start := time.Now()
	_, err := NewClient(Options{AllowedCIDRs: loopback, Timeout: 200 * time.Millisecond}).Get(srv.URL)
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestClientSettings(t *testing.T) {
	t.Parallel()
	c := NewClient(Options{})
	require.Equal(t, DefaultTimeout, c.Timeout)
	tr := c.Transport.(*checkedTransport).base
	require.Nil(t, tr.Proxy, "proxies from the environment must not be used")
	require.Equal(t, uint16(tls.VersionTLS12), tr.TLSClientConfig.MinVersion)
	require.False(t, tr.TLSClientConfig.InsecureSkipVerify)
	// Plain http is refused before any connection is made.
	_, err := c.Get("http://example.com/")
	require.ErrorIs(t, err, ErrInvalidURL)
	require.ErrorContains(t, err, "url: https is required")
}
