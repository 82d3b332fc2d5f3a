//go:build !unix

package server

import (
	"net"
	"syscall"
)

// rawConn returns nil: without unix's non-blocking write, every write is
// the writer goroutine's, and reads go through net.Conn.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (c *conn) writeOnceLocked() error { return nil }

// fdSource is never used without a poller.
type fdSource struct{ raw syscall.RawConn }

func (fdSource) read([]byte) (int, error) { panic("unreachable: no poller") }
func (fdSource) hungUp() bool             { panic("unreachable: no poller") }
