package rueidisbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/relay"
	"github.com/redis/rueidis"
)

// client is the relay's view of a rueidis client.
type client struct {
	c rueidis.Client
}

func (c client) Dial(ctx context.Context, ns pubsub.Namespace, node string) (relay.Conn, error) {
	on := c.c
	if c.Cluster() {
		// Channels and patterns are served by any node; shard channels by
		// the master of their slot, which the relay names.
		nodes := c.c.Nodes()
		if node == "" {
			for addr := range nodes { // in no particular order
				node = addr
				break
			}
		}
		if on = nodes[node]; on == nil {
			return nil, fmt.Errorf("rueidisbroker: no node %s in the cluster", node)
		}
	}
	return dial(ctx, on)
}

func (c client) Publish(ctx context.Context, node, channel, payload string) (int64, error) {
	on, err := c.on(node)
	if err != nil {
		return 0, err
	}
	return wrap(on.Do(ctx, on.B().Publish().Channel(channel).Message(payload).Build()).AsInt64())
}

func (c client) SPublish(ctx context.Context, shardChannel, payload string) (int64, error) {
	return wrap(c.c.Do(ctx, c.c.B().Spublish().Channel(shardChannel).Message(payload).Build()).AsInt64())
}

func (c client) Channels(ctx context.Context, node, pattern string, shard bool) ([]string, error) {
	on, err := c.on(node)
	if err != nil {
		return nil, err
	}
	cmd := on.B().PubsubChannels().Pattern(pattern).Build()
	if shard {
		cmd = on.B().PubsubShardchannels().Pattern(pattern).Build()
	}
	return wrap(on.Do(ctx, cmd).AsStrSlice())
}

func (c client) NumSub(ctx context.Context, node string, names []string, shard bool) (map[string]int64, error) {
	on, err := c.on(node)
	if err != nil {
		return nil, err
	}
	// Not rueidis's PubsubShardnumsub builder: on a cluster it takes the
	// names for keys and panics on names of several slots, which Redis
	// accepts.
	sub := "NUMSUB"
	if shard {
		sub = "SHARDNUMSUB"
	}
	cmd := on.B().Arbitrary("PUBSUB", sub).Args(names...).Build()
	pairs, err := on.Do(ctx, cmd).ToArray()
	if err != nil {
		return nil, wrap0(err)
	}
	counts := make(map[string]int64, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		name, err := pairs[i].ToString()
		if err != nil {
			return nil, err
		}
		if counts[name], err = pairs[i+1].AsInt64(); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

func (c client) NumPat(ctx context.Context, node string) (int64, error) {
	on, err := c.on(node)
	if err != nil {
		return 0, err
	}
	return wrap(on.Do(ctx, on.B().PubsubNumpat().Build()).AsInt64())
}

// on returns the client of node, or the client itself for "".
func (c client) on(node string) (rueidis.Client, error) {
	if node == "" {
		return c.c, nil
	}
	if on := c.c.Nodes()[node]; on != nil {
		return on, nil
	}
	return nil, fmt.Errorf("rueidisbroker: no node %s in the cluster", node)
}

func (c client) Cluster() bool { return c.c.Mode() == rueidis.ClientModeCluster }

// Nodes returns the nodes rueidis keeps connections to: every master and
// replica that CLUSTER SLOTS lists, whether or not reads go to replicas.
func (c client) Nodes(context.Context) ([]string, error) {
	nodes := c.c.Nodes()
	addrs := make([]string, 0, len(nodes))
	for addr := range nodes {
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

func (c client) Slots(ctx context.Context) ([]relay.SlotRange, error) {
	slots, err := c.c.Do(ctx, c.c.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, wrap0(err)
	}
	ranges := make([]relay.SlotRange, 0, len(slots))
	for _, s := range slots {
		// start, end, master [ip, port, id, ...], replicas...
		f, err := s.ToArray()
		if err != nil || len(f) < 3 {
			return nil, fmt.Errorf("rueidisbroker: CLUSTER SLOTS: unexpected entry %v", s)
		}
		start, err1 := f[0].AsInt64()
		end, err2 := f[1].AsInt64()
		master, err3 := f[2].ToArray()
		if err := errors.Join(err1, err2, err3); err != nil || len(master) < 2 {
			return nil, fmt.Errorf("rueidisbroker: CLUSTER SLOTS: unexpected entry %v", s)
		}
		host, err1 := master[0].ToString()
		port, err2 := master[1].AsInt64()
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("rueidisbroker: CLUSTER SLOTS: unexpected entry %v", s)
		}
		ranges = append(ranges, relay.SlotRange{Start: int(start), End: int(end), Master: fmt.Sprintf("%s:%d", host, port)})
	}
	return ranges, nil
}

// Bounded is false: rueidis returns by the context's deadline itself.
func (c client) Bounded() bool { return false }

func (c client) Close() error {
	c.c.Close()
	return nil
}

// conn is a dedicated rueidis connection with pub/sub hooks. rueidis does
// not dial a dedicated connection again after a loss; the relay does.
type conn struct {
	dc      rueidis.DedicatedClient
	release func()
	events  chan relay.Event
	lost    <-chan error // from SetPubSubHooks: the connection ended
	done    chan struct{}
	once    sync.Once
	pings   sync.WaitGroup
}

// eventBuffer is how many events may wait between rueidis's reader and
// the relay; beyond it the reader waits, and so does the socket.
const eventBuffer = 256

func dial(ctx context.Context, on rueidis.Client) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dc, release := on.Dedicate()
	c := &conn{dc: dc, release: release, events: make(chan relay.Event, eventBuffer), done: make(chan struct{})}
	c.lost = dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(m rueidis.PubSubMessage) {
			c.push(relay.Event{Kind: relay.Message, Channel: m.Channel, Pattern: m.Pattern, Payload: m.Message})
		},
		OnSubscription: func(s rueidis.PubSubSubscription) {
			c.push(relay.Event{Kind: relay.Confirmation, Command: s.Kind, Channel: s.Channel})
		},
	})
	return c, nil
}

