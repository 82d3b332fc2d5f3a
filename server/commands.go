package server

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// The version this server answers as, for clients that check it.
const redisVersion = "7.0.15"

// command is one entry of the dispatch table.
type command struct {
	name    string // full name, as Redis reports it: "subscribe", "client|setname"
	arity   int    // as Redis: n exactly, or -n for at least n
	noAuth  bool   // allowed before authentication
	pubsub  bool   // allowed in RESP2 subscribed mode
	noQueue bool   // runs at once inside MULTI (EXEC, DISCARD, MULTI, QUIT, RESET)
	run     func(c *conn, w *resp.Writer, args []string) (quit bool)
	subs    map[string]*command // for containers: PUBSUB, CLIENT, COMMAND, CONFIG
	doc     commandDoc
}

// commandDoc is what COMMAND DOCS and COMMAND INFO say of a command. The
// summaries are this project's own words.
type commandDoc struct {
	summary, group, since string
}

// commandDocs describes every command served, by full name.
func commandDocs() map[string]commandDoc {
	return map[string]commandDoc{
		"subscribe":            {"Listen for messages published to the given channels.", "pubsub", "2.0.0"},
		"psubscribe":           {"Listen for messages published to channels matching the given glob patterns.", "pubsub", "2.0.0"},
		"ssubscribe":           {"Listen for messages published to the given shard channels.", "pubsub", "7.0.0"},
		"unsubscribe":          {"Stop listening to the given channels, or to all of them.", "pubsub", "2.0.0"},
		"punsubscribe":         {"Stop listening to the given patterns, or to all of them.", "pubsub", "2.0.0"},
		"sunsubscribe":         {"Stop listening to the given shard channels, or to all of them.", "pubsub", "7.0.0"},
		"publish":              {"Send a message to a channel; returns how many subscribers received it.", "pubsub", "2.0.0"},
		"spublish":             {"Send a message to a shard channel; returns how many subscribers received it.", "pubsub", "7.0.0"},
		"pubsub":               {"Introspect the Pub/Sub state.", "pubsub", "2.8.0"},
		"pubsub|channels":      {"List the channels with subscribers, optionally matching a pattern.", "pubsub", "2.8.0"},
		"pubsub|shardchannels": {"List the shard channels with subscribers, optionally matching a pattern.", "pubsub", "7.0.0"},
		"pubsub|numsub":        {"Count the subscribers of each given channel.", "pubsub", "2.8.0"},
		"pubsub|shardnumsub":   {"Count the subscribers of each given shard channel.", "pubsub", "7.0.0"},
		"pubsub|numpat":        {"Count the distinct patterns subscribed to.", "pubsub", "2.8.0"},
		"pubsub|help":          {"Describe the PUBSUB subcommands.", "pubsub", "6.2.0"},
		"ping":                 {"Check the connection; echoes an optional message.", "connection", "1.0.0"},
		"echo":                 {"Return the given string.", "connection", "1.0.0"},
		"quit":                 {"Close the connection once the reply is sent.", "connection", "1.0.0"},
		"reset":                {"Return the connection to its initial state.", "connection", "6.2.0"},
		"hello":                {"Choose the protocol version, authenticate and name the connection.", "connection", "6.0.0"},
		"auth":                 {"Authenticate the connection.", "connection", "1.0.0"},
		"select":               {"Choose a database number (there is no data to select).", "connection", "1.0.0"},
		"client":               {"Manage client connections.", "connection", "2.4.0"},
		"client|setname":       {"Name the connection.", "connection", "2.6.9"},
		"client|getname":       {"Return the connection's name.", "connection", "2.6.9"},
		"client|id":            {"Return the connection's id.", "connection", "5.0.0"},
		"client|setinfo":       {"Record the client library's name or version.", "connection", "7.2.0"},
		"client|info":          {"Describe this connection.", "connection", "6.2.0"},
		"client|list":          {"Describe every connection.", "connection", "2.4.0"},
		"client|kill":          {"Close the connections matching the given filters.", "connection", "2.4.0"},
		"client|reply":         {"Turn the server's replies on or off for this connection.", "connection", "3.2.0"},
		"client|no-evict":      {"Accepted for compatibility; nothing is evicted.", "connection", "7.0.0"},
		"command":              {"Describe the commands this server serves.", "server", "2.8.13"},
		"command|count":        {"Count the commands this server serves.", "server", "2.8.13"},
		"command|docs":         {"Document the given commands, or all of them.", "server", "7.0.0"},
		"command|info":         {"Describe the given commands, or all of them.", "server", "2.8.13"},
		"config":               {"Read the server's configuration.", "server", "2.0.0"},
		"config|get":           {"Return the configuration parameters matching the given patterns.", "server", "2.0.0"},
		"info":                 {"Report the server's state and figures.", "server", "1.0.0"},
		"dbsize":               {"Always 0: this server holds no keys.", "server", "1.0.0"},
		"flushdb":              {"Accepted for compatibility: there are no keys to remove.", "server", "1.0.0"},
		"flushall":             {"Accepted for compatibility: there are no keys to remove.", "server", "1.0.0"},
		"multi":                {"Start queuing commands for EXEC.", "transactions", "1.2.0"},
		"exec":                 {"Run the queued commands.", "transactions", "1.2.0"},
		"discard":              {"Drop the queued commands.", "transactions", "2.0.0"},
	}
}

