package pubsub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gopherpubsub/pubsub/internal/blockwait"
)

// Kind says how a message reached a subscription, as the first element of
// a Redis Pub/Sub push does.
type Kind uint8

const (
	// KindMessage is a message published to a channel the subscription
	// holds ("message").
	KindMessage Kind = iota
	// KindPMessage is a message whose channel matched one of the
	// subscription's patterns ("pmessage"); Message.Pattern says which.
	KindPMessage
	// KindSMessage is a message published with SPublish to a shard channel
	// the subscription holds ("smessage").
	KindSMessage
)

// String returns the Redis name of the kind: "message", "pmessage" or
// "smessage".
func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindPMessage:
		return "pmessage"
	case KindSMessage:
		return "smessage"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Namespace is one of the three namespaces Redis keeps names in: a
// subscription holds channels, patterns and shard channels apart, and the
// same name in two namespaces is two subscriptions.
type Namespace uint8

const (
	// Channels are exact channel names: SUBSCRIBE, reached by PUBLISH.
	Channels Namespace = iota
	// Patterns are Redis glob patterns: PSUBSCRIBE, matched by PUBLISH.
	Patterns
	// ShardChannels are Redis 7 shard channels: SSUBSCRIBE, reached by
	// SPUBLISH only.
	ShardChannels
)

// namespaceNames holds, by Namespace, its name and Redis's commands.
var namespaceNames = [...]struct{ name, subscribe, unsubscribe string }{
	Channels:      {"channels", "subscribe", "unsubscribe"},
	Patterns:      {"patterns", "psubscribe", "punsubscribe"},
	ShardChannels: {"shard channels", "ssubscribe", "sunsubscribe"},
}

// String returns "channels", "patterns" or "shard channels".
func (ns Namespace) String() string {
	if int(ns) < len(namespaceNames) {
		return namespaceNames[ns].name
	}
	return fmt.Sprintf("Namespace(%d)", uint8(ns))
}

// SubscribeCommand returns the Redis command that adds names to ns, in
// lower case as Redis names it in its confirmations: "subscribe",
// "psubscribe" or "ssubscribe".
func (ns Namespace) SubscribeCommand() string { return namespaceNames[ns%3].subscribe }

// UnsubscribeCommand returns "unsubscribe", "punsubscribe" or
// "sunsubscribe".
func (ns Namespace) UnsubscribeCommand() string { return namespaceNames[ns%3].unsubscribe }

// Kind returns the kind of the messages a subscription receives through a
// name of ns.
func (ns Namespace) Kind() Kind {
	switch ns {
	case Patterns:
		return KindPMessage
	case ShardChannels:
		return KindSMessage
	}
	return KindMessage
}

// Namespace returns the namespace of the name a message of kind k came
// through: Patterns for a pmessage (Message.Pattern), otherwise that of
// Message.Channel.
func (k Kind) Namespace() Namespace {
	switch k {
	case KindPMessage:
		return Patterns
	case KindSMessage:
		return ShardChannels
	}
	return Channels
}

// Message is one published message as one subscription receives it.
//
// A Message is a plain value: the strings are shared by every receiver of
// the same publish and are never copied per receiver.
type Message struct {
	Kind    Kind
	Channel string // the channel it was published to
	Pattern string // the matching pattern, for KindPMessage only
	Payload string
}

// SubscriptionStats are the figures of one subscription.
//
// Dropped is how a consumer learns that at-most-once delivery lost
// something: compare it with the value seen before, or set a drop handler
// with [WithDropHandler].
type SubscriptionStats struct {
	Delivered uint64 // messages put in the buffer
	Dropped   uint64 // messages lost: refused by a full buffer, or evicted from it by DropOldest
	// Evicted and Disconnected say why some of Dropped were lost: evicted
	// from the buffer by DropOldest to make room, or refused by the full
	// buffer that made the Disconnect policy close the subscription. The
	// rest of Dropped were refused by a full buffer (under Block: not
	// queued before the publisher's context ended or the subscription
	// closed).
	Evicted      uint64
	Disconnected uint64
	Queued       int // messages in the buffer now
	HighWater    int // the most messages seen queued at once: sampled every 8th delivery, exact when the buffer filled
	Capacity     int // the buffer's size
	// Gaps counts the times a relay reported that messages for one of the
	// subscription's channels or patterns may have been lost outside this
	// process (a lost connection to Redis, say; see Broker.ReportGap). It
	// stays 0 on a Broker without a relay.
	Gaps uint64

	Channels      int // channels subscribed to
	Patterns      int // patterns subscribed to
	ShardChannels int // shard channels subscribed to
}

