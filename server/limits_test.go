package server

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// pipeline returns n ECHO commands of size bytes each.
func pipeline(n, size int) []byte {
	payload := strings.Repeat("x", size)
	var b []byte
	for range n {
		b = resp.AppendCommand(b, "ECHO", payload)
	}
	return b
}

// neverReads dials addr with a small receive buffer and never reads.
func neverReads(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	return redistest.DialSmallReadBuffer(t, addr, 4096)
}

// clientIDs returns the ids CLIENT LIST shows.
func clientIDs(t *testing.T, c *redistest.Conn) []int64 {
	t.Helper()
	var ids []int64
	for _, line := range strings.Split(strings.TrimSpace(c.Do("CLIENT", "LIST").Str), "\n") {
		f := strings.Fields(line)
		require.NotEmpty(t, f)
		id, err := strconv.ParseInt(strings.TrimPrefix(f[0], "id="), 10, 64)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// A client that sends a pipeline and QUIT and never reads keeps its
// replies queued: it still counts against MaxClients, CLIENT LIST shows it,
// CLIENT KILL ends it, and Shutdown's deadline is kept whatever it does.
func TestUnreadOutputAfterQuitStillCounts(t *testing.T) {
	srv := &Server{MaxClients: 2}
	addr := start(t, srv)
	admin := redistest.Dial(t, addr)
	stuck := neverReads(t, addr)
	_, err := stuck.Write(append(pipeline(4000, 4096), resp.AppendCommand(nil, "QUIT")...))
	require.NoError(t, err)

	// Once the reader has taken QUIT, only the writer is left, blocked.
	waitReaderDone(t, srv)
	ids := clientIDs(t, admin)
	require.Len(t, ids, 2, "CLIENT LIST must show the stuck client")
	third := redistest.Dial(t, addr)
	assert.Equal(t, "ERR max number of clients reached", third.Read().Str, "the stuck client must count against maxclients")

	self := admin.Do("CLIENT", "ID").Int
	other := ids[0]
	if other == self {
		other = ids[1]
	}
	assert.Equal(t, int64(1), admin.Do("CLIENT", "KILL", "ID", strconv.FormatInt(other, 10)).Int)
	redistest.WaitFor(t, "the killed client to leave CLIENT LIST", func() bool { return len(clientIDs(t, admin)) == 1 })
}

// waitReaderDone waits until a connection's reader has ended (it took
// QUIT) while its writer is still running.
func waitReaderDone(t *testing.T, srv *Server) {
	t.Helper()
	redistest.WaitFor(t, "a client's reader to end", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, c := range srv.conns {
			if c.running.Load() == 1 {
				return true
			}
		}
		return false
	})
}

func TestShutdownKeepsItsDeadlineWithAStuckClient(t *testing.T) {
	srv := &Server{}
	addr := start(t, srv)
	stuck := neverReads(t, addr)
	_, err := stuck.Write(append(pipeline(4000, 4096), resp.AppendCommand(nil, "QUIT")...))
	require.NoError(t, err)
	waitReaderDone(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after its deadline")
	}
}

// A normal client has no output limit by default, as in Redis: a pipeline
// it reads only later is answered in full, past the pubsub class's 32 MB.
func TestNormalClientPipelineReadLater(t *testing.T) {
	addr := start(t, &Server{})
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	const n, size = 40_000, 1024 // 40 MB of replies
	sent := make(chan error, 1)
	go func() { _, err := nc.Write(pipeline(n, size)); sent <- err }()
	require.NoError(t, <-sent, "the server must keep reading while the client does not")
	r := resp.NewReader(nc)
	want := strings.Repeat("x", size)
	for i := range n {
		v, err := r.ReadValue()
		require.NoError(t, err, "reply %d", i)
		require.Equal(t, want, v.Str, "reply %d", i)
	}
}

// A subscribed client is in the pubsub class: past its hard limit it is
// disconnected even while it is only being answered, not sent messages.
func TestSubscribedClientHasThePubSubLimit(t *testing.T) {
	addr := start(t, &Server{PubSubOutputLimit: &OutputLimit{Hard: 1 << 20}})
	nc := neverReads(t, addr)
	_, err := nc.Write(append(resp.AppendCommand(nil, "HELLO", "3"), resp.AppendCommand(nil, "SUBSCRIBE", "x")...))
	require.NoError(t, err)
	_, _ = nc.Write(pipeline(4000, 4096)) // 16 MB of replies, or an error once disconnected
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = bytes.NewBuffer(nil).ReadFrom(nc)
	assert.NoError(t, err, "want the connection closed by the server, not a read timeout")
}

// The idle timeout counts from the last byte read or written: a client
// sending a command one byte at a time is never idle, and one that falls
// silent in the middle of a command is.
func TestIdleTimeoutCountsBytesNotCommands(t *testing.T) {
	addr := start(t, &Server{IdleTimeout: time.Second})

	drip, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer drip.Close()
	cmd := resp.AppendCommand(nil, "ECHO", strings.Repeat("d", 10)) // 27 bytes: 2.7 s
	for i := range cmd {
		_, err := drip.Write(cmd[i : i+1])
		require.NoError(t, err, "byte %d", i)
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, drip.SetReadDeadline(time.Now().Add(10*time.Second)))
	v, err := resp.NewReader(drip).ReadValue()
	require.NoError(t, err, "a client sending a byte every 100 ms was cut off")
	assert.Equal(t, strings.Repeat("d", 10), v.Str)

	silent, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer silent.Close()
	_, err = silent.Write([]byte("*2\r\n$4\r\nECHO\r\n$5\r\nab"))
	require.NoError(t, err)
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = bytes.NewBuffer(nil).ReadFrom(silent)
	assert.NoError(t, err, "want the silent client closed by the server, not a read timeout")
}

// TestIdleClientsHoldNoReadBuffer: a client waiting between commands holds
// no read buffer, so idle clients cost about what they cost Redis (each
// held 64 KB until they did: 200 of them took 13 MB of heap).
func TestIdleClientsHoldNoReadBuffer(t *testing.T) {
	addr := start(t, &Server{})
	const n = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, n)
	for i := range conns {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		_, err = nc.Write([]byte("PING\r\n"))
		require.NoError(t, err)
		reply := make([]byte, len("+PONG\r\n"))
		_, err = io.ReadFull(nc, reply)
		require.NoError(t, err)
		require.Equal(t, "+PONG\r\n", string(reply))
		conns[i] = nc
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perClient := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	t.Logf("heap per idle client, both ends: %d bytes", perClient)
	assert.Less(t, perClient, int64(16<<10), "heap per idle client")
}

// A client that sends its commands and then shuts down its write side
// (as a script piping into the connection does) still gets every reply,
// as from Redis, also after a SUBSCRIBE, after which the reader reads
// again before it writes.
func TestHalfClosedClientGetsItsReplies(t *testing.T) {
	for name, addr := range map[string]string{"redis": redistest.Start(t), "ours": start(t, &Server{})} {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		_, err = nc.Write([]byte("SUBSCRIBE x\r\nPING\r\n"))
		require.NoError(t, err)
		require.NoError(t, nc.(*net.TCPConn).CloseWrite())
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
		got, err := io.ReadAll(nc)
		require.NoError(t, err, name)
		assert.Equal(t, "*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n", string(got), name)
	}
}

// A client parked in WAIT that shuts its write side with a command still
// unread behind the WAIT is let go, as redis-server frees it on reading
// the end of its input; the parked socket is not reported again and
// again for the input that waits in it meanwhile.
func TestParkedClientThatHangsUpIsLetGo(t *testing.T) {
	for _, addr := range []string{redistest.Start(t), start(t, &Server{})} {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		_, err = nc.Write([]byte("WAIT 1 0\r\n"))
		require.NoError(t, err)
		ctl := redistest.Dial(t, addr)
		redistest.WaitFor(t, "WAIT to block", func() bool {
			return strings.Contains(ctl.Do("CLIENT", "LIST").Str, "cmd=wait")
		})
		_, err = nc.Write([]byte("PING\r\n")) // unread behind the WAIT
		require.NoError(t, err)
		require.NoError(t, nc.(*net.TCPConn).CloseWrite())
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
		rest, err := io.ReadAll(nc)
		assert.NoError(t, err, "%s: want the connection closed", addr)
		assert.Empty(t, rest, "%s: nothing is answered", addr)
		redistest.WaitFor(t, "the client to be gone", func() bool {
			return !strings.Contains(ctl.Do("CLIENT", "LIST").Str, "cmd=wait")
		})
	}
}
