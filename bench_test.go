package pubsub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// naiveBroker is the baseline every benchmark compares against: one map of
// channels under one RWMutex, patterns in a slice scanned linearly with the
// same Redis matcher, and a non-blocking send into each subscriber's
// buffered channel.
type naiveBroker struct {
	mu       sync.RWMutex
	channels map[string][]chan Message
	patterns []naivePattern
}

type naivePattern struct {
	m  *matcher
	ch chan Message
}

func newNaive() *naiveBroker {
	return &naiveBroker{channels: make(map[string][]chan Message)}
}

func (n *naiveBroker) publish(channel, payload string) (receivers, dropped int) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	send := func(ch chan Message, m Message) {
		receivers++
		select {
		case ch <- m:
		default:
			dropped++
		}
	}
	for _, ch := range n.channels[channel] {
		send(ch, Message{Kind: KindMessage, Channel: channel, Payload: payload})
	}
	for _, p := range n.patterns {
		if p.m.match(channel) {
			send(p.ch, Message{Kind: KindPMessage, Channel: channel, Pattern: p.m.pattern, Payload: payload})
		}
	}
	return receivers, dropped
}

// rawBroker is the floor the delivery benchmarks compare against: a map of
// channels to Go channels of payloads under one RWMutex, and a send that
// does not block. No pattern, no counter, no message struct: what a user
// would write who needs nothing else.
type rawBroker struct {
	mu       sync.RWMutex
	channels map[string][]chan []byte
}

func (r *rawBroker) publish(channel string, payload []byte) (receivers int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, ch := range r.channels[channel] {
		select {
		case ch <- payload:
		default:
		}
		receivers++
	}
	return receivers
}

type rawTarget struct {
	r *rawBroker
	// The benchmarks publish one payload: its bytes are made once, so that
	// the raw floor pays for no conversion a user would avoid.
	payload      string
	payloadBytes []byte
}

func (t rawTarget) subscribe(_ testing.TB, channel string, buf int) any {
	ch := make(chan []byte, buf)
	t.r.mu.Lock()
	t.r.channels[channel] = append(t.r.channels[channel], ch)
	t.r.mu.Unlock()
	return (<-chan []byte)(ch)
}

func (t rawTarget) psubscribe(tb testing.TB, _ string, _ int) any {
	tb.Fatal("the raw baseline has no patterns")
	return nil
}

func (t rawTarget) psubscribeMany(tb testing.TB, _ []string, _ int) any {
	tb.Fatal("the raw baseline has no patterns")
	return nil
}

func (t rawTarget) unsubscribe(_ testing.TB, ch any, channel string) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	removeChan(t.r.channels, channel, ch)
}

// removeChan removes the Go channel ch (a receive-only view of it) from
// channel's subscribers in m.
func removeChan[T any](m map[string][]chan T, channel string, ch any) {
	subs := m[channel]
	for i, c := range subs {
		if (<-chan T)(c) == ch {
			subs = append(subs[:i:i], subs[i+1:]...)
			break
		}
	}
	if len(subs) == 0 {
		delete(m, channel)
	} else {
		m[channel] = subs
	}
}

func (t rawTarget) publish(channel, payload string) int {
	b := t.payloadBytes
	if payload != t.payload {
		b = []byte(payload)
	}
	return t.r.publish(channel, b)
}

// dropped is 0: the raw baseline counts nothing, and the benchmarks pace
// their publishers so that no buffer overflows.
func (t rawTarget) dropped() uint64 { return 0 }

func (t rawTarget) close() {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	for _, chs := range t.r.channels {
		for _, ch := range chs {
			close(ch)
		}
	}
	t.r.channels = nil
}

// benchTarget is what the benchmarks need of an implementation. A
// subscription is a receive-only Go channel, of Message or, for the raw
// baseline, of []byte.
type benchTarget interface {
	subscribe(tb testing.TB, channel string, buf int) any
	psubscribe(tb testing.TB, pattern string, buf int) any
	psubscribeMany(tb testing.TB, patterns []string, buf int) any
	unsubscribe(tb testing.TB, ch any, channel string)
	publish(channel, payload string) (receivers int)
	dropped() uint64
	close()
}

