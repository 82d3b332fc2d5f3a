package clients_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/servertest"
)

// go-redis and rueidis through servertest's in-memory Dial: no TCP port.
func TestInMemoryDial(t *testing.T) {
	ctx := testContext(t)
	srv := servertest.Run(t)

	rdb := goredis.NewClient(&goredis.Options{Dialer: srv.Dial})
	t.Cleanup(func() { _ = rdb.Close() })
	sub := rdb.Subscribe(ctx, "news")
	t.Cleanup(func() { _ = sub.Close() })
	_, err := sub.Receive(ctx) // the confirmation
	require.NoError(t, err)

	client, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{"in-memory:0"},
		DialCtxFn: func(ctx context.Context, addr string, _ *net.Dialer, _ *tls.Config) (net.Conn, error) {
			return srv.Dial(ctx, "tcp", addr)
		},
	})
	require.NoError(t, err)
	t.Cleanup(client.Close)

	pipe := rdb.Pipeline()
	for range 1000 {
		pipe.Publish(ctx, "news", "from go-redis")
	}
	cmds, err := pipe.Exec(ctx)
	require.NoError(t, err)
	for _, c := range cmds {
		assert.Equal(t, int64(1), c.(*goredis.IntCmd).Val())
	}
	n, err := client.Do(ctx, client.B().Publish().Channel("news").Message("from rueidis").Build()).AsInt64()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	for i := range 1001 {
		m, err := sub.ReceiveMessage(ctx)
		require.NoError(t, err)
		if i == 1000 {
			assert.Equal(t, "from rueidis", m.Payload)
		} else {
			assert.Equal(t, "from go-redis", m.Payload)
		}
	}
}
