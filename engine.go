package pubsub

import "context"

// Engine is the publish/subscribe API shared by the in-process [Broker]
// and by brokers that carry the same calls to an external engine, such as
// the Redis-backed one in the redisbroker module. Code written against
// Engine moves from one process to Redis or Redis Cluster by changing the
// constructor:
//
//	var e pubsub.Engine = pubsub.New()
//	// or: e, err := redisbroker.New(redis.NewClient(&redis.Options{Addr: addr}))
//
// Its methods mirror Redis's commands and go-redis's PubSub: subscriptions
// are the same [Subscription] values whichever engine made them, so their
// buffers, overflow policies and figures behave the same. What differs
// between engines is what the receiver counts count; each implementation
// documents it, and the conformance suite in package pubsubtest declares it.
type Engine interface {
	// Publish sends payload to the subscribers of channel and of every
	// matching pattern and returns the number of receivers.
	Publish(ctx context.Context, channel, payload string) (int, error)
	// SPublish sends payload to the subscribers of a shard channel.
	SPublish(ctx context.Context, shardChannel, payload string) (int, error)

	// Subscribe, PSubscribe and SSubscribe return a new subscription,
	// live when they return.
	Subscribe(ctx context.Context, channels ...string) (*Subscription, error)
	PSubscribe(ctx context.Context, patterns ...string) (*Subscription, error)
	SSubscribe(ctx context.Context, shardChannels ...string) (*Subscription, error)
	// NewSubscription returns a subscription holding nothing yet, with
	// options overriding the engine's defaults.
	NewSubscription(opts ...Option) (*Subscription, error)

	// Channels, NumSub, NumPat, ShardChannels and ShardNumSub answer as
	// PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS and SHARDNUMSUB.
	Channels(ctx context.Context, pattern string) ([]string, error)
	NumSub(ctx context.Context, channels ...string) (map[string]int, error)
	NumPat(ctx context.Context) (int, error)
	ShardChannels(ctx context.Context, pattern string) ([]string, error)
	ShardNumSub(ctx context.Context, shardChannels ...string) (map[string]int, error)

	// Close closes every subscription and the engine; later calls return
	// an error wrapping ErrClosed.
	Close() error
}

var _ Engine = (*Broker)(nil)
