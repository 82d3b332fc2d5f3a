package pubsub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	// DefaultBufferSize is the buffer size of a subscription unless
	// [WithBufferSize] says otherwise. A buffer is allocated in full when
	// the subscription is created, 56 bytes a slot (a Message, by value, so
	// that a publish allocates nothing): with 32 slots a subscription of one
	// channel takes about 2.5 KiB in all, with WithBufferSize(8) about 930
	// bytes, and about 480 bytes without slots (BenchmarkMemory). 32 lets a
	// consumer fall 32 messages behind, a burst Redis's output buffer would
	// absorb, before anything is dropped; a program with a million quiet
	// subscriptions can choose 8 and a quarter of the memory.
	DefaultBufferSize = 32

	// MaxBufferSize is the largest buffer [WithBufferSize] accepts (about
	// 940 MB of slots).
	MaxBufferSize = 1 << 24
)

var (
	// ErrClosed is returned by every method of a closed Broker or
	// Subscription.
	ErrClosed = errors.New("pubsub: closed")
	// ErrSlowConsumer is the reason a subscription under the Disconnect
	// policy was closed: its buffer was full.
	ErrSlowConsumer = errors.New("pubsub: slow consumer")
	// ErrNoArguments is returned by a subscribe call given no channel or
	// pattern, where Redis replies "wrong number of arguments".
	ErrNoArguments = errors.New("pubsub: wrong number of arguments")
	// ErrNilContext is returned by every method given a nil context.
	ErrNilContext = errors.New("pubsub: nil context")
	// ErrInvalidOption is returned when an option has a value out of its
	// documented range. A Broker made by New with such an option returns
	// it from every method.
	ErrInvalidOption = errors.New("pubsub: invalid option")
)

// Overflow is what happens to a message published to a subscription whose
// buffer is full.
type Overflow uint8

const (
	// DropNewest drops the new message for that subscription and counts it
	// in Dropped. Publish never blocks. Like Redis, delivery is at most
	// once. This is the default.
	DropNewest Overflow = iota
	// DropOldest evicts the oldest queued message to make room for the new
	// one, so a slow consumer sees the latest messages; the evicted one is
	// counted in Dropped. Publish never blocks.
	DropOldest
	// Disconnect closes the subscription, as Redis disconnects a client
	// past its output-buffer limit: its channel closes after the queued
	// messages and Err reports ErrSlowConsumer. Publish never blocks.
	Disconnect
	// Block makes Publish wait for room until its context ends (the
	// message is then dropped for that subscription and Publish returns
	// the context's error) or the subscription closes. A consumer that
	// publishes to itself from its receive loop can wait on itself, so
	// give Publish a context with a deadline.
	Block
)

// String returns the name of the policy.
func (o Overflow) String() string {
	switch o {
	case DropNewest:
		return "DropNewest"
	case DropOldest:
		return "DropOldest"
	case Disconnect:
		return "Disconnect"
	case Block:
		return "Block"
	}
	return fmt.Sprintf("Overflow(%d)", uint8(o))
}

// config holds the settings of a subscription. New takes them as the
// defaults of every subscription; NewSubscription overrides them for one.
type config struct {
	overflow   Overflow
	onDrop     func(*Subscription, Message)
	bufferSize int
	err        error

	relay        Relay // a Broker setting only; see WithRelay
	relayOptions int   // how many WithRelay options were applied
}

// Option configures a Broker (for every subscription) when given to [New],
// or one subscription when given to [Broker.NewSubscription].
type Option func(*config)

// WithBufferSize sets how many messages a subscription can hold before its
// overflow policy applies. The valid range is 0 to [MaxBufferSize]; with 0
// a message is delivered only to a consumer already waiting for it. The
// default is [DefaultBufferSize].
func WithBufferSize(n int) Option {
	return func(c *config) {
		if n < 0 || n > MaxBufferSize {
			c.err = fmt.Errorf("%w: WithBufferSize(%d): want 0 to %d", ErrInvalidOption, n, MaxBufferSize)
			return
		}
		c.bufferSize = n
	}
}

// WithOverflow sets what happens when a subscription's buffer is full:
// [DropNewest], [DropOldest], [Disconnect] or [Block]. The default is
// [DropNewest].
func WithOverflow(policy Overflow) Option {
	return func(c *config) {
		if policy > Block {
			c.err = fmt.Errorf("%w: WithOverflow(%v)", ErrInvalidOption, policy)
			return
		}
		c.overflow = policy
	}
}

