package pubsub_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/gopherpubsub/pubsub"
)

// One order is placed; every system interested in orders reacts on its own.
func Example() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	payment, _ := b.Subscribe(ctx, "orders")
	shipping, _ := b.Subscribe(ctx, "orders")
	audit, _ := b.PSubscribe(ctx, "orders*")

	n, _ := b.Publish(ctx, "orders", "order 42 placed")
	fmt.Println("receivers:", n)

	fmt.Println("payment: ", (<-payment.Channel()).Payload)
	fmt.Println("shipping:", (<-shipping.Channel()).Payload)
	m := <-audit.Channel()
	fmt.Printf("audit:    %s via %s on %s\n", m.Payload, m.Pattern, m.Channel)
	// Output:
	// receivers: 3
	// payment:  order 42 placed
	// shipping: order 42 placed
	// audit:    order 42 placed via orders* on orders
}

// Publish returns the number of receivers, as Redis's PUBLISH does: a
// message published while nobody listens is gone.
func ExampleBroker_Publish() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	n, _ := b.Publish(ctx, "news", "nobody hears this")
	fmt.Println(n)

	sub, _ := b.Subscribe(ctx, "news")
	_ = sub.PSubscribe(ctx, "n*", "*s")
	n, _ = b.Publish(ctx, "news", "one message, two pmessages")
	fmt.Println(n)
	// Output:
	// 0
	// 3
}

// Patterns use Redis's glob syntax; a pmessage carries both the pattern and
// the real channel.
func ExampleBroker_PSubscribe() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	sub, _ := b.PSubscribe(ctx, "news:*")
	_, _ = b.Publish(ctx, "news:korea", "안녕하세요")
	_, _ = b.Publish(ctx, "news", "not matched: news:* needs the colon")
	_, _ = b.Publish(ctx, "news:world", "hello")

	for range 2 {
		m := <-sub.Channel()
		fmt.Printf("%s %s %s %s\n", m.Kind, m.Pattern, m.Channel, m.Payload)
	}
	// Output:
	// pmessage news:* news:korea 안녕하세요
	// pmessage news:* news:world hello
}

// Shard channels are a namespace of their own, reached only by SPublish.
func ExampleBroker_SSubscribe() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	sub, _ := b.SSubscribe(ctx, "orders:{eu}")
	n, _ := b.Publish(ctx, "orders:{eu}", "plain publish")
	fmt.Println("Publish receivers:", n)
	n, _ = b.SPublish(ctx, "orders:{eu}", "shard publish")
	fmt.Println("SPublish receivers:", n)
	m := <-sub.Channel()
	fmt.Println(m.Kind, m.Payload)
	// Output:
	// Publish receivers: 0
	// SPublish receivers: 1
	// smessage shard publish
}

// After Unsubscribe returns, nothing more for that channel is queued.
func ExampleSubscription_Unsubscribe() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	sub, _ := b.Subscribe(ctx, "stock", "shipping")
	_ = sub.Unsubscribe(ctx, "stock")
	n, _ := b.Publish(ctx, "stock", "lost")
	fmt.Println("stock receivers:", n)
	_, _ = b.Publish(ctx, "shipping", "kept")
	fmt.Println((<-sub.Channel()).Payload)

	_ = sub.Unsubscribe(ctx) // no arguments: every channel
	channels, _, _ := sub.Subscribed()
	fmt.Println("channels left:", len(channels))
	// Output:
	// stock receivers: 0
	// kept
	// channels left: 0
}

// ReceiveMessage blocks until a message arrives, the context ends, or the
// subscription closes.
func ExampleSubscription_ReceiveMessage() {
	ctx := context.Background()
	b := pubsub.New()

	sub, _ := b.Subscribe(ctx, "mail")
	_, _ = b.Publish(ctx, "mail", "welcome")
	_ = b.Close()

	for {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			fmt.Println("stopped:", err)
			return
		}
		fmt.Println("got:", m.Payload)
	}
	// Output:
	// got: welcome
	// stopped: pubsub: closed
}

