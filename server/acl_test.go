package server

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// canonRules sorts the single-command rules of an ACL description (an
// ACL LIST line, or GETUSER's commands) as this server writes them:
// redis-server writes them in its command table's hash order, which
// changes every time it starts. The categories before them keep their
// order, which is Redis's; a first argument (+select|0) keeps its place
// after its command.
func canonRules(s string) string {
	parts := strings.Split(s, " (")
	for i, part := range parts {
		closing := i > 0 && strings.HasSuffix(part, ")")
		part = strings.TrimSuffix(part, ")")
		toks := strings.Split(part, " ")
		first := slices.IndexFunc(toks, func(t string) bool {
			return t != "" && (t[0] == '+' || t[0] == '-') && !strings.HasPrefix(t[1:], "@")
		})
		if first >= 0 {
			key := func(t string) (string, int, string) {
				top, sub, ok := strings.Cut(t[1:], "|")
				switch {
				case !ok:
					return top, 0, ""
				case redisArities[top+"|help"] != 0: // a subcommand
					return top, 1, sub
				}
				return top, 2, "" // a first argument: in the order given
			}
			slices.SortStableFunc(toks[first:], func(a, b string) int {
				at, ak, as := key(a)
				bt, bk, bs := key(b)
				return cmp.Or(cmp.Compare(at, bt), cmp.Compare(ak, bk), cmp.Compare(as, bs))
			})
		}
		parts[i] = strings.Join(toks, " ")
		if closing {
			parts[i] += ")"
		}
	}
	return strings.Join(parts, " (")
}

// canonACL applies canonRules to ACL LIST's lines and to GETUSER's
// commands, its selectors' included; and keeps of ACL LOG's entries what
// does not depend on time or the connection.
func canonACL(args []string, v resp.Value) resp.Value {
	if len(args) < 2 || !strings.EqualFold(args[0], "acl") {
		return v
	}
	switch lower(args[1]) {
	case "list":
		for i := range v.Elems {
			v.Elems[i].Str = canonRules(v.Elems[i].Str)
		}
	case "getuser":
		var walk func(v *resp.Value)
		walk = func(v *resp.Value) {
			for j := 0; j+1 < len(v.Elems); j += 2 {
				switch v.Elems[j].Str {
				case "commands":
					v.Elems[j+1].Str = canonRules(v.Elems[j+1].Str)
				case "selectors":
					for k := range v.Elems[j+1].Elems {
						walk(&v.Elems[j+1].Elems[k])
					}
				}
			}
		}
		walk(&v)
	case "log":
		for i := range v.Elems {
			e := &v.Elems[i]
			for j := 0; j+1 < len(e.Elems); j += 2 {
				switch e.Elems[j].Str {
				case "age-seconds":
					e.Elems[j+1] = resp.Value{Type: 'x'}
				case "client-info":
					var keep []string
					for _, f := range strings.Fields(e.Elems[j+1].Str) {
						if strings.HasPrefix(f, "cmd=") || strings.HasPrefix(f, "user=") {
							keep = append(keep, f)
						}
					}
					e.Elems[j+1].Str = strings.Join(keep, " ")
				}
			}
		}
	}
	return v
}

func TestCanonRules(t *testing.T) {
	assert.Equal(t, "-@all +@pubsub +client|id +client|setname -config +select|1 +select|0 (~x resetchannels -@all +get +ping)",
		canonRules("-@all +@pubsub +select|1 +select|0 -config +client|setname +client|id (~x resetchannels -@all +ping +get)"))
}

// aclStep is one step of an ACL script: a command on a named connection,
// or, with args nil, a check that the connection was closed (closed) or
// a read of the next message pushed to it.
type aclStep struct {
	conn   string
	args   []string
	closed bool
}

func cmdStep(conn string, args ...string) aclStep { return aclStep{conn: conn, args: args} }

