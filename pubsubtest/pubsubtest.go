// Package pubsubtest is a conformance suite for [pubsub.Engine]
// implementations, in the spirit of testing/fstest.TestFS: one call runs
// every case against a backend, and each case states the Redis behaviour
// it pins down.
//
//	func TestConformance(t *testing.T) {
//		pubsubtest.Run(t, pubsubtest.Features{}, func(t *testing.T) pubsub.Engine {
//			return pubsub.New()
//		})
//	}
//
// Backends differ in one respect only, what receiver counts count, and
// declare it in [Features] rather than have the suite weaken the check for
// every backend. Every case uses names of its own, so backends that share
// one Redis between cases (or with other tests) do not see each other.
package pubsubtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// Counting says what a backend's receiver counts count.
type Counting uint8

const (
	// PerSubscription counts every subscription as Redis counts a
	// connection: the in-process Broker.
	PerSubscription Counting = iota
	// PerEngine counts all the subscriptions of one engine as one
	// connection: a name counts once however many of them hold it, as for
	// a broker that shares its Redis connections (redisbroker).
	PerEngine
	// Unchecked leaves the count unchecked, beyond being non-negative: in
	// a Redis Cluster, PUBLISH counts only the clients of the node that
	// received it.
	Unchecked
)

func (c Counting) String() string {
	switch c {
	case PerSubscription:
		return "PerSubscription"
	case PerEngine:
		return "PerEngine"
	case Unchecked:
		return "Unchecked"
	}
	return fmt.Sprintf("Counting(%d)", uint8(c))
}

// Features declares which count guarantees a backend keeps. The zero value
// is the in-process Broker's: every count exact, per subscription.
type Features struct {
	Publish      Counting // the result of Publish
	SPublish     Counting // the result of SPublish
	NumSub       Counting // NumSub and ShardNumSub
	Asynchronous bool     // introspection may lag an Unsubscribe or Close by a round trip
}

// Timeout bounds every wait of the suite.
const Timeout = 10 * time.Second

// Run runs every case against engines made by newEngine, one per case. The
// suite closes each engine when its case ends.
func Run(t *testing.T, features Features, newEngine func(t *testing.T) pubsub.Engine) {
	cases := []struct {
		name string
		run  func(*suite)
	}{
		{"PublishCountsReceivers", (*suite).publishCountsReceivers},
		{"PatternsDeliverOncePerPattern", (*suite).patternsDeliverOncePerPattern},
		{"EachSubscriptionGetsWhatItHolds", (*suite).eachSubscriptionGetsWhatItHolds},
		{"UnsubscribeAll", (*suite).unsubscribeAll},
		{"NumPatCountsUniquePatterns", (*suite).numPatCountsUniquePatterns},
		{"ChannelsAndNumSub", (*suite).channelsAndNumSub},
		{"BinaryAndKoreanNames", (*suite).binaryAndKoreanNames},
		{"OrderFromOnePublisher", (*suite).orderFromOnePublisher},
		{"LiveWhenSubscribeReturns", (*suite).liveWhenSubscribeReturns},
		{"ShardChannels", (*suite).shardChannels},
		{"SubscriptionClose", (*suite).subscriptionClose},
		{"EngineClose", (*suite).engineClose},
		{"BadInput", (*suite).badInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t)
			t.Cleanup(func() { _ = e.Close() })
			c.run(&suite{t: t, e: e, f: features, prefix: fmt.Sprintf("pubsubtest:%08x:", rand.Uint32())})
		})
	}
}

type suite struct {
	t      *testing.T
	e      pubsub.Engine
	f      Features
	prefix string // makes the case's names its own
}

// n returns the case's own name for s.
func (s *suite) n(name string) string { return s.prefix + name }

func (s *suite) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	s.t.Cleanup(cancel)
	return ctx
}

func (s *suite) must(err error, what string) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

