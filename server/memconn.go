package server

import (
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// Pipe returns the client end of an in-memory connection to the Server,
// for tests that need no TCP port (servertest's Dial).
//
// What a client writes on such a connection is handed to the loop by the
// Write call itself, so commands written on in-memory connections run in
// the order they were written, across connections: a command whose Write
// returned runs before any command written after it on any other. That is
// stronger than Redis over TCP, where the order is the order the kernel
// received the bytes. A Server with only in-memory connections starts no
// goroutine but its loop and each connection's writer, all waiting on
// channels, so it can run inside a testing/synctest bubble, where
// synctest.Wait after a client's Write returns once the Server has run
// the command and written its reply.
//
// Each direction holds pipeBuffer bytes before a write waits for the
// other side, as a socket's buffer does; reads and writes keep their
// deadlines. Pipe fails with ErrServerClosed once the Server is closed,
// or with the error Serve would return for its users, and counts against
// MaxClients as any connection.
func (s *Server) Pipe() (net.Conn, error) {
	s.mu.Lock()
	s.init()
	err := s.initErr
	s.mu.Unlock()
	if err != nil {
		_ = s.Close() // it can serve nothing: its loop ends
		return nil, err
	}
	down := newStream()
	client := &memClient{srv: s, in: down, change: make(chan struct{})}
	c := s.accept(&memServerEnd{out: down, client: client})
	if c == nil {
		return nil, ErrServerClosed
	}
	client.mu.Lock()
	client.conn = c
	client.mu.Unlock()
	return client, nil
}

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

// memClient is the client's end of an in-memory connection. Its writes
// go to the loop as events, in the order they are made; the server's
// output comes back through in.
type memClient struct {
	srv *Server
	in  *stream // the server's output

	mu sync.Mutex
	// guards the fields below
	conn          *conn
	pending       int // bytes handed to the loop and not yet taken
	closed        bool
	readDeadline  time.Time
	writeDeadline time.Time
	change        chan struct{} // closed and replaced when pending, closed or a deadline changes
}

func (m *memClient) changedLocked() {
	close(m.change)
	m.change = make(chan struct{})
}

func (m *memClient) Read(p []byte) (int, error) {
	return m.in.read(p, func() time.Time { m.mu.Lock(); defer m.mu.Unlock(); return m.readDeadline })
}

// Write hands p to the loop, once fewer than pipeBuffer bytes wait there.
func (m *memClient) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return written, net.ErrClosed
		}
		if m.pending < pipeBuffer {
			n := min(len(p)-written, pipeBuffer-m.pending)
			data := slices.Clone(p[written : written+n])
			// Posted under m.mu, so that the loop's events keep the
			// order of this connection's writes too.
			if m.conn == nil || !m.srv.loop.post(event{kind: evInput, c: m.conn, data: data}) {
				m.mu.Unlock()
				return written, net.ErrClosed
			}
			m.pending += n
			written += n
			m.mu.Unlock()
			continue
		}
		change, deadline := m.change, m.writeDeadline
		m.mu.Unlock()
		if !wait(change, deadline) {
			return written, os.ErrDeadlineExceeded
		}
	}
	return written, nil
}

// took gives back n bytes of room to the writer: the loop took them.
func (m *memClient) took(n int) {
	m.mu.Lock()
	m.pending -= n
	m.changedLocked()
	m.mu.Unlock()
}

// Close ends both directions: the server reads what was written, then
// the end of the input, and its writes fail.
func (m *memClient) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.changedLocked()
	if m.conn != nil {
		m.srv.loop.post(event{kind: evInput, c: m.conn, err: io.EOF})
	}
	m.in.mu.Lock()
	m.in.gone = true
	m.in.changedLocked()
	m.in.mu.Unlock()
	return nil
}

// read is the loop's: the input comes as events, never from here.
func (m *memClient) read([]byte) (int, error) { return 0, nil }

func (m *memClient) LocalAddr() net.Addr  { return memAddr("client") }
func (m *memClient) RemoteAddr() net.Addr { return memAddr("server") }

func (m *memClient) SetDeadline(t time.Time) error {
	m.setDeadlines(t, true, true)
	return nil
}

func (m *memClient) SetReadDeadline(t time.Time) error {
	m.setDeadlines(t, true, false)
	return nil
}

func (m *memClient) SetWriteDeadline(t time.Time) error {
	m.setDeadlines(t, false, true)
	return nil
}

// setDeadlines sets them and wakes a read or write under way, which then
// looks at its new deadline.
func (m *memClient) setDeadlines(t time.Time, read, write bool) {
	m.mu.Lock()
	if read {
		m.readDeadline = t
	}
	if write {
		m.writeDeadline = t
	}
	m.changedLocked()
	m.mu.Unlock()
	m.in.mu.Lock()
	m.in.changedLocked()
	m.in.mu.Unlock()
}

// memServerEnd is the server's end of an in-memory connection: the
// connection's writer writes to out; nothing reads it, since the input
// reaches the loop as events.
type memServerEnd struct {
	out    *stream
	client *memClient

	mu            sync.Mutex
	writeDeadline time.Time
}

func (e *memServerEnd) Read([]byte) (int, error) { return 0, io.EOF }

func (e *memServerEnd) Write(p []byte) (int, error) {
	return e.out.write(p, func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.writeDeadline })
}

// Close ends both directions: the client reads what was written, then
// io.EOF, and its writes fail.
func (e *memServerEnd) Close() error {
	e.out.mu.Lock()
	if !e.out.closed {
		e.out.closed = true
		e.out.changedLocked()
	}
	e.out.mu.Unlock()
	m := e.client
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		m.changedLocked()
	}
	m.mu.Unlock()
	return nil
}

func (e *memServerEnd) LocalAddr() net.Addr  { return memAddr("server") }
func (e *memServerEnd) RemoteAddr() net.Addr { return memAddr("client") }

func (e *memServerEnd) SetDeadline(t time.Time) error { return e.SetWriteDeadline(t) }

func (e *memServerEnd) SetReadDeadline(time.Time) error { return nil }

func (e *memServerEnd) SetWriteDeadline(t time.Time) error {
	e.mu.Lock()
	e.writeDeadline = t
	e.mu.Unlock()
	e.out.mu.Lock()
	e.out.changedLocked()
	e.out.mu.Unlock()
	return nil
}

type memAddr string

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return string(a) }
