package server

import (
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// normalizeConfigMap sorts a CONFIG GET reply's pairs by name (Redis lists
// them in its hash order) and blanks what the two servers cannot share:
// their ports and their working directories.
func normalizeConfigMap(vs []resp.Value) []resp.Value {
	for i := range vs {
		e := vs[i].Elems
		type pair struct{ k, v resp.Value }
		pairs := make([]pair, 0, len(e)/2)
		for j := 0; j+1 < len(e); j += 2 {
			if k := e[j].Str; k == "port" || k == "dir" {
				e[j+1].Str = ""
			}
			pairs = append(pairs, pair{e[j], e[j+1]})
		}
		slices.SortFunc(pairs, func(a, b pair) int { return strings.Compare(a.k.Str, b.k.Str) })
		for j, p := range pairs {
			e[2*j], e[2*j+1] = p.k, p.v
		}
	}
	return vs
}

// valuesToTry are values that show how CONFIG SET checks and writes a
// parameter of p's kind: what it takes, how it writes it back, and each
// of its errors.
func valuesToTry(p redisParam) []string {
	switch p.kind {
	case paramBool:
		return []string{"YES", "no", "maybe", ""}
	case paramEnum:
		return []string{strings.ToUpper(p.enum[len(p.enum)-1]), p.enum[0], "bogus", ""}
	case paramInt:
		vs := []string{"010", "-0", "", "+5", "5.0", "1k", strconv.FormatInt(p.min, 10), strconv.FormatInt(p.max, 10), "99999999999999999999"}
		if p.min > math.MinInt64 {
			vs = append(vs, strconv.FormatInt(p.min-1, 10))
		}
		if p.max < math.MaxInt64 {
			vs = append(vs, strconv.FormatInt(p.max+1, 10))
		}
		return vs
	case paramMemory:
		vs := []string{"1kb", "2K", "3Mb", "1gb", "7b", "1tb", "1.5mb", "-1", " 5", "", "00012", "99999999999999999999b",
			"18446744073709551615kb", "9223372036854775808", strconv.FormatInt(p.max, 10)}
		if p.min > 0 {
			vs = append(vs, strconv.FormatInt(p.min-1, 10))
		}
		return vs
	case paramString:
		return []string{"a b", "", "x-1.y", "{title}", "{title} {port}", "{bogus}", "a{", "a}", "{listen-addr}"}
	}
	return []string{p.value}
}

// specialValues are values for the parameters with rules of their own.
var specialValues = map[string][]string{
	"client-output-buffer-limit": {"normal 1 2", "foo 1 2 3", "normal 1mb 2 3 pubsub 1 2 x", "normal 1mb 2 3 pubsub 1 2 -1",
		"NORMAL 1mb 2kb 3 replica 1 2 3", "pubsub 1gb 2GB 4", "slave 1 2 3", "",
		"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"},
	"notify-keyspace-events":            {"KEA", "gK", "E", "Ax", "KA$lshzxetdmn", "nmK", "Kd", "KEt", "g$lshzxetd", "g$lshzxet", "ng", "m", "w", ""},
	"save":                              {"1 2 3", "a b", "1 2 3 4", "  10   20 ", "-1 2", ""},
	"oom-score-adj-values":              {"1 2", "1 2 3000", "a b c", "-2000 0 2000", "0 200 800"},
	"latency-tracking-info-percentiles": {"200", "abc", "50 99 99.9", "1.50 2", ""},
	"maxmemory-clients":                 {"abc", "200%", "10%", "1mb", "-1%", "0"},
}

// TestConfigMatchesRedis: CONFIG GET of every parameter, then CONFIG SET
// of each with values that show how it is checked and written back,
// compare with redis-server's replies, RESP2 and RESP3. Each parameter is
// set back at once, so the servers stay usable.
func TestConfigMatchesRedis(t *testing.T) {
	red := &session{t: t, addr: redistest.Start(t), conns: map[string]*redistest.Conn{}}
	our := &session{t: t, addr: start(t, &Server{}), conns: map[string]*redistest.Conn{}}
	compared := 0
	run := func(st step) {
		t.Helper()
		if len(st.args) > 1 && st.args[1] == "GET" {
			st.normalize = normalizeConfigMap // several parameters come in Redis's hash order
		}
		compared += compareStep(t, st, red, our, strings.Join(st.args, " "))
	}
	run(step{conn: "b", args: []string{"HELLO", "3"}, normalize: normalizeHello})
	for _, conn := range []string{"a", "b"} {
		run(step{conn: conn, args: []string{"CONFIG", "GET", "*"}, normalize: normalizeConfigMap})
		run(step{conn: conn, args: []string{"CONFIG", "GET", "*max*", "MAXCLIENTS", "slave*"}, normalize: normalizeConfigMap})
	}
	for _, args := range [][]string{
		{"CONFIG", "SET"}, {"CONFIG", "SET", "maxclients"}, {"CONFIG", "SET", "maxclients", "1", "2"},
		{"CONFIG", "SET", "foo", "1"}, {"CONFIG", "SET", "foo", "1", "bar"}, {"CONFIG", "SET", "daemonize", "yes"},
		{"CONFIG", "SET", "dir", "/tmp"}, {"CONFIG", "SET", "timeout", "1", "timeout", "2"},
		{"CONFIG", "SET", "maxclients", "abc", "foo", "1"}, {"CONFIG", "SET", "maxclients", "abc", "daemonize", "yes"},
		{"CONFIG", "SET", "maxclients", "5", "maxclients", "abc"}, {"CONFIG", "SET", "maxclients", "abc", "timeout", "abc"},
		{"CONFIG", "SET", "maxclients", "9", "hz", "abc"}, {"CONFIG", "GET", "maxclients"},
		{"CONFIG", "SET", "MAXCLIENTS", "abc"}, {"CONFIG", "SET", "Slave-Priority", "abc"},
		{"CONFIG", "SET", "replica-priority", "7", "slave-priority", "8"}, {"CONFIG", "GET", "replica-priority", "slave-priority"},
		{"CONFIG", "SET", "slave-priority", "100"},
		{"CONFIG", "SET", "hz", "0"}, {"CONFIG", "GET", "hz"}, {"CONFIG", "SET", "hz", "1000"}, {"CONFIG", "GET", "hz"},
		{"CONFIG", "SET", "hz", "10"},
		{"CONFIG", "SET", "activedefrag", "yes"},
		{"CONFIG", "SET", "timeout", "7", "maxclients", "500", "notify-keyspace-events", "KEA"},
		{"CONFIG", "GET", "timeout", "maxclients", "notify-keyspace-events"},
		{"CONFIG", "SET", "timeout", "0", "maxclients", "10000", "notify-keyspace-events", ""},
		{"CONFIG", "RESETSTAT"}, {"CONFIG", "RESETSTAT", "x"}, {"CONFIG", "REWRITE"}, {"CONFIG", "REWRITE", "x"},
		{"CONFIG", "HELP", "x"}, {"CONFIG", "FOO"},
	} {
		run(cmd("a", args...))
	}
	// HELP's text is our own: what it lists is checked, not its words.
	run(step{conn: "a", args: []string{"CONFIG", "HELP"}, ours: func(t *testing.T, got []resp.Value) {
		require.Len(t, got, 1)
		for _, sub := range []string{"GET", "SET", "RESETSTAT", "REWRITE", "HELP"} {
			assert.True(t, slices.ContainsFunc(got[0].Elems, func(l resp.Value) bool { return strings.HasPrefix(l.Str, sub) }), "CONFIG HELP lists %s", sub)
		}
	}})

	skip := map[string]bool{
		"port": true, "bind": true, // would move the servers' listeners
		"requirepass": true, // tried below, where a new client's AUTH is checked too
		// On Redis these act on the process (its file descriptor limit,
		// its OOM score): their effects are not compared.
		"maxclients": true, "oom-score-adj": true,
	}
	for _, p := range redisParams {
		if skip[p.name] {
			continue
		}
		values := valuesToTry(p)
		if special, ok := specialValues[p.name]; ok {
			values = special
		}
		for _, v := range values {
			for _, conn := range []string{"a", "b"} {
				run(cmd(conn, "CONFIG", "SET", p.name, v))
				run(cmd(conn, "CONFIG", "GET", p.name))
			}
		}
		run(cmd("a", "CONFIG", "SET", p.name, p.value))
	}
	for _, args := range [][]string{
		{"CONFIG", "SET", "maxclients", "abc"}, {"CONFIG", "SET", "maxclients", "0"}, {"CONFIG", "SET", "maxclients", "010"},
		{"CONFIG", "SET", "maxclients", "500"}, {"CONFIG", "GET", "maxclients"}, {"CONFIG", "SET", "maxclients", "10000"},
		{"CONFIG", "SET", "oom-score-adj", "bogus"}, {"CONFIG", "SET", "oom-score-adj", "NO"}, {"CONFIG", "GET", "oom-score-adj"},
		{"CONFIG", "SET", "requirepass", "a b"}, {"CONFIG", "GET", "requirepass"},
	} {
		run(cmd("a", args...))
	}
	// A new client must authenticate (its replies are read without a
	// barrier, which it could not run before).
	run(step{conn: "c", args: []string{"PING"}, replies: 1})
	run(step{conn: "c", args: []string{"AUTH", "a b"}, replies: 1})
	run(cmd("c", "CONFIG", "SET", "requirepass", ""))
	run(cmd("d", "PING"))
	run(cmd("a", "CONFIG", "GET", "*"))
	t.Logf("compared %d replies with redis-server", compared)
}

// The parameters that mean something here take effect at once.
func TestConfigSetTakesEffect(t *testing.T) {
	srv := &Server{}
	addr := start(t, srv)
	var admin *redistest.Conn
	t.Run("requirepass", func(t *testing.T) {
		admin = redistest.Dial(t, addr)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "requirepass", "s3cret").Str)
		assert.Equal(t, "PONG", admin.Do("PING").Str, "a client already in stays in, as in Redis")
		c := redistest.Dial(t, addr)
		assert.Contains(t, c.Do("PUBLISH", "x", "y").Str, "NOAUTH")
		assert.Contains(t, c.Do("AUTH", "wrong").Str, "WRONGPASS")
		assert.Equal(t, "OK", c.Do("AUTH", "s3cret").Str)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "requirepass", "").Str)
		assert.Equal(t, int64(0), redistest.Dial(t, addr).Do("PUBLISH", "x", "y").Int)
	})
	t.Run("maxclients", func(t *testing.T) {
		admin = redistest.Dial(t, addr)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "maxclients", "1").Str)
		c := redistest.Dial(t, addr)
		v, _ := c.ReadErr()
		assert.Equal(t, "ERR max number of clients reached", v.Str)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "maxclients", "10000").Str)
		assert.Equal(t, "PONG", redistest.Dial(t, addr).Do("PING").Str)
	})
	t.Run("timeout", func(t *testing.T) {
		admin = redistest.Dial(t, addr)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "timeout", "1").Str)
		idle := redistest.Dial(t, addr)
		require.Equal(t, "PONG", idle.Do("PING").Str)
		_, err := idle.ReadErr()
		assert.Error(t, err, "an idle client is closed once the timeout set passes")
		fresh := redistest.Dial(t, addr) // admin was idle meanwhile too
		require.Equal(t, "OK", fresh.Do("CONFIG", "SET", "timeout", "0").Str)
	})
	t.Run("client-output-buffer-limit", func(t *testing.T) {
		admin = redistest.Dial(t, addr)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "client-output-buffer-limit", "pubsub 64kb 0 0").Str)
		assert.Equal(t, OutputLimit{Hard: 64 << 10}, srv.limits.Load().output[classPubSub])
		sub := neverReads(t, addr)
		_, err := sub.Write(resp.AppendCommand(nil, "SUBSCRIBE", "flood"))
		require.NoError(t, err)
		redistest.WaitFor(t, "the subscriber", func() bool { return admin.Do("PUBSUB", "NUMSUB", "flood").Elems[1].Int == 1 })
		payload := strings.Repeat("x", 16<<10)
		redistest.WaitFor(t, "the subscriber to be dropped past 64 KB", func() bool {
			return admin.Do("PUBLISH", "flood", payload).Int == 0
		})
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60").Str)
	})
	t.Run("proto-max-bulk-len", func(t *testing.T) {
		admin = redistest.Dial(t, addr)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "proto-max-bulk-len", "1mb").Str)
		c := redistest.Dial(t, addr)
		c.SendRaw([]byte("*2\r\n$4\r\nECHO\r\n$2000000\r\n"))
		v, _ := c.ReadErr()
		assert.Equal(t, "ERR Protocol error: invalid bulk length", v.Str)
		require.Equal(t, "OK", admin.Do("CONFIG", "SET", "proto-max-bulk-len", "512mb").Str)
	})
}