type brokerTarget struct{ b *Broker }

func (t brokerTarget) subscribe(tb testing.TB, channel string, buf int) any {
	s, err := t.b.NewSubscription(WithBufferSize(buf))
	if err == nil {
		err = s.Subscribe(context.Background(), channel)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s.Channel()
}

func (t brokerTarget) psubscribe(tb testing.TB, pattern string, buf int) any {
	s, err := t.b.NewSubscription(WithBufferSize(buf))
	if err == nil {
		err = s.PSubscribe(context.Background(), pattern)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s.Channel()
}

func (t brokerTarget) psubscribeMany(tb testing.TB, patterns []string, buf int) any {
	s, err := t.b.NewSubscription(WithBufferSize(buf))
	if err == nil {
		err = s.PSubscribe(context.Background(), patterns...)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s.Channel()
}

func (t brokerTarget) unsubscribe(tb testing.TB, _ any, channel string) {
	tb.Fatal("brokerTarget.unsubscribe: use the Subscription")
}

func (t brokerTarget) publish(channel, payload string) int {
	n, _ := t.b.Publish(context.Background(), channel, payload)
	return n
}

func (t brokerTarget) dropped() uint64 { return t.b.Stats().Dropped }
func (t brokerTarget) close()          { _ = t.b.Close() }

type naiveTarget struct {
	n     *naiveBroker
	drops *atomic.Uint64
}

func (t naiveTarget) subscribe(_ testing.TB, channel string, buf int) any {
	ch := make(chan Message, buf)
	t.n.mu.Lock()
	t.n.channels[channel] = append(t.n.channels[channel], ch)
	t.n.mu.Unlock()
	return (<-chan Message)(ch)
}

func (t naiveTarget) psubscribe(_ testing.TB, pattern string, buf int) any {
	ch := make(chan Message, buf)
	t.n.mu.Lock()
	t.n.patterns = append(t.n.patterns, naivePattern{m: compilePattern(pattern), ch: ch})
	t.n.mu.Unlock()
	return (<-chan Message)(ch)
}

func (t naiveTarget) psubscribeMany(_ testing.TB, patterns []string, buf int) any {
	ch := make(chan Message, buf)
	t.n.mu.Lock()
	for _, p := range patterns {
		t.n.patterns = append(t.n.patterns, naivePattern{m: compilePattern(p), ch: ch})
	}
	t.n.mu.Unlock()
	return (<-chan Message)(ch)
}

func (t naiveTarget) unsubscribe(_ testing.TB, ch any, channel string) {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	removeChan(t.n.channels, channel, ch)
}

func (t naiveTarget) publish(channel, payload string) int {
	r, d := t.n.publish(channel, payload)
	if d > 0 {
		t.drops.Add(uint64(d))
	}
	return r
}

func (t naiveTarget) dropped() uint64 { return t.drops.Load() }

func (t naiveTarget) close() {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	for _, chs := range t.n.channels {
		for _, ch := range chs {
			close(ch)
		}
	}
	closed := map[chan Message]bool{}
	for _, p := range t.n.patterns {
		if !closed[p.ch] {
			close(p.ch)
			closed[p.ch] = true
		}
	}
	t.n.channels, t.n.patterns = nil, nil
}

type impl struct {
	name string
	make func() benchTarget
}

var (
	brokerImpl = impl{"broker", func() benchTarget { return brokerTarget{New()} }}
	naiveImpl  = impl{"naive", func() benchTarget { return naiveTarget{newNaive(), new(atomic.Uint64)} }}
	rawImpl    = impl{"raw", func() benchTarget {
		return rawTarget{&rawBroker{channels: make(map[string][]chan []byte)}, "payload", []byte("payload")}
	}}
	// impls are the implementations of the benchmarks of channels; the
	// pattern benchmarks leave out the raw baseline, which has none.
	impls        = []impl{brokerImpl, naiveImpl, rawImpl}
	patternImpls = []impl{brokerImpl, naiveImpl}
)

// consumers drains channels on one goroutine each and counts what arrives.
//
// A consumer that finds its buffer empty yields once before it blocks.
// Without that, fan-out runs flipped between two steady states, for either
// implementation and for seconds at a time: consumers that keep up park
// after every message, so every send has to wake one (3-4 us per publish
// to 10 subscribers), while consumers that lag drain in batches (about
// 1 us). The yield lets the publisher refill the buffers, so runs measure
// the second state, where the broker's own cost shows.
type consumers struct {
	wg     sync.WaitGroup
	counts []*paddedCount
}

type paddedCount struct {
	n atomic.Uint64
	_ [56]byte // one cache line per consumer
}

// start drains each of chs, a <-chan Message or a <-chan []byte, on a
// goroutine of its own.
func (c *consumers) start(chs ...any) {
	for _, ch := range chs {
		count := new(paddedCount)
		c.counts = append(c.counts, count)
		switch ch := ch.(type) {
		case <-chan Message:
			c.wg.Go(func() { consume(ch, count) })
		case <-chan []byte:
			c.wg.Go(func() { consume(ch, count) })
		default:
			panic(fmt.Sprintf("consumers.start: %T", ch))
		}
	}
}

// consume is one consumer's loop, the same for every implementation.
func consume[T any](ch <-chan T, count *paddedCount) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
			count.n.Add(1)
			continue
		default:
		}
		// Found empty: yield once before blocking (see consumers).
		runtime.Gosched()
		if _, ok := <-ch; !ok {
			return
		}
		count.n.Add(1)
	}
}

