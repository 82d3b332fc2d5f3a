package server

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// conn is one client connection. Its reader goroutine runs commands one at
// a time; its writer goroutine sends what is queued in out. Messages are
// queued by publishing goroutines through sub's function, under mu, the
// same lock replies are queued under, so a client sees replies and
// messages in the order Redis would send them.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   int64
	rd   *resp.RequestReader
	born time.Time

	// Used only by the reader goroutine.
	multi     *multiState
	replyMode replyMode
	reply     resp.Writer // the reply being built

	mu sync.Mutex
	// guards the fields below
	name      string
	lib       [2]string // CLIENT SETINFO lib-name, lib-ver
	db        int
	lastCmd   string
	proto     int // 2 or 3
	authed    bool
	out       []byte // queued output
	softSince time.Time
	closing   bool // no more output is accepted
	killed    bool
	sub       *pubsub.Subscription
	channels  map[string]struct{} // what this client holds, as Redis's client struct
	patterns  map[string]struct{}
	shard     map[string]struct{}

	wake chan struct{} // cap 1: out has data, or closing changed
	done chan struct{} // closed by kill

	// writeMu is held by whoever writes to nc: the writer goroutine, or
	// the reader flushing its own replies. The holder swaps out and spare,
	// so output leaves in the order it was queued.
	writeMu sync.Mutex
	spare   []byte
}

type replyMode uint8

const (
	replyOn replyMode = iota
	replyOff
	replySkip
)

type multiState struct {
	queued [][]string
	failed bool // a command was refused while queuing: EXEC aborts
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:      s,
		nc:       nc,
		id:       s.nextID.Add(1),
		rd:       resp.NewRequestReader(nc),
		born:     time.Now(),
		proto:    2,
		authed:   s.Password == "",
		channels: map[string]struct{}{},
		patterns: map[string]struct{}{},
		shard:    map[string]struct{}{},
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.rd.Authenticated = c.authed
	c.rd.MaxQueryBuffer = max(limit(s.MaxQueryBuffer, DefaultMaxQueryBuffer), 0)
	return c
}

// subscribedLocked reports whether the client holds any subscription, the
// condition for RESP2's subscribed mode. c.mu must be held.
func (c *conn) subscribedLocked() bool {
	return len(c.channels)+len(c.patterns)+len(c.shard) > 0
}

