// Package server serves a pubsub.Broker over the Redis protocol (RESP2
// and RESP3), so that unmodified Redis clients (redis-cli, redis-py and
// others) publish and subscribe through it as they would through Redis.
//
// It speaks Pub/Sub only: the Pub/Sub commands, the connection commands
// clients send on their own (HELLO, AUTH, PING, SELECT, CLIENT, COMMAND,
// INFO, ...), and MULTI/EXEC. A key-value command gets an error that names
// it and says so, never a fake empty value.
//
// One goroutine runs every client's commands, waiting in epoll on Linux
// as Redis's event loop does. A program that serves on one CPU (pinned,
// or in a container limited to one) does better with GOMAXPROCS of 2, as
// pubsubd sets it: with a single P, each of the loop's waits makes the
// runtime hand that P to another thread, a context switch or two per
// wait that redis-server does not pay.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// Defaults of the Server's limits, as Redis's defaults.
const (
	DefaultMaxClients     = 10000
	DefaultMaxQueryBuffer = 1 << 30
)

// OutputLimit is one class's client-output-buffer-limit: how many bytes of
// replies and messages may wait for a client that does not read them.
// Past Hard the client is disconnected at once; past Soft for longer than
// SoftPeriod too. 0 means no limit, as in Redis.
type OutputLimit struct {
	Hard       int64
	Soft       int64
	SoftPeriod time.Duration
}

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
	// command but AUTH, HELLO, QUIT and RESET: it is the default user's
	// password, as Redis's requirepass.
	Password string
	// Users are ACL users beside the default one, each a name followed by
	// its rules as ACL SETUSER and redis.conf's "user" directive take
	// them: "alice on >secret resetchannels &orders:* -@all +@pubsub". A
	// user named "default" replaces the default user's rules (and
	// Password). Rules Redis refuses make Serve fail with an error
	// wrapping ErrBadUsers (CheckConfig checks them beforehand). The
	// default (nil) is none: every client runs as the default user.
	Users []string
	// ACLFile is an ACL file, as redis-server's aclfile: its users are
	// loaded at the start (Serve fails on a bad line, with Redis's
	// report), ACL LOAD reads it again and ACL SAVE writes it. It cannot
	// be used with Users, as in Redis. The default ("") is none.
	ACLFile string
	// MaxClients is the most connections served at once; 0 means
	// DefaultMaxClients. Past it, a new client gets Redis's error and is
	// disconnected.
	MaxClients int
	// PubSubOutputLimit applies to a client while it holds any
	// subscription, NormalOutputLimit to the others, as Redis's
	// client-output-buffer-limit classes. nil means Redis's defaults:
	// "pubsub 32mb 8mb 60" (32 MB hard; 8 MB for 60 s), and no limit for
	// normal clients.
	PubSubOutputLimit *OutputLimit
	NormalOutputLimit *OutputLimit
	// MaxQueryBuffer is the most bytes one command may take, as Redis's
	// client-query-buffer-limit: a client sending a longer one is
	// disconnected. 0 means DefaultMaxQueryBuffer, negative means no limit.
	MaxQueryBuffer int64
	// IdleTimeout disconnects a client when no byte has been read from it
	// or written to it for this long, even in the middle of a command, as
	// Redis's timeout does; subscribed clients are exempt, as in Redis. 0
	// (the default, as in Redis) means never.
	IdleTimeout time.Duration
	// Protocol pins the RESP version: 2 serves RESP2 only (HELLO 3 gets
	// Redis's NOPROTO error, so clients fall back as they do with a
	// server older than Redis 6); 3 serves RESP3 only, from a client's
	// first command, as if it had sent HELLO 3 (HELLO 2 gets NOPROTO). 0,
	// the default, serves both, as Redis.
	Protocol int
	// Logger receives connection errors; nil means slog.Default().
	Logger *slog.Logger
	// NoPoller reads every connection on a goroutine of its own, which
	// hands what it reads to the loop, instead of the loop reading the
	// sockets itself through the platform's poller (epoll on Linux).
	// Commands run one at a time in the loop either way, but across
	// connections in the order their goroutines were scheduled rather
	// than the order the kernel received the input. Connections without
	// a file descriptor, and every connection on platforms without a
	// poller, are read so whatever it says. The default is false.
	NoPoller bool

	// Config is a configuration read as redis-server reads its redis.conf
	// and command line (ReadConfig), applied after the fields above: the
	// limits it sets (maxclients, timeout, requirepass,
	// client-output-buffer-limit, client-query-buffer-limit,
	// proto-max-bulk-len) take effect, the rest is stored and reported by
	// CONFIG GET. The listening addresses and TLS settings are the
	// caller's to read from it (Config.Get), as pubsubd does. The default
	// (nil) is none.
	Config *Config

	// TLSHandshakeTimeout is how long a client on a listener given to
	// ServeTLS has to finish its TLS handshake; then it is closed, with
	// nothing served. Handshakes run on the connection's own goroutine, so
	// one that never finishes holds back no other client. The default
	// (0) is 10 seconds.
	TLSHandshakeTimeout time.Duration

	nextID  atomic.Int64
	started time.Time
	limits  atomic.Pointer[limits] // resolved from the fields by init; CONFIG SET (in the loop) stores anew
	configs configState
	// infoState is what INFO reports beyond the counters above.
	infoState infoState
	pauses    pauses // CLIENT PAUSE
	cmdStats  commandStats
	loop      *loop
	chunks    sync.Pool // output chunks (see outQueue)
	// readBuffers are the connections' read buffers (*resp.ReadBuffer),
	// each held only while it has unparsed input.
	readBuffers sync.Pool
	stats       serverStats
	// closedClients are the last connections that ended.
	closedClients closedRing
	statsBase     atomic.Pointer[pubsub.Stats] // the Broker's figures at CONFIG RESETSTAT
	aclLog        aclLog                       // ACL LOG
	// acl is the users, owned by the loop once init has built it;
	// initErr is why it could not be, for Serve and Pipe to return.
	acl     *aclState
	initErr error
	// tlsLive is the TLS configuration made of the tls-* parameters, for
	// ServeTLS(ln, nil); CONFIG SET replaces it. nil: TLS is not served
	// from the parameters.
	tlsLive   atomic.Pointer[tls.Config]
	tableOnce sync.Once
	commands  *commandTable

	mu sync.Mutex
	// guards the fields below
	broker    *pubsub.Broker
	ownBroker bool
	listeners map[net.Listener]struct{}
	owned     *ownedListeners // ListenAndServe's, which CONFIG SET moves
	conns     map[int64]*conn // by CLIENT ID
	closed    bool
	addr      net.Addr
	// wg counts the connections' goroutines (writers, fallback readers,
	// parked commands' waits) and the loop's hold on each connection.
	wg sync.WaitGroup
}

