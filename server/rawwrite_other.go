//go:build !unix

package server

import (
	"net"
	"syscall"
)

// rawConn returns nil: without unix's non-blocking write, every write is
// the writer goroutine's.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (c *conn) writeOnceLocked() error { return nil }
