//go:build unix

package server

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// rawConn returns nc's raw connection, for writes that never block and
// reads that hold no buffer while they wait.
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeOnceLocked writes as much of writing as the socket takes now,
// without waiting for it to take more (the runtime keeps sockets in
// non-blocking mode; returning true from the function says not to wait).
// c.writeMu must be held.
func (c *conn) writeOnceLocked() error {
	if len(c.writing) == 0 {
		return nil
	}
	n := 0
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for _, b := range c.iovLocked() {
			k, err := syscall.Write(int(fd), b)
			if k > 0 {
				n += k
			}
			if err != nil {
				if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR) {
					werr = err
				}
				break
			}
			if k < len(b) {
				break
			}
		}
		return true
	})
	c.wroteLocked(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil // the writer's deadline: what is left is the writer's
	}
	if err != nil {
		return err
	}
	return werr
}

// rawReader reads from a socket into a RequestReader's Input only once
// input has arrived: the runtime calls read again each time the socket
// becomes readable, and until then the Input holds no buffer, so an idle
// client costs none. One is made per connection, so a read allocates
// nothing.
type rawReader struct {
	raw syscall.RawConn
	in  *resp.Input
	n   int
	err error
	fn  func(fd uintptr) bool
}

func newRawReader(raw syscall.RawConn) *rawReader {
	r := &rawReader{raw: raw}
	r.fn = r.read
	return r
}

func (r *rawReader) read(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), r.in.Take())
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN && r.in.NoWait():
			r.n, r.err = 0, nil
			return true
		case err == syscall.EAGAIN:
			r.in.Release()
			return false // wait until readable, then try again
		case err != nil:
			r.n, r.err = 0, os.NewSyscallError("read", err)
		case n == 0:
			r.n, r.err = 0, io.EOF
		default:
			r.n, r.err = n, nil
		}
		return true
	}
}

// readInto reads once into in, waiting for input without holding a
// buffer.
func (r *rawReader) readInto(in *resp.Input) (int, error) {
	r.in, r.n, r.err = in, 0, nil
	err := r.raw.Read(r.fn)
	r.in = nil
	if err != nil {
		return 0, err // a deadline, or the connection closed
	}
	return r.n, r.err
}