type serverStats struct {
	connections atomic.Int64 // accepted, ever
	commands    atomic.Int64
	rejected    atomic.Int64
	disconnects [numReasons]atomic.Int64
}

// limits are the Server's limits with every default resolved, in one
// place. Connections read them on each use, so that they can change at
// run time.
type limits struct {
	maxClients     int
	maxQueryBuffer int64          // 0: none
	maxBulkLen     int64          // proto-max-bulk-len
	output         [3]OutputLimit // by outputClass
	idleTimeout    time.Duration
	password       string // "": none; CONFIG GET requirepass shows it, as Redis's does
	aclLogMaxLen   int    // acllog-max-len: read on every denial, so parsed once here
	tcpKeepAlive   int    // tcp-keepalive's seconds, for each accepted socket
}

// outputClass is a client's class for its output limit, as in Redis.
type outputClass uint8

const (
	classNormal outputClass = iota
	classPubSub
	classReplica // never a client here; CONFIG reports it
)

func (s *Server) resolveLimits() *limits {
	l := &limits{
		maxClients:     s.MaxClients,
		maxQueryBuffer: s.MaxQueryBuffer,
		idleTimeout:    s.IdleTimeout,
		maxBulkLen:     resp.MaxBulkLen,
	}
	l.password = s.Password
	if l.maxClients == 0 {
		l.maxClients = DefaultMaxClients
	}
	switch {
	case l.maxQueryBuffer == 0:
		l.maxQueryBuffer = DefaultMaxQueryBuffer
	case l.maxQueryBuffer < 0:
		l.maxQueryBuffer = 0
	}
	l.output[classPubSub] = OutputLimit{Hard: 32 << 20, Soft: 8 << 20, SoftPeriod: 60 * time.Second}
	l.output[classReplica] = OutputLimit{Hard: 256 << 20, Soft: 64 << 20, SoftPeriod: 60 * time.Second}
	if s.PubSubOutputLimit != nil {
		l.output[classPubSub] = *s.PubSubOutputLimit
	}
	if s.NormalOutputLimit != nil {
		l.output[classNormal] = *s.NormalOutputLimit
	}
	for i := range redisParams { // the defaults of those read often
		if p := &redisParams[i]; p.name == "acllog-max-len" || p.name == "tcp-keepalive" {
			setParam(l, map[string]string{}, p, p.value)
		}
	}
	if s.Config != nil { // the rest of it is stored at the first CONFIG (config)
		values := map[string]string{}
		for i, p := range s.Config.params {
			setParam(l, values, p, s.Config.values[i])
		}
	}
	return l
}

