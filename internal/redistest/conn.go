package redistest

import (
	"net"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// Conn is a minimal RESP client connection for tests. It is not safe for
// concurrent use.
type Conn struct {
	t  testing.TB
	nc net.Conn
	r  *resp.Reader
}

// Dial connects to addr and closes the connection when the test ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, r: resp.NewReader(nc)}
}

// Send writes one command without reading its reply.
func (c *Conn) Send(args ...string) {
	c.t.Helper()
	c.SendRaw(resp.AppendCommand(nil, args...))
}

// SendRaw writes bytes as they are.
func (c *Conn) SendRaw(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Read reads one value, failing the test after 10 seconds.
func (c *Conn) Read() resp.Value {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	v, err := c.r.ReadValue()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return v
}

// Do sends one command and reads one reply.
func (c *Conn) Do(args ...string) resp.Value {
	c.t.Helper()
	c.Send(args...)
	return c.Read()
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// ReadErr reads one value and returns the error instead of failing the
// test, for tests that expect the connection to end.
func (c *Conn) ReadErr() (resp.Value, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c.r.ReadValue()
}
