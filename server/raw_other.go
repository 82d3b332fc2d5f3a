//go:build !unix

package server

import (
	"net"
	"syscall"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// rawConn returns nil: without unix's non-blocking write, every write is
// the writer goroutine's, and reads go through net.Conn.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (c *conn) writeOnceLocked() error { return nil }

type rawReader struct{}

func newRawReader(syscall.RawConn) *rawReader { return nil }

func (r *rawReader) readInto(in *resp.Input) (int, error) { panic("unreachable: no raw connection") }