func (s *Server) init() {
	if s.broker != nil {
		return
	}
	s.started = time.Now()
	s.limits.Store(s.resolveLimits())
	s.acl, s.initErr = s.buildACL(s.limits.Load())
	if s.initErr != nil {
		s.acl = newACLState("", false) // serves nothing: Serve and Pipe refuse
	}
	s.chunks.New = func() any { return new([outChunk]byte) }
	s.readBuffers.New = func() any { return new(resp.ReadBuffer) }
	s.loop = newLoop(s)
	s.broker = s.Broker
	if s.broker == nil {
		s.broker, s.ownBroker = pubsub.New(), true
	}
	s.listeners = make(map[net.Listener]struct{})
	s.conns = make(map[int64]*conn)
}

// monotonic is the time since the Server started, read from the
// monotonic clock only (cheaper than time.Now, which reads the wall clock
// too): commands are timed with it.
func (s *Server) monotonic() time.Duration { return time.Since(s.started) }

// firstProtocol is a new connection's RESP version.
func (s *Server) firstProtocol() int {
	if s.Protocol == 3 {
		return 3
	}
	return 2
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// CheckConfig returns the error Serve would return for the Server's
// settings (Protocol, Users, ACLFile and Config's users and aclfile,
// reading the ACL file as Serve does), and, if Config gives a tls-port,
// the error ServeTLS(ln, nil) would return for its tls-* parameters, or
// nil, without serving anything: for a program to refuse a bad
// configuration before it listens.
func (s *Server) CheckConfig() error {
	if s.Protocol != 0 && s.Protocol != 2 && s.Protocol != 3 {
		return fmt.Errorf("%w: Protocol %d: want 0, 2 or 3", ErrBadConfig, s.Protocol)
	}
	if _, err := s.buildACL(s.resolveLimits()); err != nil {
		return err
	}
	if port := s.configValue("tls-port"); port != "" && port != "0" {
		if _, err := tlsFromParams(s.configValue); err != nil {
			return fmt.Errorf("%w: %v", ErrBadConfig, err)
		}
	}
	return nil
}

// Serve accepts connections on ln and serves them in the Server's loop
// until Close or Shutdown, then returns ErrServerClosed. Serve closes ln.
// A Protocol other than 0, 2 or 3 is refused with an error wrapping
// ErrBadConfig; Users or an ACL file Redis would refuse, with one
// wrapping ErrBadUsers (and the Server is closed).
func (s *Server) Serve(ln net.Listener) error {
	if s.Protocol != 0 && s.Protocol != 2 && s.Protocol != 3 {
		ln.Close()
		return s.CheckConfig()
	}
	s.mu.Lock()
	s.init()
	if err := s.initErr; err != nil {
		s.mu.Unlock()
		ln.Close()
		_ = s.Close() // it can serve nothing: its loop ends
		return err
	}
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

	errc := make(chan error, 1)
	if !s.loop.do(func() { s.loop.listen(ln, errc) }) {
		return ErrServerClosed
	}
	return <-errc
}

// ServeTLS serves clients that speak TLS on ln, as Serve does, with
// config (which needs at least one certificate, or GetCertificate; set
// ClientAuth and ClientCAs to ask clients for theirs, as Redis's
// tls-auth-clients does). With config nil, the configuration is made of
// the Server's tls-* parameters (its Config, then CONFIG SET) as
// redis-server makes it: tls-cert-file, tls-key-file (tls-key-file-pass
// for an encrypted key), tls-ca-cert-file, tls-ca-cert-dir,
// tls-auth-clients, tls-protocols, tls-ciphers, tls-session-caching; a
// CONFIG SET of one of them makes it anew for the handshakes that
// follow, as Redis reloads its TLS context. Each client is read by a
// goroutine of its own, which makes the handshake within
// TLSHandshakeTimeout; its commands run in the loop in arrival order, as
// every other client's.
func (s *Server) ServeTLS(ln net.Listener, config *tls.Config) error {
	if config == nil {
		own, err := tlsFromParams(s.configValue)
		if err != nil {
			ln.Close()
			return fmt.Errorf("%w: %v", ErrBadConfig, err)
		}
		s.tlsLive.Store(own)
		config = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.tlsLive.Load(), nil
		}}
	}
	if len(config.Certificates) == 0 && config.GetCertificate == nil && config.GetConfigForClient == nil {
		ln.Close()
		return fmt.Errorf("%w: ServeTLS needs a tls.Config with a certificate", ErrBadConfig)
	}
	return s.Serve(tls.NewListener(ln, config))
}

