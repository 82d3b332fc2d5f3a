// Package redisbroker runs the pubsub API on Redis or Redis Cluster, for
// programs that outgrow one process. A [Broker] is a [pubsub.Engine]:
// code written against the in-process pubsub.Broker changes its
// constructor and nothing else.
//
//	b, err := redisbroker.New(redis.NewClient(&redis.Options{Addr: "localhost:6379"}))
//	sub, err := b.PSubscribe(ctx, "orders:*")
//	n, err := b.Publish(ctx, "orders:placed", "order #1001")
//
// # How it uses Redis
//
// All local subscriptions share few upstream connections: one for
// channels, one for patterns, one for shard channels (in a cluster, one
// per node for shard channels). The first local subscriber of a name sends
// SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE, and the last one to leave sends the
// unsubscribe. Subscribe returns once Redis has confirmed every name.
// Messages arriving from Redis go through the in-process engine to the
// subscribers of the name they came for, so each local subscription
// receives exactly what a Redis connection of its own would, once.
//
// # Receiver counts
//
// Publish returns what Redis replies, and Redis counts connections: a
// Broker counts once per channel and once per matching pattern, however
// many of its subscriptions hold them. In a cluster PUBLISH counts only
// the clients of the node that received it; the Broker publishes a channel
// through the node of its slot (as if it were a key), which keeps one
// publisher's messages to a channel in order. NumSub, NumPat and the other
// introspection calls sum or merge every node's answer.
//
// # Failures
//
// When an upstream connection is lost, every subscription holding one of
// its names is told that messages may have been missed
// (pubsub.SubscriptionStats.Gaps); the connection is made again and every
// name subscribed again, and Stats says when and how long it took. In a
// cluster, a shard channel whose slot moves is unsubscribed by its old
// owner: the gap is reported and the channel subscribed on the new owner.
// A connection that stays silent is sent a PING after the health-check
// interval ([HealthCheck]) and taken for lost if it does not answer within
// as long again, so a Redis that hangs without closing connections is
// noticed too. Every call returns by its context's deadline (see [New]);
// Close does not wait for Redis.
package redisbroker
