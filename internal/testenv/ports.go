package testenv

import (
	"net"
	"strconv"
	"testing"

	"github.com/streamspace/enterprise/internal/localproc"
)

// FreeAddr is a 127.0.0.1 address whose TCP port is free, for a server a
// test starts later from configuration (not from a listener it could be
// handed): localproc.FreePort's port, from below the ephemeral range, so a
// listener or connection opened meanwhile by the busy test run cannot take
// it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := localproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
