package server

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// DisconnectReason says why a client's connection ended.
type DisconnectReason uint8

const (
	// ClientClosed: the client closed the connection, sent QUIT, or the
	// connection failed.
	ClientClosed DisconnectReason = iota
	// OutputHardLimit: its output passed the hard limit of its class.
	OutputHardLimit
	// OutputSoftLimit: its output stayed over the soft limit of its class
	// for the whole soft period.
	OutputSoftLimit
	// Killed: CLIENT KILL, or [Server.DropClients].
	Killed
	// IdleTimeout: it was idle for longer than the idle timeout.
	IdleTimeout
	// ProtocolError: it sent something that is not RESP.
	ProtocolError
	// QueryBufferLimit: one of its commands was longer than the query
	// buffer limit.
	QueryBufferLimit
	// ServerShutdown: the Server was closed or shut down.
	ServerShutdown

	numReasons = iota
)

// String returns the reason's name as the monitoring endpoints and
// INFO pubsubd spell it: "client_closed", "output_hard_limit", ...
func (r DisconnectReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

var reasonNames = [numReasons]string{
	"client_closed", "output_hard_limit", "output_soft_limit", "killed",
	"idle_timeout", "protocol_error", "query_buffer_limit", "server_shutdown",
}

// Stats are a Server's figures. The cumulative ones, the Broker's
// included, count from the Server's start or the last CONFIG RESETSTAT.
type Stats struct {
	Clients          int   // connections open now
	ConnectionsTotal int64 // connections accepted
	Rejected         int64 // connections refused at MaxClients
	Commands         int64 // commands run
	// Disconnects counts the connections ended, by reason (indexed by
	// DisconnectReason).
	Disconnects [numReasons]int64
	Started     time.Time
	Broker      pubsub.Stats // the served Broker's figures
}

// Stats returns the Server's figures. It takes time in proportion to the
// number of subscriptions, as [pubsub.Broker.Stats] does.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Clients: len(s.conns), Started: s.started}
	b := s.brokerLocked()
	s.mu.Unlock()
	st.ConnectionsTotal = s.stats.connections.Load()
	st.Rejected = s.stats.rejected.Load()
	st.Commands = s.stats.commands.Load()
	for i := range st.Disconnects {
		st.Disconnects[i] = s.stats.disconnects[i].Load()
	}
	st.Broker = b.Stats()
	if base := s.statsBase.Load(); base != nil {
		st.Broker.Published -= base.Published
		st.Broker.Delivered -= base.Delivered
		st.Broker.Dropped -= base.Dropped
		st.Broker.Evicted -= base.Evicted
		st.Broker.Disconnected -= base.Disconnected
		st.Broker.Gaps -= base.Gaps
	}
	return st
}

// ClientInfo describes one client connection.
type ClientInfo struct {
	ID         int64
	Addr       string // the client's address
	Name       string // CLIENT SETNAME
	Library    string // CLIENT SETINFO lib-name and lib-ver, space-separated
	Protocol   int    // RESP version, 2 or 3
	Connected  time.Time
	LastActive time.Time // when a byte was last read from it or written to it
	// LastCommand is the last command it ran, as CLIENT LIST's cmd.
	LastCommand string
	// User is the ACL user it runs as, as CLIENT LIST's user.
	User string

	Channels, Patterns, ShardChannels int
	// OutputBytes is the output queued for it and not yet written,
	// OutputPeak the most there has been at once.
	OutputBytes, OutputPeak int64
	// Delivered is the number of messages published to its
	// subscriptions.
	Delivered uint64

	// For a closed client: when, and why.
	Closed time.Time
	Reason DisconnectReason
}

// Clients returns the open connections, by ID.
func (s *Server) Clients() []ClientInfo {
	conns := s.connections()
	out := make([]ClientInfo, len(conns))
	for i, c := range conns {
		out[i] = c.clientInfo()
	}
	return out
}

// ClosedClients returns the last connections that ended (at most
// closedClientsKept), oldest first, with the reason each ended.
func (s *Server) ClosedClients() []ClientInfo {
	return s.closedClients.list()
}

// closedClientsKept is how many ended connections ClosedClients keeps.
const closedClientsKept = 128

// closedRing keeps the last closedClientsKept ended connections.
type closedRing struct {
	mu sync.Mutex
	// guards the fields below
	ring []ClientInfo
	next int // where the next one goes once ring is full
}

func (r *closedRing) add(ci ClientInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) < closedClientsKept {
		r.ring = append(r.ring, ci)
		return
	}
	r.ring[r.next] = ci
	r.next = (r.next + 1) % closedClientsKept
}

func (r *closedRing) list() []ClientInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ClientInfo, 0, len(r.ring))
	out = append(out, r.ring[r.next:]...)
	return append(out, r.ring[:r.next]...)
}

func (c *conn) clientInfo() ClientInfo {
	c.mu.Lock()
	ci := ClientInfo{
		ID:          c.id,
		Addr:        c.nc.RemoteAddr().String(),
		Name:        c.name,
		Library:     strings.TrimSpace(c.lib[0] + " " + c.lib[1]),
		Protocol:    c.proto,
		Connected:   c.born,
		LastCommand: c.lastCmd,
		User:        c.userLabel,
		OutputBytes: c.out.pending(),
		OutputPeak:  c.outPeak,
		Reason:      c.why,
	}
	sub := c.sub
	c.mu.Unlock()
	ci.LastActive = time.Unix(0, c.lastIO.Load())
	if sub != nil {
		st := sub.Stats()
		ci.Channels, ci.Patterns, ci.ShardChannels = st.Channels, st.Patterns, st.ShardChannels
		ci.Delivered = st.Delivered
	}
	return ci
}

// endedBecauseLocked records why the connection is ending, unless a reason was
// recorded already: the first cause is the one that counts. c.mu must be
// held.
func (c *conn) endedBecauseLocked(r DisconnectReason) {
	if !c.whySet {
		c.why, c.whySet = r, true
	}
}

func (c *conn) endedBecause(r DisconnectReason) {
	c.mu.Lock()
	c.endedBecauseLocked(r)
	c.mu.Unlock()
}

// brokerLocked returns the Broker served, or to be served once Serve
// starts (nil for a Broker of its own not made yet). s.mu must be held.
func (s *Server) brokerLocked() *pubsub.Broker {
	if s.broker != nil {
		return s.broker
	}
	return s.Broker
}

// InProcessSubscriptions returns the served Broker's open subscriptions
// that belong to no client of the Server: those Go code in the process
// made.
func (s *Server) InProcessSubscriptions() []*pubsub.Subscription {
	b := s.BrokerInUse()
	clients := make(map[*pubsub.Subscription]bool)
	for _, c := range s.connections() {
		c.mu.Lock()
		if c.sub != nil {
			clients[c.sub] = true
		}
		c.mu.Unlock()
	}
	subs := b.Subscriptions()
	return slices.DeleteFunc(subs, func(sub *pubsub.Subscription) bool { return clients[sub] })
}
