package server

import "sync"

// fallbackReader reads a connection the poller cannot watch (an
// in-memory or TLS connection, any connection where there is no poller
// or Server.NoPoller is set) on a goroutine of its own, and hands each
// read to the loop, which runs the commands; it reads again only once the
// loop has taken everything, so a client that sends faster than the loop
// runs its commands waits in its own socket, as it would with Redis.
type fallbackReader struct {
	c     *conn
	taken chan struct{} // cap 1: the loop took all that was handed over

	mu sync.Mutex
	// guards the fields below
	buf []byte // handed over and not yet taken
	err error  // how the last read ended, taken after buf
}

func startFallbackReader(c *conn) *fallbackReader {
	r := &fallbackReader{c: c, taken: make(chan struct{}, 1)}
	c.srv.wg.Go(r.run)
	return r
}

func (r *fallbackReader) run() {
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
		r.mu.Lock()
		r.buf, r.err = nil, err
		if buf != nil {
			r.buf = buf[:n]
		}
		r.mu.Unlock()
		if !r.c.srv.loop.post(event{kind: evInput, c: r.c}) || err != nil {
			return // the loop has taken what it will take; the chunk is left to the collector
		}
		select {
		case <-r.taken:
			pool.Put(buf)
		case <-r.c.done:
			return
		}
	}
}

func (r *fallbackReader) read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	if len(r.buf) > 0 {
		return n, nil
	}
	if r.err != nil {
		return n, r.err
	}
	if n > 0 {
		select {
		case r.taken <- struct{}{}:
		default:
		}
	}
	return n, nil
}
