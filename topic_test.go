package pubsub

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// colliding returns n channel names that fall in the same stripe and the
// same hash bucket as channel, for tables of up to 1024 buckets.
func colliding(x *topicIndex, channel string, n int) []string {
	_, h := x.stripeOf(channel)
	const bucketBits = 1<<10 - 1
	var out []string
	for i := 0; len(out) < n; i++ {
		name := "collide:" + strconv.Itoa(i)
		if _, g := x.stripeOf(name); g&x.mask == h&x.mask && (g>>32)&bucketBits == (h>>32)&bucketBits {
			out = append(out, name)
		}
	}
	return out
}

// Publish looks a channel up without the stripe lock first. While other
// channels of its very hash chain come and go, and the tables grow, a
// channel subscribed all along must never look empty, and one never
// subscribed must never find a receiver.
func TestPublishLookupWhileTablesChange(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, WithBufferSize(1)) // full after the first: still a receiver
	_, err := b.Subscribe(ctx, "stable")
	require.NoError(t, err)
	neighbours := colliding(b.channels, "stable", 8)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	churn := func(names func(round int) []string) {
		wg.Go(func() {
			s, err := b.NewSubscription()
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for round := 0; ; round++ {
				for _, name := range names(round) {
					if err := s.Subscribe(ctx, name); err != nil {
						t.Error(err)
						return
					}
				}
				if err := s.Unsubscribe(ctx); err != nil { // all of them
					t.Error(err)
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	// Neighbours join the chain in front of "stable" and leave it.
	churn(func(int) []string { return neighbours })
	// Thousands of channels make every table grow, with new names each
	// round so that the tables keep growing.
	churn(func(round int) []string {
		names := make([]string, 2000)
		for i := range names {
			names[i] = "grow:" + strconv.Itoa(round) + ":" + strconv.Itoa(i)
		}
		return names
	})
	for i := 0; i < 50000; i++ {
		n, err := b.Publish(ctx, "stable", "x")
		require.NoError(t, err)
		require.Equal(t, 1, n, "publish %d", i)
		n, err = b.Publish(ctx, "never", "x")
		require.NoError(t, err)
		require.Zero(t, n, "publish %d", i)
	}
	close(stop)
	wg.Wait()
}

// A reader without the lock walks a table while it grows: growing must not
// relink the topics that reader is standing on.
func TestTopicTableFindWhileGrowing(t *testing.T) {
	x := newTopicIndex()
	_, h := x.stripeOf("stable")
	neighbours := colliding(x, "stable", 4)
	for round := 0; round < 100; round++ {
		var tt topicTable
		tt.insert(&topic{name: "stable", hash: h})
		for _, name := range neighbours {
			_, g := x.stripeOf(name)
			tt.insert(&topic{name: name, hash: g})
		}
		done := make(chan struct{})
		misses := make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-done:
					misses <- n
					return
				default:
				}
				if tt.find(h, "stable") == nil {
					n++
				}
			}
		}()
		for i := range 2000 {
			name := "grow:" + strconv.Itoa(i)
			_, g := x.stripeOf(name)
			tt.insert(&topic{name: name, hash: g})
		}
		close(done)
		require.Zero(t, <-misses, "round %d", round)
	}
}

// A publish that found its topic without the lock and then waited for it
// must not deliver through a topic retired meanwhile: when the table grew,
// the copy took over, and the old one's members are stale.
func TestDeliverAtSkipsRetiredTopic(t *testing.T) {
	b := newBroker(t)
	s, err := b.NewSubscription()
	require.NoError(t, err)
	x := b.channels
	mb := &member{s: s, ch: s.ch, name: "x", ns: Channels}
	x.add(mb)
	sh, stale := x.locate("x")
	require.NotNil(t, stale)

	// Grow x's table: its topic is replaced by a copy.
	for _, name := range colliding(x, "x", 64) {
		x.add(&member{s: s, ch: s.ch, name: name, ns: Channels})
	}
	require.True(t, stale.retired, "growing retires the old topic")
	x.remove(mb) // the copy loses mb; the retired topic still lists it

	tl := tally{spare: b.spare}
	x.deliverAt(sh, stale, &tl, &Message{Kind: KindMessage, Channel: "x", Payload: "late"})
	assert.Zero(t, tl.receivers, "delivered through a retired topic")
	assert.Empty(t, drain(s))
}

// A channel's and a pattern's members change in place, a removal moving the
// last member into the freed slot: after any order of removals, exactly the
// subscriptions still there receive, once each.
func TestManySubscribersOfOneNameLeaveInAnyOrder(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []Namespace{Channels, Patterns} {
		t.Run(ns.String(), func(t *testing.T) {
			b := newBroker(t, WithBufferSize(4))
			subs := make([]*Subscription, 300)
			for i := range subs {
				s, err := b.NewSubscription()
				require.NoError(t, err)
				_, err = s.Add(ctx, ns, nil, "one")
				require.NoError(t, err)
				subs[i] = s
			}
			r := rand.New(rand.NewPCG(7, 7))
			left := map[*Subscription]bool{}
			for _, s := range subs {
				left[s] = true
			}
			for round := range 3 {
				// Remove a random third of what is left, in random order.
				order := r.Perm(len(subs))
				for _, i := range order[:len(subs)/3] {
					if left[subs[i]] {
						_, err := subs[i].Remove(ctx, ns, nil, "one")
						require.NoError(t, err)
						delete(left, subs[i])
					}
				}
				n, err := b.Publish(ctx, "one", "round "+strconv.Itoa(round))
				require.NoError(t, err)
				assert.Equal(t, len(left), n)
				for _, s := range subs {
					select {
					case m := <-s.Channel():
						assert.True(t, left[s], "a subscription that left received %q", m.Payload)
					default:
						assert.False(t, left[s], "a subscription still there received nothing")
					}
				}
			}
			if ns == Channels {
				counts, err := b.NumSub(ctx, "one")
				require.NoError(t, err)
				assert.Equal(t, len(left), counts["one"])
			}
		})
	}
}
