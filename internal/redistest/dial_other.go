//go:build !unix

package redistest

import (
	"net"
	"testing"
)

// DialSmallReadBuffer dials addr over TCP with a receive buffer of size
// bytes, for a client that does not read what it is sent. Here the size
// is set once connected; see the unix version for why that can stall a
// client that also writes.
func DialSmallReadBuffer(t testing.TB, addr string, size int) *net.TCPConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	tc := nc.(*net.TCPConn)
	if err := tc.SetReadBuffer(size); err != nil {
		t.Fatalf("set the read buffer: %v", err)
	}
	return tc
}