func (s *suite) subscribe(ns pubsub.Namespace, names ...string) *pubsub.Subscription {
	s.t.Helper()
	var sub *pubsub.Subscription
	var err error
	switch ns {
	case pubsub.Patterns:
		sub, err = s.e.PSubscribe(s.ctx(), names...)
	case pubsub.ShardChannels:
		sub, err = s.e.SSubscribe(s.ctx(), names...)
	default:
		sub, err = s.e.Subscribe(s.ctx(), names...)
	}
	s.must(err, fmt.Sprintf("%s %q", ns.SubscribeCommand(), names))
	s.t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func (s *suite) publish(channel, payload string) int {
	s.t.Helper()
	n, err := s.e.Publish(s.ctx(), channel, payload)
	s.must(err, "Publish "+channel)
	return n
}

// count checks a receiver count: want is what Redis reports with one
// connection per subscription, perEngine with one connection for all.
func (s *suite) count(what string, c Counting, got, want, perEngine int) {
	s.t.Helper()
	switch c {
	case PerSubscription:
		if got != want {
			s.t.Errorf("%s = %d, want %d (one per subscription, as Redis counts connections)", what, got, want)
		}
	case PerEngine:
		if got != perEngine {
			s.t.Errorf("%s = %d, want %d (one per engine connection)", what, got, perEngine)
		}
	default:
		if got < 0 {
			s.t.Errorf("%s = %d, want >= 0", what, got)
		}
	}
}

// next returns the next message of sub, failing after Timeout.
func (s *suite) next(sub *pubsub.Subscription) pubsub.Message {
	s.t.Helper()
	m, err := sub.ReceiveMessage(s.ctx())
	s.must(err, "ReceiveMessage")
	return m
}

// receiveUntil returns sub's messages up to and including the first one
// with payload end: what arrives before a marker published last is
// exactly what the subscription got, with nothing left in flight.
func (s *suite) receiveUntil(sub *pubsub.Subscription, end string) []pubsub.Message {
	s.t.Helper()
	var out []pubsub.Message
	for {
		m := s.next(sub)
		out = append(out, m)
		if m.Payload == end {
			return out
		}
	}
}

// eventually polls cond until it holds, for backends whose introspection
// lags; synchronous backends must hold at once.
func (s *suite) eventually(what string, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if !s.f.Asynchronous || time.Now().After(deadline) {
			s.t.Fatalf("%s: got %s", what, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *suite) publishCountsReceivers() {
	// PUBLISH replies with the number of clients that received the message.
	ch := s.n("orders")
	a := s.subscribe(pubsub.Channels, ch)
	b := s.subscribe(pubsub.Channels, ch)
	s.count("Publish to two subscribers", s.f.Publish, s.publish(ch, "one"), 2, 1)
	for _, sub := range []*pubsub.Subscription{a, b} {
		m := s.next(sub)
		if m != (pubsub.Message{Kind: pubsub.KindMessage, Channel: ch, Payload: "one"}) {
			s.t.Errorf("received %+v, want the message on %q", m, ch)
		}
	}
	s.count("Publish to nobody", s.f.Publish, s.publish(s.n("nobody"), "x"), 0, 0)
}

func (s *suite) patternsDeliverOncePerPattern() {
	// A client holding a channel and two matching patterns receives one
	// message and two pmessages for one PUBLISH, and PUBLISH counts 3.
	ch := s.n("news.tech")
	p1, p2, miss := s.n("news.*"), s.n("*tech"), s.n("sport.*")
	sub := s.subscribe(pubsub.Channels, ch)
	s.must(sub.PSubscribe(s.ctx(), p1, p2, miss), "PSubscribe")
	other := s.subscribe(pubsub.Patterns, p1)

	s.count("Publish", s.f.Publish, s.publish(ch, "m"), 4, 3)
	got := s.receiveN(sub, 3)
	want := []pubsub.Message{
		{Kind: pubsub.KindMessage, Channel: ch, Payload: "m"},
		{Kind: pubsub.KindPMessage, Pattern: p1, Channel: ch, Payload: "m"},
		{Kind: pubsub.KindPMessage, Pattern: p2, Channel: ch, Payload: "m"},
	}
	if !sameMessages(got, want) {
		s.t.Errorf("subscription holding the channel and two matching patterns got %+v, want %+v", got, want)
	}
	if m := s.next(other); m != (pubsub.Message{Kind: pubsub.KindPMessage, Pattern: p1, Channel: ch, Payload: "m"}) {
		s.t.Errorf("other subscription got %+v", m)
	}
}

func (s *suite) receiveN(sub *pubsub.Subscription, n int) []pubsub.Message {
	s.t.Helper()
	out := make([]pubsub.Message, 0, n)
	for range n {
		out = append(out, s.next(sub))
	}
	return out
}

// sameMessages compares as multisets: Redis orders the pmessages of one
// publish by its hash table.
func sameMessages(got, want []pubsub.Message) bool {
	key := func(m pubsub.Message) string {
		return fmt.Sprintf("%d\x00%s\x00%s\x00%s", m.Kind, m.Pattern, m.Channel, m.Payload)
	}
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, m := range got {
		g[i] = key(m)
	}
	for i, m := range want {
		w[i] = key(m)
	}
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func (s *suite) eachSubscriptionGetsWhatItHolds() {
	// Each subscription receives what its own Redis connection would: a
	// subscriber of the channel only gets the message, a subscriber of a
	// pattern only the pmessage, each exactly once, whoever else listens.
	ch := s.n("events")
	byChannel := s.subscribe(pubsub.Channels, ch)
	byPattern := s.subscribe(pubsub.Patterns, s.n("ev*"))
	s.publish(ch, "first")
	s.publish(ch, "end")
	want := []pubsub.Message{
		{Kind: pubsub.KindMessage, Channel: ch, Payload: "first"},
		{Kind: pubsub.KindMessage, Channel: ch, Payload: "end"},
	}
	if got := s.receiveUntil(byChannel, "end"); !slices.Equal(got, want) {
		s.t.Errorf("channel subscriber got %+v, want %+v", got, want)
	}
	for i := range want {
		want[i].Kind, want[i].Pattern = pubsub.KindPMessage, s.n("ev*")
	}
	if got := s.receiveUntil(byPattern, "end"); !slices.Equal(got, want) {
		s.t.Errorf("pattern subscriber got %+v, want %+v", got, want)
	}
}

func (s *suite) unsubscribeAll() {
	// UNSUBSCRIBE with no argument leaves every channel, and nothing
	// published to them afterwards arrives; the patterns stay.
	a, b, marker := s.n("a"), s.n("b"), s.n("marker")
	sub := s.subscribe(pubsub.Channels, a, b)
	s.must(sub.PSubscribe(s.ctx(), marker), "PSubscribe")
	s.must(sub.Unsubscribe(s.ctx()), "Unsubscribe()")
	if st := sub.Stats(); st.Channels != 0 || st.Patterns != 1 {
		s.t.Errorf("after Unsubscribe(): %d channels and %d patterns, want 0 and 1", st.Channels, st.Patterns)
	}
	s.eventually("Publish to a left channel", func() (bool, string) {
		n := s.publish(a, "gone")
		return n == 0 || s.f.Publish == Unchecked, fmt.Sprint(n)
	})
	s.publish(b, "gone")
	s.publish(marker, "end")
	got := s.receiveUntil(sub, "end")
	if len(got) != 1 {
		s.t.Errorf("after Unsubscribe() the subscription got %+v, want the marker only", got)
	}
}

func (s *suite) numPatCountsUniquePatterns() {
	// PUBSUB NUMPAT counts unique patterns (Redis 6.2+), not subscriptions.
	before, err := s.e.NumPat(s.ctx())
	s.must(err, "NumPat")
	a := s.subscribe(pubsub.Patterns, s.n("x*"), s.n("y*"))
	b := s.subscribe(pubsub.Patterns, s.n("x*"))
	s.waitNumPat("after two unique patterns", before+2)
	s.must(a.Close(), "Close")
	s.waitNumPat("after the only holder of y* left", before+1)
	s.must(b.PUnsubscribe(s.ctx()), "PUnsubscribe()")
	s.waitNumPat("after PUnsubscribe()", before)
}

func (s *suite) waitNumPat(when string, want int) {
	s.t.Helper()
	s.eventually("NumPat "+when, func() (bool, string) {
		n, err := s.e.NumPat(s.ctx())
		s.must(err, "NumPat")
		return n == want, fmt.Sprintf("%d, want %d", n, want)
	})
}

func (s *suite) channelsAndNumSub() {
	// PUBSUB CHANNELS lists channels with subscribers matching a glob;
	// NUMSUB counts subscribers per channel, 0 for unknown ones, and
	// ignores pattern subscribers.
	one, two, none := s.n("c1"), s.n("c2"), s.n("c3")
	s.subscribe(pubsub.Channels, one, two)
	s.subscribe(pubsub.Channels, two)
	s.subscribe(pubsub.Patterns, s.n("c*"))
	got, err := s.e.Channels(s.ctx(), s.n("c*"))
	s.must(err, "Channels")
	slices.Sort(got)
	if want := []string{one, two}; !slices.Equal(got, want) {
		s.t.Errorf("Channels(%q) = %q, want %q", s.n("c*"), got, want)
	}
	counts, err := s.e.NumSub(s.ctx(), one, two, none)
	s.must(err, "NumSub")
	if len(counts) != 3 {
		s.t.Errorf("NumSub of 3 channels answered %v", counts)
	}
	s.count("NumSub "+one, s.f.NumSub, counts[one], 1, 1)
	s.count("NumSub "+two, s.f.NumSub, counts[two], 2, 1)
	s.count("NumSub "+none, s.f.NumSub, counts[none], 0, 0)
}

func (s *suite) binaryAndKoreanNames() {
	// Names and payloads are binary safe: any byte, any UTF-8.
	korean := s.n("news:서울")
	binary := s.n("bin\x00\xff\r\n*?[")
	payload := string([]byte{0, 1, 2, 0xfe, 0xff, '\r', '\n'}) + "서울 날씨 맑음"
	sub := s.subscribe(pubsub.Channels, korean, binary)
	pat := s.subscribe(pubsub.Patterns, s.n("news:서*"))
	s.publish(korean, payload)
	s.publish(binary, payload)
	// Order between two channels is not promised (in a cluster they may
	// travel through different nodes).
	want := []pubsub.Message{
		{Kind: pubsub.KindMessage, Channel: korean, Payload: payload},
		{Kind: pubsub.KindMessage, Channel: binary, Payload: payload},
	}
	if got := s.receiveN(sub, 2); !sameMessages(got, want) {
		s.t.Errorf("got %+v, want %+v", got, want)
	}
	if m := s.next(pat); m.Channel != korean || m.Pattern != s.n("news:서*") || m.Payload != payload {
		s.t.Errorf("pattern subscriber got %+v", m)
	}
}

func (s *suite) orderFromOnePublisher() {
	// Messages from one publisher arrive in publish order.
	const n = 500
	ch := s.n("ordered")
	sub, err := s.e.NewSubscription(pubsub.WithBufferSize(n + 1))
	s.must(err, "NewSubscription")
	s.t.Cleanup(func() { _ = sub.Close() })
	s.must(sub.Subscribe(s.ctx(), ch), "Subscribe")
	for i := range n {
		s.publish(ch, fmt.Sprint(i))
	}
	for i := range n {
		if m := s.next(sub); m.Payload != fmt.Sprint(i) {
			s.t.Fatalf("message %d has payload %q: out of order", i, m.Payload)
		}
	}
}

func (s *suite) liveWhenSubscribeReturns() {
	// SUBSCRIBE's reply means the subscription is live: a message
	// published right after it returns is received.
	for i := range 20 {
		ch := s.n(fmt.Sprint("live", i))
		sub := s.subscribe(pubsub.Channels, ch)
		s.publish(ch, "now")
		if m := s.next(sub); m.Payload != "now" {
			s.t.Fatalf("round %d: got %+v", i, m)
		}
		s.must(sub.Close(), "Close")
	}
}

func (s *suite) shardChannels() {
	// SSUBSCRIBE and SPUBLISH are a namespace of their own: patterns do not
	// match shard channels and PUBLISH does not reach them. One
	// subscription may hold shard channels of many slots.
	var names []string
	for i := range 6 {
		names = append(names, s.n(fmt.Sprintf("shard{%d}", i)))
	}
	sub := s.subscribe(pubsub.ShardChannels, names...)
	twice := s.subscribe(pubsub.ShardChannels, names[0])
	pat := s.subscribe(pubsub.Patterns, s.n("shard*"))
	for _, ch := range names {
		n, err := s.e.SPublish(s.ctx(), ch, "s:"+ch)
		s.must(err, "SPublish "+ch)
		want := 1
		if ch == names[0] {
			want = 2
		}
		s.count("SPublish "+ch, s.f.SPublish, n, want, 1)
	}
	// Shard channels of different slots may live on different nodes:
	// their messages arrive in no promised order between them.
	var want []pubsub.Message
	for _, ch := range names {
		want = append(want, pubsub.Message{Kind: pubsub.KindSMessage, Channel: ch, Payload: "s:" + ch})
	}
	if got := s.receiveN(sub, len(names)); !sameMessages(got, want) {
		s.t.Errorf("got %+v, want %+v", got, want)
	}
	s.next(twice)
	s.publish(names[0], "not a shard message")
	s.publish(names[0], "end")
	if got := s.receiveUntil(pat, "end"); len(got) != 2 || got[0].Payload != "not a shard message" {
		s.t.Errorf("pattern subscriber got %+v: want the PUBLISH and the marker only", got)
	}
	got, err := s.e.ShardChannels(s.ctx(), s.n("shard*"))
	s.must(err, "ShardChannels")
	slices.Sort(got)
	wantNames := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, wantNames) {
		s.t.Errorf("ShardChannels = %q, want %q", got, wantNames)
	}
	counts, err := s.e.ShardNumSub(s.ctx(), names[0], names[1])
	s.must(err, "ShardNumSub")
	s.count("ShardNumSub "+names[0], s.f.NumSub, counts[names[0]], 2, 1)
	s.count("ShardNumSub "+names[1], s.f.NumSub, counts[names[1]], 1, 1)
}

func (s *suite) subscriptionClose() {
	// Closing a subscription is a client disconnecting: it leaves
	// everything, its channel closes after what was queued, and a second
	// Close reports ErrClosed.
	ch := s.n("closing")
	sub := s.subscribe(pubsub.Channels, ch)
	s.publish(ch, "queued")
	// Wait until it is queued: a relay delivers asynchronously.
	deadline := time.Now().Add(Timeout)
	for sub.Stats().Queued == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	s.must(sub.Close(), "Close")
	if !errors.Is(sub.Close(), pubsub.ErrClosed) {
		s.t.Error("second Close did not return ErrClosed")
	}
	var got []string
	for m := range sub.Channel() {
		got = append(got, m.Payload)
	}
	if !slices.Equal(got, []string{"queued"}) {
		s.t.Errorf("after Close the channel gave %q, then closed; want the queued message", got)
	}
	if _, err := sub.ReceiveMessage(s.ctx()); !errors.Is(err, pubsub.ErrClosed) {
		s.t.Errorf("ReceiveMessage after Close: %v, want ErrClosed", err)
	}
	if !errors.Is(sub.Subscribe(s.ctx(), ch), pubsub.ErrClosed) {
		s.t.Error("Subscribe on a closed subscription did not return ErrClosed")
	}
	s.eventually("NumSub after Close", func() (bool, string) {
		counts, err := s.e.NumSub(s.ctx(), ch)
		s.must(err, "NumSub")
		return counts[ch] == 0, fmt.Sprint(counts)
	})
}

func (s *suite) engineClose() {
	// Closing the engine closes every subscription; later calls fail with
	// ErrClosed.
	sub := s.subscribe(pubsub.Channels, s.n("x"))
	s.must(s.e.Close(), "Close")
	select {
	case _, ok := <-sub.Channel():
		if ok {
			s.t.Error("a message arrived after the engine closed")
		}
	case <-time.After(Timeout):
		s.t.Fatal("subscription channel still open after the engine closed")
	}
	if _, err := s.e.Publish(s.ctx(), s.n("x"), "late"); !errors.Is(err, pubsub.ErrClosed) {
		s.t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := s.e.Subscribe(s.ctx(), s.n("x")); !errors.Is(err, pubsub.ErrClosed) {
		s.t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if !errors.Is(s.e.Close(), pubsub.ErrClosed) {
		s.t.Error("second Close did not return ErrClosed")
	}
}

func (s *suite) badInput() {
	// Redis answers SUBSCRIBE with no channel with an arity error; a nil
	// context is refused rather than a panic.
	if _, err := s.e.Subscribe(s.ctx()); !errors.Is(err, pubsub.ErrNoArguments) {
		s.t.Errorf("Subscribe(): %v, want ErrNoArguments", err)
	}
	if _, err := s.e.PSubscribe(s.ctx()); !errors.Is(err, pubsub.ErrNoArguments) {
		s.t.Errorf("PSubscribe(): %v, want ErrNoArguments", err)
	}
	if _, err := s.e.Publish(nil, s.n("x"), "y"); !errors.Is(err, pubsub.ErrNilContext) { //nolint:staticcheck // the input under test
		s.t.Errorf("Publish(nil ctx): %v, want ErrNilContext", err)
	}
	if _, err := s.e.Subscribe(nil, s.n("x")); !errors.Is(err, pubsub.ErrNilContext) { //nolint:staticcheck
		s.t.Errorf("Subscribe(nil ctx): %v, want ErrNilContext", err)
	}
}
