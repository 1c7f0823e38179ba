package safehttp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	internal := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("127.0.0.0/8")}
	cases := []struct {
		raw     string
		opts    Options
		wantErr string // "" = valid
	}{
		{raw: "https://hooks.slack.com/services/T0/B0/x"},
		{raw: "HTTPS://Example.COM:8443/hook?a=1"},
		{raw: "https://93.184.216.34/hook"},
		{raw: "https://[2606:4700:4700::1111]/"},
		{raw: "https://xn--bcher-kva.example/"},
		{raw: "http://example.com/hook", wantErr: "url: https is required"},
		{raw: "http://example.com/hook", opts: Options{AllowHTTP: true}},
		{raw: "ftp://example.com/", wantErr: "url: https is required"},
		{raw: "javascript:alert(1)", wantErr: "url: must be an absolute URL"},
		{raw: "/relative/hook", wantErr: "url: must be an absolute URL"},
		{raw: "example.com/hook", wantErr: "url: must be an absolute URL"},
		{raw: "https:///path", wantErr: "url: host is required"},
		{raw: "https://user:pw@example.com/", wantErr: "url: user names and passwords are not allowed"},
		{raw: "https://example.com:0/", wantErr: `url: port "0" is not valid`},
		{raw: "https://example.com:70000/", wantErr: `url: port "70000" is not valid`},
		{raw: "https://example.com:/", wantErr: `url: port "" is not valid`},
		{raw: "https://exa mple.com/", wantErr: "url: not a valid URL"},
		{raw: "https://" + strings.Repeat("a", MaxURLLength), wantErr: "url: longer than"},
		{raw: "https://10.0.0.5/", wantErr: "url: 10.0.0.5 is a private address"},
		{raw: "https://127.0.0.1/", wantErr: "url: 127.0.0.1 is a loopback address"},
		{raw: "https://169.254.169.254/latest/meta-data/", wantErr: "url: 169.254.169.254 is a link-local address"},
		{raw: "https://[::1]:8080/", wantErr: "url: ::1 is a loopback address"},
		{raw: "https://[fd00:ec2::254]/", wantErr: "url: fd00:ec2::254 is a private address"},
		{raw: "https://[::ffff:127.0.0.1]/", wantErr: "url: ::ffff:127.0.0.1 is a loopback address"},
		{raw: "https://0.0.0.0/", wantErr: "url: 0.0.0.0 is an unspecified address"},
		{raw: "https://100.64.0.1/", wantErr: "CGNAT"},
		{raw: "https://2130706433/", wantErr: "url: 2130706433 is not a valid host name"},
		{raw: "https://0x7f.1/", wantErr: "not a valid host name"},
		{raw: "https://127.1/", wantErr: "not a valid host name"},
		{raw: "https://0177.0.0.1/", wantErr: "not a valid host name"},
		{raw: "https://a..b/", wantErr: "not a valid host name"},
		{raw: "https://localhost/", wantErr: "url: localhost is a loopback address"},
		{raw: "https://api.localhost./", wantErr: "loopback"},
		{raw: "http://localhost:8080/hook", opts: Options{AllowedCIDRs: internal}},
		{raw: "https://10.20.1.2/hook", opts: Options{AllowedCIDRs: internal}},
		{raw: "http://10.20.1.2/hook", opts: Options{AllowedCIDRs: internal}},
		{raw: "http://10.21.1.2/hook", opts: Options{AllowedCIDRs: internal}, wantErr: "url: 10.21.1.2 is a private address"},
		{raw: "http://chat.internal.example/hook", opts: Options{AllowedCIDRs: internal}, wantErr: "url: https is required"},
	}
	for _, c := range cases {
		u, err := CheckURL(c.raw, c.opts)
		if c.wantErr == "" {
			require.NoError(t, err, c.raw)
			require.NotNil(t, u)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidURL, c.raw)
		require.ErrorContains(t, err, c.wantErr, c.raw)
	}
	_, err := CheckURL("https://192.168.1.1/", Options{})
	require.ErrorIs(t, err, ErrBlockedAddress)
	u, err := CheckURL("HTTPS://Example.COM/x", Options{})
	require.NoError(t, err)
	require.Equal(t, "https", u.Scheme)
}
