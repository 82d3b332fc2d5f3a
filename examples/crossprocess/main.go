// Command crossprocess shows one program moving from in-process events to
// events between processes by changing the engine it is given, and
// nothing else.
//
// A shop publishes orders; a warehouse reacts to every order event through
// a pattern. With no -redis flag both run in one process on the in-process
// Broker:
//
//	go run ./examples/crossprocess
//
// With -redis they are two processes, anywhere, talking through Redis (or
// Redis Cluster, or pubsubd):
//
//	go run ./examples/crossprocess -redis 127.0.0.1:6379 -role warehouse -orders 3 &
//	go run ./examples/crossprocess -redis 127.0.0.1:6379 -role shop -orders 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/redisbroker"
)

func main() {
	addr := flag.String("redis", "", "Redis address; empty runs both roles in this process")
	role := flag.String("role", "both", "shop, warehouse or both")
	orders := flag.Int("orders", 3, "orders the shop places and the warehouse waits for")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	engine, err := newEngine(ctx, *addr)
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()
	if err := run(ctx, engine, *role, *orders, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// newEngine is the one line that differs between in-process and Redis.
func newEngine(ctx context.Context, addr string) (pubsub.Engine, error) {
	if addr == "" {
		return pubsub.New(), nil
	}
	return redisbroker.Open(ctx, []string{addr})
}

// run is the same code whichever engine it is given.
func run(ctx context.Context, e pubsub.Engine, role string, orders int, w io.Writer) error {
	switch role {
	case "shop":
		return shop(ctx, e, orders, w)
	case "warehouse":
		return warehouse(ctx, e, orders, w, nil)
	case "both":
		w = &lockedWriter{w: w} // two goroutines print
		ready := make(chan error, 1)
		done := make(chan error, 1)
		go func() { done <- warehouse(ctx, e, orders, w, ready) }()
		if err := <-ready; err != nil {
			return err
		}
		if err := shop(ctx, e, orders, w); err != nil {
			return err
		}
		return <-done
	}
	return fmt.Errorf("unknown role %q: want shop, warehouse or both", role)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// warehouse prints every order event until it has seen orders of them.
func warehouse(ctx context.Context, e pubsub.Engine, orders int, w io.Writer, ready chan<- error) error {
	sub, err := e.PSubscribe(ctx, "orders:*")
	if ready != nil {
		ready <- err
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	fmt.Fprintln(w, "warehouse: listening on orders:*")
	for range orders {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "warehouse: packing %s (%s)\n", m.Payload, m.Channel)
	}
	return nil
}

// shop waits until somebody listens, then places orders.
func shop(ctx context.Context, e pubsub.Engine, orders int, w io.Writer) error {
	for {
		n, err := e.NumPat(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i := 1; i <= orders; i++ {
		order := fmt.Sprintf("order-%d", i)
		n, err := e.Publish(ctx, "orders:placed", order)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "shop: placed %s, %d receiver(s)\n", order, n)
	}
	return nil
}
