package servertest_test

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gopherpubsub/pubsub/servertest"
)

// readPush reads one RESP2 array of bulk strings, as a subscriber receives
// its confirmations and messages, and returns its strings (an integer as
// its digits).
func readPush(r *bufio.Reader) []string {
	header, _ := r.ReadString('\n')
	var n int
	fmt.Sscanf(header, "*%d", &n)
	out := make([]string, 0, n)
	for range n {
		line, _ := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line[0] == ':' {
			out = append(out, line[1:])
			continue
		}
		value, _ := r.ReadString('\n')
		out = append(out, strings.TrimRight(value, "\r\n"))
	}
	return out
}

// A client subscribes to a pattern through an in-memory connection; the
// test waits until the pattern is live, publishes from Go, and reads the
// pmessage.
func ExampleServer_WaitPatterns() {
	srv, err := servertest.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	nc, err := srv.Dial(ctx, "tcp", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	fmt.Fprint(nc, "*2\r\n$10\r\nPSUBSCRIBE\r\n$8\r\norders.*\r\n")
	if err := srv.WaitPatterns(ctx, 1); err != nil {
		fmt.Println(err)
		return
	}
	n, _ := srv.Broker().Publish(ctx, "orders.placed", `{"id":42}`)
	fmt.Println("receivers:", n)
	r := bufio.NewReader(nc)
	fmt.Println(readPush(r))
	fmt.Println(readPush(r))
	// Output:
	// receivers: 1
	// [psubscribe orders.* 1]
	// [pmessage orders.* orders.placed {"id":42}]
}

// DropClients returns once the dropped clients' subscriptions are gone, so
// a publish right after it reaches nobody.
func ExampleServer_DropClients() {
	srv, err := servertest.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	nc, _ := srv.Dial(ctx, "tcp", "")
	fmt.Fprint(nc, "*2\r\n$10\r\nSSUBSCRIBE\r\n$6\r\norders\r\n")
	_ = srv.WaitShardSubscribers(ctx, "orders", 1)
	srv.DropClients()
	n, _ := srv.Broker().SPublish(ctx, "orders", "lost")
	fmt.Println("receivers after the drop:", n)
	// Output:
	// receivers after the drop: 0
}
