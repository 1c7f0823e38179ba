package ipset

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var (
	alice = uuid.MustParse("00000000-0000-0000-0000-00000000a11c")
	bob   = uuid.MustParse("00000000-0000-0000-0000-000000000b0b")
	carol = uuid.MustParse("00000000-0000-0000-0000-0000000ca201")
	t0    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

func global(p string) Rule { return Rule{Prefix: netip.MustParsePrefix(p)} }
func own(u uuid.UUID, p string) Rule {
	return Rule{UserID: u, Prefix: netip.MustParsePrefix(p)}
}
func grant(u uuid.UUID, p string) Rule {
	return Rule{UserID: u, Prefix: netip.MustParsePrefix(p), Granted: true}
}
func restrict(u uuid.UUID, p string) Rule {
	return Rule{UserID: u, Prefix: netip.MustParsePrefix(p), Restricted: true}
}
func until(r Rule, at time.Time) Rule { r.ExpiresAt = at; return r }

func allowed(r Reason) Verdict { return Verdict{Allowed: true, Reason: r} }
func refused(r Reason) Verdict { return Verdict{Reason: r} }

func TestPolicyNoRules(t *testing.T) {
	t.Parallel()
	p := Compile(nil, t0)
	require.Equal(t, allowed(ReasonNoRules), p.Check(alice, addr("203.0.113.9")))
	require.Equal(t, allowed(ReasonNoRules), p.Check(alice, netip.Addr{}), "no rules: even an unknown address passes")
	require.False(t, p.Restricted(alice))
	require.True(t, p.ValidUntil().IsZero())
	require.False(t, p.Stale(t0.Add(100*365*24*time.Hour)))
}

func TestPolicyGlobalList(t *testing.T) {
	t.Parallel()
	p := Compile([]Rule{global("10.0.0.0/8"), global("2001:db8::/32")}, t0)
	require.Equal(t, allowed(ReasonGlobal), p.Check(alice, addr("10.1.2.3")))
	require.Equal(t, allowed(ReasonGlobal), p.Check(alice, addr("::ffff:10.1.2.3")))
	require.Equal(t, allowed(ReasonGlobal), p.Check(bob, addr("2001:db8::42")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(alice, addr("11.0.0.0")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(bob, addr("2001:db9::")))
	require.Equal(t, refused(ReasonInvalidAddress), p.Check(alice, netip.Addr{}))
	require.True(t, p.Restricted(alice))
	require.True(t, p.Restricted(uuid.New()))
}

func TestPolicyOwnListNarrowsGlobal(t *testing.T) {
	t.Parallel()
	// Rule 2: a user's own entries can only narrow the global list.
	p := Compile([]Rule{
		global("10.0.0.0/8"),
		own(alice, "10.1.0.0/16"),
		own(alice, "192.0.2.0/24"), // outside the global list: widens nothing
	}, t0)
	require.Equal(t, allowed(ReasonUser), p.Check(alice, addr("10.1.255.255")))
	require.Equal(t, refused(ReasonNotInUserList), p.Check(alice, addr("10.2.0.0")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(alice, addr("192.0.2.5")))
	// Bob has no entries of his own: the global list alone.
	require.Equal(t, allowed(ReasonGlobal), p.Check(bob, addr("10.2.0.0")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(bob, addr("192.0.2.5")))
}

func TestPolicyOwnListWithoutGlobal(t *testing.T) {
	t.Parallel()
	p := Compile([]Rule{own(alice, "2001:db8:1::/48"), own(alice, "198.51.100.7/32")}, t0)
	require.Equal(t, allowed(ReasonUser), p.Check(alice, addr("2001:db8:1::9")))
	require.Equal(t, allowed(ReasonUser), p.Check(alice, addr("198.51.100.7")))
	require.Equal(t, refused(ReasonNotInUserList), p.Check(alice, addr("198.51.100.8")))
	require.Equal(t, refused(ReasonNotInUserList), p.Check(alice, addr("2001:db8:2::")))
	require.Equal(t, refused(ReasonInvalidAddress), p.Check(alice, netip.Addr{}))
	// Others are unrestricted, even from an unknown address.
	require.Equal(t, allowed(ReasonNoRules), p.Check(bob, addr("203.0.113.1")))
	require.Equal(t, allowed(ReasonNoRules), p.Check(bob, netip.Addr{}))
	require.True(t, p.Restricted(alice))
	require.False(t, p.Restricted(bob))
}

func TestPolicyGrantAdmitsOutsideGlobal(t *testing.T) {
	t.Parallel()
	// Rule 1: an admin's grant lets its user in from outside the global
	// list and outside their own list, without locking them out of the
	// normal addresses.
	p := Compile([]Rule{
		global("10.0.0.0/8"),
		own(alice, "10.1.0.0/16"),
		grant(alice, "203.0.113.9/32"),
		grant(bob, "2001:db8:beef::/48"),
	}, t0)
	require.Equal(t, allowed(ReasonGrant), p.Check(alice, addr("203.0.113.9")))
	require.Equal(t, allowed(ReasonGrant), p.Check(alice, addr("::ffff:203.0.113.9")))
	require.Equal(t, allowed(ReasonUser), p.Check(alice, addr("10.1.0.1")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(alice, addr("203.0.113.10")))
	require.Equal(t, allowed(ReasonGrant), p.Check(bob, addr("2001:db8:beef::1")))
	require.Equal(t, allowed(ReasonGlobal), p.Check(bob, addr("10.9.9.9")))
	// A grant is personal.
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(carol, addr("203.0.113.9")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(bob, addr("203.0.113.9")))
}

func TestPolicyGrantsOnlyNeverNarrow(t *testing.T) {
	t.Parallel()
	// With grants only, rule 2 has nothing to enforce: any valid address
	// passes, but an unknown one is refused because a rule applies.
	p := Compile([]Rule{grant(alice, "203.0.113.0/24")}, t0)
	require.Equal(t, allowed(ReasonGrant), p.Check(alice, addr("203.0.113.1")))
	require.Equal(t, allowed(ReasonUnrestricted), p.Check(alice, addr("198.51.100.1")))
	require.Equal(t, refused(ReasonInvalidAddress), p.Check(alice, netip.Addr{}))
	require.True(t, p.Restricted(alice))
	require.False(t, p.Restricted(bob))
}

func TestPolicyInvalidPrefixFailsClosed(t *testing.T) {
	t.Parallel()
	p := Compile([]Rule{{Prefix: netip.Prefix{}}, {UserID: bob, Granted: true}}, t0)
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(alice, addr("10.0.0.1")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(bob, addr("10.0.0.1")), "an invalid grant admits no one")
	p = Compile([]Rule{{UserID: alice}}, t0)
	require.Equal(t, refused(ReasonNotInUserList), p.Check(alice, addr("10.0.0.1")))
}

func TestPolicyExpiry(t *testing.T) {
	t.Parallel()
	rules := []Rule{
		global("10.0.0.0/8"),
		until(grant(alice, "203.0.113.9/32"), t0.Add(time.Hour)),
		until(global("192.0.2.0/24"), t0.Add(30*time.Minute)),
		until(own(bob, "10.5.0.0/16"), t0.Add(2*time.Hour)),
		until(grant(carol, "198.51.100.0/24"), t0.Add(-time.Second)), // already expired
	}
	p := Compile(rules, t0)
	require.Equal(t, t0.Add(30*time.Minute), p.ValidUntil(), "earliest future expiry")
	require.Len(t, p.Rules(), 4, "the expired rule is dropped")
	require.Equal(t, allowed(ReasonGrant), p.Check(alice, addr("203.0.113.9")))
	require.Equal(t, allowed(ReasonGlobal), p.Check(carol, addr("192.0.2.1")))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(carol, addr("198.51.100.1")))
	require.Equal(t, refused(ReasonNotInUserList), p.Check(bob, addr("10.6.0.0")))
	require.False(t, p.Stale(t0.Add(30*time.Minute-time.Nanosecond)))
	require.True(t, p.Stale(t0.Add(30*time.Minute)))

	// At the expiry instant the entry no longer counts.
	p = Compile(rules, t0.Add(30*time.Minute))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(carol, addr("192.0.2.1")))
	require.Equal(t, allowed(ReasonGrant), p.Check(alice, addr("203.0.113.9")))
	require.Equal(t, t0.Add(time.Hour), p.ValidUntil())

	// Recompiling from the policy's own rules works the same.
	p = Compile(p.Rules(), t0.Add(time.Hour))
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(alice, addr("203.0.113.9")))
	require.Equal(t, t0.Add(2*time.Hour), p.ValidUntil())
	require.Equal(t, refused(ReasonNotInUserList), p.Check(bob, addr("10.6.0.0")))

	// Bob's own list expires: he falls back to the global list alone.
	p = Compile(p.Rules(), t0.Add(3*time.Hour))
	require.Equal(t, allowed(ReasonGlobal), p.Check(bob, addr("10.6.0.0")))
	require.True(t, p.ValidUntil().IsZero())
	require.False(t, p.Stale(t0.Add(1000*time.Hour)))
}

func TestPolicyRulesIsACopy(t *testing.T) {
	t.Parallel()
	in := []Rule{global("10.0.0.0/8"), {ID: 7, UserID: alice, Prefix: netip.MustParsePrefix("10.1.0.0/16")}}
	p := Compile(in, t0)
	in[0].Prefix = netip.MustParsePrefix("0.0.0.0/0")
	got := p.Rules()
	require.Equal(t, netip.MustParsePrefix("10.0.0.0/8"), got[0].Prefix)
	require.Equal(t, int64(7), got[1].ID)
	got[0].Prefix = netip.MustParsePrefix("0.0.0.0/0")
	require.Equal(t, netip.MustParsePrefix("10.0.0.0/8"), p.Rules()[0].Prefix)
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(bob, addr("11.0.0.0")))

	// The lockout guard's use: the list after deleting the global entry
	// the caller depends on.
	after := Compile(slices.Delete(p.Rules(), 0, 1), t0)
	require.Equal(t, refused(ReasonNotInUserList), after.Check(alice, addr("11.0.0.0")))
	require.Equal(t, allowed(ReasonNoRules), after.Check(bob, addr("11.0.0.0")))
}

func TestPolicyCheckDoesNotAllocate(t *testing.T) {
	p := Compile([]Rule{
		global("10.0.0.0/8"), global("2001:db8::/32"),
		own(alice, "10.1.0.0/16"), grant(alice, "203.0.113.9/32"),
	}, t0)
	as := []netip.Addr{addr("10.1.1.1"), addr("::ffff:203.0.113.9"), addr("2001:db8::1%eth0"), addr("8.8.8.8"), {}}
	n := testing.AllocsPerRun(100, func() {
		for _, a := range as {
			p.Check(alice, a)
			p.Check(bob, a)
		}
	})
	require.Zero(t, n)
}

// A restriction confines its user: outside it neither the global list, a
// grant nor their own entries admit them; inside it the usual rules apply
// (it narrows, never admits by itself); other users are unaffected.
func TestPolicyRestriction(t *testing.T) {
	t.Parallel()
	p := Compile([]Rule{
		global("10.0.0.0/8"),
		restrict(alice, "10.1.0.0/16"),
		grant(alice, "198.51.100.0/24"),
		grant(bob, "198.51.100.0/24"),
		own(alice, "10.1.2.0/24"),
		restrict(carol, "192.0.2.0/24"),
		grant(carol, "192.0.2.0/24"),
	}, t0)
	require.Equal(t, refused(ReasonNotInRestriction), p.Check(alice, addr("10.2.0.1")), "in the global list, outside the restriction")
	require.Equal(t, refused(ReasonNotInRestriction), p.Check(alice, addr("198.51.100.7")), "in a grant, outside the restriction")
	require.Equal(t, allowed(ReasonUser), p.Check(alice, addr("10.1.2.3")))
	require.Equal(t, refused(ReasonNotInUserList), p.Check(alice, addr("10.1.9.9")), "inside it, her own entries still narrow")
	require.Equal(t, refused(ReasonInvalidAddress), p.Check(alice, netip.Addr{}))
	require.Equal(t, allowed(ReasonGrant), p.Check(bob, addr("198.51.100.7")), "a grant still widens for others")
	require.Equal(t, allowed(ReasonGlobal), p.Check(bob, addr("10.2.0.1")))
	// Confined to a network outside the global list: a grant and a
	// restriction for it.
	require.Equal(t, allowed(ReasonGrant), p.Check(carol, addr("192.0.2.5")))
	require.Equal(t, refused(ReasonNotInRestriction), p.Check(carol, addr("10.2.0.1")))
	require.True(t, p.Restricted(carol))

	// A restriction alone, outside the global list, admits nobody; expired,
	// it no longer confines.
	p = Compile([]Rule{global("10.0.0.0/8"), until(restrict(alice, "192.0.2.0/24"), t0.Add(time.Hour))}, t0)
	require.Equal(t, refused(ReasonNotInGlobal), p.Check(alice, addr("192.0.2.5")))
	require.Equal(t, refused(ReasonNotInRestriction), p.Check(alice, addr("10.2.0.1")))
	p = Compile(p.Rules(), t0.Add(time.Hour))
	require.Equal(t, allowed(ReasonGlobal), p.Check(alice, addr("10.2.0.1")))
}
