// Command pubsubd serves an in-process pubsub engine over the Redis
// protocol: a Redis Pub/Sub server that Redis clients such as redis-cli
// and redis-py talk to unchanged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gopherpubsub/pubsub/server"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
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
	hard := fs.Int64("output-hard-limit", server.DefaultOutputHardLimit, "bytes pending for a client before it is disconnected (negative: none)")
	soft := fs.Int64("output-soft-limit", server.DefaultOutputSoftLimit, "bytes pending for longer than -output-soft-seconds before a client is disconnected (negative: none)")
	softPeriod := fs.Duration("output-soft-period", server.DefaultOutputSoftPeriod, "how long a client may stay over the soft limit")
	queryLimit := fs.Int64("client-query-buffer-limit", server.DefaultMaxQueryBuffer, "most bytes one command may take (negative: no limit)")
	timeout := fs.Duration("timeout", 0, "disconnect clients idle this long (never subscribed ones; 0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	srv := &server.Server{
		Password:         *password,
		MaxClients:       *maxClients,
		OutputHardLimit:  *hard,
		OutputSoftLimit:  *soft,
		OutputSoftPeriod: *softPeriod,
		MaxQueryBuffer:   *queryLimit,
		IdleTimeout:      *timeout,
		Logger:           logger,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("pubsubd ready to accept connections", "addr", ln.Addr().String())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("pubsubd shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		return err
	}
	return nil
}
