package redisbroker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// The last local subscriber of a channel leaves (UNSUBSCRIBE) while a new
// one arrives (SUBSCRIBE): whatever the interleaving, the newcomer is
// live when Subscribe returns.
func TestSubscribeRacingLastLeaverIsNeverLost(t *testing.T) {
	addr := redistest.Start(t)
	b := newBroker(t, redis.NewClient(&redis.Options{Addr: addr}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 200 {
		ch := fmt.Sprint("race:", round%3) // reuse names: their state carries over
		leaver, err := b.Subscribe(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = leaver.Close()
		}()
		newcomer, err := b.Subscribe(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := b.Publish(ctx, ch, "hello"); err != nil {
			t.Fatal(err)
		}
		short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
		m, err := newcomer.ReceiveMessage(short)
		cancelShort()
		if err != nil || m.Payload != "hello" {
			t.Fatalf("round %d: the newcomer got %+v, %v", round, m, err)
		}
		_ = newcomer.Close()
	}
	n, err := b.NumSub(ctx, "race:0", "race:1", "race:2")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 200 rounds NumSub = %v (0 or 1 while the last unsubscribes are in flight)", n)
}
