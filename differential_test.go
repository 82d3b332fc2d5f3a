package pubsub

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// redisSide drives the same scripts on a real redis-server: one connection
// per subscription plus one for PUBLISH and PUBSUB.
type redisSide struct {
	t    testing.TB
	addr string
	subs []*redistest.Conn
	pub  *redistest.Conn
}

func newRedisSide(t testing.TB, addr string) *redisSide {
	r := &redisSide{t: t, addr: addr, pub: redistest.Dial(t, addr)}
	for range modelSubs {
		r.subs = append(r.subs, redistest.Dial(t, addr))
	}
	return r
}

var redisCommand = map[opKind]string{
	opSubscribe: "SUBSCRIBE", opPSubscribe: "PSUBSCRIBE", opSSubscribe: "SSUBSCRIBE",
	opUnsubscribe: "UNSUBSCRIBE", opPUnsubscribe: "PUNSUBSCRIBE", opSUnsubscribe: "SUNSUBSCRIBE",
	opPublish: "PUBLISH", opSPublish: "SPUBLISH",
}

// subscribeReplies reads the n confirmations of a (un)subscribe command and
// returns the names they carry (as a set where Redis orders them by hash)
// and the count in the last one.
func (r *redisSide) subscribeReplies(c *redistest.Conn, cmd string, n int) (names []string, count int64) {
	for range n {
		v := c.Read()
		require.Len(r.t, v.Elems, 3, "%s reply %v", cmd, v)
		require.Equal(r.t, strings.ToLower(cmd), v.Elems[0].Str, "%s reply %v", cmd, v)
		if !v.Elems[1].Null {
			names = append(names, v.Elems[1].Str)
		}
		count = v.Elems[2].Int
	}
	return names, count
}

// pushes sends PING on c and returns every message pushed before the pong.
func (r *redisSide) pushes(c *redistest.Conn) []Message {
	c.Send("PING")
	var out []Message
	for {
		v := c.Read()
		if v.Type == '+' && v.Str == "PONG" {
			return out
		}
		require.NotEmpty(r.t, v.Elems, "push %v", v)
		switch kind := v.Elems[0].Str; kind {
		case "pong":
			return out
		case "message":
			out = append(out, Message{Kind: KindMessage, Channel: v.Elems[1].Str, Payload: v.Elems[2].Str})
		case "smessage":
			out = append(out, Message{Kind: KindSMessage, Channel: v.Elems[1].Str, Payload: v.Elems[2].Str})
		case "pmessage":
			out = append(out, Message{Kind: KindPMessage, Pattern: v.Elems[1].Str, Channel: v.Elems[2].Str, Payload: v.Elems[3].Str})
		default:
			r.t.Fatalf("unexpected push %v", v)
		}
	}
}

func stringsOf(v resp.Value) []string {
	out := []string{}
	for _, e := range v.Elems {
		out = append(out, e.Str)
	}
	return out
}

