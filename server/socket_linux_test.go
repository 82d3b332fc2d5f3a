package server

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
	"github.com/stretchr/testify/require"
)

// openDescriptors counts the process's open file descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// TestAcceptedSocketsAreAllClosed ends clients every way there is (they
// quit, CLIENT KILL, a Go publisher past a subscriber's output limit,
// DropClients from another goroutine, a refusal past maxclients, Close)
// and checks that each peer sees its connection closed at once and that
// no descriptor outlives the server: the loop closes the sockets it
// accepted, after a kill from another goroutine too.
func TestAcceptedSocketsAreAllClosed(t *testing.T) {
	if testHookNoPoller {
		t.Skip("the loop accepts sockets only with its poller")
	}
	// The runtime's own poller and the like are made by a first socket.
	warm, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	warm.Close()
	before := openDescriptors(t)

	broker := pubsub.New()
	defer broker.Close()
	srv := &Server{Broker: broker, MaxClients: 8, PubSubOutputLimit: &OutputLimit{Hard: 64 << 10}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	dial := func() (net.Conn, *resp.Reader) {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		return nc, resp.NewReader(nc)
	}
	do := func(nc net.Conn, r *resp.Reader, args ...string) resp.Value {
		_, err := nc.Write(resp.AppendCommand(nil, args...))
		require.NoError(t, err)
		v, err := r.ReadValue()
		require.NoError(t, err)
		return v
	}
	// closed waits for the server's end of nc to close it.
	closed := func(nc net.Conn, r *resp.Reader, what string) {
		t.Helper()
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, err := r.ReadValue()
			if err == nil {
				continue // what was queued before the end
			}
			var ne net.Error
			require.False(t, errors.As(err, &ne) && ne.Timeout(), "%s: the connection is still open", what)
			require.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset"), "%s: %v", what, err)
			nc.Close()
			return
		}
	}

	// A client that quits.
	q, qr := dial()
	require.Equal(t, "OK", do(q, qr, "QUIT").Str)
	closed(q, qr, "QUIT")

	// CLIENT KILL, on the loop.
	admin, ar := dial()
	victim, vr := dial()
	id := do(victim, vr, "CLIENT", "ID").Int
	require.Equal(t, int64(1), do(admin, ar, "CLIENT", "KILL", "ID", strconv.FormatInt(id, 10)).Int)
	closed(victim, vr, "CLIENT KILL")

	// A subscriber that reads nothing while a Go publisher, on its own
	// goroutine, goes past its output limit: the kill comes from there.
	slow, sr := dial()
	do(slow, sr, "SUBSCRIBE", "firehose")
	payload := strings.Repeat("x", 4096)
	for i := 0; ; i++ {
		require.Less(t, i, 100000, "the subscriber was never disconnected")
		if n, _ := broker.Publish(t.Context(), "firehose", payload); n == 0 {
			break
		}
	}
	closed(slow, sr, "output limit")

	// Clients dropped from another goroutine while they sit idle.
	var idle []net.Conn
	var idleR []*resp.Reader
	for range 4 {
		nc, r := dial()
		require.Equal(t, "PONG", do(nc, r, "PING").Str)
		idle, idleR = append(idle, nc), append(idleR, r)
	}
	srv.DropClients()
	for i := range idle {
		closed(idle[i], idleR[i], "DropClients")
	}
	admin.Close()

	// Past maxclients, refused with Redis's error and closed.
	var full []net.Conn
	for range 8 {
		nc, r := dial()
		require.Equal(t, "PONG", do(nc, r, "PING").Str)
		full = append(full, nc)
	}
	over, or := dial()
	v, err := or.ReadValue()
	require.NoError(t, err)
	require.Equal(t, "ERR max number of clients reached", v.Str)
	closed(over, or, "maxclients")

	require.NoError(t, srv.Close())
	require.ErrorIs(t, <-served, ErrServerClosed)
	for _, nc := range full {
		closed(nc, resp.NewReader(nc), "Close")
	}
	require.Equal(t, before, openDescriptors(t), "descriptors left open once the server is closed and its clients gone")
}

// TestAcceptedSocketsAreSetUpAsRedis checks the options Redis sets on a
// client's TCP socket, whether the loop accepted it or not: no Nagle delay, and keep-alive probes after
// tcp-keepalive's seconds (300 unless set; none at 0), then every third
// of it, three times.
func TestAcceptedSocketsAreSetUpAsRedis(t *testing.T) {
	srv := &Server{}
	addr := start(t, srv)
	admin := redistest.Dial(t, addr)
	option := func(fd, level, name int) int {
		v, err := syscall.GetsockoptInt(fd, level, name)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		set                    string
		on, idle, every, count int
	}{
		{"", 1, 300, 100, 3},
		{"60", 1, 60, 20, 3},
		{"2", 1, 2, 1, 3},
		{"0", 0, 0, 0, 0},
	} {
		if tc.set != "" {
			require.Equal(t, "OK", admin.Do("CONFIG", "SET", "tcp-keepalive", tc.set).Str)
		}
		client := redistest.Dial(t, addr)
		c := srv.connByID(client.Do("CLIENT", "ID").Int)
		require.NotNil(t, c)
		if !testHookNoPoller {
			_, ok := c.nc.(*loopSocket)
			require.True(t, ok, "a socket the loop accepted is %T", c.nc)
		}
		require.NoError(t, rawConn(c.nc).Control(func(fd uintptr) {
			s := int(fd)
			require.Equal(t, 1, option(s, syscall.IPPROTO_TCP, syscall.TCP_NODELAY), "TCP_NODELAY")
			require.Equal(t, tc.on, option(s, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE), "SO_KEEPALIVE with tcp-keepalive %q", tc.set)
			if tc.on == 1 {
				require.Equal(t, tc.idle, option(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE), "TCP_KEEPIDLE")
				require.Equal(t, tc.every, option(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL), "TCP_KEEPINTVL")
				require.Equal(t, tc.count, option(s, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT), "TCP_KEEPCNT")
			}
		}))
	}
}

// TestUnixSocketClientsAreServedByTheLoop serves a Unix socket: the loop
// accepts and serves its clients as TCP ones, with their addresses as the
// net package gives them.
func TestUnixSocketClientsAreServedByTheLoop(t *testing.T) {
	if testHookNoPoller {
		t.Skip("the loop accepts sockets only with its poller")
	}
	path := t.TempDir() + "/pubsub.sock"
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	srv := &Server{}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		require.NoError(t, srv.Close())
		require.ErrorIs(t, <-served, ErrServerClosed)
	}()
	nc, err := net.Dial("unix", path)
	require.NoError(t, err)
	defer nc.Close()
	r := resp.NewReader(nc)
	_, err = nc.Write(resp.AppendCommand(nil, "CLIENT", "ID"))
	require.NoError(t, err)
	v, err := r.ReadValue()
	require.NoError(t, err)
	c := srv.connByID(v.Int)
	require.NotNil(t, c)
	_, ok := c.nc.(*loopSocket)
	require.True(t, ok, "a socket the loop accepted is %T", c.nc)
	require.Equal(t, "unix", c.nc.RemoteAddr().Network())
	require.Equal(t, path, c.nc.LocalAddr().String())
	_, err = nc.Write(resp.AppendCommand(nil, "PING"))
	require.NoError(t, err)
	v, err = r.ReadValue()
	require.NoError(t, err)
	require.Equal(t, "PONG", v.Str)
}
