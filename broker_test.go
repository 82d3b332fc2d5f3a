package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newBroker returns a Broker closed when the test ends.
func newBroker(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b := New(opts...)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// drain returns every message queued on s now, without waiting.
func drain(s *Subscription) []Message {
	var out []Message
	for {
		select {
		case m, ok := <-s.Channel():
			if !ok {
				return out
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

// sortMessages orders messages so that sets of deliveries compare equal
// whatever order patterns were matched in.
func sortMessages(ms []Message) []Message {
	slices.SortFunc(ms, func(a, b Message) int {
		return cmpStrings(fmt.Sprint(a), fmt.Sprint(b))
	})
	return ms
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type subSpec struct {
	channels, patterns, shard []string
}

func TestPublishCountsReceiversAsRedis(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		subs      []subSpec
		shard     bool // SPublish instead of Publish
		channel   string
		wantCount int
		want      [][]Message // per subscription, as a set
	}{
		{
			name: "nobody listening: the message is gone and PUBLISH returns 0",
			subs: []subSpec{{channels: []string{"other"}}}, channel: "news", wantCount: 0,
			want: [][]Message{nil},
		},
		{
			name: "one subscriber of the channel counts one",
			subs: []subSpec{{channels: []string{"news"}}}, channel: "news", wantCount: 1,
			want: [][]Message{{{Kind: KindMessage, Channel: "news", Payload: "p"}}},
		},
		{
			name: "a subscription holding the channel and a matching pattern receives message and pmessage",
			subs: []subSpec{{channels: []string{"news"}, patterns: []string{"n*"}}}, channel: "news", wantCount: 2,
			want: [][]Message{{
				{Kind: KindMessage, Channel: "news", Payload: "p"},
				{Kind: KindPMessage, Channel: "news", Pattern: "n*", Payload: "p"},
			}},
		},
		{
			name: "one pmessage per matching pattern of one subscription",
			subs: []subSpec{{patterns: []string{"n*", "*s", "x*"}}}, channel: "news", wantCount: 2,
			want: [][]Message{{
				{Kind: KindPMessage, Channel: "news", Pattern: "*s", Payload: "p"},
				{Kind: KindPMessage, Channel: "news", Pattern: "n*", Payload: "p"},
			}},
		},
		{
			name: "the same pattern held by two subscriptions counts twice",
			subs: []subSpec{{patterns: []string{"n*"}}, {patterns: []string{"n*"}}}, channel: "news", wantCount: 2,
			want: [][]Message{
				{{Kind: KindPMessage, Channel: "news", Pattern: "n*", Payload: "p"}},
				{{Kind: KindPMessage, Channel: "news", Pattern: "n*", Payload: "p"}},
			},
		},
		{
			name: "PUBLISH does not reach shard subscribers of the same name",
			subs: []subSpec{{shard: []string{"news"}}}, channel: "news", wantCount: 0,
			want: [][]Message{nil},
		},
		{
			name: "SPUBLISH reaches shard subscribers only, never patterns",
			subs: []subSpec{{shard: []string{"news"}, channels: []string{"news"}, patterns: []string{"*"}}}, shard: true, channel: "news", wantCount: 1,
			want: [][]Message{{{Kind: KindSMessage, Channel: "news", Payload: "p"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			subs := make([]*Subscription, len(tc.subs))
			for i, spec := range tc.subs {
				s, err := b.NewSubscription()
				require.NoError(t, err)
				for _, add := range []struct {
					fn    func(*Subscription, context.Context, ...string) error
					names []string
				}{{(*Subscription).Subscribe, spec.channels}, {(*Subscription).PSubscribe, spec.patterns}, {(*Subscription).SSubscribe, spec.shard}} {
					if len(add.names) > 0 {
						require.NoError(t, add.fn(s, ctx, add.names...))
					}
				}
				subs[i] = s
			}
			publish := b.Publish
			if tc.shard {
				publish = b.SPublish
			}
			n, err := publish(ctx, tc.channel, "p")
			require.NoError(t, err)
			assert.Equal(t, tc.wantCount, n, "Publish(%q) receivers", tc.channel)
			for i, s := range subs {
				assert.Equal(t, sortMessages(tc.want[i]), sortMessages(drain(s)), "deliveries of subscription %d", i)
			}
		})
	}
}

func TestSubscribeTwiceIsANoOp(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.Subscribe(ctx, "news", "news")
	require.NoError(t, err)
	require.NoError(t, s.Subscribe(ctx, "news"))
	require.NoError(t, s.PSubscribe(ctx, "n*", "n*"))
	st := s.Stats()
	assert.Equal(t, 1, st.Channels)
	assert.Equal(t, 1, st.Patterns)
	n, err := b.Publish(ctx, "news", "x")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one message and one pmessage, as Redis")
}

func TestUnsubscribeFromNothingIsNotAnError(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.NewSubscription()
	require.NoError(t, err)
	assert.NoError(t, s.Unsubscribe(ctx, "never"))
	assert.NoError(t, s.PUnsubscribe(ctx, "never*"))
	assert.NoError(t, s.SUnsubscribe(ctx, "never"))
	assert.NoError(t, s.Unsubscribe(ctx), "unsubscribe-all with nothing held")
}

func TestUnsubscribeWithNoArgumentsLeavesEveryOneOfThatKind(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.Subscribe(ctx, "a", "b", "c")
	require.NoError(t, err)
	require.NoError(t, s.PSubscribe(ctx, "x*", "y*"))
	require.NoError(t, s.SSubscribe(ctx, "s1"))

	require.NoError(t, s.Unsubscribe(ctx))
	ch, pats, shard := s.Subscribed()
	assert.Empty(t, ch)
	assert.ElementsMatch(t, []string{"x*", "y*"}, pats, "patterns stay")
	assert.Equal(t, []string{"s1"}, shard, "shard channels stay")

	require.NoError(t, s.PUnsubscribe(ctx))
	require.NoError(t, s.SUnsubscribe(ctx))
	st := s.Stats()
	assert.Zero(t, st.Channels+st.Patterns+st.ShardChannels)
	assert.NoError(t, s.Err(), "a subscription with nothing left stays open")
}

func TestSubscriptionCountsChannelsPlusPatternsAndShardApart(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.Subscribe(ctx, "a", "b")
	require.NoError(t, err)
	require.NoError(t, s.PSubscribe(ctx, "p*"))
	require.NoError(t, s.SSubscribe(ctx, "a", "z"))
	st := s.Stats()
	assert.Equal(t, 3, st.Channels+st.Patterns, "the count SUBSCRIBE and PSUBSCRIBE reply with")
	assert.Equal(t, 2, st.ShardChannels, "the count SSUBSCRIBE replies with")
}

func TestIntrospectionAnswersAsPubsubCommands(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s1, err := b.Subscribe(ctx, "news:seoul", "news:busan", "")
	require.NoError(t, err)
	s2, err := b.Subscribe(ctx, "news:seoul")
	require.NoError(t, err)
	require.NoError(t, s1.PSubscribe(ctx, "news:*", "x*"))
	require.NoError(t, s2.PSubscribe(ctx, "news:*"))
	require.NoError(t, s2.SSubscribe(ctx, "orders:{1}", "orders:{2}"))

	all, err := b.Channels(ctx, "*")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"news:seoul", "news:busan", ""}, all, `"*" lists every channel, as PUBSUB CHANNELS without a pattern`)
	some, err := b.Channels(ctx, "news:s*")
	require.NoError(t, err)
	assert.Equal(t, []string{"news:seoul"}, some)
	empty, err := b.Channels(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []string{""}, empty, `the empty pattern matches only the empty channel`)

	numSub, err := b.NumSub(ctx, "news:seoul", "news:busan", "nobody")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"news:seoul": 2, "news:busan": 1, "nobody": 0}, numSub, "NUMSUB counts channel subscribers, not patterns")

	numPat, err := b.NumPat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, numPat, "NUMPAT counts unique patterns (Redis 6.2+)")

	shard, err := b.ShardChannels(ctx, "orders:*")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"orders:{1}", "orders:{2}"}, shard)
	shardSub, err := b.ShardNumSub(ctx, "orders:{1}", "news:seoul")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"orders:{1}": 1, "news:seoul": 0}, shardSub)

	require.NoError(t, s1.Close())
	numPat, err = b.NumPat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, numPat, "a pattern leaves NUMPAT with its last subscriber")
	all, err = b.Channels(ctx, "*")
	require.NoError(t, err)
	assert.Equal(t, []string{"news:seoul"}, all, "channels without subscribers are not listed")

	st := b.Stats()
	assert.Equal(t, Stats{Channels: 1, Patterns: 1, ShardChannels: 2, Subscriptions: 1}, st)
}

