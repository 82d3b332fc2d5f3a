// Package relay runs the pubsub API on Redis through any Redis client
// library. It owns everything that does not depend on the client: which
// names the process holds and how many local subscriptions hold each,
// the order of (un)subscribe commands, the upstream connections (their
// health checks, reconnection and resubscription), gap reporting, the
// cluster's slot map and slot moves, and calls bounded by their context.
// A client library gives it a [Client]; the redisbroker and rueidisbroker
// modules are such adapters.
package relay

import (
	"context"
	"errors"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// Client is what the relay needs of a Redis client library. Its methods
// are called concurrently.
type Client interface {
	// Dial returns a new connection for (un)subscribe commands of ns. On
	// a cluster, node is the address of the master whose shard channels
	// it carries, or "" for channels and patterns, which any node
	// serves. Dial may connect lazily: a connection that cannot be made
	// shows as an error from Send or Receive.
	Dial(ctx context.Context, ns pubsub.Namespace, node string) (Conn, error)

	// Publish sends PUBLISH, to node if it is not "" (on a cluster, the
	// relay names the master of the channel's slot).
	Publish(ctx context.Context, node, channel, payload string) (int64, error)
	// SPublish sends SPUBLISH to the master of the shard channel's slot.
	SPublish(ctx context.Context, shardChannel, payload string) (int64, error)
	// Channels, NumSub and NumPat send PUBSUB CHANNELS (SHARDCHANNELS if
	// shard), NUMSUB (SHARDNUMSUB) and NUMPAT to node, or to the client's
	// choice of node if node is "".
	Channels(ctx context.Context, node, pattern string, shard bool) ([]string, error)
	NumSub(ctx context.Context, node string, names []string, shard bool) (map[string]int64, error)
	NumPat(ctx context.Context, node string) (int64, error)

	// Cluster reports whether the client talks to a Redis Cluster.
	Cluster() bool
	// Nodes returns the address of every node of the cluster, masters and
	// replicas, since subscribers may be connected to either.
	Nodes(ctx context.Context) ([]string, error)
	// Slots returns which master serves each slot (CLUSTER SLOTS).
	Slots(ctx context.Context) ([]SlotRange, error)

	// Bounded reports whether a call may outlast its context's deadline
	// (go-redis without ContextTimeoutEnabled), so that the relay must
	// return at the deadline itself while the call finishes.
	Bounded() bool
	// Close closes the client; the relay calls it only for a client it
	// was given to own.
	Close() error
}

// Conn is one connection in subscribed mode. Send, Ping and Close may be
// called concurrently with Receive; Receive is called by one goroutine.
type Conn interface {
	// Send sends one SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE (UNSUBSCRIBE...
	// if !subscribe) of names. It need not wait for the confirmations,
	// which come from Receive. A Redis error reply to it is returned
	// from Send or from Receive, wrapped by [Refused].
	Send(ctx context.Context, subscribe bool, ns pubsub.Namespace, names []string) error
	// Ping asks Redis for a reply; it shows as an Event of kind Pong.
	Ping(ctx context.Context) error
	// Receive returns the next event, or [ErrQuiet] if none came within
	// wait, or an error wrapped by [Refused] for an error reply, or any
	// other error when the connection is lost: the relay then closes it
	// and dials a new one.
	Receive(ctx context.Context, wait time.Duration) (Event, error)
	// Close closes the connection; a Receive under way returns.
	Close() error
}

// EventKind says what an Event is.
type EventKind int

const (
	// Confirmation: Redis confirmed a (un)subscribe of one name. Command
	// is the confirmation's kind ("subscribe", "punsubscribe", ...).
	Confirmation EventKind = iota
	// Message: a message, pmessage or smessage; the connection's
	// namespace says which.
	Message
	// Pong: the answer to a Ping.
	Pong
)

// Event is one thing Redis sent on a Conn.
type Event struct {
	Kind    EventKind
	Command string // Confirmation: its kind
	Channel string // Confirmation: the name; Message: the channel
	Pattern string // Message: the pattern of a pmessage
	Payload string // Message: the payload
}

// SlotRange is a range of slots and the address of the master serving it.
type SlotRange struct {
	Start, End int
	Master     string
}

// ErrQuiet is returned by Conn.Receive when nothing came within its wait.
var ErrQuiet = errors.New("relay: nothing received")

// Refused wraps a Redis error reply, which answers a command without
// ending the connection.
func Refused(err error) error { return refusal{err} }

type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func isRefusal(err error) bool {
	var r refusal
	return errors.As(err, &r)
}
