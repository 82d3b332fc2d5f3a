package clients_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/tlstest"
	"github.com/gopherpubsub/pubsub/server"
)

// tlsServer serves over TLS, asking clients for a certificate of the
// test's CA, and over plain TCP, and returns both addresses.
func tlsServer(t *testing.T) (tlsAddr, plainAddr string, ca *tlstest.CA) {
	t.Helper()
	ca = tlstest.NewCA(t)
	srv := &server.Server{}
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Server().TLS}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 2)
	go func() { served <- srv.ServeTLS(tlsLn, cfg) }()
	go func() { served <- srv.Serve(plainLn) }()
	t.Cleanup(func() {
		_ = srv.Close()
		for range 2 {
			if err := <-served; !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return tlsLn.Addr().String(), plainLn.Addr().String(), ca
}

func clientTLS(ca *tlstest.CA) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Client().TLS}, ServerName: "localhost"}
}

// go-redis and rueidis over TLS with a client certificate: a subscriber
// over TLS receives what a plain one does, in the same order.
func TestGoClientsOverTLS(t *testing.T) {
	ctx := testContext(t)
	tlsAddr, plainAddr, ca := tlsServer(t)
	overTLS := goredis.NewClient(&goredis.Options{Addr: tlsAddr, TLSConfig: clientTLS(ca)})
	t.Cleanup(func() { _ = overTLS.Close() })
	plain := goredis.NewClient(&goredis.Options{Addr: plainAddr})
	t.Cleanup(func() { _ = plain.Close() })
	ru, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{tlsAddr}, TLSConfig: clientTLS(ca), DisableCache: true})
	require.NoError(t, err)
	t.Cleanup(ru.Close)

	tlsSub := overTLS.Subscribe(ctx, "news")
	t.Cleanup(func() { _ = tlsSub.Close() })
	plainSub := plain.Subscribe(ctx, "news")
	t.Cleanup(func() { _ = plainSub.Close() })
	for _, s := range []*goredis.PubSub{tlsSub, plainSub} {
		_, err := s.Receive(ctx) // the confirmation
		require.NoError(t, err)
	}
	for i := range 50 {
		var n int64
		if i%2 == 0 {
			n = overTLS.Publish(ctx, "news", strconv.Itoa(i)).Val()
		} else {
			n, err = ru.Do(ctx, ru.B().Publish().Channel("news").Message(strconv.Itoa(i)).Build()).AsInt64()
			require.NoError(t, err)
		}
		assert.Equal(t, int64(2), n)
	}
	for i := range 50 {
		for _, s := range []*goredis.PubSub{tlsSub, plainSub} {
			m, err := s.ReceiveMessage(ctx)
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(i), m.Payload)
		}
	}
}

// redis-py over TLS with a client certificate.
func TestRedisPyOverTLS(t *testing.T) {
	const python = "/usr/bin/python3" // the interpreter Debian's python3-redis is for
	_, err := exec.LookPath(python)
	need(t, err == nil, python+" not found: install Debian's python3 and python3-redis")
	need(t, exec.Command(python, "-c", "import redis").Run() == nil, "the redis module is missing: install Debian's python3-redis")
	tlsAddr, _, ca := tlsServer(t)
	host, port, _ := net.SplitHostPort(tlsAddr)
	cert := ca.Client()
	script := `
import sys, redis
host, port, ca, cert, key = sys.argv[1:]
r = redis.Redis(host=host, port=int(port), ssl=True, ssl_ca_certs=ca, ssl_certfile=cert, ssl_keyfile=key)
p = r.pubsub()
p.subscribe("news")
assert p.get_message(timeout=5)["type"] == "subscribe"
for i in range(20):
    assert r.publish("news", str(i)) == 1
for i in range(20):
    m = p.get_message(timeout=5)
    assert m["data"] == str(i).encode(), m
print("ok")
`
	out, err := exec.Command(python, "-c", script, host, port, ca.CertFile, cert.CertFile, cert.KeyFile).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "ok", strings.TrimSpace(string(out)))
}
