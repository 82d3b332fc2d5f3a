package server

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// loopSocket is a client's socket that the loop accepted itself, and
// alone reads, writes, watches and closes, with plain system calls on its
// descriptor, as Redis's loop does. A socket of the net package goes
// through the runtime's poller: a lock, a check of its deadlines and the
// runtime's own epoll set on every read and write, a few percent of a
// command here (docs/performance.md), and the loop needs none of them.
//
// Another goroutine may kill the client (DropClients, an output limit
// reached by a Go publisher, Shutdown) and so call Close while the loop
// reads the socket. Close therefore shuts the socket down (the peer sees
// it closed at once; reads and writes on it fail) and keeps the
// descriptor, whose number the kernel could otherwise give to the next
// socket opened while the loop still uses it. The descriptor is closed
// once Close was called and the loop has let go of it (release), by
// whichever comes second.
//
// Its Read and Write never wait (the socket is non-blocking, and the loop
// must not wait), and its deadlines are not kept, since nothing waits.
type loopSocket struct {
	fd            int
	local, remote net.Addr

	mu       sync.Mutex
	closed   bool // Close was called
	released bool // the loop no longer uses the descriptor
}

// errWouldBlock is a loopSocket's Read or Write that found nothing to
// read or no room.
var errWouldBlock = errors.New("server: socket not ready")

// acceptOne accepts a connection waiting on the listening socket raw,
// without waiting for one (errNoPending when none does).
func acceptOne(raw syscall.RawConn) (*loopSocket, error) {
	var nfd int
	var peer syscall.Sockaddr
	var aerr error
	// A listener's RawConn has Control only; it holds the descriptor all
	// the same.
	err := raw.Control(func(fd uintptr) {
		for {
			nfd, peer, aerr = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if aerr != syscall.EINTR && aerr != syscall.ECONNABORTED {
				return
			}
		}
	})
	switch {
	case err != nil:
		return nil, err // the listener was closed
	case aerr == syscall.EAGAIN:
		return nil, errNoPending
	case aerr != nil:
		return nil, os.NewSyscallError("accept4", aerr)
	}
	local, _ := syscall.Getsockname(nfd)
	s := &loopSocket{fd: nfd, local: sockaddrToAddr(local), remote: sockaddrToAddr(peer)}
	return s, nil
}

// setUpTCP is setUpTCP's for a socket of the loop's, which the net package
// has not set up at all.
func (s *loopSocket) setUpTCP(keepAliveSecs int) {
	if _, tcp := s.remote.(*net.TCPAddr); !tcp {
		return
	}
	_ = syscall.SetsockoptInt(s.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if keepAliveSecs <= 0 {
		return
	}
	_ = syscall.SetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
	_ = syscall.SetsockoptInt(s.fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, keepAliveSecs)
	_ = syscall.SetsockoptInt(s.fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, max(keepAliveSecs/3, 1))
	_ = syscall.SetsockoptInt(s.fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 3)
}

// sockaddrToAddr gives an address as the net package's sockets do.
func sockaddrToAddr(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			} else {
				a.Zone = strconv.Itoa(int(sa.ZoneId))
			}
		}
		return a
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return &net.UnixAddr{Net: "unix"} // an unnamed socket
}

// Read reads what has arrived, without waiting: errWouldBlock if nothing
// has.
func (s *loopSocket) Read(p []byte) (int, error) {
	n, err := sysRead(s.fd, p)
	return s.result("read", n, err, len(p) > 0)
}

// Write writes what the socket takes now, without waiting: errWouldBlock
// if it takes nothing.
func (s *loopSocket) Write(p []byte) (int, error) {
	n, err := sysWrite(s.fd, p)
	return s.result("write", n, err, false)
}

func (s *loopSocket) result(op string, n int, err error, eofOnZero bool) (int, error) {
	switch {
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, &net.OpError{Op: op, Net: s.remote.Network(), Source: s.local, Addr: s.remote, Err: os.NewSyscallError(op, err)}
	case n == 0 && eofOnZero:
		return 0, io.EOF
	}
	return n, nil
}

// Close shuts the socket down at once; its descriptor is closed once the
// loop has let go of it too.
func (s *loopSocket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	s.closed = true
	if s.released {
		return syscall.Close(s.fd)
	}
	err := syscall.Shutdown(s.fd, syscall.SHUT_RDWR)
	if err == syscall.ENOTCONN { // the peer went first: nothing to shut
		err = nil
	}
	return err
}

// release is the loop's word that it no longer uses the descriptor: it
// is closed now if Close was called, or else by Close. The loop calls it
// once it has ended the client, or as it stops.
func (s *loopSocket) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return
	}
	s.released = true
	if s.closed {
		_ = syscall.Close(s.fd)
	}
}

func (s *loopSocket) LocalAddr() net.Addr                { return s.local }
func (s *loopSocket) RemoteAddr() net.Addr               { return s.remote }
func (s *loopSocket) SetDeadline(t time.Time) error      { return nil }
func (s *loopSocket) SetReadDeadline(t time.Time) error  { return nil }
func (s *loopSocket) SetWriteDeadline(t time.Time) error { return nil }

// SyscallConn gives the loop the descriptor: Control, Read and Write run
// their function on it once, at once, and never wait. Only the loop uses
// it, and not after release.
func (s *loopSocket) SyscallConn() (syscall.RawConn, error) { return loopRaw{s.fd}, nil }

type loopRaw struct{ fd int }

func (r loopRaw) Control(f func(fd uintptr)) error { f(uintptr(r.fd)); return nil }
func (r loopRaw) Read(f func(fd uintptr) bool) error {
	f(uintptr(r.fd))
	return nil
}
func (r loopRaw) Write(f func(fd uintptr) bool) error {
	f(uintptr(r.fd))
	return nil
}
