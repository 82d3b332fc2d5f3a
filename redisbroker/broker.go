package redisbroker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/relay"
	"github.com/redis/go-redis/v9"
)

// Broker is a [pubsub.Engine] whose messages travel through Redis or Redis
// Cluster, so that every process using the same Redis sees the same
// channels. All its methods are safe for concurrent use.
type Broker struct {
	core *relay.Broker
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
	return newBroker(client, opts, false)
}

func newBroker(client redis.UniversalClient, opts []Option, owned bool) (*Broker, error) {
	set, err := relay.Resolve(opts)
	if err != nil {
		return nil, err
	}
	core, err := relay.New(newClient(client), set, owned)
	if err != nil {
		return nil, err
	}
	return &Broker{core: core}, nil
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
		return nil, relay.ErrNoAddress
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
	b, err := newBroker(client, opts, true)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
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
	return b.core.Publish(ctx, channel, payload)
}

// SPublish publishes payload to a shard channel (SPUBLISH), on the node
// that owns its slot in a cluster, and returns the number of receivers
// Redis reports: connections, as for [Broker.Publish].
func (b *Broker) SPublish(ctx context.Context, shardChannel, payload string) (int, error) {
	return b.core.SPublish(ctx, shardChannel, payload)
}

// Subscribe returns a new subscription to channels. It returns once Redis
// has confirmed every channel (at once for channels this Broker already
// holds), so a message published anywhere after it returns reaches the
// subscription; while Redis is unreachable it waits, until ctx ends.
func (b *Broker) Subscribe(ctx context.Context, channels ...string) (*pubsub.Subscription, error) {
	return b.core.Subscribe(ctx, channels...)
}

// PSubscribe returns a new subscription to Redis glob patterns, live when
// it returns as for [Broker.Subscribe].
func (b *Broker) PSubscribe(ctx context.Context, patterns ...string) (*pubsub.Subscription, error) {
	return b.core.PSubscribe(ctx, patterns...)
}

// SSubscribe returns a new subscription to shard channels, live when it
// returns as for [Broker.Subscribe]. In a cluster each shard channel is
// subscribed on the node that owns its slot, whichever nodes one
// subscription spans, and follows its slot when it moves.
func (b *Broker) SSubscribe(ctx context.Context, shardChannels ...string) (*pubsub.Subscription, error) {
	return b.core.SSubscribe(ctx, shardChannels...)
}

// NewSubscription returns a subscription holding nothing yet; options
// override the Broker's defaults for it, as in [pubsub.Broker.NewSubscription].
func (b *Broker) NewSubscription(opts ...pubsub.Option) (*pubsub.Subscription, error) {
	return b.core.NewSubscription(opts...)
}

// Channels returns the channels with subscribers matching pattern
// (PUBSUB CHANNELS; "*" lists all, as in go-redis). In a cluster it merges
// what every node reports.
func (b *Broker) Channels(ctx context.Context, pattern string) ([]string, error) {
	return b.core.Channels(ctx, pattern)
}

// ShardChannels returns the shard channels with subscribers matching
// pattern (PUBSUB SHARDCHANNELS), merged over every node in a cluster.
func (b *Broker) ShardChannels(ctx context.Context, pattern string) ([]string, error) {
	return b.core.ShardChannels(ctx, pattern)
}

// NumSub returns the number of subscribers of each channel (PUBSUB
// NUMSUB): connections, so this Broker counts once however many of its
// subscriptions hold a channel. In a cluster it sums every node's count.
func (b *Broker) NumSub(ctx context.Context, channels ...string) (map[string]int, error) {
	return b.core.NumSub(ctx, channels...)
}

// ShardNumSub returns the number of subscribers of each shard channel
// (PUBSUB SHARDNUMSUB), counted as [Broker.NumSub] counts.
func (b *Broker) ShardNumSub(ctx context.Context, shardChannels ...string) (map[string]int, error) {
	return b.core.ShardNumSub(ctx, shardChannels...)
}

// NumPat returns the number of unique patterns subscribed to (PUBSUB
// NUMPAT), summed over the nodes of a cluster.
func (b *Broker) NumPat(ctx context.Context) (int, error) {
	return b.core.NumPat(ctx)
}

// Stats returns the Broker's figures.
func (b *Broker) Stats() Stats {
	s := b.core.Stats()
	return Stats{Disconnects: s.Disconnects, Resubscribes: s.Resubscribes, LastResubscribe: s.LastResubscribe, SlotMoves: s.SlotMoves, Local: s.Local}
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
	if b == nil {
		return pubsub.ErrClosed
	}
	return b.core.Close()
}
