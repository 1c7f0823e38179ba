package ipset

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchRules is 10,000 rules: 5,000 global prefixes (v4 and v6, random
// lengths) and 1,000 users with 5 entries each, one in five a grant, some
// of them expiring.
func benchRules(r *rand.Rand) ([]Rule, []uuid.UUID) {
	rules := make([]Rule, 0, 10_000)
	for range 5_000 {
		rules = append(rules, Rule{Prefix: benchPrefix(r)})
	}
	users := make([]uuid.UUID, 1_000)
	for i := range users {
		users[i] = uuid.New()
		for j := range 5 {
			rl := Rule{UserID: users[i], Prefix: benchPrefix(r), Granted: j == 0}
			if j == 0 && i%2 == 0 {
				rl.ExpiresAt = t0.Add(time.Duration(1+r.IntN(1000)) * time.Hour)
			}
			rules = append(rules, rl)
		}
	}
	return rules, users
}

func benchPrefix(r *rand.Rand) netip.Prefix {
	if r.IntN(2) == 0 {
		return netip.PrefixFrom(benchAddr4(r), 8+r.IntN(25)).Masked()
	}
	return netip.PrefixFrom(benchAddr6(r), 16+r.IntN(113)).Masked()
}

func benchAddr4(r *rand.Rand) netip.Addr {
	var b [4]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return netip.AddrFrom4(b)
}

func benchAddr6(r *rand.Rand) netip.Addr {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	b[0] = 0x20 | byte(r.IntN(2)) // 2000::/15, so that prefixes share the space
	return netip.AddrFrom16(b)
}

// benchAddrs mixes random addresses with addresses inside the rules'
// prefixes, so that lookups both hit and miss.
func benchAddrs(r *rand.Rand, rules []Rule, n int) []netip.Addr {
	as := make([]netip.Addr, n)
	for i := range as {
		switch r.IntN(3) {
		case 0:
			as[i] = benchAddr4(r)
		case 1:
			as[i] = benchAddr6(r)
		default:
			as[i] = rules[r.IntN(len(rules))].Prefix.Addr()
		}
	}
	return as
}

// BenchmarkPolicyCheck10k checks random users from random addresses. Most
// requests are refused by the global list; the WideGlobal case replaces two
// global entries with 0.0.0.0/0 and ::/0, so that every request also goes
// through the user's own list (the longest path).
func BenchmarkPolicyCheck10k(b *testing.B) {
	for _, wide := range []bool{false, true} {
		name := "RandomGlobal"
		if wide {
			name = "WideGlobal"
		}
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(6, 10_000))
			rules, users := benchRules(r)
			if wide {
				rules[0].Prefix = netip.MustParsePrefix("0.0.0.0/0")
				rules[1].Prefix = netip.MustParsePrefix("::/0")
			}
			p := Compile(rules, t0)
			const n = 1 << 14
			as := benchAddrs(r, rules, n)
			us := make([]uuid.UUID, n)
			for i := range us {
				if i%10 == 0 {
					us[i] = uuid.New() // a user with no entries of their own
				} else {
					us[i] = users[r.IntN(len(users))]
				}
			}
			allowedN := 0
			b.ReportAllocs()
			i := 0
			for ; b.Loop(); i++ {
				if p.Check(us[i&(n-1)], as[i&(n-1)]).Allowed {
					allowedN++
				}
			}
			b.ReportMetric(float64(allowedN)/float64(i), "allowed/op")
		})
	}
}

func BenchmarkSetContains10k(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 10_001))
	ps := make([]netip.Prefix, 10_000)
	rules := make([]Rule, len(ps))
	for i := range ps {
		ps[i] = benchPrefix(r)
		rules[i] = Rule{Prefix: ps[i]}
	}
	s := NewSet(ps...)
	const n = 1 << 14
	as := benchAddrs(r, rules, n)
	hits := 0
	b.ReportAllocs()
	i := 0
	for ; b.Loop(); i++ {
		if s.Contains(as[i&(n-1)]) {
			hits++
		}
	}
	b.ReportMetric(float64(hits)/float64(i), "hits/op")
}

func BenchmarkCompile10k(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 10_002))
	rules, _ := benchRules(r)
	b.ReportAllocs()
	for b.Loop() {
		Compile(rules, t0)
	}
}