// WithDropHandler sets a function called once for every message a
// subscription loses (refused by a full buffer, or evicted by DropOldest),
// so that at-most-once delivery is never silent. It runs on the publishing
// goroutine with no lock held, so it may call any method, but it delays
// that Publish while it runs. A nil fn removes the handler. The default is
// no handler; [SubscriptionStats].Dropped counts drops either way.
func WithDropHandler(fn func(s *Subscription, m Message)) Option {
	return func(c *config) { c.onDrop = fn }
}

func (c config) with(opts []Option) config {
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Stats are a Broker's figures. The cumulative ones include those of the
// subscriptions closed since.
type Stats struct {
	Published uint64 // Publish and SPublish calls that published
	Delivered uint64 // messages put in a subscription's buffer
	Dropped   uint64 // messages a subscription lost to overflow
	// Evicted and Disconnected are the drops of Dropped with those
	// reasons, as in [SubscriptionStats]; the rest were refused by a full
	// buffer.
	Evicted      uint64
	Disconnected uint64
	Gaps         uint64 // gaps reported by a relay, as SubscriptionStats.Gaps adds them up
	// Queued is the number of messages waiting in the buffers of the open
	// subscriptions, and HighWater the highest of their high-water marks.
	Queued        int
	HighWater     int
	Channels      int // channels with at least one subscriber
	Patterns      int // unique patterns subscribed to
	ShardChannels int // shard channels with at least one subscriber
	Subscriptions int // open subscriptions
}

// Broker is an in-process publish/subscribe engine with Redis Pub/Sub
// semantics. All its methods are safe for concurrent use. A Publish
// synchronizes before the receipt of the messages it queues.
//
// The zero value is a Broker with the default options, ready to use. A nil
// *Broker behaves as a closed one.
type Broker struct {
	once          sync.Once // initializes the fields below it
	cfg           config
	channels      *topicIndex
	shardChannels *topicIndex
	patterns      *patternIndex

	closed atomic.Bool
	// open is what every Publish reads first, without taking mu:
	// initialized, with valid options, and not closed.
	open atomic.Bool

	// spare holds deferral slices for reuse (see tally). A channel rather
	// than a sync.Pool: its reuse is certain, which the allocation tests
	// rely on, also under the race detector.
	spare chan *[]deferredDelivery

	mu sync.Mutex
	// guards subs and closedCounts
	subs         map[*Subscription]struct{}
	closedCounts counts // of the subscriptions closed
}

// New returns a Broker. Options set the defaults of every subscription.
// New never fails: an option with an invalid value makes every method of
// the Broker return an error wrapping [ErrInvalidOption].
func New(opts ...Option) *Broker {
	b := new(Broker)
	b.once.Do(func() { b.init(opts) })
	return b
}

func (b *Broker) init(opts []Option) {
	b.cfg = config{bufferSize: DefaultBufferSize}.with(opts)
	b.channels = newTopicIndex()
	b.shardChannels = newTopicIndex()
	b.patterns = newPatternIndex()
	b.subs = make(map[*Subscription]struct{})
	b.spare = make(chan *[]deferredDelivery, 4*runtime.GOMAXPROCS(0))
	b.open.Store(b.cfg.err == nil)
}

// ready initializes a zero Broker on first use.
func (b *Broker) ready() {
	b.once.Do(func() { b.init(nil) })
}

// checkContext returns the error a call given ctx must fail with, if any.
func checkContext(ctx context.Context) error {
	if ctx == nil {
		return ErrNilContext
	}
	return ctx.Err()
}

// check returns the error any call on b must fail with, if any. It is
// small enough to inline: one load tells an open Broker.
func (b *Broker) check(ctx context.Context) error {
	if b != nil && b.open.Load() {
		return checkContext(ctx)
	}
	return b.checkNotOpen(ctx)
}

func (b *Broker) checkNotOpen(ctx context.Context) error {
	if b == nil {
		return ErrClosed
	}
	b.ready()
	if b.cfg.err != nil {
		return b.cfg.err
	}
	if b.closed.Load() {
		return ErrClosed
	}
	return checkContext(ctx)
}

// NewSubscription returns a subscription with no channels yet; add them
// with its Subscribe, PSubscribe and SSubscribe methods. Options override
// the Broker's defaults for this subscription only.
func (b *Broker) NewSubscription(opts ...Option) (*Subscription, error) {
	if err := b.check(context.Background()); err != nil {
		return nil, err
	}
	cfg := b.cfg.with(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	if cfg.relayOptions != b.cfg.relayOptions {
		return nil, fmt.Errorf("%w: WithRelay is an option of New, not of NewSubscription", ErrInvalidOption)
	}
	return b.newSubscription(cfg, nil)
}

// newSubscription registers a new subscription; b must have been checked.
func (b *Broker) newSubscription(cfg config, fn func(context.Context, Message)) (*Subscription, error) {
	if fn != nil {
		cfg.bufferSize = 0
	}
	s := newSubscription(b, cfg)
	s.fn = fn
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// NewSubscriptionFunc returns a subscription with no channels yet that
// hands each message to fn instead of queuing it, for consumers that
// already have a queue of their own (a network connection's output
// buffer, say).
//
// fn runs on the publishing goroutine, once per delivery, with the
// context given to Publish (or SPublish, Deliver): a publisher can pass
// its consumers what they share for one publish, such as a batch to flush
// once or a message encoded once for all. It runs with no lock
// held: it may call any method, including this subscription's, but Publish
// waits for it, so it must not block. Several publishers may call it at
// once. There is no buffer, so options about buffers and overflow do not
// apply and nothing is ever dropped.
//
// Unlike a channel subscription's, fn may still be called once for a name
// by a publish already under way when Unsubscribe or Close returns: fn
// runs without a lock so that it may unsubscribe from inside itself, and
// waiting for calls under way would then wait for itself. A consumer that
// must see nothing after its unsubscribe serializes the two under a lock
// of its own and checks [Subscription.Holds] in fn, as the Redis-protocol
// server does: one read lock and one lookup per message.
//
// The subscription's Channel carries no messages; it closes when the
// subscription closes, so it still tells when the subscription ended.
func (b *Broker) NewSubscriptionFunc(fn func(ctx context.Context, m Message)) (*Subscription, error) {
	if err := b.check(context.Background()); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: NewSubscriptionFunc(nil)", ErrNoArguments)
	}
	return b.newSubscription(b.cfg, fn)
}

// Subscribe returns a new subscription to channels, live when it returns:
// every Publish that starts afterwards reaches it. Like Redis, it needs at
// least one channel; use [Broker.NewSubscription] for an empty one.
func (b *Broker) Subscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	return b.subscribe(ctx, (*Subscription).Subscribe, channels)
}

// PSubscribe returns a new subscription to Redis glob patterns, live when
// it returns. Every pattern is valid, as in Redis.
func (b *Broker) PSubscribe(ctx context.Context, patterns ...string) (*Subscription, error) {
	return b.subscribe(ctx, (*Subscription).PSubscribe, patterns)
}

// SSubscribe returns a new subscription to shard channels, live when it
// returns. Only [Broker.SPublish] reaches shard channels.
func (b *Broker) SSubscribe(ctx context.Context, channels ...string) (*Subscription, error) {
	return b.subscribe(ctx, (*Subscription).SSubscribe, channels)
}

func (b *Broker) subscribe(ctx context.Context, add func(*Subscription, context.Context, ...string) error, names []string) (*Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	s, err := b.NewSubscription()
	if err != nil {
		return nil, err
	}
	if err := add(s, ctx, names...); err != nil {
		s.close(ErrClosed)
		return nil, err
	}
	return s, nil
}

// Publish sends payload to every subscription of channel and to every
// subscription with a pattern that matches it, and returns the number of
// receivers exactly as Redis's PUBLISH does: one per subscription holding
// the channel plus one per (subscription, matching pattern) pair, whether
// or not the buffer had room. A subscription holding the channel and two
// matching patterns receives three messages.
//
// Publish never blocks unless a receiver uses the [Block] policy. It
// returns ctx.Err() without publishing if ctx has already ended. Messages
// published one after another by one goroutine reach each subscription in
// that order.
func (b *Broker) Publish(ctx context.Context, channel, payload string) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	sh, tp := b.channels.locate(channel)
	if tp == nil && b.patterns.len() == 0 {
		sh.published.Add(1) // nobody to deliver to, and nothing to set up
		return 0, nil
	}
	t := tally{spare: b.spare}
	msg := Message{Kind: KindMessage, Channel: channel, Payload: payload}
	if tp != nil {
		b.channels.deliverAt(sh, tp, &t, &msg)
		t.runDeferred(ctx)
	}
	if b.patterns.len() > 0 {
		msg.Kind = KindPMessage
		b.patterns.forEachMatch(channel, func(members []*member) {
			if len(members) > 0 {
				msg.Pattern = members[0].name // all hold the same pattern
				t.offer(members, &msg)
			}
		})
		t.runDeferred(ctx)
	}
	t.record(sh)
	return t.receivers, t.err
}

