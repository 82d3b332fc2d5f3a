package redisbroker_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/redisbroker"
	"github.com/redis/go-redis/v9"
)

// The same code as with pubsub.New, on Redis: only the constructor differs.
// (No Output: it needs a Redis at localhost:6379.)
func Example() {
	ctx := context.Background()
	var e pubsub.Engine
	e, err := redisbroker.New(redis.NewClient(&redis.Options{Addr: "localhost:6379"}))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	sub, err := e.PSubscribe(ctx, "orders:*") // returns once Redis confirmed it
	if err != nil {
		log.Fatal(err)
	}
	if _, err := e.Publish(ctx, "orders:placed", "order #1001"); err != nil {
		log.Fatal(err)
	}
	m, err := sub.ReceiveMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Kind, m.Pattern, m.Channel, m.Payload)
	// A lost connection to Redis is reported, never silent:
	fmt.Println("gaps so far:", sub.Stats().Gaps)
}