func TestNamesAndPayloadsAreBinarySafe(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	names := []string{"news:서울", "\xff\xfe", "a\x00b", "", " "}
	s, err := b.Subscribe(ctx, names...)
	require.NoError(t, err)
	require.NoError(t, s.PSubscribe(ctx, "news:서*"))
	for _, name := range names {
		payload := "안녕하세요 \x00\xff " + name
		n, err := b.Publish(ctx, name, payload)
		require.NoError(t, err)
		want := []Message{{Kind: KindMessage, Channel: name, Payload: payload}}
		if name == "news:서울" {
			want = append(want, Message{Kind: KindPMessage, Channel: name, Pattern: "news:서*", Payload: payload})
		}
		assert.Equal(t, len(want), n, "Publish(%q)", name)
		assert.Equal(t, want, drain(s), "deliveries for %q", name)
	}
}

func TestBadInputGetsAClearError(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.NewSubscription()
	require.NoError(t, err)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	//lint:ignore SA1012 a nil context is the input under test
	var nilCtx context.Context

	t.Run("a nil context", func(t *testing.T) {
		_, err := b.Publish(nilCtx, "a", "b")
		assert.ErrorIs(t, err, ErrNilContext)
		_, err = b.Subscribe(nilCtx, "a")
		assert.ErrorIs(t, err, ErrNilContext)
		assert.ErrorIs(t, s.Subscribe(nilCtx, "a"), ErrNilContext)
		_, err = s.ReceiveMessage(nilCtx)
		assert.ErrorIs(t, err, ErrNilContext)
		_, err = b.NumPat(nilCtx)
		assert.ErrorIs(t, err, ErrNilContext)
	})
	t.Run("a cancelled context leaves state unchanged", func(t *testing.T) {
		assert.ErrorIs(t, s.Subscribe(cancelled, "a"), context.Canceled)
		assert.Zero(t, s.Stats().Channels)
		_, err := b.Publish(cancelled, "a", "b")
		assert.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, b.Stats().Published)
	})
	t.Run("no channels where Redis replies wrong number of arguments", func(t *testing.T) {
		_, err := b.Subscribe(ctx)
		assert.ErrorIs(t, err, ErrNoArguments)
		_, err = b.PSubscribe(ctx)
		assert.ErrorIs(t, err, ErrNoArguments)
		_, err = b.SSubscribe(ctx)
		assert.ErrorIs(t, err, ErrNoArguments)
		assert.ErrorIs(t, s.Subscribe(ctx), ErrNoArguments)
		assert.Zero(t, b.Stats().Subscriptions-1, "no subscription left behind by a failed call")
	})
	t.Run("an option out of range", func(t *testing.T) {
		bad := New(WithBufferSize(-1))
		_, err := bad.Publish(ctx, "a", "b")
		assert.ErrorIs(t, err, ErrInvalidOption)
		_, err = bad.Subscribe(ctx, "a")
		assert.ErrorIs(t, err, ErrInvalidOption)
		_, err = b.NewSubscription(WithOverflow(Overflow(99)))
		assert.ErrorIs(t, err, ErrInvalidOption)
		_, err = b.NewSubscription(WithBufferSize(MaxBufferSize + 1))
		assert.ErrorIs(t, err, ErrInvalidOption)
	})
}

func TestCloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	ctx := context.Background()
	b := New()
	s, err := b.Subscribe(ctx, "a")
	require.NoError(t, err)
	_, err = b.Publish(ctx, "a", "queued")
	require.NoError(t, err)

	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Close(), ErrClosed, "second Close")

	m, err := s.ReceiveMessage(ctx)
	require.NoError(t, err, "messages queued before Close are still received")
	assert.Equal(t, "queued", m.Payload)
	_, err = s.ReceiveMessage(ctx)
	assert.ErrorIs(t, err, ErrClosed)
	_, ok := <-s.Channel()
	assert.False(t, ok, "the channel is closed")
	assert.ErrorIs(t, s.Err(), ErrClosed)
	assert.ErrorIs(t, s.Close(), ErrClosed)

	_, err = b.Publish(ctx, "a", "b")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.SPublish(ctx, "a", "b")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.Subscribe(ctx, "a")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.NewSubscription()
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, s.Subscribe(ctx, "b"), ErrClosed)
	assert.ErrorIs(t, s.Unsubscribe(ctx), ErrClosed)
	_, err = b.Channels(ctx, "*")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.NumSub(ctx, "a")
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, 0, b.Stats().Subscriptions)
}

func TestSubscriptionCloseLeavesEverything(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.Subscribe(ctx, "a")
	require.NoError(t, err)
	require.NoError(t, s.PSubscribe(ctx, "*"))
	require.NoError(t, s.SSubscribe(ctx, "a"))
	require.NoError(t, s.Close())
	assert.Equal(t, Stats{}, b.Stats())
	n, err := b.Publish(ctx, "a", "x")
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestReceiveMessageHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		s, err := b.Subscribe(t.Context(), "a")
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = s.ReceiveMessage(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)

		go func() {
			time.Sleep(time.Minute)
			_, _ = b.Publish(context.Background(), "a", "late")
		}()
		m, err := s.ReceiveMessage(t.Context())
		require.NoError(t, err)
		assert.Equal(t, "late", m.Payload)
	})
}

