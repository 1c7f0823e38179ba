package ipset

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Set is an immutable set of IPv4 and IPv6 addresses. The zero value and a
// nil *Set are empty sets. It is safe for concurrent use.
type Set struct {
	v4 []range4 // sorted by lo, disjoint, non-adjacent
	v6 []range6 // sorted by lo, disjoint, non-adjacent
}

// range4 is the closed range [lo, hi] of IPv4 addresses.
type range4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as a big-endian 128-bit number.
type u128 struct{ hi, lo uint64 }

// range6 is the closed range [lo, hi] of IPv6 addresses.
type range6 struct{ lo, hi u128 }

// The IPv4-mapped block ::ffff:0:0/96.
var (
	mappedLo = u128{0, 0x0000_ffff_0000_0000}
	mappedHi = u128{0, 0x0000_ffff_ffff_ffff}
)

// NewSet builds the set of addresses covered by the prefixes. Host bits are
// masked off (10.1.2.3/8 means 10.0.0.0/8). Invalid prefixes (the zero
// netip.Prefix, a bad length) cover nothing and are ignored; callers that
// must reject them validate with Prefix.IsValid first.
func NewSet(prefixes ...netip.Prefix) *Set {
	s := &Set{}
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		a := p.Addr()
		if a.Is4() {
			x := v4num(a)
			s.v4 = append(s.v4, range4{x, x | ^uint32(0)>>p.Bits()})
			continue
		}
		r := prefixRange6(p)
		// The part inside ::ffff:0:0/96 is IPv4: store it as such, because
		// lookups unmap addresses before searching.
		lo, hi := maxU(r.lo, mappedLo), minU(r.hi, mappedHi)
		if !hi.less(lo) {
			s.v4 = append(s.v4, range4{uint32(lo.lo), uint32(hi.lo)})
			if r.lo == lo && r.hi == hi {
				continue // entirely inside the mapped block
			}
		}
		s.v6 = append(s.v6, r)
	}
	s.v4 = merge4(s.v4)
	s.v6 = merge6(s.v6)
	return s
}

// Contains reports whether the set holds a. An IPv4-mapped IPv6 address is
// looked up as IPv4; a zone is ignored; an invalid address is never
// contained. It does not allocate.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		x := v4num(a)
		r := s.v4
		// First range whose hi >= x; x is inside iff that range starts <= x.
		i, j := 0, len(r)
		for i < j {
			h := int(uint(i+j) >> 1)
			if r[h].hi < x {
				i = h + 1
			} else {
				j = h
			}
		}
		return i < len(r) && r[i].lo <= x
	}
	x := v6num(a)
	r := s.v6
	i, j := 0, len(r)
	for i < j {
		h := int(uint(i+j) >> 1)
		if r[h].hi.less(x) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(r) && !x.less(r[i].lo)
}

// Empty reports whether the set holds no address at all.
func (s *Set) Empty() bool {
	return s == nil || len(s.v4) == 0 && len(s.v6) == 0
}

func v4num(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v6num(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixRange6 is the range of a masked IPv6 prefix.
func prefixRange6(p netip.Prefix) range6 {
	lo := v6num(p.Addr())
	hi := lo
	if b := p.Bits(); b < 64 {
		hi.hi |= ^uint64(0) >> b
		hi.lo = ^uint64(0)
	} else {
		hi.lo |= ^uint64(0) >> (b - 64) // b = 128 shifts by 64: no host bits
	}
	return range6{lo, hi}
}

func (a u128) less(b u128) bool {
	return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo
}

func (a u128) compare(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next is a+1 and whether it overflowed (a was the last address).
func (a u128) next() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}, hi == 0 && lo == 0
}

func maxU(a, b u128) u128 {
	if a.less(b) {
		return b
	}
	return a
}

func minU(a, b u128) u128 {
	if a.less(b) {
		return a
	}
	return b
}

// merge4 sorts the ranges and joins those that overlap or touch.
func merge4(rs []range4) []range4 {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b range4) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		// last.hi+1 overflows only when last reaches 255.255.255.255, and
		// then it already covers r.
		if last.hi == ^uint32(0) || r.lo <= last.hi+1 {
			last.hi = max(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// merge6 sorts the ranges and joins those that overlap or touch.
func merge6(rs []range6) []range6 {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b range6) int { return a.lo.compare(b.lo) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		after, overflow := last.hi.next()
		if overflow || !after.less(r.lo) {
			last.hi = maxU(last.hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}
