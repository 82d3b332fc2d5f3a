package clients_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/servertest"
)

// The first test people write when they move from Redis to a fake one,
// with go-redis's defaults: Subscribe, which does not wait for the
// confirmation, then Publish at once on another connection. redis-server
// runs commands in the order they reached it, so the Publish counts the
// subscriber every time; so must the server, over TCP and in memory.
//
// Then Unsubscribe, not waited for either, and Publish: in memory, where
// commands run in the order they were written, the Publish must never
// count the subscriber. Over TCP, redis-server counts it now and then
// (the two commands reach it within microseconds of each other, and the
// kernel's epoll may report the later first); the counts of both are
// logged, and BenchmarkOrderAcrossConnections compares them.
func TestGoRedisSubscribeThenPublishInOrder(t *testing.T) {
	const tries = 300
	srv := servertest.Run(t)
	targets := []struct {
		name   string
		opts   *goredis.Options
		strict bool // Unsubscribe then Publish never counts
	}{
		{"redis-server", &goredis.Options{Addr: redistest.Start(t)}, false},
		{"servertest TCP", &goredis.Options{Addr: srv.Addr()}, false},
		{"servertest in memory", &goredis.Options{Dialer: srv.Dial}, true},
	}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			ctx := testContext(t)
			rdb := goredis.NewClient(target.opts)
			t.Cleanup(func() { _ = rdb.Close() })
			lostMessages, countedAfterUnsubscribe := 0, 0
			for i := range tries {
				ch := "order:" + strconv.Itoa(i)
				sub := rdb.Subscribe(ctx, ch)
				n, err := rdb.Publish(ctx, ch, "m").Result()
				require.NoError(t, err)
				rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				m, err := sub.ReceiveMessage(rctx)
				cancel()
				if n != 1 || err != nil || m.Payload != "m" {
					lostMessages++
					_ = sub.Close()
					continue
				}
				require.NoError(t, sub.Unsubscribe(ctx, ch))
				n, err = rdb.Publish(ctx, ch, "late").Result()
				require.NoError(t, err)
				if n != 0 {
					countedAfterUnsubscribe++
				}
				_ = sub.Close()
			}
			assert.Zero(t, lostMessages, "Publish right after Subscribe: %d of %d lost", lostMessages, tries)
			if target.strict {
				assert.Zero(t, countedAfterUnsubscribe, "Publish right after Unsubscribe: %d of %d counted the subscriber", countedAfterUnsubscribe, tries)
			} else {
				t.Logf("Publish right after Unsubscribe: %d of %d counted the subscriber", countedAfterUnsubscribe, tries)
			}
		})
	}
}