// commandTable is built per server; register panics on a duplicate, a
// programming error.
type commandTable struct {
	cmds      map[string]*command
	redisKnow map[string]bool // Redis command name -> is a container
}

func (t *commandTable) register(c *command) {
	if _, dup := t.cmds[c.name]; dup {
		panic("server: command registered twice: " + c.name)
	}
	t.cmds[c.name] = c
}

func container(name string, subs ...*command) *command {
	c := &command{name: name, arity: -2, subs: map[string]*command{}}
	for _, s := range subs {
		c.subs[strings.TrimPrefix(s.name, name+"|")] = s
	}
	return c
}

func newCommandTable() *commandTable {
	t := &commandTable{cmds: map[string]*command{}, redisKnow: redisCommands()}
	for _, c := range []*command{
		{name: "subscribe", arity: -2, pubsub: true, run: cmdSubscribe},
		{name: "psubscribe", arity: -2, pubsub: true, run: cmdSubscribe},
		{name: "ssubscribe", arity: -2, pubsub: true, run: cmdSubscribe},
		{name: "unsubscribe", arity: -1, pubsub: true, run: cmdUnsubscribe},
		{name: "punsubscribe", arity: -1, pubsub: true, run: cmdUnsubscribe},
		{name: "sunsubscribe", arity: -1, pubsub: true, run: cmdUnsubscribe},
		{name: "publish", arity: 3, run: cmdPublish},
		{name: "spublish", arity: 3, run: cmdPublish},
		container("pubsub",
			&command{name: "pubsub|channels", arity: -2, run: cmdPubsubChannels},
			&command{name: "pubsub|shardchannels", arity: -2, run: cmdPubsubChannels},
			&command{name: "pubsub|numsub", arity: -2, run: cmdPubsubNumsub},
			&command{name: "pubsub|shardnumsub", arity: -2, run: cmdPubsubNumsub},
			&command{name: "pubsub|numpat", arity: 2, run: cmdPubsubNumpat},
			&command{name: "pubsub|help", arity: 2, run: cmdPubsubHelp},
		),
		{name: "ping", arity: -1, pubsub: true, run: cmdPing},
		{name: "echo", arity: 2, run: cmdEcho},
		{name: "quit", arity: -1, noAuth: true, pubsub: true, noQueue: true, run: cmdQuit},
		{name: "reset", arity: 1, noAuth: true, pubsub: true, noQueue: true, run: cmdReset},
		{name: "hello", arity: -1, noAuth: true, run: cmdHello},
		{name: "auth", arity: -2, noAuth: true, run: cmdAuth},
		{name: "select", arity: 2, run: cmdSelect},
		container("client",
			&command{name: "client|setname", arity: 3, run: cmdClientSetname},
			&command{name: "client|getname", arity: 2, run: cmdClientGetname},
			&command{name: "client|id", arity: 2, run: cmdClientID},
			&command{name: "client|setinfo", arity: 4, run: cmdClientSetinfo},
			&command{name: "client|info", arity: 2, run: cmdClientInfo},
			&command{name: "client|list", arity: -2, run: cmdClientList},
			&command{name: "client|reply", arity: 3, run: cmdClientReply},
			&command{name: "client|kill", arity: -3, run: cmdClientKill},
			&command{name: "client|no-evict", arity: 3, run: cmdOKOnOff},
		),
		container("command",
			&command{name: "command|count", arity: 2, run: cmdCommandCount},
			&command{name: "command|docs", arity: -2, run: cmdCommandDocs},
			&command{name: "command|info", arity: -2, run: cmdCommandInfo},
		),
		container("config",
			&command{name: "config|get", arity: -3, run: cmdConfigGet},
		),
		{name: "info", arity: -1, run: cmdInfo},
		{name: "dbsize", arity: 1, run: func(c *conn, w *resp.Writer, _ []string) bool { w.Int(0); return false }},
		{name: "flushdb", arity: -1, run: cmdOK},
		{name: "flushall", arity: -1, run: cmdOK},
		{name: "multi", arity: 1, noQueue: true, run: cmdMulti},
		{name: "exec", arity: 1, noQueue: true, run: cmdExec},
		{name: "discard", arity: 1, noQueue: true, run: cmdDiscard},
	} {
		t.register(c)
	}
	// COMMAND with no subcommand is a command of its own.
	t.cmds["command"].arity = -1
	t.cmds["command"].run = cmdCommandInfo
	docs := commandDocs()
	for _, c := range t.cmds {
		c.doc = docs[c.name]
		for _, sub := range c.subs {
			sub.doc = docs[sub.name]
		}
	}
	return t
}

