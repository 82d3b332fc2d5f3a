package server

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// loop is the Server's event loop, Redis's model (ae.c, networking.c):
// one goroutine parses and runs every command of every client, one at a
// time, in the order the input arrived, so that a command a client wrote
// after another client's command was read runs after it.
//
// Each turn it takes what other goroutines handed it (new connections,
// input read by a fallback reader, connections killed, output queued by
// Go publishers, a blocked command's end), then reads each connection the
// poller reports readable, in the kernel's order, once (readChunk bytes
// at most, as Redis reads 16 KB), and runs the commands that completed,
// maxCommandsPerTurn of them at most; before it waits again it writes
// what the turn queued for every client, as Redis's beforeSleep does. A
// client's burst thus holds the others back for one turn at most.
//
// Sockets are read and written by the loop itself where a poller exists
// (epoll on Linux, poll_linux.go): what a socket does not take waits for
// the poller to report room. Other connections post their input to the
// loop as events: an in-memory connection's Write does (memconn.go), and
// a connection the poller cannot watch (TLS, other platforms, or all when
// Server.NoPoller is set) is read by a goroutine that posts each read and
// waits until the loop has taken it (fallback.go); a writer goroutine
// takes what their sockets do not take at once. The loop runs their
// commands one at a time too, in the order the input was posted.
//
// The loop never waits for a client: reads and writes it makes do not
// block, and a command that must wait (WAIT, a command held by CLIENT
// PAUSE, a PUBLISH to a full Go subscriber under the Block policy) parks
// its client, whose later commands wait with it, as a blocked client in
// Redis, while the others go on.
type loop struct {
	srv *Server

	// Owned by the loop goroutine.
	poller    *poller         // nil until a socket comes, or if none can be had
	byToken   map[int32]*conn // the polled connections
	listeners map[int32]*polledListener
	nextToken int32
	noPoller  bool      // none could be made
	ready     []*conn   // connections with input to go on with next turn
	flush     []*conn   // connections the turn queued output for
	yielded   time.Time // when the loop last yielded to the scheduler (yieldNow)
	nextCron  time.Time
	// watchingOut counts the sockets watched for room to write: their
	// output limits are checked by cron while they wait.
	watchingOut int

	mu sync.Mutex
	// guards the fields below
	inbox   []event
	dirty   []*conn // output queued by publishers outside the loop
	woken   bool    // a wake-up is pending
	waker   *poller // the poller to wake, once there is one
	stopped bool

	wake chan struct{} // cap 1: the wake-up while there is no poller
	done chan struct{} // closed when the loop goroutine has returned
}

// readChunk is the most bytes read from one client in one turn:
// Redis's PROTO_IOBUF_LEN.
const readChunk = 16 << 10

// maxCommandsPerTurn is the most commands of one polled client a turn
// runs; the rest of its read waits for the next turn, and the socket is
// read again only once that is run. Redis runs a whole read at once;
// this keeps a turn short where a command costs more here (a PUBLISH to
// many subscribers), so that one client's pipeline holds the others back
// no longer than in Redis.
const maxCommandsPerTurn = 128

// cronEvery is how often the loop checks for idle clients, as Redis's
// clientsCron runs at its hz of 10.
const cronEvery = 100 * time.Millisecond

type eventKind uint8

const (
	evAdd    eventKind = iota // a new connection
	evInput                   // input posted: a fallback read, an in-memory write
	evKilled                  // the connection was killed
	evFunc                    // run fn on the loop
)

type event struct {
	kind eventKind
	c    *conn
	fn   func()
	// The input of an in-memory connection comes with its event: what
	// one Write wrote, or how the input ended.
	data []byte
	err  error
}

func newLoop(s *Server) *loop {
	l := &loop{
		srv:       s,
		byToken:   make(map[int32]*conn),
		listeners: make(map[int32]*polledListener),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	go l.run()
	return l
}

// post hands ev to the loop and wakes it; it never blocks. It reports
// false once the loop has stopped.
func (l *loop) post(ev event) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.inbox = append(l.inbox, ev)
	l.wakeLocked()
	l.mu.Unlock()
	return true
}