// Flow control: a publisher lets its consumers catch up every paceEvery
// publishes, until they lag by at most paceSlack messages. With a 4096
// buffer that keeps runs free of drops on a machine with fewer cores than
// goroutines, so they measure sustained delivery rather than the drop path.
const (
	benchBuffer = 4096
	paceEvery   = 512
	paceSlack   = 2048
)

// waitFor spins until count reaches target.
func waitFor(b *testing.B, count *paddedCount, target uint64) {
	for spins := 0; count.n.Load() < target; spins++ {
		runtime.Gosched()
		if spins&0xffff == 0xffff && b.Elapsed() > 5*time.Minute {
			b.Fatal("consumer stalled")
		}
	}
}

// pace makes every consumer catch up to within paceSlack of want messages.
func (c *consumers) pace(b *testing.B, want uint64) {
	if want < paceSlack {
		return
	}
	for _, count := range c.counts {
		waitFor(b, count, want-paceSlack)
	}
}

func (c *consumers) received() uint64 {
	var sum uint64
	for _, count := range c.counts {
		sum += count.n.Load()
	}
	return sum
}

// finish waits until every receiver of the publishes has either received
// its message or counted it as dropped, failing the benchmark after a
// deadline instead of hanging; then it stops the timer and tears down.
func (c *consumers) finish(b *testing.B, t benchTarget, receivers uint64) {
	deadline := time.Now().Add(time.Minute)
	for c.received()+t.dropped() < receivers {
		if time.Now().After(deadline) {
			b.Fatalf("consumers drained %d of %d messages within a minute", c.received()+t.dropped(), receivers)
		}
		time.Sleep(20 * time.Microsecond)
	}
	b.StopTimer()
	t.close()
	c.wg.Wait()
}

// report states throughput in delivered messages. Runs with drops are not
// comparable with runs without, and the drops metric says so.
func report(b *testing.B, c *consumers, t benchTarget, publishes int) {
	delivered := c.received()
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(delivered)/float64(publishes), "deliveries/op")
	b.ReportMetric(float64(t.dropped()), "drops")
	if delivered > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivery")
	}
}

// BenchmarkFanout publishes from one goroutine to N subscribers of one
// channel and measures delivery: the timer stops only once every consumer
// has drained its buffer. The benchmarks that time delivery use a b.N
// loop rather than b.Loop because the drain after the last publish must be
// timed, and b.Loop stops the timer when the loop ends.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{1, 10, 100, 1000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("subs=%d/impl=%s", subs, impl.name), func(b *testing.B) {
				t := impl.make()
				var c consumers
				for range subs {
					c.start(t.subscribe(b, "news", benchBuffer))
				}
				b.ReportAllocs()
				runtime.GC() // setup garbage is not the publisher's
				b.ResetTimer()
				receivers := 0
				for i := 1; i <= b.N; i++ {
					receivers += t.publish("news", "payload")
					if i%paceEvery == 0 {
						c.pace(b, uint64(i)) // every consumer gets every message
					}
				}
				c.finish(b, t, uint64(receivers))
				report(b, &c, t, b.N)
			})
		}
	}
}

