//go:build !unix

package server

import (
	"sync"
	"syscall"
)

// rawConn returns nil: without unix's non-blocking write, every write is
// the writer goroutine's, and reads go through net.Conn.
func rawConn(any) syscall.RawConn { return nil }

func (c *conn) writeOnceLocked() error { return nil }

// fdSource is never used without a poller.
type fdSource struct{}

func newFDSource(syscall.RawConn) *fdSource { return &fdSource{} }

func (*fdSource) read([]byte) (int, error) { panic("unreachable: no poller") }
func (*fdSource) took(int)                 {}

// lazyRead is never called: without unix there is no raw connection.
func lazyRead(syscall.RawConn, *sync.Pool) (*[outChunk]byte, int, error) {
	panic("unreachable: no raw connection")
}