// TestScriptsAgainstRedis runs generated scripts of
// subscribe/psubscribe/ssubscribe/unsubscribe/publish on a real
// redis-server and on the Broker and compares receiver counts, deliveries,
// the counts in (un)subscribe replies and the PUBSUB answers. What Redis
// orders by its randomly seeded hash (PUBSUB CHANNELS, argument-less
// unsubscribe replies, several pmessages) is compared as a set.
func TestScriptsAgainstRedis(t *testing.T) {
	addr := redistest.Start(t)
	ctx := context.Background()
	const scripts, steps = 12, 150
	compared := map[string]int{}
	for seed := range uint64(scripts) {
		red := newRedisSide(t, addr)
		h := newHarness(t)
		ops := randomOps(rand.New(rand.NewPCG(seed, 99)), steps)
		for step, o := range ops {
			sub := h.subs[o.sub]
			before := sub.Stats()
			held := map[Namespace]int{Channels: before.Channels, Patterns: before.Patterns, ShardChannels: before.ShardChannels}[opSubKind(o.kind)]
			heldNames := func() []string {
				c, p, s := sub.Subscribed()
				return [][]string{c, p, s}[opSubKind(o.kind)]
			}()
			gotN, got := h.apply(o)
			after := h.subs[o.sub].Stats()
			switch o.kind {
			case opClose:
				// RESET leaves every subscription synchronously, so the
				// connection stands in for the fresh subscription.
				v := red.subs[o.sub].Do("RESET")
				require.Equal(t, "RESET", v.Str)
				continue
			case opPublish, opSPublish:
				v := red.pub.Do(redisCommand[o.kind], o.names[0], "p")
				require.Equal(t, int64(gotN), v.Int, "script %d step %d %+v: receivers (Broker %d, redis %v)", seed, step, o, gotN, v)
				for i, c := range red.subs {
					require.Equal(t, sortMessages(red.pushes(c)), sortMessages(got[i]), "script %d step %d %+v: deliveries of subscription %d", seed, step, o, i)
				}
				compared["publish"]++
			default:
				c := red.subs[o.sub]
				c.Send(append([]string{redisCommand[o.kind]}, o.names...)...)
				n := len(o.names)
				if n == 0 { // unsubscribe from all: one reply per name held, or one with a nil name
					n = max(held, 1)
				}
				names, count := red.subscribeReplies(c, redisCommand[o.kind], n)
				want := int64(after.Channels + after.Patterns)
				if opSubKind(o.kind) == ShardChannels {
					want = int64(after.ShardChannels)
				}
				require.Equal(t, want, count, "script %d step %d %+v: count in the last reply", seed, step, o)
				if len(o.names) == 0 {
					require.ElementsMatch(t, heldNames, names, "script %d step %d: names in unsubscribe-all replies", seed, step)
				}
				compared["subscribe"]++
			}

			// PUBSUB answers after every step.
			chans := red.pub.Do("PUBSUB", "CHANNELS")
			ours, err := h.b.Channels(ctx, "*")
			require.NoError(t, err)
			require.ElementsMatch(t, stringsOf(chans), ours, "script %d step %d: PUBSUB CHANNELS", seed, step)
			for _, p := range []string{"a*", "?", "[^a]*"} {
				chans = red.pub.Do("PUBSUB", "CHANNELS", p)
				ours, err = h.b.Channels(ctx, p)
				require.NoError(t, err)
				require.ElementsMatch(t, stringsOf(chans), ours, "script %d step %d: PUBSUB CHANNELS %q", seed, step, p)
			}
			shard := red.pub.Do("PUBSUB", "SHARDCHANNELS")
			oursShard, err := h.b.ShardChannels(ctx, "*")
			require.NoError(t, err)
			require.ElementsMatch(t, stringsOf(shard), oursShard, "script %d step %d: PUBSUB SHARDCHANNELS", seed, step)
			numPat := red.pub.Do("PUBSUB", "NUMPAT")
			oursPat, err := h.b.NumPat(ctx)
			require.NoError(t, err)
			require.Equal(t, numPat.Int, int64(oursPat), "script %d step %d: PUBSUB NUMPAT", seed, step)
			for _, sub := range []string{"NUMSUB", "SHARDNUMSUB"} {
				v := red.pub.Do(append([]string{"PUBSUB", sub}, modelChannels...)...)
				numSub := h.b.NumSub
				if sub == "SHARDNUMSUB" {
					numSub = h.b.ShardNumSub
				}
				counts, err := numSub(ctx, modelChannels...)
				require.NoError(t, err)
				for i, ch := range modelChannels {
					require.Equal(t, ch, v.Elems[2*i].Str)
					require.Equal(t, v.Elems[2*i+1].Int, int64(counts[ch]), "script %d step %d: PUBSUB %s %q", seed, step, sub, ch)
				}
			}
			compared["pubsub"]++
		}
		// Leave redis-server clean for the next script.
		for i, c := range red.subs {
			c.Close()
			red.subs[i] = nil
		}
		red.pub.Close()
		waitNoClients(t, addr)
	}
	t.Logf("compared with redis-server: %d scripts, %d publishes (counts and deliveries), %d (un)subscribe replies, %d rounds of PUBSUB answers",
		scripts, compared["publish"], compared["subscribe"], compared["pubsub"])
}

// waitNoClients waits until redis-server has dropped every subscription of
// closed connections, so that one script does not see the last one's.
func waitNoClients(t testing.TB, addr string) {
	c := redistest.Dial(t, addr)
	defer c.Close()
	for range 1000 {
		numPat := c.Do("PUBSUB", "NUMPAT").Int
		chans := len(c.Do("PUBSUB", "CHANNELS").Elems)
		shard := len(c.Do("PUBSUB", "SHARDCHANNELS").Elems)
		if numPat == 0 && chans == 0 && shard == 0 {
			return
		}
	}
	t.Fatal("redis-server kept subscriptions of closed connections")
}