// run executes one command and queues its reply. It reports whether the
// connection should close once the reply is written.
func (c *conn) run(args []string) (quit bool) {
	w := &c.reply // reused: a reply is copied into the output queue
	w.Buf, w.Proto = w.Buf[:0], c.protoNow()
	quit = c.dispatch(w, args)
	c.flushReply(w)
	if cap(w.Buf) > outChunk { // a large reply: do not keep its buffer
		w.Buf = nil
	}
	// CLIENT REPLY SKIP silences the command after it, as Redis's
	// CLIENT_REPLY_SKIP_NEXT becomes CLIENT_REPLY_SKIP for one command.
	switch c.replyMode {
	case replySkipNext:
		c.replyMode = replySkip
	case replySkip:
		c.replyMode = replyOn
	}
	return quit
}

func (c *conn) protoNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proto
}

// flushReply queues w's bytes unless CLIENT REPLY says otherwise.
func (c *conn) flushReply(w *resp.Writer) {
	if c.replyMode == replyOff || c.replyMode == replySkip || len(w.Buf) == 0 {
		return
	}
	c.mu.Lock()
	c.appendLocked(w.Buf) // the reader flushes once the pipeline is consumed
	c.mu.Unlock()
}

func (c *conn) dispatch(w *resp.Writer, args []string) (quit bool) {
	cmd, errMsg := c.srv.table().lookup(args)
	if errMsg != "" {
		c.failMulti()
		w.Error(errMsg)
		return false
	}
	c.mu.Lock()
	authed, proto, subscribed := c.authed, c.proto, c.subscribedLocked()
	c.lastCmd = cmd.name
	c.mu.Unlock()
	switch {
	case !authed && !cmd.noAuth:
		c.failMulti()
		w.Error("NOAUTH Authentication required.")
		return false
	case proto == 2 && subscribed && !cmd.pubsub:
		c.failMulti()
		w.Error(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", cmd.name))
		return false
	case c.multi != nil && !cmd.noQueue:
		c.multi.queued = append(c.multi.queued, slices.Clone(args))
		w.Simple("QUEUED")
		return false
	}
	return cmd.run(c, w, args)
}

func (c *conn) failMulti() {
	if c.multi != nil {
		c.multi.failed = true
	}
}

// lookup finds the command for args, or returns Redis's error for an
// unknown command, an unknown subcommand or a wrong number of arguments.
func (t *commandTable) lookup(args []string) (*command, string) {
	cmd := findFold(t.cmds, args[0])
	name := ""
	if cmd == nil {
		name = lower(args[0])
	}
	if cmd == nil {
		if isContainer, known := t.redisKnow[name]; known {
			if isContainer && len(args) > 1 {
				name += "|" + lower(args[1])
			}
			return &command{name: name, arity: -1, run: cmdUnsupported}, ""
		}
		var b strings.Builder
		for _, a := range args[1:] {
			if b.Len() >= 128 {
				break
			}
			fmt.Fprintf(&b, "'%.*s' ", 128-b.Len(), a)
		}
		return nil, sanitize(fmt.Sprintf("ERR unknown command '%.128s', with args beginning with: %s", args[0], b.String()))
	}
	if cmd.subs != nil && len(args) >= 2 {
		sub := findFold(cmd.subs, args[1])
		if sub == nil {
			return nil, sanitize(fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", args[1], strings.ToUpper(args[0])))
		}
		cmd = sub
	}
	if (cmd.arity > 0 && len(args) != cmd.arity) || len(args) < -cmd.arity {
		return nil, fmt.Sprintf("ERR wrong number of arguments for '%s' command", cmd.name)
	}
	return cmd, ""
}

// cmdUnsupported answers a Redis command this server does not serve. It
// runs after the checks every command goes through, so in RESP2 subscribed
// mode the client gets Redis's own error first.
func cmdUnsupported(c *conn, w *resp.Writer, args []string) bool {
	w.Error(fmt.Sprintf("ERR unsupported command '%s': this server speaks Redis Pub/Sub only", sanitize(lower(args[0]))))
	return false
}

// findFold looks name up case-insensitively. Names up to 32 bytes are
// lowered on the stack: a map index with string(bytes) does not allocate.
func findFold(m map[string]*command, name string) *command {
	if len(name) > 32 {
		return m[lower(name)]
	}
	var buf [32]byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return m[string(buf[:len(name)])]
}

// sanitize replaces line breaks, which an error reply cannot carry, with
// spaces, as Redis does.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func (s *Server) table() *commandTable {
	s.tableOnce.Do(func() { s.commands = newCommandTable() })
	return s.commands
}

// subscription commands

type kindOf struct {
	confirm string // reply kind
	set     func(c *conn) map[string]struct{}
	add     func(s *pubsub.Subscription, names ...string) error
	remove  func(s *pubsub.Subscription, names ...string) error
	shard   bool
}

func subscriptionKind(name string) kindOf {
	ctx := context.Background()
	switch strings.TrimSuffix(strings.TrimSuffix(name, "subscribe"), "un") {
	case "p":
		return kindOf{
			set: func(c *conn) map[string]struct{} { return c.patterns },
			add: func(s *pubsub.Subscription, n ...string) error { return s.PSubscribe(ctx, n...) },
			remove: func(s *pubsub.Subscription, n ...string) error {
				return s.PUnsubscribe(ctx, n...)
			},
		}
	case "s":
		return kindOf{
			set: func(c *conn) map[string]struct{} { return c.shard },
			add: func(s *pubsub.Subscription, n ...string) error { return s.SSubscribe(ctx, n...) },
			remove: func(s *pubsub.Subscription, n ...string) error {
				return s.SUnsubscribe(ctx, n...)
			},
			shard: true,
		}
	}
	return kindOf{
		set: func(c *conn) map[string]struct{} { return c.channels },
		add: func(s *pubsub.Subscription, n ...string) error { return s.Subscribe(ctx, n...) },
		remove: func(s *pubsub.Subscription, n ...string) error {
			return s.Unsubscribe(ctx, n...)
		},
	}
}

// countLocked is the count Redis puts in (un)subscribe replies.
// c.mu must be held.
func (c *conn) countLocked(k kindOf) int64 {
	if k.shard {
		return int64(len(c.shard))
	}
	return int64(len(c.channels) + len(c.patterns))
}

func confirm(w *resp.Writer, kind, name string, null bool, count int64) {
	w.Push(3)
	w.Bulk(kind)
	if null {
		w.NullBulk()
	} else {
		w.Bulk(name)
	}
	w.Int(count)
}

// The subscribe and unsubscribe commands queue their confirmations
// themselves, under c.mu, together with the change: a message published
// to a channel can then never overtake its subscribe confirmation, nor
// follow its unsubscribe confirmation.

func cmdSubscribe(c *conn, w *resp.Writer, args []string) bool {
	kind, k := lower(args[0]), subscriptionKind(lower(args[0]))
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, err := c.subscriptionLocked()
	if err != nil {
		w.Error("ERR " + err.Error())
		return false
	}
	set := k.set(c)
	for _, name := range args[1:] {
		if _, held := set[name]; !held {
			if err := k.add(sub, name); err != nil {
				w.Error("ERR " + err.Error())
				return false
			}
			set[name] = struct{}{}
		}
		confirm(w, kind, name, false, c.countLocked(k))
		c.queueLocked(w.Buf)
		w.Buf = w.Buf[:0]
	}
	return false
}

func cmdUnsubscribe(c *conn, w *resp.Writer, args []string) bool {
	kind, k := lower(args[0]), subscriptionKind(lower(args[0]))
	c.mu.Lock()
	defer c.mu.Unlock()
	set := k.set(c)
	names := args[1:]
	if len(names) == 0 {
		if len(set) == 0 {
			confirm(w, kind, "", true, c.countLocked(k))
			c.queueLocked(w.Buf)
			w.Buf = w.Buf[:0]
			return false
		}
		for name := range set {
			names = append(names, name)
		}
	}
	for _, name := range names {
		if _, held := set[name]; held {
			delete(set, name)
			if err := k.remove(c.sub, name); err != nil {
				w.Error("ERR " + err.Error())
				return false
			}
		}
		confirm(w, kind, name, false, c.countLocked(k))
		c.queueLocked(w.Buf)
		w.Buf = w.Buf[:0]
	}
	return false
}

func cmdPublish(c *conn, w *resp.Writer, args []string) bool {
	publish := c.srv.broker.Publish
	if lower(args[0]) == "spublish" {
		publish = c.srv.broker.SPublish
	}
	n, err := publish(context.Background(), args[1], args[2])
	intReply(w, n, err)
	return false
}

// intReply answers n, or the error of a broker call.
func intReply(w *resp.Writer, n int, err error) {
	if err != nil {
		w.Error("ERR " + err.Error())
		return
	}
	w.Int(int64(n))
}

func cmdPubsubChannels(c *conn, w *resp.Writer, args []string) bool {
	list := c.srv.broker.Channels
	if lower(args[1]) == "shardchannels" {
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
		w.Error(sanitize(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%.128s'. Try PUBSUB HELP.", args[1])))
		return false
	}
	names, err := list(context.Background(), pattern)
	if err != nil {
		w.Error("ERR " + err.Error())
		return false
	}
	w.Array(len(names))
	for _, n := range names {
		w.Bulk(n)
	}
	return false
}

func cmdPubsubNumsub(c *conn, w *resp.Writer, args []string) bool {
	numSub := c.srv.broker.NumSub
	if lower(args[1]) == "shardnumsub" {
		numSub = c.srv.broker.ShardNumSub
	}
	counts, err := numSub(context.Background(), args[2:]...)
	if err != nil {
		w.Error("ERR " + err.Error())
		return false
	}
	w.Array(2 * len(args[2:]))
	for _, ch := range args[2:] {
		w.Bulk(ch)
		w.Int(int64(counts[ch]))
	}
	return false
}

func cmdPubsubNumpat(c *conn, w *resp.Writer, _ []string) bool {
	n, err := c.srv.broker.NumPat(context.Background())
	intReply(w, n, err)
	return false
}

func cmdPubsubHelp(c *conn, w *resp.Writer, _ []string) bool {
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
	w.Array(len(lines))
	for _, l := range lines {
		w.Simple(l)
	}
	return false
}

// connection commands

func cmdPing(c *conn, w *resp.Writer, args []string) bool {
	if len(args) > 2 {
		w.Error("ERR wrong number of arguments for 'ping' command")
		return false
	}
	c.mu.Lock()
	subscribedRESP2 := c.proto == 2 && c.subscribedLocked()
	c.mu.Unlock()
	switch {
	case subscribedRESP2:
		w.Array(2)
		w.Bulk("pong")
		if len(args) == 2 {
			w.Bulk(args[1])
		} else {
			w.Bulk("")
		}
	case len(args) == 2:
		w.Bulk(args[1])
	default:
		w.Simple("PONG")
	}
	return false
}

func cmdEcho(c *conn, w *resp.Writer, args []string) bool {
	w.Bulk(args[1])
	return false
}

func cmdQuit(c *conn, w *resp.Writer, _ []string) bool {
	w.Simple("OK")
	return true
}

func cmdOK(c *conn, w *resp.Writer, _ []string) bool {
	w.Simple("OK")
	return false
}

func cmdOKOnOff(c *conn, w *resp.Writer, args []string) bool {
	switch lower(args[2]) {
	case "on", "off":
		w.Simple("OK")
	default:
		w.Error("ERR syntax error")
	}
	return false
}

func cmdReset(c *conn, w *resp.Writer, _ []string) bool {
	c.mu.Lock()
	sub := c.sub
	c.sub = nil
	clear(c.channels)
	clear(c.patterns)
	clear(c.shard)
	c.proto = 2
	c.authed = c.srv.Password == ""
	c.rd.Authenticated = c.authed
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Close()
	}
	c.mu.Lock()
	c.name, c.db = "", 0
	c.mu.Unlock()
	c.multi, c.replyMode = nil, replyOn
	w.Proto = 2
	w.Simple("RESET")
	return false
}

func cmdHello(c *conn, w *resp.Writer, args []string) bool {
	proto := 0
	if len(args) > 1 {
		v, ok := resp.ParseInt(args[1])
		if !ok {
			w.Error("ERR Protocol version is not an integer or out of range")
			return false
		}
		if v != 2 && v != 3 {
			w.Error("NOPROTO unsupported protocol version")
			return false
		}
		proto = int(v)
	}
	var setName *string
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch opt := lower(args[i]); {
		case opt == "auth" && more >= 2:
			if !c.checkPassword(w, args[i+1], args[i+2]) {
				return false
			}
			i += 2
		case opt == "setname" && more >= 1:
			name := args[i+1]
			setName = &name
			i++
		default:
			w.Error(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
			return false
		}
	}
	c.mu.Lock()
	authed := c.authed
	c.mu.Unlock()
	if !authed {
		w.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return false
	}
	if setName != nil {
		if !validName(*setName) {
			w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return false
		}
		c.mu.Lock()
		c.name = *setName
		c.mu.Unlock()
	}
	if proto != 0 {
		c.mu.Lock()
		c.proto = proto
		c.mu.Unlock()
		w.Proto = proto
	}
	w.Map(7)
	w.Bulk("server")
	w.Bulk("redis")
	w.Bulk("version")
	w.Bulk(redisVersion)
	w.Bulk("proto")
	w.Int(int64(w.Proto))
	w.Bulk("id")
	w.Int(c.id)
	w.Bulk("mode")
	w.Bulk("standalone")
	w.Bulk("role")
	w.Bulk("master")
	w.Bulk("modules")
	w.Array(0)
	return false
}

// checkPassword authenticates the connection, or queues Redis's error.
func (c *conn) checkPassword(w *resp.Writer, user, pass string) bool {
	if c.srv.Password == "" {
		if user == "default" {
			c.mu.Lock()
			c.authed = true
			c.mu.Unlock()
			return true
		}
		w.Error("WRONGPASS invalid username-password pair or user is disabled.")
		return false
	}
	if user != "default" || pass != c.srv.Password {
		w.Error("WRONGPASS invalid username-password pair or user is disabled.")
		return false
	}
	c.mu.Lock()
	c.authed = true
	c.mu.Unlock()
	c.rd.Authenticated = true
	return true
}

func cmdAuth(c *conn, w *resp.Writer, args []string) bool {
	if len(args) > 3 {
		w.Error("ERR syntax error")
		return false
	}
	user, pass := "default", args[len(args)-1]
	if len(args) == 3 {
		user = args[1]
	}
	if c.srv.Password == "" && len(args) == 2 {
		w.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return false
	}
	if c.checkPassword(w, user, pass) {
		w.Simple("OK")
	}
	return false
}

func cmdSelect(c *conn, w *resp.Writer, args []string) bool {
	db, ok := resp.ParseInt(args[1])
	switch {
	case !ok || db < -(1<<31) || db > 1<<31-1:
		w.Error("ERR value is not an integer or out of range")
	case db < 0 || db > 15:
		w.Error("ERR DB index is out of range")
	default:
		c.mu.Lock()
		c.db = int(db)
		c.mu.Unlock()
		w.Simple("OK")
	}
	return false
}

// validName is Redis's rule for client names: printable ASCII, no spaces.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			return false
		}
	}
	return true
}

