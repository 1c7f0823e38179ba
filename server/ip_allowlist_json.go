package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/streamspace/enterprise/schemas"
)

// ipEntryJSON is an allowlist entry as the API shows it. ip_address is the
// normalized form of what was given: a single address for a /32 or /128
// ("192.168.1.100"), else the network in CIDR notation ("10.0.0.0/24").
type ipEntryJSON struct {
	ID          int64      `json:"id"`
	IPAddress   string     `json:"ip_address"`
	Scope       string     `json:"scope"`   // "global" | "user"
	UserID      *uuid.UUID `json:"user_id"` // null for a global entry
	Description string     `json:"description"`
	Enabled     bool       `json:"enabled"`
	// Kind: "global", "own" (a user's own entry: narrows their access),
	// "grant" (an admin's: widens it) or "restrict" (an admin's: confines
	// the user to their restrictions).
	Kind string `json:"kind"`
	// Granted: kind "grant", kept for clients that predate kind.
	Granted   bool       `json:"granted"`
	ExpiresAt *time.Time `json:"expires_at"`
	// ExpiredAt: when the expiry workflow disabled the entry.
	ExpiredAt *time.Time `json:"expired_at"`
	// Active: enabled and not past expires_at, i.e. counted by the check now.
	Active    bool       `json:"active"`
	CreatedBy *uuid.UUID `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func toIPEntryJSON(e schemas.IPEntry, now time.Time) ipEntryJSON {
	v := ipEntryJSON{ID: e.ID, IPAddress: formatIPPrefix(e.Prefix), Scope: schemas.IPScopeUser, Kind: ipEntryKind(e),
		Description: e.Description, Enabled: e.Enabled, Granted: e.Granted, ExpiresAt: utcTime(e.ExpiresAt),
		ExpiredAt: utcTime(e.ExpiredAt), Active: e.Active(now), CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	if e.Global() {
		v.Scope = schemas.IPScopeGlobal
	} else {
		id := e.UserID
		v.UserID = &id
	}
	if e.CreatedBy != uuid.Nil {
		id := e.CreatedBy
		v.CreatedBy = &id
	}
	return v
}

func utcTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type ipEntryListResponse struct {
	Entries    []ipEntryJSON `json:"entries"`
	NextCursor *string       `json:"next_cursor"`
}

// createIPEntryRequest is the body of POST /api/security/ip-whitelist.
// user_id and expires_at are strings so that a bad value gets an error
// naming the field and the expected form.
type createIPEntryRequest struct {
	IPAddress   string  `json:"ip_address"`
	Description string  `json:"description"`
	Enabled     *bool   `json:"enabled"`    // default true
	ExpiresAt   *string `json:"expires_at"` // RFC 3339, in the future
	UserID      *string `json:"user_id"`    // admins: anyone; users: themselves
	Scope       string  `json:"scope"`      // "global" (admins) | "user" (default)
	Kind        string  `json:"kind"`       // another user's entry (admins): "grant" (default) | "restrict"
	Force       bool    `json:"force"`      // apply even if it refuses the caller's own address
}

// patchIPEntryRequest changes only the fields present; "expires_at": null
// makes the entry permanent.
type patchIPEntryRequest struct {
	IPAddress   *string      `json:"ip_address"`
	Description *string      `json:"description"`
	Enabled     *bool        `json:"enabled"`
	ExpiresAt   optionalTime `json:"expires_at"`
	Force       bool         `json:"force"`
}

// optionalTime is a JSON field that may be absent (Set false), null (Set,
// Value nil) or a string (kept raw for the handler to parse and explain;
// a value of another type becomes an unparseable string).
type optionalTime struct {
	Set   bool
	Value *string
}

func (o *optionalTime) UnmarshalJSON(data []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		o.Value = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		s = string(data) // not a string: parseExpiresAt names the field
	}
	o.Value = &s
	return nil
}

const ipDescriptionMax = 256

// formatIPPrefix renders a stored prefix: a full-length one as the bare
// address.
func formatIPPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

const ipAddressIssue = "must be an IPv4 or IPv6 address or CIDR network, such as 192.168.1.100, 10.0.0.0/24 or 2001:db8::/32"

// parseIPAddress reads an ip_address: a single address (stored as a /32 or
// /128) or a network in CIDR notation. An IPv4-mapped IPv6 form
// (::ffff:10.0.0.0/104) is stored as the IPv4 network it names, since client
// addresses are compared in IPv4 form. A network written with host bits set
// is refused with the network it probably meant: accepting it silently
// would allow a different range than the one the admin read.
func parseIPAddress(field, s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fieldError(field, "is required; "+ipAddressIssue)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fieldError(field, fmt.Sprintf("%q %s", s, ipAddressIssue))
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fieldError(field, fmt.Sprintf("%q has an IPv6 zone (%%%s); leave it out", s, a.Zone()))
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fieldError(field, fmt.Sprintf("%q %s", s, ipAddressIssue))
	}
	if p != p.Masked() {
		return netip.Prefix{}, fieldError(field, fmt.Sprintf("%s has host bits set; did you mean %s?", s, p.Masked()))
	}
	if p.Addr().Is4In6() { // a masked prefix of at least /96: within ::ffff:0:0/96
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

func validateIPDescription(s string) error {
	if utf8.RuneCountInString(s) > ipDescriptionMax || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fieldError("description", fmt.Sprintf("must be at most %d characters", ipDescriptionMax))
	}
	return nil
}

// parseExpiresAt reads an expires_at: RFC 3339, strictly after now.
func parseExpiresAt(s string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fieldError("expires_at", "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
	}
	t = t.UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	if !t.After(now) {
		return time.Time{}, fieldError("expires_at", fmt.Sprintf("must be in the future (now is %s)", now.UTC().Format(time.RFC3339)))
	}
	return t, nil
}
