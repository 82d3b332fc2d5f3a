package pubsub

import (
	"context"
	"fmt"
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

// benchTarget is what the benchmarks need of an implementation.
type benchTarget interface {
	subscribe(tb testing.TB, channel string, buf int) <-chan Message
	psubscribe(tb testing.TB, pattern string, buf int) <-chan Message
	publish(channel, payload string) (receivers int)
	dropped() uint64
	close()
}

type brokerTarget struct{ b *Broker }

func (t brokerTarget) subscribe(tb testing.TB, channel string, buf int) <-chan Message {
	s, err := t.b.NewSubscription(WithBufferSize(buf))
	if err == nil {
		err = s.Subscribe(context.Background(), channel)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s.Channel()
}

func (t brokerTarget) psubscribe(tb testing.TB, pattern string, buf int) <-chan Message {
	s, err := t.b.NewSubscription(WithBufferSize(buf))
	if err == nil {
		err = s.PSubscribe(context.Background(), pattern)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return s.Channel()
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

func (t naiveTarget) subscribe(_ testing.TB, channel string, buf int) <-chan Message {
	ch := make(chan Message, buf)
	t.n.mu.Lock()
	t.n.channels[channel] = append(t.n.channels[channel], ch)
	t.n.mu.Unlock()
	return ch
}

func (t naiveTarget) psubscribe(_ testing.TB, pattern string, buf int) <-chan Message {
	ch := make(chan Message, buf)
	t.n.mu.Lock()
	t.n.patterns = append(t.n.patterns, naivePattern{m: compilePattern(pattern), ch: ch})
	t.n.mu.Unlock()
	return ch
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
	for _, p := range t.n.patterns {
		close(p.ch)
	}
	t.n.channels, t.n.patterns = nil, nil
}

var impls = []struct {
	name string
	make func() benchTarget
}{
	{"broker", func() benchTarget { return brokerTarget{New()} }},
	{"naive", func() benchTarget { return naiveTarget{newNaive(), new(atomic.Uint64)} }},
}

// consumers drains channels on one goroutine each and counts what arrives.
type consumers struct {
	wg       sync.WaitGroup
	received atomic.Uint64
}

func (c *consumers) start(chs ...<-chan Message) {
	for _, ch := range chs {
		c.wg.Go(func() {
			n := uint64(0)
			for range ch {
				n++
			}
			c.received.Add(n)
		})
	}
}

// finish closes the target and waits for every consumer to drain, failing
// the benchmark if that takes longer than a deadline instead of hanging.
func (c *consumers) finish(b *testing.B, t benchTarget) {
	t.close()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("consumers did not drain within a minute")
	}
}

// report states throughput in delivered messages. Runs with drops are not
// comparable with runs without, and the drops metric says so.
func report(b *testing.B, c *consumers, t benchTarget, publishes int) {
	delivered := c.received.Load()
	b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(delivered)/float64(publishes), "deliveries/op")
	b.ReportMetric(float64(t.dropped()), "drops")
	if delivered > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivery")
	}
}

// BenchmarkFanout publishes from one goroutine to N subscribers of one
// channel and measures delivery: the timer stops only once every consumer
// has drained its buffer. It uses a b.N loop rather than b.Loop because
// the drain after the last publish must be timed.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{1, 10, 100, 1000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("subs=%d/impl=%s", subs, impl.name), func(b *testing.B) {
				t := impl.make()
				var c consumers
				for range subs {
					c.start(t.subscribe(b, "news", 4096))
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					t.publish("news", "payload")
				}
				c.finish(b, t)
				b.StopTimer()
				report(b, &c, t, b.N)
			})
		}
	}
}