func cmdClientSetname(c *conn, w *resp.Writer, args []string) bool {
	if !validName(args[2]) {
		w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
		return false
	}
	c.mu.Lock()
	c.name = args[2]
	c.mu.Unlock()
	w.Simple("OK")
	return false
}

func cmdClientGetname(c *conn, w *resp.Writer, _ []string) bool {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name == "" {
		w.NullBulk()
	} else {
		w.Bulk(name)
	}
	return false
}

func cmdClientID(c *conn, w *resp.Writer, _ []string) bool {
	w.Int(c.id)
	return false
}

func cmdClientSetinfo(c *conn, w *resp.Writer, args []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch lower(args[2]) {
	case "lib-name":
		c.lib[0] = args[3]
	case "lib-ver":
		c.lib[1] = args[3]
	default:
		w.Error(fmt.Sprintf("ERR Unrecognized option '%s'", args[2]))
		return false
	}
	w.Simple("OK")
	return false
}

// cmdClientKill disconnects clients: "CLIENT KILL addr:port", or filters
// (ID, TYPE, ADDR, LADDR, USER, SKIPME) answered with how many were
// killed. A client that kills itself gets its reply first, as in Redis.
func cmdClientKill(c *conn, w *resp.Writer, args []string) bool {
	others := c.srv.connections()
	if len(args) == 3 {
		for _, o := range others {
			if o.nc.RemoteAddr().String() == args[2] {
				w.Simple("OK")
				if o == c {
					return true
				}
				o.kill()
				return false
			}
		}
		w.Error("ERR No such client")
		return false
	}
	var match []func(o *conn) bool
	skipMe := true
	for i := 2; i < len(args); i += 2 {
		if i+1 == len(args) {
			w.Error("ERR syntax error")
			return false
		}
		value := args[i+1]
		switch lower(args[i]) {
		case "id":
			id, ok := resp.ParseInt(value)
			if !ok || id < 1 {
				w.Error("ERR client-id should be greater than 0")
				return false
			}
			match = append(match, func(o *conn) bool { return o.id == id })
		case "type":
			switch t := lower(value); t {
			case "normal", "pubsub":
				match = append(match, func(o *conn) bool {
					o.mu.Lock()
					defer o.mu.Unlock()
					return o.subscribedLocked() == (t == "pubsub")
				})
			case "master", "slave", "replica":
				match = append(match, func(*conn) bool { return false })
			default:
				w.Error(fmt.Sprintf("ERR Unknown client type '%s'", value))
				return false
			}
		case "addr":
			match = append(match, func(o *conn) bool { return o.nc.RemoteAddr().String() == value })
		case "laddr":
			match = append(match, func(o *conn) bool { return o.nc.LocalAddr().String() == value })
		case "user":
			match = append(match, func(*conn) bool { return value == "default" })
		case "skipme":
			switch lower(value) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				w.Error("ERR syntax error")
				return false
			}
		default:
			w.Error("ERR syntax error")
			return false
		}
	}
	killed, self := 0, false
	for _, o := range others {
		if o == c && skipMe {
			continue
		}
		if !slices.ContainsFunc(match, func(m func(*conn) bool) bool { return !m(o) }) {
			killed++
			if o == c {
				self = true
			} else {
				o.kill()
			}
		}
	}
	w.Int(int64(killed))
	return self
}

