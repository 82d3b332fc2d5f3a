package server

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// The connection commands: what clients send on their own, before and
// between Pub/Sub commands.

func connectionCommands() []*command {
	const g = "connection"
	return []*command{
		{name: "ping", arity: -1, pubsub: true, run: cmdPing, group: g, since: "1.0.0",
			summary: "Check the connection; echoes an optional message."},
		{name: "echo", arity: 2, run: cmdEcho, group: g, since: "1.0.0",
			summary: "Return the given string."},
		{name: "quit", arity: -1, noAuth: true, pubsub: true, noQueue: true, run: cmdQuit, group: g, since: "1.0.0",
			summary: "Close the connection once the reply is sent."},
		{name: "reset", arity: 1, noAuth: true, pubsub: true, noQueue: true, run: cmdReset, group: g, since: "6.2.0",
			summary: "Return the connection to its initial state."},
		{name: "hello", arity: -1, noAuth: true, run: cmdHello, group: g, since: "6.0.0",
			summary: "Choose the protocol version, authenticate and name the connection."},
		{name: "auth", arity: -2, noAuth: true, run: cmdAuth, group: g, since: "1.0.0",
			summary: "Authenticate the connection."},
		{name: "select", arity: 2, run: cmdSelect, group: g, since: "1.0.0",
			summary: "Choose a database number (there is no data to select)."},
		container("client", "Manage client connections.", g, "2.4.0",
			&command{name: "client|setname", arity: 3, run: cmdClientSetname, since: "2.6.9",
				summary: "Name the connection."},
			&command{name: "client|getname", arity: 2, run: cmdClientGetname, since: "2.6.9",
				summary: "Return the connection's name."},
			&command{name: "client|id", arity: 2, run: cmdClientID, since: "5.0.0",
				summary: "Return the connection's id."},
			&command{name: "client|setinfo", arity: 4, run: cmdClientSetinfo, since: "7.2.0",
				summary: "Record the client library's name or version."},
			&command{name: "client|info", arity: 2, run: cmdClientInfo, since: "6.2.0",
				summary: "Describe this connection."},
			&command{name: "client|list", arity: -2, run: cmdClientList, since: "2.4.0",
				summary: "Describe every connection."},
			&command{name: "client|reply", arity: 3, run: cmdClientReply, since: "3.2.0",
				summary: "Turn the server's replies on or off for this connection."},
			&command{name: "client|kill", arity: -3, run: cmdClientKill, since: "2.4.0",
				summary: "Close the connections matching the given filters."},
			&command{name: "client|no-evict", arity: 3, run: cmdOKOnOff, since: "7.0.0",
				summary: "Accepted for compatibility; nothing is evicted."},
			&command{name: "client|tracking", arity: -3, run: cmdClientTracking, since: "6.0.0",
				summary: "Turn client-side caching's tracking on or off (no key is ever invalidated but by FLUSHALL)."},
			&command{name: "client|caching", arity: 3, run: cmdClientCaching, since: "6.0.0",
				summary: "Track the keys of the next command, in OPTIN or OPTOUT mode."},
			&command{name: "client|getredir", arity: 2, run: cmdClientGetredir, since: "6.0.0",
				summary: "Return the client id invalidations are redirected to."},
			&command{name: "client|trackinginfo", arity: 2, run: cmdClientTrackinginfo, since: "6.2.0",
				summary: "Describe the connection's tracking state."},
			&command{name: "client|pause", arity: -3, run: cmdClientPause, since: "3.0.0",
				summary: "Hold back every client's commands, or only PUBLISH and the others that write, for a time."},
			&command{name: "client|unpause", arity: 2, run: cmdClientUnpause, since: "6.2.0",
				summary: "End a pause at once."},
		),
	}
}