// queueLocked appends b to the output, enforces the output limits and
// wakes the writer. c.mu must be held.
func (c *conn) queueLocked(b []byte) {
	if c.appendLocked(b) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// appendLocked appends b to the output and enforces the output limits,
// without waking the writer; it reports whether b was queued.
// c.mu must be held.
func (c *conn) appendLocked(b []byte) bool {
	if c.closing {
		return false
	}
	c.out = append(c.out, b...)
	pending := int64(len(c.out))
	if hard := limit(c.srv.OutputHardLimit, DefaultOutputHardLimit); hard > 0 && pending > hard {
		c.dropLocked("output buffer over the hard limit")
		return false
	}
	if soft := limit(c.srv.OutputSoftLimit, DefaultOutputSoftLimit); soft > 0 && pending > soft {
		period := c.srv.OutputSoftPeriod
		if period == 0 {
			period = DefaultOutputSoftPeriod
		}
		switch {
		case c.softSince.IsZero():
			c.softSince = time.Now()
		case time.Since(c.softSince) > period:
			c.dropLocked("output buffer over the soft limit for too long")
			return false
		}
	} else {
		c.softSince = time.Time{}
	}
	return true
}

// flushNow writes the queued output from the calling goroutine if no one
// else is writing; otherwise the writer goroutine will. The reader calls
// it once a pipeline is consumed, as Redis answers from its event loop,
// saving a goroutine hand-off per reply.
func (c *conn) flushNow() {
	if !c.writeMu.TryLock() {
		c.wakeWriter()
		return
	}
	defer c.writeMu.Unlock()
	if err := c.writeQueuedLocked(); err != nil {
		c.kill()
	}
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeQueuedLocked writes what is queued. c.writeMu must be held.
func (c *conn) writeQueuedLocked() error {
	c.mu.Lock()
	c.spare, c.out = c.out, c.spare[:0]
	c.mu.Unlock()
	if len(c.spare) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.spare)
	return err
}

// dropLocked disconnects a client whose output is over a limit, as Redis
// does: the queued output is discarded. c.mu must be held.
func (c *conn) dropLocked(why string) {
	c.srv.logger().Warn("pubsub server: disconnecting client", "id", c.id, "addr", c.nc.RemoteAddr(), "reason", why)
	c.out, c.closing = nil, true
	c.killLocked()
}

func (c *conn) killLocked() {
	if !c.killed {
		c.killed = true
		close(c.done)
		c.nc.Close()
	}
}

// kill drops the connection now.
func (c *conn) kill() {
	c.mu.Lock()
	c.closing = true
	c.killLocked()
	c.mu.Unlock()
}

// closeAfterFlush stops accepting output; the writer closes the connection
// once what is queued has been written.
func (c *conn) closeAfterFlush() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// deliver is the subscription's function: it queues a pushed message.
// A message for something the client no longer holds comes from a publish
// that raced with the unsubscribe; Redis would have sent it before the
// confirmation, which has been sent already, so it is dropped.
func (c *conn) deliver(m pubsub.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var held bool
	switch m.Kind {
	case pubsub.KindMessage:
		_, held = c.channels[m.Channel]
	case pubsub.KindPMessage:
		_, held = c.patterns[m.Pattern]
	case pubsub.KindSMessage:
		_, held = c.shard[m.Channel]
	}
	if !held {
		return
	}
	w := resp.Writer{Proto: c.proto}
	switch m.Kind {
	case pubsub.KindPMessage:
		w.Push(4)
		w.Bulk("pmessage")
		w.Bulk(m.Pattern)
	default:
		w.Push(3)
		w.Bulk(m.Kind.String())
	}
	w.Bulk(m.Channel)
	w.Bulk(m.Payload)
	c.queueLocked(w.Buf)
}

func (c *conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		c.writeMu.Lock()
		err := c.writeQueuedLocked()
		c.writeMu.Unlock()
		if err != nil {
			c.kill()
			return
		}
		if closing {
			c.mu.Lock()
			empty := len(c.out) == 0
			c.mu.Unlock()
			if empty {
				c.kill()
				return
			}
		}
	}
}

func (c *conn) readLoop() {
	defer c.finish()
	for {
		if t := c.srv.IdleTimeout; t > 0 {
			c.mu.Lock()
			subscribed := c.subscribedLocked()
			c.mu.Unlock()
			if subscribed { // Redis never times out Pub/Sub clients
				_ = c.nc.SetReadDeadline(time.Time{})
			} else {
				_ = c.nc.SetReadDeadline(time.Now().Add(t))
			}
		}
		args, err := c.rd.ReadCommand()
		if err != nil {
			var pe *resp.ProtocolError
			if errors.As(err, &pe) {
				c.mu.Lock()
				w := resp.Writer{Proto: c.proto}
				w.Error("ERR " + pe.Msg)
				c.queueLocked(w.Buf)
				c.mu.Unlock()
				c.closeAfterFlush()
				return
			}
			if errors.Is(err, resp.ErrQueryBufferLimit) {
				c.srv.logger().Warn("pubsub server: disconnecting client", "id", c.id, "addr", c.nc.RemoteAddr(), "reason", "command over the query buffer limit")
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.srv.logger().Debug("pubsub server: read", "id", c.id, "err", err)
			}
			c.kill()
			return
		}
		if len(args) == 0 {
			continue
		}
		c.srv.stats.commands.Add(1)
		if quit := c.run(args); quit {
			c.closeAfterFlush()
			return
		}
		if c.rd.Buffered() == 0 {
			c.flushNow()
		}
	}
}

// finish releases what the connection holds once its reader is done.
func (c *conn) finish() {
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Close()
	}
	c.srv.forget(c)
	// The writer ends the connection once the queue is flushed (or at once
	// if it was killed).
}

// subscription returns the client's subscription, made on first use.
// c.mu must be held.
func (c *conn) subscriptionLocked() (*pubsub.Subscription, error) {
	if c.sub == nil {
		s, err := c.srv.broker.NewSubscriptionFunc(c.deliver)
		if err != nil {
			return nil, err
		}
		c.sub = s
	}
	return c.sub, nil
}

func lower(s string) string { return strings.ToLower(s) }
