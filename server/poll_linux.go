package server

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// poller is the loop's readiness source on Linux: an epoll instance,
// level-triggered as Redis's ae_epoll.c uses it, so that a client read
// only in part is reported again next turn, and an eventfd that wakes it
// when another goroutine hands the loop something. Only the loop
// goroutine calls its methods, but wake.
//
// Sockets are read and registered through their syscall.RawConn, never
// by a descriptor number kept aside: a socket closed by another goroutine
// (DropClients, an output limit reached by a Go publisher) may see its
// number reused by the next socket opened at once. For a socket of the
// net package the runtime's reference on the descriptor keeps a read or
// an epoll_ctl from reaching the wrong client; a socket the loop accepted
// (loopSocket) is only shut down by such a close, and its descriptor
// closed by the loop itself once done with it.
type poller struct {
	epfd   int
	wakefd int
	events []syscall.EpollEvent
	ready  []readyEvent
}

// wakeToken marks the eventfd's events; connections' tokens are > 0.
const wakeToken = 0

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	r, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("eventfd2", errno)
	}
	p := &poller{epfd: epfd, wakefd: int(r), events: make([]syscall.EpollEvent, 128)}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wakefd, &ev); err != nil {
		p.close()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return p, nil
}

// ctl runs epoll_ctl on raw's descriptor, while the runtime holds it.
func (p *poller) ctl(raw syscall.RawConn, op int, events uint32, token int32) error {
	var err error
	cerr := raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: events, Fd: token}
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// What a socket is watched for: input (a parked client's socket for its
// hang-up only, as its input waits in it), and room to write while its
// output waits.
const (
	pollIn     = syscall.EPOLLIN | syscall.EPOLLRDHUP
	pollHangUp = syscall.EPOLLRDHUP
	pollOut    = syscall.EPOLLOUT
)

// pollFresh is what a socket accepted this turn counts as: readable.
const pollFresh = syscall.EPOLLIN

// readable reports whether events call for a read: input, the peer's
// hang-up, or a failure (the read then says how).
func readable(events uint32) bool {
	return events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
}

// hungUp reports whether events say the peer hung up, or the socket
// failed.
func hungUp(events uint32) bool {
	return events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
}

// writable reports whether events say the socket takes output, or failed
// (a write then says how).
func writable(events uint32) bool {
	return events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
}

// add watches a socket for events.
func (p *poller) add(raw syscall.RawConn, token int32, events uint32) error {
	return p.ctl(raw, syscall.EPOLL_CTL_ADD, events, token)
}

// modify changes what a watched socket is watched for.
func (p *poller) modify(raw syscall.RawConn, token int32, events uint32) error {
	return p.ctl(raw, syscall.EPOLL_CTL_MOD, events, token)
}

func (p *poller) remove(raw syscall.RawConn) error {
	return p.ctl(raw, syscall.EPOLL_CTL_DEL, 0, 0)
}

// readyEvent is a socket the poller reported, and what it reported.
type readyEvent struct {
	token  int32
	events uint32
}

// wait waits up to timeout (negative: with no end) for sockets to be
// ready, or for a wake, and returns the ready sockets in the order the
// kernel reported them. The slice is reused by the next call.
func (p *poller) wait(timeout time.Duration) []readyEvent {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	n, err := syscall.EpollWait(p.epfd, p.events, ms)
	if err != nil { // EINTR: the loop comes back
		return nil
	}
	p.ready = p.ready[:0]
	for _, ev := range p.events[:n] {
		if ev.Fd == wakeToken {
			var buf [8]byte
			_, _ = syscall.Read(p.wakefd, buf[:])
			continue
		}
		p.ready = append(p.ready, readyEvent{ev.Fd, ev.Events})
	}
	if n == len(p.events) && n < 1<<16 {
		p.events = make([]syscall.EpollEvent, 2*n)
	}
	return p.ready
}

// wake makes a wait return; safe for concurrent use.
func (p *poller) wake() {
	one := uint64(1)
	_, _ = syscall.Write(p.wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
}

func (p *poller) close() {
	syscall.Close(p.wakefd)
	syscall.Close(p.epfd)
}

// errNoPending is acceptOne's answer when no connection waits.
var errNoPending = errors.New("server: no connection waiting")
