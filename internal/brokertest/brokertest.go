// Package brokertest runs the same tests on every Redis-backed Broker:
// the pubsubtest conformance suite on our server, a redis-server and a
// three-master cluster, and the fault tests (Redis killed, hung, down, a
// slot moved, subscribes racing unsubscribes). Each client's module gives
// a Kit; the tests publish through connections of their own.
package brokertest

import (
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/relay"
	"github.com/gopherpubsub/pubsub/pubsubtest"
	"github.com/gopherpubsub/pubsub/servertest"
)

// Kit makes the Brokers of one client library.
type Kit struct {
	// New returns a Broker on a new client of cfg's addresses and the
	// Broker's figures; both are closed when the test ends.
	New func(t *testing.T, cfg Config) (pubsub.Engine, func() relay.Stats)
}

// Config is what a test asks of the client and the Broker.
type Config struct {
	Addrs       []string // one address, or the nodes of a cluster
	Cluster     bool
	DialTimeout time.Duration // 0: the client's default
	NoRetries   bool          // the client does not retry commands
	HealthCheck time.Duration // 0: the Broker's default
	Engine      []pubsub.Option
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

func (k Kit) engine(t *testing.T, cfg Config) pubsub.Engine {
	e, _ := k.New(t, cfg)
	return e
}

// ConformanceOnOurServer runs pubsubtest against our own server.
func ConformanceOnOurServer(t *testing.T, k Kit) {
	srv := servertest.Run(t)
	pubsubtest.Run(t, single, func(t *testing.T) pubsub.Engine {
		return k.engine(t, Config{Addrs: []string{srv.Addr()}})
	})
}

// ConformanceOnRedis runs pubsubtest against a real redis-server.
func ConformanceOnRedis(t *testing.T, k Kit) {
	addr := redistest.Start(t)
	pubsubtest.Run(t, single, func(t *testing.T) pubsub.Engine {
		return k.engine(t, Config{Addrs: []string{addr}})
	})
}

// ConformanceOnRedisCluster runs pubsubtest against a three-master Redis
// Cluster.
func ConformanceOnRedisCluster(t *testing.T, k Kit) {
	c := redistest.StartCluster(t, 3)
	pubsubtest.Run(t, cluster, func(t *testing.T) pubsub.Engine {
		return k.engine(t, Config{Addrs: c.Addrs, Cluster: true})
	})
}

// Faults runs every fault test as a subtest.
func Faults(t *testing.T, k Kit) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Kit)
	}{
		{"RedisRestartMidStream", redisRestartMidStream},
		{"RedisDownSubscribeWaitsAndCloseIsPrompt", redisDownSubscribeWaitsAndCloseIsPrompt},
		{"CloseIsPromptWhileSubscribeWaitsForRedis", closeIsPromptWhileSubscribeWaitsForRedis},
		{"HungRedisIsNoticed", hungRedisIsNoticed},
		{"ShardChannelFollowsItsSlot", shardChannelFollowsItsSlot},
		{"ShardChannelsOfManySlots", shardChannelsOfManySlots},
		{"IntrospectionCountsSubscribersOnReplicas", introspectionCountsSubscribersOnReplicas},
		{"SubscribeRacingLastLeaverIsNeverLost", subscribeRacingLastLeaverIsNeverLost},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, k) })
	}
}
