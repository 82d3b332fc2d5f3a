package relay

import (
	"errors"
	"slices"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// upstream is one connection to Redis in subscribed mode, shared by every
// local subscription of its names. It has two goroutines: run dials,
// reads confirmations and messages, checks the connection's health and
// dials again when it is lost; write sends queued commands in order.
type upstream struct {
	r    *relay
	id   string
	ns   pubsub.Namespace // the names it carries
	node string           // the master, for a cluster node's shard connection
	wake chan struct{}    // the writer has commands to send

	// guarded by r.mu
	conn     Conn         // nil while dialling
	queue    []*command   // to send on conn, in order
	inflight []*command   // sent on conn and not fully answered, oldest first
	down     time.Time    // when a loss was seen; zero while up
	awaiting map[key]bool // names to be confirmed again after a loss
	retired  bool         // replaced after a loss (cluster node connections)
}

// command is one (un)subscribe command. Redis answers it with one
// confirmation per name, or with one error.
type command struct {
	subscribe bool
	ns        pubsub.Namespace
	names     []string
	entries   []*entry // subscribe: the entry of each name
	answered  []bool
	left      int
}

// maxNamesPerCommand bounds one (re)subscribe command, so that a
// resubscription of many names is several commands of reasonable size.
const maxNamesPerCommand = 1024

// subscribeLocked queues the subscribe of entries: on a cluster node's
// shard connection one command per slot, since Redis refuses an
// SSUBSCRIBE of several slots (CROSSSLOT).
func (u *upstream) subscribeLocked(entries []*entry) {
	if u.node != "" && len(entries) > 1 {
		bySlot := make(map[int][]*entry)
		var order []int
		for _, e := range entries {
			slot := Slot(e.key.name)
			if bySlot[slot] == nil {
				order = append(order, slot)
			}
			bySlot[slot] = append(bySlot[slot], e)
		}
		if len(order) > 1 {
			for _, slot := range order {
				u.subscribeLocked(bySlot[slot])
			}
			return
		}
	}
	for len(entries) > 0 {
		part := entries[:min(len(entries), maxNamesPerCommand)]
		entries = entries[len(part):]
		c := &command{subscribe: true, ns: part[0].key.ns, entries: part}
		for _, e := range part {
			c.names = append(c.names, e.key.name)
		}
		u.enqueueLocked(c)
	}
}

func (u *upstream) unsubscribeLocked(k key) {
	u.enqueueLocked(&command{ns: k.ns, names: []string{k.name}})
}

func (u *upstream) enqueueLocked(c *command) {
	c.answered = make([]bool, len(c.names))
	c.left = len(c.names)
	u.queue = append(u.queue, c)
	u.poke()
}

func (u *upstream) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// write sends the queued commands in order, while there is a connection.
// A command is recorded as in flight before it is written, so its answer
// always finds it. A failed write needs no retry: the loss is seen by run,
// which subscribes every name again on the next connection.
func (u *upstream) write() {
	defer u.r.wg.Done()
	ctx := u.r.ctx
	for {
		select {
		case <-u.wake:
		case <-ctx.Done():
			return
		}
		for {
			u.r.mu.Lock()
			if u.retired {
				u.r.mu.Unlock()
				return
			}
			conn := u.conn
			if conn == nil || len(u.queue) == 0 {
				u.r.mu.Unlock()
				break
			}
			c := u.queue[0]
			u.queue[0] = nil
			u.queue = u.queue[1:]
			u.inflight = append(u.inflight, c)
			u.r.mu.Unlock()
			if err := conn.Send(ctx, c.subscribe, c.ns, c.names); isRefusal(err) {
				u.r.refused(u, conn, err)
			}
		}
	}
}

// run keeps a connection up until the relay stops or the upstream is
// retired.
func (u *upstream) run() {
	defer u.r.wg.Done()
	for attempt := 0; ; attempt++ {
		if !u.r.sleep(backoff(attempt)) {
			return
		}
		conn, err := u.r.b.client.Dial(u.r.ctx, u.ns, u.node)
		if err != nil {
			if u.r.ctx.Err() != nil || !u.r.lost(u, nil) {
				return
			}
			continue
		}
		if !u.r.connected(u, conn) {
			_ = conn.Close()
			return
		}
		if u.receive(conn) {
			attempt = 0 // it worked for a while: dial again at once
		}
		// The gap first: closing a connection to a Redis that hangs may
		// take a while (rueidis waits up to a second for a last PING).
		goOn := u.r.ctx.Err() == nil && u.r.lost(u, conn)
		_ = conn.Close()
		if !goOn {
			return
		}
	}
}

// receive reads from conn until it is lost or the relay stops, and
// reports whether anything arrived. A connection silent for the
// health-check interval is sent a PING; one that answers nothing within
// as long again is taken for lost.
func (u *upstream) receive(conn Conn) (worked bool) {
	ctx := u.r.ctx
	interval := u.r.b.healthCheck
	pinged := false // a PING is out and nothing has come since
	for {
		ev, err := conn.Receive(ctx, interval)
		if ctx.Err() != nil {
			return worked
		}
		switch {
		case errors.Is(err, ErrQuiet):
			if pinged || conn.Ping(ctx) != nil {
				return worked
			}
			pinged = true
			continue
		case isRefusal(err):
			u.r.refused(u, conn, err)
		case err != nil:
			return worked
		}
		pinged = false
		worked = true
		switch ev.Kind {
		case Confirmation:
			u.r.answered(u, ev)
		case Message:
			u.deliver(ev)
		}
	}
}

// deliver hands one message to the local fan-out. Each connection carries
// one namespace, so the kind of message is known even where the client
// does not say it.
func (u *upstream) deliver(ev Event) {
	msg := pubsub.Message{Kind: u.ns.Kind(), Channel: ev.Channel, Payload: ev.Payload}
	if u.ns == pubsub.Patterns {
		msg.Pattern = ev.Pattern
	}
	_, _ = u.r.b.local.Deliver(u.r.ctx, msg)
}

// connected makes conn the upstream's connection and queues one
// subscribe of every name it carries (those queued for the previous
// connection, or before the first, among them). It reports false if the
// relay stopped or the upstream was retired meanwhile.
func (r *relay) connected(u *upstream, conn Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || u.retired {
		return false
	}
	u.conn = conn
	u.queue = nil
	u.inflight = nil
	var names []*entry
	for _, e := range r.entries {
		if e.up == u {
			names = append(names, e)
		}
	}
	u.subscribeLocked(names)
	u.poke()
	return true
}

// answered handles a confirmation from Redis.
func (r *relay) answered(u *upstream, ev Event) {
	ns, subscribe, ok := confirmationOf(ev.Command)
	if !ok {
		return
	}
	k := key{ns, ev.Channel}
	r.mu.Lock()
	c, i := u.matchLocked(subscribe, k)
	if !subscribe {
		moved := c == nil && r.slotMovedLocked(u, k)
		r.mu.Unlock()
		if moved {
			r.reportGap(map[pubsub.Namespace][]string{ns: {k.name}})
		}
		return
	}
	if c != nil {
		if e := c.entries[i]; e.up == u && r.entries[k] == e {
			r.confirmLocked(e)
		}
	}
	if !u.down.IsZero() {
		delete(u.awaiting, k)
		if len(u.awaiting) == 0 {
			r.figures.Resubscribes++
			r.figures.LastResubscribe = time.Since(u.down)
			u.down = time.Time{}
		}
	}
	r.mu.Unlock()
}

// slotMovedLocked handles an unsubscribe nobody asked for. On a cluster
// node's shard connection it means Redis Cluster moved the slot to another
// node: the name is routed again. It reports whether that was the case.
func (r *relay) slotMovedLocked(u *upstream, k key) bool {
	e := r.entries[k]
	if u.node == "" || k.ns != pubsub.ShardChannels || e == nil || e.up != u {
		return false
	}
	r.figures.SlotMoves++
	e.up = nil
	r.routeLaterLocked(e, u.node)
	return true
}

// matchLocked finds the oldest command in flight of that direction naming
// k and not yet answered for it, marks it answered and drops commands fully
// answered.
func (u *upstream) matchLocked(subscribe bool, k key) (*command, int) {
	for _, c := range u.inflight {
		if c.subscribe != subscribe || c.ns != k.ns {
			continue
		}
		for i, name := range c.names {
			if name == k.name && !c.answered[i] {
				c.answered[i] = true
				c.left--
				u.inflight = slices.DeleteFunc(u.inflight, func(c *command) bool { return c.left == 0 })
				return c, i
			}
		}
	}
	return nil, -1
}

// refused handles an error reply on conn: it answers the oldest command in
// flight there.
func (r *relay) refused(u *upstream, conn Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u.conn != conn || len(u.inflight) == 0 {
		return
	}
	c := u.inflight[0]
	u.inflight = u.inflight[1:]
	if !c.subscribe {
		return
	}
	for i, e := range c.entries {
		if c.answered[i] || e.up != u {
			continue
		}
		if u.node != "" && isMoved(err) {
			e.up = nil
			r.routeLaterLocked(e, u.node)
			continue
		}
		r.failLocked(e, errors.Unwrap(err))
	}
}

// lost handles a lost connection (nil: one that could not be made). The
// first loss since the connection last worked reports a gap to every
// subscription of its names and starts timing the resubscription. It
// reports whether to dial again: a cluster node's shard connection is
// retired instead, and its names are routed again, since their slots may
// have a new owner.
func (r *relay) lost(u *upstream, conn Conn) bool {
	r.mu.Lock()
	if u.retired || r.closed {
		r.mu.Unlock()
		return false
	}
	u.conn = nil
	u.inflight = nil
	gap := make(map[pubsub.Namespace][]string)
	if u.down.IsZero() && conn != nil {
		u.awaiting = make(map[key]bool)
		for k, e := range r.entries {
			if e.up == u {
				u.awaiting[k] = true
				gap[k.ns] = append(gap[k.ns], k.name)
			}
		}
		if len(u.awaiting) > 0 {
			u.down = time.Now()
			r.figures.Disconnects++
		}
	}
	retire := u.node != ""
	if retire {
		u.retired = true
		delete(r.ups, u.id)
		for _, e := range r.entries {
			if e.up == u {
				e.up = nil
				r.routeLaterLocked(e, u.node)
			}
		}
	}
	r.mu.Unlock()
	r.reportGap(gap)
	if retire {
		u.poke() // the writer sees retired and ends
		return false
	}
	if r.b.client.Cluster() {
		r.forgetSlots()
	}
	return true
}

// confirmationOf parses the kind of a confirmation push: the namespace
// it is about, and whether it confirms a subscribe.
func confirmationOf(s string) (ns pubsub.Namespace, subscribe, ok bool) {
	for _, ns := range []pubsub.Namespace{pubsub.Channels, pubsub.Patterns, pubsub.ShardChannels} {
		switch s {
		case ns.SubscribeCommand():
			return ns, true, true
		case ns.UnsubscribeCommand():
			return ns, false, true
		}
	}
	return 0, false, false
}