func cmdPing(c *conn, w *resp.Writer, args []string) {
	if len(args) > 2 {
		w.Error("ERR wrong number of arguments for 'ping' command")
		return
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
}

func cmdEcho(c *conn, w *resp.Writer, args []string) {
	w.Bulk(args[1])
}

func cmdQuit(c *conn, w *resp.Writer, _ []string) {
	w.Simple("OK")
	c.quit = true
}

func cmdOK(c *conn, w *resp.Writer, _ []string) {
	w.Simple("OK")
}

func cmdOKOnOff(c *conn, w *resp.Writer, args []string) {
	switch lower(args[2]) {
	case "on", "off":
		w.Simple("OK")
	default:
		w.Error("ERR syntax error")
	}
}

func cmdReset(c *conn, w *resp.Writer, _ []string) {
	c.mu.Lock()
	sub := c.sub
	c.sub, c.subCount, c.shardCount = nil, 0, 0
	c.proto = c.srv.firstProtocol()
	c.name, c.db = "", 0
	c.track = tracking{}
	c.mu.Unlock()
	c.startAs(c.srv.acl.def)
	if sub != nil {
		_ = sub.Close()
	}
	c.setMulti(nil)
	c.replyMode, c.caching = replyOn, false
	w.Proto = c.srv.firstProtocol()
	w.Simple("RESET")
}

func cmdHello(c *conn, w *resp.Writer, args []string) {
	proto := 0
	if len(args) > 1 {
		v, ok := resp.ParseInt(args[1])
		if !ok {
			w.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if (v != 2 && v != 3) || (c.srv.Protocol != 0 && int(v) != c.srv.Protocol) {
			w.Error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}
	var setName *string
	for i := 2; i < len(args); i++ {
		more := len(args) - i - 1
		switch opt := lower(args[i]); {
		case opt == "auth" && more >= 2:
			if !c.checkPassword(w, args[0], args[i+1], args[i+2], argvMem(args)) {
				return
			}
			i += 2
		case opt == "setname" && more >= 1:
			name := args[i+1]
			setName = &name
			i++
		default:
			w.Error(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
			return
		}
	}
	if c.authRequired() {
		w.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName != nil {
		if !validName(*setName) {
			w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		c.name = strings.Clone(*setName) // kept: not the command's memory
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
}

// checkPassword authenticates the connection as user, or queues Redis's
// error.
func (c *conn) checkPassword(w *resp.Writer, object, user, pass string, argv int) bool {
	if !c.authenticate(object, user, pass, argv) {
		w.Error("WRONGPASS invalid username-password pair or user is disabled.")
		return false
	}
	return true
}

func cmdAuth(c *conn, w *resp.Writer, args []string) {
	if len(args) > 3 {
		w.Error("ERR syntax error")
		return
	}
	user, pass := "default", args[len(args)-1]
	if len(args) == 3 {
		user = args[1]
	}
	if c.srv.acl.def.flags&userNopass != 0 && len(args) == 2 {
		w.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	if c.checkPassword(w, args[0], user, pass, argvMem(args)) {
		w.Simple("OK")
	}
}

func cmdSelect(c *conn, w *resp.Writer, args []string) {
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

func cmdClientSetname(c *conn, w *resp.Writer, args []string) {
	if !validName(args[2]) {
		w.Error("ERR Client names cannot contain spaces, newlines or special characters.")
		return
	}
	c.mu.Lock()
	c.name = strings.Clone(args[2]) // kept: not the command's memory
	c.mu.Unlock()
	w.Simple("OK")
}

func cmdClientGetname(c *conn, w *resp.Writer, _ []string) {
	c.mu.Lock()
	name := c.name
	c.mu.Unlock()
	if name == "" {
		w.NullBulk()
	} else {
		w.Bulk(name)
	}
}

func cmdClientID(c *conn, w *resp.Writer, _ []string) {
	w.Int(c.id)
}

func cmdClientSetinfo(c *conn, w *resp.Writer, args []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch lower(args[2]) {
	case "lib-name":
		c.lib[0] = strings.Clone(args[3])
	case "lib-ver":
		c.lib[1] = strings.Clone(args[3])
	default:
		w.Error(fmt.Sprintf("ERR Unrecognized option '%s'", args[2]))
		return
	}
	w.Simple("OK")
}

// cmdClientKill disconnects clients: "CLIENT KILL addr:port", or filters
// (ID, TYPE, ADDR, LADDR, USER, SKIPME) answered with how many were
// killed. A client that kills itself gets its reply first, as in Redis.
func cmdClientKill(c *conn, w *resp.Writer, args []string) {
	others := c.srv.connections()
	if len(args) == 3 {
		for _, o := range others {
			if o.nc.RemoteAddr().String() == args[2] {
				w.Simple("OK")
				if o == c {
					c.endedBecause(Killed)
					c.quit = true
					return
				}
				o.drop()
				return
			}
		}
		w.Error("ERR No such client")
		return
	}
	var match []func(o *conn) bool
	skipMe := true
	for i := 2; i < len(args); i += 2 {
		if i+1 == len(args) {
			w.Error("ERR syntax error")
			return
		}
		value := args[i+1]
		switch lower(args[i]) {
		case "id":
			id, ok := resp.ParseInt(value)
			if !ok || id < 1 {
				w.Error("ERR client-id should be greater than 0")
				return
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
				return
			}
		case "addr":
			match = append(match, func(o *conn) bool { return o.nc.RemoteAddr().String() == value })
		case "laddr":
			match = append(match, func(o *conn) bool { return o.nc.LocalAddr().String() == value })
		case "user":
			if c.srv.acl.users[value] == nil {
				w.Error(fmt.Sprintf("ERR No such user '%s'", value))
				return
			}
			match = append(match, func(o *conn) bool { return o.userName() == value })
		case "skipme":
			switch lower(value) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				w.Error("ERR syntax error")
				return
			}
		default:
			w.Error("ERR syntax error")
			return
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
				c.endedBecause(Killed)
				self = true
			} else {
				o.drop()
			}
		}
	}
	w.Int(int64(killed))
	c.quit = self
}

func cmdClientReply(c *conn, w *resp.Writer, args []string) {
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
}

// infoLine describes the connection as CLIENT LIST and CLIENT INFO do,
// with redis-server 7.0's fields in its order. Where the figure is about
// Redis's own structures, ours stands in for it: rbs is the read buffer
// held (a client idle between commands holds none), omem the output
// queued and oll the chunks it is queued in, tot-mem the connection's
// structure, read buffer, output and argv-mem. argv-mem is that of the
// command running, which only the client asking knows of itself, or of
// a command blocked in WAIT (Redis frees a client's arguments between its
// commands).
func (c *conn) infoLine(argvMem int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Redis's order: P (subscribed), x (in MULTI), b (blocked), then the
	// tracking flags.
	flags := ""
	if c.subscribedLocked() {
		flags += "P"
	}
	multi := c.multiQueued.Load()
	if multi >= 0 {
		flags += "x"
	}
	if c.blocked.Load() != notBlocked {
		flags += "b"
	}
	flags += c.track.listFlags()
	if flags == "" {
		flags = "N"
	}
	redir := int64(-1)
	if c.track.on {
		redir = c.track.redirect
	}
	cmd := c.lastCmd
	if cmd == "" {
		cmd = "NULL"
	}
	var st pubsub.SubscriptionStats
	if c.sub != nil {
		st = c.sub.Stats()
	}
	if argvMem == 0 {
		argvMem = int(c.blockedArgv.Load())
	}
	qbuf, rbs := c.queryBuffered.Load(), c.readBufferHeld.Load()
	omem := c.out.pending()
	events := "r"
	if omem > 0 {
		events = "rw"
	}
	totMem := int64(unsafe.Sizeof(*c)) + rbs + omem + int64(argvMem) + c.multiMem.Load()
	now := time.Now()
	if c.addrText == "" { // the addresses never change: formatted once
		c.addrText, c.laddrText = c.nc.RemoteAddr().String(), c.nc.LocalAddr().String()
	}
	// Appended rather than formatted: ACL LOG takes a failing client's
	// line on every failed AUTH, and fmt cost most of that.
	b := make([]byte, 0, 384)
	field := func(name string, n int64) {
		b = append(b, name...)
		b = strconv.AppendInt(b, n, 10)
	}
	field("id=", c.id)
	b = append(b, " addr="...)
	b = append(b, c.addrText...)
	b = append(b, " laddr="...)
	b = append(b, c.laddrText...)
	field(" fd=", int64(c.fd))
	b = append(b, " name="...)
	b = append(b, c.name...)
	field(" age=", int64(now.Sub(c.born).Seconds()))
	field(" idle=", int64(now.Sub(time.Unix(0, c.lastIO.Load())).Seconds()))
	b = append(b, " flags="...)
	b = append(b, flags...)
	field(" db=", int64(c.db))
	field(" sub=", int64(st.Channels))
	field(" psub=", int64(st.Patterns))
	field(" ssub=", int64(st.ShardChannels))
	field(" multi=", multi)
	field(" qbuf=", qbuf)
	field(" qbuf-free=", max(rbs-qbuf, 0))
	field(" argv-mem=", int64(argvMem))
	field(" multi-mem=", c.multiMem.Load())
	field(" rbs=", rbs)
	field(" rbp=", rbs)
	b = append(b, " obl=0"...)
	field(" oll=", int64(len(c.out.chunks)))
	field(" omem=", omem)
	field(" tot-mem=", totMem)
	b = append(b, " events="...)
	b = append(b, events...)
	b = append(b, " cmd="...)
	b = append(b, cmd...)
	b = append(b, " user="...)
	b = append(b, c.userName()...)
	field(" redir=", redir)
	field(" resp=", int64(c.proto))
	return string(b)
}

// argvMem is what Redis counts as the memory of a command's arguments:
// their lengths.
func argvMem(args []string) int {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	return n
}

func cmdClientInfo(c *conn, w *resp.Writer, args []string) {
	w.Verbatim(c.infoLine(argvMem(args)) + "\n")
}

func cmdClientList(c *conn, w *resp.Writer, args []string) {
	var b strings.Builder
	for _, other := range c.srv.connections() {
		mem := 0
		if other == c {
			mem = argvMem(args)
		}
		b.WriteString(other.infoLine(mem))
		b.WriteByte('\n')
	}
	w.Verbatim(b.String())
}
