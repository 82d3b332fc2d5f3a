package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
	"github.com/gopherpubsub/pubsub/internal/tlstest"
)

// startTLS serves srv over TLS on a free loopback port, asking clients
// for a certificate the test's CA signed, and over plain TCP on another;
// it returns both addresses and the CA.
func startTLS(t *testing.T, srv *Server) (tlsAddr, plainAddr string, ca *tlstest.CA) {
	t.Helper()
	ca = tlstest.NewCA(t)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{ca.Server().TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, cfg) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeTLS returned %v; want ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), start(t, srv), ca
}

// dialTLS connects as a client with a certificate from ca.
func dialTLS(t *testing.T, addr string, ca *tlstest.CA) (*tls.Conn, *resp.Reader) {
	t.Helper()
	tc, err := tls.Dial("tcp", addr, &tls.Config{
		RootCAs:      ca.Pool,
		Certificates: []tls.Certificate{ca.Client().TLS},
		ServerName:   "localhost",
	})
	require.NoError(t, err)
	t.Cleanup(func() { tc.Close() })
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	return tc, resp.NewReader(tc)
}

// A subscriber over TLS receives what a plain one does, in the same
// order, and CLIENT LIST shows its socket's number.
func TestTLSSubscriberReceivesAsAPlainOne(t *testing.T) {
	tlsAddr, plainAddr, ca := startTLS(t, &Server{})
	tc, r := dialTLS(t, tlsAddr, ca)
	plainSub := redistest.Dial(t, plainAddr)
	_, err := tc.Write(resp.AppendCommand(nil, "SUBSCRIBE", "news"))
	require.NoError(t, err)
	confirm, err := r.ReadValue()
	require.NoError(t, err)
	assert.Equal(t, "subscribe", confirm.Elems[0].Str)
	plainSub.Do("SUBSCRIBE", "news")

	publisher := redistest.Dial(t, plainAddr)
	for i := range 100 {
		assert.Equal(t, int64(2), publisher.Do("PUBLISH", "news", strconv.Itoa(i)).Int)
	}
	for i := range 100 {
		m, err := r.ReadValue()
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i), m.Elems[2].Str, "over TLS")
		assert.Equal(t, strconv.Itoa(i), plainSub.Read().Elems[2].Str, "plain")
	}
	list := publisher.Do("CLIENT", "LIST").Str
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		assert.NotContains(t, line, " fd=-1 ", "every client has a socket")
	}
}

// A client that speaks plain text on the TLS port is closed with nothing
// served; a client without a certificate fails its handshake.
func TestTLSPortRefusesPlainTextAndClientsWithoutCertificate(t *testing.T) {
	tlsAddr, _, ca := startTLS(t, &Server{})
	nc, err := net.Dial("tcp", tlsAddr)
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Write(resp.AppendCommand(nil, "PING"))
	require.NoError(t, err)
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(nc)
	require.NoError(t, err, "the server closes the connection")
	assert.NotContains(t, string(got), "PONG", "nothing is served to plain text")

	tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
	if err == nil { // TLS 1.3: the client learns of the refusal on its first read
		defer tc.Close()
		_, _ = tc.Write(resp.AppendCommand(nil, "PING"))
		_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = bufio.NewReader(tc).ReadString('\n')
	}
	require.Error(t, err, "a client without a certificate is refused")
}

// A TLS handshake that never finishes holds back no other client, and is
// closed once TLSHandshakeTimeout has passed.
func TestStuckTLSHandshakeIsClosedAndHoldsNoOneBack(t *testing.T) {
	srv := &Server{TLSHandshakeTimeout: 300 * time.Millisecond}
	tlsAddr, plainAddr, ca := startTLS(t, srv)
	stuck, err := net.Dial("tcp", tlsAddr) // sends nothing
	require.NoError(t, err)
	defer stuck.Close()

	tc, r := dialTLS(t, tlsAddr, ca)
	_, err = tc.Write(resp.AppendCommand(nil, "PING"))
	require.NoError(t, err)
	pong, err := r.ReadValue()
	require.NoError(t, err)
	assert.Equal(t, "PONG", pong.Str)
	assert.Equal(t, "PONG", redistest.Dial(t, plainAddr).Do("PING").Str)

	_ = stuck.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := stuck.Read(make([]byte, 1))
	assert.Equal(t, 0, n)
	assert.ErrorIs(t, err, io.EOF, "closed after the handshake timeout, not by the read deadline")
}

// ServeTLS without a certificate is a configuration error.
func TestServeTLSWithoutCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.ErrorIs(t, (&Server{}).ServeTLS(ln, &tls.Config{}), ErrBadConfig)
}
