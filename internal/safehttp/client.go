// Package safehttp is the outbound HTTP client for webhooks and integrations:
// URLs that users or admins configure must not reach the machines around the
// server (loopback, private networks, link-local addresses such as the cloud
// metadata service 169.254.169.254, ...).
//
// The decisive check happens at connect time: the client resolves the host
// itself, drops every address that is not public (unless it is inside
// Options.AllowedCIDRs) and dials only the addresses it checked, by IP, with a
// net.Dialer Control hook that checks the socket's address once more. A name
// that resolves to a public address when the URL is saved and to 127.0.0.1
// when it is used (DNS rebinding) is therefore refused. Redirects are never
// followed, and proxies from the environment are ignored.
package safehttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// DefaultTimeout bounds each request when Options.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Options configure the client and CheckURL.
type Options struct {
	// AllowedCIDRs are reachable even though they are not public, e.g. an
	// internal chat server at 10.20.0.0/16, or 127.0.0.0/8 in tests.
	AllowedCIDRs []netip.Prefix
	// AllowHTTP permits plain http:// URLs to any host; otherwise http is only
	// allowed to hosts inside AllowedCIDRs.
	AllowHTTP bool
	// Timeout bounds each request, response body included (0 = DefaultTimeout).
	Timeout time.Duration
	// Resolver looks up host names (nil = net.DefaultResolver).
	Resolver *net.Resolver
	// UserAgent is set on requests that have none ("" = Go's default).
	UserAgent string
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) resolver() *net.Resolver {
	if o.Resolver != nil {
		return o.Resolver
	}
	return net.DefaultResolver
}

// NewClient returns an HTTP client that only reaches public addresses (and
// AllowedCIDRs), re-checks every request URL with CheckURL, and returns 3xx
// responses to the caller instead of following them.
func NewClient(opts Options) *http.Client {
	opts.AllowedCIDRs = append([]netip.Prefix(nil), opts.AllowedCIDRs...)
	d := newDialer(opts)
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: &checkedTransport{opts: opts, base: t},
		Timeout:   opts.timeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// checkedTransport validates each request's URL and sets the User-Agent.
type checkedTransport struct {
	opts Options
	base *http.Transport
}

func (t *checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, err := checkURL(req.URL, t.opts); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if t.opts.UserAgent != "" && req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.opts.UserAgent)
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pool.
func (t *checkedTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

type dialer struct {
	opts Options
	net  net.Dialer
}

func newDialer(opts Options) *dialer {
	d := &dialer{opts: opts, net: net.Dialer{Timeout: opts.timeout(), KeepAlive: 30 * time.Second}}
	d.net.Control = d.control
	return d
}

// dial resolves host itself and dials, one by one, only the addresses that
// pass checkAddr; it never hands a name to the OS.
func (d *dialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ipNet := map[string]string{"tcp4": "ip4", "tcp6": "ip6"}[network]
	if ipNet == "" {
		ipNet = "ip"
	}
	addrs, err := d.opts.resolver().LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		if err := checkAddr(host, a, d.opts.AllowedCIDRs); err != nil {
			errs = append(errs, err)
			continue
		}
		c, err := d.net.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("safehttp: %s has no addresses", host)
	}
	return nil, fmt.Errorf("safehttp: dial %s: %w", address, errors.Join(errs...))
}

// control is the last check, on the address the socket is connecting to.
func (d *dialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("safehttp: unexpected dial address %q: %w", address, err)
	}
	return checkAddr("", ap.Addr(), d.opts.AllowedCIDRs)
}
