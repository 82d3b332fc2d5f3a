package server

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// The server commands: introspection and configuration.

func serverCommands() []*command {
	const g = "server"
	cmd := &command{name: "command", arity: -1, run: cmdCommandInfo, subs: map[string]*command{}} // COMMAND alone is a command too
	*cmd = *container("command", "Describe the commands this server serves.", g, "2.8.13",
		&command{name: "command|count", arity: 2, run: cmdCommandCount, since: "2.8.13",
			summary: "Count the commands this server serves."},
		&command{name: "command|docs", arity: -2, run: cmdCommandDocs, since: "7.0.0",
			summary: "Document the given commands, or all of them."},
		&command{name: "command|info", arity: -2, run: cmdCommandInfo, since: "2.8.13",
			summary: "Describe the given commands, or all of them."},
	)
	cmd.arity, cmd.run = -1, cmdCommandInfo
	return []*command{
		cmd,
		container("config", "Read and change the server's configuration.", g, "2.0.0",
			&command{name: "config|get", arity: -3, run: cmdConfigGet, since: "2.0.0",
				summary: "Return the configuration parameters matching the given patterns."},
			&command{name: "config|set", arity: -4, run: cmdConfigSet, since: "2.0.0",
				summary: "Set configuration parameters, all or none: those that mean something here take effect at once."},
			&command{name: "config|resetstat", arity: 2, run: cmdConfigResetStat, since: "2.0.0",
				summary: "Reset the figures INFO reports."},
			&command{name: "config|rewrite", arity: 2, run: cmdConfigRewrite, since: "2.8.0",
				summary: "Refused: there is no configuration file."},
			&command{name: "config|help", arity: 2, run: cmdConfigHelp, since: "5.0.0",
				summary: "Describe the CONFIG subcommands."},
		),
		{name: "info", arity: -1, run: cmdInfo, group: g, since: "1.0.0",
			summary: "Report the server's state and figures."},
		{name: "dbsize", arity: 1, run: func(c *conn, w *resp.Writer, _ []string) { w.Int(0) }, group: g, since: "1.0.0",
			summary: "Always 0: this server holds no keys."},
		{name: "flushdb", arity: -1, writes: true, run: cmdFlush, group: g, since: "1.0.0",
			summary: "No keys to remove; tells tracking clients that everything is invalidated."},
		{name: "flushall", arity: -1, writes: true, run: cmdFlush, group: g, since: "1.0.0",
			summary: "No keys to remove; tells tracking clients that everything is invalidated."},
		unserved(container("function", "Functions: there are none, and none can be loaded.", "scripting", "7.0.0",
			&command{name: "function|flush", arity: -2, writes: true, run: cmdFunctionFlush, since: "7.0.0",
				summary: "Accepted: there are no libraries to delete."},
			&command{name: "function|list", arity: -2, run: cmdFunctionList, since: "7.0.0",
				summary: "Always empty: there are no libraries."},
			&command{name: "function|kill", arity: 2, run: cmdNotBusy, since: "7.0.0",
				summary: "Nothing is ever running."},
			&command{name: "function|stats", arity: 2, run: cmdFunctionStats, since: "7.0.0",
				summary: "No function running, no library loaded."},
		), "delete", "dump", "load", "restore"),
		unserved(container("script", "Scripts: there are none, and none can be loaded.", "scripting", "2.6.0",
			&command{name: "script|flush", arity: -2, run: cmdScriptFlush, since: "2.6.0",
				summary: "Accepted: there are no scripts to remove."},
			&command{name: "script|kill", arity: 2, run: cmdNotBusy, since: "2.6.0",
				summary: "Nothing is ever running."},
			&command{name: "script|exists", arity: -3, run: cmdScriptExists, since: "2.6.0",
				summary: "0 for every SHA1: no script is cached."},
		), "debug", "load"),
		{name: "time", arity: 1, run: cmdTime, group: g, since: "2.6.0",
			summary: "Return the server's time: seconds and microseconds."},
		{name: "lastsave", arity: 1, run: cmdLastsave, group: g, since: "1.0.0",
			summary: "Return when the server started: nothing is ever saved."},
		{name: "role", arity: 1, run: cmdRole, group: g, since: "2.8.12",
			summary: "Always a master with no replicas."},
		{name: "wait", arity: 3, run: cmdWait, group: "generic", since: "3.0.0",
			summary: "Wait for replicas, of which there are none: 0, at once or after the timeout."},
		{name: "debug", arity: -2, run: cmdDebug, group: g, since: "1.0.0",
			summary: "Refused, as Redis refuses it under its default enable-debug-command no."},
	}
}

// unserved marks the subcommands Redis has beside those c serves.
func unserved(c *command, names ...string) *command {
	c.unserved = names
	return c
}

func cmdFunctionFlush(c *conn, w *resp.Writer, args []string) {
	switch {
	case len(args) > 3:
		subcommandSyntaxError(w, "FUNCTION", args[1])
	case len(args) == 3 && lower(args[2]) != "sync" && lower(args[2]) != "async":
		w.Error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
	default:
		w.Simple("OK")
	}
}

func cmdFunctionList(c *conn, w *resp.Writer, args []string) {
	withCode, libraryName := false, false
	for i := 2; i < len(args); i++ {
		switch a := lower(args[i]); {
		case !withCode && a == "withcode":
			withCode = true
		case !libraryName && a == "libraryname":
			if i >= len(args)-1 {
				w.Error("ERR library name argument was not given")
				return
			}
			libraryName = true
			i++
		default:
			w.Error(sanitize("ERR Unknown argument " + args[i]))
			return
		}
	}
	w.Array(0)
}

