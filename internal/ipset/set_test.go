package ipset

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestSetContains(t *testing.T) {
	t.Parallel()
	s := NewSet(prefixes(t,
		"10.0.0.0/8",
		"192.0.2.7/32",
		"198.51.100.0/25",
		"2001:db8::/32",
		"2001:db8:ffff::1/128",
		"fd00:1:2:3::/64",
	)...)
	cases := []struct {
		addr string
		want bool
	}{
		// 10.0.0.0/8: first, last, one before, one after.
		{"10.0.0.0", true},
		{"10.255.255.255", true},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"10.1.2.3", true},
		// Single address.
		{"192.0.2.7", true},
		{"192.0.2.6", false},
		{"192.0.2.8", false},
		// /25 boundaries.
		{"198.51.100.0", true},
		{"198.51.100.127", true},
		{"198.51.100.128", false},
		{"198.51.99.255", false},
		// IPv6 /32 boundaries.
		{"2001:db8::", true},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"2001:db9::", false},
		{"2001:db8:ffff::1", true},
		// IPv6 /64 boundaries: the limit is in the high half.
		{"fd00:1:2:3::", true},
		{"fd00:1:2:3:ffff:ffff:ffff:ffff", true},
		{"fd00:1:2:2:ffff:ffff:ffff:ffff", false},
		{"fd00:1:2:4::", false},
		// Zone ignored.
		{"fd00:1:2:3::5%eth0", true},
		// IPv4-mapped lookups count as IPv4.
		{"::ffff:10.9.8.7", true},
		{"::ffff:11.0.0.0", false},
		{"::ffff:192.0.2.7", true},
		// Families do not mix: 10.0.0.0 is not ::a00:0.
		{"::a00:0", false},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, s.Contains(addr(tc.addr)), tc.addr)
	}
	require.False(t, s.Contains(netip.Addr{}), "invalid address")
	require.False(t, s.Empty())
}

func TestSetEmpty(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]*Set{
		"NoPrefixes":  NewSet(),
		"OnlyInvalid": NewSet(netip.Prefix{}, netip.PrefixFrom(addr("10.0.0.0"), 33)),
		"Nil":         nil,
		"ZeroValue":   {},
	} {
		t.Run(name, func(t *testing.T) {
			require.True(t, s.Empty())
			require.False(t, s.Contains(addr("10.0.0.1")))
			require.False(t, s.Contains(addr("::1")))
		})
	}
}

func TestSetMasksHostBits(t *testing.T) {
	t.Parallel()
	s := NewSet(prefixes(t, "10.1.2.3/8", "2001:db8::1/32")...)
	require.True(t, s.Contains(addr("10.0.0.0")))
	require.True(t, s.Contains(addr("10.255.0.0")))
	require.True(t, s.Contains(addr("2001:db8:ffff::")))
	require.Equal(t, []range4{{0x0a000000, 0x0affffff}}, s.v4)
}

