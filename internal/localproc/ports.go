package localproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FreePort answers a TCP port free on 127.0.0.1, for a child process to
// bind later. It is taken from below the kernel's ephemeral range: a port
// from that range (what net.Listen(":0") and outgoing connections take),
// released, is soon handed to another listener or connection of a busy
// machine, while a random port below it is taken only by another such
// pick (this process never answers a port twice; another process picking
// the same one is a 1 in 16,384 chance). The port is released before
// returning, so callers still retry with another when the child reports
// "address already in use". With no room below the range it answers a
// kernel-chosen port.
func FreePort() (int, error) {
	hi := ephemeralLow()
	lo := max(hi-16384, 10000)
	freePorts.Lock()
	defer freePorts.Unlock()
	if freePorts.given == nil {
		freePorts.given = map[int]bool{}
	}
	for range 100 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo)
		if freePorts.given[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // someone listens there
		}
		_ = l.Close()
		freePorts.given[port] = true
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var freePorts struct {
	sync.Mutex
	given map[int]bool
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

// PortAccepts reports whether something accepts TCP connections on
// 127.0.0.1:port.
func PortAccepts(port int, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), timeout)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
