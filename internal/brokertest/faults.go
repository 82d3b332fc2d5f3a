package brokertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/relay"
)

// publishLoop publishes "0", "1", ... every interval until ctx ends, and
// records, per sequence number, the count Redis replied (-1: the publish
// failed).
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
// arrives, checking that numbers only increase, and returns the last.
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
func redisRestartMidStream(t *testing.T, k Kit) {
	srv := redistest.StartServer(t)
	b, stats := k.New(t, Config{Addrs: []string{srv.Addr}, NoRetries: true, Engine: []pubsub.Option{pubsub.WithBufferSize(10000)}})
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

	publisher := newPublisher(srv.Addr)
	defer publisher.close()
	pubCtx, stopPublishing := context.WithCancel(ctx)
	loop := startPublishing(pubCtx, func(ctx context.Context, payload string) (int64, error) {
		return publisher.do(ctx, "PUBLISH", "stream", payload)
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
	st := stats()
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
func redisDownSubscribeWaitsAndCloseIsPrompt(t *testing.T, k Kit) {
	srv := redistest.StartServer(t)
	b, stats := k.New(t, Config{Addrs: []string{srv.Addr}, DialTimeout: 200 * time.Millisecond})
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
	if st := stats().Local; st.Channels != 1 || st.Subscriptions != 1 {
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

// Close returns at once while a Subscribe waits for a Redis that is down,
// and the Subscribe returns ErrClosed: the wait holds the subscription's
// lock, so the relay is stopped before the subscriptions are closed.
func closeIsPromptWhileSubscribeWaitsForRedis(t *testing.T, k Kit) {
	srv := redistest.StartServer(t)
	b, stats := k.New(t, Config{Addrs: []string{srv.Addr}, DialTimeout: 200 * time.Millisecond})
	srv.Kill() // nothing listens there now: every dial is refused
	subscribed := make(chan error, 1)
	go func() {
		_, err := b.Subscribe(context.Background(), "x")
		subscribed <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for stats().Local.Subscriptions == 0 { // the Subscribe is under way
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
func hungRedisIsNoticed(t *testing.T, k Kit) {
	srv := redistest.StartServer(t)
	t.Cleanup(srv.Thaw) // before Kill, which runs later
	const interval = 200 * time.Millisecond
	b, stats := k.New(t, Config{Addrs: []string{srv.Addr}, HealthCheck: interval})
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
	if n := stats().Disconnects; n != 1 {
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
	for stats().Resubscribes == 0 {
		if ctx.Err() != nil {
			t.Fatal("not subscribed again after Redis came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	publisher := newPublisher(srv.Addr)
	defer publisher.close()
	if _, err := publisher.do(ctx, "PUBLISH", "news", "after"); err != nil {
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

// A slot is migrated while a shard subscriber listens: the old owner
// unsubscribes us, the Broker reports the gap, subscribes on the new owner
// and delivery resumes.
func shardChannelFollowsItsSlot(t *testing.T, k Kit) {
	c := redistest.StartCluster(t, 3)
	b, stats := k.New(t, Config{Addrs: c.Addrs, Cluster: true, Engine: []pubsub.Option{pubsub.WithBufferSize(10000)}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const channel = "moving{slot}"
	sub, err := b.SSubscribe(ctx, channel, "staying{a}", "staying{b}")
	if err != nil {
		t.Fatal(err)
	}

	publisher := newPublisher(c.Addrs[0])
	defer publisher.close()
	pubCtx, stopPublishing := context.WithCancel(ctx)
	loop := startPublishing(pubCtx, func(ctx context.Context, payload string) (int64, error) {
		return publisher.do(ctx, "SPUBLISH", channel, payload)
	}, time.Millisecond)
	defer func() { stopPublishing(); <-loop.done }()

	seen := make(map[int]bool)
	last := receiveSeq(t, sub, -1, 100, seen)

	from, to := migrateSlotOf(t, c, channel)
	movedAt := loop.sent()
	moved := time.Now()
	last = receiveSeq(t, sub, last, movedAt+100, seen)
	resumed := time.Since(moved)
	stopPublishing()
	<-loop.done

	if st := stats(); st.SlotMoves == 0 {
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

// One subscription holds shard channels of many slots on every master
// (Redis refuses an SSUBSCRIBE across slots): each receives what is
// published to it, through a connection that is not the Broker's, and
// the slot the relay computes is the one Redis computes.
func shardChannelsOfManySlots(t *testing.T, k Kit) {
	c := redistest.StartCluster(t, 3)
	b, _ := k.New(t, Config{Addrs: c.Addrs, Cluster: true, Engine: []pubsub.Option{pubsub.WithBufferSize(1000)}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	for i := range 60 {
		names = append(names, fmt.Sprintf("shard:%d", i))
	}
	names = append(names, "{tag}a", "{tag}b", "x{}y", "{}z", "foo{}{bar}", "foo{{bar}}zap", "a{b}{c}")
	node := redistest.Dial(t, c.Addrs[0])
	for _, name := range names {
		want := node.Do("CLUSTER", "KEYSLOT", name).Int
		if got := relay.Slot(name); int64(got) != want {
			t.Errorf("slot of %q: relay says %d, Redis %d", name, got, want)
		}
	}
	sub, err := b.SSubscribe(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	publisher := newPublisher(c.Addrs[0])
	defer publisher.close()
	for _, name := range names {
		n, err := publisher.do(ctx, "SPUBLISH", name, "to "+name)
		if err != nil || n != 1 {
			t.Fatalf("SPUBLISH %s: %d, %v; want 1 receiver", name, n, err)
		}
	}
	// Messages of different masters come on different connections, so in
	// no particular order between them.
	want := make(map[string]bool)
	for _, name := range names {
		want[name] = true
	}
	for len(want) > 0 {
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("waiting for %d messages: %v", len(want), err)
		}
		if m.Kind != pubsub.KindSMessage || !want[m.Channel] || m.Payload != "to "+m.Channel {
			t.Fatalf("got %+v, want one smessage to each of the names", m)
		}
		delete(want, m.Channel)
	}
}

// introspectionCountsSubscribersOnReplicas: a client may subscribe on a
// replica (it receives a cluster's PUBLISH there, and the shard channels
// of its master's slots), and PUBSUB on a node counts only that node's
// clients, so the Broker must ask the replicas too.
func introspectionCountsSubscribersOnReplicas(t *testing.T, k Kit) {
	c := redistest.StartClusterWithReplicas(t, 3, 1)
	b, _ := k.New(t, Config{Addrs: c.Addrs, Cluster: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replicas := c.Replicas(t)
	if len(replicas) != 3 {
		t.Fatalf("replicas: %v; want 3", replicas)
	}
	onReplica := redistest.Dial(t, replicas[0])
	onReplica.Send("SUBSCRIBE", "on-replica")
	onReplica.Send("PSUBSCRIBE", "on-rep*")
	for _, want := range []string{"subscribe", "psubscribe"} {
		if got := onReplica.Read(); len(got.Elems) != 3 || got.Elems[0].Str != want {
			t.Fatalf("replica answered %+v; want a %s confirmation", got, want)
		}
	}
	// A replica takes the shard channels of its master's slots, a third of
	// them: the others are answered MOVED.
	shard := ""
	for i := 0; shard == "" && i < 100; i++ {
		name := fmt.Sprintf("on-replica:%d", i)
		onReplica.Send("SSUBSCRIBE", name)
		got, err := onReplica.ReadErr()
		if err != nil {
			t.Fatalf("SSUBSCRIBE %s on the replica: %v", name, err)
		}
		if len(got.Elems) == 3 && got.Elems[0].Str == "ssubscribe" {
			shard = name
		}
	}
	if shard == "" {
		t.Fatal("the replica confirmed none of 100 shard channels")
	}
	sub, err := b.Subscribe(ctx, "on-replica")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	counts, err := b.NumSub(ctx, "on-replica")
	if err != nil || counts["on-replica"] != 2 {
		t.Errorf("NumSub(on-replica) = %v, %v; want 2 (the Broker and the replica's client)", counts, err)
	}
	if n, err := b.NumPat(ctx); err != nil || n != 1 {
		t.Errorf("NumPat() = %d, %v; want 1 (the replica's client)", n, err)
	}
	if names, err := b.Channels(ctx, "on-rep*"); err != nil || len(names) != 1 || names[0] != "on-replica" {
		t.Errorf("Channels(on-rep*) = %q, %v; want [on-replica]", names, err)
	}
	if counts, err := b.ShardNumSub(ctx, shard); err != nil || counts[shard] != 1 {
		t.Errorf("ShardNumSub(%s) = %v, %v; want 1 (the replica's client)", shard, counts, err)
	}
	if names, err := b.ShardChannels(ctx, "on-rep*"); err != nil || len(names) != 1 || names[0] != shard {
		t.Errorf("ShardChannels(on-rep*) = %q, %v; want [%s]", names, err, shard)
	}
}

// migrateSlotOf moves the slot of key to another master, as
// redis-cli --cluster reshard does for an empty slot, and returns the
// addresses of the old and new owner.
func migrateSlotOf(t *testing.T, c *redistest.Cluster, key string) (from, to string) {
	t.Helper()
	conns := make(map[string]*redistest.Conn)
	ids := make(map[string]string)
	for _, addr := range c.Addrs {
		conns[addr] = redistest.Dial(t, addr)
		ids[addr] = conns[addr].Do("CLUSTER", "MYID").Str
	}
	slot := conns[c.Addrs[0]].Do("CLUSTER", "KEYSLOT", key)
	for _, r := range conns[c.Addrs[0]].Do("CLUSTER", "SLOTS").Elems {
		if r.Elems[0].Int <= slot.Int && slot.Int <= r.Elems[1].Int {
			master := r.Elems[2].Elems
			from = net.JoinHostPort(master[0].Str, strconv.FormatInt(master[1].Int, 10))
		}
	}
	for _, addr := range c.Addrs {
		if addr != from {
			to = addr
			break
		}
	}
	s := strconv.FormatInt(slot.Int, 10)
	must := func(addr string, args ...string) {
		if v := conns[addr].Do(args...); v.Type == '-' {
			t.Fatalf("%s %v: %v", addr, args, v)
		}
	}
	must(to, "CLUSTER", "SETSLOT", s, "IMPORTING", ids[from])
	must(from, "CLUSTER", "SETSLOT", s, "MIGRATING", ids[to])
	for _, addr := range []string{to, from} {
		must(addr, "CLUSTER", "SETSLOT", s, "NODE", ids[to])
	}
	for _, addr := range c.Addrs {
		if addr != to && addr != from {
			must(addr, "CLUSTER", "SETSLOT", s, "NODE", ids[to])
		}
	}
	return from, to
}

// The last local subscriber of a channel leaves (UNSUBSCRIBE) while a new
// one arrives (SUBSCRIBE): whatever the interleaving, the newcomer is
// live when Subscribe returns.
func subscribeRacingLastLeaverIsNeverLost(t *testing.T, k Kit) {
	addr := redistest.Start(t)
	b, _ := k.New(t, Config{Addrs: []string{addr}})
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
