// Package rueidisbroker runs the pubsub API on Redis or Redis Cluster
// through the user's rueidis client, for programs that outgrow one
// process. A [Broker] is a [pubsub.Engine]: code written against the
// in-process pubsub.Broker changes its constructor and nothing else.
//
//	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"localhost:6379"}})
//	b, err := rueidisbroker.New(client)
//	sub, err := b.PSubscribe(ctx, "orders:*")
//	n, err := b.Publish(ctx, "orders:placed", "order #1001")
//
// It is the redisbroker module's Broker on another client: the same
// relay does the work (one upstream connection for channels, one for
// patterns, one for shard channels or, in a cluster, one per master; a
// reference count per name; Subscribe returning once Redis confirmed;
// gaps reported and every name subscribed again after a loss; a health
// check; shard channels following their slot), with rueidis's dedicated
// connections and pub/sub hooks underneath. rueidis does not dial a
// dedicated connection again once it is lost; the Broker does.
//
// # Receiver counts
//
// Publish returns what Redis replies, and Redis counts connections: a
// Broker counts once per channel and once per matching pattern, however
// many of its subscriptions hold them. In a cluster PUBLISH counts only
// the clients of the node that received it; the Broker publishes a channel
// through the master of its slot (as if it were a key), which keeps one
// publisher's messages to a channel in order. NumSub, NumPat and the other
// introspection calls sum or merge the answers of every node rueidis is
// connected to.
//
// # Failures
//
// When an upstream connection is lost, every subscription holding one of
// its names is told that messages may have been missed
// (pubsub.SubscriptionStats.Gaps); a new connection is made and every
// name subscribed again, and Stats says when and how long it took. A
// connection that stays silent is sent a PING after the health-check
// interval ([HealthCheck]) and taken for lost if it does not answer within
// as long again, so a Redis that hangs without closing connections is
// noticed too. Every call returns by its context's deadline. Close does
// not wait for a Redis that is down; on one that hangs without answering,
// rueidis takes up to a second to close its connections.
package rueidisbroker
