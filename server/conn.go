package server

import (
	"context"
	"crypto/tls"
	"errors"

	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/blockwait"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// conn is one client connection. The Server's loop (loop.go) reads it,
// parses and runs its commands; the fields the loop alone uses need no
// lock. Replies and pushed messages are queued in out under mu, the lock
// publishing goroutines take to queue a message too, so a client sees
// replies and messages in the order Redis would send them.
//
// The loop writes the queue before it waits again (as Redis's
// beforeSleep writes every client's replies), for the replies of the
// commands it ran and the messages publishers queued, as much as the
// socket takes at once: it never waits for a client that does not read.
// Where the poller watches the socket, what is left waits for the poller
// to report room, and the loop writes it then, as Redis's write handler;
// other connections (in-memory, fallback) have a writer goroutine that
// blocks on the rest. Either way a client's replies wait in out, up to
// the client's output limit, as in Redis; writeMu is held while writing.
//
// Lock order: Server.mu is taken alone. writeMu, then mu. mu, then the
// Subscription's locks (Add and Remove run under mu, and deliver asks
// Holds under it), then the loop's mu; the Broker calls deliver with none
// of its locks held.
//
// The connection counts as a client (CLIENT LIST, MaxClients, Shutdown)
// until the loop is done with its input and its writes have ended: a
// client that sent QUIT after a pipeline it never reads stays listed, and
// killable, while its replies wait.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   int64
	born time.Time
	// ctx ends when the connection is killed; a command that may block
	// (a PUBLISH to a Go subscriber under the Block policy) takes it.
	ctx    context.Context
	cancel context.CancelFunc
	// lastIO is when a byte was last read from or written to the client
	// (unix nanoseconds), for the idle timeout.
	lastIO atomic.Int64
	// running counts the loop's hold on the connection's input and its
	// writer goroutine; the last to end removes the connection from the
	// Server.
	running atomic.Int32
	// flushPending: the loop will write the output publishers outside it
	// queued.
	flushPending atomic.Bool
	// loopWrites: the loop writes the connection (its socket is polled),
	// rather than a writer goroutine; set once, by the loop.
	loopWrites atomic.Bool
	// io is what was read and written, queryBuffered the bytes read and
	// not yet run, blocked whether a command waits (WAIT): for INFO.
	io             ioCounts
	queryBuffered  atomic.Int64
	readBufferHeld atomic.Int64 // the size of the read buffer the input holds, or 0
	// multiQueued is how many commands MULTI queued (-1 outside MULTI),
	// multiMem their memory as Redis counts it: for CLIENT LIST.
	multiQueued atomic.Int64
	multiMem    atomic.Int64
	blockedArgv atomic.Int64 // argv-mem of a command blocked in WAIT
	fd          int          // the socket's descriptor, for CLIENT LIST; -1 if none
	blocked     atomic.Int32

	// Used only by the loop.
	dec         *resp.Decoder // the input not yet run
	src         source        // where the loop reads the input from
	token       int32         // the poller's name for it; 0 if not polled
	inputErr    error         // how reading ended; taken once the input is run
	added       bool          // the loop took it (evAdd)
	inputDone   bool          // no more input is read or run
	parked      bool          // a command waits (park): the later ones wait too
	capped      bool          // its turn ended at maxCommandsPerTurn: its input waits in ready
	inReady     bool          // in the loop's ready list
	interest    uint32        // what the poller watches its socket for; 0: not watched
	outWatched  bool          // its output waits for room (loopWrites)
	writesDone  bool          // the loop is done writing it (loopWrites)
	flushQueued bool          // in the loop's flush list
	multi       *multiState
	replyMode   replyMode
	reply       resp.Writer // the reply being built
	cmd         *command    // the command running
	// ranUntil is when the previous command of the client's pipeline
	// ended (Server.monotonic), 0 outside a pipeline. The next command's
	// time counts from there: one clock read a command rather than two,
	// its parsing and checks counted in its time (a few percent of the
	// cheapest command's).
	ranUntil time.Duration
	// looked is the command the client named last, lookedAs the name it
	// used (conn.lookup).
	looked   *command
	lookedAs string
	quit     bool // the command running ends the connection
	batch    publishBatch
	// invalidateAfterReply: the command running flushed (FLUSHALL), and
	// this client's own invalidation follows its reply, as in Redis.
	invalidateAfterReply bool
	// caching: CLIENT CACHING was sent, for the command after it.
	caching bool
	inExec  bool // EXEC is running the queued commands, which never block
	// user is the ACL user the client runs as, owned by the loop, which
	// sets it when it adds the client (nil before: default); authenticated says AUTH, or
	// a default user without password at the start, let it in, as
	// Redis's c->authenticated.
	user          *aclUser
	authenticated bool
	pubCtx        context.Context // ctx, carrying batch to the subscribers a publish reaches, and waits
	// waits holds the deliveries a publish left waiting for a Go
	// subscriber under the Block policy; the loop parks the client while
	// they finish.
	waits blockwait.Waits

	mu sync.Mutex
	// guards the fields below. Of them, lastCmd, proto, subCount and
	// shardCount are written by the loop alone (under mu), so the loop
	// reads them without it.
	name      string
	addrText  string    // the peer's address, as CLIENT LIST writes it, once it has
	laddrText string    // the local one
	lib       [2]string // CLIENT SETINFO lib-name, lib-ver
	db        int
	lastCmd   string
	userLabel string // the name of user (below), for ClientInfo off the loop
	proto     int    // 2 or 3
	out       outQueue
	softSince time.Time // since when the output has been over the soft limit
	closing   bool      // no more output is accepted
	killed    bool
	outPeak   int64            // the most output pending at once
	why       DisconnectReason // why the connection ends, once whySet
	whySet    bool
	// sub holds the client's channels, patterns and shard channels.
	// subCount and shardCount are the counts its last confirmations
	// carried (channels + patterns, shard channels), which decide RESP2's
	// subscribed mode and the output class, as Redis's CLIENT_PUBSUB flag.
	sub        *pubsub.Subscription
	subCount   int
	shardCount int
	push       []byte // a pushed message being encoded
	track      tracking

	wake chan struct{} // cap 1: out has data, or closing changed
	done chan struct{} // closed by kill

	writeMu sync.Mutex
	// guards the fields below, and writing to nc
	writing [][]byte        // chunks taken from out and not yet written
	written int             // bytes of writing[0] already written
	iov     net.Buffers     // reused to write writing with one writev
	raw     syscall.RawConn // nc's, for writes that never block; nil if it has none
	// writeFD is writeOnceLocked's function for raw.Write, made once;
	// wrote and writeErr carry its result.
	writeFD  func(fd uintptr) bool
	wrote    int
	writeErr error
}

