package servertest

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBuffer is how many bytes one direction of an in-memory connection
// holds before a write waits for the reader, as a socket's buffer does:
// enough for clients that pipeline (net.Pipe holds none, and deadlocks
// them), bounded so that a client that never reads does not grow the
// test's memory without end.
const pipeBuffer = 1 << 20

// stream is one direction of an in-memory connection.
type stream struct {
	mu     sync.Mutex
	buf    []byte
	closed bool          // the writer closed: the reader gets io.EOF once buf is read
	gone   bool          // the reader closed: writes fail
	change chan struct{} // closed and replaced whenever any of the above changes
}

func newStream() *stream { return &stream{change: make(chan struct{})} }

// changedLocked wakes whoever waits on s. s.mu must be held.
func (s *stream) changedLocked() {
	close(s.change)
	s.change = make(chan struct{})
}

// wait waits for a change of s or for the deadline; it reports false on
// the deadline.
func wait(change <-chan struct{}, deadline time.Time) bool {
	if deadline.IsZero() {
		<-change
		return true
	}
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-change:
		return true
	case <-t.C:
		return false
	}
}

func (s *stream) read(p []byte, deadline func() time.Time) (int, error) {
	for {
		s.mu.Lock()
		switch {
		case s.gone:
			s.mu.Unlock()
			return 0, net.ErrClosed
		case len(s.buf) > 0:
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			if len(s.buf) == 0 {
				s.buf = nil // let a large buffer go
			}
			s.changedLocked()
			s.mu.Unlock()
			return n, nil
		case s.closed:
			s.mu.Unlock()
			return 0, io.EOF
		}
		change := s.change
		s.mu.Unlock()
		if !wait(change, deadline()) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (s *stream) write(p []byte, deadline func() time.Time) (int, error) {
	written := 0
	for written < len(p) {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return written, net.ErrClosed
		case s.gone:
			s.mu.Unlock()
			return written, io.ErrClosedPipe
		case len(s.buf) < pipeBuffer:
			n := min(len(p)-written, pipeBuffer-len(s.buf))
			s.buf = append(s.buf, p[written:written+n]...)
			written += n
			s.changedLocked()
			s.mu.Unlock()
			continue
		}
		change := s.change
		s.mu.Unlock()
		if !wait(change, deadline()) {
			return written, os.ErrDeadlineExceeded
		}
	}
	return written, nil
}

// memConn is one end of an in-memory connection.
type memConn struct {
	in, out       *stream
	local, remote net.Addr

	mu                      sync.Mutex
	readDeadline, writeDead time.Time
	closeOnce               sync.Once
}

// memPipe returns the two ends of an in-memory connection.
func memPipe(addr net.Addr) (client, server *memConn) {
	up, down := newStream(), newStream()
	client = &memConn{in: down, out: up, local: memAddr("client"), remote: addr}
	server = &memConn{in: up, out: down, local: addr, remote: memAddr("client")}
	return client, server
}

func (c *memConn) Read(p []byte) (int, error) {
	return c.in.read(p, func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.readDeadline })
}

func (c *memConn) Write(p []byte) (int, error) {
	return c.out.write(p, func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.writeDead })
}

// Close ends both directions: the peer reads what was written, then
// io.EOF, and its writes fail.
func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		c.out.mu.Lock()
		c.out.closed = true
		c.out.changedLocked()
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.gone = true
		c.in.changedLocked()
		c.in.mu.Unlock()
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.setDeadlines(t, true, true)
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.setDeadlines(t, true, false)
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.setDeadlines(t, false, true)
	return nil
}

// setDeadlines sets them and wakes a read or write under way, which then
// looks at its new deadline.
func (c *memConn) setDeadlines(t time.Time, read, write bool) {
	c.mu.Lock()
	if read {
		c.readDeadline = t
	}
	if write {
		c.writeDead = t
	}
	c.mu.Unlock()
	for _, s := range []*stream{c.in, c.out} {
		s.mu.Lock()
		s.changedLocked()
		s.mu.Unlock()
	}
}

type memAddr string

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return string(a) }

// memListener hands the server ends of in-memory connections to Serve.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr("servertest") }