// infoField returns one field of an INFO reply.
func infoField(t *testing.T, info, name string) string {
	t.Helper()
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return v
		}
	}
	t.Fatalf("no field %s in INFO", name)
	return ""
}

// INFO's figures are what happened: bytes in and out, errors by kind;
// CONFIG RESETSTAT starts them again from 0.
func TestInfoCountsAndResetStat(t *testing.T) {
	addr := start(t, &Server{})
	c := redistest.Dial(t, addr)
	info := func() string { return c.Do("INFO", "stats", "errorstats").Str }
	num := func(info, name string) int64 {
		n, err := strconv.ParseInt(infoField(t, info, name), 10, 64)
		require.NoError(t, err)
		return n
	}
	before := info()
	require.Equal(t, byte('-'), c.Do("AUTH", "x").Type)
	require.Equal(t, "PONG", c.Do("PING").Str)
	after := info()
	infoCmd := len(resp.AppendCommand(nil, "INFO", "stats", "errorstats"))
	assert.Equal(t, int64(infoCmd+len(resp.AppendCommand(nil, "AUTH", "x"))+len(resp.AppendCommand(nil, "PING"))),
		num(after, "total_net_input_bytes")-num(before, "total_net_input_bytes"))
	assert.Equal(t, int64(1), num(after, "total_error_replies")-num(before, "total_error_replies"))
	assert.Equal(t, "count=1", infoField(t, after, "errorstat_ERR"))

	require.Equal(t, "OK", c.Do("CONFIG", "RESETSTAT").Str)
	reset := info()
	assert.Equal(t, int64(0), num(reset, "total_error_replies"))
	assert.NotContains(t, reset, "errorstat_")
	assert.Equal(t, int64(infoCmd), num(reset, "total_net_input_bytes"), "only the INFO since")
	assert.LessOrEqual(t, num(reset, "total_commands_processed"), int64(2))
}