// TestACLUsersAsRedis runs a script of ACL SETUSER, GETUSER, LIST, USERS,
// DELUSER, DRYRUN, LOG, AUTH as users, their permissions on commands,
// subcommands, first arguments and channels (NOPERM at the top level, in
// MULTI and at EXEC), and disconnects (a deleted user's clients, a
// subscriber whose channels are revoked) on redis-server and on this
// server, in RESP2 and RESP3, and compares every reply.
func TestACLUsersAsRedis(t *testing.T) {
	hash := hashPassword("h1")
	script := []aclStep{
		cmdStep("admin", "ACL", "SETUSER", "alice", "on", ">alicepw", "resetchannels", "&orders:*", "-@all", "+@pubsub", "+ping", "+acl|whoami", "+multi", "+exec"),
		cmdStep("admin", "ACL", "SETUSER", "bob", "on", "nopass", "allchannels", "+@all", "-publish", "-config|set"),
		cmdStep("admin", "ACL", "SETUSER", "carol", "on", ">c1", ">c2", "<c1", "#"+hash, "!"+hash, "#"+hash),
		cmdStep("admin", "ACL", "SETUSER", "dave", "on", "nopass", "resetchannels", "&news", "(+publish &alerts:*)", "(", "+subscribe", "&x", ")", "(+ping \"a)"),
		cmdStep("admin", "ACL", "SETUSER", "erin", "on", "nopass", "%R~k1", "%W~k2", "~k3", "%RW~k4", "%W~k1", "%R", "resetchannels", "+@all", "-@dangerous", "+select|0", "+select|1", "-client", "+client|id", "+CLIENT|SetName", "-select", "+select|0"),
		cmdStep("admin", "ACL", "SETUSER", "frank", "nocommands", "+@read", "-@write", "+@pubsub", "-subscribe", "+@hash", "-@stream"),
		cmdStep("admin", "ACL", "SETUSER", "gina", "allcommands", "-@slow", "+info", "-@fast", "+ping", "sanitize-payload", "skip-sanitize-payload"),
		cmdStep("admin", "ACL", "SETUSER", "hank", "off", "nopass", "+@all", "&*"),
		cmdStep("admin", "ACL", "SETUSER", "ivy", "+@admin", "+@dangerous", "-@keyspace", "+@connection", "-acl", "+acl|whoami", "allkeys", "resetkeys", "~a*", "clearselectors", "(+get ~b)", "reset", "on", "(~c +set)"),
		cmdStep("admin", "ACL", "LIST"),
		cmdStep("admin", "ACL", "USERS"),
		cmdStep("admin", "ACL", "GETUSER", "alice"),
		cmdStep("admin", "ACL", "GETUSER", "dave"),
		cmdStep("admin", "ACL", "GETUSER", "erin"),
		cmdStep("admin", "ACL", "GETUSER", "frank"),
		cmdStep("admin", "ACL", "GETUSER", "gina"),
		cmdStep("admin", "ACL", "GETUSER", "ivy"),
		cmdStep("admin", "ACL", "GETUSER", "Alice"),

		// Rules refused: nothing changes.
		cmdStep("admin", "ACL", "SETUSER", "alice", "off", "bogus"),
		cmdStep("admin", "ACL", "SETUSER", "x", "%"),
		cmdStep("admin", "ACL", "SETUSER", "x", "(+ping", "~a"),
		cmdStep("admin", "ACL", "SETUSER", "x", "on", "(+ping", "~a)", ")"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+config|get|x"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+select|"),
		cmdStep("admin", "ACL", "SETUSER", "x", "-select|0"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+get|x|y"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+get|x"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+config|nosuch"),
		cmdStep("admin", "ACL", "SETUSER", "x", "#abc"),
		cmdStep("admin", "ACL", "SETUSER", "x", "#"+strings.ToUpper(hash)),
		cmdStep("admin", "ACL", "SETUSER", "x", "<nope"),
		cmdStep("admin", "ACL", "SETUSER", "x", "!"+hash),
		cmdStep("admin", "ACL", "SETUSER", "x", "+nosuch"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+@nocat"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+"),
		cmdStep("admin", "ACL", "SETUSER", "x", "-"),
		cmdStep("admin", "ACL", "SETUSER", "x", "+@"),
		cmdStep("admin", "ACL", "SETUSER", "x", "&*", "&x"),
		cmdStep("admin", "ACL", "SETUSER", "x", "~*", "~x"),
		cmdStep("admin", "ACL", "SETUSER", "x", "&a b"),
		cmdStep("admin", "ACL", "SETUSER", "x", "%X~a"),
		cmdStep("admin", "ACL", "SETUSER", "a b"),
		cmdStep("admin", "ACL", "SETUSER", "x\x00y"),
		cmdStep("admin", "ACL", "SETUSER"),
		cmdStep("admin", "ACL", "DELUSER", "default"),
		cmdStep("admin", "ACL", "DELUSER", "nobody", "default"),
		cmdStep("admin", "ACL", "DELUSER"),
		cmdStep("admin", "ACL", "USERS"),
		cmdStep("admin", "ACL", "GETUSER", "alice"),

		// Permissions.
		cmdStep("a", "AUTH", "alice", "wrong"),
		cmdStep("a", "AUTH", "alice", "alicepw"),
		cmdStep("a", "ACL", "WHOAMI"),
		cmdStep("a", "PUBLISH", "orders:1", "x"),
		cmdStep("a", "PUBLISH", "other", "x"),
		cmdStep("a", "SPUBLISH", "other", "x"),
		cmdStep("a", "CONFIG", "GET", "port"),
		cmdStep("a", "CLIENT", "ID"),
		cmdStep("a", "GET", "k"),
		cmdStep("a", "PUBSUB", "CHANNELS"),
		cmdStep("a", "ACL", "LIST"),
		cmdStep("a", "MULTI"),
		cmdStep("a", "PUBLISH", "orders:2", "x"),
		cmdStep("a", "PUBLISH", "other", "x"),
		cmdStep("a", "EXEC"),
		cmdStep("a", "MULTI"),
		cmdStep("a", "PUBLISH", "orders:2", "x"),
		cmdStep("admin", "ACL", "SETUSER", "alice", "-publish"),
		cmdStep("a", "EXEC"),
		cmdStep("a", "PUBLISH", "orders:2", "x"),
		cmdStep("admin", "ACL", "SETUSER", "alice", "+publish"),
		cmdStep("e", "AUTH", "erin", "any"),
		cmdStep("e", "SELECT", "0"),
		cmdStep("e", "SELECT", "2"),
		cmdStep("e", "CLIENT", "SETNAME", "x"),
		cmdStep("e", "CLIENT", "GETNAME"),
		cmdStep("e", "CLIENT", "KILL", "USER", "nobody"),
		cmdStep("e", "PUBLISH", "c", "m"),
		cmdStep("d", "AUTH", "dave", "x"),
		cmdStep("d", "PUBLISH", "alerts:1", "m"),
		cmdStep("d", "PUBLISH", "news", "m"),
		cmdStep("d", "PING"),
		cmdStep("d", "PING", "x"),
		cmdStep("h", "AUTH", "hank", "x"),
		cmdStep("h", "HELLO", "3", "AUTH", "hank", "x"),
		cmdStep("h", "AUTH", "nobody", "x"),
		cmdStep("h", "AUTH", "carol", "c1"),
		cmdStep("h", "AUTH", "carol", "c2"),
		cmdStep("h", "ACL", "WHOAMI"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "publish", "other", "x"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "publish", "orders:1", "x"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "config", "get", "port"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "psubscribe", "orders:*"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "psubscribe", "orders:1*"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "subscribe", "orders:1", "other", "orders:2", "x"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "auth", "x"),
		cmdStep("admin", "ACL", "DRYRUN", "alice", "unsubscribe", "nope"),
		cmdStep("admin", "ACL", "DRYRUN", "dave", "publish", "alerts:1", "x"),
		cmdStep("admin", "ACL", "DRYRUN", "dave", "subscribe", "x", "news"),
		cmdStep("admin", "ACL", "DRYRUN", "dave", "subscribe", "x", "alerts:1"),
		cmdStep("admin", "ACL", "DRYRUN", "bob", "publish", "a", "x"),
		cmdStep("admin", "ACL", "DRYRUN", "erin", "select", "1"),
		cmdStep("admin", "ACL", "DRYRUN", "erin", "select", "3"),
		cmdStep("admin", "ACL", "LOG", "20"),
		cmdStep("admin", "ACL", "LOG", "RESET"),

		// A deleted user's clients are disconnected; a subscriber whose
		// channels are revoked too, not one whose channels stay.
		cmdStep("b", "AUTH", "bob", "x"),
		cmdStep("b", "PING"),
		cmdStep("admin", "ACL", "DELUSER", "bob", "nobody"),
		{conn: "b", closed: true},
		cmdStep("s", "AUTH", "alice", "alicepw"),
		cmdStep("s", "SUBSCRIBE", "orders:1"),
		cmdStep("p", "AUTH", "alice", "alicepw"),
		cmdStep("p", "PSUBSCRIBE", "orders:*"),
		cmdStep("admin", "ACL", "SETUSER", "alice", "&orders:*", "&invoices:*"),
		cmdStep("admin", "PUBLISH", "orders:1", "hi"),
		{conn: "s"},
		{conn: "p"},
		cmdStep("admin", "ACL", "SETUSER", "alice", "resetchannels", "&orders:1", "&invoices:*"),
		{conn: "p", closed: true},
		cmdStep("admin", "PUBLISH", "orders:1", "again"),
		{conn: "s"},
		cmdStep("admin", "ACL", "SETUSER", "alice", "resetchannels"),
		{conn: "s", closed: true},
		cmdStep("admin", "CLIENT", "KILL", "USER", "nobody"),
		cmdStep("admin", "CLIENT", "KILL", "USER", "dave"),
		{conn: "d", closed: true},

		// The default user: a password, then off, then back.
		cmdStep("admin", "ACL", "SETUSER", "default", ">pw"),
		cmdStep("n", "PING"),
		cmdStep("n", "AUTH", "pw"),
		cmdStep("n", "PING"),
		cmdStep("admin", "ACL", "SETUSER", "default", "nopass", "off"),
		cmdStep("o", "PING"),
		cmdStep("o", "AUTH", "x"),
		cmdStep("o", "AUTH", "default", "x"),
		cmdStep("admin", "PING"),
		cmdStep("admin", "ACL", "SETUSER", "default", "on"),
		cmdStep("o", "PING"),
		cmdStep("admin", "CONFIG", "SET", "requirepass", "rp"),
		cmdStep("admin", "ACL", "GETUSER", "default"),
		cmdStep("admin", "CONFIG", "SET", "requirepass", ""),
		cmdStep("admin", "ACL", "LIST"),

		// acl-pubsub-default decides a new user's channels, and reset's.
		cmdStep("admin", "CONFIG", "SET", "acl-pubsub-default", "allchannels"),
		cmdStep("admin", "ACL", "SETUSER", "jay", "on"),
		cmdStep("admin", "ACL", "SETUSER", "jay", "(+ping)"),
		cmdStep("admin", "ACL", "GETUSER", "jay"),
		cmdStep("admin", "ACL", "SETUSER", "jay", "reset"),
		cmdStep("admin", "CONFIG", "SET", "acl-pubsub-default", "resetchannels"),
		cmdStep("admin", "ACL", "SETUSER", "kim"),
		cmdStep("admin", "ACL", "LIST"),
		cmdStep("admin", "ACL", "LOAD"),
		cmdStep("admin", "ACL", "SAVE"),
		cmdStep("admin", "ACL", "LOG"),
	}
	for _, proto := range []string{"2", "3"} {
		theirAddr, ourAddr := redistest.Start(t), start(t, &Server{})
		type pair struct{ theirs, ours *redistest.Conn }
		conns := map[string]pair{}
		conn := func(name string) pair {
			p, ok := conns[name]
			if !ok {
				p = pair{redistest.Dial(t, theirAddr), redistest.Dial(t, ourAddr)}
				if proto == "3" {
					for _, c := range []*redistest.Conn{p.theirs, p.ours} {
						c.Send("HELLO", "3")
						_, _ = c.ReadErr() // a NOAUTH error while the default user needs a password
					}
				}
				conns[name] = p
			}
			return p
		}
		for i, st := range script {
			p := conn(st.conn)
			switch {
			case st.args != nil:
				want, got := canonACL(st.args, p.theirs.Do(st.args...)), canonACL(st.args, p.ours.Do(st.args...))
				require.Equal(t, want, got, "RESP%s step %d: %s %q", proto, i, st.conn, st.args)
			case st.closed:
				for _, c := range []*redistest.Conn{p.theirs, p.ours} {
					_, err := c.ReadErr()
					require.Error(t, err, "RESP%s step %d: %s closed", proto, i, st.conn)
					require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "RESP%s step %d: %s closed", proto, i, st.conn)
				}
				delete(conns, st.conn)
			default:
				want, got := p.theirs.Read(), p.ours.Read()
				require.Equal(t, want, got, "RESP%s step %d: %s receives", proto, i, st.conn)
			}
		}
	}
}

