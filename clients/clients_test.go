// Package clients_test runs Redis client libraries, each with its own
// defaults, against the server, as the people who use it as a fake Redis
// do. It is a module of its own so that the root module never requires a
// client library.
package clients_test

import (
	"context"
	"testing"
	"time"

	gomodule "github.com/gomodule/redigo/redis"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/gopherpubsub/pubsub/servertest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// go-redis v9, in RESP3 (its default) and RESP2: subscribe to a channel,
// a pattern and a shard channel, publish with Redis's receiver counts,
// receive in order, introspect, unsubscribe, and come back by itself after
// the server drops every client.
func TestGoRedis(t *testing.T) {
	for _, proto := range []int{3, 2} {
		t.Run("RESP"+string(rune('0'+proto)), func(t *testing.T) {
			ctx := testContext(t)
			srv := servertest.Run(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: proto})
			t.Cleanup(func() { _ = rdb.Close() })

			sub := rdb.Subscribe(ctx, "news")
			t.Cleanup(func() { _ = sub.Close() })
			require.NoError(t, sub.PSubscribe(ctx, "news.*"))
			shard := rdb.SSubscribe(ctx, "orders")
			t.Cleanup(func() { _ = shard.Close() })
			require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))
			require.NoError(t, srv.WaitPatterns(ctx, 1))
			require.NoError(t, srv.WaitShardSubscribers(ctx, "orders", 1))

			for _, payload := range []string{"1", "2", "3"} {
				assert.Equal(t, int64(1), rdb.Publish(ctx, "news", payload).Val())
			}
			assert.Equal(t, int64(1), rdb.Publish(ctx, "news.sport", "4").Val())
			assert.Equal(t, int64(1), rdb.SPublish(ctx, "orders", "5").Val())
			for _, want := range []string{"1", "2", "3", "4"} {
				m, err := sub.ReceiveMessage(ctx)
				require.NoError(t, err)
				assert.Equal(t, want, m.Payload)
			}
			m, err := shard.ReceiveMessage(ctx)
			require.NoError(t, err)
			assert.Equal(t, "5", m.Payload)

			assert.Equal(t, map[string]int64{"news": 1, "none": 0}, rdb.PubSubNumSub(ctx, "news", "none").Val())
			assert.Equal(t, int64(1), rdb.PubSubNumPat(ctx).Val())
			assert.Equal(t, []string{"news"}, rdb.PubSubChannels(ctx, "*").Val())
			assert.Equal(t, map[string]int64{"orders": 1}, rdb.PubSubShardNumSub(ctx, "orders").Val())

			// A reader sees the drop, and its next read reconnects and
			// subscribes again, as go-redis's Channel() does in its loop.
			srv.DropClients()
			after := make(chan string, 1)
			go func() {
				for ctx.Err() == nil {
					if m, err := sub.ReceiveMessage(ctx); err == nil {
						after <- m.Payload
						return
					}
				}
			}()
			require.NoError(t, srv.WaitSubscribers(ctx, "news", 1), "go-redis resubscribes after the drop")
			assert.Equal(t, int64(1), rdb.Publish(ctx, "news", "after").Val())
			select {
			case got := <-after:
				assert.Equal(t, "after", got)
			case <-ctx.Done():
				t.Fatal("no message after the reconnection")
			}

			require.NoError(t, sub.PUnsubscribe(ctx, "news.*"))
			require.NoError(t, sub.Unsubscribe(ctx, "news"))
			require.Eventually(t, func() bool { return rdb.Publish(ctx, "news", "gone").Val() == 0 }, 10*time.Second, time.Millisecond)
		})
	}
}