// SPublish sends payload to every subscription of the shard channel, as
// Redis's SPUBLISH does, and returns the number of receivers. Patterns
// never match shard channels. It blocks only as [Broker.Publish] does.
func (b *Broker) SPublish(ctx context.Context, shardChannel, payload string) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	t := tally{spare: b.spare}
	msg := Message{Kind: KindSMessage, Channel: shardChannel, Payload: payload}
	sh := b.shardChannels.deliver(shardChannel, &t, &msg)
	t.runDeferred(ctx)
	t.record(sh)
	return t.receivers, t.err
}

// Channels returns the channels that have at least one subscriber and
// match the Redis glob pattern, in no particular order (PUBSUB CHANNELS).
// As in go-redis, the pattern "*" lists every active channel, as PUBSUB
// CHANNELS with no pattern does; it differs from Redis's glob "*" only in
// including the empty channel name.
func (b *Broker) Channels(ctx context.Context, pattern string) ([]string, error) {
	return b.names(ctx, b.channels, pattern)
}

// ShardChannels returns the shard channels that have at least one
// subscriber and match pattern, as [Broker.Channels] does (PUBSUB
// SHARDCHANNELS).
func (b *Broker) ShardChannels(ctx context.Context, pattern string) ([]string, error) {
	return b.names(ctx, b.shardChannels, pattern)
}

