package server

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// This file is the dispatch table. Each command group has a file of its
// own (cmd_pubsub.go, cmd_connection.go, cmd_server.go, cmd_multi.go) with
// one table entry per command: its arity, flags, documentation and, for
// commands that differ by namespace only, the namespace.

// The version this server answers as, for clients that check it.
const redisVersion = "7.0.15"

// command is one entry of the dispatch table.
type command struct {
	name    string // full name, as Redis reports it: "subscribe", "client|setname"
	arity   int    // as Redis: n exactly, or -n for at least n
	noAuth  bool   // allowed before authentication
	pubsub  bool   // allowed in RESP2 subscribed mode
	noQueue bool   // runs at once inside MULTI (EXEC, DISCARD, MULTI, QUIT, RESET)
	// writes: what Redis's CLIENT PAUSE WRITE holds back (its write and
	// may-replicate commands: PUBLISH, SPUBLISH, FLUSHALL, ...).
	writes bool
	// unsupported: a Redis command this server does not serve, made for
	// one call; it has no figures in INFO commandstats.
	unsupported bool
	stats       *cmdStats // INFO commandstats, made on first use; the loop's
	// ns is the namespace of a command that exists once per namespace
	// (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE; PUBLISH, SPUBLISH; ...).
	ns pubsub.Namespace
	// run answers the command in w. A command that ends the connection
	// sets c.quit.
	run  func(c *conn, w *resp.Writer, args []string)
	subs map[string]*command // for containers: PUBSUB, CLIENT, COMMAND, CONFIG
	// unserved are the subcommands Redis has and a container here does
	// not serve (FUNCTION LOAD): they get the Pub/Sub-only error, not
	// "unknown subcommand".
	unserved []string
	// acl is the command as ACL rules name it, for the permission check.
	acl *aclCommand

	// What COMMAND DOCS and COMMAND INFO say of it, in this project's
	// words.
	summary, group, since string
}

// commandTable is built per server; register panics on a duplicate, a
// programming error.
type commandTable struct {
	cmds      map[string]*command
	redisKnow map[string]bool // Redis command name -> is a container
	// renamedFrom maps a name rename-command gave a command this server
	// does not serve to the command's own.
	renamedFrom map[string]string
}

// own returns the name a command is known by to Redis's tables (its own,
// whatever rename-command made of it), or "" if there is no such command
// under name now.
func (t *commandTable) own(name string) string {
	if cmd := findFold(t.cmds, name); cmd != nil {
		return cmd.name
	}
	name = lower(name)
	if from, ok := t.renamedFrom[name]; ok {
		return from
	}
	if _, ok := t.redisKnow[name]; ok {
		return name
	}
	return ""
}

func (t *commandTable) register(c *command) {
	if _, dup := t.cmds[c.name]; dup {
		panic("server: command registered twice: " + c.name)
	}
	t.cmds[c.name] = c
}

// container is a command with subcommands, such as CLIENT.
func container(name, summary, group, since string, subs ...*command) *command {
	c := &command{name: name, arity: -2, subs: map[string]*command{}, summary: summary, group: group, since: since}
	for _, s := range subs {
		if _, dup := c.subs[strings.TrimPrefix(s.name, name+"|")]; dup {
			panic("server: subcommand registered twice: " + s.name)
		}
		c.subs[strings.TrimPrefix(s.name, name+"|")] = s
		s.group = group
	}
	if _, ok := c.subs["help"]; !ok {
		c.subs["help"] = &command{name: name + "|help", arity: 2, group: group, since: "5.0.0",
			summary: "Describe the " + strings.ToUpper(name) + " subcommands.",
			run:     func(_ *conn, w *resp.Writer, _ []string) { writeHelp(w, helpLines(c)) }}
	}
	return c
}