// BenchmarkTopics runs P publishers, each publishing to its own channel
// with one subscriber, and reports their aggregate delivered throughput.
func BenchmarkTopics(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	for _, mult := range []int{1, 4} {
		pubs := procs * mult
		for _, impl := range impls {
			name := fmt.Sprintf("pubs=%dxGOMAXPROCS/impl=%s", mult, impl.name)
			b.Run(name, func(b *testing.B) {
				t := impl.make()
				var c consumers
				for i := range pubs {
					c.start(t.subscribe(b, "topic:"+strconv.Itoa(i), benchBuffer))
				}
				var next atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(mult)
				b.ResetTimer()
				var receivers atomic.Uint64
				b.RunParallel(func(pb *testing.PB) {
					id := int(next.Add(1)-1) % pubs
					channel, own := "topic:"+strconv.Itoa(id), c.counts[id]
					n := 0
					for pb.Next() {
						n += t.publish(channel, "payload")
						if n%paceEvery == 0 && n >= paceSlack {
							waitFor(b, own, uint64(n-paceSlack))
						}
					}
					receivers.Add(uint64(n))
				})
				c.finish(b, t, receivers.Load())
				report(b, &c, t, b.N)
			})
		}
	}
}

// patternShapes returns k patterns of one shape and a function that picks
// the channel of the i-th publish, from 100,000 distinct channels (no
// cache of recent channels could stand in for the index), each matching
// one pattern, so that every k is measured at one match per publish.
func patternShapes(shape string, k int) (patterns []string, channel func(i int) string) {
	patterns = make([]string, k)
	for i := range patterns {
		patterns[i] = shapedPattern(shape, i)
	}
	if shape == "prefix" { // the same channel on every publish
		target := shapedChannel(shape, k/2, 0)
		return patterns, func(int) string { return target }
	}
	r := rand.New(rand.NewPCG(1, uint64(k)))
	const distinct = 100000
	seen := make(map[string]bool, distinct)
	channels := make([]string, 0, distinct)
	for len(channels) < distinct {
		if ch := shapedChannel(shape, r.IntN(k), r.IntN(2*distinct/k+1)); !seen[ch] {
			seen[ch] = true
			channels = append(channels, ch)
		}
	}
	return patterns, func(i int) string { return channels[i%distinct] }
}

// patternShape names the shapes of BenchmarkPatterns; mixed takes the
// others in turn.
var patternShape = []string{"sharedhead", "sharedtail", "infix", "classhead"}

// shapedPattern is the i-th pattern of a shape.
func shapedPattern(shape string, i int) string {
	n := strconv.Itoa(i)
	switch shape {
	case "prefix":
		return "prefix:" + n + ":*"
	case "sharedhead": // one literal head for all; what differs follows a star
		return "tenant:*:" + n
	case "sharedtail": // one literal tail for all; what differs precedes a star
		return "*:" + n + ":*:events"
	case "infix": // the only literal run is inside
		return "*-" + n + "-*"
	case "classhead": // a '?' or a class first
		if i%2 == 0 {
			return "[a-c]" + n + ":*"
		}
		return "?" + n + ":*"
	default: // mixed
		return shapedPattern(patternShape[i%len(patternShape)], i)
	}
}

// shapedChannel is a channel the i-th pattern of a shape matches; v varies
// it without changing what it matches.
func shapedChannel(shape string, i, v int) string {
	n, w := strconv.Itoa(i), strconv.Itoa(v)
	switch shape {
	case "prefix":
		return "prefix:" + n + ":event"
	case "sharedhead":
		return "tenant:t" + w + ":" + n
	case "sharedtail":
		return "app:" + n + ":h" + w + ":events"
	case "infix":
		return "a" + w + "-" + n + "-b"
	case "classhead":
		return "b" + n + ":" + w
	default:
		return shapedChannel(patternShape[i%len(patternShape)], i, v)
	}
}

