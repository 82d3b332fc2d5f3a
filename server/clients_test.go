package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clientFields splits a CLIENT LIST line into its field names, in order,
// and their values.
func clientFields(line string) (names []string, values map[string]string) {
	values = map[string]string{}
	for _, f := range strings.Fields(line) {
		name, value, _ := strings.Cut(f, "=")
		names = append(names, name)
		values[name] = value
	}
	return names, values
}

// clientLine returns the line of CLIENT LIST naming the client called name.
func clientLine(t *testing.T, admin *redistest.Conn, name string) string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(admin.Do("CLIENT", "LIST").Str), "\n") {
		if strings.Contains(line, " name="+name+" ") {
			return line
		}
	}
	t.Fatalf("no client named %s in CLIENT LIST", name)
	return ""
}

// CLIENT LIST and CLIENT INFO have redis-server 7.0's fields in its order,
// and the same values where they can be equal: what a client holds and
// did, its flags, and a real descriptor, ages and output figures.
func TestClientListMatchesRedis(t *testing.T) {
	redisAddr := redistest.Start(t)
	ours := start(t, &Server{})
	type client struct {
		names  []string
		values map[string]string
	}
	look := func(addr string) (subscriber, stuck, self, inMulti, waiting client) {
		sub := redistest.Dial(t, addr)
		sub.Do("CLIENT", "SETNAME", "subscriber")
		sub.Send("SUBSCRIBE", "a", "b")
		sub.Send("PSUBSCRIBE", "p*")
		sub.Send("SSUBSCRIBE", "s")
		for range 4 {
			sub.Read()
		}
		// A subscriber that never reads: its output piles up.
		never := redistest.Dial(t, addr)
		never.Do("CLIENT", "SETNAME", "stuck")
		never.Send("SUBSCRIBE", "big")
		never.Read()
		// One in MULTI with two commands queued, one blocked in WAIT.
		tx := redistest.Dial(t, addr)
		tx.Do("CLIENT", "SETNAME", "tx")
		tx.Do("MULTI")
		tx.Do("PUBLISH", "a", "b")
		tx.Do("PUBLISH", "channel", "payload")
		blocked := redistest.Dial(t, addr)
		blocked.Do("CLIENT", "SETNAME", "blocked")
		blocked.Send("WAIT", "1", "0") // no replica will ever answer
		admin := redistest.Dial(t, addr)
		admin.Do("CLIENT", "SETNAME", "admin")
		payload := strings.Repeat("x", 64<<10)
		for range 192 { // 12 MB: past what loopback's socket buffers take, under the hard limit
			admin.Do("PUBLISH", "big", payload)
		}
		subscriber.names, subscriber.values = clientFields(clientLine(t, admin, "subscriber"))
		stuck.names, stuck.values = clientFields(clientLine(t, admin, "stuck"))
		self.names, self.values = clientFields(strings.TrimSpace(admin.Do("CLIENT", "INFO").Str))
		inMulti.names, inMulti.values = clientFields(clientLine(t, admin, "tx"))
		redistest.WaitFor(t, "the WAIT to block", func() bool {
			waiting.names, waiting.values = clientFields(clientLine(t, admin, "blocked"))
			return strings.Contains(waiting.values["flags"], "b")
		})
		return subscriber, stuck, self, inMulti, waiting
	}
	rSub, rStuck, rSelf, rMulti, rWait := look(redisAddr)
	oSub, oStuck, oSelf, oMulti, oWait := look(ours)

	for _, pair := range [][2]client{{rSub, oSub}, {rStuck, oStuck}, {rSelf, oSelf}, {rMulti, oMulti}, {rWait, oWait}} {
		red, our := pair[0], pair[1]
		assert.Equal(t, red.names, our.names, "field names and order")
		for _, field := range []string{"name", "flags", "db", "sub", "psub", "ssub", "multi", "argv-mem", "multi-mem", "user", "redir", "resp"} {
			assert.Equal(t, red.values[field], our.values[field], "%s of %s", field, red.values["name"])
		}
		for _, field := range []string{"fd", "tot-mem"} {
			n, err := strconv.Atoi(our.values[field])
			assert.True(t, err == nil && n > 0, "%s=%s of %s; want a positive figure, as Redis's %s", field, our.values[field], red.values["name"], red.values[field])
		}
		for _, field := range []string{"age", "idle"} {
			n, err := strconv.Atoi(our.values[field])
			assert.True(t, err == nil && n >= 0 && n < 30, "%s=%s of %s", field, our.values[field], red.values["name"])
		}
	}
	assert.Equal(t, "subscribe", oStuck.values["cmd"])
	assert.Equal(t, rSelf.values["cmd"], oSelf.values["cmd"], "CLIENT INFO names itself as Redis does")
	assert.Equal(t, rSub.values["cmd"], oSub.values["cmd"])
	for _, field := range []string{"flags", "multi", "multi-mem", "cmd"} {
		assert.Equal(t, rMulti.values[field], oMulti.values[field], "%s of a client in MULTI", field)
		assert.Equal(t, rWait.values[field], oWait.values[field], "%s of a client blocked in WAIT", field)
	}
	assert.Equal(t, "0", oSub.values["omem"], "nothing is queued for a client that reads")
	assert.Equal(t, "0", oSub.values["rbs"], "a client waiting for input holds no read buffer")
	assert.Equal(t, "0", oSub.values["qbuf"])
	// obl is Redis's fixed 16 KB reply buffer, which we have not: ours is
	// 0, as Redis's is while nothing waits.
	assert.Equal(t, rSub.values["obl"], oSub.values["obl"])
	for _, stuck := range []client{rStuck, oStuck} {
		omem, _ := strconv.Atoi(stuck.values["omem"])
		totMem, _ := strconv.Atoi(stuck.values["tot-mem"])
		assert.Greater(t, omem, 1<<20, "omem of a client that never reads, after 12 MB were published to it")
		assert.GreaterOrEqual(t, totMem, omem, "tot-mem counts the output")
		assert.Equal(t, "rw", stuck.values["events"], "a client with output pending waits for writing too")
	}
}

