//go:build unix

package redistest

import (
	"net"
	"syscall"
	"testing"
)

// DialSmallReadBuffer dials addr over TCP with a receive buffer of size
// bytes, for a client that does not read what it is sent. The size is
// set before the handshake: set after it (as TCPConn.SetReadBuffer
// does), the buffer is smaller than the window the handshake announced,
// the kernel drops the segments that overflow it, and with them the
// acknowledgements that would reopen the window the other way, so a
// client that writes while it never reads stalls for good, whatever the
// server does. The connection is closed when the test ends.
func DialSmallReadBuffer(t testing.TB, addr string, size int) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc.(*net.TCPConn)
}
