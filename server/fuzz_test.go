package server

import (
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
)

// FuzzCommands runs arbitrary arguments through every command, in RESP2
// and RESP3, subscribed or not, on a live connection: no input may panic
// the server. Commands are separated by '\n' and arguments by NUL; a
// one-byte command name picks one of the served commands.
func FuzzCommands(f *testing.F) {
	for _, seed := range []string{
		"subscribe\x00a\x00b\nunsubscribe", "psubscribe\x00*\npublish\x00a\x00b", "pubsub\x00numsub\x00a",
		"client\x00kill\x00id\x001", "client\x00kill\x00type\x00pubsub\x00skipme\x00no", "hello\x003\x00auth\x00default\x00x",
		"multi\nsubscribe\x00a\nexec", "command\x00docs\x00pubsub|channels", "config\x00get\x00*", "info\x00everything",
		"select\x00-1", "client\x00reply\x00off\nping", "reset\nquit",
	} {
		for mode := range byte(4) {
			f.Add(mode, seed)
		}
	}
	names := slices.Sorted(maps.Keys(newCommandTable().cmds))
	f.Fuzz(func(t *testing.T, mode byte, script string) {
		srv := &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		srv.mu.Lock()
		srv.init()
		srv.mu.Unlock()
		defer srv.Close() // stops the loop and closes the broker
		client, pipe := net.Pipe()
		defer client.Close()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		c := newConn(srv, pipe)
		srv.mu.Lock()
		srv.conns[c.id] = c
		srv.mu.Unlock()
		writerDone := make(chan struct{})
		go func() { c.writeLoop(); close(writerDone) }()
		defer func() { c.kill(); <-writerDone }()
		ran := make(chan struct{})
		srv.loop.do(func() { // commands run on the loop only
			defer close(ran)
			if mode&1 == 1 {
				c.run([]string{"HELLO", "3"})
			}
			if mode&2 == 2 {
				c.run([]string{"SUBSCRIBE", "a"})
			}
			for _, line := range strings.Split(script, "\n") {
				args := strings.Split(line, "\x00")
				if len(args[0]) == 1 {
					args[0] = names[int(args[0][0])%len(names)]
				}
				if args[0] == "" {
					continue
				}
				if c.run(args) {
					return
				}
			}
		})
		<-ran
	})
}

// aclRuleSeeds are rules of every kind, right and wrong, for the fuzz
// target and the generated differential test.
var aclRuleSeeds = []string{
	"on", "off", "nopass", "resetpass", ">pw", "<pw", "#" + strings.Repeat("ab", 32), "!" + strings.Repeat("ab", 32), "#abc",
	"~*", "~k*", "%R~r*", "%W~w", "%RW~rw", "%", "%R", "%X~k", "allkeys", "resetkeys",
	"&*", "&ch:*", "&a b", "allchannels", "resetchannels", "+@all", "-@all", "allcommands", "nocommands",
	"+@pubsub", "-@pubsub", "+@admin", "-@dangerous", "+@nocat", "+publish", "-publish", "+config|get", "-config|set",
	"+client", "-client", "+select|0", "+select|", "+config|get|x", "-select|0", "+nosuch", "+", "-", "+@",
	"(+ping ~x)", "(", ")", "()", "(&a", "+get)", "clearselectors", "reset", "sanitize-payload", "skip-sanitize-payload", "",
}

// FuzzACLRules applies arbitrary rules (separated by NUL) to a user: no
// rule may panic, and what is accepted reads back as itself: the
// description ACL LIST gives, applied to a new user, gives the same
// description and the same permissions (as Redis checks its own
// descriptions), unless Redis's own description could not be read back
// either (describable).
func FuzzACLRules(f *testing.F) {
	for i, seed := range aclRuleSeeds {
		f.Add(seed + "\x00" + aclRuleSeeds[(i*7+3)%len(aclRuleSeeds)])
	}
	f.Add("+@all\x00-@pubsub\x00+subscribe\x00-config\x00+config|get\x00(+ping &x)\x00~a\x00%R~b")
	f.Fuzz(func(t *testing.T, rules string) {
		a := newACLState("", false)
		u := a.newUser("u")
		merged, _, ok := mergeSelectorArgs(strings.Split(rules, "\x00"))
		if !ok {
			return
		}
		for _, rule := range merged {
			if a.setUser(u, rule) != nil {
				return
			}
		}
		if !describable(u) {
			return
		}
		desc := u.describe()
		again := a.newUser("u")
		args := strings.Split(desc, " ")
		merged, _, ok = mergeSelectorArgs(args)
		if !ok {
			t.Fatalf("%q: description %q has an open parenthesis", rules, desc)
		}
		for _, rule := range merged {
			if err := a.setUser(again, rule); err != nil {
				t.Fatalf("%q: description %q: rule %q refused: %v", rules, desc, rule, err)
			}
		}
		if got := again.describe(); got != desc {
			t.Fatalf("%q: described as %q, which reads back as %q", rules, desc, got)
		}
		for i, s := range u.selectors {
			if s.allowed != again.selectors[i].allowed {
				t.Fatalf("%q: selector %d's commands differ once read back from %q", rules, i, desc)
			}
		}
	})
}

// describable reports whether u's description reads back as u, in Redis
// as here: not if a first argument holds white space (Redis takes
// +select|" x"), nor if an added selector's pattern or first argument
// holds a parenthesis, a quote or a backslash, which its description
// splits differently.
func describable(u *aclUser) bool {
	for i, s := range u.selectors {
		var words []string
		for _, ch := range s.channels {
			words = append(words, ch.String())
		}
		for _, k := range s.keys {
			words = append(words, k.pattern)
		}
		for _, args := range s.firstArgs {
			for _, arg := range args {
				if hasSpaces(arg) {
					return false
				}
				words = append(words, arg)
			}
		}
		for _, w := range words {
			if i > 0 && strings.ContainsAny(w, "()\"'\\") {
				return false
			}
		}
	}
	return true
}
