package safehttp

import (
	"errors"
	"net/netip"
)

// ErrBlockedAddress is wrapped by every refusal to reach an address that is
// not on the public internet; test for it with errors.Is.
var ErrBlockedAddress = errors.New("blocked address")

// BlockedError says which address was refused and why.
type BlockedError struct {
	Host   string     // the name that resolved to Addr; "" for an IP literal
	Addr   netip.Addr // the address refused
	Reason string     // e.g. "a private address"
}

func (e *BlockedError) Error() string {
	if e.Host != "" && e.Host != e.Addr.String() {
		return e.Host + " resolves to " + e.Addr.String() + ", " + e.Reason
	}
	return e.Addr.String() + " is " + e.Reason
}

// Is makes errors.Is(err, ErrBlockedAddress) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlockedAddress }

type rangeRule struct {
	prefix netip.Prefix
	reason string
}

func rules(reason string, cidrs ...string) []rangeRule {
	out := make([]rangeRule, len(cidrs))
	for i, c := range cidrs {
		out[i] = rangeRule{netip.MustParsePrefix(c), reason}
	}
	return out
}

// blocked lists the ranges that are never dialed unless allowed. Order
// matters only for the reason given (the first match wins).
var blocked = concat(
	rules("an unspecified address", "0.0.0.0/32", "::/128"),
	rules("a loopback address", "127.0.0.0/8", "::1/128"),
	rules(`a "this network" address`, "0.0.0.0/8"),
	rules("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
	rules("a shared (CGNAT) address", "100.64.0.0/10"),
	rules("a link-local address", "169.254.0.0/16", "fe80::/10"),
	rules("a site-local address", "fec0::/10"),
	rules("a multicast address", "224.0.0.0/4", "ff00::/8"),
	rules("a broadcast address", "255.255.255.255/32"),
	rules("a reserved address", "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15",
		"::/96", "64:ff9b:1::/48", "2001::/32"), // IPv4-compatible, local NAT64, Teredo
)

func concat(lists ...[]rangeRule) []rangeRule {
	var out []rangeRule
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// embedded returns the IPv4 address an IPv6 address stands for: IPv4-mapped
// (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
func embedded(a netip.Addr) (netip.Addr, string) {
	if !a.Is6() {
		return netip.Addr{}, ""
	}
	b := a.As16()
	switch {
	case a.Is4In6():
		return a.Unmap(), "IPv4-mapped"
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4"
	}
	return netip.Addr{}, ""
}

func inAny(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowedExplicitly reports whether a (or the IPv4 address it embeds) lies in
// one of the allowed prefixes.
func allowedExplicitly(a netip.Addr, allowed []netip.Prefix) bool {
	a = a.WithZone("")
	inner, _ := embedded(a)
	return inAny(a, allowed) || (inner.IsValid() && inAny(inner, allowed))
}

// checkAddr returns a *BlockedError when a may not be dialed.
func checkAddr(host string, a netip.Addr, allowed []netip.Prefix) error {
	a = a.WithZone("")
	if allowedExplicitly(a, allowed) {
		return nil
	}
	if why := classify(a); why != "" {
		return &BlockedError{Host: host, Addr: a, Reason: why}
	}
	if inner, how := embedded(a); inner.IsValid() {
		if why := classify(inner); why != "" {
			return &BlockedError{Host: host, Addr: a, Reason: why + " (" + how + " " + inner.String() + ")"}
		}
	}
	return nil
}

func classify(a netip.Addr) string {
	for _, r := range blocked {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}
