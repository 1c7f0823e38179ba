package ipset

import (
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Rule is one enabled allowlist entry as the policy sees it. Callers pass
// only enabled entries; Compile itself drops the expired ones.
type Rule struct {
	// ID identifies the entry for the caller (schemas.IPEntry.ID), so a
	// caller can find it again in Policy.Rules; the policy ignores it.
	ID int64
	// UserID is the user the entry applies to; uuid.Nil makes it global.
	UserID uuid.UUID
	// Prefix is the address range; a single address is a /32 or /128.
	Prefix netip.Prefix
	// Granted marks a per-user entry an admin created: it admits its user
	// even from outside the global list. Ignored on global entries.
	Granted bool
	// Restricted marks a per-user entry an admin created to confine its
	// user: once a user has one, they are refused from outside all of
	// them. It only narrows (never admits by itself). Ignored on global
	// entries and on grants (the store never makes both).
	Restricted bool
	// ExpiresAt ends the entry: it counts only strictly before this
	// instant. The zero time means it never expires.
	ExpiresAt time.Time
}

// Reason says why Check decided as it did. The values are stable strings
// meant for error details, audit rows and alerts.
type Reason string

const (
	// ReasonNoRules: no entry applies to the user (no global entries and
	// none of theirs), so every address is allowed.
	ReasonNoRules Reason = "no_rules"
	// ReasonGrant: the address is inside one of the user's grants.
	ReasonGrant Reason = "grant"
	// ReasonGlobal: the address is inside the global list and the user has
	// no entries of their own narrowing it.
	ReasonGlobal Reason = "global"
	// ReasonUser: the address is inside the user's own entries (and inside
	// the global list, if there is one).
	ReasonUser Reason = "user"
	// ReasonUnrestricted: the user has grants only, the address is in none
	// of them, and nothing else restricts them. Grants only widen access.
	ReasonUnrestricted Reason = "unrestricted"
	// ReasonNotInGlobal: refused, outside the global list.
	ReasonNotInGlobal Reason = "not_in_global"
	// ReasonNotInUserList: refused, inside the global list (or there is
	// none) but outside the user's own entries.
	ReasonNotInUserList Reason = "not_in_user_list"
	// ReasonNotInRestriction: refused, the user is confined by an admin's
	// restrictions and the address is in none of them.
	ReasonNotInRestriction Reason = "not_in_restriction"
	// ReasonInvalidAddress: refused, the client address is unknown or
	// invalid while some entry applies to the user.
	ReasonInvalidAddress Reason = "invalid_address"
)

// Verdict is the outcome of Policy.Check.
type Verdict struct {
	Allowed bool
	Reason  Reason
}

// Policy is the compiled allowlist of every user at one instant: immutable
// and safe for concurrent use. Compile builds it; it stays correct until
// ValidUntil, after which the caller must compile it again.
type Policy struct {
	rules      []Rule // the active rules, in the caller's order
	global     *Set
	hasGlobal  bool
	users      map[uuid.UUID]*userSets
	validUntil time.Time
}

// userSets holds one user's active entries.
type userSets struct {
	grants      *Set // Granted
	self        *Set // neither Granted nor Restricted
	restrict    *Set // Restricted
	hasSelf     bool
	hasRestrict bool
}

// Compile builds the policy in force at now from the enabled entries. A rule
// whose ExpiresAt is at or before now is dropped; the earliest ExpiresAt
// still ahead becomes ValidUntil.
//
// A rule with an invalid prefix covers no address. It still counts as
// present, so a global or own list made only of invalid prefixes refuses
// everyone (fail closed), while an invalid grant admits no one.
func Compile(rules []Rule, now time.Time) *Policy {
	p := &Policy{users: make(map[uuid.UUID]*userSets)}
	var global []netip.Prefix
	type lists struct {
		grants, self, restrict []netip.Prefix
		hasSelf, hasRestrict   bool
	}
	per := make(map[uuid.UUID]*lists)
	for _, r := range rules {
		if !r.ExpiresAt.IsZero() {
			if !now.Before(r.ExpiresAt) {
				continue
			}
			if p.validUntil.IsZero() || r.ExpiresAt.Before(p.validUntil) {
				p.validUntil = r.ExpiresAt
			}
		}
		p.rules = append(p.rules, r)
		if r.UserID == uuid.Nil {
			p.hasGlobal = true
			global = append(global, r.Prefix)
			continue
		}
		l := per[r.UserID]
		if l == nil {
			l = &lists{}
			per[r.UserID] = l
		}
		switch {
		case r.Granted:
			l.grants = append(l.grants, r.Prefix)
		case r.Restricted:
			l.hasRestrict = true
			l.restrict = append(l.restrict, r.Prefix)
		default:
			l.hasSelf = true
			l.self = append(l.self, r.Prefix)
		}
	}
	p.global = NewSet(global...)
	for id, l := range per {
		p.users[id] = &userSets{grants: NewSet(l.grants...), self: NewSet(l.self...), restrict: NewSet(l.restrict...),
			hasSelf: l.hasSelf, hasRestrict: l.hasRestrict}
	}
	return p
}

// ValidUntil is the earliest expiry among the compiled rules: from that
// instant on the policy is stale and must be compiled again (for example
// Compile(p.Rules(), now)). The zero time means no rule expires.
func (p *Policy) ValidUntil() time.Time { return p.validUntil }

// Stale reports whether now is at or past ValidUntil, so that some compiled
// rule has expired and the policy must be compiled again.
func (p *Policy) Stale(now time.Time) bool {
	return !p.validUntil.IsZero() && !now.Before(p.validUntil)
}

// Rules returns a copy of the rules the policy was compiled from, minus those
// already expired at compile time. A caller can edit the copy and Compile it
// to see the list as it would be after a change (the self-lockout guard).
func (p *Policy) Rules() []Rule { return slices.Clone(p.rules) }

// Restricted reports whether any rule applies to the user: a global entry or
// one of theirs (grant, restriction or own). An unrestricted user is allowed from any
// address, even an unknown one.
func (p *Policy) Restricted(user uuid.UUID) bool {
	return p.hasGlobal || p.users[user] != nil
}

// Check decides whether user may make a request from a (the trusted client
// address). With G the global list, Gr the user's grants, S the user's own
// entries and R the user's restrictions:
//
//  0. R not empty and a not in R: refused;
//  1. otherwise a in Gr: allowed;
//  2. otherwise allowed iff (G empty or a in G) and (S empty or a in S).
//
// That is, allowed iff (R empty or a in R) and (a in Gr or ((G empty or a in
// G) and (S empty or a in S))): a restriction only narrows, a grant only
// widens, within the restrictions.
//
// An invalid address is refused when any of them is non-empty, and allowed
// when all are empty. IPv4-mapped addresses count as IPv4; zones are
// ignored. Check does not allocate and runs in O(log n).
func (p *Policy) Check(user uuid.UUID, a netip.Addr) Verdict {
	u := p.users[user]
	if !p.hasGlobal && u == nil {
		return Verdict{Allowed: true, Reason: ReasonNoRules}
	}
	if !a.IsValid() {
		return Verdict{Reason: ReasonInvalidAddress}
	}
	if u != nil && u.hasRestrict && !u.restrict.Contains(a) {
		return Verdict{Reason: ReasonNotInRestriction}
	}
	if u != nil && u.grants.Contains(a) {
		return Verdict{Allowed: true, Reason: ReasonGrant}
	}
	if p.hasGlobal && !p.global.Contains(a) {
		return Verdict{Reason: ReasonNotInGlobal}
	}
	if u != nil && u.hasSelf {
		if !u.self.Contains(a) {
			return Verdict{Reason: ReasonNotInUserList}
		}
		return Verdict{Allowed: true, Reason: ReasonUser}
	}
	if p.hasGlobal {
		return Verdict{Allowed: true, Reason: ReasonGlobal}
	}
	return Verdict{Allowed: true, Reason: ReasonUnrestricted}
}