// TestGeneratedACLRulesAsRedis sends ACL SETUSER with lists of rules drawn
// from aclRuleSeeds, Redis's categories and commands, to redis-server and
// to this server, and compares every reply and, after each, ACL LIST:
// what one accepts the other accepts, and describes the same way.
func TestGeneratedACLRulesAsRedis(t *testing.T) {
	theirs, ours := redistest.Dial(t, redistest.Start(t)), redistest.Dial(t, start(t, &Server{}))
	r := rand.New(rand.NewPCG(7, 23))
	names := slices.Sorted(maps.Keys(redisArities))
	rule := func() string {
		switch r.IntN(6) {
		case 0:
			return "+@" + aclCategories[r.IntN(len(aclCategories))].name
		case 1:
			return "-@" + aclCategories[r.IntN(len(aclCategories))].name
		case 2:
			return "+" + names[r.IntN(len(names))]
		case 3:
			return "-" + names[r.IntN(len(names))]
		}
		return aclRuleSeeds[r.IntN(len(aclRuleSeeds))]
	}
	for i := range 400 {
		user := "u" + strconv.Itoa(r.IntN(4))
		args := []string{"ACL", "SETUSER", user}
		for range 1 + r.IntN(6) {
			args = append(args, rule())
		}
		if r.IntN(5) == 0 {
			args = append(args, "(", rule(), rule()+")")
		}
		want, got := theirs.Do(args...), ours.Do(args...)
		require.Equal(t, want, got, "%d: %q", i, args)
		list := []string{"ACL", "LIST"}
		require.Equal(t, canonACL(list, theirs.Do(list...)), canonACL(list, ours.Do(list...)), "%d: after %q", i, args)
	}
}

