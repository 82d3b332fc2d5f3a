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
	return serveTLS(t, srv, cfg), start(t, srv), ca
}

// serveTLS has srv serve TLS with config (nil: made of its tls-*
// parameters) on a free port until the test ends, and returns the
// address.
func serveTLS(t *testing.T, srv *Server, config *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, config) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeTLS returned %v; want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
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

// serveTLSFromParams serves srv over TLS on a free port with the
// configuration made of its tls-* parameters (ServeTLS(ln, nil)), and over
// plain TCP; it returns both addresses.
func serveTLSFromParams(t *testing.T, srv *Server) (tlsAddr, plainAddr string) {
	t.Helper()
	tlsAddr = serveTLS(t, srv, nil)
	plainAddr = start(t, srv)
	// A CONFIG SET of a tls-* parameter is checked once TLS is served
	// from the parameters: wait for ServeTLS to have made its
	// configuration, or the first command may come before it.
	require.Eventually(t, func() bool { return srv.tlsLive.Load() != nil }, 10*time.Second, time.Millisecond)
	return tlsAddr, plainAddr
}

// TestTLSParamsAsRedis starts redis-server and this server with the same
// tls-* parameters and compares CONFIG SET of each with good and bad
// values (a missing certificate, an unknown cipher, an encrypted key
// without and with its password), then checks a client still completes
// a handshake with each, as Redis keeps the configuration in force when a
// change fails.
func TestTLSParamsAsRedis(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.Server()
	encrypted := pair.EncryptedKeyFile(t, "s3cret")
	port, err := redistest.FreePort()
	require.NoError(t, err)
	args := []string{"--tls-port", strconv.Itoa(port), "--tls-cert-file", pair.CertFile, "--tls-key-file", pair.KeyFile, "--tls-ca-cert-file", ca.CertFile}
	their := redistest.StartServer(t, args...)
	theirTLS := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg, err := ReadConfig("", args)
	require.NoError(t, err)
	ourTLS, ourPlain := serveTLSFromParams(t, &Server{Config: cfg})
	theirs, ours := redistest.Dial(t, their.Addr), redistest.Dial(t, ourPlain)
	handshake := func(addr string) error {
		tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Client().TLS}, ServerName: "localhost"})
		if err != nil {
			return err
		}
		defer tc.Close()
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := tc.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err == nil && line != "+PONG\r\n" {
			err = errors.New("replied " + line)
		}
		return err
	}
	for _, cmd := range [][]string{
		{"CONFIG", "SET", "tls-cert-file", "/nonexistent"},
		{"CONFIG", "GET", "tls-cert-file"},
		{"CONFIG", "SET", "tls-ciphers", "BOGUS"},
		{"CONFIG", "SET", "tls-ciphers", "HIGH:!aNULL:!MD5"},
		{"CONFIG", "SET", "tls-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"},
		{"CONFIG", "SET", "tls-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"},
		{"CONFIG", "SET", "tls-ciphersuites", "TLS_BOGUS"},
		{"CONFIG", "SET", "tls-protocols", "TLSv9"},
		{"CONFIG", "SET", "tls-protocols", "TLSv1.2 TLSv1.3"},
		{"CONFIG", "SET", "tls-auth-clients", "maybe"},
		{"CONFIG", "SET", "tls-dh-params-file", "/nonexistent"},
		{"CONFIG", "SET", "tls-key-file", encrypted},
		{"CONFIG", "SET", "tls-key-file", encrypted, "tls-key-file-pass", "wrong"},
		{"CONFIG", "SET", "tls-key-file", encrypted, "tls-key-file-pass", "s3cret"},
		{"CONFIG", "GET", "tls-key-file-pass"},
		{"CONFIG", "SET", "tls-session-caching", "no"},
		{"CONFIG", "SET", "tls-prefer-server-ciphers", "yes"},
		{"CONFIG", "SET", "tls-session-cache-timeout", "60"},
	} {
		require.Equal(t, theirs.Do(cmd...), ours.Do(cmd...), "%q", cmd)
		require.NoError(t, handshake(theirTLS), "redis-server after %q", cmd)
		require.NoError(t, handshake(ourTLS), "after %q", cmd)
	}
}

// CONFIG SET tls-cert-file (and its key) changes the certificate the next
// handshakes get, without a restart: certificates can be rotated.
func TestTLSConfigSetRotatesTheCertificate(t *testing.T) {
	ca := tlstest.NewCA(t)
	first, second := ca.Server(), ca.Server()
	cfg, err := ReadConfig("", []string{"--tls-cert-file", first.CertFile, "--tls-key-file", first.KeyFile, "--tls-auth-clients", "no"})
	require.NoError(t, err)
	tlsAddr, plainAddr := serveTLSFromParams(t, &Server{Config: cfg})
	served := func() []byte {
		tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"})
		require.NoError(t, err)
		defer tc.Close()
		return tc.ConnectionState().PeerCertificates[0].Raw
	}
	assert.Equal(t, first.TLS.Certificate[0], served())
	c := redistest.Dial(t, plainAddr)
	require.Equal(t, "OK", c.Do("CONFIG", "SET", "tls-cert-file", second.CertFile, "tls-key-file", second.KeyFile).Str)
	assert.Equal(t, second.TLS.Certificate[0], served())
	// A key that does not go with the certificate changes nothing.
	require.Equal(t, "ERR CONFIG SET failed (possibly related to argument 'tls-key-file') - Unable to update TLS configuration. Check server logs.",
		c.Do("CONFIG", "SET", "tls-key-file", first.KeyFile).Str)
	assert.Equal(t, second.TLS.Certificate[0], served())
	assert.Equal(t, second.KeyFile, c.Do("CONFIG", "GET", "tls-key-file").Elems[1].Str)
}

// ServeTLS(ln, nil) with tls-* parameters that make no configuration
// fails with ErrBadConfig, as CheckConfig says beforehand.
func TestServeTLSFromBadParams(t *testing.T) {
	cfg, err := ReadConfig("", []string{"--tls-port", "1", "--tls-cert-file", "/nonexistent", "--tls-key-file", "/nonexistent"})
	require.NoError(t, err)
	srv := &Server{Config: cfg}
	require.ErrorIs(t, srv.CheckConfig(), ErrBadConfig)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = srv.ServeTLS(ln, nil)
	require.ErrorIs(t, err, ErrBadConfig)
	assert.Contains(t, err.Error(), "tls-cert-file")
	_ = srv.Close()
}
