package devstack

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// freePort asks the kernel for a free TCP port on 127.0.0.1. The port is
// released before returning, so a race with another process is possible;
// callers that picked the port themselves retry on a bind failure.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portAccepts reports whether something accepts TCP connections on
// 127.0.0.1:port.
func portAccepts(port int, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), timeout)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