// do runs fn on the loop, soon; it never blocks.
func (l *loop) do(fn func()) bool { return l.post(event{kind: evFunc, fn: fn}) }

// markDirty asks the loop to write c's output, queued before the call
// (by a publisher outside the loop, or for a closing connection): one
// wake-up for however many come before the loop takes them.
func (l *loop) markDirty(c *conn) {
	// A plain load first: most publishes find c marked by an earlier one.
	// The loop clears the mark before it takes c's output, so a mark seen
	// here, after the output was queued, is one that will write it.
	if c.flushPending.Load() || c.flushPending.Swap(true) {
		return
	}
	l.mu.Lock()
	l.dirty = append(l.dirty, c)
	l.wakeLocked()
	l.mu.Unlock()
}

// wakeLocked wakes the loop once however many events come before it
// takes them. l.mu must be held.
func (l *loop) wakeLocked() {
	if l.woken {
		return
	}
	l.woken = true
	if l.waker != nil {
		l.waker.wake()
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// stop ends the loop once it has taken what was posted before, and
// waits for it unless wait is false.
func (l *loop) stop(wait bool) {
	l.mu.Lock()
	if !l.stopped {
		l.stopped = true
		l.wakeLocked()
	}
	l.mu.Unlock()
	if wait {
		<-l.done
	}
}

func (l *loop) run() {
	defer close(l.done)
	var inbox []event
	var dirty []*conn
	var polled []polledConn
	for {
		polled = l.wait(polled[:0])
		l.yieldNow()
		l.mu.Lock()
		inbox, l.inbox = l.inbox, inbox[:0]
		dirty, l.dirty = l.dirty, dirty[:0]
		l.woken = false
		stopped := l.stopped
		l.mu.Unlock()

		for i, ev := range inbox {
			l.handle(ev)
			inbox[i] = event{}
		}
		again := l.ready
		l.ready = nil
		for _, c := range again {
			c.inReady = false
			l.serve(c, false)
		}
		for _, p := range polled {
			// A capped client's input is run from the ready list, 128
			// commands a turn, before its socket is read again.
			if readable(p.events) && !p.c.capped {
				l.serve(p.c, hungUp(p.events))
			}
			if writable(p.events) {
				l.queueFlush(p.c) // written below, with the rest
			}
		}
		clear(polled)
		l.cron()
		// beforeSleep: write what this turn queued, for the clients that
		// ran commands and their subscribers, and for Go publishers'.
		for i, c := range dirty {
			c.flushPending.Store(false) // before its output is taken: what comes later marks it again
			l.write(c)
			dirty[i] = nil
		}
		// The last queued first, as Redis's clients_pending_write list
		// (new clients go to its head): a publisher's reply is queued
		// after the messages it fanned out, and goes out before them, so
		// that its next command comes sooner.
		for i := len(l.flush) - 1; i >= 0; i-- {
			c := l.flush[i]
			c.flushQueued = false
			l.write(c)
			c.batch.release()
			l.flush[i] = nil
		}
		l.flush = l.flush[:0]
		if stopped {
			l.releaseSockets()
			l.closeListeners()
			if l.poller != nil {
				l.poller.close()
			}
			return
		}
	}
}

// releaseSockets lets go of the sockets the loop accepted, as it stops:
// those of clients that were not killed are closed by their kill.
func (l *loop) releaseSockets() {
	l.srv.mu.Lock()
	defer l.srv.mu.Unlock()
	for _, c := range l.srv.conns {
		if s, ok := c.nc.(*loopSocket); ok {
			s.release()
		}
	}
}

func isLoopSocket(nc net.Conn) bool {
	_, ok := nc.(*loopSocket)
	return ok
}

// polledConn is a connection the poller reported, and what for.
type polledConn struct {
	c      *conn
	events uint32
}

// wait waits for input, a posted event or the next cron, and appends the
// polled connections that are ready to polled, in the order the kernel
// reported them. It does not wait when connections are ready already.
func (l *loop) wait(polled []polledConn) []polledConn {
	timeout := time.Duration(-1) // none
	if len(l.ready) > 0 {
		timeout = 0
	} else if !l.nextCron.IsZero() {
		timeout = max(time.Until(l.nextCron), 0)
	}
	if l.poller == nil {
		if timeout == 0 {
			return polled
		}
		var tick <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			tick = t.C
		}
		select {
		case <-l.wake:
		case <-tick:
		}
		return polled
	}
	for _, ev := range l.poller.wait(timeout) {
		if c := l.byToken[ev.token]; c != nil {
			polled = append(polled, polledConn{c, ev.events})
		} else if pl := l.listeners[ev.token]; pl != nil {
			polled = l.acceptFrom(pl, polled)
		}
	}
	return polled
}

// polledListener is a listening socket the loop accepts on itself.
type polledListener struct {
	ln    net.Listener
	raw   syscall.RawConn
	token int32
	errc  chan<- error // Serve's result
}

// maxAcceptsPerTurn is how many connections one turn accepts from one
// listener: Redis's MAX_ACCEPTS_PER_CALL.
const maxAcceptsPerTurn = 1000

// listen has the loop accept on ln itself, in the kernel's order among
// the sockets it reads, as Redis's loop does, where the poller can watch
// ln; elsewhere a goroutine accepts and hands each connection over. Serve
// returns what is sent on errc.
func (l *loop) listen(ln net.Listener, errc chan<- error) {
	raw := rawConn(ln)
	if raw == nil || !l.startPoller() {
		go l.srv.acceptFrom(ln, errc)
		return
	}
	pl := &polledListener{ln: ln, raw: raw, token: l.newToken(), errc: errc}
	if err := l.poller.add(raw, pl.token, pollIn); err != nil {
		go l.srv.acceptFrom(ln, errc)
		return
	}
	l.listeners[pl.token] = pl
}

// acceptFrom accepts what waits on pl and reads each new connection at
// once, so that a command a client sent right after connecting runs
// before one that another client sent after it (the new socket will be
// reported by the poller only from the next turn). Readable connections
// go on polled.
func (l *loop) acceptFrom(pl *polledListener, polled []polledConn) []polledConn {
	for range maxAcceptsPerTurn {
		nc, err := acceptOne(pl.raw)
		switch {
		case errors.Is(err, errNoPending):
			return polled
		case errors.Is(err, net.ErrClosed):
			l.closeListener(pl)
			return polled
		case err != nil:
			// As Redis: note it and go on (running out of descriptors,
			// say); the listener stays readable and is tried next turn.
			l.srv.logger().Warn("pubsub server: accept", "err", err)
			return polled
		}
		c := l.srv.register(nc)
		if c == nil { // refused, and closed
			nc.release()
			continue
		}
		l.add(c)
		if c.token != 0 {
			polled = append(polled, polledConn{c, pollFresh})
		}
	}
	return polled
}

// closeListener stops accepting on pl; Serve returns.
func (l *loop) closeListener(pl *polledListener) {
	delete(l.listeners, pl.token)
	_ = l.poller.remove(pl.raw) // if still open
	pl.errc <- ErrServerClosed
}

// closeListeners stops accepting on every listener, once the Server is
// closed: a closed socket leaves the poller without a word.
func (l *loop) closeListeners() {
	for _, pl := range l.listeners {
		l.closeListener(pl)
	}
}

func (l *loop) handle(ev event) {
	c := ev.c
	switch ev.kind {
	case evAdd:
		l.add(c)
	case evInput:
		l.feed(c, ev.data, ev.err)
	case evKilled:
		if !c.inputDone {
			l.endInput(c)
		}
		l.endWrites(c)
		if s, ok := c.nc.(*loopSocket); ok {
			s.release() // the loop is done with it
		}
	case evFunc:
		ev.fn()
	}
}

// add starts serving a new connection: the poller watches its socket if
// it can, and the loop reads and writes it; else a goroutine of its own
// reads it (an in-memory connection's writes come as events), and another
// writes what the loop's attempts leave.
func (l *loop) add(c *conn) {
	c.added = true
	c.startAs(l.srv.acl.def)
	switch m, mem := c.nc.(*memServerEnd); {
	case c.isKilled():
		l.endInput(c)
	case mem:
		c.src = m.client // its input comes as events
	case l.poll(c):
		return
	case isLoopSocket(c.nc):
		// A socket the loop accepted has no other reader: it is closed, as
		// Redis closes a client whose socket its loop cannot watch.
		l.srv.logger().Warn("pubsub server: cannot watch a new client's socket", "id", c.id, "addr", c.nc.RemoteAddr())
		c.loopWrites.Store(true) // no writer: its kill's event ends the writes
		c.kill()
		l.endInput(c)
		return
	default:
		c.src = startFallbackReader(c)
	}
	l.srv.startWriter(c)
}

// poll has the poller watch c's socket, if there is a poller, and reports
// whether it does: then the loop reads and writes c.
func (l *loop) poll(c *conn) bool {
	if c.raw == nil || !l.startPoller() {
		return false
	}
	c.token = l.newToken()
	if err := l.poller.add(c.raw, c.token, pollIn); err != nil {
		c.token = 0
		return false
	}
	c.interest = pollIn
	c.src = newFDSource(c.raw)
	l.byToken[c.token] = c
	c.loopWrites.Store(true)
	l.queueFlush(c) // what was queued for it before
	return true
}

// watch sets what the poller watches c's socket for: input while it is
// read (its hang-up only while c is parked: the input waits in it), and
// room while output waits. A socket watched for nothing leaves the poller.
func (l *loop) watch(c *conn) {
	if c.token == 0 {
		return
	}
	var events uint32
	switch {
	case c.inputDone:
	case c.parked:
		events = pollHangUp
	default:
		events = pollIn
	}
	if c.outWatched {
		events |= pollOut
	}
	if events == c.interest && !c.isKilled() {
		return
	}
	var err error
	switch {
	case c.isKilled():
		events = 0 // its closed socket left the poller by itself
	case events == 0:
		err = l.poller.remove(c.raw)
	case c.interest == 0:
		err = l.poller.add(c.raw, c.token, events)
		l.byToken[c.token] = c
	default:
		err = l.poller.modify(c.raw, c.token, events)
	}
	if err != nil { // closed meanwhile: its kill's event ends it
		events = 0
	}
	c.interest = events
	if events == 0 {
		delete(l.byToken, c.token)
	}
}

// write writes c's queued output, as much as its socket takes now. For a
// connection the loop writes, what is left waits for the poller to report
// room; once everything is written, a closing connection ends. Other
// connections' writer goroutines take what is left.
func (l *loop) write(c *conn) {
	if !c.loopWrites.Load() {
		c.flushNow()
		return
	}
	if c.writesDone {
		return
	}
	c.writeMu.Lock()
	left, err := c.writeAllLocked(true) // mu is only ever held briefly
	c.writeMu.Unlock()
	if err != nil {
		c.kill() // its event ends the writes
		return
	}
	if !left {
		c.mu.Lock()
		finished := c.closing && c.out.pending() == 0
		c.mu.Unlock()
		if finished {
			c.kill()
			return
		}
	}
	if c.outWatched != left {
		c.outWatched = left
		if left {
			l.watchingOut++
			l.cronSoon()
		} else {
			l.watchingOut--
		}
		l.watch(c)
	}
}

// endWrites ends the writes of a connection the loop writes, once it was
// killed: what its writer goroutine's end does for the others.
func (l *loop) endWrites(c *conn) {
	if !c.loopWrites.Load() || c.writesDone {
		return
	}
	c.writesDone = true
	if c.outWatched {
		c.outWatched = false
		l.watchingOut--
	}
	l.watch(c)
	l.srv.wg.Done()
	c.exited()
}

// startPoller makes the poller on first use, and reports whether there
// is one to use.
func (l *loop) startPoller() bool {
	if l.noPoller || l.srv.NoPoller || testHookNoPoller {
		return false
	}
	if l.poller != nil {
		return true
	}
	p, err := newPoller()
	if err != nil {
		l.noPoller = true
		l.srv.logger().Debug("pubsub server: no poller, reading each connection on a goroutine", "err", err)
		return false
	}
	l.poller = p
	l.mu.Lock()
	l.waker = p
	if l.woken { // posted since this turn took the inbox: wake the poller instead
		p.wake()
	}
	l.mu.Unlock()
	return true
}

// newToken names a socket for the poller.
func (l *loop) newToken() int32 {
	l.nextToken++
	if l.nextToken <= 0 {
		l.nextToken = 1
	}
	return l.nextToken
}

// serve reads c once if it is a polled socket, then runs the commands
// that completed, unless c waits for a command to end.
func (l *loop) serve(c *conn, hangUp bool) {
	if c.inputDone {
		return
	}
	if c.parked && hangUp {
		// A parked socket is polled for its hang-up only (level-triggered,
		// it would otherwise be reported every turn for the input that
		// waits in it): the client is let go, as Redis frees a blocked
		// client whose input ended.
		l.drain(c)
		c.kill()
		l.endInput(c)
		return
	}
	if c.inputErr == nil && c.token != 0 && !c.capped {
		space := c.dec.Space()
		n, err := c.src.read(space[:min(len(space), readChunk)])
		c.dec.Wrote(n)
		if n > 0 {
			c.lastIO.Store(time.Now().UnixNano())
			c.io.inBytes.Add(int64(n))
			c.io.reads.Add(1)
		}
		c.inputErr = err
	}
	if c.parked {
		return
	}
	l.runCommands(c)
}

// feed takes input posted as an event (an in-memory connection's write,
// a fallback reader's read), in the order it was posted, and runs the
// commands that completed.
func (l *loop) feed(c *conn, data []byte, err error) {
	if c.inputDone {
		c.src.took(len(data))
		return
	}
	posted := len(data)
	if posted > 0 {
		c.lastIO.Store(time.Now().UnixNano())
		c.io.inBytes.Add(int64(posted))
		c.io.reads.Add(1)
	}
	for len(data) > 0 {
		n := copy(c.dec.Space(), data)
		c.dec.Wrote(n)
		data = data[n:]
	}
	c.src.took(posted) // only once copied: a fallback reader reuses its chunk then
	if err != nil && c.inputErr == nil {
		c.inputErr = err
	}
	if c.parked {
		// Its input is taken meanwhile, to run later, as Redis reads a
		// blocked client's input, up to the query buffer limit; the end of
		// it lets the client go, as Redis frees a blocked client.
		lim := c.srv.limits.Load().maxQueryBuffer
		switch {
		case err != nil:
			c.kill()
			l.endInput(c)
		case lim > 0 && int64(c.dec.Buffered()) > lim:
			c.endedBecause(QueryBufferLimit)
			c.srv.logger().Warn("pubsub server: disconnecting client", "id", c.id, "addr", c.nc.RemoteAddr(), "reason", QueryBufferLimit.String())
			c.kill()
			l.endInput(c)
		}
		return
	}
	l.runCommands(c)
}

// drain reads and drops what a client that hung up left in its socket
// (its peer shut its side, so no more comes), so that closing the socket
// ends it with the FIN Redis's close sends, not a reset for unread bytes.
func (l *loop) drain(c *conn) {
	var scrap [readChunk]byte
	for {
		n, err := c.src.read(scrap[:])
		if n == 0 || err != nil {
			return
		}
	}
}

// runCommands runs the commands c's input holds whole.
func (l *loop) runCommands(c *conn) {
	defer func() {
		c.queryBuffered.Store(int64(c.dec.Buffered()))
		c.readBufferHeld.Store(int64(c.dec.Held()))
		c.ranUntil = 0 // the next turn's first command reads the clock
	}()
	c.capped = false
	for ran := 0; !c.inputDone && !c.parked; ran++ {
		if c.isKilled() {
			l.endInput(c)
			return
		}
		if ran == maxCommandsPerTurn && c.token != 0 && c.dec.Buffered() > 0 {
			// Its turn is over: the rest runs next turn, before the
			// socket is read again, so what waits stays one read.
			c.capped = true
			l.goOn(c)
			return
		}
		// CONFIG SET takes effect for the next command of every client.
		lim := c.srv.limits.Load()
		c.dec.MaxQueryBuffer, c.dec.MaxBulkLen = lim.maxQueryBuffer, lim.maxBulkLen
		c.dec.Authenticated = !c.authRequired()
		args, ok, err := c.dec.Next()
		if err != nil {
			l.badInput(c, err)
			return
		}
		if !ok {
			if c.inputErr != nil {
				l.inputFailed(c)
			}
			return
		}
		if len(args) == 0 {
			continue
		}
		c.srv.stats.commands.Add(1)
		l.ran(c, c.run(args))
	}
}

// runHeld runs a command that was parked, then goes on with c's input.
func (l *loop) runHeld(c *conn, args []string) {
	l.ran(c, c.run(args))
	c.ranUntil = 0
}

// ran follows a command of c: its output is written before the loop
// waits, and c is parked while the deliveries it left waiting finish.
func (l *loop) ran(c *conn, quit bool) {
	l.queueFlush(c)
	if quit {
		c.closeAfterFlush()
		l.endInput(c)
		return
	}
	if c.waits.Len() > 0 {
		l.parkForWaits(c)
	}
}

// parkForWaits parks c while the deliveries its publish left waiting for
// Go subscribers under the Block policy finish, each waiting for room
// until the subscription closes or c is killed. The reply has gone out
// already (it counts the receivers, which are known); c's later commands
// wait, as a blocked client's in Redis, and every other client goes on.
func (l *loop) parkForWaits(c *conn) {
	fns := c.waits.Take()
	c.blocked.Store(blockedForever)
	l.park(c, func() bool {
		defer c.blocked.Store(notBlocked)
		for _, fn := range fns {
			fn(c.ctx)
		}
		return true
	}, func() {})
}

// goOn has c served again next turn, once however often it is asked.
func (l *loop) goOn(c *conn) {
	if !c.inReady {
		c.inReady = true
		l.ready = append(l.ready, c)
	}
}

// queueFlush has c's output written before the loop waits again.
func (l *loop) queueFlush(c *conn) {
	if !c.flushQueued {
		c.flushQueued = true
		l.flush = append(l.flush, c)
	}
}

// badInput ends a client that sent what cannot be parsed, or a command
// over the query buffer limit.
func (l *loop) badInput(c *conn, err error) {
	var pe *resp.ProtocolError
	switch {
	case errors.As(err, &pe):
		c.mu.Lock()
		c.endedBecauseLocked(ProtocolError)
		w := resp.Writer{Proto: c.proto}
		w.Error("ERR " + pe.Msg)
		c.queueLocked(w.Buf)
		c.mu.Unlock()
		c.closeAfterFlush()
	default: // resp.ErrQueryBufferLimit
		c.endedBecause(QueryBufferLimit)
		c.srv.logger().Warn("pubsub server: disconnecting client", "id", c.id, "addr", c.nc.RemoteAddr(), "reason", QueryBufferLimit.String())
		c.kill()
	}
	l.queueFlush(c)
	l.endInput(c)
}

// inputFailed ends a client's input once its commands are run: at EOF
// (the client shut its write side, or closed), what is queued for it is
// written first, as Redis writes its replies before it reads the end of
// the input.
func (l *loop) inputFailed(c *conn) {
	err := c.inputErr
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		c.closeAfterFlush()
		l.queueFlush(c)
	default:
		if !errors.Is(err, net.ErrClosed) {
			c.srv.logger().Debug("pubsub server: read", "id", c.id, "err", err)
		}
		c.kill()
	}
	l.endInput(c)
}

