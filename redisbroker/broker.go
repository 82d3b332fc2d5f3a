package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// Broker is a [pubsub.Engine] whose messages travel through Redis or Redis
// Cluster, so that every process using the same Redis sees the same
// channels. All its methods are safe for concurrent use.
type Broker struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // client, when it is one
	owned   bool                 // made by Open: closed with the Broker
	local   *pubsub.Broker       // the local fan-out; its relay is r

	r           *relay
	healthCheck time.Duration
	// bounded: the client ignores contexts for socket I/O (go-redis
	// without ContextTimeoutEnabled), so calls wait for them here.
	bounded bool
}

var _ pubsub.Engine = (*Broker)(nil)

// New returns a Broker on the user's go-redis client: a *redis.Client
// (single Redis, or Sentinel through NewFailoverClient) or a
// *redis.ClusterClient. Connection settings (TLS, ACL user, timeouts,
// protocol) are the client's. The Broker does not close the client.
//
// Every call returns by its context's deadline, whatever the client's
// options. go-redis applies a context's deadline to the socket only with
// ContextTimeoutEnabled; without it, a call on a hung Redis would wait for
// the client's ReadTimeout (3 s by default), so the Broker then waits for
// the command in a goroutine of its own and returns at the deadline while
// the command finishes in the background. Set ContextTimeoutEnabled to
// spare that goroutine. A Publish that returned a context's error may or
// may not have been delivered: the command may have reached Redis.
//
// New does not contact Redis: the first subscription opens the shared
// upstream connection.
func New(client redis.UniversalClient, opts ...Option) (*Broker, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: redisbroker.New(nil)", pubsub.ErrInvalidOption)
	}
	set, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	b := &Broker{client: client, healthCheck: set.healthCheck, bounded: true}
	switch c := client.(type) {
	case *redis.ClusterClient:
		b.cluster = c
		b.bounded = !c.Options().ContextTimeoutEnabled
	case *redis.Client:
		b.bounded = !c.Options().ContextTimeoutEnabled
	}
	b.r = newRelay(b)
	b.local = pubsub.New(append(set.engine, pubsub.WithRelay(b.r))...)
	probe, err := b.local.NewSubscription()
	if err != nil {
		return nil, err // an invalid option
	}
	_ = probe.Close()
	return b, nil
}

// Open connects to the Redis at addrs and returns a Broker that owns the
// connection. One address of a Redis Cluster node is enough: Open asks the
// node whether cluster mode is enabled and, if so, uses a
// *redis.ClusterClient seeded with every address given.
func Open(ctx context.Context, addrs []string, opts ...Option) (*Broker, error) {
	if ctx == nil {
		return nil, pubsub.ErrNilContext
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: Open needs an address", pubsub.ErrNoArguments)
	}
	single := redis.NewClient(&redis.Options{Addr: addrs[0]})
	info, err := single.Info(ctx, "cluster").Result()
	if err != nil {
		_ = single.Close()
		return nil, fmt.Errorf("redisbroker: %s: %w", addrs[0], err)
	}
	var client redis.UniversalClient = single
	if clusterEnabled(info) {
		_ = single.Close()
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	}
	b, err := New(client, opts...)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

func clusterEnabled(info string) bool {
	for _, line := range strings.Split(info, "\n") {
		if strings.TrimSpace(line) == "cluster_enabled:1" {
			return true
		}
	}
	return false
}

// Publish publishes payload to channel on Redis and returns the number of
// receivers Redis reports. Redis counts connections: all the local
// subscriptions of one Broker share one connection, so they count once
// for the channel and once per matching pattern, however many hold them.
// In a cluster only the clients of the node that received the PUBLISH are
// counted: the node that owns the channel's name as a key's slot, which
// keeps the messages of one publisher to one channel in order.
func (b *Broker) Publish(ctx context.Context, channel, payload string) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var c redis.Cmdable = b.client
	if b.cluster != nil {
		// Any node accepts a PUBLISH; always using the node of the
		// channel's slot keeps one publisher's messages to a channel in
		// order, since one node forwards them over one cluster link.
		var node *redis.Client
		err := b.call(ctx, func(ctx context.Context) (err error) {
			node, err = b.cluster.MasterForKey(ctx, channel)
			return err
		})
		if err != nil {
			return 0, wrap(err)
		}
		c = node
	}
	var n int64
	err := b.call(ctx, func(ctx context.Context) (err error) {
		n, err = c.Publish(ctx, channel, payload).Result()
		return err
	})
	if err != nil {
		return 0, wrap(err)
	}
	return int(n), nil
}

