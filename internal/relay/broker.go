package relay

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
	"golang.org/x/sync/errgroup"
)

// Broker is the pubsub.Engine the adapters wrap: a local fan-out whose
// relay subscribes on Redis through a Client. Its methods are the
// adapters' methods; their doc comments say what callers may rely on.
type Broker struct {
	client      Client
	owned       bool           // closed with the Broker
	local       *pubsub.Broker // the local fan-out; its relay is r
	r           *relay
	healthCheck time.Duration
}

var _ pubsub.Engine = (*Broker)(nil)

// New returns a Broker on client; if owned, Close closes the client.
func New(client Client, set Settings, owned bool) (*Broker, error) {
	b := &Broker{client: client, owned: owned, healthCheck: set.HealthCheck}
	b.r = newRelay(b)
	b.local = pubsub.New(append(set.Engine, pubsub.WithRelay(b.r))...)
	probe, err := b.local.NewSubscription()
	if err != nil {
		return nil, err // an invalid option
	}
	_ = probe.Close()
	return b, nil
}

// Publish sends PUBLISH; in a cluster, to the master of the channel's
// slot, which keeps one publisher's messages to a channel in order (one
// node forwards them over one cluster link).
func (b *Broker) Publish(ctx context.Context, channel, payload string) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := b.call(ctx, func(ctx context.Context) error {
		node := ""
		if b.client.Cluster() {
			var err error
			if node, err = b.r.owner(ctx, channel); err != nil {
				return err
			}
		}
		var err error
		n, err = b.client.Publish(ctx, node, channel, payload)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// SPublish sends SPUBLISH.
func (b *Broker) SPublish(ctx context.Context, shardChannel, payload string) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := b.call(ctx, func(ctx context.Context) (err error) {
		n, err = b.client.SPublish(ctx, shardChannel, payload)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// Subscribe returns a subscription, live when it returns.
func (b *Broker) Subscribe(ctx context.Context, channels ...string) (*pubsub.Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.local.Subscribe(ctx, channels...)
}

// PSubscribe returns a pattern subscription, live when it returns.
func (b *Broker) PSubscribe(ctx context.Context, patterns ...string) (*pubsub.Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.local.PSubscribe(ctx, patterns...)
}

// SSubscribe returns a shard channel subscription, live when it returns.
func (b *Broker) SSubscribe(ctx context.Context, shardChannels ...string) (*pubsub.Subscription, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	return b.local.SSubscribe(ctx, shardChannels...)
}

// NewSubscription returns a subscription holding nothing yet.
func (b *Broker) NewSubscription(opts ...pubsub.Option) (*pubsub.Subscription, error) {
	if err := b.check(context.Background()); err != nil {
		return nil, err
	}
	return b.local.NewSubscription(opts...)
}

// Channels merges PUBSUB CHANNELS over every node.
func (b *Broker) Channels(ctx context.Context, pattern string) ([]string, error) {
	return b.listNames(ctx, pattern, false)
}

// ShardChannels merges PUBSUB SHARDCHANNELS over every node.
func (b *Broker) ShardChannels(ctx context.Context, pattern string) ([]string, error) {
	return b.listNames(ctx, pattern, true)
}

// NumSub sums PUBSUB NUMSUB over every node.
func (b *Broker) NumSub(ctx context.Context, channels ...string) (map[string]int, error) {
	return b.sumCounts(ctx, channels, false)
}

// ShardNumSub sums PUBSUB SHARDNUMSUB over every node.
func (b *Broker) ShardNumSub(ctx context.Context, shardChannels ...string) (map[string]int, error) {
	return b.sumCounts(ctx, shardChannels, true)
}

// NumPat sums PUBSUB NUMPAT over every node.
func (b *Broker) NumPat(ctx context.Context) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	var mu sync.Mutex
	total := 0
	err := b.eachNode(ctx, func(ctx context.Context, node string) error {
		n, err := b.client.NumPat(ctx, node)
		mu.Lock()
		total += int(n)
		mu.Unlock()
		return err
	})
	if err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	return total, nil
}

// Stats returns the relay's figures and the local fan-out's.
func (b *Broker) Stats() Stats {
	s := b.r.stats()
	s.Local = b.local.Stats()
	return s
}

// Close closes every subscription, the upstream connections and an owned
// client, without waiting for Redis.
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

// eachNode runs fn on the client (node ""), or on every node of a cluster
// (masters and replicas, since subscribers may use either), at most
// maxNodeCalls at once; the first error cancels the calls still running
// and is returned.
func (b *Broker) eachNode(ctx context.Context, fn func(ctx context.Context, node string) error) error {
	return b.call(ctx, func(ctx context.Context) error {
		if !b.client.Cluster() {
			return fn(ctx, "")
		}
		nodes, err := b.client.Nodes(ctx)
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
// wait past it (Client.Bounded). What fn writes must be read only when
// call returned nil or fn's own error: after ctx's error, fn may still run.
func (b *Broker) call(ctx context.Context, fn func(context.Context) error) error {
	if !b.client.Bounded() || ctx.Done() == nil {
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

func (b *Broker) listNames(ctx context.Context, pattern string, shard bool) ([]string, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	seen := make(map[string]struct{})
	out := []string{}
	err := b.eachNode(ctx, func(ctx context.Context, node string) error {
		names, err := b.client.Channels(ctx, node, pattern, shard)
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
		return nil, err
	}
	return out, nil
}

func (b *Broker) sumCounts(ctx context.Context, names []string, shard bool) (map[string]int, error) {
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
	err := b.eachNode(ctx, func(ctx context.Context, node string) error {
		counts, err := b.client.NumSub(ctx, node, names, shard)
		mu.Lock()
		defer mu.Unlock()
		for n, k := range counts {
			out[n] += int(k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ErrNoAddress is wrapped by the adapters' Open without an address.
var ErrNoAddress = fmt.Errorf("%w: Open needs an address", pubsub.ErrNoArguments)