// helpLines are a container's HELP: each subcommand it serves and what it
// does, in this project's words.
func helpLines(c *command) []string {
	lines := []string{strings.ToUpper(c.name) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"}
	for _, name := range slices.Sorted(maps.Keys(c.subs)) {
		if name != "help" {
			lines = append(lines, strings.ToUpper(name), "    "+c.subs[name].summary)
		}
	}
	return append(lines, "HELP", "    Print this help.")
}

func newCommandTable() *commandTable {
	t := &commandTable{cmds: map[string]*command{}, redisKnow: redisCommands()}
	for _, group := range [][]*command{pubsubCommands(), connectionCommands(), serverCommands(), multiCommands(), aclCommands()} {
		for _, c := range group {
			t.register(c)
			c.acl = aclTable().byName[c.name]
			for _, sub := range c.subs {
				sub.acl = aclTable().byName[sub.name]
			}
		}
	}
	return t
}

// run executes one command and queues its reply. It reports whether the
// connection should close once the reply is written.
func (c *conn) run(args []string) (quit bool) {
	w := &c.reply // reused: a reply is copied into the output queue
	w.Buf = w.Buf[:0]
	c.dispatch(w, args)
	c.flushReply(w)
	if c.invalidateAfterReply {
		c.invalidateAfterReply = false
		c.invalidateAll()
	}
	// CLIENT CACHING applies to the command after it: Redis clears the flag
	// after any command but CLIENT ones, outside MULTI.
	if c.caching && c.multi == nil && !strings.EqualFold(args[0], "client") {
		c.caching = false
	}
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
	quit, c.quit = c.quit, false
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
	c.appendLocked(w.Buf) // the loop writes it before it waits again
	c.mu.Unlock()
}

func (c *conn) dispatch(w *resp.Writer, args []string) {
	start := len(w.Buf)
	c.runOne(w, args, start)
	if len(w.Buf) > start && w.Buf[start] == '-' {
		c.srv.countError(w.Buf[start:])
	}
}

// runOne runs one command, or refuses it, writing its reply after
// w.Buf[:start].
func (c *conn) runOne(w *resp.Writer, args []string, start int) {
	cmd, errMsg := c.lookup(args)
	if errMsg != "" {
		if cmd != nil {
			c.rejectedCall(cmd)
		}
		w.Proto = c.protoNow()
		c.failMulti()
		w.Error(errMsg)
		return
	}
	// The loop alone writes these: it reads them without mu.
	proto, subscribed := c.proto, c.subscribedLocked()
	// As Redis's lastcmd: EXEC's, not its queued commands'.
	if !c.inExec && c.lastCmd != cmd.name {
		c.mu.Lock()
		c.lastCmd = cmd.name
		c.mu.Unlock()
	}
	w.Proto = proto
	if c.authRequired() && !cmd.noAuth {
		c.rejectedCall(cmd)
		c.failMulti()
		w.Error("NOAUTH Authentication required.")
		return
	}
	switch denied := c.permitted(cmd, args); {
	case denied != "":
		c.rejectedCall(cmd)
		c.failMulti()
		w.Error(denied)
	case proto == 2 && subscribed && !cmd.pubsub:
		c.rejectedCall(cmd)
		c.failMulti()
		w.Error(fmt.Sprintf("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", cmd.name))
	default:
		if c.heldByPause(cmd, args) {
			return
		}
		if c.multi != nil && !cmd.noQueue {
			c.queueInMulti(args)
			w.Simple("QUEUED")
			return
		}
		c.cmd = cmd
		began := c.ranUntil
		if began == 0 {
			began = c.srv.monotonic()
		}
		cmd.run(c, w, args)
		ended := c.srv.monotonic()
		if !cmd.unsupported {
			c.ran(cmd, ended-began, len(w.Buf) > start && w.Buf[start] == '-')
		}
		c.ranUntil = ended
		c.cmd = nil
	}
}

// rejectedCall counts a call of cmd refused before it ran.
func (c *conn) rejectedCall(cmd *command) {
	if !cmd.unsupported {
		c.rejected(cmd)
	}
}

func (c *conn) failMulti() {
	if c.multi != nil {
		c.multi.failed = true
	}
}

// lookup finds the command for args, or returns Redis's error for an
// unknown command, an unknown subcommand or a wrong number of arguments.
func (t *commandTable) lookup(args []string) (*command, string) {
	return t.resolve(findFold(t.cmds, args[0]), args)
}

// resolve is lookup's work once the table's entry for args[0] is found
// (nil: none).
func (t *commandTable) resolve(cmd *command, args []string) (*command, string) {
	name := ""
	if cmd == nil {
		name = lower(args[0])
	}
	if cmd == nil {
		if isContainer, known := t.redisKnow[name]; known {
			if isContainer && len(args) > 1 {
				name += "|" + lower(args[1])
			}
			return &command{name: name, arity: -1, run: cmdUnsupported, unsupported: true}, ""
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
		if sub == nil && slices.Contains(cmd.unserved, lower(args[1])) {
			return &command{name: cmd.name + "|" + lower(args[1]), arity: -1, run: cmdUnsupported, unsupported: true}, ""
		}
		if sub == nil {
			return nil, sanitize(fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", args[1], strings.ToUpper(args[0])))
		}
		cmd = sub
	}
	return cmd, cmd.arityError(args)
}

// arityError is the error for a call of cmd with the wrong number of
// arguments (a rejected call of cmd), or "".
func (cmd *command) arityError(args []string) string {
	if (cmd.arity > 0 && len(args) != cmd.arity) || len(args) < -cmd.arity {
		return fmt.Sprintf("ERR wrong number of arguments for '%s' command", cmd.name)
	}
	return ""
}

// lookup is the table's lookup, remembering the last command the client
// named, as it named it: a pipeline names one command over and over, and
// comparing a few bytes costs less than a map's hash.
func (c *conn) lookup(args []string) (*command, string) {
	t := c.srv.table()
	top := c.looked
	if top == nil || args[0] != c.lookedAs {
		top = findFold(t.cmds, args[0])
		if top != nil {
			c.looked, c.lookedAs = top, strings.Clone(args[0]) // not the command's whole text
		}
	}
	return t.resolve(top, args)
}

// cmdUnsupported answers a Redis command this server does not serve. It
// runs after the checks every command goes through, so in RESP2 subscribed
// mode the client gets Redis's own error first.
func cmdUnsupported(c *conn, w *resp.Writer, args []string) {
	w.Error(fmt.Sprintf("ERR unsupported command '%s': this server speaks Redis Pub/Sub only", sanitize(lower(args[0]))))
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

// subcommandSyntaxError answers a subcommand given the wrong arguments
// as Redis's addReplySubcommandSyntaxError does.
func subcommandSyntaxError(w *resp.Writer, container, sub string) {
	w.Error(sanitize(fmt.Sprintf("ERR unknown subcommand or wrong number of arguments for '%.128s'. Try %s HELP.", sub, container)))
}

// sanitize replaces line breaks, which an error reply cannot carry, with
// spaces, as Redis does.
func sanitize(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func (s *Server) table() *commandTable {
	s.tableOnce.Do(func() {
		t := newCommandTable()
		if s.Config != nil {
			for _, r := range s.Config.renames {
				t.rename(r[0], r[1]) // checked when the configuration was read
			}
		}
		s.commands = t
	})
	return s.commands
}

// rename is redis.conf's rename-command: the command is known by its new
// name only (none if to is empty); ACL rules, CLIENT LIST and the
// statistics still name it by its own. It returns Redis's reason to
// refuse it, or "".
func (t *commandTable) rename(from, to string) string {
	from, to = lower(from), lower(to)
	cmd, served := t.cmds[from]
	isContainer, known := t.redisKnow[from]
	if !served && !known {
		return "No such command in rename-command"
	}
	delete(t.cmds, from)
	delete(t.redisKnow, from)
	if to == "" {
		return ""
	}
	if _, taken := t.cmds[to]; taken {
		return "Target command name already exists"
	}
	if _, taken := t.redisKnow[to]; taken {
		return "Target command name already exists"
	}
	if served {
		t.cmds[to] = cmd
	} else {
		t.redisKnow[to] = isContainer
		if t.renamedFrom == nil {
			t.renamedFrom = map[string]string{}
		}
		own := from
		if o, ok := t.renamedFrom[from]; ok {
			own = o
			delete(t.renamedFrom, from)
		}
		t.renamedFrom[to] = own
	}
	return ""
}