func (b *Broker) names(ctx context.Context, x *topicIndex, pattern string) ([]string, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	if pattern == "*" {
		return x.names(func(string) bool { return true }), nil
	}
	m := compilePattern(pattern)
	return x.names(m.match), nil
}

// NumSub returns the number of subscriptions of each channel, zero for a
// channel nobody holds (PUBSUB NUMSUB). Pattern subscriptions are not
// counted, as in Redis.
func (b *Broker) NumSub(ctx context.Context, channels ...string) (map[string]int, error) {
	return b.numSub(ctx, b.channels, channels)
}

// ShardNumSub returns the number of subscriptions of each shard channel
// (PUBSUB SHARDNUMSUB).
func (b *Broker) ShardNumSub(ctx context.Context, channels ...string) (map[string]int, error) {
	return b.numSub(ctx, b.shardChannels, channels)
}

func (b *Broker) numSub(ctx context.Context, x *topicIndex, channels []string) (map[string]int, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(channels))
	for _, ch := range channels {
		out[ch] = x.numSub(ch)
	}
	return out, nil
}

// NumPat returns the number of unique patterns subscribed to by any
// subscription (PUBSUB NUMPAT, as Redis 6.2 and later count it).
func (b *Broker) NumPat(ctx context.Context) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	return b.patterns.len(), nil
}

// Stats returns the Broker's figures. It never blocks on publishers and
// works after Close. Delivered and Dropped add up the counts of every
// subscription, kept there so that a publish does not update a shared
// counter per delivery; so Stats takes time in proportion to the number
// of subscriptions and channels.
func (b *Broker) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	b.ready()
	st := Stats{Published: b.channels.published() + b.shardChannels.published()}
	b.mu.Lock()
	st.Subscriptions = len(b.subs)
	total := b.closedCounts
	for s := range b.subs {
		total.add(s.counts())
		st.Queued += len(s.ch)
		st.HighWater = max(st.HighWater, int(s.highWater.Load()))
	}
	b.mu.Unlock()
	st.Delivered, st.Dropped, st.Evicted, st.Disconnected, st.Gaps = total.delivered, total.dropped, total.evicted, total.disconnected, total.gaps
	st.Channels = int(b.channels.count.Load())
	st.Patterns = b.patterns.len()
	st.ShardChannels = int(b.shardChannels.count.Load())
	return st
}

// Subscriptions returns the open subscriptions, in no particular order,
// for introspection: each one's [Subscription.Stats] and
// [Subscription.Subscribed]. It never blocks on publishers, and returns
// nil after Close.
func (b *Broker) Subscriptions() []*Subscription {
	if b == nil {
		return nil
	}
	b.ready()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) == 0 {
		return nil
	}
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	return subs
}

// Close closes every subscription (their channels close after the messages
// already queued) and makes every later call return [ErrClosed]. It does
// not wait for consumers. Calling it again does nothing and returns
// ErrClosed.
func (b *Broker) Close() error {
	if b == nil {
		return ErrClosed
	}
	b.ready()
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed.Store(true)
	b.open.Store(false)
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.close(ErrClosed)
	}
	return nil
}

// forget removes a closed subscription from the registry and keeps its
// counts in the Broker's, for Stats: nothing more reaches s once close has
// waited for its publishers.
func (b *Broker) forget(s *Subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.closedCounts.add(s.counts())
	b.mu.Unlock()
}

// index returns the index that holds memberships of namespace ns.
func (b *Broker) index(ns Namespace) indexer {
	switch ns {
	case Patterns:
		return b.patterns
	case ShardChannels:
		return b.shardChannels
	}
	return b.channels
}

// indexer is what Subscription needs of an index.
type indexer interface {
	add(*member)
	remove(*member)
}
