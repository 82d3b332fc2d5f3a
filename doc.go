// Package pubsub is an in-process publish/subscribe engine with the
// semantics of Redis Pub/Sub, and no server to run.
//
// A [Broker] fans each published message out to every [Subscription] that
// holds the channel or a matching pattern. Each subscription is like one
// Redis client in subscribed mode: it can hold channels, patterns and shard
// channels, add and remove them over time, and it receives [Message]
// values through one bounded, receive-only Go channel.
//
//	b := pubsub.New()
//	defer b.Close()
//	sub, _ := b.PSubscribe(ctx, "orders:*")
//	n, _ := b.Publish(ctx, "orders:created", `{"id":42}`) // n == 1
//	msg := <-sub.Channel() // msg.Kind == KindPMessage, msg.Pattern == "orders:*"
//
// See the examples for complete programs.
//
// # Redis behaviour it mirrors
//
//   - Publish returns the number of receivers as PUBLISH does: one per
//     subscription holding the channel, plus one per (subscription,
//     pattern) pair whose pattern matches. A subscription holding "news"
//     and "n*" receives a message and a pmessage for one publish; a drop
//     for a full buffer still counts, as Redis counts a client whatever
//     happens to its output buffer.
//   - Patterns use Redis's glob, byte for byte as Redis 7.0's
//     stringmatchlen: '*', '?' (one byte, not one rune), '[abc]', '[a-z]',
//     reversed ranges, '[^x]', '\' escapes, unclosed '[' and the
//     pattern-nesting limit of CVE-2024-31228. No pattern is ever rejected.
//     An empty channel name matches only the empty pattern.
//   - Shard channels (SSubscribe, SPublish) are a namespace of their own;
//     patterns never match them.
//   - Subscribing twice is a no-op; unsubscribing from something not held
//     is not an error. [SubscriptionStats] counts channels + patterns, and
//     shard channels apart, as the counts in Redis's replies do.
//   - Channels, NumSub, NumPat, ShardChannels and ShardNumSub answer as
//     PUBSUB CHANNELS, NUMSUB, NUMPAT (unique patterns, Redis 6.2+),
//     SHARDCHANNELS and SHARDNUMSUB do.
//   - Channel names, patterns and payloads are arbitrary bytes held in Go
//     strings.
//
// # Guarantees
//
// Subscribe and its variants return only once the subscription is live: a
// Publish that starts after they return reaches it. After Unsubscribe (or
// PUnsubscribe, SUnsubscribe) returns, nothing more for those channels is
// added to the buffer; messages already queued are still received. Two
// exceptions, each for a publish already under way: under [Block], one
// waiting for room may still queue its message, and a function given to
// [Broker.NewSubscriptionFunc] may still be called once.
//
// Delivery is at most once, as in Redis: a message published while nobody
// listens is gone, and a full buffer applies the subscription's [Overflow]
// policy. The default, [DropNewest], drops the new message and counts it;
// [DropOldest] keeps the latest messages; [Disconnect] closes the
// subscription with [ErrSlowConsumer] as Redis's output-buffer limit
// disconnects a client; [Block] makes Publish wait for room until its
// context ends. Drops are never silent: [SubscriptionStats].Dropped (with
// the reason: Evicted, Disconnected, or refused by a full buffer),
// [Broker.Stats] and [WithDropHandler] report them; the module
// github.com/gopherpubsub/pubsub/otelpubsub makes OpenTelemetry metrics
// of them.
//
// Ordering: messages published one after another by one goroutine reach
// each subscription in publish order. Messages from concurrent publishers
// interleave in no promised order. For one publish, a subscription
// receives its channel message before its pattern messages, and its
// pattern messages in no particular order (Redis's order is that of its
// hash table).
//
// # Concurrency
//
// All methods of Broker and Subscription are safe for concurrent use.
// Publish never starts a goroutine and the package starts none: after
// [Broker.Close] returns, no goroutine of this package is running. No user
// code runs under an internal lock, so a consumer may publish, subscribe,
// unsubscribe or close from inside its receive loop, and a drop handler
// may call any method. The one exception is the [Confirm] function given
// to [Subscription.Add] and [Subscription.Remove], which runs while the
// subscription changes so that its caller can order confirmations with
// messages.
//
// Lock order, for maintainers (each lock is taken only after those above
// it, never before):
//
//	Subscription.opMu   Subscribe, Unsubscribe and close of one subscription
//	Broker.mu           the registry: close's forget, Stats, Subscriptions
//	one of:             a channel stripe's mu, the pattern index's mu,
//	                    Subscription.mu (never two of these together)
//
// Publish takes a stripe's or the pattern index's read lock alone, and
// calls user code (func subscriptions, drop handlers, Block waits) with
// none held.
//
// # Beyond one process
//
// [Engine] is the interface this Broker shares with the Redis-backed
// broker of the module github.com/gopherpubsub/pubsub/redisbroker, so a
// program moves to Redis or Redis Cluster by changing its constructor.
// That broker uses a Broker made with [WithRelay] as its local fan-out:
// the [Relay] learns which names the process needs, and hands what Redis
// sends back through [Broker.Deliver]; [Broker.ReportGap] tells
// subscriptions when messages may have been lost on the way
// ([SubscriptionStats].Gaps). Package pubsubtest is the conformance suite
// both pass.
//
// # Memory
//
// A Go channel's buffer is allocated in full up front: a subscription of
// one channel takes about 2.5 KiB with the default buffer of
// [DefaultBufferSize] slots (56 bytes each), and about 470 bytes without
// slots. For a million subscriptions, choose a small buffer per
// subscription with [WithBufferSize], or use [Broker.NewSubscriptionFunc],
// which has none.
package pubsub