func TestSetMergesOverlappingAndAdjacent(t *testing.T) {
	t.Parallel()
	s := NewSet(prefixes(t,
		"10.0.0.0/24", "10.0.1.0/24", // adjacent
		"10.0.0.128/25",                          // inside
		"10.0.2.0/23",                            // adjacent to the merged /23
		"10.0.5.0/24",                            // gap before it
		"10.0.5.9/32",                            // duplicate coverage
		"255.255.255.0/24", "255.255.255.255/32", // top of the space
		"0.0.0.0/32",
		"2001:db8::/64", "2001:db8:0:1::/64", // adjacent across the high half
		"2001:db8::/48", // covers both
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
		"ffff:ffff:ffff:ffff::/64",
	)...)
	require.Equal(t, []range4{
		{0x00000000, 0x00000000},
		{0x0a000000, 0x0a0003ff},
		{0x0a000500, 0x0a0005ff},
		{0xffffff00, 0xffffffff},
	}, s.v4)
	require.Equal(t, []range6{
		{u128{0x20010db800000000, 0}, u128{0x20010db80000ffff, ^uint64(0)}},
		{u128{^uint64(0), 0}, u128{^uint64(0), ^uint64(0)}},
	}, s.v6)
	require.True(t, s.Contains(addr("10.0.3.255")))
	require.False(t, s.Contains(addr("10.0.4.0")))
	require.False(t, s.Contains(addr("10.0.4.255")))
	require.True(t, s.Contains(addr("10.0.5.0")))
	require.True(t, s.Contains(addr("255.255.255.255")))
	require.True(t, s.Contains(addr("0.0.0.0")))
	require.False(t, s.Contains(addr("0.0.0.1")))
	require.True(t, s.Contains(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
	require.False(t, s.Contains(addr("ffff:ffff:ffff:fffe:ffff:ffff:ffff:ffff")))
}

func TestSetWholeSpace(t *testing.T) {
	t.Parallel()
	s := NewSet(prefixes(t, "0.0.0.0/0")...)
	require.True(t, s.Contains(addr("0.0.0.0")))
	require.True(t, s.Contains(addr("255.255.255.255")))
	require.True(t, s.Contains(addr("::ffff:1.2.3.4")))
	require.False(t, s.Contains(addr("::1")))

	// ::/0 covers the mapped block, hence all of IPv4 too.
	s = NewSet(prefixes(t, "::/0")...)
	require.True(t, s.Contains(addr("::")))
	require.True(t, s.Contains(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
	require.True(t, s.Contains(addr("1.2.3.4")))
	require.True(t, s.Contains(addr("::ffff:1.2.3.4")))
}

func TestSetMappedPrefixes(t *testing.T) {
	t.Parallel()
	// A prefix written in mapped form is the IPv4 prefix it carries.
	s := NewSet(prefixes(t, "::ffff:10.0.0.0/104", "::ffff:192.0.2.1/128")...)
	require.Empty(t, s.v6)
	require.Equal(t, []range4{{0x0a000000, 0x0affffff}, {0xc0000201, 0xc0000201}}, s.v4)
	require.True(t, s.Contains(addr("10.0.0.0")))
	require.True(t, s.Contains(addr("10.255.255.255")))
	require.False(t, s.Contains(addr("11.0.0.0")))
	require.False(t, s.Contains(addr("9.255.255.255")))
	require.True(t, s.Contains(addr("::ffff:10.2.3.4")))
	require.True(t, s.Contains(addr("192.0.2.1")))
	require.False(t, s.Contains(addr("192.0.2.2")))

	// The whole mapped block is all of IPv4 and nothing of real IPv6.
	s = NewSet(prefixes(t, "::ffff:0:0/96")...)
	require.True(t, s.Contains(addr("0.0.0.0")))
	require.True(t, s.Contains(addr("255.255.255.255")))
	require.False(t, s.Contains(addr("::fffe:ffff:ffff")))
	require.False(t, s.Contains(addr("::1:0:0:0")))

	// A wider IPv6 prefix around the block covers IPv4 and the IPv6 around it.
	s = NewSet(prefixes(t, "::/80")...)
	require.True(t, s.Contains(addr("8.8.8.8")))
	require.True(t, s.Contains(addr("::1")))
	require.True(t, s.Contains(addr("::fffe:0:0")))
	require.True(t, s.Contains(addr("::ffff:ffff")))
	require.False(t, s.Contains(addr("::1:0:0:0")))
}

func TestSetContainsDoesNotAllocate(t *testing.T) {
	s := NewSet(prefixes(t, "10.0.0.0/8", "2001:db8::/32")...)
	as := []netip.Addr{addr("10.1.1.1"), addr("::ffff:10.1.1.1"), addr("2001:db8::1%eth0"), addr("8.8.8.8"), {}}
	n := testing.AllocsPerRun(100, func() {
		for _, a := range as {
			s.Contains(a)
		}
	})
	require.Zero(t, n)
}

// naiveContains is the obvious linear scan, with the same mapping rule as
// Set: an IPv4 address also matches IPv6 prefixes around its mapped form.
func naiveContains(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	u := a.Unmap().WithZone("")
	m := netip.AddrFrom16(u.As16())
	for _, p := range ps {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		if p.Contains(u) || p.Contains(m) {
			return true
		}
	}
	return false
}

func randAddr(r *rand.Rand) netip.Addr {
	switch r.IntN(4) {
	case 0:
		var b [4]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return netip.AddrFrom4(b)
	case 1:
		// Mapped, or in the neighbourhood of the mapped block.
		var b [16]byte
		b[10], b[11] = 0xff, byte(0xfe+r.IntN(2))
		for i := 12; i < 16; i++ {
			b[i] = byte(r.IntN(256))
		}
		return netip.AddrFrom16(b)
	default:
		var b [16]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		// Concentrate in a few /16s so that prefixes overlap.
		b[0], b[1] = 0x20, byte(r.IntN(3))
		return netip.AddrFrom16(b)
	}
}

// randPrefix draws lengths so that both wide and narrow prefixes appear.
func randPrefix(r *rand.Rand) netip.Prefix {
	a := randAddr(r)
	bits := r.IntN(a.BitLen() + 1)
	if r.IntN(2) == 0 {
		bits = a.BitLen() - r.IntN(a.BitLen()/4+1) // narrow ones, incl. single addresses
	}
	if a.Is6() && bits < 16 && r.IntN(8) != 0 {
		bits += 16 // keep most IPv6 prefixes from swallowing everything
	}
	return netip.PrefixFrom(a, min(bits, a.BitLen()))
}

// near returns the prefix's first and last address and their neighbours
// (the neighbours are invalid past either end of the address space).
func near(p netip.Prefix) []netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for bit := p.Bits(); bit < len(b)*8; bit++ {
		b[bit/8] |= 0x80 >> (bit % 8)
	}
	first := p.Addr()
	last, _ := netip.AddrFromSlice(b)
	return []netip.Addr{first, last, first.Prev(), last.Next()}
}

func TestSetMatchesLinearScan(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		n := 1 + r.IntN(300)
		ps := make([]netip.Prefix, n)
		for i := range ps {
			ps[i] = randPrefix(r)
		}
		s := NewSet(ps...)
		var probes []netip.Addr
		for _, p := range ps {
			probes = append(probes, near(p)...)
		}
		for range 2000 {
			probes = append(probes, randAddr(r))
		}
		for _, a := range probes {
			if !a.IsValid() {
				continue
			}
			want := naiveContains(ps, a)
			if got := s.Contains(a); got != want {
				t.Fatalf("round %d: Contains(%v) = %v, linear scan says %v (prefixes %v)", round, a, got, want, ps)
			}
			// The mapped and unmapped forms agree.
			if a.Is4() {
				require.Equal(t, want, s.Contains(netip.AddrFrom16(a.As16())), "mapped %v", a)
			}
		}
	}
}
