// Command pubsubd serves an in-process pubsub engine over the Redis
// protocol: a Redis Pub/Sub server that Redis clients such as redis-cli
// and redis-py talk to unchanged.
//
// Usage:
//
//	pubsubd [/path/to/redis.conf] [--directive value ...] [flags]
//
// As redis-server, it reads the configuration file first, then the
// directives of the command line (every directive redis-server 7.0.15
// knows is accepted, checked as it checks them, and reported by CONFIG
// GET; a refused one stops the start with redis-server's report), then
// the flags given, the later setting winning.
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
//	-tls-key-file-pass p   the password of an encrypted tls-key-file
//	-tls-ciphers list      TLS 1.2 cipher suites, by OpenSSL's names
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
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gopherpubsub/pubsub/monitor"
	"github.com/gopherpubsub/pubsub/server"
)

func main() {
	atLeastTwoProcs()
	err := run(os.Args[1:])
	var ce *server.ConfigError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ce):
		fmt.Fprint(os.Stderr, ce.Error()) // redis-server's report, as it prints it
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "pubsubd:", err)
		os.Exit(1)
	}
}

// atLeastTwoProcs raises GOMAXPROCS to 2 where Go chose 1 (one CPU: a
// server pinned with taskset, a container limited to one CPU), unless the
// environment sets it. With one P, each time the server's loop waits in
// epoll_wait no P is idle, so the runtime's monitor takes the P back and
// wakes another thread to look for work, which finds none and sleeps
// again: pinned to one core with ten subscribers and twenty publishers,
// 0.57 context switches a PUBLISH against redis-server's 0.085, and 1.25x
// its CPU time. With a second P, idle, the wait costs what Redis's does.
func atLeastTwoProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("pubsubd", flag.ContinueOnError)
	// Flags given become their directives (flagDirectives): the Server
	// listens where they say, as the file's directives.
	fs.String("bind", "127.0.0.1", "addresses to listen on, in Redis's notation (loopback unless told otherwise)")
	fs.Int("port", 6379, "TCP port (0 beside -tls-port: none; alone: any free port)")
	password := fs.String("requirepass", "", "password clients must give with AUTH or HELLO")
	maxClients := fs.Int("maxclients", server.DefaultMaxClients, "most clients at once")
	timeout := fs.String("timeout", "0", "close a client idle this long, in seconds or as a duration (subscribed clients never; 0: never)")
	pubsubLimit := fs.String("client-output-buffer-limit-pubsub", "32mb 8mb 60", "output limit of subscribed clients: hard, soft, soft seconds (0: none)")
	normalLimit := fs.String("client-output-buffer-limit-normal", "0 0 0", "output limit of other clients: hard, soft, soft seconds (0: none)")
	queryLimit := fs.String("client-query-buffer-limit", "1gb", "most bytes one command may take (0: no limit)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 5*time.Second, "how long a shutdown waits for clients to receive what is queued for them")
	monitorAddr := fs.String("monitor", "", "serve /metrics, /varz, /connz and /subsz over HTTP on this address, such as 127.0.0.1:8222 (\"\": off)")
	registerTLSFlags(fs)
	confPath, goArgs, redisArgs := splitArgs(args, fs)
	if err := fs.Parse(goArgs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: the configuration file comes first", fs.Arg(0))
	}
	// The file, then the command line's directives, then the flags given:
	// the later setting wins, as in redis-server.
	flagArgs, err := flagDirectives(fs)
	if err != nil {
		return err
	}
	cfg, err := server.ReadConfig(confPath, append(redisArgs, flagArgs...))
	if err != nil {
		return err
	}
	if v, ok := cfg.Get("shutdown-timeout"); ok && !isSet(fs, "shutdown-timeout") {
		secs, _ := strconv.Atoi(v)
		*shutdownTimeout = time.Duration(secs) * time.Second
	}
	srv := &server.Server{Password: *password, MaxClients: *maxClients, Config: cfg, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if err := configure(srv, *timeout, *pubsubLimit, *normalLimit, *queryLimit); err != nil {
		return err
	}
	if err := srv.CheckConfig(); err != nil { // users, the ACL file and TLS, before listening
		return err
	}

	var mon *http.Server
	if *monitorAddr != "" {
		monLn, err := net.Listen("tcp", *monitorAddr)
		if err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
		mon = &http.Server{Handler: monitor.Handler(srv), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
		go func() { _ = mon.Serve(monLn) }()
		srv.Logger.Info("pubsubd monitoring", "addr", "http://"+monLn.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Where the configuration says: port, tls-port and every bind
	// address, as redis-server; CONFIG SET of them moves the listeners.
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	if mon != nil {
		defer mon.Close()
	}

	select {
	case err := <-served: // it could not listen, or a listener failed
		return err
	case <-ctx.Done():
	}
	srv.Logger.Info("pubsubd shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		return err
	}
	return nil
}

// splitArgs takes the configuration file (a first argument that is not
// an option) and sorts the options: "-flag value" for the flags, and
// "--directive value ..." for the configuration, as redis-server's
// command line gives them (a flag that is no directive of Redis's, such
// as --shutdown-timeout, stays a flag).
func splitArgs(args []string, fs *flag.FlagSet) (confPath string, goArgs, redisArgs []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		confPath, args = args[0], args[1:]
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "--") || pubsubdOnly[name] || name == "h" || name == "help" {
			goArgs = append(goArgs, a)
			if strings.HasPrefix(a, "-") && fs.Lookup(name) != nil && !hasValue && i+1 < len(args) {
				i++
				goArgs = append(goArgs, args[i])
			}
			continue
		}
		redisArgs = append(redisArgs, a)
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") && !isFlag(fs, args[i+1]) {
			i++
			redisArgs = append(redisArgs, args[i])
		}
	}
	return confPath, goArgs, redisArgs
}

// pubsubdOnly are the flags that are not redis-server's directives, or
// not in its notation: given as --name, they are flags all the same.
var pubsubdOnly = map[string]bool{
	"shutdown-timeout": true, "monitor": true,
	"client-output-buffer-limit-pubsub": true, "client-output-buffer-limit-normal": true,
}

// isFlag reports whether a is one of the flags, as -name or -name=value
// (a directive's value such as -1 is not).
func isFlag(fs *flag.FlagSet, a string) bool {
	name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
	return strings.HasPrefix(a, "-") && fs.Lookup(name) != nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// flagDirectives writes the flags given on the command line as the
// directives they mirror, in Redis's notation, so that they come after
// the file's.
func flagDirectives(fs *flag.FlagSet) ([]string, error) {
	var out []string
	var err error
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "timeout":
			d, perr := server.ParseTimeout(v)
			if perr != nil {
				err = perr
				return
			}
			out = append(out, "--timeout", strconv.Itoa(int(d/time.Second)))
		case "client-output-buffer-limit-pubsub", "client-output-buffer-limit-normal":
			class := strings.TrimPrefix(f.Name, "client-output-buffer-limit-")
			out = append(out, "--client-output-buffer-limit", class+" "+v)
		case "client-query-buffer-limit":
			if n, perr := server.ParseMemory(v); perr == nil && n == 0 {
				v = strconv.FormatInt(math.MaxInt64, 10) // no limit
			}
			out = append(out, "--client-query-buffer-limit", v)
		case "shutdown-timeout", "monitor": // pubsubd's own
		default: // named after the directive, with its notation
			out = append(out, "--"+f.Name, v)
		}
	})
	return out, err
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