type replyMode uint8

const (
	replyOn replyMode = iota
	replyOff
	replySkipNext // CLIENT REPLY SKIP: the next command's replies are skipped
	replySkip     // the replies of the command running now are skipped
)

type multiState struct {
	queued [][]string
	failed bool // a command was refused while queuing: EXEC aborts
}

// setMulti enters MULTI (m not nil) or leaves it, and tells CLIENT LIST.
func (c *conn) setMulti(m *multiState) {
	c.multi = m
	if m == nil {
		c.multiQueued.Store(-1)
	} else {
		c.multiQueued.Store(0)
	}
	c.multiMem.Store(0)
}

// queueInMulti queues a command of a transaction.
func (c *conn) queueInMulti(args []string) {
	c.multi.queued = append(c.multi.queued, slices.Clone(args))
	c.multiQueued.Add(1)
	// What Redis counts: the arguments, and a pointer to each.
	c.multiMem.Add(int64(argvMem(args) + 8*len(args)))
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:   s,
		nc:    nc,
		id:    s.nextID.Add(1),
		born:  time.Now(),
		proto: s.firstProtocol(),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		raw:   rawConn(nc),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.pubCtx = blockwait.With(context.WithValue(c.ctx, batchKey{}, &c.batch), &c.waits)
	c.running.Store(2)
	c.lastIO.Store(c.born.UnixNano())
	c.multiQueued.Store(-1)
	c.fd = -1
	fdOf := c.raw
	if tc, ok := nc.(*tls.Conn); ok { // never written raw, but its socket has a number
		fdOf = rawConn(tc.NetConn())
	}
	if fdOf != nil {
		_ = fdOf.Control(func(fd uintptr) { c.fd = int(fd) })
	}
	c.dec = resp.NewDecoder(&s.readBuffers)
	return c
}