// HELLO ... AUTH authenticates as a user, as AUTH does, and RESET makes
// the client the default user again, unauthenticated if the default user
// needs a password.
func TestHelloAuthAndResetWithUsers(t *testing.T) {
	srv := &Server{Users: []string{"alice on >pw resetchannels &a -@all +@pubsub +@connection +acl|whoami", "default on >adm ~* &* +@all"}}
	c := redistest.Dial(t, start(t, srv))
	assert.Equal(t, "NOAUTH Authentication required.", c.Do("PING").Str)
	hello := c.Do("HELLO", "3", "AUTH", "alice", "pw")
	require.Equal(t, byte('%'), hello.Type, "%v", hello)
	assert.Equal(t, "alice", c.Do("ACL", "WHOAMI").Str)
	require.Len(t, srv.Clients(), 1)
	assert.Equal(t, "alice", srv.Clients()[0].User, "ClientInfo's user")
	assert.Equal(t, int64(0), c.Do("PUBLISH", "a", "x").Int)
	assert.Equal(t, "NOPERM this user has no permissions to access one of the channels used as arguments", c.Do("PUBLISH", "b", "x").Str)
	assert.Equal(t, "RESET", c.Do("RESET").Str)
	assert.Equal(t, "NOAUTH Authentication required.", c.Do("ACL", "WHOAMI").Str)
	assert.Equal(t, "OK", c.Do("AUTH", "adm").Str)
	assert.Equal(t, "default", c.Do("ACL", "WHOAMI").Str)
}

