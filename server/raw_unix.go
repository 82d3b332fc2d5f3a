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
	if c.writeFD == nil { // made once: a closure made per call would be an allocation per write
		c.writeFD = c.writeToFD
	}
	c.wrote, c.writeErr = 0, nil
	err := c.raw.Write(c.writeFD)
	c.wroteLocked(c.wrote)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil // the writer's deadline: what is left is the writer's
	}
	if err != nil {
		return err
	}
	return c.writeErr
}

// writeToFD is writeOnceLocked's function for RawConn.Write: it writes
// the buffers in turn until one is taken in part, and never waits.
func (c *conn) writeToFD(fd uintptr) bool {
	for _, b := range c.iovLocked() {
		k, err := sysWrite(int(fd), b)
		if k > 0 {
			c.wrote += k
		}
		if err != nil {
			if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR) {
				c.writeErr = err
			}
			break
		}
		if k < len(b) {
			break
		}
	}
	return true
}

// fdSource reads a socket the poller watches, on the loop: one read
// that never waits (the sockets are non-blocking), through the socket's
// RawConn (see poller). Its fields carry the read through RawConn.Read's
// function, made once.
type fdSource struct {
	raw    syscall.RawConn
	readFD func(fd uintptr) bool
	p      []byte
	n      int
	err    error
}

func newFDSource(raw syscall.RawConn) *fdSource {
	s := &fdSource{raw: raw}
	s.readFD = s.readFrom
	return s
}

func (s *fdSource) read(p []byte) (int, error) {
	s.p, s.n, s.err = p, 0, nil
	cerr := s.raw.Read(s.readFD)
	s.p = nil
	if cerr != nil {
		return 0, cerr // closed
	}
	return s.n, s.err
}

func (s *fdSource) readFrom(fd uintptr) bool {
	var n int
	var err error
	for {
		n, err = sysRead(int(fd), s.p)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err == syscall.EAGAIN:
		n, err = 0, nil
	case err != nil:
		n, err = 0, os.NewSyscallError("read", err)
	case n == 0 && len(s.p) > 0:
		err = io.EOF
	}
	s.n, s.err = n, err
	return true // never wait
}

// took is for sources that post their input.
func (*fdSource) took(int) {}

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