// setUpTCP sets a TCP client's socket up as Redis does (anetEnableTcpNoDelay,
// and anetKeepAlive with tcp-keepalive's seconds, none at 0): the kernel
// probes a peer silent that long, then every third of it, three times.
func setUpTCP(nc net.Conn, keepAliveSecs int) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	switch nc := nc.(type) {
	case *loopSocket:
		nc.setUpTCP(keepAliveSecs)
	case *net.TCPConn:
		_ = nc.SetNoDelay(true)
		if keepAliveSecs <= 0 {
			_ = nc.SetKeepAlive(false)
			return
		}
		secs := time.Duration(keepAliveSecs) * time.Second
		_ = nc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: secs, Interval: max(secs/3, time.Second), Count: 3})
	}
}

// exited is called as each of the connection's goroutines ends.
func (c *conn) exited() {
	if c.running.Add(-1) == 0 {
		c.srv.forget(c)
	}
}

// subscribedLocked reports whether the client holds any subscription: the
// condition for RESP2's subscribed mode, the pubsub output class and the
// exemption from the idle timeout. c.mu must be held.
func (c *conn) subscribedLocked() bool {
	return c.subCount+c.shardCount > 0
}

// queueLocked appends b to the output and wakes the writer. c.mu must be
// held.
func (c *conn) queueLocked(b []byte) {
	if c.appendLocked(b) {
		c.wakeWriter()
	}
}

// appendLocked appends b to the output and enforces the output limit,
// without waking the writer; it reports whether b was queued. c.mu must be
// held.
func (c *conn) appendLocked(b []byte) bool {
	if c.closing {
		return false
	}
	if !c.withinLimitsLocked(int64(len(b))) {
		return false
	}
	c.out.append(b, &c.srv.chunks)
	c.outPeak = max(c.outPeak, c.out.pending())
	return true
}

// withinLimitsLocked checks the output limit of the client's class with
// more bytes about to be queued, and disconnects the client past it, as
// Redis does: the hard limit at once, the soft one once it has been
// exceeded for its whole period. c.mu must be held.
func (c *conn) withinLimitsLocked(more int64) bool {
	class := classNormal
	if c.subscribedLocked() {
		class = classPubSub
	}
	lim := c.srv.limits.Load().output[class]
	pending := c.out.pending() + more
	if lim.Hard > 0 && pending > lim.Hard {
		c.dropLocked(OutputHardLimit)
		return false
	}
	if lim.Soft > 0 && pending > lim.Soft {
		now := time.Now()
		switch {
		case c.softSince.IsZero():
			c.softSince = now
		case now.Sub(c.softSince) > lim.SoftPeriod:
			c.dropLocked(OutputSoftLimit)
			return false
		}
	} else {
		c.softSince = time.Time{}
	}
	return true
}

