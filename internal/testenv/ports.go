package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var freeAddrs struct {
	sync.Mutex
	given map[int]bool
}

// FreeAddr is a 127.0.0.1 address whose TCP port is free, for a server a
// test starts later from configuration (not from a listener it could be
// handed). The port is from below the kernel's ephemeral range, where
// net.Listen(":0"), localproc.FreePort and outgoing connections take theirs:
// a port from that range, released, may be handed to another listener of a
// busy test run before the server binds it (bind(0) draws from a few
// thousand ports). This process never hands out a port twice; another
// process picking the same one at the same moment is a 1 in 10,000 chance
// per concurrent pick.
func FreeAddr(t testing.TB) string {
	t.Helper()
	hi := ephemeralLow()
	lo := max(hi-16384, 10000)
	freeAddrs.Lock()
	defer freeAddrs.Unlock()
	if freeAddrs.given == nil {
		freeAddrs.given = map[int]bool{}
	}
	for range 100 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo)
		if freeAddrs.given[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // someone listens there
		}
		_ = ln.Close()
		freeAddrs.given[port] = true
		return ln.Addr().String()
	}
	// No room below the ephemeral range: a kernel-chosen port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
}