// push runs on rueidis's reader goroutine.
func (c *conn) push(ev relay.Event) {
	select {
	case c.events <- ev:
	case <-c.done:
	}
}

func (c *conn) Send(ctx context.Context, subscribe bool, ns pubsub.Namespace, names []string) error {
	b := c.dc.B()
	var cmd rueidis.Completed
	switch {
	case subscribe && ns == pubsub.Channels:
		cmd = b.Subscribe().Channel(names...).Build()
	case subscribe && ns == pubsub.Patterns:
		cmd = b.Psubscribe().Pattern(names...).Build()
	case subscribe:
		cmd = b.Ssubscribe().Channel(names...).Build()
	case ns == pubsub.Channels:
		cmd = b.Unsubscribe().Channel(names...).Build()
	case ns == pubsub.Patterns:
		cmd = b.Punsubscribe().Pattern(names...).Build()
	default:
		cmd = b.Sunsubscribe().Channel(names...).Build()
	}
	err := c.dc.Do(ctx, cmd).Error()
	if _, ok := rueidis.IsRedisErr(err); ok {
		return relay.Refused(err)
	}
	return err
}

// Ping does not wait for the answer: rueidis's reader may be waiting for
// the relay to take an event.
func (c *conn) Ping(ctx context.Context) error {
	c.pings.Add(1)
	go func() {
		defer c.pings.Done()
		if c.dc.Do(ctx, c.dc.B().Ping().Build()).Error() == nil {
			c.push(relay.Event{Kind: relay.Pong})
		}
	}()
	return nil
}

func (c *conn) Receive(ctx context.Context, wait time.Duration) (relay.Event, error) {
	select {
	case ev := <-c.events:
		return ev, nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case ev := <-c.events:
		return ev, nil
	case err := <-c.lost:
		if err == nil {
			err = errConnClosed
		}
		return relay.Event{}, err
	case <-t.C:
		return relay.Event{}, relay.ErrQuiet
	case <-ctx.Done():
		return relay.Event{}, ctx.Err()
	case <-c.done:
		return relay.Event{}, errConnClosed
	}
}

var errConnClosed = errors.New("rueidisbroker: connection closed")

func (c *conn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.dc.Close()
		c.release()
	})
	c.pings.Wait()
	return nil
}

// wrap makes rueidis's "client is closed" testable with errors.Is.
func wrap[T any](v T, err error) (T, error) {
	return v, wrap0(err)
}

func wrap0(err error) error {
	if errors.Is(err, rueidis.ErrClosing) {
		return fmt.Errorf("%w: %w", pubsub.ErrClosed, err)
	}
	return err
}
