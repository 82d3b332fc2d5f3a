// Command orders runs the order scenario of Redis Pub/Sub's classic
// explanation in one process: when an order is placed, payment, stock,
// shipping, notification and loyalty points each react on their own, and
// statistics follows every order event through a pattern. The order code
// only publishes; it does not know who listens.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"

	"github.com/gopherpubsub/pubsub"
)

// service is one system that reacts to order events.
type service struct {
	name   string
	react  func(event pubsub.Message) string
	topics []string // channels, or patterns when pattern is set
	glob   bool
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	ctx := context.Background()
	b := pubsub.New()

	services := []service{
		{name: "payment", topics: []string{"orders:placed"}, react: func(m pubsub.Message) string {
			return "charged the card for " + m.Payload
		}},
		{name: "stock", topics: []string{"orders:placed", "orders:cancelled"}, react: func(m pubsub.Message) string {
			if m.Channel == "orders:cancelled" {
				return "put the items of " + m.Payload + " back on the shelf"
			}
			return "reserved the items of " + m.Payload
		}},
		{name: "shipping", topics: []string{"orders:placed"}, react: func(m pubsub.Message) string {
			return "booked a courier for " + m.Payload
		}},
		{name: "notification", topics: []string{"orders:placed"}, react: func(m pubsub.Message) string {
			return "sent e-mail and SMS about " + m.Payload
		}},
		{name: "points", topics: []string{"orders:placed"}, react: func(m pubsub.Message) string {
			return "added loyalty points for " + m.Payload
		}},
		{name: "statistics", topics: []string{"orders:*"}, glob: true, react: func(m pubsub.Message) string {
			event := strings.TrimPrefix(m.Channel, "orders:")
			return fmt.Sprintf("counted a %q event (pattern %s) for %s", event, m.Pattern, m.Payload)
		}},
	}

	var (
		wg  sync.WaitGroup
		out sync.Mutex // one line at a time
	)
	for _, svc := range services {
		subscribe := b.Subscribe
		if svc.glob {
			subscribe = b.PSubscribe
		}
		sub, err := subscribe(ctx, svc.topics...)
		if err != nil {
			return fmt.Errorf("%s: %w", svc.name, err)
		}
		// Each service runs on its own goroutine, as separate systems would.
		wg.Go(func() {
			for m := range sub.Channel() {
				line := svc.react(m)
				out.Lock()
				fmt.Fprintf(w, "  [%-12s] %s\n", svc.name, line)
				out.Unlock()
			}
		})
	}

	// The order code publishes events and is done: it neither calls nor
	// waits for the services, so one slow or failing service cannot stop
	// an order.
	events := []struct{ channel, order string }{
		{"orders:placed", "order #1001 (keyboard x1, Kim)"},
		{"orders:placed", "order #1002 (monitor x2, Lee)"},
		{"orders:cancelled", "order #1001 (keyboard x1, Kim)"},
		{"orders:refunded", "order #1001 (keyboard x1, Kim)"},
	}
	for _, e := range events {
		n, err := b.Publish(ctx, e.channel, e.order)
		if err != nil {
			return err
		}
		out.Lock()
		fmt.Fprintf(w, "PUBLISH %s %q -> %d receivers\n", e.channel, e.order, n)
		out.Unlock()
	}

	// Close ends every subscription once its queued events are read.
	_ = b.Close()
	wg.Wait()
	st := b.Stats()
	fmt.Fprintf(w, "published %d events, delivered %d, dropped %d\n", st.Published, st.Delivered, st.Dropped)
	return nil
}
