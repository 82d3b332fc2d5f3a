package redisbroker

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/redis/go-redis/v9"
)

// upstream is one connection to Redis in subscribed mode, shared by every
// local subscription of its names. It has two goroutines: the writer sends
// queued commands in order, the receiver reads confirmations and messages.
// go-redis's PubSub reconnects and resubscribes after a lost connection;
// the receiver notices the loss, reports the gap and times the
// resubscription.
type upstream struct {
	r    *relay
	id   string
	ns   pubsub.Namespace // the names it carries
	addr string           // the node, for a cluster node's shard connection
	ps   *redis.PubSub
	wake chan struct{} // the writer has commands to send

	// guarded by r.mu
	queue    []*command   // to send, in order
	inflight []*command   // sent and not fully answered, oldest first
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

func (u *upstream) subscribeLocked(entries []*entry) {
	if len(entries) == 0 {
		return
	}
	c := &command{subscribe: true, ns: entries[0].key.ns, entries: entries}
	for _, e := range entries {
		c.names = append(c.names, e.key.name)
	}
	u.enqueueLocked(c)
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

// write sends the queued commands in order. A command is recorded as in
// flight before it is written, so its answer always finds it. A failed
// write needs no retry: go-redis remembers every name and subscribes them
// again when it reconnects.
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
			if len(u.queue) == 0 {
				u.r.mu.Unlock()
				break
			}
			c := u.queue[0]
			u.queue[0] = nil
			u.queue = u.queue[1:]
			u.inflight = append(u.inflight, c)
			u.r.mu.Unlock()
			_ = u.send(c)
		}
	}
}

func (u *upstream) send(c *command) error {
	ctx := u.r.ctx
	switch {
	case c.subscribe && c.ns == pubsub.Channels:
		return u.ps.Subscribe(ctx, c.names...)
	case c.subscribe && c.ns == pubsub.Patterns:
		return u.ps.PSubscribe(ctx, c.names...)
	case c.subscribe:
		return u.ps.SSubscribe(ctx, c.names...)
	case c.ns == pubsub.Channels:
		return u.ps.Unsubscribe(ctx, c.names...)
	case c.ns == pubsub.Patterns:
		return u.ps.PUnsubscribe(ctx, c.names...)
	default:
		return u.ps.SUnsubscribe(ctx, c.names...)
	}
}

// receive reads from the connection until the relay stops or the
// upstream is retired. A connection silent for the health-check interval
// is sent a PING; one that answers nothing within as long again is taken
// for lost: go-redis drops it when a read past its context's deadline
// fails, and dials again on the next read.
func (u *upstream) receive() {
	defer u.r.wg.Done()
	ctx := u.r.ctx
	interval := u.r.b.healthCheck
	failures := 0
	pinged := false // a PING is out and nothing has come since
	for {
		var msg any
		var err error
		if !pinged {
			msg, err = u.ps.ReceiveTimeout(ctx, interval)
			if isTimeout(err) && ctx.Err() == nil {
				_ = u.ps.Ping(ctx)
				pinged = true
				continue
			}
		} else {
			probe, cancel := context.WithTimeout(ctx, interval)
			msg, err = u.ps.Receive(probe)
			cancel()
			pinged = false
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			switch {
			case errors.Is(err, redis.ErrClosed):
				return
			case isRedisError(err):
				u.r.refused(u, err)
				continue
			}
			if !u.r.lost(u) {
				return
			}
			failures++
			if !u.r.sleep(backoff(failures)) {
				return
			}
			continue
		}
		failures = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			u.r.answered(u, m)
		case *redis.Message:
			u.deliver(m)
		}
	}
}

// isTimeout reports whether err is a read that passed its deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// deliver hands one message to the local fan-out. Each connection carries
// one namespace, so the kind of message is known even where go-redis does not say
// it (an smessage looks like a message; a pmessage of the empty pattern
// like a message of the empty channel).
func (u *upstream) deliver(m *redis.Message) {
	msg := pubsub.Message{Kind: u.ns.Kind(), Channel: m.Channel, Payload: m.Payload}
	if u.ns == pubsub.Patterns {
		msg.Pattern = m.Pattern
	}
	_, _ = u.r.b.local.Deliver(u.r.ctx, msg)
}

// answered handles a confirmation from Redis.
func (r *relay) answered(u *upstream, m *redis.Subscription) {
	ns, subscribe, ok := confirmationOf(m.Kind)
	if !ok {
		return
	}
	k := key{ns, m.Channel}
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
	var e *entry
	if c != nil {
		e = c.entries[i]
	} else {
		e = r.entries[k] // a resubscription after a reconnect
	}
	if e != nil && e.up == u && r.entries[k] == e {
		r.confirmLocked(e)
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
	if u.addr == "" || k.ns != pubsub.ShardChannels || e == nil || e.up != u {
		return false
	}
	r.figures.SlotMoves++
	e.up = nil
	r.routeLaterLocked(e, u.addr)
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

// refused handles an error reply: it answers the oldest command in flight.
func (r *relay) refused(u *upstream, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(u.inflight) == 0 {
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
		if u.addr != "" && isMoved(err) {
			e.up = nil
			r.routeLaterLocked(e, u.addr)
			continue
		}
		r.failLocked(e, err)
	}
}

// lost handles a lost connection. The first loss since the connection last
// worked reports a gap to every subscription of its names and starts
// timing the resubscription. It reports whether the receiver goes on: a
// cluster node's shard connection is retired instead, and its names are
// routed again, since their slots may have a new owner.
func (r *relay) lost(u *upstream) bool {
	r.mu.Lock()
	if u.retired || r.closed {
		r.mu.Unlock()
		return false
	}
	u.inflight = nil
	gap := make(map[pubsub.Namespace][]string)
	if u.down.IsZero() {
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
	retire := u.addr != ""
	if retire {
		u.retired = true
		delete(r.ups, u.id)
		for _, e := range r.entries {
			if e.up == u {
				e.up = nil
				r.routeLaterLocked(e, u.addr)
			}
		}
	}
	r.mu.Unlock()
	r.reportGap(gap)
	if retire {
		_ = u.ps.Close()
		u.poke() // the writer sees retired and ends
		return false
	}
	if r.b.cluster != nil {
		r.reloadCluster()
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
