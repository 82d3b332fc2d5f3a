package redisbroker_test

import (
	"context"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/pubsubtest"
	"github.com/gopherpubsub/pubsub/redisbroker"
	"github.com/gopherpubsub/pubsub/servertest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// One Broker's subscriptions share connections, so Redis counts the Broker
// once per name; introspection runs on other connections than the
// (un)subscribes, so it may lag them by a round trip.
var single = pubsubtest.Features{
	Publish:      pubsubtest.PerEngine,
	SPublish:     pubsubtest.PerEngine,
	NumSub:       pubsubtest.PerEngine,
	Asynchronous: true,
}

// In a cluster, PUBLISH counts only the clients of the node it reached.
// SPUBLISH goes to the slot's owner, where the shard subscribers are, and
// introspection sums every node.
var cluster = pubsubtest.Features{
	Publish:      pubsubtest.Unchecked,
	SPublish:     pubsubtest.PerEngine,
	NumSub:       pubsubtest.PerEngine,
	Asynchronous: true,
}

// newBroker returns a Broker on client, closing both when the test ends.
func newBroker(t *testing.T, client redis.UniversalClient, opts ...pubsub.Option) *redisbroker.Broker {
	t.Helper()
	b, err := redisbroker.New(client, redisbroker.Engine(opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		_ = client.Close()
	})
	return b
}

// (b) our own server, through go-redis.
func TestConformanceOnOurServer(t *testing.T) {
	srv := servertest.Run(t)
	pubsubtest.Run(t, single, func(t *testing.T) pubsub.Engine {
		return newBroker(t, redis.NewClient(&redis.Options{Addr: srv.Addr()}))
	})
}

// (c) a real redis-server.
func TestConformanceOnRedis(t *testing.T) {
	addr := redistest.Start(t)
	pubsubtest.Run(t, single, func(t *testing.T) pubsub.Engine {
		return newBroker(t, redis.NewClient(&redis.Options{Addr: addr}))
	})
}

// (d) a three-master Redis Cluster.
func TestConformanceOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	pubsubtest.Run(t, cluster, func(t *testing.T) pubsub.Engine {
		return newBroker(t, redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs}))
	})
}

// Open finds out by itself whether the address is a cluster node.
func TestOpenDetectsCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := redistest.StartCluster(t, 3)
	b, err := redisbroker.Open(ctx, c.Addrs[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sub, err := b.SSubscribe(ctx, "a{1}", "b{2}", "c{3}")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"a{1}", "b{2}", "c{3}"} {
		if _, err := b.SPublish(ctx, ch, ch); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.ReceiveMessage(ctx); err != nil || m.Payload != ch {
			t.Fatalf("got %+v, %v", m, err)
		}
	}
}
