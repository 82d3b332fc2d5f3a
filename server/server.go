// Package server serves a pubsub.Broker over the Redis protocol (RESP2
// and RESP3), so that unmodified Redis clients (redis-cli, redis-py and
// others) publish and subscribe through it as they would through Redis.
//
// It speaks Pub/Sub only: the Pub/Sub commands, the connection commands
// clients send on their own (HELLO, AUTH, PING, SELECT, CLIENT, COMMAND,
// INFO, ...), and MULTI/EXEC. A key-value command gets an error that names
// it and says so, never a fake empty value.
package server

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// Defaults of the Server's limits, as Redis's defaults.
const (
	DefaultMaxClients       = 10000
	DefaultOutputHardLimit  = 32 << 20
	DefaultOutputSoftLimit  = 8 << 20
	DefaultOutputSoftPeriod = 60 * time.Second
	DefaultMaxQueryBuffer   = 1 << 30
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server serves a Broker over the Redis protocol. Set its fields before
// calling Serve; the zero value serves a Broker of its own with Redis's
// default limits.
type Server struct {
	// Broker is the engine served, shared with Go code in the process. If
	// nil, the Server makes one, and closes it on Close.
	Broker *pubsub.Broker
	// Password, if set, must be given with AUTH or HELLO before any
	// command but AUTH, HELLO, QUIT and RESET.
	Password string
	// MaxClients is the most connections served at once; 0 means
	// DefaultMaxClients. Past it, a new client gets Redis's error and is
	// disconnected.
	MaxClients int
	// OutputHardLimit is the most bytes of replies and messages a client
	// may have pending before it is disconnected, as Redis's
	// client-output-buffer-limit pubsub; 0 means DefaultOutputHardLimit,
	// negative means no limit.
	OutputHardLimit int64
	// A client with more than OutputSoftLimit bytes pending for longer than
	// OutputSoftPeriod is disconnected too; 0 means the defaults, negative
	// means no soft limit.
	OutputSoftLimit  int64
	OutputSoftPeriod time.Duration
	// MaxQueryBuffer is the most bytes one command may take, as Redis's
	// client-query-buffer-limit: a client sending a longer one is
	// disconnected. 0 means DefaultMaxQueryBuffer, negative means no limit.
	MaxQueryBuffer int64
	// IdleTimeout disconnects a client that sends nothing for this long,
	// except subscribed clients, which Redis never times out. 0 (the
	// default, as in Redis) means never.
	IdleTimeout time.Duration
	// Logger receives connection errors; nil means slog.Default().
	Logger *slog.Logger

	nextID    atomic.Int64
	started   time.Time
	stats     serverStats
	tableOnce sync.Once
	commands  *commandTable

	mu sync.Mutex
	// guards the fields below
	broker    *pubsub.Broker
	ownBroker bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	addr      net.Addr
	wg        sync.WaitGroup // connection goroutines
}

type serverStats struct {
	connections atomic.Int64 // accepted, ever
	commands    atomic.Int64
	rejected    atomic.Int64
}

func (s *Server) init() {
	if s.broker != nil {
		return
	}
	s.started = time.Now()
	s.broker = s.Broker
	if s.broker == nil {
		s.broker, s.ownBroker = pubsub.New(), true
	}
	s.listeners = make(map[net.Listener]struct{})
	s.conns = make(map[*conn]struct{})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func limit(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// Serve accepts connections on ln and serves each on its own goroutines
// until Close or Shutdown, then returns ErrServerClosed. Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return
	}
	s.stats.connections.Add(1)
	max := s.MaxClients
	if max == 0 {
		max = DefaultMaxClients
	}
	if len(s.conns) >= max {
		s.stats.rejected.Add(1)
		// As Redis: reply, then close, without reading anything.
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
		nc.Close()
		return
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		c.readLoop()
	}()
	go func() {
		defer s.wg.Done()
		c.writeLoop()
	}()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Addr returns the address of the first listener Serve was given, or nil
// before that.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// BrokerInUse returns the Broker being served: Broker, or the one the
// Server made. It is nil before Serve.
func (s *Server) BrokerInUse() *pubsub.Broker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broker
}

// Close stops the listeners and drops every connection at once, then
// waits for the connection goroutines to end. Pending output is discarded.
func (s *Server) Close() error {
	return s.stop(nil)
}

// Shutdown stops the listeners, then lets every connection write what is
// already queued for it before closing it, and returns once all are
// closed or ctx ends (then it drops the rest, as Close does, and returns
// ctx.Err()).
func (s *Server) Shutdown(ctx context.Context) error {
	return s.stop(ctx)
}

func (s *Server) stop(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	var err error
	for _, c := range conns {
		c.closeAfterFlush()
	}
	if ctx != nil {
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	for _, c := range conns {
		c.kill()
	}
	s.wg.Wait()
	if s.ownBroker {
		_ = s.broker.Close()
	}
	return err
}

// DropClients disconnects every client now, as if the network failed,
// and keeps serving new ones.
func (s *Server) DropClients() {
	for _, c := range s.connections() {
		c.kill()
	}
}

// connections returns the open connections in the order they came.
func (s *Server) connections() []*conn {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	slices.SortFunc(conns, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })
	return conns
}