// A client that never reads is disconnected at its output limit; the
// Server's figures and ClosedClients say why, and Clients showed its
// output growing before.
func TestDisconnectReasonsAreCounted(t *testing.T) {
	srv := &Server{PubSubOutputLimit: &OutputLimit{Hard: 2 << 20}, IdleTimeout: time.Hour}
	addr := start(t, srv)
	admin := redistest.Dial(t, addr)
	never := redistest.Dial(t, addr)
	never.Do("CLIENT", "SETNAME", "never")
	never.Send("SUBSCRIBE", "big")
	never.Read()

	outputOf := func() int64 {
		for _, ci := range srv.Clients() {
			if ci.Name == "never" {
				return ci.OutputBytes
			}
		}
		return -1
	}
	payload := strings.Repeat("x", 64<<10)
	var most int64
	for outputOf() >= 0 {
		admin.Do("PUBLISH", "big", payload)
		most = max(most, outputOf())
	}
	assert.Greater(t, most, int64(1<<20), "Clients showed the output queue growing towards the 2 MB limit")

	// Other reasons: a protocol error, CLIENT KILL, a plain close.
	bad := redistest.Dial(t, addr)
	bad.SendRaw([]byte("*1\r\n$x\r\n"))
	_, _ = bad.ReadErr()
	victim := redistest.Dial(t, addr)
	victim.Do("CLIENT", "SETNAME", "victim")
	id := victim.Do("CLIENT", "ID").Int
	admin.Do("CLIENT", "KILL", "ID", strconv.FormatInt(id, 10))
	quitter := redistest.Dial(t, addr)
	quitter.Do("QUIT")

	redistest.WaitFor(t, "four clients to end", func() bool { return len(srv.ClosedClients()) == 4 })
	st := srv.Stats()
	assert.Equal(t, int64(1), st.Disconnects[OutputHardLimit])
	assert.Equal(t, int64(1), st.Disconnects[ProtocolError])
	assert.Equal(t, int64(1), st.Disconnects[Killed])
	assert.Equal(t, int64(1), st.Disconnects[ClientClosed])
	assert.Equal(t, 1, st.Clients, "the admin is left")
	reasons := map[string]DisconnectReason{}
	for _, ci := range srv.ClosedClients() {
		reasons[ci.Name] = ci.Reason
		assert.False(t, ci.Closed.IsZero())
	}
	assert.Equal(t, OutputHardLimit, reasons["never"])
	for _, ci := range srv.ClosedClients() {
		if ci.Name == "never" {
			assert.Greater(t, ci.OutputPeak, int64(1<<20), "its peak output")
		}
	}
	assert.Equal(t, Killed, reasons["victim"])
	assert.Equal(t, "output_hard_limit", OutputHardLimit.String())

	info := admin.Do("INFO", "pubsubd").Str
	assert.True(t, strings.HasPrefix(info, "# Pubsubd\r\n"), info)
	for _, line := range []string{"disconnected_clients_output_hard_limit:1", "disconnected_clients_protocol_error:1",
		"disconnected_clients_killed:1", "disconnected_clients_client_closed:1", "disconnected_clients_idle_timeout:0"} {
		assert.Contains(t, strings.Split(info, "\r\n"), line)
	}
	assert.NotContains(t, admin.Do("INFO", "everything").Str, "# Pubsubd", "only INFO pubsubd prints our section")

	admin.Do("CONFIG", "RESETSTAT")
	assert.Zero(t, srv.Stats().Disconnects[OutputHardLimit], "CONFIG RESETSTAT starts the counts again")
}

