package localproc

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1. The port is
// released before returning, so another process may take it before the
// caller's child binds it: callers retry with another port when the child
// reports "address already in use".
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
