package server

import (
	"context"
	"strings"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// The Pub/Sub commands. A client's subscriptions are its
// pubsub.Subscription's: the connection keeps none of its own.

func pubsubCommands() []*command {
	const g = "pubsub"
	return []*command{
		{name: "subscribe", arity: -2, pubsub: true, ns: pubsub.Channels, run: cmdSubscribe, group: g, since: "2.0.0",
			summary: "Listen for messages published to the given channels."},
		{name: "psubscribe", arity: -2, pubsub: true, ns: pubsub.Patterns, run: cmdSubscribe, group: g, since: "2.0.0",
			summary: "Listen for messages published to channels matching the given glob patterns."},
		{name: "ssubscribe", arity: -2, pubsub: true, ns: pubsub.ShardChannels, run: cmdSubscribe, group: g, since: "7.0.0",
			summary: "Listen for messages published to the given shard channels."},
		{name: "unsubscribe", arity: -1, pubsub: true, ns: pubsub.Channels, run: cmdUnsubscribe, group: g, since: "2.0.0",
			summary: "Stop listening to the given channels, or to all of them."},
		{name: "punsubscribe", arity: -1, pubsub: true, ns: pubsub.Patterns, run: cmdUnsubscribe, group: g, since: "2.0.0",
			summary: "Stop listening to the given patterns, or to all of them."},
		{name: "sunsubscribe", arity: -1, pubsub: true, ns: pubsub.ShardChannels, run: cmdUnsubscribe, group: g, since: "7.0.0",
			summary: "Stop listening to the given shard channels, or to all of them."},
		{name: "publish", arity: 3, ns: pubsub.Channels, writes: true, run: cmdPublish, group: g, since: "2.0.0",
			summary: "Send a message to a channel; returns how many subscribers received it."},
		{name: "spublish", arity: 3, ns: pubsub.ShardChannels, writes: true, run: cmdPublish, group: g, since: "7.0.0",
			summary: "Send a message to a shard channel; returns how many subscribers received it."},
		container("pubsub", "Introspect the Pub/Sub state.", g, "2.8.0",
			&command{name: "pubsub|channels", arity: -2, ns: pubsub.Channels, run: cmdPubsubChannels, since: "2.8.0",
				summary: "List the channels with subscribers, optionally matching a pattern."},
			&command{name: "pubsub|shardchannels", arity: -2, ns: pubsub.ShardChannels, run: cmdPubsubChannels, since: "7.0.0",
				summary: "List the shard channels with subscribers, optionally matching a pattern."},
			&command{name: "pubsub|numsub", arity: -2, ns: pubsub.Channels, run: cmdPubsubNumsub, since: "2.8.0",
				summary: "Count the subscribers of each given channel."},
			&command{name: "pubsub|shardnumsub", arity: -2, ns: pubsub.ShardChannels, run: cmdPubsubNumsub, since: "7.0.0",
				summary: "Count the subscribers of each given shard channel."},
			&command{name: "pubsub|numpat", arity: 2, run: cmdPubsubNumpat, since: "2.8.0",
				summary: "Count the distinct patterns subscribed to."},
			&command{name: "pubsub|help", arity: 2, run: cmdPubsubHelp, since: "6.2.0",
				summary: "Describe the PUBSUB subcommands."},
		),
	}
}

// confirm writes one (un)subscribe confirmation; a null name when name is
// nil.
func confirm(w *resp.Writer, kind string, name *string, count int) {
	w.Push(3)
	w.Bulk(kind)
	if name == nil {
		w.NullBulk()
	} else {
		w.Bulk(*name)
	}
	w.Int(int64(count))
}

// The subscribe and unsubscribe commands queue each confirmation as the
// subscription confirms the name, under c.mu, the lock a message for the
// client is queued under too: a message published to a channel can then
// never overtake its subscribe confirmation, nor follow its unsubscribe
// confirmation (deliver drops a message of a publish that raced with the
// unsubscribe: Redis would have sent it before the confirmation).

func cmdSubscribe(c *conn, w *resp.Writer, args []string) {
	ns := c.cmd.ns
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, err := c.subscriptionLocked()
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	// The names outlive the command: each gets its own memory rather than
	// keep the whole command's (its arguments share one allocation).
	names := make([]string, len(args)-1)
	for i, name := range args[1:] {
		names[i] = strings.Clone(name)
	}
	_, err = sub.Add(c.ctx, ns, c.confirmer(w, ns.SubscribeCommand(), ns), names...)
	if err != nil {
		w.Error("ERR " + err.Error())
	}
}

func cmdUnsubscribe(c *conn, w *resp.Writer, args []string) {
	ns := c.cmd.ns
	kind := ns.UnsubscribeCommand()
	c.mu.Lock()
	defer c.mu.Unlock()
	confirmed := false
	onName := c.confirmer(w, kind, ns)
	each := func(name string, count int) {
		confirmed = true
		onName(name, count)
	}
	count := 0
	if c.sub == nil { // never subscribed: Redis still confirms every name
		for _, name := range args[1:] {
			each(name, 0)
		}
	} else {
		var err error
		if count, err = c.sub.Remove(c.ctx, ns, each, args[1:]...); err != nil {
			w.Error("ERR " + err.Error())
			return
		}
	}
	if !confirmed { // nothing named, nothing held
		confirm(w, kind, nil, count)
		c.queueLocked(w.Buf)
		w.Buf = w.Buf[:0]
	}
}

// confirmer returns the function that queues the confirmation of each
// name of ns, and keeps the counts that decide RESP2's subscribed mode and
// the output class. c.mu must be held while it runs.
func (c *conn) confirmer(w *resp.Writer, kind string, ns pubsub.Namespace) pubsub.Confirm {
	return func(name string, count int) {
		if ns == pubsub.ShardChannels {
			c.shardCount = count
		} else {
			c.subCount = count
		}
		confirm(w, kind, &name, count)
		c.queueLocked(w.Buf)
		w.Buf = w.Buf[:0]
	}
}

func cmdPublish(c *conn, w *resp.Writer, args []string) {
	publish := c.srv.broker.Publish
	if c.cmd.ns == pubsub.ShardChannels {
		publish = c.srv.broker.SPublish
	}
	n, err := publish(c.pubCtx, args[1], args[2])
	intReply(w, n, err)
}

// intReply answers n, or the error of a broker call.
func intReply(w *resp.Writer, n int, err error) {
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	w.Int(int64(n))
}

func cmdPubsubChannels(c *conn, w *resp.Writer, args []string) {
	list := c.srv.broker.Channels
	if c.cmd.ns == pubsub.ShardChannels {
		list = c.srv.broker.ShardChannels
	}
	pattern := "*" // no pattern: every channel
	if len(args) > 2 {
		pattern = args[2]
		if pattern == "*" {
			pattern = "**" // the same glob, but not the "every channel" shorthand
		}
	}
	if len(args) > 3 {
		subcommandSyntaxError(w, "PUBSUB", args[1])
		return
	}
	names, err := list(context.Background(), pattern)
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	w.Array(len(names))
	for _, n := range names {
		w.Bulk(n)
	}
}

func cmdPubsubNumsub(c *conn, w *resp.Writer, args []string) {
	numSub := c.srv.broker.NumSub
	if c.cmd.ns == pubsub.ShardChannels {
		numSub = c.srv.broker.ShardNumSub
	}
	counts, err := numSub(context.Background(), args[2:]...)
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	w.Array(2 * len(args[2:]))
	for _, ch := range args[2:] {
		w.Bulk(ch)
		w.Int(int64(counts[ch]))
	}
}

func cmdPubsubNumpat(c *conn, w *resp.Writer, _ []string) {
	n, err := c.srv.broker.NumPat(context.Background())
	intReply(w, n, err)
}

func cmdPubsubHelp(c *conn, w *resp.Writer, _ []string) {
	lines := []string{
		"PUBSUB <subcommand> [<arg> ...]. Subcommands are:",
		"CHANNELS [<pattern>]",
		"    List the channels with subscribers, matching the glob <pattern> if given.",
		"NUMPAT",
		"    Count the distinct patterns subscribed to.",
		"NUMSUB [<channel> ...]",
		"    Count the subscribers of each channel (pattern subscriptions excluded).",
		"SHARDCHANNELS [<pattern>]",
		"    List the shard channels with subscribers, matching <pattern> if given.",
		"SHARDNUMSUB [<shardchannel> ...]",
		"    Count the subscribers of each shard channel.",
		"HELP",
		"    Print this help.",
	}
	writeHelp(w, lines)
}
