package safehttp

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalidURL is wrapped by every CheckURL error. Those errors are the
// caller's fault (HTTP 400) and their messages are written for API users.
var ErrInvalidURL = errors.New("invalid URL")

// MaxURLLength is the longest URL CheckURL accepts.
const MaxURLLength = 4096

type urlError struct {
	msg string
	err error // optional cause, e.g. a *BlockedError
}

func (e *urlError) Error() string        { return "url: " + e.msg }
func (e *urlError) Unwrap() error        { return e.err }
func (e *urlError) Is(target error) bool { return target == ErrInvalidURL }

func invalid(format string, args ...any) error {
	return &urlError{msg: fmt.Sprintf(format, args...)}
}

// CheckURL validates a URL an admin or user saves as a webhook or
// integration endpoint: absolute, https (http only when opts.AllowHTTP, or
// for a host inside opts.AllowedCIDRs given as an IP literal or as localhost),
// no user info, a valid host and port, and an IP literal must be a public
// address or inside AllowedCIDRs. Host names are not resolved here: what they
// resolve to is checked at every connect by the client from NewClient.
func CheckURL(raw string, opts Options) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, invalid("longer than %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid("not a valid URL")
	}
	return checkURL(u, opts)
}

func checkURL(u *url.URL, opts Options) (*url.URL, error) {
	if !u.IsAbs() || u.Opaque != "" {
		return nil, invalid("must be an absolute URL such as https://example.com/hook")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, invalid("https is required")
	}
	if u.User != nil {
		return nil, invalid("user names and passwords are not allowed in the URL")
	}
	host := u.Hostname()
	if host == "" {
		return nil, invalid("host is required")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, invalid("port %q is not valid", p)
		}
	}
	insideAllowed := false // the host is known to be in AllowedCIDRs
	if a, err := netip.ParseAddr(host); err == nil {
		if err := checkAddr("", a, opts.AllowedCIDRs); err != nil {
			return nil, &urlError{msg: err.Error(), err: err}
		}
		insideAllowed = allowedExplicitly(a, opts.AllowedCIDRs)
	} else {
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		if err := checkHostName(name); err != nil {
			return nil, err
		}
		if name == "localhost" || strings.HasSuffix(name, ".localhost") {
			if !allowedExplicitly(netip.MustParseAddr("127.0.0.1"), opts.AllowedCIDRs) &&
				!allowedExplicitly(netip.IPv6Loopback(), opts.AllowedCIDRs) {
				return nil, invalid("%s is a loopback address", host)
			}
			insideAllowed = true
		}
	}
	if u.Scheme == "http" && !opts.AllowHTTP && !insideAllowed {
		return nil, invalid("https is required")
	}
	return u, nil
}

// checkHostName rejects names that are not DNS names, in particular the
// numeric forms some resolvers read as IPv4 (2130706433, 0x7f.1, 127.1).
func checkHostName(name string) error {
	labels := strings.Split(name, ".")
	last := labels[len(labels)-1]
	if last != "" && (strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x")) {
		return invalid("%s is not a valid host name; write IPv4 addresses as four decimal numbers", name)
	}
	for _, l := range labels {
		if l == "" {
			return invalid("%s is not a valid host name", name)
		}
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r > 0x7f
		if !ok {
			return invalid("%s is not a valid host name", name)
		}
	}
	return nil
}
