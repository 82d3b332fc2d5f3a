//go:build unix

package server

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// rawConn returns nc's raw connection, for writes that never block.
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