// rueidis and valkey-go with their defaults, client-side caching on: they
// send CLIENT TRACKING ON OPTIN when they connect. A Receive returns when
// the server drops its connection, and a new Receive subscribes again.
func TestRueidis(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}})
	require.NoError(t, err)
	t.Cleanup(client.Close)

	got := make(chan string, 16)
	receive := func(cmd rueidis.Completed) chan error {
		done := make(chan error, 1)
		go func() {
			done <- client.Receive(ctx, cmd, func(m rueidis.PubSubMessage) { got <- m.Pattern + " " + m.Channel + " " + m.Message })
		}()
		return done
	}
	publish := func(cmd rueidis.Completed) int64 {
		n, err := client.Do(ctx, cmd).AsInt64()
		require.NoError(t, err)
		return n
	}
	expect := func(want ...string) {
		for _, w := range want {
			select {
			case m := <-got:
				assert.Equal(t, w, m)
			case <-ctx.Done():
				t.Fatalf("no message %q", w)
			}
		}
	}
	subDone := receive(client.B().Subscribe().Channel("news").Build())
	psubDone := receive(client.B().Psubscribe().Pattern("news.*").Build())
	ssubDone := receive(client.B().Ssubscribe().Channel("orders").Build())
	require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))
	require.NoError(t, srv.WaitPatterns(ctx, 1))
	require.NoError(t, srv.WaitShardSubscribers(ctx, "orders", 1))
	for _, payload := range []string{"1", "2", "3"} {
		assert.Equal(t, int64(1), publish(client.B().Publish().Channel("news").Message(payload).Build()))
	}
	expect(" news 1", " news 2", " news 3")
	assert.Equal(t, int64(1), publish(client.B().Publish().Channel("news.sport").Message("4").Build()))
	expect("news.* news.sport 4")
	assert.Equal(t, int64(1), publish(client.B().Spublish().Channel("orders").Message("5").Build()))
	expect(" orders 5")

	numSub, err := client.Do(ctx, client.B().PubsubNumsub().Channel("news", "none").Build()).AsIntMap()
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"news": 1, "none": 0}, numSub)
	numPat, err := client.Do(ctx, client.B().PubsubNumpat().Build()).AsInt64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), numPat)

	// rueidis reconnects a dropped subscription by itself: its Receive
	// goes on, and the messages published once it is back arrive.
	srv.DropClients()
	require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))
	require.NoError(t, srv.WaitPatterns(ctx, 1))
	require.NoError(t, srv.WaitShardSubscribers(ctx, "orders", 1))
	assert.Equal(t, int64(1), publish(client.B().Publish().Channel("news").Message("after").Build()))
	expect(" news after")

	require.NoError(t, client.Do(ctx, client.B().Unsubscribe().Channel("news").Build()).Error())
	require.NoError(t, client.Do(ctx, client.B().Punsubscribe().Pattern("news.*").Build()).Error())
	require.NoError(t, client.Do(ctx, client.B().Sunsubscribe().Channel("orders").Build()).Error())
	for _, done := range []chan error{subDone, psubDone, ssubDone} {
		require.NoError(t, <-done)
	}
	assert.Equal(t, int64(0), publish(client.B().Publish().Channel("news").Message("gone").Build()))
}

// valkey-go, rueidis's fork for Valkey, with the same defaults.
func TestValkeyGo(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv.Addr()}})
	require.NoError(t, err)
	t.Cleanup(client.Close)

	got := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- client.Receive(ctx, client.B().Psubscribe().Pattern("news.*").Build(), func(m valkey.PubSubMessage) {
			got <- m.Channel + " " + m.Message
		})
	}()
	shardDone := make(chan error, 1)
	go func() {
		shardDone <- client.Receive(ctx, client.B().Ssubscribe().Channel("orders").Build(), func(m valkey.PubSubMessage) {
			got <- m.Channel + " " + m.Message
		})
	}()
	require.NoError(t, srv.WaitPatterns(ctx, 1))
	require.NoError(t, srv.WaitShardSubscribers(ctx, "orders", 1))
	n, err := client.Do(ctx, client.B().Publish().Channel("news.sport").Message("goal").Build()).AsInt64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = client.Do(ctx, client.B().Spublish().Channel("orders").Message("5").Build()).AsInt64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	for _, want := range []string{"news.sport goal", "orders 5"} {
		select {
		case m := <-got:
			assert.Equal(t, want, m)
		case <-ctx.Done():
			t.Fatalf("no message %q", want)
		}
	}
	require.NoError(t, client.Do(ctx, client.B().Punsubscribe().Pattern("news.*").Build()).Error())
	require.NoError(t, <-done)
	require.NoError(t, client.Do(ctx, client.B().Sunsubscribe().Channel("orders").Build()).Error())
	require.NoError(t, <-shardDone)
}

// redigo: a plain RESP2 connection and its PubSubConn.
func TestRedigo(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)
	subConn, err := gomodule.Dial("tcp", srv.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = subConn.Close() })
	psc := gomodule.PubSubConn{Conn: subConn}
	require.NoError(t, psc.Subscribe("news"))
	confirm, ok := psc.Receive().(gomodule.Subscription)
	require.True(t, ok)
	assert.Equal(t, gomodule.Subscription{Kind: "subscribe", Channel: "news", Count: 1}, confirm)

	pub, err := gomodule.DialContext(ctx, "tcp", srv.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	n, err := gomodule.Int(pub.Do("PUBLISH", "news", "hello"))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	m, ok := psc.Receive().(gomodule.Message)
	require.True(t, ok)
	assert.Equal(t, "hello", string(m.Data))

	require.NoError(t, psc.Unsubscribe("news"))
	gone, ok := psc.Receive().(gomodule.Subscription)
	require.True(t, ok)
	assert.Equal(t, gomodule.Subscription{Kind: "unsubscribe", Channel: "news", Count: 0}, gone)
	n, err = gomodule.Int(pub.Do("PUBLISH", "news", "nobody"))
	require.NoError(t, err)
	assert.Equal(t, 0, n)
}
