package clients_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/servertest"
)

// A service that may only publish and subscribe to orders:*, as clients
// connect with a user name and password: go-redis (RESP3 and RESP2) and
// rueidis subscribe and publish where the user may, and get Redis's NOPERM
// error elsewhere, the connection staying usable.
func TestLimitedUserWithClients(t *testing.T) {
	const user = "orders-svc on >s3cret resetchannels &orders:* -@all +@pubsub"
	const noperm = "NOPERM this user has no permissions to access one of the channels used as arguments"
	ctx := testContext(t)
	srv := servertest.Run(t, servertest.WithUsers(user))
	for _, proto := range []int{3, 2} {
		rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: proto, Username: "orders-svc", Password: "s3cret"})
		sub := rdb.Subscribe(ctx, "orders:1")
		_, err := sub.Receive(ctx) // the confirmation
		require.NoError(t, err, "RESP%d", proto)
		n, err := rdb.Publish(ctx, "orders:1", "placed").Result()
		require.NoError(t, err, "RESP%d", proto)
		assert.Equal(t, int64(1), n, "RESP%d", proto)
		m, err := sub.ReceiveMessage(ctx)
		require.NoError(t, err, "RESP%d", proto)
		assert.Equal(t, "placed", m.Payload)
		err = rdb.Publish(ctx, "payments:1", "paid").Err()
		require.Error(t, err, "RESP%d", proto)
		assert.Equal(t, noperm, err.Error(), "RESP%d", proto)
		assert.NoError(t, rdb.Publish(ctx, "orders:2", "x").Err(), "RESP%d: the connection stays usable", proto)
		wrong := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), Protocol: proto, Username: "orders-svc", Password: "wrong"})
		assert.ErrorContains(t, wrong.Ping(ctx).Err(), "WRONGPASS", "RESP%d", proto)
		_ = wrong.Close()
		_ = sub.Close()
		_ = rdb.Close()
		require.NoError(t, srv.WaitSubscribers(ctx, "orders:1", 0))
	}

	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, Username: "orders-svc", Password: "s3cret", DisableCache: true})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	n, err := client.Do(ctx, client.B().Publish().Channel("orders:1").Message("x").Build()).AsInt64()
	require.NoError(t, err)
	assert.Equal(t, int64(0), n)
	err = client.Do(ctx, client.B().Publish().Channel("payments:1").Message("x").Build()).Error()
	require.Error(t, err)
	assert.Equal(t, noperm, err.Error())
}
