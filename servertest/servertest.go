// Package servertest runs a Redis Pub/Sub server for other projects'
// tests: code under test connects to it with its usual Redis client.
//
//	func TestNotifier(t *testing.T) {
//		srv := servertest.Run(t)
//		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
//		// or, with no TCP port: &redis.Options{Dialer: srv.Dial}
//		...
//		srv.WaitSubscribers(ctx, "orders", 1) // the code under test is listening
//	}
package servertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/server"
)

// Option configures a server from Run or Start.
type Option func(*server.Server)

// WithPassword makes clients authenticate (AUTH or HELLO ... AUTH) with
// password, as Redis's requirepass. Default: none.
func WithPassword(password string) Option {
	return func(s *server.Server) { s.Password = password }
}

// WithUsers adds ACL users, each a name followed by its rules as ACL
// SETUSER and redis.conf's "user" directive take them: with
// "orders-svc on >secret resetchannels &orders:* -@all +@pubsub" the
// client authenticated as orders-svc may publish and subscribe to
// orders:* only, and gets Redis's NOPERM error elsewhere. Clients that do
// not authenticate run as the default user (all permissions, unless a
// "default ..." user or WithPassword says otherwise). Start and Run fail
// on a rule Redis refuses. Default: none.
func WithUsers(users ...string) Option {
	return func(s *server.Server) { s.Users = append(s.Users, users...) }
}

// WithOutputLimits sets the client-output-buffer-limit of subscribed
// clients (pubsub) and of the others (normal): a client whose unread
// output passes a limit is disconnected, as in Redis. Default: Redis's,
// "pubsub 32mb 8mb 60" and no limit for normal clients. A test of a slow
// consumer sets a small pubsub limit.
func WithOutputLimits(pubsub, normal server.OutputLimit) Option {
	return func(s *server.Server) { s.PubSubOutputLimit, s.NormalOutputLimit = &pubsub, &normal }
}

// WithProtocol pins the RESP version: 2 serves RESP2 only (HELLO 3 is
// refused, so a client falls back as it would with a server older than
// Redis 6), 3 serves RESP3 only, from a client's first command. Default:
// both, as Redis.
func WithProtocol(version int) Option {
	return func(s *server.Server) { s.Protocol = version }
}

// Server is a running server. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB // nil for a server from Start
	addr string
	opts []Option

	mu sync.Mutex
	// guards the fields below
	srv     *server.Server
	broker  *pubsub.Broker
	served  chan error // Serve's result
	running bool
	failed  error // what went wrong, for Close to report (servers from Start)
}

// Run starts a server on a free loopback port and stops it when the test
// ends.
func Run(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	s.t = t
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("servertest: %v", err)
		}
	})
	return s
}

