package server

import (
	"bufio"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// TestOrderAcrossInMemoryConnections writes a command on one in-memory
// connection and, without reading its reply, a command on another, and
// checks that the first ran first: in memory, commands run in the order
// they were written, across connections (Pipe), on either reading path.
//
//   - subscribe: SUBSCRIBE x on A, then PUBLISH x on B answers 1, and A
//     gets the message after its confirmation;
//   - unsubscribe: UNSUBSCRIBE x on A, then PUBLISH x on B answers 0, and
//     A gets no message;
//   - shard: SSUBSCRIBE x y z, SUNSUBSCRIBE x on A, then SPUBLISH x on B
//     answers 0.
//
// Over TCP the order is the order the kernel's poller reports the
// sockets, as for redis-server, which reorders input that arrives at
// nearly the same instant too (BenchmarkOrderAcrossConnections compares
// the two).
func TestOrderAcrossInMemoryConnections(t *testing.T) {
	const tries = 1000
	srv := &Server{}
	t.Cleanup(func() { _ = srv.Close() })
	dial := func(t *testing.T) net.Conn {
		nc, err := srv.Pipe()
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	send := func(t *testing.T, nc net.Conn, args ...string) {
		_, err := nc.Write(resp.AppendCommand(nil, args...))
		require.NoError(t, err)
	}
	a, b := dial(t), dial(t)
	ra, rb := resp.NewReader(bufio.NewReader(a)), resp.NewReader(bufio.NewReader(b))
	read := func(r *resp.Reader) resp.Value {
		v, err := r.ReadValue()
		require.NoError(t, err)
		return v
	}
	send(t, a, "PING")
	read(ra) // A is connected and served
	reordered := map[string]int{}
	for i := range tries {
		x := "{x}" + strconv.Itoa(i)

		send(t, a, "SUBSCRIBE", x)
		send(t, b, "PUBLISH", x, "m")
		if read(rb).Int != 1 {
			reordered["subscribe"]++
		}
		assert.Equal(t, "subscribe", read(ra).Elems[0].Str)
		assert.Equal(t, "m", read(ra).Elems[2].Str, "the message, after the confirmation")

		send(t, a, "UNSUBSCRIBE", x)
		send(t, b, "PUBLISH", x, "late")
		if read(rb).Int != 0 {
			reordered["unsubscribe"]++
		}
		assert.Equal(t, "unsubscribe", read(ra).Elems[0].Str, "and no message before it")

		send(t, a, "SSUBSCRIBE", x, x+"y", x+"z")
		send(t, a, "SUNSUBSCRIBE", x)
		send(t, b, "SPUBLISH", x, "late")
		if read(rb).Int != 0 {
			reordered["shard"]++
		}
		for range 3 {
			assert.Equal(t, "ssubscribe", read(ra).Elems[0].Str)
		}
		assert.Equal(t, "sunsubscribe", read(ra).Elems[0].Str)
		send(t, a, "SUNSUBSCRIBE")
		read(ra)
		read(ra)
	}
	assert.Empty(t, reordered, "commands that ran before one written earlier on another connection, of %d tries each", tries)
}