func cmdFunctionStats(c *conn, w *resp.Writer, _ []string) {
	w.Map(2)
	w.Bulk("running_script")
	w.NullBulk()
	w.Bulk("engines")
	w.Map(1)
	w.Bulk("LUA")
	w.Map(2)
	w.Bulk("libraries_count")
	w.Int(0)
	w.Bulk("functions_count")
	w.Int(0)
}

func cmdNotBusy(c *conn, w *resp.Writer, _ []string) {
	w.Error("NOTBUSY No scripts in execution right now.")
}

func cmdScriptFlush(c *conn, w *resp.Writer, args []string) {
	if len(args) > 3 || len(args) == 3 && lower(args[2]) != "sync" && lower(args[2]) != "async" {
		w.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
		return
	}
	w.Simple("OK")
}

func cmdScriptExists(c *conn, w *resp.Writer, args []string) {
	w.Array(len(args) - 2)
	for range args[2:] {
		w.Int(0)
	}
}

func cmdTime(c *conn, w *resp.Writer, _ []string) {
	now := time.Now()
	w.Array(2)
	w.Bulk(strconv.FormatInt(now.Unix(), 10))
	w.Bulk(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

func cmdLastsave(c *conn, w *resp.Writer, _ []string) {
	w.Int(c.srv.started.Unix()) // Redis sets it when it starts and on each save
}

func cmdRole(c *conn, w *resp.Writer, _ []string) {
	w.Array(3)
	w.Bulk("master")
	w.Int(0) // the replication offset
	w.Array(0)
}

// cmdWait answers as Redis does without replicas: 0 at once when no replica
// is asked for (or inside EXEC), else 0 once the timeout has passed, and
// never with a timeout of 0, until the client leaves.
func cmdWait(c *conn, w *resp.Writer, args []string) {
	replicas, ok := resp.ParseInt(args[1])
	if !ok {
		w.Error("ERR value is not an integer or out of range")
		return
	}
	ms, ok := parseTimeout(w, args[2])
	if !ok {
		return
	}
	if replicas > 0 && !c.inExec {
		// The client is parked until the timeout; the others go on.
		c.blocked.Store(blockedForever)
		if ms > 0 {
			c.blocked.Store(blockedWithTimeout)
		}
		c.blockedArgv.Store(int64(argvMem(args))) // Redis keeps a blocked command's arguments
		c.srv.loop.park(c, func() bool {
			defer c.blocked.Store(notBlocked)
			defer c.blockedArgv.Store(0)
			var timeout <-chan time.Time
			if ms > 0 {
				t := time.NewTimer(time.Duration(ms) * time.Millisecond)
				defer t.Stop()
				timeout = t.C
			}
			select {
			case <-timeout:
				return true
			case <-c.done:
				return false // killed: no reply
			}
		}, func() {
			c.mu.Lock()
			w := resp.Writer{Proto: c.proto}
			w.Int(0)
			c.appendLocked(w.Buf)
			c.mu.Unlock()
		})
		return
	}
	w.Int(0)
}

func cmdDebug(c *conn, w *resp.Writer, _ []string) {
	w.Error(`ERR DEBUG command not allowed. If the enable-debug-command option is set to "local", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.`)
}

func cmdCommandCount(c *conn, w *resp.Writer, _ []string) {
	w.Int(int64(len(c.srv.table().cmds)))
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
func cmdCommandDocs(c *conn, w *resp.Writer, args []string) {
	var found []*command
	for _, cmd := range c.srv.table().wanted(args) {
		if cmd != nil {
			found = append(found, cmd)
		}
	}
	w.Map(len(found))
	for _, cmd := range found {
		w.Bulk(cmd.name)
		writeCommandDoc(w, cmd)
	}
}

// writeCommandDoc writes the documentation map of cmd, and of its
// subcommands within it.
func writeCommandDoc(w *resp.Writer, cmd *command) {
	n := 3
	if cmd.subs != nil {
		n++
	}
	w.Map(n)
	w.Bulk("summary")
	w.Bulk(cmd.summary)
	w.Bulk("since")
	w.Bulk(cmd.since)
	w.Bulk("group")
	w.Bulk(cmd.group)
	if cmd.subs != nil {
		w.Bulk("subcommands")
		subs := slices.Sorted(maps.Keys(cmd.subs))
		w.Map(len(subs))
		for _, name := range subs {
			w.Bulk(cmd.subs[name].name)
			writeCommandDoc(w, cmd.subs[name])
		}
	}
}

// cmdCommandInfo answers COMMAND and COMMAND INFO in Redis 7's shape:
// name, arity, flags, key positions (none: no command takes keys), ACL
// categories, tips, key specs, subcommands. Unknown names get a null.
func cmdCommandInfo(c *conn, w *resp.Writer, args []string) {
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
}

func writeCommandInfo(w *resp.Writer, cmd *command) {
	flags := []string{"fast"}
	switch {
	case cmd.pubsub && cmd.group == "pubsub":
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
	w.Simple("@" + cmd.group)
	w.Set(0) // tips
	w.Array(0)
	subs := slices.Sorted(maps.Keys(cmd.subs))
	w.Array(len(subs))
	for _, name := range subs {
		writeCommandInfo(w, cmd.subs[name])
	}
}

// portOf returns the TCP port of a, or 0 for other kinds of address.
func portOf(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}
