package pubsub

import (
	"context"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The reference model: an obviously correct broker, one map per
// subscription and a linear scan with refMatch for patterns. Random and
// fuzz-driven operation scripts must give the same answers on the Broker.

type opKind uint8

const (
	opSubscribe opKind = iota
	opPSubscribe
	opSSubscribe
	opUnsubscribe
	opPUnsubscribe
	opSUnsubscribe
	opPublish
	opSPublish
	opClose
	numOpKinds
)

type op struct {
	kind  opKind
	sub   int
	names []string // for opPublish and opSPublish, names[0] is the channel
}

var (
	modelChannels = []string{"a", "b", "ab", "news:서울", "", "a\xff"}
	modelPatterns = []string{"a*", "*", "?", "[ab]", "*b", "", "news:*", "[^a]*", "a\\*", "*ab*", "*?*"}
	modelSubs     = 4
)

// decodeOps turns arbitrary bytes into an operation script, so that the
// fuzzer can explore scripts and a seeded generator can make them.
func decodeOps(data []byte) []op {
	var ops []op
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	for len(data) > 0 {
		o := op{kind: opKind(next() % int(numOpKinds)), sub: next() % modelSubs}
		pool := modelChannels
		if o.kind == opPSubscribe || o.kind == opPUnsubscribe {
			pool = modelPatterns
		}
		n := next() % 4 // 0 means "all" for unsubscribes
		if o.kind == opPublish || o.kind == opSPublish || n == 0 && o.kind <= opSSubscribe {
			n = 1
		}
		for range n {
			o.names = append(o.names, pool[next()%len(pool)])
		}
		ops = append(ops, o)
	}
	return ops
}

func randomOps(r *rand.Rand, n int) []op {
	data := make([]byte, 4*n)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return decodeOps(data)
}

type modelSub struct {
	sets [3]map[string]bool // by Namespace
}

type model struct {
	subs []*modelSub
}

func newModel() *model {
	m := &model{}
	for range modelSubs {
		m.subs = append(m.subs, m.fresh())
	}
	return m
}

func (m *model) fresh() *modelSub {
	return &modelSub{sets: [3]map[string]bool{{}, {}, {}}}
}

func opSubKind(k opKind) Namespace {
	switch k {
	case opPSubscribe, opPUnsubscribe:
		return Patterns
	case opSSubscribe, opSUnsubscribe:
		return ShardChannels
	}
	return Channels
}

// apply performs o and returns what a publish delivers, per subscription.
func (m *model) apply(o op) (int, [][]Message) {
	s := m.subs[o.sub]
	switch o.kind {
	case opSubscribe, opPSubscribe, opSSubscribe:
		for _, n := range o.names {
			s.sets[opSubKind(o.kind)][n] = true
		}
	case opUnsubscribe, opPUnsubscribe, opSUnsubscribe:
		set := s.sets[opSubKind(o.kind)]
		if len(o.names) == 0 {
			clear(set)
		}
		for _, n := range o.names {
			delete(set, n)
		}
	case opClose:
		m.subs[o.sub] = m.fresh() // the harness replaces a closed subscription
	case opPublish, opSPublish:
		ch := o.names[0]
		out := make([][]Message, len(m.subs))
		count := 0
		for i, s := range m.subs {
			if o.kind == opSPublish {
				if s.sets[ShardChannels][ch] {
					out[i] = append(out[i], Message{Kind: KindSMessage, Channel: ch, Payload: "p"})
				}
			} else {
				if s.sets[Channels][ch] {
					out[i] = append(out[i], Message{Kind: KindMessage, Channel: ch, Payload: "p"})
				}
				for p := range s.sets[Patterns] {
					if refMatch(p, ch) {
						out[i] = append(out[i], Message{Kind: KindPMessage, Channel: ch, Pattern: p, Payload: "p"})
					}
				}
			}
			count += len(out[i])
		}
		return count, out
	}
	return 0, nil
}

func (m *model) numSub(kind Namespace, ch string) int {
	n := 0
	for _, s := range m.subs {
		if s.sets[kind][ch] {
			n++
		}
	}
	return n
}

func (m *model) numPat() int {
	all := map[string]bool{}
	for _, s := range m.subs {
		maps.Copy(all, s.sets[Patterns])
	}
	return len(all)
}

func (m *model) channels(kind Namespace, keep func(string) bool) []string {
	var out []string
	for _, ch := range modelChannels {
		if m.numSub(kind, ch) > 0 && keep(ch) {
			out = append(out, ch)
		}
	}
	return out
}

// harness applies scripts to a real Broker.
type harness struct {
	t    testing.TB
	b    *Broker
	subs []*Subscription
}

func newHarness(t testing.TB) *harness {
	h := &harness{t: t, b: New(WithBufferSize(64))}
	t.Cleanup(func() { _ = h.b.Close() })
	for range modelSubs {
		h.subs = append(h.subs, h.fresh())
	}
	return h
}

func (h *harness) fresh() *Subscription {
	s, err := h.b.NewSubscription()
	require.NoError(h.t, err)
	return s
}

func (h *harness) apply(o op) (int, [][]Message) {
	ctx := context.Background()
	s := h.subs[o.sub]
	var err error
	switch o.kind {
	case opSubscribe:
		err = s.Subscribe(ctx, o.names...)
	case opPSubscribe:
		err = s.PSubscribe(ctx, o.names...)
	case opSSubscribe:
		err = s.SSubscribe(ctx, o.names...)
	case opUnsubscribe:
		err = s.Unsubscribe(ctx, o.names...)
	case opPUnsubscribe:
		err = s.PUnsubscribe(ctx, o.names...)
	case opSUnsubscribe:
		err = s.SUnsubscribe(ctx, o.names...)
	case opClose:
		err = s.Close()
		h.subs[o.sub] = h.fresh()
	case opPublish, opSPublish:
		publish := h.b.Publish
		if o.kind == opSPublish {
			publish = h.b.SPublish
		}
		n, err := publish(ctx, o.names[0], "p")
		require.NoError(h.t, err)
		out := make([][]Message, len(h.subs))
		for i, s := range h.subs {
			out[i] = drain(s)
		}
		return n, out
	}
	require.NoError(h.t, err, "%+v", o)
	return 0, nil
}

// checkScript runs ops on the model and the Broker and compares every
// answer: receiver counts, deliveries, subscription counts and PUBSUB.
func checkScript(t testing.TB, ops []op) {
	ctx := context.Background()
	m, h := newModel(), newHarness(t)
	for step, o := range ops {
		wantN, want := m.apply(o)
		gotN, got := h.apply(o)
		require.Equal(t, wantN, gotN, "step %d %+v: receivers", step, o)
		for i := range want {
			require.Equal(t, sortMessages(want[i]), sortMessages(got[i]), "step %d %+v: deliveries of subscription %d", step, o, i)
		}
		for i, s := range h.subs {
			st := s.Stats()
			ms := m.subs[i]
			require.Equal(t, len(ms.sets[Channels])+len(ms.sets[Patterns]), st.Channels+st.Patterns, "step %d: count of subscription %d", step, i)
			require.Equal(t, len(ms.sets[ShardChannels]), st.ShardChannels, "step %d: shard count of subscription %d", step, i)
		}
		numSub, err := h.b.NumSub(ctx, modelChannels...)
		require.NoError(t, err)
		shardNumSub, err := h.b.ShardNumSub(ctx, modelChannels...)
		require.NoError(t, err)
		for _, ch := range modelChannels {
			require.Equal(t, m.numSub(Channels, ch), numSub[ch], "step %d: NUMSUB %q", step, ch)
			require.Equal(t, m.numSub(ShardChannels, ch), shardNumSub[ch], "step %d: SHARDNUMSUB %q", step, ch)
		}
		numPat, err := h.b.NumPat(ctx)
		require.NoError(t, err)
		require.Equal(t, m.numPat(), numPat, "step %d: NUMPAT", step)
		for _, p := range []string{"*", "a*", "?"} {
			keep := func(ch string) bool { return p == "*" || refMatch(p, ch) }
			chans, err := h.b.Channels(ctx, p)
			require.NoError(t, err)
			require.ElementsMatch(t, m.channels(Channels, keep), chans, "step %d: CHANNELS %q", step, p)
			shard, err := h.b.ShardChannels(ctx, p)
			require.NoError(t, err)
			require.ElementsMatch(t, m.channels(ShardChannels, keep), shard, "step %d: SHARDCHANNELS %q", step, p)
		}
	}
}

func TestAgainstReferenceModel(t *testing.T) {
	for seed := range uint64(50) {
		ops := randomOps(rand.New(rand.NewPCG(seed, 7)), 200)
		checkScript(t, ops)
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
}

func FuzzReferenceModel(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 6, 1, 0, 0})
	f.Add([]byte{1, 2, 3, 1, 1, 3, 6, 0, 0, 2, 8, 2, 0, 6, 3, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 400 {
			data = data[:400]
		}
		checkScript(t, decodeOps(data))
	})
}
