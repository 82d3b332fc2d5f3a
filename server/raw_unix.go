//go:build unix

package server

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// rawConn returns nc's raw connection, for writes that never block and
// reads that hold no buffer while they wait.
func rawConn(nc any) syscall.RawConn {
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

// fdSource reads a socket the poller watches, on the loop: one read
// that never waits (the runtime keeps sockets non-blocking), through the
// runtime's reference on the descriptor (see poller).
type fdSource struct{ raw syscall.RawConn }

func (s fdSource) read(p []byte) (n int, err error) {
	cerr := s.raw.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			if err != syscall.EINTR {
				break
			}
		}
		switch {
		case err == syscall.EAGAIN:
			n, err = 0, nil
		case err != nil:
			n, err = 0, os.NewSyscallError("read", err)
		case n == 0 && len(p) > 0:
			err = io.EOF
		}
		return true // never wait
	})
	if cerr != nil {
		return 0, cerr // closed
	}
	return n, err
}

// took is for sources that post their input.
func (fdSource) took(int) {}

// lazyRead reads a socket that no poller of ours watches, for a fallback
// reader: it waits until input has arrived holding no buffer, then reads
// once into a chunk from pool, so that an idle client costs none.
func lazyRead(raw syscall.RawConn, pool *sync.Pool) (*[outChunk]byte, int, error) {
	var buf *[outChunk]byte
	var n int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		if buf == nil {
			buf = pool.Get().(*[outChunk]byte)
		}
		for {
			n, rerr = syscall.Read(int(fd), buf[:])
			if rerr != syscall.EINTR {
				break
			}
		}
		switch {
		case rerr == syscall.EAGAIN:
			pool.Put(buf)
			buf = nil
			return false // wait until readable
		case rerr != nil:
			n, rerr = 0, os.NewSyscallError("read", rerr)
		case n == 0:
			rerr = io.EOF
		}
		return true
	})
	if err != nil {
		if buf != nil {
			pool.Put(buf)
		}
		return nil, 0, err
	}
	return buf, n, rerr
}
