package pubsub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingRelay records the calls a Broker makes and can refuse joins.
type recordingRelay struct {
	mu     sync.Mutex
	calls  []string
	refuse error
}

func (r *recordingRelay) Join(ctx context.Context, ns Namespace, names []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("join %v %q", ns.Kind(), names))
	return r.refuse
}

func (r *recordingRelay) Leave(ns Namespace, names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(names)
	r.calls = append(r.calls, fmt.Sprintf("leave %v %q", ns.Kind(), names))
}

func (r *recordingRelay) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func TestRelayHearsWhatEachSubscriptionGainsAndLoses(t *testing.T) {
	ctx := context.Background()
	r := &recordingRelay{}
	b := newBroker(t, WithRelay(r))

	s, err := b.Subscribe(ctx, "a", "b", "a")
	require.NoError(t, err)
	require.NoError(t, s.Subscribe(ctx, "b", "c"))
	require.NoError(t, s.PSubscribe(ctx, "n*"))
	require.NoError(t, s.SSubscribe(ctx, "s"))
	assert.Equal(t, []string{
		`join message ["a" "b"]`, // each name once
		`join message ["c"]`,     // only what it did not hold
		`join pmessage ["n*"]`,
		`join smessage ["s"]`,
	}, r.take())

	require.NoError(t, s.Unsubscribe(ctx, "a", "zzz"))
	require.NoError(t, s.Unsubscribe(ctx, "zzz")) // nothing left: no call
	require.NoError(t, s.Close())
	assert.Equal(t, []string{
		`leave message ["a"]`,
		`leave message ["b" "c"]`,
		`leave pmessage ["n*"]`,
		`leave smessage ["s"]`,
	}, r.take())
}

func TestRelayRefusalLeavesTheSubscriptionAsItWas(t *testing.T) {
	ctx := context.Background()
	refused := errors.New("upstream down")
	r := &recordingRelay{refuse: refused}
	b := newBroker(t, WithRelay(r))

	_, err := b.Subscribe(ctx, "a")
	require.ErrorIs(t, err, refused)
	s, err := b.NewSubscription()
	require.NoError(t, err)
	require.ErrorIs(t, s.PSubscribe(ctx, "p*"), refused)
	assert.Equal(t, 0, s.Stats().Patterns)
	n, err := b.NumPat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	r.take()
	require.NoError(t, s.Close())
	assert.Empty(t, r.take(), "nothing was joined, so nothing is left")
}

func TestWithRelayIsABrokerOption(t *testing.T) {
	b := newBroker(t, WithRelay(&recordingRelay{}))
	_, err := b.NewSubscription(WithRelay(&recordingRelay{}))
	assert.ErrorIs(t, err, ErrInvalidOption)
	_, err = New(WithRelay(nil)).Subscribe(context.Background(), "a")
	assert.ErrorIs(t, err, ErrInvalidOption)
}

func TestDeliverGoesToTheNameItselfOnly(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, WithRelay(&recordingRelay{}))
	channel, err := b.Subscribe(ctx, "news")
	require.NoError(t, err)
	pattern, err := b.PSubscribe(ctx, "n*")
	require.NoError(t, err)
	other, err := b.PSubscribe(ctx, "*")
	require.NoError(t, err)
	shard, err := b.SSubscribe(ctx, "news")
	require.NoError(t, err)

	n, err := b.Deliver(ctx, Message{Kind: KindMessage, Channel: "news", Payload: "m"})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a message is not matched against patterns")
	n, err = b.Deliver(ctx, Message{Kind: KindPMessage, Pattern: "n*", Channel: "news", Payload: "p"})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a pmessage goes to its pattern only")
	n, err = b.Deliver(ctx, Message{Kind: KindSMessage, Channel: "news", Payload: "s"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = b.Deliver(ctx, Message{Kind: Kind(9)})
	assert.ErrorIs(t, err, ErrInvalidOption)

	assert.Equal(t, []Message{{Kind: KindMessage, Channel: "news", Payload: "m"}}, drain(channel))
	assert.Equal(t, []Message{{Kind: KindPMessage, Pattern: "n*", Channel: "news", Payload: "p"}}, drain(pattern))
	assert.Empty(t, drain(other))
	assert.Equal(t, []Message{{Kind: KindSMessage, Channel: "news", Payload: "s"}}, drain(shard))
}

func TestReportGapCountsPerSubscriptionAndName(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	s, err := b.Subscribe(ctx, "a", "b")
	require.NoError(t, err)
	require.NoError(t, s.PSubscribe(ctx, "p*"))
	bystander, err := b.Subscribe(ctx, "c")
	require.NoError(t, err)

	assert.Equal(t, 2, b.ReportGap(Channels, "a", "b", "nobody"))
	assert.Equal(t, 1, b.ReportGap(Patterns, "p*"))
	assert.Equal(t, 0, b.ReportGap(ShardChannels, "a"))
	assert.Equal(t, uint64(3), s.Stats().Gaps)
	assert.Equal(t, uint64(0), bystander.Stats().Gaps)
	assert.Equal(t, uint64(3), b.Stats().Gaps, "the Broker adds up its subscriptions' gaps")
}
