package clients_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/servertest"
)

// kind is what a subscription names: a channel, a pattern or a shard
// channel.
type kind int

const (
	channel kind = iota
	pattern
	shard
)

// pubsubClient is one client library's way of doing what the scenario
// does, written as its users write it.
type pubsubClient interface {
	// subscribe starts a subscription that sends each message it receives
	// to got as "pattern channel payload" (no pattern: an empty one), and
	// goes on across a dropped connection, by the library's own
	// reconnection or, where it has none, as its users loop. done gets
	// its end once unsubscribed.
	subscribe(ctx context.Context, k kind, name string, got chan<- string) (done <-chan error)
	publish(ctx context.Context, k kind, channel, payload string) (int64, error)
	numSub(ctx context.Context, channels ...string) (map[string]int64, error)
	numPat(ctx context.Context) (int64, error)
	unsubscribe(ctx context.Context, k kind, name string) error
}

// exercise runs the client matrix's scenario: a channel, a pattern and a
// shard channel subscribed; PUBLISH and SPUBLISH with Redis's counts;
// messages in order; PUBSUB NUMSUB and NUMPAT; every client dropped, the
// subscriptions back and delivering; the three unsubscribed.
func exercise(t *testing.T, ctx context.Context, srv *servertest.Server, c pubsubClient) {
	t.Helper()
	got := make(chan string, 64)
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case m := <-got:
				assert.Equal(t, w, m)
			case <-ctx.Done():
				t.Fatalf("no message %q", w)
			}
		}
	}
	// Once the server dropped every client, a library's first command on
	// each of its connections may fail (it tells its user, who tries
	// again); the server never ran it, so nothing is sent twice.
	retry := func(what string, f func() error) {
		t.Helper()
		for {
			err := f()
			if err == nil {
				return
			}
			require.NoError(t, ctx.Err(), "%s: %v", what, err)
		}
	}
	publish := func(k kind, ch, payload string) (n int64) {
		t.Helper()
		retry("publish", func() (err error) { n, err = c.publish(ctx, k, ch, payload); return err })
		return n
	}
	waitAll := func() {
		t.Helper()
		require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))
		require.NoError(t, srv.WaitPatterns(ctx, 1))
		require.NoError(t, srv.WaitShardSubscribers(ctx, "orders", 1))
	}
	dones := []<-chan error{
		c.subscribe(ctx, channel, "news", got),
		c.subscribe(ctx, pattern, "news.*", got),
		c.subscribe(ctx, shard, "orders", got),
	}
	waitAll()
	for _, payload := range []string{"1", "2", "3"} {
		assert.Equal(t, int64(1), publish(channel, "news", payload))
	}
	expect(" news 1", " news 2", " news 3")
	assert.Equal(t, int64(1), publish(channel, "news.sport", "4"))
	expect("news.* news.sport 4")
	assert.Equal(t, int64(1), publish(shard, "orders", "5"))
	expect(" orders 5")
	assert.Equal(t, int64(0), publish(channel, "nobody", "6"))

	counts, err := c.numSub(ctx, "news", "none")
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"news": 1, "none": 0}, counts)
	n, err := c.numPat(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	srv.DropClients()
	waitAll()
	assert.Equal(t, int64(1), publish(channel, "news", "after"))
	assert.Equal(t, int64(1), publish(channel, "news.x", "after"))
	assert.Equal(t, int64(1), publish(shard, "orders", "after"))
	received := map[string]bool{}
	for range 3 {
		select {
		case m := <-got:
			received[m] = true
		case <-ctx.Done():
			t.Fatalf("messages after the reconnection: got %v", received)
		}
	}
	assert.Equal(t, map[string]bool{" news after": true, "news.* news.x after": true, " orders after": true}, received)

	retry("unsubscribe", func() error { return c.unsubscribe(ctx, channel, "news") })
	retry("punsubscribe", func() error { return c.unsubscribe(ctx, pattern, "news.*") })
	retry("sunsubscribe", func() error { return c.unsubscribe(ctx, shard, "orders") })
	for _, done := range dones {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("a subscription did not end once unsubscribed")
		}
	}
	assert.Equal(t, int64(0), publish(channel, "news", "gone"))
	assert.Equal(t, int64(0), publish(shard, "orders", "gone"))
}
