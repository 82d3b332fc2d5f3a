package rueidisbroker

import (
	"context"
	"fmt"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/relay"
	"github.com/redis/rueidis"
)

// Broker is a [pubsub.Engine] whose messages travel through Redis or Redis
// Cluster, so that every process using the same Redis sees the same
// channels. All its methods are safe for concurrent use.
type Broker struct {
	core *relay.Broker
}

var _ pubsub.Engine = (*Broker)(nil)

// New returns a Broker on the user's rueidis client, single Redis,
// Sentinel or Redis Cluster (rueidis finds out which). Connection settings
// (TLS, ACL user, timeouts, protocol) are the client's. The Broker does
// not close the client.
//
// Every call returns by its context's deadline, as rueidis does. A
// Publish that returned a context's error may or may not have been
// delivered: the command may have reached Redis.
//
// New does not contact Redis: the first subscription opens the shared
// upstream connection, a dedicated connection of the client's
// (DedicatedClient with pub/sub hooks).
func New(client rueidis.Client, opts ...Option) (*Broker, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: rueidisbroker.New(nil)", pubsub.ErrInvalidOption)
	}
	return newBroker(client, opts, false)
}

func newBroker(c rueidis.Client, opts []Option, owned bool) (*Broker, error) {
	set, err := relay.Resolve(opts)
	if err != nil {
		return nil, err
	}
	core, err := relay.New(client{c}, set, owned)
	if err != nil {
		return nil, err
	}
	return &Broker{core: core}, nil
}

// Open connects to the Redis at addrs and returns a Broker that owns the
// client. One address of a Redis Cluster node is enough: rueidis finds
// the others. ctx bounds nothing rueidis does (it dials with its own
// timeouts); Open returns its error if it has ended.
func Open(ctx context.Context, addrs []string, opts ...Option) (*Broker, error) {
	if ctx == nil {
		return nil, pubsub.ErrNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, relay.ErrNoAddress
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs})
	if err != nil {
		return nil, fmt.Errorf("rueidisbroker: %v: %w", addrs, err)
	}
	b, err := newBroker(c, opts, true)
	if err != nil {
		c.Close()
		return nil, err
	}
	return b, nil
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