// A full buffer drops messages, as Redis delivers at most once, but never
// silently: the subscription counts its drops and a handler can see them.
func ExampleWithDropHandler() {
	ctx := context.Background()
	var mu sync.Mutex
	var lost []string
	b := pubsub.New(pubsub.WithBufferSize(2), pubsub.WithDropHandler(func(_ *pubsub.Subscription, m pubsub.Message) {
		mu.Lock()
		lost = append(lost, m.Payload)
		mu.Unlock()
	}))
	defer b.Close()

	sub, _ := b.Subscribe(ctx, "points")
	for i := 1; i <= 4; i++ {
		_, _ = b.Publish(ctx, "points", fmt.Sprint(i))
	}
	st := sub.Stats()
	fmt.Println("delivered:", st.Delivered, "dropped:", st.Dropped, "lost:", lost)
	// Output:
	// delivered: 2 dropped: 2 lost: [3 4]
}

// DropOldest keeps the latest messages for a consumer that only cares about
// the current state.
func ExampleWithOverflow() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	sub, _ := b.NewSubscription(pubsub.WithBufferSize(2), pubsub.WithOverflow(pubsub.DropOldest))
	_ = sub.Subscribe(ctx, "price")
	for _, p := range []string{"100", "101", "99", "102"} {
		_, _ = b.Publish(ctx, "price", p)
	}
	fmt.Println((<-sub.Channel()).Payload, (<-sub.Channel()).Payload)
	// Output:
	// 99 102
}

// The PUBSUB introspection commands have methods of the same names.
func ExampleBroker_NumSub() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	_, _ = b.Subscribe(ctx, "news", "sport")
	_, _ = b.Subscribe(ctx, "news")
	_, _ = b.PSubscribe(ctx, "news:*")
	_, _ = b.PSubscribe(ctx, "news:*")

	counts, _ := b.NumSub(ctx, "news", "sport", "weather")
	numPat, _ := b.NumPat(ctx)
	fmt.Println(counts["news"], counts["sport"], counts["weather"], numPat)
	// Output:
	// 2 1 0 1
}

// A func subscription hands each message to a function on the publishing
// goroutine instead of queuing it: for consumers that have a queue of their
// own. It never drops, and the function must not block.
func ExampleBroker_NewSubscriptionFunc() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	var mu sync.Mutex
	var log []string
	sub, _ := b.NewSubscriptionFunc(func(_ context.Context, m pubsub.Message) {
		mu.Lock()
		log = append(log, m.Channel+": "+m.Payload)
		mu.Unlock()
	})
	_ = sub.Subscribe(ctx, "audit")
	for i := 1; i <= 3; i++ {
		_, _ = b.Publish(ctx, "audit", fmt.Sprint("event ", i))
	}
	_ = sub.Close()
	_, open := <-sub.Channel() // carries no messages; closes with the subscription
	fmt.Println(log, open)
	// Output:
	// [audit: event 1 audit: event 2 audit: event 3] false
}

// Add and Remove report each name with the count Redis's confirmation of
// it carries: channels and patterns together, shard channels apart. A
// Redis server built on the Broker answers SUBSCRIBE with them.
func ExampleSubscription_Add() {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()

	sub, _ := b.NewSubscription()
	confirm := func(name string, count int) { fmt.Println(name, count) }
	_, _ = sub.Add(ctx, pubsub.Channels, confirm, "news", "sport", "news")
	_, _ = sub.Add(ctx, pubsub.Patterns, confirm, "news:*")
	_, _ = sub.Add(ctx, pubsub.ShardChannels, confirm, "orders:{1}")
	count, _ := sub.Remove(ctx, pubsub.Channels, confirm, "sport", "weather", "news")
	fmt.Println("left:", count, sub.Holds(pubsub.Patterns, "news:*"))
	// Output:
	// news 1
	// sport 2
	// news 2
	// news:* 3
	// orders:{1} 1
	// sport 2
	// weather 2
	// news 1
	// left: 1 true
}

// Match is Redis's glob, as PSUBSCRIBE and PUBSUB CHANNELS use it;
// MatchFold is its nocase mode, as CONFIG GET uses it.
func ExampleMatch() {
	fmt.Println(pubsub.Match("news:*", "news:seoul"), pubsub.Match("h?llo", "héllo"))
	fmt.Println(pubsub.MatchFold("MAX*", "maxclients"), pubsub.Match("MAX*", "maxclients"))
	// Output:
	// true false
	// true false
}