func cmdClientReply(c *conn, w *resp.Writer, args []string) bool {
	switch lower(args[2]) {
	case "on":
		c.replyMode = replyOn
		w.Simple("OK")
	case "off":
		c.replyMode = replyOff
	case "skip":
		c.replyMode = replySkipNext // and SKIP itself has no reply
	default:
		w.Error("ERR syntax error")
	}
	return false
}

// infoLine describes the connection as CLIENT LIST and CLIENT INFO do.
func (c *conn) infoLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	flags := "N"
	if c.subscribedLocked() {
		flags = "P"
	}
	cmd := c.lastCmd
	if cmd == "" {
		cmd = "NULL"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=0 name=%s age=%d idle=0 flags=%s db=%d sub=%d psub=%d ssub=%d multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=%d tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), c.name, int(time.Since(c.born).Seconds()), flags, c.db,
		len(c.channels), len(c.patterns), len(c.shard), c.out.pending(), cmd, c.proto, c.lib[0], c.lib[1])
}

func cmdClientInfo(c *conn, w *resp.Writer, _ []string) bool {
	w.Verbatim(c.infoLine() + "\n")
	return false
}

func cmdClientList(c *conn, w *resp.Writer, _ []string) bool {
	var b strings.Builder
	for _, other := range c.srv.connections() {
		b.WriteString(other.infoLine())
		b.WriteByte('\n')
	}
	w.Verbatim(b.String())
	return false
}

