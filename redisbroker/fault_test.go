package redisbroker_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/redisbroker"
	"github.com/redis/go-redis/v9"
)

// publishLoop publishes "0", "1", ... to channel every interval until ctx
// ends, and records, per sequence number, the count Redis replied
// (-1: the publish failed).
type publishLoop struct {
	mu      sync.Mutex
	replies []int
	done    chan struct{}
}

func startPublishing(ctx context.Context, publish func(ctx context.Context, payload string) (int64, error), interval time.Duration) *publishLoop {
	p := &publishLoop{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ctx.Err() == nil; i++ {
			n, err := publish(ctx, strconv.Itoa(i))
			p.mu.Lock()
			if err != nil {
				n = -1
			}
			p.replies = append(p.replies, int(n))
			p.mu.Unlock()
			select {
			case <-time.After(interval):
			case <-ctx.Done():
			}
		}
	}()
	return p
}

func (p *publishLoop) sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.replies)
}

// receiveSeq reads messages of sub until one numbered at least until
// arrives, checking that numbers only increase, and returns them.
func receiveSeq(t *testing.T, sub *pubsub.Subscription, from, until int, seen map[int]bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last := from
	for last < until {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("waiting for message %d (last %d): %v", until, last, err)
		}
		n, err := strconv.Atoi(m.Payload)
		if err != nil {
			t.Fatalf("payload %q", m.Payload)
		}
		if n <= last && last >= 0 {
			t.Fatalf("message %d after %d: duplicate or out of order", n, last)
		}
		seen[n] = true
		last = n
	}
	return last
}

// Redis is killed and restarted while a publisher runs: the subscription
// survives, learns of the gap, gets every message after the resubscription,
// and nothing leaks.
func TestRedisRestartMidStream(t *testing.T) {
	srv := redistest.StartServer(t)
	b := newBroker(t, redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1}), pubsub.WithBufferSize(10000))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx, "stream")
	if err != nil {
		t.Fatal(err)
	}
	psub, err := b.PSubscribe(ctx, "str*")
	if err != nil {
		t.Fatal(err)
	}

	publisher := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer publisher.Close()
	pubCtx, stopPublishing := context.WithCancel(ctx)
	loop := startPublishing(pubCtx, func(ctx context.Context, payload string) (int64, error) {
		return publisher.Publish(ctx, "stream", payload).Result()
	}, time.Millisecond)

	seen := make(map[int]bool)
	last := receiveSeq(t, sub, -1, 200, seen)
	srv.Kill()
	killedAt := loop.sent()
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	restarted := time.Now()
	// Every message after the restart that Redis counted reaches us.
	last = receiveSeq(t, sub, last, killedAt+100, seen)
	firstAfter := time.Since(restarted)
	last = receiveSeq(t, sub, last, loop.sent()+200, seen)
	stopPublishing()
	<-loop.done

	if g := sub.Stats().Gaps; g == 0 {
		t.Error("the channel subscription was not told of the gap")
	}
	if g := psub.Stats().Gaps; g == 0 {
		t.Error("the pattern subscription was not told of the gap")
	}
	st := b.Stats()
	if st.Disconnects == 0 || st.Resubscribes == 0 {
		t.Errorf("stats %+v: want a disconnect and a resubscription", st)
	}
	// A message Redis counted as received by us and that never arrived is
	// lost; one published while we were not subscribed (count 0) or
	// refused (Redis down) is the gap that was reported.
	loop.mu.Lock()
	replies := loop.replies[:last+1]
	loop.mu.Unlock()
	// Redis counts our two connections (channels, patterns) apart, and
	// they subscribe again one after the other: 2 means both were live, so
	// the channel subscription must have the message, unless it was
	// published before the kill and still sat in the dead Redis's output
	// buffer (the loss the gap reports).
	lostAtKill, lostAfter, partly, nobody, refused := 0, 0, 0, 0, 0
	for i, n := range replies {
		switch {
		case n < 0:
			refused++
		case n == 0:
			nobody++
		case n == 1:
			partly++
		case seen[i]:
		case i < killedAt:
			lostAtKill++
		default:
			lostAfter++
		}
	}
	t.Logf("published %d: %d received, %d refused while Redis was down, %d accepted while neither connection was subscribed, %d while only one was; "+
		"%d counted by the killed Redis and never sent, %d lost after the restart; "+
		"gaps reported: channel %d, pattern %d; resubscribed %v after the loss was seen (300 ms of it Redis was down), first message %v after the restart",
		len(replies), len(seen), refused, nobody, partly, lostAtKill, lostAfter,
		sub.Stats().Gaps, psub.Stats().Gaps, st.LastResubscribe, firstAfter.Round(time.Millisecond))
	if lostAfter > 0 {
		t.Errorf("%d messages that the restarted Redis counted as delivered to both our connections never reached the channel subscription", lostAfter)
	}

	closed := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(closed); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// While Redis is down, Subscribe waits for it until its context ends, and
