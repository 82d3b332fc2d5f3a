// Package clients_test runs Redis client libraries, each with its own
// defaults, against the server, as the people who use it as a fake Redis
// do. It is a module of its own so that the root module never requires a
// client library.
package clients_test

import (
	"context"
	"sync"
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

// rueidis with its defaults, client-side caching on: it sends CLIENT
// TRACKING ON OPTIN when it connects. Its Receive goes on across a
// dropped connection: rueidis subscribes again by itself.
func TestRueidis(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	exercise(t, ctx, srv, rueidisClient{client})
}

type rueidisClient struct{ c rueidis.Client }

func (r rueidisClient) subscribe(ctx context.Context, k kind, name string, got chan<- string) <-chan error {
	cmd := [...]rueidis.Completed{
		channel: r.c.B().Subscribe().Channel(name).Build(),
		pattern: r.c.B().Psubscribe().Pattern(name).Build(),
		shard:   r.c.B().Ssubscribe().Channel(name).Build(),
	}[k]
	done := make(chan error, 1)
	go func() {
		done <- r.c.Receive(ctx, cmd, func(m rueidis.PubSubMessage) { got <- m.Pattern + " " + m.Channel + " " + m.Message })
	}()
	return done
}

func (r rueidisClient) publish(ctx context.Context, k kind, ch, payload string) (int64, error) {
	if k == shard {
		return r.c.Do(ctx, r.c.B().Spublish().Channel(ch).Message(payload).Build()).AsInt64()
	}
	return r.c.Do(ctx, r.c.B().Publish().Channel(ch).Message(payload).Build()).AsInt64()
}

func (r rueidisClient) numSub(ctx context.Context, channels ...string) (map[string]int64, error) {
	return r.c.Do(ctx, r.c.B().PubsubNumsub().Channel(channels...).Build()).AsIntMap()
}

func (r rueidisClient) numPat(ctx context.Context) (int64, error) {
	return r.c.Do(ctx, r.c.B().PubsubNumpat().Build()).AsInt64()
}

func (r rueidisClient) unsubscribe(ctx context.Context, k kind, name string) error {
	return r.c.Do(ctx, [...]rueidis.Completed{
		channel: r.c.B().Unsubscribe().Channel(name).Build(),
		pattern: r.c.B().Punsubscribe().Pattern(name).Build(),
		shard:   r.c.B().Sunsubscribe().Channel(name).Build(),
	}[k]).Error()
}

// valkey-go, rueidis's fork for Valkey, with the same defaults.
func TestValkeyGo(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{srv.Addr()}})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	exercise(t, ctx, srv, valkeyClient{client})
}

type valkeyClient struct{ c valkey.Client }

func (v valkeyClient) subscribe(ctx context.Context, k kind, name string, got chan<- string) <-chan error {
	cmd := [...]valkey.Completed{
		channel: v.c.B().Subscribe().Channel(name).Build(),
		pattern: v.c.B().Psubscribe().Pattern(name).Build(),
		shard:   v.c.B().Ssubscribe().Channel(name).Build(),
	}[k]
	done := make(chan error, 1)
	go func() {
		done <- v.c.Receive(ctx, cmd, func(m valkey.PubSubMessage) { got <- m.Pattern + " " + m.Channel + " " + m.Message })
	}()
	return done
}

func (v valkeyClient) publish(ctx context.Context, k kind, ch, payload string) (int64, error) {
	if k == shard {
		return v.c.Do(ctx, v.c.B().Spublish().Channel(ch).Message(payload).Build()).AsInt64()
	}
	return v.c.Do(ctx, v.c.B().Publish().Channel(ch).Message(payload).Build()).AsInt64()
}

func (v valkeyClient) numSub(ctx context.Context, channels ...string) (map[string]int64, error) {
	return v.c.Do(ctx, v.c.B().PubsubNumsub().Channel(channels...).Build()).AsIntMap()
}

func (v valkeyClient) numPat(ctx context.Context) (int64, error) {
	return v.c.Do(ctx, v.c.B().PubsubNumpat().Build()).AsInt64()
}

func (v valkeyClient) unsubscribe(ctx context.Context, k kind, name string) error {
	return v.c.Do(ctx, [...]valkey.Completed{
		channel: v.c.B().Unsubscribe().Channel(name).Build(),
		pattern: v.c.B().Punsubscribe().Pattern(name).Build(),
		shard:   v.c.B().Sunsubscribe().Channel(name).Build(),
	}[k]).Error()
}

// redigo: plain RESP2 connections, a PubSubConn for channels and
// patterns, the connection's own Receive for shard channels (PubSubConn
// does not know them). redigo does not reconnect by itself: a
// subscription loop dials again and subscribes again, as its users write
// it.
func TestRedigo(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)
	pool := &gomodule.Pool{DialContext: func(ctx context.Context) (gomodule.Conn, error) {
		return gomodule.DialContext(ctx, "tcp", srv.Addr())
	}}
	t.Cleanup(func() { _ = pool.Close() })
	exercise(t, ctx, srv, &redigoClient{addr: srv.Addr(), pool: pool, subs: map[string]gomodule.Conn{}})
}