// SPublish publishes payload to a shard channel (SPUBLISH), on the node
// that owns its slot in a cluster, and returns the number of receivers
// Redis reports: connections, as for [Broker.Publish].
func (b *Broker) SPublish(ctx context.Context, shardChannel, payload string) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := b.call(ctx, func(ctx context.Context) (err error) {
		n, err = b.client.SPublish(ctx, shardChannel, payload).Result()
		return err
	})
	if err != nil {
		return 0, wrap(err)
	}
	return int(n), nil
}

// Subscribe returns a new subscription to channels. It returns once Redis
// has confirmed every channel (at once for channels this Broker already
// holds), so a message published anywhere after it returns reaches the
// subscription; while Redis is unreachable it waits, until ctx ends.
func (b *Broker) Subscribe(ctx context.Context, channels ...string) (*pubsub.Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.local.Subscribe(ctx, channels...)
}

// PSubscribe returns a new subscription to Redis glob patterns, live when
// it returns as for [Broker.Subscribe].
func (b *Broker) PSubscribe(ctx context.Context, patterns ...string) (*pubsub.Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.local.PSubscribe(ctx, patterns...)
}

// SSubscribe returns a new subscription to shard channels, live when it
// returns as for [Broker.Subscribe]. In a cluster each shard channel is
// subscribed on the node that owns its slot, whichever nodes one
// subscription spans, and follows its slot when it moves.
func (b *Broker) SSubscribe(ctx context.Context, shardChannels ...string) (*pubsub.Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.local.SSubscribe(ctx, shardChannels...)
}

// NewSubscription returns a subscription holding nothing yet; options
// override the Broker's defaults for it, as in [pubsub.Broker.NewSubscription].
func (b *Broker) NewSubscription(opts ...pubsub.Option) (*pubsub.Subscription, error) {
	if err := b.check(context.Background()); err != nil {
		return nil, err
	}
	return b.local.NewSubscription(opts...)
}

// Channels returns the channels with subscribers matching pattern
// (PUBSUB CHANNELS; "*" lists all, as in go-redis). In a cluster it merges
// what every node reports.
func (b *Broker) Channels(ctx context.Context, pattern string) ([]string, error) {
	return b.listNames(ctx, func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		return c.PubSubChannels(ctx, pattern).Result()
	})
}

// ShardChannels returns the shard channels with subscribers matching
// pattern (PUBSUB SHARDCHANNELS), merged over every node in a cluster.
func (b *Broker) ShardChannels(ctx context.Context, pattern string) ([]string, error) {
	return b.listNames(ctx, func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		return c.PubSubShardChannels(ctx, pattern).Result()
	})
}

// NumSub returns the number of subscribers of each channel (PUBSUB
// NUMSUB): connections, so this Broker counts once however many of its
// subscriptions hold a channel. In a cluster it sums every node's count.
func (b *Broker) NumSub(ctx context.Context, channels ...string) (map[string]int, error) {
	return b.sumCounts(ctx, channels, func(ctx context.Context, c redis.Cmdable) (map[string]int64, error) {
		return c.PubSubNumSub(ctx, channels...).Result()
	})
}

// ShardNumSub returns the number of subscribers of each shard channel
// (PUBSUB SHARDNUMSUB), counted as [Broker.NumSub] counts.
func (b *Broker) ShardNumSub(ctx context.Context, shardChannels ...string) (map[string]int, error) {
	return b.sumCounts(ctx, shardChannels, func(ctx context.Context, c redis.Cmdable) (map[string]int64, error) {
		return c.PubSubShardNumSub(ctx, shardChannels...).Result()
	})
}

