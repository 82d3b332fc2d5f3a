package servertest_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/servertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunWaitDropRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := servertest.Run(t)

	sub := redistest.Dial(t, srv.Addr())
	sub.Send("SUBSCRIBE", "orders")
	require.NoError(t, srv.WaitSubscribers(ctx, "orders", 1))
	n, err := srv.Broker().Publish(ctx, "orders", "from Go")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	sub.Read() // the confirmation
	assert.Equal(t, "from Go", sub.Read().Elems[2].Str)

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, srv.WaitSubscribers(short, "orders", 2), context.DeadlineExceeded)

	srv.DropClients()
	_, err = sub.ReadErr()
	assert.ErrorIs(t, err, io.EOF, "a dropped client sees the connection close")

	again := redistest.Dial(t, srv.Addr())
	assert.Equal(t, "PONG", again.Do("PING").Str, "the server keeps serving after DropClients")
	again.Send("SUBSCRIBE", "orders")
	again.Read()

	srv.Restart()
	fresh := redistest.Dial(t, srv.Addr())
	counts := fresh.Do("PUBSUB", "NUMSUB", "orders")
	assert.Equal(t, int64(0), counts.Elems[1].Int, "a restart forgets every subscription")
}

// DropClients returns once the dropped clients' subscriptions are gone, and
// the waits cover patterns and shard channels as well as channels.
func TestDropClientsReturnsOnceSubscriptionsAreGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := servertest.Run(t)
	for i := range 30 {
		a, b := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
		a.Send("PSUBSCRIBE", "orders.*")
		a.Send("SUBSCRIBE", "orders")
		b.Send("SSUBSCRIBE", "orders")
		require.NoError(t, srv.WaitPatterns(ctx, 1))
		require.NoError(t, srv.WaitSubscribers(ctx, "orders", 1))
		require.NoError(t, srv.WaitShardSubscribers(ctx, "orders", 1))

		srv.DropClients()
		numPat, err := srv.Broker().NumPat(ctx)
		require.NoError(t, err)
		require.Zero(t, numPat, "try %d: NUMPAT right after DropClients", i)
		n, err := srv.Broker().Publish(ctx, "orders", "x")
		require.NoError(t, err)
		require.Zero(t, n, "try %d: receivers right after DropClients", i)
		shard, err := srv.Broker().ShardNumSub(ctx, "orders")
		require.NoError(t, err)
		require.Zero(t, shard["orders"], "try %d", i)
	}

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, srv.WaitPatterns(short, 1), context.DeadlineExceeded)
	assert.ErrorIs(t, srv.WaitShardSubscribers(short, "orders", 1), context.DeadlineExceeded)
}
