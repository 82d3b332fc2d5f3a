package servertest_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
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

// In memory, a client writes a 900 KB pipeline before it reads a reply, a
// subscriber gets every message in order beside TCP clients, and reads
// keep their deadlines.
func TestDialInMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := servertest.Run(t)

	nc, err := srv.Dial(ctx, "tcp", "ignored:0")
	require.NoError(t, err)
	defer nc.Close()
	sub := bufio.NewReader(nc)
	_, err = nc.Write([]byte("*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n"))
	require.NoError(t, err)
	require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))

	pub, err := srv.Dial(ctx, "tcp", "")
	require.NoError(t, err)
	defer pub.Close()
	const n = 20000
	batch := bytes.Repeat([]byte("*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$5\r\nhello\r\n"), n)
	_, err = pub.Write(batch) // 900 KB of commands, none of the replies read yet
	require.NoError(t, err)
	replies, err := io.ReadAll(io.LimitReader(pub, int64(n*len(":1\r\n"))))
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte(":1\r\n"), n), replies)

	tcp := redistest.Dial(t, srv.Addr())
	assert.Equal(t, int64(1), tcp.Do("PUBLISH", "news", "from tcp").Int)
	want := "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n" +
		strings.Repeat("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n", n) +
		"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$8\r\nfrom tcp\r\n"
	got := make([]byte, len(want))
	_, err = io.ReadFull(sub, got)
	require.NoError(t, err)
	assert.Equal(t, want, string(got))

	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Millisecond)))
	_, err = sub.ReadByte()
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "a read past its deadline times out")
}

// The options hold across Restart, and a RESP3-only server speaks RESP3
// from a client's first command.
func TestOptions(t *testing.T) {
	srv := servertest.Run(t, servertest.WithProtocol(3), servertest.WithPassword("pw"))
	for range 2 {
		c := redistest.Dial(t, srv.Addr())
		assert.Equal(t, "NOAUTH Authentication required.", c.Do("PING").Str)
		assert.Equal(t, "OK", c.Do("AUTH", "pw").Str)
		assert.Equal(t, "NOPROTO unsupported protocol version", c.Do("HELLO", "2").Str)
		c.Send("SUBSCRIBE", "x")
		assert.Equal(t, byte('>'), c.Read().Type, "a RESP3 push, with no HELLO 3")
		srv.Restart()
	}
	_, err := servertest.Start(servertest.WithProtocol(4))
	assert.ErrorContains(t, err, "WithProtocol(4)")
}

// WithUsers' users hold across Restart; a rule Redis refuses fails Start.
func TestWithUsers(t *testing.T) {
	srv := servertest.Run(t, servertest.WithUsers("svc on >pw resetchannels &orders:* -@all +@pubsub +ping"))
	for range 2 {
		c := redistest.Dial(t, srv.Addr())
		assert.Equal(t, "PONG", c.Do("PING").Str, "the default user needs no password")
		assert.Equal(t, "OK", c.Do("AUTH", "svc", "pw").Str)
		assert.Equal(t, int64(0), c.Do("PUBLISH", "orders:1", "x").Int)
		assert.Equal(t, "NOPERM this user has no permissions to access one of the channels used as arguments", c.Do("SUBSCRIBE", "orders:1", "other").Str)
		srv.Restart()
	}
	_, err := servertest.Start(servertest.WithUsers("svc on bogus"))
	assert.ErrorContains(t, err, "WithUsers: server: invalid ACL users: Error loading ACL rule 'bogus' for the user named 'svc': Syntax error")
}