// Subscription is one subscriber, like one Redis client in subscribed mode:
// it holds any number of channels, patterns and shard channels, and
// receives every matching message through one bounded buffer.
//
// All methods are safe for concurrent use. Use [Broker.Subscribe],
// [Broker.PSubscribe], [Broker.SSubscribe] or [Broker.NewSubscription] to
// create one; a nil or zero Subscription behaves as a closed one.
type Subscription struct {
	// A fast delivery touches the member alone (see member); these are
	// what the slower paths and sampling need most.
	ch        chan Message
	fn        func(context.Context, Message) // NewSubscriptionFunc: called instead of queuing
	delivered atomic.Uint64                  // outside the fast path, and what memberships left
	highWater atomic.Int64

	// mu guards err and members, and is held to set closed. Publish's
	// checked path holds it for reading while it sends to a Block
	// subscription's buffer, so that close cannot close the buffer under
	// it; for a func subscription it only loads closed and the member's
	// removed (fn may be called once after either, as documented). The
	// fast path holds the index's lock instead (see tally in delivery.go).
	mu       sync.RWMutex
	closed   atomic.Bool
	overflow Overflow
	onDrop   func(*Subscription, Message)
	dropped  atomic.Uint64
	gaps     atomic.Uint64
	// evicted and disconnected are the drops of Dropped with those
	// reasons; written on the drop paths only.
	evicted      atomic.Uint64
	disconnected atomic.Uint64

	b       *Broker
	err     error // why the subscription closed
	members memberships

	// opMu serializes Subscribe, Unsubscribe and close, which update both
	// this subscription and the broker's indexes. Lock order: opMu, then
	// an index lock or mu; never an index lock and mu together.
	opMu sync.Mutex

	block *blocking // Block policy only
}

// blocking is what a subscription with the Block policy needs besides:
// kept apart so that the others do not carry it (the struct size decides
// the memory per subscription).
type blocking struct {
	done     chan struct{}  // closed when the subscription starts closing
	blockers sync.WaitGroup // publishers waiting for room
}

func newSubscription(b *Broker, cfg config) *Subscription {
	s := &Subscription{b: b, overflow: cfg.overflow, onDrop: cfg.onDrop, ch: make(chan Message, cfg.bufferSize)}
	if cfg.overflow == Block {
		s.block = &blocking{done: make(chan struct{})}
	}
	return s
}

// Channel returns the channel the subscription's messages arrive on. It is
// the same channel on every call. It is closed, exactly once, when the
// subscription closes (by [Subscription.Close], [Broker.Close], or the
// [Disconnect] overflow policy); messages queued before that can still be
// received, and [Subscription.Err] then says why it closed.
func (s *Subscription) Channel() <-chan Message {
	if !s.valid() {
		ch := make(chan Message)
		close(ch)
		return ch
	}
	return s.ch
}

// valid reports whether s was made by a Broker.
func (s *Subscription) valid() bool {
	return s != nil && s.b != nil
}