func (c *conn) wakeWriter() {
	if c.loopWrites.Load() {
		c.srv.loop.markDirty(c)
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// flushNow writes the queued output of a connection the loop does not
// poll, from the loop, with one attempt that does not block, if no one
// else is writing; whatever is left is the writer goroutine's.
func (c *conn) flushNow() {
	if c.raw == nil || !c.writeMu.TryLock() {
		c.wakeWriter()
		return
	}
	// If mu is busy (a Go publisher's delivery), what is left is the
	// writer's, which waits for it.
	left, err := c.writeAllLocked(false)
	c.writeMu.Unlock()
	if err != nil {
		c.kill()
		return
	}
	if left {
		c.wakeWriter()
	}
}

// writeAllLocked writes the output taken and what is queued after it, as
// much as the socket takes now; what it does not take is left in
// writing. If wait is false, it takes more output only if mu is free.
// c.writeMu must be held.
// It reports whether output may be left: in writing, or queued while mu
// was busy.
func (c *conn) writeAllLocked(wait bool) (left bool, err error) {
	for {
		if !c.takeLocked(wait) {
			return true, nil
		}
		if len(c.writing) == 0 {
			return false, nil
		}
		if err := c.writeOnceLocked(); err != nil || len(c.writing) > 0 {
			return len(c.writing) > 0, err
		}
	}
}

// takeLocked moves the queued output to writing, if writing is empty. If
// wait is false (flushNow, which must not wait), it takes only if mu is
// free. It reports whether it could. c.writeMu must be held.
func (c *conn) takeLocked(wait bool) bool {
	if len(c.writing) > 0 {
		return true
	}
	if wait {
		c.mu.Lock()
	} else if !c.mu.TryLock() {
		return false
	}
	c.writing, c.out.chunks = c.out.chunks, c.writing[:0]
	c.out.taken += c.out.queued
	c.out.queued = 0
	c.mu.Unlock()
	c.written = 0
	return true
}

// wroteLocked accounts for n bytes of writing written, and gives written
// chunks back to the pool. c.writeMu must be held.
func (c *conn) wroteLocked(n int) {
	// The writev's buffers are done with: hold no chunk through them, or
	// an idle client keeps its last chunk, which the pool may have handed
	// on.
	clear(c.iov)
	if n <= 0 {
		return
	}
	c.lastIO.Store(time.Now().UnixNano())
	c.io.outBytes.Add(int64(n))
	c.io.writes.Add(1)
	c.mu.Lock()
	c.out.taken -= int64(n)
	c.mu.Unlock()
	done := 0
	for done < len(c.writing) {
		left := len(c.writing[done]) - c.written
		if n < left {
			c.written += n
			break
		}
		n -= left
		c.srv.chunks.Put((*[outChunk]byte)(c.writing[done][:outChunk]))
		c.writing[done] = nil
		c.written = 0
		done++
	}
	c.writing = c.writing[:copy(c.writing, c.writing[done:])]
}

// iovLocked returns what is left of writing as buffers for one writev.
// c.writeMu must be held.
func (c *conn) iovLocked() net.Buffers {
	c.iov = append(c.iov[:0], c.writing...)
	c.iov[0] = c.iov[0][c.written:]
	return c.iov
}

// writeLoop writes whatever the loop's attempts leave, blocking as long
// as the client takes to read it. While a write waits, the output limit is
// checked every second, so a client that stopped reading is disconnected
// once its soft limit's period has passed even when nothing more is
// queued for it.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.writeMu.Lock()
		err := c.drainLocked()
		c.writeMu.Unlock()
		if err != nil {
			c.kill()
			return
		}
		c.mu.Lock()
		finished := c.closing && c.out.pending() == 0
		c.mu.Unlock()
		if finished {
			c.kill()
			return
		}
	}
}

// limitCheckEvery is how often a blocked write wakes to check the output
// limits.
const limitCheckEvery = time.Second

// drainLocked writes until nothing is queued. c.writeMu must be held.
func (c *conn) drainLocked() error {
	// The deadline wakes a blocked write to check the limits; it is
	// cleared on the way out, because the loop's attempts that never
	// block would fail on it.
	defer c.nc.SetWriteDeadline(time.Time{})
	for {
		c.takeLocked(true)
		if len(c.writing) == 0 {
			return nil
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(limitCheckEvery))
		iov := c.iovLocked()
		n, err := iov.WriteTo(c.nc)
		c.wroteLocked(int(n))
		if errors.Is(err, errDeadline) {
			c.mu.Lock()
			ok := !c.killed && c.withinLimitsLocked(0)
			c.mu.Unlock()
			if !ok {
				return net.ErrClosed
			}
			continue
		}
		if err != nil {
			return err
		}
	}
}

// dropLocked disconnects a client whose output is over a limit, as Redis
// does: the queued output is discarded. c.mu must be held.
func (c *conn) dropLocked(why DisconnectReason) {
	c.srv.logger().Warn("pubsub server: disconnecting client", "id", c.id, "addr", c.nc.RemoteAddr(), "reason", why.String())
	c.endedBecauseLocked(why)
	c.out.chunks, c.out.queued = nil, 0 // what a writer took goes with its failed write
	c.closing = true
	c.killLocked()
}

func (c *conn) killLocked() {
	if !c.killed {
		c.killed = true
		close(c.done)
		c.cancel()
		c.nc.Close()
		c.srv.loop.post(event{kind: evKilled, c: c})
	}
}

