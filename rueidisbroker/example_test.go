package rueidisbroker_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/rueidisbroker"
	"github.com/redis/rueidis"
)

// The same code as with pubsub.New, on the rueidis client a program
// already has. (No Output: it needs a Redis at localhost:6379.)
func Example() {
	ctx := context.Background()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{"localhost:6379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	var e pubsub.Engine
	e, err = rueidisbroker.New(client)
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
}