// Close does not wait for Redis.
func TestRedisDownSubscribeWaitsAndCloseIsPrompt(t *testing.T) {
	srv := redistest.StartServer(t)
	b := newBroker(t, redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond}))
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := b.Subscribe(short, "down"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe while Redis is down: %v, want DeadlineExceeded", err)
	}
	if st := b.Stats().Local; st.Channels != 1 || st.Subscriptions != 1 {
		t.Errorf("a failed Subscribe left local state: %+v", st)
	}
	closed := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(closed); d > 2*time.Second {
		t.Errorf("Close took %v with Redis down", d)
	}
	if _, ok := <-sub.Channel(); ok {
		t.Error("subscription still open after Close")
	}
}

// A slot is migrated while a shard subscriber listens: the old owner
// unsubscribes us, the Broker reports the gap, subscribes on the new owner
// and delivery resumes.
func TestShardChannelFollowsItsSlot(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	b := newBroker(t, cc, pubsub.WithBufferSize(10000))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const channel = "moving{slot}"
	sub, err := b.SSubscribe(ctx, channel, "staying{a}", "staying{b}")
	if err != nil {
		t.Fatal(err)
	}

	publisher := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer publisher.Close()
	pubCtx, stopPublishing := context.WithCancel(ctx)
	loop := startPublishing(pubCtx, func(ctx context.Context, payload string) (int64, error) {
		return publisher.SPublish(ctx, channel, payload).Result()
	}, time.Millisecond)
	defer func() { stopPublishing(); <-loop.done }()

	seen := make(map[int]bool)
	last := receiveSeq(t, sub, -1, 100, seen)

	from, to := migrateSlotOf(t, ctx, cc, c, channel)
	movedAt := loop.sent()
	moved := time.Now()
	last = receiveSeq(t, sub, last, movedAt+100, seen)
	resumed := time.Since(moved)
	stopPublishing()
	<-loop.done

	st := b.Stats()
	if st.SlotMoves == 0 {
		t.Errorf("stats %+v: want a slot move", st)
	}
	if sub.Stats().Gaps == 0 {
		t.Error("the subscription was not told of the gap")
	}
	missed := 0
	for i := 0; i <= last; i++ {
		if !seen[i] {
			missed++
		}
	}
	t.Logf("slot of %q moved from %s to %s; delivery resumed on the new owner within %v; %d of %d messages missed around the move, gap reported %d time(s)",
		channel, from, to, resumed.Round(time.Millisecond), missed, last+1, sub.Stats().Gaps)

	// The other shard channels of the same subscription still work.
	for _, ch := range []string{"staying{a}", "staying{b}"} {
		if _, err := b.SPublish(ctx, ch, "still"); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 2; {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Payload == "still" {
			got++
		}
	}
}

// migrateSlotOf moves the slot of key to another master, as
// redis-cli --cluster reshard does for an empty slot, and returns the
// addresses of the old and new owner.
func migrateSlotOf(t *testing.T, ctx context.Context, cc *redis.ClusterClient, c *redistest.Cluster, key string) (from, to string) {
	t.Helper()
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner, err := cc.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	from = owner.Options().Addr
	ids := make(map[string]string)
	clients := make(map[string]*redis.Client)
	for _, addr := range c.Addrs {
		cl := redis.NewClient(&redis.Options{Addr: addr})
		defer cl.Close()
		clients[addr] = cl
		id, err := cl.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids[addr] = id
		if addr != from && to == "" {
			to = addr
		}
	}
	must := func(addr string, args ...any) {
		if err := clients[addr].Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%s %v: %v", addr, args, err)
		}
	}
	must(to, "cluster", "setslot", slot, "importing", ids[from])
	must(from, "cluster", "setslot", slot, "migrating", ids[to])
	for _, addr := range []string{to, from} {
		must(addr, "cluster", "setslot", slot, "node", ids[to])
	}
	for _, addr := range c.Addrs {
		if addr != to && addr != from {
			must(addr, "cluster", "setslot", slot, "node", ids[to])
		}
	}
	return from, to
}