func TestOverflowPolicies(t *testing.T) {
	ctx := context.Background()
	publishN := func(t *testing.T, b *Broker, n int) {
		t.Helper()
		for i := range n {
			got, err := b.Publish(ctx, "a", fmt.Sprint(i))
			require.NoError(t, err)
			require.Equal(t, 1, got, "a full buffer still counts as a receiver, as in Redis")
		}
	}
	payloads := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Payload)
		}
		return out
	}

	t.Run("DropNewest keeps the first messages and reports each drop", func(t *testing.T) {
		var mu sync.Mutex
		var dropped []string
		b := newBroker(t, WithBufferSize(2), WithDropHandler(func(_ *Subscription, m Message) {
			mu.Lock()
			dropped = append(dropped, m.Payload)
			mu.Unlock()
		}))
		s, err := b.Subscribe(ctx, "a")
		require.NoError(t, err)
		publishN(t, b, 5)
		assert.Equal(t, []string{"0", "1"}, payloads(drain(s)))
		assert.Equal(t, []string{"2", "3", "4"}, dropped)
		st := s.Stats()
		assert.Equal(t, SubscriptionStats{Delivered: 2, Dropped: 3, Queued: 0, HighWater: 2, Capacity: 2, Channels: 1}, st, "refused by a full buffer: neither evicted nor disconnected")
		bs := b.Stats()
		assert.Equal(t, uint64(5), bs.Published)
		assert.Equal(t, uint64(2), bs.Delivered)
		assert.Equal(t, uint64(3), bs.Dropped)
	})
	t.Run("DropOldest keeps the latest messages", func(t *testing.T) {
		b := newBroker(t)
		s, err := b.NewSubscription(WithBufferSize(2), WithOverflow(DropOldest))
		require.NoError(t, err)
		require.NoError(t, s.Subscribe(ctx, "a"))
		publishN(t, b, 5)
		assert.Equal(t, []string{"3", "4"}, payloads(drain(s)))
		st := s.Stats()
		assert.Equal(t, uint64(5), st.Delivered)
		assert.Equal(t, uint64(3), st.Dropped)
		assert.Equal(t, uint64(3), st.Evicted, "every drop was an eviction")
		assert.Zero(t, st.Disconnected)
		bs := b.Stats()
		assert.Equal(t, Stats{Published: 5, Delivered: 5, Dropped: 3, Evicted: 3, HighWater: 2, Channels: 1, Subscriptions: 1}, bs)
	})
	t.Run("Disconnect closes the subscription after the queued messages", func(t *testing.T) {
		b := newBroker(t)
		s, err := b.NewSubscription(WithBufferSize(2), WithOverflow(Disconnect))
		require.NoError(t, err)
		require.NoError(t, s.Subscribe(ctx, "a"))
		publishN(t, b, 3)
		assert.ErrorIs(t, s.Err(), ErrSlowConsumer)
		assert.ErrorIs(t, s.Err(), ErrClosed)
		assert.Equal(t, []string{"0", "1"}, payloads(drain(s)))
		_, ok := <-s.Channel()
		assert.False(t, ok)
		n, err := b.Publish(ctx, "a", "after")
		require.NoError(t, err)
		assert.Zero(t, n, "a disconnected subscription is no longer a receiver")
		st := s.Stats()
		assert.Equal(t, uint64(1), st.Dropped)
		assert.Equal(t, uint64(1), st.Disconnected, "the message that overflowed was lost to the disconnection")
		assert.Zero(t, st.Evicted)
		bs := b.Stats()
		assert.Equal(t, Stats{Published: 4, Delivered: 2, Dropped: 1, Disconnected: 1}, bs, "a closed subscription's figures stay in the Broker's")
	})
	t.Run("Block waits for room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, s, done := blockedPublish(t)
			select {
			case <-done:
				t.Fatal("Publish returned while the buffer was full")
			default:
			}
			assert.Equal(t, "0", (<-s.Channel()).Payload)
			require.NoError(t, <-done)
			assert.Equal(t, "1", (<-s.Channel()).Payload)
		})
	})
	t.Run("Block gives up when the context ends and counts the drop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBroker(t, WithBufferSize(1), WithOverflow(Block))
			s, err := b.Subscribe(ctx, "a")
			require.NoError(t, err)
			publishN(t, b, 1)
			tctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			n, err := b.Publish(tctx, "a", "1")
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, 1, n)
			assert.Equal(t, uint64(1), s.Stats().Dropped)
		})
	})
	t.Run("Block is released by Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, s, done := blockedPublish(t)
			require.NoError(t, s.Close())
			assert.NoError(t, <-done)
			assert.Equal(t, uint64(1), s.Stats().Dropped)
		})
	})
}