func cmdCommandCount(c *conn, w *resp.Writer, _ []string) bool {
	w.Int(int64(len(c.srv.table().cmds)))
	return false
}

// wanted returns the commands named in args[2:], nil for an unknown name,
// or every command when none is named.
func (t *commandTable) wanted(args []string) []*command {
	if len(args) <= 2 {
		names := slices.Sorted(maps.Keys(t.cmds))
		out := make([]*command, len(names))
		for i, n := range names {
			out[i] = t.cmds[n]
		}
		return out
	}
	out := make([]*command, 0, len(args)-2)
	for _, name := range args[2:] {
		top, sub, isSub := strings.Cut(lower(name), "|")
		cmd := t.cmds[top]
		if isSub && cmd != nil {
			cmd = cmd.subs[sub]
		}
		out = append(out, cmd)
	}
	return out
}

// cmdCommandDocs answers COMMAND DOCS: a summary, group and version of
// each command, in this project's words.
func cmdCommandDocs(c *conn, w *resp.Writer, args []string) bool {
	var found []*command
	for _, cmd := range c.srv.table().wanted(args) {
		if cmd != nil {
			found = append(found, cmd)
		}
	}
	w.Map(len(found))
	for _, cmd := range found {
		w.Bulk(cmd.name)
		n := 3
		if cmd.subs != nil {
			n++
		}
		w.Map(n)
		w.Bulk("summary")
		w.Bulk(cmd.doc.summary)
		w.Bulk("since")
		w.Bulk(cmd.doc.since)
		w.Bulk("group")
		w.Bulk(cmd.doc.group)
		if cmd.subs != nil {
			w.Bulk("subcommands")
			subs := slices.Sorted(maps.Keys(cmd.subs))
			w.Map(len(subs))
			for _, name := range subs {
				sub := cmd.subs[name]
				w.Bulk(sub.name)
				w.Map(3)
				w.Bulk("summary")
				w.Bulk(sub.doc.summary)
				w.Bulk("since")
				w.Bulk(sub.doc.since)
				w.Bulk("group")
				w.Bulk(sub.doc.group)
			}
		}
	}
	return false
}