type redigoClient struct {
	addr string
	pool *gomodule.Pool // for commands: a dropped connection is dialled again on the next Get

	mu   sync.Mutex
	subs map[string]gomodule.Conn // each subscription's connection now
}

var redigoCommands = [...][2]string{channel: {"SUBSCRIBE", "UNSUBSCRIBE"}, pattern: {"PSUBSCRIBE", "PUNSUBSCRIBE"}, shard: {"SSUBSCRIBE", "SUNSUBSCRIBE"}}

func (r *redigoClient) subscribe(ctx context.Context, k kind, name string, got chan<- string) <-chan error {
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			conn, err := gomodule.DialContext(ctx, "tcp", r.addr)
			if err != nil {
				select { // back off before dialling again, as a reconnecting client does
				case <-time.After(10 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			r.mu.Lock()
			r.subs[name] = conn
			r.mu.Unlock()
			if left, err := r.receive(conn, k, name, got); left || err == nil {
				conn.Close()
				done <- err
				return
			}
			conn.Close() // dropped: dial again
		}
		done <- ctx.Err()
	}()
	return done
}

// receive subscribes on conn and delivers until the name is unsubscribed
// (left) or the connection fails.
func (r *redigoClient) receive(conn gomodule.Conn, k kind, name string, got chan<- string) (left bool, err error) {
	if k != shard {
		psc := gomodule.PubSubConn{Conn: conn}
		if k == channel {
			err = psc.Subscribe(name)
		} else {
			err = psc.PSubscribe(name)
		}
		for err == nil {
			switch v := psc.Receive().(type) {
			case gomodule.Message:
				got <- v.Pattern + " " + v.Channel + " " + string(v.Data)
			case gomodule.Subscription:
				if v.Kind == "unsubscribe" || v.Kind == "punsubscribe" {
					return true, nil
				}
			case error:
				err = v
			}
		}
		return false, err
	}
	if err := conn.Send("SSUBSCRIBE", name); err != nil {
		return false, err
	}
	if err := conn.Flush(); err != nil {
		return false, err
	}
	for {
		push, err := gomodule.Values(conn.Receive())
		if err != nil {
			return false, err
		}
		var kind, ch string
		var data []byte
		if _, err := gomodule.Scan(push, &kind, &ch); err != nil {
			return false, err
		}
		switch kind {
		case "smessage":
			if _, err := gomodule.Scan(push[2:], &data); err != nil {
				return false, err
			}
			got <- " " + ch + " " + string(data)
		case "sunsubscribe":
			return true, nil
		}
	}
}

// do runs one command on a connection from the pool.
func (r *redigoClient) do(ctx context.Context, cmd string, args ...any) (any, error) {
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return gomodule.DoContext(conn, ctx, cmd, args...)
}

func (r *redigoClient) publish(ctx context.Context, k kind, ch, payload string) (int64, error) {
	cmd := "PUBLISH"
	if k == shard {
		cmd = "SPUBLISH"
	}
	return gomodule.Int64(r.do(ctx, cmd, ch, payload))
}

func (r *redigoClient) numSub(ctx context.Context, channels ...string) (map[string]int64, error) {
	return gomodule.Int64Map(r.do(ctx, "PUBSUB", append([]any{"NUMSUB"}, anys(channels)...)...))
}

func (r *redigoClient) numPat(ctx context.Context) (int64, error) {
	return gomodule.Int64(r.do(ctx, "PUBSUB", "NUMPAT"))
}

func (r *redigoClient) unsubscribe(_ context.Context, k kind, name string) error {
	r.mu.Lock()
	conn := r.subs[name]
	r.mu.Unlock()
	if err := conn.Send(redigoCommands[k][1], name); err != nil {
		return err
	}
	return conn.Flush()
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// go-redis with its defaults (RESP3 first) against a RESP2-only server:
// HELLO 3 is refused, go-redis falls back to RESP2, and Pub/Sub works.
func TestGoRedisFallsBackToRESP2(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t, servertest.WithProtocol(2))
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	info, err := rdb.ClientInfo(ctx).Result()
	require.NoError(t, err)
	assert.Equal(t, 2, info.Resp)
	sub := rdb.Subscribe(ctx, "news")
	t.Cleanup(func() { _ = sub.Close() })
	require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))
	assert.Equal(t, int64(1), rdb.Publish(ctx, "news", "hi").Val())
	m, err := sub.ReceiveMessage(ctx)
	require.NoError(t, err)
	assert.Equal(t, "hi", m.Payload)
}
