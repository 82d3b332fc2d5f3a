package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/gopherpubsub/pubsub/server"
)

// A redis.conf and command line read as redis-server reads them, the
// later setting winning, then served.
func ExampleReadConfig() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "redis.conf")
	_ = os.WriteFile(path, []byte("# the service's settings\nport 7000\nmaxclients 100\ntimeout 300\n"), 0o644)

	cfg, err := server.ReadConfig(path, []string{"--maxclients", "64"})
	if err != nil {
		log.Fatal(err)
	}
	port, _ := cfg.Get("port")
	maxClients, _ := cfg.Get("maxclients")
	fmt.Println("port", port, "maxclients", maxClients)

	srv := &server.Server{Config: cfg} // maxclients and timeout take effect
	defer srv.Close()
	// Output: port 7000 maxclients 64
}

// A line redis-server would refuse is reported as it reports it.
func ExampleConfigError() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "redis.conf")
	_ = os.WriteFile(path, []byte("port 7000\nmaxclients many\n"), 0o644)

	_, err := server.ReadConfig(path, nil)
	var ce *server.ConfigError
	if errors.As(err, &ce) {
		fmt.Printf("line %d: %s: %s\n", ce.Line, ce.Text, ce.Reason)
	}
	// Output: line 2: maxclients many: argument couldn't be parsed into an integer
}

// Clients that speak TLS, with a certificate a CA of yours signed, on a
// port of their own beside the plain one.
func ExampleServer_ServeTLS() {
	cert, err := tls.LoadX509KeyPair("server.crt", "server.key")
	if err != nil {
		log.Fatal(err)
	}
	caPEM, err := os.ReadFile("ca.crt")
	if err != nil {
		log.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)

	srv := &server.Server{}
	plain, _ := net.Listen("tcp", "127.0.0.1:6379")
	secure, _ := net.Listen("tcp", "127.0.0.1:6380")
	go func() { _ = srv.Serve(plain) }()
	go func() {
		_ = srv.ServeTLS(secure, &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert, // Redis's tls-auth-clients yes
			ClientCAs:    clientCAs,
		})
	}()
	defer srv.Close()
}