// Every command this server serves is one of redis-server 7.0's, so that
// ACL rules reach it, but CLIENT SETINFO (of Redis 7.2, which clients
// send as they connect): no rule can name it, so it runs for a user whose
// rules start from +@all, as a module's command loaded later in Redis.
func TestEveryServedCommandIsInTheACLTable(t *testing.T) {
	var unknown []string
	for name, cmd := range newCommandTable().cmds {
		if cmd.acl == nil {
			unknown = append(unknown, name)
		}
		for _, sc := range cmd.subs {
			if sc.acl == nil {
				unknown = append(unknown, sc.name)
			}
		}
	}
	assert.Equal(t, []string{"client|setinfo"}, unknown)
	c := redistest.Dial(t, start(t, &Server{Users: []string{"svc on nopass -@all +@connection", "all on nopass +@all -publish"}}))
	assert.Equal(t, "OK", c.Do("CLIENT", "SETINFO", "lib-name", "x").Str, "the default user")
	require.Equal(t, "OK", c.Do("AUTH", "all", "x").Str)
	assert.Equal(t, "OK", c.Do("CLIENT", "SETINFO", "lib-name", "x").Str, "+@all")
	require.Equal(t, "OK", c.Do("AUTH", "svc", "x").Str)
	assert.Equal(t, "NOPERM this user has no permissions to run the 'client|setinfo' command", c.Do("CLIENT", "SETINFO", "lib-name", "x").Str)
}