func (s *Server) tlsHandshakeTimeout() time.Duration {
	if s.TLSHandshakeTimeout > 0 {
		return s.TLSHandshakeTimeout
	}
	return 10 * time.Second
}

// acceptFrom accepts connections on ln until it fails, then sends why on
// errc, and hands each to the loop.
func (s *Server) acceptFrom(ln net.Listener, errc chan<- error) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				errc <- ErrServerClosed
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			errc <- err
			return
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept registers nc as a client, starts its writer and hands it to the
// loop, or refuses it (nil) once the Server is closed or full.
func (s *Server) accept(nc net.Conn) *conn {
	c := s.register(nc)
	if c != nil {
		s.loop.post(event{kind: evAdd, c: c})
	}
	return c
}

// register registers nc as a client and starts its writer, or refuses it
// (nil) once the Server is closed or full.
func (s *Server) register(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return nil
	}
	s.stats.connections.Add(1)
	if len(s.conns) >= s.limits.Load().maxClients {
		s.stats.rejected.Add(1)
		// As Redis: reply, then close, without reading anything.
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
		nc.Close()
		return nil
	}
	setUpTCP(nc, s.limits.Load().tcpKeepAlive)
	c := newConn(s, nc)
	s.conns[c.id] = c
	s.wg.Add(2) // the writes (the loop's or a writer's), and the loop's hold on the input
	return c
}

// startWriter starts the goroutine that writes what the loop's attempts
// leave, for a connection the loop does not poll.
func (s *Server) startWriter(c *conn) {
	go func() {
		defer s.wg.Done()
		defer c.exited()
		c.writeLoop()
	}()
}

// resetStats starts INFO's figures again from 0, as CONFIG RESETSTAT.
func (s *Server) resetStats() {
	s.stats.connections.Store(0)
	s.stats.commands.Store(0)
	s.stats.rejected.Store(0)
	for i := range s.stats.disconnects {
		s.stats.disconnects[i].Store(0)
	}
	st := s.broker.Stats()
	s.statsBase.Store(&st)
	s.resetInfo()
	s.cmdStats.clear()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	s.info().io.add(&c.io)
	ci := c.clientInfo() // ClientClosed unless a cause was recorded
	ci.Closed = time.Now()
	s.stats.disconnects[ci.Reason].Add(1)
	s.closedClients.add(ci)
}

// Addr returns the address of the first listener Serve was given, or nil
// before that.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// BrokerInUse returns the Broker being served: Broker, or the one the
// Server made. Before Serve it is Broker, nil if that is.
func (s *Server) BrokerInUse() *pubsub.Broker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.brokerLocked()
}

// Close stops the listeners and drops every connection at once, then
// waits for the connection goroutines to end. Pending output is discarded.
// A Broker the Server made is closed; one it was given is not.
func (s *Server) Close() error {
	return s.stop(nil)
}

// Shutdown stops the listeners, then lets every connection write what is
// already queued for it before closing it, and returns once all are
// closed or ctx ends. Then it drops the rest, as Close does, and returns
// ctx.Err() without waiting for a command still running to return.
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
	s.loop.do(s.loop.closeListeners) // a listener the loop polls leaves the poller unseen
	conns := slices.Collect(maps.Values(s.conns))
	s.mu.Unlock()

	s.pauses.end(nil)
	for _, c := range conns {
		c.endedBecause(ServerShutdown)
		c.closeAfterFlush()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	if ctx != nil {
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	// Whatever is left is dropped now. A connection's goroutines end as
	// soon as their socket is closed, and the loop lets its input go once
	// the command it runs, if any, returns; Close waits for them, Shutdown
	// past its deadline does not, as net/http's Shutdown.
	for _, c := range s.connections() {
		c.kill()
	}
	if s.ownBroker {
		_ = s.broker.Close() // a command still running then ends at once
	}
	if ctx == nil {
		<-done
	}
	// The loop goes on until the connections are gone, so that it ends
	// each; past Shutdown's deadline, a command still running may hold
	// it, and it ends once that returns.
	s.loop.stop(ctx == nil || err == nil)
	return err
}

// DropClients disconnects every client now, as if the network failed,
// and keeps serving new ones. It returns once their subscriptions are
// gone: a PUBLISH that follows it counts none of them.
func (s *Server) DropClients() {
	for _, c := range s.connections() {
		c.drop()
	}
}

// connByID returns the open connection with the given CLIENT ID, or nil.
func (s *Server) connByID(id int64) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

// connections returns the open connections in the order they came.
func (s *Server) connections() []*conn {
	s.mu.Lock()
	conns := slices.Collect(maps.Values(s.conns))
	s.mu.Unlock()
	slices.SortFunc(conns, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })
	return conns
}
