package relay

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// relay is a Broker's pubsub.Relay: it counts the local subscriptions of
// every channel, pattern and shard channel, subscribes on Redis when the
// first one arrives and unsubscribes when the last one leaves, and hands
// what Redis sends to the local fan-out.
//
// All the bookkeeping is under mu, and no network call is made under it:
// commands are queued, in the order decided under mu, to the writer of
// their upstream connection. That order is what makes a subscribe racing
// the last leaver's unsubscribe safe: Redis sees UNSUBSCRIBE, then
// SUBSCRIBE, and the name stays subscribed.
type relay struct {
	b      *Broker
	ctx    context.Context // ends at Close: stops loops and waits
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // guards everything below
	closed  bool
	entries map[key]*entry
	ups     map[string]*upstream // by upstream id
	figures Stats

	slotsMu sync.Mutex // guards slots
	slots   *slotMap   // nil until read, and after a change is seen
}

type key struct {
	ns   pubsub.Namespace
	name string
}

// entry is one name held by at least one local subscription.
type entry struct {
	key   key
	refs  int           // local subscriptions holding it
	up    *upstream     // where it is subscribed; nil while being routed
	ready chan struct{} // closed once Redis confirmed it, or it failed
	err   error         // why it failed, set before ready closes
	done  bool          // ready is closed
}

func newRelay(b *Broker) *relay {
	ctx, cancel := context.WithCancel(context.Background())
	return &relay{b: b, ctx: ctx, cancel: cancel, entries: make(map[key]*entry), ups: make(map[string]*upstream)}
}

// Join implements pubsub.Relay: it takes a reference on every name, places
// the new ones on their upstream connection, and waits until Redis has
// confirmed them all.
func (r *relay) Join(ctx context.Context, ns pubsub.Namespace, names []string) error {
	held := make([]*entry, 0, len(names))
	var fresh []*entry
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return pubsub.ErrClosed
	}
	for _, name := range names {
		k := key{ns, name}
		e := r.entries[k]
		if e == nil {
			e = &entry{key: k, ready: make(chan struct{})}
			r.entries[k] = e
			fresh = append(fresh, e)
		}
		e.refs++
		held = append(held, e)
	}
	r.placeLocked(fresh)
	r.mu.Unlock()

	for _, e := range held {
		select {
		case <-e.ready:
			if e.err == nil {
				continue
			}
			r.release(held)
			return e.err
		case <-ctx.Done():
			r.release(held)
			return ctx.Err()
		case <-r.ctx.Done():
			r.release(held)
			return pubsub.ErrClosed
		}
	}
	return nil
}

// Leave implements pubsub.Relay.
func (r *relay) Leave(ns pubsub.Namespace, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range names {
		if e := r.entries[key{ns, name}]; e != nil {
			r.dropRefLocked(e)
		}
	}
}

// release gives back the references a failed Join took.
func (r *relay) release(held []*entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range held {
		r.dropRefLocked(e)
	}
}

func (r *relay) dropRefLocked(e *entry) {
	e.refs--
	if e.refs > 0 {
		return
	}
	if r.entries[e.key] == e {
		delete(r.entries, e.key)
	}
	if e.up != nil && !r.closed {
		e.up.unsubscribeLocked(e.key)
	}
	e.up = nil
}

// placeLocked subscribes new entries on the connection for their
// namespace: one for channels, one for patterns and one for shard
// channels, because client libraries do not all say which kind a message
// is (an smessage looks like a message, and so does a pmessage of the
// empty pattern). In a cluster a shard channel goes to its slot's owner
// instead (routeLaterLocked).
func (r *relay) placeLocked(fresh []*entry) {
	if len(fresh) == 0 {
		return
	}
	ns := fresh[0].key.ns
	if ns == pubsub.ShardChannels && r.b.client.Cluster() {
		for _, e := range fresh {
			r.routeLaterLocked(e, "")
		}
		return
	}
	u := r.upstreamLocked(ns, "")
	for _, e := range fresh {
		e.up = u
	}
	u.subscribeLocked(fresh)
}

func (r *relay) confirmLocked(e *entry) {
	if !e.done {
		e.done = true
		close(e.ready)
	}
}

// failLocked ends e's wait with err and forgets it, so that the next Join
// of the name starts afresh.
func (r *relay) failLocked(e *entry, err error) {
	if e.done {
		return
	}
	e.err = err
	r.confirmLocked(e)
	if r.entries[e.key] == e {
		delete(r.entries, e.key)
	}
	if e.up != nil {
		e.up.unsubscribeLocked(e.key)
		e.up = nil
	}
}

func (r *relay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// close marks the relay closed; it reports false if it already was.
func (r *relay) close() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.closed = true
	return true
}

// stop ends every upstream connection and waits for their goroutines.
func (r *relay) stop() {
	r.cancel()
	r.mu.Lock()
	var conns []Conn
	for _, u := range r.ups {
		if u.conn != nil {
			conns = append(conns, u.conn)
		}
	}
	r.mu.Unlock()
	// At once: closing one may wait for a Redis that hangs.
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() { _ = c.Close() })
	}
	closing.Wait()
	r.wg.Wait()
}

func (r *relay) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.figures
}

// reportGap tells the local subscriptions of the names that messages may
// have been lost.
func (r *relay) reportGap(names map[pubsub.Namespace][]string) {
	for ns, list := range names {
		r.b.local.ReportGap(ns, list...)
	}
}

// upstreamLocked returns the upstream connection for the names of ns,
// starting it if needed; node is the cluster master whose shard channels
// it carries, or "".
func (r *relay) upstreamLocked(ns pubsub.Namespace, node string) *upstream {
	id := ns.String() + "@" + node
	if u := r.ups[id]; u != nil {
		return u
	}
	u := &upstream{r: r, id: id, ns: ns, node: node, wake: make(chan struct{}, 1)}
	r.ups[id] = u
	r.wg.Add(2)
	go u.run()
	go u.write()
	return u
}

// isMoved reports whether err is Redis Cluster telling that a slot is
// elsewhere or not served right now: worth routing again, not failing.
func isMoved(err error) bool {
	msg := err.Error()
	for _, p := range []string{"MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// backoff returns the wait before retry number attempt (from 0): it
// doubles from 10 ms up to 250 ms, so that a Redis back after a restart is
// found within a quarter of a second, at four dials a second at most.
func backoff(attempt int) time.Duration {
	if attempt == 0 {
		return 0
	}
	d := 10 * time.Millisecond << min(attempt-1, 5)
	return min(d, 250*time.Millisecond)
}

// sleep waits d or until the relay stops; it reports whether to go on.
func (r *relay) sleep(d time.Duration) bool {
	if d <= 0 {
		return r.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// Stats are the relay's figures; the adapters' Stats document them.
type Stats struct {
	Disconnects     uint64
	Resubscribes    uint64
	LastResubscribe time.Duration
	SlotMoves       uint64
	Local           pubsub.Stats
}