// Long rule lists (past listIndexFrom, where duplicates are found through
// an index): channels, key patterns with their permissions merged, and
// passwords added twice and removed, as redis-server keeps them.
func TestLongRuleListsAsRedis(t *testing.T) {
	theirs, ours := redistest.Dial(t, redistest.Start(t)), redistest.Dial(t, start(t, &Server{}))
	args := []string{"ACL", "SETUSER", "long", "on"}
	for i := range 100 {
		n := strconv.Itoa(i % 70) // duplicates past the first 70
		args = append(args, "&ch:"+n, "%R~k"+n, ">p"+n)
		if i%3 == 0 {
			args = append(args, "%W~k"+n)
		}
	}
	for i := 0; i < 70; i += 7 {
		args = append(args, "<p"+strconv.Itoa(i))
	}
	args = append(args, ">p0", "<p69", "&ch:5", "~k5", "(&a &b &a ~x ~x)")
	for _, cmd := range [][]string{args, {"ACL", "LIST"}, {"ACL", "GETUSER", "long"},
		{"ACL", "SETUSER", "long", "<p7"}, {"ACL", "SETUSER", "long", "resetchannels", "&ch:1", "&ch:1", "resetkeys", "~a"},
		{"ACL", "LIST"}, {"ACL", "DRYRUN", "long", "publish", "ch:1", "x"}, {"ACL", "DRYRUN", "long", "publish", "ch:2", "x"}} {
		require.Equal(t, canonACL(cmd, theirs.Do(cmd...)), canonACL(cmd, ours.Do(cmd...)), "%.60q", cmd)
	}
}