// isKilled reports whether the connection was killed.
func (c *conn) isKilled() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill drops the connection now.
func (c *conn) kill() {
	c.mu.Lock()
	c.closing = true
	c.killLocked()
	c.mu.Unlock()
}

// drop kills the connection and removes its subscriptions before it
// returns, as Redis frees a client it kills: once CLIENT KILL or
// DropClients returns, PUBLISH and PUBSUB answer without it. Closing a
// subscription of many names takes a while, so only a caller that may
// wait drops (the loop, which writes for every client, kills).
func (c *conn) drop() {
	c.endedBecause(Killed)
	c.kill()
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Close() // its op lock comes before c.mu, so not under it
	}
}

// closeAfterFlush stops accepting output; the writer closes the connection
// once what is queued has been written.
func (c *conn) closeAfterFlush() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.wakeWriter()
}

// deliver is the function of the client's subscription sub: it queues a
// pushed message. From a publish by another client (ctx carries its
// batch), it runs on the loop: the message is encoded once for every
// subscriber of one protocol, and this connection is written to before
// the loop waits again. From a Go publisher, the loop is woken to write
// it, once for however many messages come before it does.
// A message for a name the client no longer holds comes from a Go
// publisher that raced with the unsubscribe (a func subscription may be
// called once after it); Redis would have sent it before the
// confirmation, which has been queued already under c.mu, so it is
// dropped. A publish on the loop needs no such check: an unsubscribe ran
// before it on the same goroutine, and the subscription never offers a
// name it no longer holds.
func (c *conn) deliver(ctx context.Context, sub *pubsub.Subscription, m *pubsub.Message) {
	batch, _ := ctx.Value(batchKey{}).(*publishBatch)
	c.mu.Lock()
	defer c.mu.Unlock()
	name := m.Channel
	if m.Kind == pubsub.KindPMessage {
		name = m.Pattern
	}
	if c.sub != sub || (batch == nil && !sub.Holds(m.Kind.Namespace(), name)) {
		return // after RESET, or unsubscribed
	}
	var enc []byte
	if batch != nil {
		enc = batch.encoded(m, c.proto)
	} else {
		c.push = encodePush(c.push[:0], m, c.proto)
		enc = c.push
	}
	switch {
	case !c.appendLocked(enc):
	case batch != nil:
		c.srv.loop.queueFlush(c)
	default:
		c.srv.loop.markDirty(c)
	}
	if cap(c.push) > outChunk { // a large message: do not keep its buffer
		c.push = nil
	}
}

// encodePush appends m as the push a subscriber receives.
func encodePush(buf []byte, m *pubsub.Message, proto int) []byte {
	w := resp.Writer{Proto: proto, Buf: buf}
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
	return w.Buf
}

type batchKey struct{}

// publishBatch is what the publishes of one connection share, owned by
// the loop (a subscription's function runs on the publishing goroutine): the last message's encoding, made once for all its
// subscribers of one protocol.
type publishBatch struct {
	key   pubsub.Message
	proto int
	enc   []byte
}

// encoded returns m encoded for proto, reusing the last encoding when it
// was of the same message. Comparing the strings is cheap: the receivers
// of one publish share them.
func (b *publishBatch) encoded(m *pubsub.Message, proto int) []byte {
	if b.enc == nil || b.key != *m || b.proto != proto {
		b.enc = encodePush(b.enc[:0], m, proto)
		b.key, b.proto = *m, proto
	}
	return b.enc
}

// release lets the last message go once a pipeline is done.
func (b *publishBatch) release() {
	b.key = pubsub.Message{}
	if cap(b.enc) > outChunk {
		b.enc = nil
	}
}

// subscription returns the client's subscription, made on first use.
// c.mu must be held.
func (c *conn) subscriptionLocked() (*pubsub.Subscription, error) {
	if c.sub == nil {
		var s *pubsub.Subscription // set before it holds anything, so before fn runs
		s, err := c.srv.broker.NewSubscriptionFunc(func(ctx context.Context, m pubsub.Message) { c.deliver(ctx, s, &m) })
		if err != nil {
			return nil, err
		}
		c.sub = s
	}
	return c.sub, nil
}

// errDeadline is the error of a read or write past its deadline.
var errDeadline = os.ErrDeadlineExceeded

func lower(s string) string { return strings.ToLower(s) }