// endInput stops reading c and running its commands, and lets its
// subscriptions go. The writer ends the connection once the queue is
// written, or at once if it was killed.
func (l *loop) endInput(c *conn) {
	if c.inputDone {
		return
	}
	c.inputDone = true
	l.watch(c)
	c.dec.Discard()
	c.queryBuffered.Store(0)
	c.readBufferHeld.Store(0)
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Close()
	}
	if c.added {
		c.srv.wg.Done()
		c.exited()
	}
}

// park makes c's commands wait until wait returns: then, on the loop,
// then runs if wait returned true, and c's commands go on. wait runs on a
// goroutine of its own and must return once c is killed. While parked,
// c's socket is watched only for its hang-up.
func (l *loop) park(c *conn, wait func() bool, then func()) {
	c.parked = true
	l.watch(c)
	l.srv.wg.Go(func() {
		ok := wait()
		l.do(func() {
			if c.inputDone {
				return
			}
			c.parked = false
			l.watch(c)
			if ok {
				then()
			}
			l.queueFlush(c)
			l.goOn(c)
		})
	})
}

// cron checks for idle clients, as Redis's clientsCron does: a client is
// idle when nothing has been read from it or written to it for the
// timeout, in the middle of a command or not; subscribed and blocked
// clients never are.
//
// It also checks the output limits of the clients whose output waits for
// room, so that one that stopped reading is disconnected once its soft
// limit's period has passed, even when nothing more is queued for it.
func (l *loop) cron() {
	timeout := l.srv.limits.Load().idleTimeout
	if timeout <= 0 && l.watchingOut == 0 {
		l.nextCron = time.Time{}
		return
	}
	now := time.Now()
	if !l.nextCron.IsZero() && now.Before(l.nextCron) {
		return
	}
	l.nextCron = now.Add(cronEvery)
	if timeout > 0 {
		l.nextCron = now.Add(min(cronEvery, timeout))
	}
	for _, c := range l.srv.connections() {
		if c.outWatched {
			c.mu.Lock()
			if !c.killed {
				c.withinLimitsLocked(0) // past a limit, the client is dropped
			}
			c.mu.Unlock()
		}
		if timeout <= 0 || c.parked || c.inputDone || now.Sub(time.Unix(0, c.lastIO.Load())) < timeout {
			continue
		}
		c.mu.Lock()
		subscribed := c.subscribedLocked()
		c.mu.Unlock()
		if subscribed {
			continue
		}
		c.endedBecause(IdleTimeout)
		c.srv.logger().Debug("pubsub server: idle client timed out", "id", c.id, "addr", c.nc.RemoteAddr())
		c.kill()
		l.endInput(c)
	}
}