// blockedPublish returns a Block-policy broker whose only subscription's
// one-slot buffer is full, and the result of a Publish now waiting for
// room. Call it inside a synctest bubble.
func blockedPublish(t *testing.T) (*Broker, *Subscription, <-chan error) {
	t.Helper()
	ctx := context.Background()
	b := newBroker(t, WithBufferSize(1), WithOverflow(Block))
	s, err := b.Subscribe(ctx, "a")
	require.NoError(t, err)
	_, err = b.Publish(ctx, "a", "0")
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := b.Publish(ctx, "a", "1")
		done <- err
	}()
	synctest.Wait()
	return b, s, done
}

func TestOnePublisherIsReceivedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBroker(t, WithBufferSize(16), WithOverflow(Block))
		s, err := b.Subscribe(ctx, "a")
		require.NoError(t, err)
		require.NoError(t, s.PSubscribe(ctx, "a*"))
		const n = 1000
		go func() {
			for i := range n {
				_, _ = b.Publish(ctx, "a", fmt.Sprint(i))
			}
		}()
		nextMsg, nextPat := 0, 0
		for range 2 * n {
			m := <-s.Channel()
			switch m.Kind {
			case KindMessage:
				require.Equal(t, fmt.Sprint(nextMsg), m.Payload)
				nextMsg++
			case KindPMessage:
				require.Equal(t, fmt.Sprint(nextPat), m.Payload)
				require.Less(t, nextPat, nextMsg, "a publish queues its message before its pmessage")
				nextPat++
			}
		}
	})
}

