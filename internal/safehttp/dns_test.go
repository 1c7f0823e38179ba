package safehttp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS is a tiny DNS server on loopback UDP. answer is called for every
// A and AAAA question with the name (no trailing dot), the type and how many
// questions of that name and type came before.
type fakeDNS struct {
	conn   net.PacketConn
	answer func(name string, typ dnsmessage.Type, n int) []netip.Addr
	mu     sync.Mutex
	seen   map[string]int
}

func startFakeDNS(t *testing.T, answer func(name string, typ dnsmessage.Type, n int) []netip.Addr) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeDNS{conn: conn, answer: answer, seen: map[string]int{}}
	t.Cleanup(func() { _ = conn.Close() })
	go f.serve()
	return f
}

// resolver sends every query to the fake server, whatever resolv.conf says.
func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", f.conn.LocalAddr().String())
	}}
}

func (f *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := f.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := f.reply(buf[:n]); ok {
			_, _ = f.conn.WriteTo(resp, from)
		}
	}
}

func (f *fakeDNS) reply(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeAAAA {
		name := strings.TrimSuffix(q.Name.String(), ".")
		key := name + "/" + q.Type.String()
		f.mu.Lock()
		n := f.seen[key]
		f.seen[key]++
		f.mu.Unlock()
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
		for _, a := range f.answer(name, q.Type, n) {
			switch {
			case a.Is4() && q.Type == dnsmessage.TypeA:
				_ = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			case a.Is6() && q.Type == dnsmessage.TypeAAAA:
				_ = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