// BenchmarkPatterns publishes against K subscribed patterns of one shape:
// prefix ("prefix:<i>:*", one channel), sharedhead ("tenant:*:<i>"),
// sharedtail ("*:<i>:*:events"), infix ("*-<i>-*"), classhead
// ("[a-c]<i>:*" and "?<i>:*") and mixed (all four in turn). Every publish
// matches one pattern (matches/op); every shape but prefix publishes over
// 100,000 distinct channels.
func BenchmarkPatterns(b *testing.B) {
	for _, shape := range []string{"prefix", "sharedhead", "sharedtail", "infix", "classhead", "mixed"} {
		for _, k := range []int{100, 10000, 100000} {
			patterns, channel := patternShapes(shape, k)
			for _, impl := range patternImpls {
				if impl.name == "naive" && k > 10000 {
					continue // a linear scan of 100,000 patterns a publish: too slow to be useful
				}
				b.Run(fmt.Sprintf("shape=%s/patterns=%d/impl=%s", shape, k, impl.name), func(b *testing.B) {
					benchPatterns(b, impl, patterns, channel)
				})
			}
		}
	}
}

func benchPatterns(b *testing.B, impl impl, patterns []string, channel func(int) string) {
	t := impl.make()
	var c consumers
	c.start(t.psubscribeMany(b, patterns, benchBuffer))
	b.ReportAllocs()
	runtime.GC() // setup garbage is not the publisher's
	b.ResetTimer()
	receivers := 0
	for i := 1; i <= b.N; i++ {
		receivers += t.publish(channel(i), "payload")
		if i%(paceEvery/4) == 0 {
			c.pace(b, uint64(receivers))
		}
	}
	c.finish(b, t, uint64(receivers))
	report(b, &c, t, b.N)
	b.ReportMetric(float64(receivers)/float64(b.N), "matches/op")
}

// BenchmarkPatternsLongChannel is the adversarial case of an index by
// literal runs: 10,000 patterns "*ab<i>*" share the bigram "ab", and every
// channel is "abab...", where the bigram occurs at every other byte and no
// pattern matches.
func BenchmarkPatternsLongChannel(b *testing.B) {
	patterns := make([]string, 10000)
	for i := range patterns {
		patterns[i] = "*ab" + strconv.Itoa(i) + "*"
	}
	for _, length := range []int{200, 2000} {
		channel := strings.Repeat("ab", length/2)
		for _, impl := range patternImpls {
			b.Run(fmt.Sprintf("bytes=%d/impl=%s", length, impl.name), func(b *testing.B) {
				benchPatterns(b, impl, patterns, func(int) string { return channel })
			})
		}
	}
}

// BenchmarkFanoutFunc publishes from one goroutine to N function
// subscriptions of one channel (NewSubscriptionFunc, as the server's
// clients are), each counting what it gets, beside impl=raw: the same
// functions in a map[string][]func under an RWMutex, called in a loop.
func BenchmarkFanoutFunc(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d/impl=broker", subs), func(b *testing.B) {
			br := New()
			defer br.Close()
			counts := make([]atomic.Int64, subs)
			for i := range subs {
				s, err := br.NewSubscriptionFunc(func(context.Context, Message) { counts[i].Add(1) })
				if err == nil {
					_, err = s.Add(context.Background(), Channels, nil, "news")
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			benchFanoutFunc(b, subs, counts, func() int {
				n, _ := br.Publish(context.Background(), "news", "payload")
				return n
			})
		})
		b.Run(fmt.Sprintf("subs=%d/impl=raw", subs), func(b *testing.B) {
			var mu sync.RWMutex
			fns := map[string][]func(channel, payload string){}
			counts := make([]atomic.Int64, subs)
			for i := range subs {
				fns["news"] = append(fns["news"], func(string, string) { counts[i].Add(1) })
			}
			benchFanoutFunc(b, subs, counts, func() int {
				mu.RLock()
				defer mu.RUnlock()
				list := fns["news"]
				for _, fn := range list {
					fn("news", "payload")
				}
				return len(list)
			})
		})
	}
}