// Start starts a server on a free loopback port for code with no
// testing.TB (an Example, a TestMain); Close stops it.
func Start(opts ...Option) (*Server, error) {
	var probe server.Server
	for _, opt := range opts {
		opt(&probe)
	}
	if p := probe.Protocol; p != 0 && p != 2 && p != 3 {
		return nil, fmt.Errorf("WithProtocol(%d): want 2 or 3", p)
	}
	if len(probe.Users) > 0 {
		if err := probe.CheckConfig(); err != nil {
			return nil, fmt.Errorf("WithUsers: %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{addr: ln.Addr().String(), opts: opts}
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	b := pubsub.New()
	srv := &server.Server{Broker: b}
	for _, opt := range s.opts {
		opt(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.mu.Lock()
	s.srv, s.broker, s.served, s.running = srv, b, served, true
	s.mu.Unlock()
}

// stop stops the server if it runs and reports how its Serve ended, if
// not by the stop.
func (s *Server) stop() error {
	s.mu.Lock()
	srv, b, served, running := s.srv, s.broker, s.served, s.running
	s.running = false
	s.mu.Unlock()
	if !running {
		return nil
	}
	_ = srv.Close()
	var errs error
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		errs = fmt.Errorf("Serve: %w", err)
	}
	_ = b.Close()
	return errs
}

// Close stops the server, and reports what went wrong since it started
// (a Serve that ended on its own, a Restart that could not listen). A
// server from Run is closed when its test ends; closing again does
// nothing.
func (s *Server) Close() error {
	err := s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	err, s.failed = errors.Join(s.failed, err), nil
	return err
}

// fail reports err: to the test of a server from Run, at once; to Close
// for a server from Start.
func (s *Server) fail(err error) {
	if s.t != nil {
		s.t.Helper()
		s.t.Fatalf("servertest: %v", err)
	}
	s.mu.Lock()
	s.failed = errors.Join(s.failed, err)
	s.mu.Unlock()
}

// Dial connects to the server in memory, with no TCP port. It has the
// signature of go-redis's Options.Dialer, and ignores the network and
// address it is given; rueidis's DialCtxFn is a one-line wrapper of it.
//
// Commands written on in-memory connections run in the order they were
// written, across connections: a PUBLISH written after a SUBSCRIBE was
// written on another connection counts that subscriber, even when the
// client did not wait for the subscribe's confirmation (go-redis's
// Subscribe does not). That is stronger than Redis, which runs commands in
// the order they reached it; see [server.Server.Pipe]. Each direction of
// the connection holds 1 MB, as a socket's buffer would, and reads and
// writes keep their deadlines. It fails once the server is stopped, and
// after Restart connects to the new one.
func (s *Server) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	srv, running := s.srv, s.running
	s.mu.Unlock()
	if !running {
		return nil, net.ErrClosed
	}
	nc, err := srv.Pipe()
	if err != nil {
		return nil, net.ErrClosed
	}
	return nc, nil
}

// Addr returns the server's "host:port".
func (s *Server) Addr() string { return s.addr }

// Broker returns the engine behind the server, for Go code that publishes
// or subscribes in process. It changes with Restart.
func (s *Server) Broker() *pubsub.Broker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broker
}

// WaitSubscribers waits until channel has at least n subscribers (PUBSUB
// NUMSUB), so that a test publishes only once the code under test
// listens. It returns ctx.Err() if ctx ends first.
func (s *Server) WaitSubscribers(ctx context.Context, channel string, n int) error {
	return s.wait(ctx, func(b *pubsub.Broker) (bool, error) {
		counts, err := b.NumSub(ctx, channel)
		return counts[channel] >= n, err
	})
}

// WaitPatterns waits until at least n distinct patterns are subscribed
// (PUBSUB NUMPAT), as WaitSubscribers waits for a channel.
func (s *Server) WaitPatterns(ctx context.Context, n int) error {
	return s.wait(ctx, func(b *pubsub.Broker) (bool, error) {
		count, err := b.NumPat(ctx)
		return count >= n, err
	})
}

// WaitShardSubscribers waits until the shard channel has at least n
// subscribers (PUBSUB SHARDNUMSUB), as WaitSubscribers waits for a
// channel.
func (s *Server) WaitShardSubscribers(ctx context.Context, shardChannel string, n int) error {
	return s.wait(ctx, func(b *pubsub.Broker) (bool, error) {
		counts, err := b.ShardNumSub(ctx, shardChannel)
		return counts[shardChannel] >= n, err
	})
}

// wait polls done every millisecond until it reports true or an error,
// or ctx ends.
func (s *Server) wait(ctx context.Context, done func(*pubsub.Broker) (bool, error)) error {
	for {
		ok, err := done(s.Broker())
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// DropClients disconnects every client, as a network failure would; the
// server keeps serving, and a client that reconnects must subscribe again.
// It returns once the dropped clients' subscriptions are gone, so that a
// PUBLISH right after it counts none of them.
func (s *Server) DropClients() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	srv.DropClients()
}

// Restart stops the server, as a Redis restart would (every client is
// disconnected and every subscription forgotten), and starts a fresh one
// on the same address.
func (s *Server) Restart() {
	if s.t != nil {
		s.t.Helper()
	}
	if err := s.stop(); err != nil {
		s.fail(err)
		return
	}
	var ln net.Listener
	var err error
	for range 100 { // the old listener's port can take a moment to free
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		s.fail(fmt.Errorf("restart on %s: %w", s.addr, err))
		return
	}
	s.serve(ln)
}
