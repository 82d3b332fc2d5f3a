package servertest_test

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gopherpubsub/pubsub/server"
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

// readLine reads one reply line, without its CRLF.
func readLine(r *bufio.Reader) string {
	line, _ := r.ReadString('\n')
	return strings.TrimRight(line, "\r\n")
}

// A server that wants a password, as one with Redis's requirepass:
// commands are refused until the client authenticates.
func ExampleWithPassword() {
	srv, err := servertest.Start(servertest.WithPassword("s3cret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	nc, err := srv.Dial(context.Background(), "tcp", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	fmt.Fprint(nc, "PUBLISH orders x\r\n")
	fmt.Println(readLine(r))
	fmt.Fprint(nc, "AUTH s3cret\r\nPUBLISH orders x\r\n")
	fmt.Println(readLine(r))
	fmt.Println(readLine(r))
	// Output:
	// -NOAUTH Authentication required.
	// +OK
	// :0
}

// A service user that may only publish to orders:* gets Redis's NOPERM
// error for any other channel, and for any command but the Pub/Sub ones.
func ExampleWithUsers() {
	srv, err := servertest.Start(servertest.WithUsers(
		"orders-svc on >s3cret resetchannels &orders:* -@all +@pubsub"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	nc, err := srv.Dial(context.Background(), "tcp", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	fmt.Fprint(nc, "AUTH orders-svc s3cret\r\nPUBLISH orders:42 placed\r\nPUBLISH payments:42 paid\r\nCLIENT ID\r\n")
	for range 4 {
		fmt.Println(readLine(r))
	}
	// Output:
	// +OK
	// :0
	// -NOPERM this user has no permissions to access one of the channels used as arguments
	// -NOPERM this user has no permissions to run the 'client|id' command
}

// A RESP2-only server refuses HELLO 3, as a server older than Redis 6
// would not know it: clients that try RESP3 first fall back to RESP2.
func ExampleWithProtocol() {
	srv, err := servertest.Start(servertest.WithProtocol(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	nc, err := srv.Dial(context.Background(), "tcp", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	fmt.Fprint(nc, "HELLO 3\r\n")
	fmt.Println(readLine(r))
	// Output:
	// -NOPROTO unsupported protocol version
}

// A subscriber that stops reading is disconnected once its unread
// messages pass the pubsub output limit, as in Redis: a test of a slow
// consumer sets a small limit rather than publish 32 MB.
func ExampleWithOutputLimits() {
	srv, err := servertest.Start(servertest.WithOutputLimits(server.OutputLimit{Hard: 64 << 10}, server.OutputLimit{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slow, err := srv.Dial(ctx, "tcp", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer slow.Close()
	fmt.Fprint(slow, "SUBSCRIBE orders\r\n") // and never reads
	if err := srv.WaitSubscribers(ctx, "orders", 1); err != nil {
		fmt.Println(err)
		return
	}
	payload := strings.Repeat("x", 16<<10)
	gone := false
	for range 10_000 { // 160 MB, if it were never disconnected
		if n, _ := srv.Broker().Publish(ctx, "orders", payload); n == 0 {
			gone = true
			break
		}
	}
	fmt.Println("the slow subscriber was disconnected:", gone)
	// Output:
	// the slow subscriber was disconnected: true
}