// ClosedClients keeps the last closedClientsKept, oldest first.
func TestClosedClientsKeepsTheLast(t *testing.T) {
	var r closedRing
	for i := range closedClientsKept + 5 {
		r.add(ClientInfo{ID: int64(i)})
	}
	got := r.list()
	require.Len(t, got, closedClientsKept)
	assert.Equal(t, int64(5), got[0].ID)
	assert.Equal(t, int64(closedClientsKept+4), got[len(got)-1].ID)
}

// Each way a connection ends is recorded with its own reason.
func TestEachDisconnectReason(t *testing.T) {
	payload := strings.Repeat("x", 64<<10)
	flood := func(t *testing.T, addr string) {
		never := redistest.Dial(t, addr)
		never.Send("SUBSCRIBE", "big")
		never.Read()
		pub := redistest.Dial(t, addr)
		for pub.Do("PUBLISH", "big", payload).Int == 1 {
		}
	}
	for _, tc := range []struct {
		name string
		srv  *Server
		act  func(t *testing.T, addr string, srv *Server)
		want DisconnectReason
	}{
		{"a client idle past the timeout", &Server{IdleTimeout: 50 * time.Millisecond},
			func(t *testing.T, addr string, _ *Server) { redistest.Dial(t, addr).Do("PING") }, IdleTimeout},
		{"output over the soft limit past its period", &Server{PubSubOutputLimit: &OutputLimit{Soft: 1 << 20, SoftPeriod: time.Millisecond}},
			func(t *testing.T, addr string, _ *Server) { flood(t, addr) }, OutputSoftLimit},
		{"a command over the query buffer limit", &Server{MaxQueryBuffer: 1 << 10},
			func(t *testing.T, addr string, _ *Server) {
				c := redistest.Dial(t, addr)
				c.Send("PING", strings.Repeat("x", 4<<10))
				_, _ = c.ReadErr()
			}, QueryBufferLimit},
		{"DropClients", &Server{},
			func(t *testing.T, addr string, srv *Server) {
				redistest.Dial(t, addr).Do("PING")
				srv.DropClients()
			}, Killed},
		{"Shutdown", &Server{},
			func(t *testing.T, addr string, srv *Server) {
				redistest.Dial(t, addr).Do("PING")
				require.NoError(t, srv.Shutdown(context.Background()))
			}, ServerShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := start(t, tc.srv)
			tc.act(t, addr, tc.srv)
			redistest.WaitFor(t, "a client to end", func() bool { return tc.srv.Stats().Disconnects[tc.want] >= 1 })
			closed := tc.srv.ClosedClients()
			require.NotEmpty(t, closed)
			assert.Equal(t, tc.want, closed[0].Reason)
		})
	}
}