// cmdCommandInfo answers COMMAND and COMMAND INFO in Redis 7's shape:
// name, arity, flags, key positions (none: no command takes keys), ACL
// categories, tips, key specs, subcommands. Unknown names get a null.
func cmdCommandInfo(c *conn, w *resp.Writer, args []string) bool {
	if lower(args[0]) == "command" && len(args) == 1 {
		args = []string{"command", "info"}
	}
	cmds := c.srv.table().wanted(args)
	w.Array(len(cmds))
	for _, cmd := range cmds {
		if cmd == nil {
			w.NullArray()
			continue
		}
		writeCommandInfo(w, cmd)
	}
	return false
}

func writeCommandInfo(w *resp.Writer, cmd *command) {
	flags := []string{"fast"}
	switch {
	case cmd.pubsub && cmd.doc.group == "pubsub":
		flags = []string{"pubsub", "noscript", "loading", "stale"}
	case cmd.noAuth:
		flags = []string{"noscript", "loading", "stale", "no-auth", "fast"}
	}
	w.Array(10)
	w.Bulk(cmd.name)
	w.Int(int64(cmd.arity))
	w.Set(len(flags))
	for _, f := range flags {
		w.Simple(f)
	}
	w.Int(0)
	w.Int(0)
	w.Int(0)
	w.Set(1)
	w.Simple("@" + cmd.doc.group)
	w.Set(0) // tips
	w.Array(0)
	subs := slices.Sorted(maps.Keys(cmd.subs))
	w.Array(len(subs))
	for _, name := range subs {
		writeCommandInfo(w, cmd.subs[name])
	}
}

