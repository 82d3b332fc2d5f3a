package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/relay"
	"github.com/redis/go-redis/v9"
)

// client is the relay's view of a go-redis client.
type client struct {
	c       redis.UniversalClient
	cluster *redis.ClusterClient // c, when it is one
	bounded bool

	mu    sync.Mutex
	nodes map[string]*redis.Client // a cluster's node clients by address, as last listed
}

func newClient(c redis.UniversalClient) *client {
	cl := &client{c: c, bounded: true}
	switch c := c.(type) {
	case *redis.ClusterClient:
		cl.cluster = c
		cl.bounded = !c.Options().ContextTimeoutEnabled
	case *redis.Client:
		cl.bounded = !c.Options().ContextTimeoutEnabled
	}
	return cl
}

func (c *client) Dial(ctx context.Context, ns pubsub.Namespace, node string) (relay.Conn, error) {
	switch {
	case node != "":
		n, err := c.node(ctx, node)
		if err != nil {
			return nil, err
		}
		return conn{n.SSubscribe(ctx)}, nil
	case ns == pubsub.ShardChannels:
		return conn{c.c.SSubscribe(ctx)}, nil
	default:
		return conn{c.c.Subscribe(ctx)}, nil
	}
}

// on returns the client of node, or the client itself for "".
func (c *client) on(ctx context.Context, node string) (redis.Cmdable, error) {
	if node == "" {
		return c.c, nil
	}
	return c.node(ctx, node)
}

func (c *client) node(ctx context.Context, addr string) (*redis.Client, error) {
	c.mu.Lock()
	n := c.nodes[addr]
	c.mu.Unlock()
	if n != nil {
		return n, nil
	}
	if _, err := c.Nodes(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[addr]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("redisbroker: no node %s in the cluster", addr)
}

func (c *client) Publish(ctx context.Context, node, channel, payload string) (int64, error) {
	cmd, err := c.on(ctx, node)
	if err != nil {
		return 0, err
	}
	n, err := cmd.Publish(ctx, channel, payload).Result()
	return n, wrap(err)
}

func (c *client) SPublish(ctx context.Context, shardChannel, payload string) (int64, error) {
	n, err := c.c.SPublish(ctx, shardChannel, payload).Result()
	return n, wrap(err)
}

func (c *client) Channels(ctx context.Context, node, pattern string, shard bool) ([]string, error) {
	cmd, err := c.on(ctx, node)
	if err != nil {
		return nil, err
	}
	if shard {
		names, err := cmd.PubSubShardChannels(ctx, pattern).Result()
		return names, wrap(err)
	}
	names, err := cmd.PubSubChannels(ctx, pattern).Result()
	return names, wrap(err)
}

func (c *client) NumSub(ctx context.Context, node string, names []string, shard bool) (map[string]int64, error) {
	cmd, err := c.on(ctx, node)
	if err != nil {
		return nil, err
	}
	if shard {
		counts, err := cmd.PubSubShardNumSub(ctx, names...).Result()
		return counts, wrap(err)
	}
	counts, err := cmd.PubSubNumSub(ctx, names...).Result()
	return counts, wrap(err)
}

func (c *client) NumPat(ctx context.Context, node string) (int64, error) {
	cmd, err := c.on(ctx, node)
	if err != nil {
		return 0, err
	}
	n, err := cmd.PubSubNumPat(ctx).Result()
	return n, wrap(err)
}

func (c *client) Cluster() bool { return c.cluster != nil }

func (c *client) Nodes(ctx context.Context) ([]string, error) {
	var mu sync.Mutex
	nodes := make(map[string]*redis.Client)
	var addrs []string
	err := c.cluster.ForEachShard(ctx, func(_ context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		addr := n.Options().Addr
		nodes[addr] = n
		addrs = append(addrs, addr)
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	c.mu.Lock()
	c.nodes = nodes
	c.mu.Unlock()
	return addrs, nil
}

func (c *client) Slots(ctx context.Context) ([]relay.SlotRange, error) {
	slots, err := c.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, wrap(err)
	}
	ranges := make([]relay.SlotRange, 0, len(slots))
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			ranges = append(ranges, relay.SlotRange{Start: s.Start, End: s.End, Master: s.Nodes[0].Addr})
		}
	}
	return ranges, nil
}

func (c *client) Bounded() bool { return c.bounded }

func (c *client) Close() error { return c.c.Close() }

// conn is a go-redis PubSub. go-redis would dial again and resubscribe by
// itself after a loss; the relay closes it instead and dials a new one,
// so that it knows what each connection carries.
type conn struct{ ps *redis.PubSub }

func (c conn) Send(ctx context.Context, subscribe bool, ns pubsub.Namespace, names []string) error {
	var err error
	switch {
	case subscribe && ns == pubsub.Channels:
		err = c.ps.Subscribe(ctx, names...)
	case subscribe && ns == pubsub.Patterns:
		err = c.ps.PSubscribe(ctx, names...)
	case subscribe:
		err = c.ps.SSubscribe(ctx, names...)
	case ns == pubsub.Channels:
		err = c.ps.Unsubscribe(ctx, names...)
	case ns == pubsub.Patterns:
		err = c.ps.PUnsubscribe(ctx, names...)
	default:
		err = c.ps.SUnsubscribe(ctx, names...)
	}
	return classify(err)
}

func (c conn) Ping(ctx context.Context) error { return c.ps.Ping(ctx) }

func (c conn) Receive(ctx context.Context, wait time.Duration) (relay.Event, error) {
	msg, err := c.ps.ReceiveTimeout(ctx, wait)
	if err != nil {
		return relay.Event{}, classify(err)
	}
	switch m := msg.(type) {
	case *redis.Subscription:
		return relay.Event{Kind: relay.Confirmation, Command: m.Kind, Channel: m.Channel}, nil
	case *redis.Message:
		return relay.Event{Kind: relay.Message, Channel: m.Channel, Pattern: m.Pattern, Payload: m.Payload}, nil
	default: // *redis.Pong
		return relay.Event{Kind: relay.Pong}, nil
	}
}

func (c conn) Close() error { return c.ps.Close() }

// classify tells the relay a timeout from an error reply from a loss.
func classify(err error) error {
	var ne net.Error
	var rerr redis.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ne) && ne.Timeout():
		return relay.ErrQuiet
	case errors.As(err, &rerr):
		return relay.Refused(err)
	}
	return err
}

// wrap makes go-redis's "client is closed" testable with errors.Is.
func wrap(err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("%w: %w", pubsub.ErrClosed, err)
	}
	return err
}