// Close returns at once while a Subscribe waits for a Redis that is down,
// and the Subscribe returns ErrClosed: the wait holds the subscription's
// lock, so the relay is stopped before the subscriptions are closed.
func TestCloseIsPromptWhileSubscribeWaitsForRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	b := newBroker(t, redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond}))
	subscribed := make(chan error, 1)
	go func() {
		_, err := b.Subscribe(context.Background(), "x")
		subscribed <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Local.Subscriptions == 0 { // the Subscribe is under way
		if time.Now().After(deadline) {
			t.Fatal("the Subscribe did not start")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(100 * time.Millisecond):
		t.Fatal("Close did not return within 100 ms")
	}
	select {
	case err := <-subscribed:
		if !errors.Is(err, pubsub.ErrClosed) {
			t.Errorf("Subscribe: %v, want ErrClosed", err)
		}
	case <-time.After(100 * time.Millisecond):
		t.Fatal("the Subscribe did not return within 100 ms of Close")
	}
}

// A Redis that hangs without closing its connections (SIGSTOP) is noticed
// by the health check: the gap is reported and the disconnect counted
// within twice the interval (and a margin), every call with a 200 ms
// context returns by its deadline, and once Redis is back the
// subscription is confirmed again and receives what is published after.
func TestHungRedisIsNoticed(t *testing.T) {
	srv := redistest.StartServer(t)
	t.Cleanup(srv.Thaw) // before Kill, which runs later
	const interval = 200 * time.Millisecond
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b, err := redisbroker.New(client, redisbroker.HealthCheck(interval))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(); _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}

	srv.Freeze()
	frozen := time.Now()
	for sub.Stats().Gaps == 0 {
		if time.Since(frozen) > 2*interval+2*time.Second {
			t.Fatalf("no gap reported %v after Redis hung", time.Since(frozen))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("gap reported %v after Redis hung (health check every %v)", time.Since(frozen), interval)
	if n := b.Stats().Disconnects; n != 1 {
		t.Errorf("Disconnects = %d, want 1", n)
	}
	for name, call := range map[string]func(context.Context) error{
		"Publish":   func(ctx context.Context) error { _, err := b.Publish(ctx, "news", "x"); return err },
		"SPublish":  func(ctx context.Context) error { _, err := b.SPublish(ctx, "s", "x"); return err },
		"NumSub":    func(ctx context.Context) error { _, err := b.NumSub(ctx, "news"); return err },
		"NumPat":    func(ctx context.Context) error { _, err := b.NumPat(ctx); return err },
		"Channels":  func(ctx context.Context) error { _, err := b.Channels(ctx, "*"); return err },
		"Subscribe": func(ctx context.Context) error { _, err := b.Subscribe(ctx, "other"); return err },
	} {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		began := time.Now()
		err := call(short)
		cancel()
		if took := time.Since(began); took > time.Second {
			t.Errorf("%s with a 200 ms context on a hung Redis returned after %v", name, took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a hung Redis: %v, want DeadlineExceeded", name, err)
		}
	}

	srv.Thaw()
	for b.Stats().Resubscribes == 0 {
		if ctx.Err() != nil {
			t.Fatal("not subscribed again after Redis came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	other := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer other.Close()
	if err := other.Publish(ctx, "news", "after").Err(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("after Redis came back: %v", err)
		}
		if m.Payload == "after" {
			break
		}
		// The Publish that returned DeadlineExceeded had reached Redis's
		// socket: it may be delivered once Redis runs again, as documented.
		if m.Payload != "x" {
			t.Fatalf("after Redis came back: %+v", m)
		}
	}
}
