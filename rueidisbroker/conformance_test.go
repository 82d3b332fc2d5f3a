package rueidisbroker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/brokertest"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/relay"
	"github.com/gopherpubsub/pubsub/rueidisbroker"
	"github.com/redis/rueidis"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// rueidis's cluster client leaves a goroutine of its own sleeping
	// for up to 5 s after Close (its topology refresh), not ours.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"))
}

// kit makes Brokers on rueidis clients for the shared tests.
var kit = brokertest.Kit{New: func(t *testing.T, cfg brokertest.Config) (pubsub.Engine, func() relay.Stats) {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  cfg.Addrs,
		Dialer:       net.Dialer{Timeout: cfg.DialTimeout},
		DisableRetry: cfg.NoRetries,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := []rueidisbroker.Option{rueidisbroker.Engine(cfg.Engine...)}
	if cfg.HealthCheck > 0 {
		opts = append(opts, rueidisbroker.HealthCheck(cfg.HealthCheck))
	}
	b, err := rueidisbroker.New(client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		client.Close()
	})
	return b, func() relay.Stats {
		s := b.Stats()
		return relay.Stats{Disconnects: s.Disconnects, Resubscribes: s.Resubscribes, LastResubscribe: s.LastResubscribe, SlotMoves: s.SlotMoves, Local: s.Local}
	}
}}

func TestConformanceOnOurServer(t *testing.T)    { brokertest.ConformanceOnOurServer(t, kit) }
func TestConformanceOnRedis(t *testing.T)        { brokertest.ConformanceOnRedis(t, kit) }
func TestConformanceOnRedisCluster(t *testing.T) { brokertest.ConformanceOnRedisCluster(t, kit) }
func TestFaults(t *testing.T)                    { brokertest.Faults(t, kit) }

// Open finds out by itself whether the address is a cluster node.
func TestOpenDetectsCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := redistest.StartCluster(t, 3)
	b, err := rueidisbroker.Open(ctx, c.Addrs[:1])
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
