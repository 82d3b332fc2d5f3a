package server

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/tlstest"
)

func TestBindHostReadsRedisNotation(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1": "127.0.0.1", "-::1": "::1", "*": "0.0.0.0", "-::*": "::", "10.0.0.1": "10.0.0.1"} {
		assert.Equal(t, want, bindHost(in), in)
	}
}

// listenAndServe runs srv.ListenAndServe for the test and checks it
// returns ErrServerClosed when the test closes the Server.
func listenAndServe(t *testing.T, srv *Server) {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	t.Cleanup(func() {
		_ = srv.Close()
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("ListenAndServe returned %v; want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ListenAndServe did not return after Close")
		}
	})
}

// dialable reports whether a connection to addr is accepted and answered.
func dialable(addr string) bool {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := nc.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := nc.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// CONFIG SET port, tls-port and bind move ListenAndServe's listeners as
// Redis moves its own: the new port answers, the old one no more, the
// clients connected stay; a port that cannot be listened on changes
// nothing, with Redis's error.
func TestConfigSetMovesTheListeners(t *testing.T) {
	p1, err := redistest.FreePort()
	require.NoError(t, err)
	cfg, err := ReadConfig("", []string{"--port", strconv.Itoa(p1), "--bind", "127.0.0.1"})
	require.NoError(t, err)
	listenAndServe(t, &Server{Config: cfg})
	addr1 := net.JoinHostPort("127.0.0.1", strconv.Itoa(p1))
	redistest.WaitFor(t, "the first port", func() bool { return dialable(addr1) })
	c := redistest.Dial(t, addr1)

	p2, err := redistest.FreePort()
	require.NoError(t, err)
	require.Equal(t, "OK", c.Do("CONFIG", "SET", "port", strconv.Itoa(p2)).Str)
	addr2 := net.JoinHostPort("127.0.0.1", strconv.Itoa(p2))
	assert.True(t, dialable(addr2), "the new port answers")
	assert.False(t, dialable(addr1), "the old port answers no more")
	assert.Equal(t, strconv.Itoa(p2), c.Do("CONFIG", "GET", "port").Elems[1].Str, "the client connected before stays")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	assert.Equal(t, "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs.",
		c.Do("CONFIG", "SET", "port", strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)).Str)
	assert.True(t, dialable(addr2), "a port that cannot be listened on changes nothing")

	assert.Equal(t, "ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses.",
		c.Do("CONFIG", "SET", "bind", "192.0.2.1").Str)
	assert.True(t, dialable(addr2), "addresses that cannot be listened on change nothing")
	require.Equal(t, "OK", c.Do("CONFIG", "SET", "bind", "127.0.0.1 -192.0.2.1").Str)
	assert.True(t, dialable(addr2))
	assert.Equal(t, "127.0.0.1 -192.0.2.1", c.Do("CONFIG", "GET", "bind").Elems[1].Str)

	// A TLS port, with its certificate in the same CONFIG SET.
	ca := tlstest.NewCA(t)
	pair := ca.Server()
	p3, err := redistest.FreePort()
	require.NoError(t, err)
	require.Equal(t, "OK", c.Do("CONFIG", "SET", "tls-port", strconv.Itoa(p3), "tls-cert-file", pair.CertFile,
		"tls-key-file", pair.KeyFile, "tls-auth-clients", "no").Str)
	tc, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p3)), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
	require.NoError(t, err)
	tc.Close()
	require.Equal(t, "OK", c.Do("CONFIG", "SET", "tls-port", "0").Str)
	_, err = tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p3)), &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
	assert.Error(t, err, "tls-port 0 closes the TLS port")
	assert.Equal(t, "PONG", c.Do("PING").Str)
}

// ListenAndServe refuses what it cannot listen on, and closes the
// Server.
func TestListenAndServeOnATakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	cfg, err := ReadConfig("", []string{"--port", strconv.Itoa(taken.Addr().(*net.TCPAddr).Port), "--bind", "127.0.0.1"})
	require.NoError(t, err)
	srv := &Server{Config: cfg}
	err = srv.ListenAndServe()
	require.Error(t, err)
	assert.ErrorIs(t, srv.Close(), ErrServerClosed, "closed already")
}