func TestNothingIsQueuedAfterUnsubscribeReturns(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, WithBufferSize(1<<16))
	s, err := b.Subscribe(ctx, "a")
	require.NoError(t, err)
	require.NoError(t, s.PSubscribe(ctx, "b*"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_, _ = b.Publish(ctx, "a", "x")
					_, _ = b.Publish(ctx, "bb", "x")
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, s.Unsubscribe(ctx, "a"))
	require.NoError(t, s.PUnsubscribe(ctx, "b*"))
	delivered := s.Stats().Delivered
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
	assert.Equal(t, delivered, s.Stats().Delivered, "messages queued after Unsubscribe returned")
}

// TestConsumerMayCallAnythingFromItsLoop proves that no user code runs
// under a lock: a consumer publishes, subscribes, unsubscribes and closes
// from inside its receive loop, and a drop handler publishes.
func TestConsumerMayCallAnythingFromItsLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := newBroker(t, WithBufferSize(4), WithDropHandler(func(s *Subscription, m Message) {
			_, _ = s.b.Publish(ctx, "drops", m.Payload)
		}))
		s, err := b.Subscribe(ctx, "ping")
		require.NoError(t, err)
		drops, err := b.Subscribe(ctx, "drops")
		require.NoError(t, err)
		done := make(chan struct{})
		go func() {
			defer close(done)
			hops := 0
			for m := range s.Channel() {
				hops++
				switch {
				case hops == 3:
					assert.NoError(t, s.Unsubscribe(ctx, m.Channel))
					assert.NoError(t, s.Subscribe(ctx, "pong"))
					_, err := b.Publish(ctx, "pong", "again")
					assert.NoError(t, err)
				case hops == 5:
					assert.NoError(t, s.Close())
				default:
					_, err := b.Publish(ctx, m.Channel, "again")
					assert.NoError(t, err)
				}
			}
		}()
		_, err = b.Publish(ctx, "ping", "start")
		require.NoError(t, err)
		<-done
		assert.ErrorIs(t, s.Err(), ErrClosed)
		// Fill the buffer so that the drop handler runs and publishes.
		s2, err := b.Subscribe(ctx, "full")
		require.NoError(t, err)
		for range 5 {
			_, err := b.Publish(ctx, "full", "lost?")
			require.NoError(t, err)
		}
		assert.Equal(t, uint64(1), s2.Stats().Dropped)
		assert.Equal(t, []Message{{Kind: KindMessage, Channel: "drops", Payload: "lost?"}}, drain(drops))
	})
}

// TestRaceChurnPublishClose provokes the hard interleavings: publishers of
// every kind, subscribe/unsubscribe churn, subscriptions closing under
// every policy, and Broker.Close in the middle of it all. Run with -race.
func TestRaceChurnPublishClose(t *testing.T) {
	for _, policy := range []Overflow{DropNewest, DropOldest, Disconnect, Block} {
		t.Run(policy.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b := New(WithBufferSize(2), WithOverflow(policy))
			var wg sync.WaitGroup
			channels := []string{"a", "b", "c"}
			for p := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						ch := channels[(p+i)%len(channels)]
						var err error
						if i%5 == 0 {
							_, err = b.SPublish(ctx, ch, "x")
						} else {
							_, err = b.Publish(ctx, ch, "x")
						}
						if errors.Is(err, ErrClosed) {
							return
						}
						if !assert.NoError(t, err) {
							return
						}
					}
				})
			}
			for c := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						s, err := b.NewSubscription()
						if errors.Is(err, ErrClosed) {
							return
						}
						ch := channels[(c+i)%len(channels)]
						_ = s.Subscribe(ctx, ch)
						_ = s.PSubscribe(ctx, "*")
						_ = s.SSubscribe(ctx, ch)
						for range i % 3 {
							select {
							case <-s.Channel():
							default:
							}
						}
						if i%2 == 0 {
							_ = s.Unsubscribe(ctx)
						}
						_, _, _ = s.Subscribed()
						_ = s.Stats()
						if i%3 != 0 {
							_ = s.Close()
						}
					}
				})
			}
			wg.Go(func() {
				for {
					if _, err := b.Channels(ctx, "*"); errors.Is(err, ErrClosed) {
						return
					}
					_, _ = b.NumSub(ctx, "a")
					_ = b.Stats()
				}
			})
			time.Sleep(50 * time.Millisecond)
			require.NoError(t, b.Close())
			wg.Wait()
			assert.Equal(t, 0, b.Stats().Subscriptions)
		})
	}
}

