package server

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
)

// clientFlags returns the flags CLIENT LIST shows for the client id.
func clientFlags(t *testing.T, admin *redistest.Conn, id int64) string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(admin.Do("CLIENT", "LIST").Str), "\n") {
		if !strings.HasPrefix(line, "id="+strconv.FormatInt(id, 10)+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "flags="); ok {
				return v
			}
		}
	}
	t.Fatalf("client %d is not in CLIENT LIST", id)
	return ""
}

// A PUBLISH that reaches a Go subscriber under the Block policy whose
// buffer is full parks its client: its later commands wait, and CLIENT
// LIST shows it blocked. Every other client goes on, and the RESP
// subscribers of the same message get it at once. Once the Go subscriber
// reads, its message is delivered and the publisher's next command runs.
func TestPublishToAFullBlockSubscriberParksOnlyThePublisher(t *testing.T) {
	broker := pubsub.New(pubsub.WithBufferSize(1), pubsub.WithOverflow(pubsub.Block))
	t.Cleanup(func() { _ = broker.Close() })
	addr := start(t, &Server{Broker: broker})
	ctx := context.Background()
	slow, err := broker.Subscribe(ctx, "jobs")
	require.NoError(t, err)

	watcher := redistest.Dial(t, addr)
	watcher.Do("SUBSCRIBE", "jobs")
	publisher := redistest.Dial(t, addr)
	id := publisher.Do("CLIENT", "ID").Int
	assert.Equal(t, int64(2), publisher.Do("PUBLISH", "jobs", "first").Int, "fills the Go subscriber's buffer")
	// The receivers are known at once, so the reply comes; the delivery
	// to the Go subscriber waits for room.
	assert.Equal(t, int64(2), publisher.Do("PUBLISH", "jobs", "second").Int)
	publisher.Send("PING")

	for _, want := range []string{"first", "second"} {
		assert.Equal(t, want, watcher.Read().Elems[2].Str, "a RESP subscriber waits for no Go subscriber")
	}
	admin := redistest.Dial(t, addr)
	assert.Equal(t, "PONG", admin.Do("PING").Str, "another client is served while the publisher waits")
	assert.Equal(t, "b", clientFlags(t, admin, id))

	for _, want := range []string{"first", "second"} {
		m, err := slow.ReceiveMessage(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, m.Payload)
	}
	assert.Equal(t, "PONG", publisher.Read().Str, "the publisher goes on once its message is delivered")
	assert.Equal(t, "N", clientFlags(t, admin, id))
}

// A client parked on a full Block-policy subscriber that is killed lets
// its waiting delivery go (counted as dropped, as when a Go publisher's
// context ends), and the Server closes with nothing left waiting.
func TestKilledPublisherWaitingOnABlockSubscriberIsLetGo(t *testing.T) {
	broker := pubsub.New(pubsub.WithBufferSize(1), pubsub.WithOverflow(pubsub.Block))
	t.Cleanup(func() { _ = broker.Close() })
	addr := start(t, &Server{Broker: broker})
	slow, err := broker.Subscribe(context.Background(), "jobs")
	require.NoError(t, err)

	publisher := redistest.Dial(t, addr)
	id := publisher.Do("CLIENT", "ID").Int
	publisher.Do("PUBLISH", "jobs", "first")
	publisher.Do("PUBLISH", "jobs", "second")
	admin := redistest.Dial(t, addr)
	redistest.WaitFor(t, "the publisher to wait", func() bool { return clientFlags(t, admin, id) == "b" })
	assert.Equal(t, int64(1), admin.Do("CLIENT", "KILL", "ID", strconv.FormatInt(id, 10)).Int)
	_, err = publisher.ReadErr()
	require.Error(t, err, "the killed publisher's connection ends")
	redistest.WaitFor(t, "the waiting delivery to be dropped", func() bool { return slow.Stats().Dropped == 1 })
	assert.Equal(t, "first", (<-slow.Channel()).Payload)
	select {
	case m := <-slow.Channel():
		t.Fatalf("the killed publisher's message was delivered: %q", m.Payload)
	default: // dropped: it can no longer come
	}
}