// NumPat returns the number of unique patterns subscribed to (PUBSUB
// NUMPAT), summed over the nodes of a cluster.
func (b *Broker) NumPat(ctx context.Context) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var mu sync.Mutex
	total := 0
	err := b.eachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
		n, err := c.PubSubNumPat(ctx).Result()
		mu.Lock()
		total += int(n)
		mu.Unlock()
		return err
	})
	if err != nil {
		return 0, wrap(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return total, nil
}

// Stats returns the Broker's figures.
func (b *Broker) Stats() Stats {
	s := b.r.stats()
	s.Local = b.local.Stats()
	return s
}

// Stats are the figures of a Broker.
type Stats struct {
	// Disconnects counts upstream connections found lost while they held
	// subscriptions. Each one reported a gap to the subscriptions
	// concerned (pubsub.SubscriptionStats.Gaps).
	Disconnects uint64
	// Resubscribes counts the times every name of a lost connection was
	// confirmed again, and LastResubscribe is how long the last one took
	// from the moment the loss was seen.
	Resubscribes    uint64
	LastResubscribe time.Duration
	// SlotMoves counts shard channels that Redis Cluster unsubscribed
	// because their slot moved to another node, and that were subscribed
	// again on the new owner.
	SlotMoves uint64
	// Local are the figures of the local fan-out: Published counts the
	// messages that arrived from Redis, one per message or pmessage.
	Local pubsub.Stats
}

// Close closes every subscription, the upstream connections and, if Open
// made it, the client. It does not wait for consumers, nor for Redis: a
// Subscribe waiting for Redis returns ErrClosed at once. Calling it again
// returns an error wrapping [pubsub.ErrClosed].
func (b *Broker) Close() error {
	if b == nil || !b.r.close() {
		return pubsub.ErrClosed
	}
	// The relay first: a Join waiting for Redis holds its subscription's
	// lock, which closing the subscription takes.
	b.r.cancel()
	_ = b.local.Close()
	b.r.stop()
	if b.owned {
		_ = b.client.Close()
	}
	return nil
}

func (b *Broker) check(ctx context.Context) error {
	if ctx == nil {
		return pubsub.ErrNilContext
	}
	if b == nil || b.r.isClosed() {
		return pubsub.ErrClosed
	}
	return ctx.Err()
}

// maxNodeCalls is how many nodes of a cluster are asked at once.
const maxNodeCalls = 16

// eachNode runs fn on the client, or on every node of a cluster (masters
// and replicas, since subscribers may use either), at most maxNodeCalls at
// once; the first error cancels the calls still running and is returned.
func (b *Broker) eachNode(ctx context.Context, fn func(context.Context, redis.Cmdable) error) error {
	return b.call(ctx, func(ctx context.Context) error {
		if b.cluster == nil {
			return fn(ctx, b.client)
		}
		var mu sync.Mutex
		var nodes []*redis.Client
		err := b.cluster.ForEachShard(ctx, func(_ context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			nodes = append(nodes, c)
			return nil
		})
		if err != nil {
			return err
		}
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(maxNodeCalls)
		for _, node := range nodes {
			g.Go(func() error { return fn(ctx, node) })
		}
		return g.Wait()
	})
}

// call runs fn, and returns by ctx's end even if the client would make fn
// wait past it (see New). What fn writes must be read only when call
// returned nil or fn's own error: after ctx's error, fn may still run.
func (b *Broker) call(ctx context.Context, fn func(context.Context) error) error {
	if !b.bounded || ctx.Done() == nil {
		return fn(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Broker) listNames(ctx context.Context, list func(context.Context, redis.Cmdable) ([]string, error)) ([]string, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	seen := make(map[string]struct{})
	out := []string{}
	err := b.eachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
		names, err := list(ctx, c)
		mu.Lock()
		defer mu.Unlock()
		for _, n := range names {
			if _, dup := seen[n]; !dup {
				seen[n] = struct{}{}
				out = append(out, n)
			}
		}
		return err
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

func (b *Broker) sumCounts(ctx context.Context, names []string, count func(context.Context, redis.Cmdable) (map[string]int64, error)) (map[string]int, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(names))
	for _, n := range names {
		out[n] = 0
	}
	if len(names) == 0 {
		return out, nil
	}
	var mu sync.Mutex
	err := b.eachNode(ctx, func(ctx context.Context, c redis.Cmdable) error {
		counts, err := count(ctx, c)
		mu.Lock()
		defer mu.Unlock()
		for n, k := range counts {
			out[n] += int(k)
		}
		return err
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

// wrap makes go-redis's "client is closed" testable with errors.Is.
func wrap(err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%w: %w", pubsub.ErrClosed, err)
	}
	return err
}