// TestPublishAllocatesNothing guards the hot path: publishing to exact
// channels and to a handful of patterns allocates nothing, whatever the
// number of subscribers.
func TestPublishAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(t *testing.T, b *Broker)
	}{
		{"no subscriber", func(t *testing.T, b *Broker) {}},
		{"one channel subscriber", func(t *testing.T, b *Broker) {
			_, err := b.Subscribe(ctx, "news")
			require.NoError(t, err)
		}},
		{"100 channel subscribers", func(t *testing.T, b *Broker) {
			for range 100 {
				_, err := b.Subscribe(ctx, "news")
				require.NoError(t, err)
			}
		}},
		{"4 matching patterns of 100 subscribers", func(t *testing.T, b *Broker) {
			for range 100 {
				_, err := b.PSubscribe(ctx, "n*", "*s", "ne?s", "[mn]ews", "x*")
				require.NoError(t, err)
			}
		}},
		{"a full buffer", func(t *testing.T, b *Broker) {
			s, err := b.NewSubscription(WithBufferSize(0))
			require.NoError(t, err)
			require.NoError(t, s.Subscribe(ctx, "news"))
		}},
		{"a full DropOldest buffer evicting on every publish", func(t *testing.T, b *Broker) {
			s, err := b.NewSubscription(WithBufferSize(1), WithOverflow(DropOldest))
			require.NoError(t, err)
			require.NoError(t, s.Subscribe(ctx, "news"))
		}},
		{"100 func subscriptions", func(t *testing.T, b *Broker) {
			for range 100 {
				s, err := b.NewSubscriptionFunc(func(context.Context, Message) {})
				require.NoError(t, err)
				require.NoError(t, s.Subscribe(ctx, "news"))
			}
		}},
		{"full buffers with a drop handler", func(t *testing.T, b *Broker) {
			for range 10 {
				s, err := b.NewSubscription(WithBufferSize(0), WithDropHandler(func(*Subscription, Message) {}))
				require.NoError(t, err)
				require.NoError(t, s.Subscribe(ctx, "news"))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, WithBufferSize(2048))
			tc.setup(t, b)
			allocs := testing.AllocsPerRun(1000, func() {
				_, _ = b.Publish(ctx, "news", "payload")
			})
			assert.Zero(t, allocs, "allocations per Publish")
		})
	}
}

func TestZeroBrokerIsReadyToUse(t *testing.T) {
	ctx := context.Background()
	var b Broker
	s, err := b.Subscribe(ctx, "a")
	require.NoError(t, err)
	n, err := b.Publish(ctx, "a", "x")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, DefaultBufferSize, s.Stats().Capacity, "default options")
	require.NoError(t, b.Close())
}

func TestNilReceiversBehaveAsClosed(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	_, err := b.Publish(ctx, "a", "x")
	assert.ErrorIs(t, err, ErrClosed)
	_, err = b.Subscribe(ctx, "a")
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, b.Close(), ErrClosed)
	assert.Equal(t, Stats{}, b.Stats())

	for _, s := range []*Subscription{nil, {}} {
		assert.ErrorIs(t, s.Subscribe(ctx, "a"), ErrClosed)
		assert.ErrorIs(t, s.Unsubscribe(ctx), ErrClosed)
		assert.ErrorIs(t, s.Close(), ErrClosed)
		assert.ErrorIs(t, s.Err(), ErrClosed)
		_, err := s.ReceiveMessage(ctx)
		assert.ErrorIs(t, err, ErrClosed)
		_, ok := <-s.Channel()
		assert.False(t, ok, "the channel of an invalid subscription is closed")
		assert.Equal(t, SubscriptionStats{}, s.Stats())
	}
}