// ReceiveMessage waits for the next message. It returns ctx.Err() if ctx
// ends first, and once the subscription has closed and its buffer is empty
// it returns [Subscription.Err] (which wraps [ErrClosed]).
func (s *Subscription) ReceiveMessage(ctx context.Context) (Message, error) {
	if err := checkContext(ctx); err != nil {
		return Message{}, err
	}
	if !s.valid() {
		return Message{}, ErrClosed
	}
	select {
	case m, ok := <-s.ch:
		if !ok {
			return Message{}, s.Err()
		}
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Subscribe adds channels to the subscription. When it returns, every
// Publish that starts afterwards reaches the subscription. Channels already
// held are left as they are, as in Redis. It never blocks on a publisher or
// a consumer.
func (s *Subscription) Subscribe(ctx context.Context, channels ...string) error {
	return s.subscribe(ctx, "Subscribe", Channels, channels)
}

// PSubscribe adds Redis glob patterns to the subscription. Every pattern is
// accepted, as Redis accepts every pattern; see the package doc for the
// syntax. When it returns, every Publish that starts afterwards to a
// matching channel reaches the subscription.
func (s *Subscription) PSubscribe(ctx context.Context, patterns ...string) error {
	return s.subscribe(ctx, "PSubscribe", Patterns, patterns)
}

// SSubscribe adds shard channels to the subscription. Shard channels are a
// namespace of their own (Redis 7 SSUBSCRIBE): only [Broker.SPublish]
// reaches them, and patterns never match them.
func (s *Subscription) SSubscribe(ctx context.Context, channels ...string) error {
	return s.subscribe(ctx, "SSubscribe", ShardChannels, channels)
}

// Unsubscribe removes channels from the subscription; with no arguments it
// removes every channel. Removing a channel not held is not an error, as in
// Redis. When it returns, no message of those channels is added to the
// buffer any more (except by a Block-policy publish already waiting for
// room); messages already queued are still received. The
// subscription stays open, even with nothing left: use
// [Subscription.Close] to end it.
func (s *Subscription) Unsubscribe(ctx context.Context, channels ...string) error {
	return s.unsubscribe(ctx, Channels, channels)
}

// PUnsubscribe removes patterns from the subscription, or every pattern
// when called with none, with the guarantees of [Subscription.Unsubscribe].
func (s *Subscription) PUnsubscribe(ctx context.Context, patterns ...string) error {
	return s.unsubscribe(ctx, Patterns, patterns)
}

// SUnsubscribe removes shard channels from the subscription, or every shard
// channel when called with none, with the guarantees of
// [Subscription.Unsubscribe].
func (s *Subscription) SUnsubscribe(ctx context.Context, channels ...string) error {
	return s.unsubscribe(ctx, ShardChannels, channels)
}

// Close ends the subscription: it leaves every channel, pattern and shard
// channel and closes the channel returned by [Subscription.Channel].
// Messages already queued can still be received. Close does not wait for
// the consumer; it is safe to call from the consumer's own receive loop.
// Calling it again does nothing and returns [ErrClosed].
func (s *Subscription) Close() error {
	if !s.valid() || !s.close(ErrClosed) {
		return ErrClosed
	}
	return nil
}

// Err returns nil while the subscription is open. Once it has closed it
// returns why: [ErrClosed] after Close (of the subscription or of the
// broker), or an error wrapping both [ErrSlowConsumer] and [ErrClosed]
// when the [Disconnect] policy closed it.
func (s *Subscription) Err() error {
	if !s.valid() {
		return ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.err
}

// Stats returns the subscription's figures. It never blocks on publishers.
func (s *Subscription) Stats() SubscriptionStats {
	if !s.valid() {
		return SubscriptionStats{}
	}
	s.mu.RLock()
	nc, np, ns := int(s.members.counts[Channels]), int(s.members.counts[Patterns]), int(s.members.counts[ShardChannels])
	s.mu.RUnlock()
	c := s.counts()
	return SubscriptionStats{
		Delivered:     c.delivered,
		Dropped:       c.dropped,
		Evicted:       c.evicted,
		Disconnected:  c.disconnected,
		Queued:        len(s.ch),
		HighWater:     int(s.highWater.Load()),
		Capacity:      cap(s.ch),
		Gaps:          c.gaps,
		Channels:      nc,
		Patterns:      np,
		ShardChannels: ns,
	}
}

// counts are a subscription's cumulative figures, which Broker.Stats
// adds up.
type counts struct {
	delivered, dropped, evicted, disconnected, gaps uint64
}

func (c *counts) add(o counts) {
	c.delivered += o.delivered
	c.dropped += o.dropped
	c.evicted += o.evicted
	c.disconnected += o.disconnected
	c.gaps += o.gaps
}

// counts returns s's figures, adding up its memberships' deliveries (see
// member).
func (s *Subscription) counts() counts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	delivered := s.delivered.Load()
	for _, mb := range s.members.list {
		delivered += mb.delivered.Load()
	}
	// A drop adds to dropped before its reason's counter, and the reasons
	// are read first, so that evicted + disconnected never exceed dropped.
	c := counts{delivered: delivered, evicted: s.evicted.Load(), disconnected: s.disconnected.Load()}
	c.dropped = s.dropped.Load()
	c.gaps = s.gaps.Load()
	return c
}

// Subscribed returns the channels, patterns and shard channels the
// subscription holds now, each in no particular order.
func (s *Subscription) Subscribed() (channels, patterns, shardChannels []string) {
	if !s.valid() {
		return nil, nil, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.members.names(Channels), s.members.names(Patterns), s.members.names(ShardChannels)
}

// memberships is a subscription's set of channels, patterns and shard
// channels. Most subscriptions hold a few, so it is a plain list, which
// costs a few bytes where a Go map costs hundreds; past smallMemberships
// entries a map indexes the list. Changes happen under both s.opMu and
// s.mu; reads need either.
type memberships struct {
	list   []*member
	index  map[memberKey]int // position in list, once len(list) > smallMemberships
	counts [3]int32          // by Namespace
}

type memberKey struct {
	ns   Namespace
	name string
}

const smallMemberships = 8

func (ms *memberships) find(ns Namespace, name string) (*member, int) {
	if ms.index != nil {
		if i, ok := ms.index[memberKey{ns, name}]; ok {
			return ms.list[i], i
		}
		return nil, -1
	}
	for i, mb := range ms.list {
		if mb.ns == ns && mb.name == name {
			return mb, i
		}
	}
	return nil, -1
}

func (ms *memberships) add(mb *member) {
	ms.list = append(ms.list, mb)
	ms.counts[mb.ns]++
	switch {
	case ms.index != nil:
		ms.index[memberKey{mb.ns, mb.name}] = len(ms.list) - 1
	case len(ms.list) > smallMemberships:
		ms.index = make(map[memberKey]int, 2*len(ms.list))
		for i, m := range ms.list {
			ms.index[memberKey{m.ns, m.name}] = i
		}
	}
}

func (ms *memberships) remove(i int) {
	mb, last := ms.list[i], len(ms.list)-1
	ms.list[i] = ms.list[last]
	ms.list[last] = nil
	ms.list = ms.list[:last]
	ms.counts[mb.ns]--
	if ms.index != nil {
		delete(ms.index, memberKey{mb.ns, mb.name})
		if i < last {
			ms.index[memberKey{ms.list[i].ns, ms.list[i].name}] = i
		}
	}
}

// inNamespace returns the members of ns, in no particular order.
func (ms *memberships) inNamespace(ns Namespace) []*member {
	out := make([]*member, 0, ms.counts[ns])
	for _, mb := range ms.list {
		if mb.ns == ns {
			out = append(out, mb)
		}
	}
	return out
}

func (ms *memberships) names(ns Namespace) []string {
	out := make([]string, 0, ms.counts[ns])
	for _, mb := range ms.list {
		if mb.ns == ns {
			out = append(out, mb.name)
		}
	}
	return out
}

func (s *Subscription) subscribe(ctx context.Context, op string, ns Namespace, names []string) error {
	if err := checkContext(ctx); err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: %s", ErrNoArguments, op)
	}
	_, err := s.Add(ctx, ns, nil, names...)
	return err
}

// Confirm receives what Redis's confirmation of one name of a SUBSCRIBE
// (or PSUBSCRIBE, SSUBSCRIBE and their unsubscribes) says: the name, and
// the subscription's count after it: channels + patterns, or shard
// channels for ShardChannels.
type Confirm func(name string, count int)

// Add adds names to namespace ns, as [Subscription.Subscribe],
// [Subscription.PSubscribe] and [Subscription.SSubscribe] do, and returns
// the count Redis's last confirmation would carry. If confirm is not nil,
// it is called once for every name given, in order, duplicates and names
// already held included, as Redis confirms each: once the name is live,
// and before the next one is added. confirm runs while the subscription is
// being changed: it must not call the subscription's methods. A Redis
// server queues its confirmations there, so that no message overtakes the
// confirmation of its name. With no names, Add does nothing and returns
// the count.
func (s *Subscription) Add(ctx context.Context, ns Namespace, confirm Confirm, names ...string) (int, error) {
	if err := checkContext(ctx); err != nil {
		return 0, err
	}
	if ns > ShardChannels {
		return 0, fmt.Errorf("%w: %v", ErrInvalidOption, ns)
	}
	if !s.valid() {
		return 0, ErrClosed
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	if r := s.b.cfg.relay; r != nil {
		if fresh := s.unheld(ns, names); len(fresh) > 0 {
			if err := r.Join(ctx, ns, fresh); err != nil {
				return s.countLocked(ns), err
			}
		}
	}
	for _, name := range names {
		if mb, _ := s.members.find(ns, name); mb == nil {
			mb := &member{s: s, name: name, ns: ns}
			if s.fn == nil {
				mb.ch = s.ch
			}
			s.mu.Lock()
			s.members.add(mb)
			s.mu.Unlock()
			s.b.index(ns).add(mb)
		}
		if confirm != nil {
			confirm(name, s.countLocked(ns))
		}
	}
	return s.countLocked(ns), nil
}

// countLocked is the count Redis's confirmations carry for ns. s.opMu or
// s.mu must be held.
func (s *Subscription) countLocked(ns Namespace) int {
	if ns == ShardChannels {
		return int(s.members.counts[ShardChannels])
	}
	return int(s.members.counts[Channels] + s.members.counts[Patterns])
}

// Holds reports whether the subscription holds name in namespace ns now.
// A function given to [Broker.NewSubscriptionFunc] can call it to drop a
// message of a publish that raced with the name's removal; see there.
func (s *Subscription) Holds(ns Namespace, name string) bool {
	if !s.valid() {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	mb, _ := s.members.find(ns, name)
	return mb != nil
}

// unheld returns the names of ns that s does not hold, each once, in
// their first order. s.opMu must be held.
func (s *Subscription) unheld(ns Namespace, names []string) []string {
	fresh := make([]string, 0, len(names))
	var seen map[string]struct{} // for long lists, where Contains is quadratic
	if len(names) > smallMemberships {
		seen = make(map[string]struct{}, len(names))
	}
	for _, name := range names {
		if mb, _ := s.members.find(ns, name); mb != nil {
			continue
		}
		if seen != nil {
			if _, dup := seen[name]; dup {
				continue
			}
			seen[name] = struct{}{}
		} else if slices.Contains(fresh, name) {
			continue
		}
		fresh = append(fresh, name)
	}
	return fresh
}

func (s *Subscription) unsubscribe(ctx context.Context, ns Namespace, names []string) error {
	_, err := s.Remove(ctx, ns, nil, names...)
	return err
}

// Remove removes names from namespace ns, or every name of ns when given
// none, as [Subscription.Unsubscribe] and its variants do, with their
// guarantees, and returns the count Redis's last confirmation would carry.
// If confirm is not nil, it is called once for every name given (or every
// name removed, when none is given), in order, as Redis confirms each: once
// nothing more for it is queued. It runs as in [Subscription.Add]. When no
// name is given and none is held, confirm is not called; Redis then
// confirms with a null name and the count Remove returns.
func (s *Subscription) Remove(ctx context.Context, ns Namespace, confirm Confirm, names ...string) (int, error) {
	if err := checkContext(ctx); err != nil {
		return 0, err
	}
	if ns > ShardChannels {
		return 0, fmt.Errorf("%w: %v", ErrInvalidOption, ns)
	}
	if !s.valid() {
		return 0, ErrClosed
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.isClosed() {
		return 0, ErrClosed
	}
	var left []string // for the relay, if any
	relayed := s.b.cfg.relay != nil
	leave := func(mb *member) {
		s.leaveLocked(mb)
		if relayed {
			left = append(left, mb.name)
		}
	}
	if len(names) == 0 {
		for _, mb := range s.members.inNamespace(ns) {
			leave(mb)
			if confirm != nil {
				confirm(mb.name, s.countLocked(ns))
			}
		}
	} else {
		for _, name := range names {
			if mb, _ := s.members.find(ns, name); mb != nil {
				leave(mb)
			}
			if confirm != nil {
				confirm(name, s.countLocked(ns))
			}
		}
	}
	s.tellRelay(ns, left)
	return s.countLocked(ns), nil
}

// tellRelay tells the Broker's relay, if any, that s left names of ns.
func (s *Subscription) tellRelay(ns Namespace, left []string) {
	if r := s.b.cfg.relay; r != nil && len(left) > 0 {
		r.Leave(ns, left)
	}
}

// leaveLocked ends one membership. Leaving the index waits for the fast
// deliveries under way, which hold its read lock, and keeps later ones
// away; marking mb removed under mu does the same for the checked path. So
// nothing more for mb is queued once it returns, and its count can fold
// into the subscription's in the same critical section that drops it from
// the list Stats adds up. s.opMu must be held.
func (s *Subscription) leaveLocked(mb *member) {
	s.b.index(mb.ns).remove(mb)
	s.mu.Lock()
	mb.removed.Store(true)
	s.delivered.Add(mb.delivered.Load()) // final: no fast delivery is left
	if _, i := s.members.find(mb.ns, mb.name); i >= 0 {
		s.members.remove(i)
	}
	s.mu.Unlock()
}

func (s *Subscription) isClosed() bool {
	return s.closed.Load()
}

// close closes the subscription with reason err. It reports false if the
// subscription was already closed.
func (s *Subscription) close(err error) bool {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return false
	}
	s.closed.Store(true)
	s.err = err
	if s.block != nil {
		close(s.block.done) // wakes Block-policy publishers
	}
	s.mu.Unlock()

	var left [3][]string // by Namespace, for the relay
	for len(s.members.list) > 0 {
		mb := s.members.list[len(s.members.list)-1]
		s.leaveLocked(mb)
		if s.b.cfg.relay != nil {
			left[mb.ns] = append(left[mb.ns], mb.name)
		}
	}
	for ns, names := range left {
		s.tellRelay(Namespace(ns), names)
	}
	// Fast-path publishers were waited for as each membership left its
	// index; checked-path ones see closed under mu; Block waiters have been
	// woken. Once those are gone, no send can reach ch.
	if s.block != nil {
		s.block.blockers.Wait()
	}
	close(s.ch)
	s.b.forget(s)
	return true
}

// outcome is the result of offering a message on the checked path.
type outcome uint8

const (
	outGone      outcome = iota // membership ended: not a receiver
	outDelivered                // queued, or handed to the function
	outDropped                  // not queued: counted as dropped
	outWaiting                  // handed to the publisher's blockwait.Waits
)

// offer is the checked path, for what Publish's fast path defers: a func
// subscription, or a full buffer under the Block policy. It runs with no
// index lock held, so it checks that the membership is still current: for
// a func subscription by loading the flags, for a buffer under s.mu, which
// keeps close from closing the buffer during the send. It blocks only under
// Block, until room, ctx's end or close.
func (s *Subscription) offer(ctx context.Context, mb *member, m *Message) (outcome, error) {
	if s.fn != nil {
		// No lock: fn runs without one anyway, so one taken here would
		// only narrow, not close, the window in which a publish already
		// under way calls fn after Unsubscribe or Close (documented).
		if s.closed.Load() || mb.removed.Load() {
			return outGone, nil
		}
		s.delivered.Add(1)
		s.fn(ctx, *m)
		return outDelivered, nil
	}
	s.mu.RLock()
	if s.closed.Load() || mb.removed.Load() {
		s.mu.RUnlock()
		return outGone, nil
	}
	select {
	case s.ch <- *m:
		s.noteDelivered() // under the lock: counted before Unsubscribe can return
		s.mu.RUnlock()
		return outDelivered, nil
	default:
	}
	s.block.blockers.Add(1) // only Block-policy offers get here
	s.mu.RUnlock()
	waiting := *m
	if w := blockwait.From(ctx); w != nil {
		// A publisher that must not wait (the server's loop) finishes
		// this delivery later, on a goroutine of its own; close waits
		// for it as for any blocked publisher.
		w.Add(func(ctx context.Context) { _, _ = s.offerBlocking(ctx, waiting) })
		return outWaiting, nil
	}
	return s.offerBlocking(ctx, waiting)
}

// offerBlocking waits for room. The caller registered with s.block.blockers
// while holding s.mu, so close waits for this send before closing s.ch.
func (s *Subscription) offerBlocking(ctx context.Context, m Message) (outcome, error) {
	defer s.block.blockers.Done()
	select {
	case s.ch <- m:
		s.noteDelivered()
		return outDelivered, nil
	case <-s.block.done:
		// Closed while waiting: it was a receiver when Publish began.
		s.dropped.Add(1)
		s.dropHook(m)
		return outDropped, nil
	case <-ctx.Done():
		s.dropped.Add(1)
		s.dropHook(m)
		return outDropped, ctx.Err()
	}
}

// noteDelivered counts a message queued outside the fast path. Delivery
// samples the queue length for the high-water mark on every 8th message
// only: reading it means reading the cache line the consumer is writing,
// which on a busy subscription cost more than the rest of the delivery.
func (s *Subscription) noteDelivered() {
	if s.delivered.Add(1)&7 == 0 {
		s.sampleQueue()
	}
}

func (s *Subscription) sampleQueue() {
	s.raiseHighWater(int64(len(s.ch)))
}

// noteFull records that the buffer was found full.
func (s *Subscription) noteFull() {
	s.raiseHighWater(int64(cap(s.ch)))
}

func (s *Subscription) raiseHighWater(q int64) {
	for {
		hw := s.highWater.Load()
		if q <= hw || s.highWater.CompareAndSwap(hw, q) {
			return
		}
	}
}

func (s *Subscription) dropHook(m Message) {
	if s.onDrop != nil {
		s.onDrop(s, m)
	}
}
