// Command pubsubd serves an in-process pubsub engine over the Redis
// protocol: a Redis Pub/Sub server that Redis clients such as redis-cli
// and redis-py talk to unchanged.
//
// Usage:
//
//	pubsubd [flags]
//
// The flags, each named after the Redis setting it mirrors:
//
//	-bind addr             address to listen on (default 127.0.0.1)
//	-port n                TCP port (default 6379)
//	-requirepass pw        password clients must give with AUTH or HELLO
//	-maxclients n          most clients at once (default 10000)
//	-timeout t             close a client idle this long, in seconds or as a
//	                       Go duration (300, 5m); subscribed clients never
//	                       time out (default 0: never)
//	-client-output-buffer-limit-pubsub "hard soft secs"
//	                       output limit of subscribed clients (default
//	                       "32mb 8mb 60")
//	-client-output-buffer-limit-normal "hard soft secs"
//	                       output limit of the others (default "0 0 0": none)
//	-client-query-buffer-limit size
//	                       most bytes one command may take (default 1gb)
//	-shutdown-timeout d    how long SIGINT or SIGTERM waits for clients to
//	                       receive what is queued for them (default 5s)
//	-tls-port n            TCP port for clients speaking TLS (default 0: none);
//	                       -port 0 beside it turns the plain port off, as in
//	                       Redis (alone, -port 0 takes any free port)
//	-tls-cert-file f, -tls-key-file f
//	                       the server's certificate and key (PEM)
//	-tls-ca-cert-file f, -tls-ca-cert-dir d
//	                       the CAs that sign clients' certificates (PEM)
//	-tls-auth-clients yes|no|optional
//	                       whether clients must show a certificate (default yes)
//	-tls-protocols "TLSv1.2 TLSv1.3"
//	                       the TLS versions accepted (default both)
//	-tls-session-caching yes|no
//	                       resumable sessions (default yes)
//	-monitor addr          serve the monitoring endpoints over HTTP on addr,
//	                       such as 127.0.0.1:8222: /metrics (Prometheus),
//	                       /varz, /connz and /subsz (JSON); see package
//	                       monitor (default "": off)
//
// It logs with log/slog to standard error and exits 0 after a clean
// shutdown.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gopherpubsub/pubsub/monitor"
	"github.com/gopherpubsub/pubsub/server"
)

func main() {
	err := run(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "pubsubd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pubsubd", flag.ContinueOnError)
	host := fs.String("bind", "127.0.0.1", "address to listen on (loopback unless told otherwise)")
	port := fs.Int("port", 6379, "TCP port")
	password := fs.String("requirepass", "", "password clients must give with AUTH or HELLO")
	maxClients := fs.Int("maxclients", server.DefaultMaxClients, "most clients at once")
	timeout := fs.String("timeout", "0", "close a client idle this long, in seconds or as a duration (subscribed clients never; 0: never)")
	pubsubLimit := fs.String("client-output-buffer-limit-pubsub", "32mb 8mb 60", "output limit of subscribed clients: hard, soft, soft seconds (0: none)")
	normalLimit := fs.String("client-output-buffer-limit-normal", "0 0 0", "output limit of other clients: hard, soft, soft seconds (0: none)")
	queryLimit := fs.String("client-query-buffer-limit", "1gb", "most bytes one command may take (0: no limit)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 5*time.Second, "how long a shutdown waits for clients to receive what is queued for them")
	monitorAddr := fs.String("monitor", "", "serve /metrics, /varz, /connz and /subsz over HTTP on this address, such as 127.0.0.1:8222 (\"\": off)")
	var tlsFlags tlsSettings
	tlsFlags.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	tlsConfig, err := tlsFlags.config()
	if err != nil {
		return err
	}
	srv := &server.Server{Password: *password, MaxClients: *maxClients, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if err := configure(srv, *timeout, *pubsubLimit, *normalLimit, *queryLimit); err != nil {
		return err
	}

	var listeners []net.Listener
	closeAll := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	// As Redis, -port 0 beside a TLS port turns the plain port off; alone,
	// it asks for any free port (tests read the address from the log).
	plainOff := *port == 0 && tlsFlags.port != 0
	for i, p := range []int{*port, tlsFlags.port} {
		if (i == 0 && plainOff) || (i == 1 && p == 0) {
			listeners = append(listeners, nil)
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(p)))
		if err != nil {
			closeAll()
			return err
		}
		listeners = append(listeners, ln)
	}
	var mon *http.Server
	if *monitorAddr != "" {
		monLn, err := net.Listen("tcp", *monitorAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("monitor: %w", err)
		}
		mon = &http.Server{Handler: monitor.Handler(srv), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go func() { _ = mon.Serve(monLn) }()
		srv.Logger.Info("pubsubd monitoring", "addr", "http://"+monLn.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 2)
	serving := 0
	if ln := listeners[0]; ln != nil {
		serving++
		go func() { served <- srv.Serve(ln) }()
		srv.Logger.Info("pubsubd ready to accept connections", "addr", ln.Addr().String())
	}
	if ln := listeners[1]; ln != nil {
		serving++
		go func() { served <- srv.ServeTLS(ln, tlsConfig) }()
		srv.Logger.Info("pubsubd ready to accept TLS connections", "addr", ln.Addr().String())
	}
	if mon != nil {
		defer mon.Close()
	}

	select {
	case err := <-served:
		_ = srv.Close()
		for range serving - 1 {
			<-served
		}
		return err
	case <-ctx.Done():
	}
	srv.Logger.Info("pubsubd shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	for range serving {
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// configure sets the limits given in Redis's notation.
func configure(srv *server.Server, timeout, pubsubLimit, normalLimit, queryLimit string) error {
	var err error
	if srv.IdleTimeout, err = server.ParseTimeout(timeout); err != nil {
		return err
	}
	pubsub, err := server.ParseOutputLimit(pubsubLimit)
	if err != nil {
		return err
	}
	normal, err := server.ParseOutputLimit(normalLimit)
	if err != nil {
		return err
	}
	srv.PubSubOutputLimit, srv.NormalOutputLimit = &pubsub, &normal
	query, err := server.ParseMemory(queryLimit)
	if err != nil {
		return err
	}
	srv.MaxQueryBuffer = query
	if query == 0 {
		srv.MaxQueryBuffer = -1 // no limit
	}
	return nil
}