// CLIENT PAUSE holds back what Redis holds back, and lets the held
// commands run in order once the pause ends.
func TestClientPause(t *testing.T) {
	addr := start(t, &Server{})
	a, b := redistest.Dial(t, addr), redistest.Dial(t, addr)

	t.Run("write", func(t *testing.T) {
		require.Equal(t, "OK", a.Do("CLIENT", "PAUSE", "100000", "WRITE").Str)
		assert.Equal(t, "PONG", b.Do("PING").Str, "not held")
		assert.Equal(t, int64(0), b.Do("PUBSUB", "NUMSUB", "x").Elems[1].Int, "not held")
		b.Send("PUBLISH", "x", "1") // held
		b.Send("MULTI")
		c := redistest.Dial(t, addr)
		redistest.WaitFor(t, "the PUBLISH to be held", func() bool {
			return infoField(t, c.Do("INFO", "clients").Str, "blocked_clients") == "1"
		})
		assert.Equal(t, "OK", c.Do("CLIENT", "UNPAUSE").Str)
		assert.Equal(t, int64(0), b.Read().Int, "the PUBLISH ran once the pause ended")
		assert.Equal(t, "OK", b.Read().Str)
		assert.Equal(t, "QUEUED", b.Do("PING").Str)
		require.Equal(t, "OK", a.Do("CLIENT", "PAUSE", "100000", "WRITE").Str)
		b.Send("EXEC") // held: PING queued only, so not held
		assert.Equal(t, "PONG", b.Read().Elems[0].Str)
		b.Send("FLUSHALL")
		redistest.WaitFor(t, "FLUSHALL to be held", func() bool {
			return infoField(t, c.Do("INFO", "clients").Str, "blocked_clients") == "1"
		})
		assert.Equal(t, "OK", c.Do("CLIENT", "UNPAUSE").Str)
		assert.Equal(t, "OK", b.Read().Str)
	})
	t.Run("all", func(t *testing.T) {
		start := time.Now()
		require.Equal(t, "OK", a.Do("CLIENT", "PAUSE", "300").Str)
		b.Send("PING")
		a.Send("CLIENT", "UNPAUSE") // held too, as in Redis
		assert.Equal(t, "PONG", b.Read().Str)
		assert.Equal(t, "OK", a.Read().Str)
		// The pause ends 300 ms after the millisecond the server got it in.
		assert.GreaterOrEqual(t, time.Since(start), 299*time.Millisecond, "nothing ran before the pause ended")
	})
}

// Every command with subcommands answers HELP, listing each one it serves.
func TestEveryContainerAnswersHelp(t *testing.T) {
	srv := &Server{}
	c := redistest.Dial(t, start(t, srv))
	for name, cmd := range srv.table().cmds {
		if cmd.subs == nil {
			continue
		}
		help := c.Do(strings.ToUpper(name), "HELP")
		require.Equal(t, byte('*'), help.Type, "%s HELP: %v", name, help)
		var text []string
		for _, l := range help.Elems {
			text = append(text, l.Str)
		}
		for sub := range cmd.subs {
			sub = strings.ToUpper(sub)
			assert.True(t, slices.ContainsFunc(text, func(l string) bool { return l == sub || strings.HasPrefix(l, sub+" ") }),
				"%s HELP lists %s", name, sub)
		}
	}
}

func TestServeRefusesAnUnknownProtocol(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = (&Server{Protocol: 4}).Serve(ln)
	assert.ErrorIs(t, err, ErrBadConfig)
	_, err = net.Dial("tcp", ln.Addr().String())
	assert.Error(t, err, "the listener is closed")
}
