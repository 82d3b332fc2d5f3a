package pubsub

import (
	"context"
	"fmt"
)

// A Relay connects a Broker to an external engine, such as Redis, that
// carries the messages between processes. The Broker keeps doing the local
// fan-out (buffers, overflow policies, figures); the Relay tells the
// external engine which names the process needs, and hands what arrives
// back with [Broker.Deliver]. Give it to [New] with [WithRelay].
//
// The Broker calls Join and Leave with the names one subscription gains or
// loses: counting how many local subscriptions hold a name, and so when the
// external engine must be told, is the Relay's job. For one subscription
// the calls are serialized; for different subscriptions they may run
// concurrently.
type Relay interface {
	// Join is called before a subscription takes names of ns it did not
	// hold. It returns once messages for them published on the
	// external engine will reach Deliver, so that Subscribe keeps its
	// promise of returning only once live. If it returns an error, the
	// subscription is left as it was and Subscribe returns that error.
	Join(ctx context.Context, ns Namespace, names []string) error
	// Leave is called after a subscription has dropped names, by
	// Unsubscribe, Close or the Disconnect policy. It must not block for
	// long: Close calls it.
	Leave(ns Namespace, names []string)
}

// WithRelay makes the Broker a local fan-out for an external engine; see
// [Relay]. It is an option of [New] only: given to NewSubscription it is an
// invalid option. The default is no relay: the Broker is the engine.
func WithRelay(r Relay) Option {
	return func(c *config) {
		if r == nil {
			c.err = fmt.Errorf("%w: WithRelay(nil)", ErrInvalidOption)
			return
		}
		c.relay = r
		c.relayOptions++
	}
}

// Deliver hands a message that arrived from the Broker's external engine to
// the local subscriptions it belongs to, and returns how many received it.
// Unlike Publish it matches nothing, because the external engine has
// already done so and sends one message per match: a KindMessage goes to
// the subscriptions holding m.Channel, a KindPMessage to those holding the
// pattern m.Pattern itself, a KindSMessage to those holding the shard
// channel m.Channel. So each subscription receives each message exactly
// once, as a Redis connection of its own would.
//
// Deliver blocks, applies overflow policies and orders messages as
// [Broker.Publish] does. It is meant for [Relay] implementations; on a
// Broker without a relay it delivers all the same.
func (b *Broker) Deliver(ctx context.Context, m Message) (int, error) {
	if err := b.check(ctx); err != nil {
		return 0, err
	}
	t := tally{spare: b.spare}
	var sh *stripe // where the publish is counted
	switch m.Kind {
	case KindMessage:
		m.Pattern = ""
		sh = b.channels.deliver(m.Channel, &t, &m)
	case KindSMessage:
		m.Pattern = ""
		sh = b.shardChannels.deliver(m.Channel, &t, &m)
	case KindPMessage:
		sh, _ = b.channels.stripeOf(m.Channel)
		b.patterns.deliverTo(m.Pattern, &t, &m)
	default:
		return 0, fmt.Errorf("%w: Deliver of a message of kind %v", ErrInvalidOption, m.Kind)
	}
	t.runDeferred(ctx)
	t.record(sh)
	return t.receivers, t.err
}

// ReportGap records, on every subscription holding one of names of ns, that messages to it may have been lost outside the
// Broker: by a dropped connection to the external engine, say. Each
// (subscription, name) pair adds one to that subscription's
// [SubscriptionStats].Gaps. It returns the number of pairs.
func (b *Broker) ReportGap(ns Namespace, names ...string) int {
	if b.check(context.Background()) != nil {
		return 0
	}
	n := 0
	note := func(members []*member) {
		for _, mb := range members {
			mb.s.gaps.Add(1)
			n++
		}
	}
	for _, name := range names {
		switch ns {
		case Channels:
			b.channels.withMembers(name, note)
		case ShardChannels:
			b.shardChannels.withMembers(name, note)
		case Patterns:
			b.patterns.withMembers(name, note)
		}
	}
	return n
}
