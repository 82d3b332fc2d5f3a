package server

import (
	"bufio"
	"context"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// A Server with in-memory connections only runs inside a synctest bubble:
// once a client's Write has returned, synctest.Wait returns when the
// Server has run the command and written its reply, with no sleep and no
// polling.
func TestPipeInASynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &Server{}
		defer srv.Close()
		sub, err := srv.Pipe()
		require.NoError(t, err)
		defer sub.Close()
		pub, err := srv.Pipe()
		require.NoError(t, err)
		defer pub.Close()

		_, err = sub.Write(resp.AppendCommand(nil, "SUBSCRIBE", "news"))
		require.NoError(t, err)
		synctest.Wait()
		counts, err := srv.BrokerInUse().NumSub(context.Background(), "news")
		require.NoError(t, err)
		assert.Equal(t, 1, counts["news"], "the SUBSCRIBE has run")

		_, err = pub.Write(resp.AppendCommand(nil, "PUBLISH", "news", "hello"))
		require.NoError(t, err)
		synctest.Wait()
		reply, err := resp.NewReader(bufio.NewReader(pub)).ReadValue()
		require.NoError(t, err)
		assert.Equal(t, int64(1), reply.Int)
		r := resp.NewReader(bufio.NewReader(sub))
		confirm, err := r.ReadValue()
		require.NoError(t, err)
		assert.Equal(t, "subscribe", confirm.Elems[0].Str)
		msg, err := r.ReadValue()
		require.NoError(t, err)
		assert.Equal(t, "hello", msg.Elems[2].Str)
	})
}