func TestSubscriptionFuncCallsInsteadOfQueuing(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, WithBufferSize(1)) // no buffer applies to a func subscription
	var got []Message
	var s *Subscription
	s, err := b.NewSubscriptionFunc(func(_ context.Context, m Message) {
		got = append(got, m)
		if m.Payload == "leave" {
			// Calling back into the subscription is allowed: no lock is held.
			assert.NoError(t, s.Unsubscribe(ctx, m.Channel))
		}
	})
	require.NoError(t, err)
	require.NoError(t, s.Subscribe(ctx, "a"))
	require.NoError(t, s.PSubscribe(ctx, "a*"))
	for _, p := range []string{"1", "2", "3", "leave", "after"} {
		_, err := b.Publish(ctx, "a", p)
		require.NoError(t, err)
	}
	assert.Len(t, got, 9, "4 messages and 5 pmessages; none dropped although more than 1 was published")
	assert.Equal(t, Message{Kind: KindPMessage, Channel: "a", Pattern: "a*", Payload: "after"}, got[8])
	st := s.Stats()
	assert.Equal(t, uint64(9), st.Delivered)
	assert.Zero(t, st.Dropped)

	select {
	case <-s.Channel():
		t.Fatal("the channel of an open func subscription must not be ready")
	default:
	}
	require.NoError(t, s.Close())
	_, ok := <-s.Channel()
	assert.False(t, ok, "the channel closes with the subscription")

	_, err = b.NewSubscriptionFunc(nil)
	assert.ErrorIs(t, err, ErrNoArguments)
}

// A membership counts its own deliveries; the subscription adds them up
// and keeps them when the membership ends. While memberships come and go
// under a stream of publishes, Delivered never goes back and ends equal to
// what arrived.
func TestDeliveredSurvivesLeaving(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.NewSubscription(WithBufferSize(1024), WithOverflow(Block))
	require.NoError(t, err)
	require.NoError(t, s.Subscribe(ctx, "steady"))

	var reader, loops sync.WaitGroup
	var received int
	reader.Go(func() {
		for range s.Channel() {
			received++
		}
	})
	stop := make(chan struct{})
	loop := func(step func() error) {
		loops.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := step(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	loop(func() error {
		_, err := b.Publish(ctx, "toggled", "x")
		if err == nil {
			_, err = b.Publish(ctx, "steady", "x")
		}
		return err
	})
	loop(func() error {
		if err := s.Subscribe(ctx, "toggled"); err != nil {
			return err
		}
		return s.Unsubscribe(ctx, "toggled")
	})
	var last uint64
	for range 50000 {
		d := s.Stats().Delivered
		require.GreaterOrEqual(t, d, last, "Delivered went back")
		last = d
	}
	// The loops end before the subscription closes: a Subscribe begun
	// before stop and run after Close would fail with ErrClosed, as
	// documented.
	close(stop)
	loops.Wait()
	require.NoError(t, s.Close())
	reader.Wait()
	st := s.Stats()
	assert.Equal(t, uint64(received), st.Delivered)
	assert.Zero(t, st.Dropped)
	assert.Equal(t, uint64(received), b.Stats().Delivered, "the Broker keeps a closed subscription's count")
}

func TestSubscriptionsListsTheOpenOnes(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	assert.Empty(t, b.Subscriptions())
	s1, err := b.Subscribe(ctx, "a")
	require.NoError(t, err)
	s2, err := b.PSubscribe(ctx, "p*")
	require.NoError(t, err)
	assert.ElementsMatch(t, []*Subscription{s1, s2}, b.Subscriptions())
	require.NoError(t, s1.Close())
	assert.Equal(t, []*Subscription{s2}, b.Subscriptions())
	require.NoError(t, b.Close())
	assert.Empty(t, b.Subscriptions())
	assert.Nil(t, (*Broker)(nil).Subscriptions())
}