func cmdConfigGet(c *conn, w *resp.Writer, args []string) bool {
	lim := c.srv.limits.Load()
	params := [][2]string{
		{"databases", "16"},
		{"maxclients", strconv.Itoa(lim.maxClients)},
		{"timeout", strconv.Itoa(int(lim.idleTimeout.Seconds()))},
		{"client-output-buffer-limit", "normal " + outputLimitText(lim.output[classNormal]) + " slave 268435456 67108864 60 pubsub " + outputLimitText(lim.output[classPubSub])},
		{"notify-keyspace-events", ""},
	}
	// As Redis's configGetCommand: a name without glob characters is looked
	// up (case-insensitively) and echoed as the client wrote it; a pattern
	// matches in nocase mode and yields the parameters' own names; a
	// parameter is listed once, under the first spelling that found it.
	var match [][2]string
	seen := func(name string) bool {
		return slices.ContainsFunc(match, func(m [2]string) bool { return strings.EqualFold(m[0], name) })
	}
	for _, pattern := range args[2:] {
		if !strings.ContainsAny(pattern, "[*?") {
			if i := slices.IndexFunc(params, func(p [2]string) bool { return strings.EqualFold(p[0], pattern) }); i >= 0 && !seen(pattern) {
				match = append(match, [2]string{pattern, params[i][1]})
			}
			continue
		}
		for _, p := range params {
			if !seen(p[0]) && pubsub.MatchFold(pattern, p[0]) {
				match = append(match, p)
			}
		}
	}
	w.Map(len(match))
	for _, p := range match {
		w.Bulk(p[0])
		w.Bulk(p[1])
	}
	return false
}

// outputLimitText writes one class's limit as CONFIG GET does.
func outputLimitText(l OutputLimit) string {
	return fmt.Sprintf("%d %d %d", max(l.Hard, 0), max(l.Soft, 0), int(l.SoftPeriod.Seconds()))
}

func cmdInfo(c *conn, w *resp.Writer, args []string) bool {
	st := c.srv.broker.Stats()
	c.srv.mu.Lock()
	clients := len(c.srv.conns)
	c.srv.mu.Unlock()
	sections := map[string]string{
		"server": fmt.Sprintf("# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\nos:go\r\narch_bits:64\r\nprocess_id:0\r\ntcp_port:%d\r\nuptime_in_seconds:%d\r\nuptime_in_days:%d\r\n",
			redisVersion, portOf(c.nc.LocalAddr()), int(time.Since(c.srv.started).Seconds()), int(time.Since(c.srv.started).Hours()/24)),
		"clients": fmt.Sprintf("# Clients\r\nconnected_clients:%d\r\nmaxclients:%d\r\npubsub_clients:%d\r\n",
			clients, c.srv.limits.Load().maxClients, st.Subscriptions),
		"stats": fmt.Sprintf("# Stats\r\ntotal_connections_received:%d\r\ntotal_commands_processed:%d\r\nrejected_connections:%d\r\npubsub_channels:%d\r\npubsub_patterns:%d\r\npubsubshard_channels:%d\r\npubsub_messages_published:%d\r\npubsub_messages_delivered:%d\r\npubsub_messages_dropped:%d\r\n",
			c.srv.stats.connections.Load(), c.srv.stats.commands.Load(), c.srv.stats.rejected.Load(),
			st.Channels, st.Patterns, st.ShardChannels, st.Published, st.Delivered, st.Dropped),
	}
	order := []string{"server", "clients", "stats"}
	want := order
	if len(args) > 1 {
		want = nil
		for _, a := range args[1:] {
			switch s := lower(a); s {
			case "all", "everything", "default":
				want = order
			default:
				if _, ok := sections[s]; ok && !slices.Contains(want, s) {
					want = append(want, s)
				}
			}
		}
	}
	var b strings.Builder
	for i, s := range want {
		if i > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString(sections[s])
	}
	w.Verbatim(b.String())
	return false
}

// portOf returns the TCP port of a, or 0 for other kinds of address.
func portOf(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}

// transactions

func cmdMulti(c *conn, w *resp.Writer, _ []string) bool {
	if c.multi != nil {
		w.Error("ERR MULTI calls can not be nested")
		return false
	}
	c.multi = &multiState{}
	w.Simple("OK")
	return false
}

func cmdDiscard(c *conn, w *resp.Writer, _ []string) bool {
	if c.multi == nil {
		w.Error("ERR DISCARD without MULTI")
		return false
	}
	c.multi = nil
	w.Simple("OK")
	return false
}

func cmdExec(c *conn, w *resp.Writer, _ []string) bool {
	if c.multi == nil {
		w.Error("ERR EXEC without MULTI")
		return false
	}
	m := c.multi
	c.multi = nil
	if m.failed {
		w.Error("EXECABORT Transaction discarded because of previous errors.")
		return false
	}
	// Each queued command's reply is queued as soon as it is made, after
	// the array header: the subscribe commands queue theirs themselves.
	w.Array(len(m.queued))
	c.flushReply(w)
	w.Buf = w.Buf[:0]
	for _, args := range m.queued {
		quit := c.dispatch(w, args)
		c.flushReply(w)
		w.Buf = w.Buf[:0]
		if quit {
			return true
		}
	}
	return false
}