func benchFanoutFunc(b *testing.B, subs int, counts []atomic.Int64, publish func() int) {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	receivers := 0
	for b.Loop() {
		receivers += publish()
	}
	b.StopTimer()
	var got int64
	for i := range counts {
		got += counts[i].Load()
	}
	if got != int64(receivers) || receivers != b.N*subs {
		b.Fatalf("%d publishes to %d functions: %d receivers, %d calls", b.N, subs, receivers, got)
	}
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(got), "ns/delivery")
}

// BenchmarkOneChannel subscribes N subscriptions to one channel, then
// closes them, and reports the time per subscribe and per close.
func BenchmarkOneChannel(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var subscribing, closing time.Duration
			subs := make([]*Subscription, n)
			b.ReportAllocs()
			for b.Loop() {
				br := New(WithBufferSize(1))
				start := time.Now()
				for i := range subs {
					s, err := br.Subscribe(ctx, "one")
					if err != nil {
						b.Fatal(err)
					}
					subs[i] = s
				}
				subscribing += time.Since(start)
				start = time.Now()
				for _, s := range subs {
					_ = s.Close()
				}
				closing += time.Since(start)
				_ = br.Close()
			}
			b.ReportMetric(float64(subscribing.Nanoseconds())/float64(b.N*n), "ns/subscribe")
			b.ReportMetric(float64(closing.Nanoseconds())/float64(b.N*n), "ns/close")
		})
	}
}

// BenchmarkPublishNoSubscribers publishes to a channel nobody listens to,
// while 1000 other channels have subscribers.
func BenchmarkPublishNoSubscribers(b *testing.B) {
	for _, impl := range impls {
		b.Run("impl="+impl.name, func(b *testing.B) {
			t := impl.make()
			defer t.close()
			for i := range 1000 {
				t.subscribe(b, "busy:"+strconv.Itoa(i), 1)
			}
			b.ReportAllocs()
			for b.Loop() {
				t.publish("nobody", "payload")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkChurn subscribes and unsubscribes one channel while 1000 other
// channels are subscribed. An op is one subscribe plus one unsubscribe.
func BenchmarkChurn(b *testing.B) {
	ctx := context.Background()
	b.Run("others=1000/impl=broker", func(b *testing.B) {
		br := New(WithBufferSize(1))
		defer br.Close()
		for i := range 1000 {
			if _, err := br.Subscribe(ctx, "busy:"+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
		s, err := br.NewSubscription()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Subscribe(ctx, "churn")
			_ = s.Unsubscribe(ctx, "churn")
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "churns/s")
	})
	for _, impl := range []impl{naiveImpl, rawImpl} {
		b.Run("others=1000/impl="+impl.name, func(b *testing.B) {
			t := impl.make()
			defer t.close()
			for i := range 1000 {
				t.subscribe(b, "busy:"+strconv.Itoa(i), 1)
			}
			b.ReportAllocs()
			for b.Loop() {
				ch := t.subscribe(b, "churn", 1)
				t.unsubscribe(b, ch, "churn")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "churns/s")
		})
	}
}

// BenchmarkMemory measures the heap held per subscription, with 100,000
// subscriptions of one channel each, with the default buffer, with 8 slots
// and with no buffer slots (the bookkeeping alone).
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	const subs = 100000
	for _, buf := range []int{DefaultBufferSize, 8, 0} {
		b.Run(fmt.Sprintf("buffer=%d", buf), func(b *testing.B) {
			var perSub float64
			b.ReportAllocs()
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				br := New(WithBufferSize(buf))
				for i := range subs {
					s, err := br.NewSubscription()
					if err == nil {
						err = s.Subscribe(ctx, "channel:"+strconv.Itoa(i))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSub = float64(after.HeapAlloc-before.HeapAlloc) / subs
				runtime.KeepAlive(br)
				_ = br.Close()
			}
			b.ReportMetric(perSub, "B/sub")
		})
	}
}