// cronSoon makes sure cron runs within cronEvery.
func (l *loop) cronSoon() {
	if l.nextCron.IsZero() {
		l.nextCron = time.Now().Add(cronEvery)
	}
}

// source is where the loop reads a connection's input from.
type source interface {
	// read reads what has arrived into p, without waiting: 0 and no
	// error when nothing has. Only a polled socket is read; other
	// sources post their input as events.
	read(p []byte) (int, error)
	// took tells a source that posts its input that the loop has taken
	// n bytes of it, so it may post more.
	took(n int)
}

// testHookNoPoller makes every Server of a test binary read each
// connection on a goroutine, so that the fallback path runs the whole
// suite too.
var testHookNoPoller bool

// yieldEvery is how often the loop lets the Go scheduler see it yield.
// Its reads and writes are raw system calls and its waits keep the
// scheduler's bookkeeping of a running goroutine unchanged, so the
// runtime's monitor takes it for one that has run without a break, and
// past 10 ms interrupts it with a signal (SIGURG) to preempt it, on every
// turn of a server at low load (measured: 74 signals in 100 turns at 100
// publishes a second). A yield every few milliseconds keeps that from
// ever happening; a yield every turn did too, but woke another thread
// each time where the Go runtime has a second processor.
const yieldEvery = 5 * time.Millisecond

func (l *loop) yieldNow() {
	if now := time.Now(); now.Sub(l.yielded) >= yieldEvery {
		runtime.Gosched()
		l.yielded = now
	}
}
