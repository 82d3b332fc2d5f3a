package server

import (
	"context"
	"crypto/tls"
	"fmt"
)

// fallbackReader reads a connection the poller cannot watch (a TLS
// connection, whose handshake it makes first, any connection where there is no poller or Server.NoPoller
// is set) on a goroutine of its own, and posts each read to the loop as an
// event, as an in-memory connection's writes are; it reads again only
// once the loop has taken the bytes, so a client that sends faster than
// the loop runs its commands waits in its own socket, as it would with
// Redis.
type fallbackReader struct {
	c     *conn
	taken chan struct{} // cap 1: the loop took what was posted
}

func startFallbackReader(c *conn) *fallbackReader {
	r := &fallbackReader{c: c, taken: make(chan struct{}, 1)}
	c.srv.wg.Go(r.run)
	return r
}

func (r *fallbackReader) run() {
	if tc, ok := r.c.nc.(*tls.Conn); ok {
		if err := r.handshake(tc); err != nil {
			r.c.srv.loop.post(event{kind: evInput, c: r.c, err: err})
			return
		}
	}
	pool := &r.c.srv.chunks
	for {
		var buf *[outChunk]byte
		var n int
		var err error
		if r.c.raw != nil {
			buf, n, err = lazyRead(r.c.raw, pool) // an idle client holds no buffer
		} else {
			buf = pool.Get().(*[outChunk]byte)
			n, err = r.c.nc.Read(buf[:])
		}
		if n == 0 && err == nil {
			pool.Put(buf)
			continue
		}
		var data []byte
		if n > 0 {
			data = buf[:n]
		}
		if !r.c.srv.loop.post(event{kind: evInput, c: r.c, data: data, err: err}) || err != nil {
			return // what the loop has not taken is left to the collector
		}
		select {
		case <-r.taken:
			pool.Put(buf)
		case <-r.c.done:
			return
		}
	}
}

// handshake makes a TLS client's handshake within the Server's
// TLSHandshakeTimeout: a client that never finishes it, or that speaks
// plain text, is closed with nothing served.
func (r *fallbackReader) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(r.c.ctx, r.c.srv.tlsHandshakeTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	return nil
}

// read is the loop's: the input comes as events, never from here.
func (r *fallbackReader) read([]byte) (int, error) { return 0, nil }

// took lets the reader read again: the loop copied what it posted.
func (r *fallbackReader) took(n int) {
	if n > 0 {
		select {
		case r.taken <- struct{}{}:
		default:
		}
	}
}
