package server

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// BenchmarkPipelinedPublish measures the server's cost per command: one
// client pipelines PUBLISH to a channel nobody holds, depth commands per
// write, and reads the replies. Most of it is the loopback round trip;
// the server's share shows in the CPU profile.
func BenchmarkPipelinedPublish(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			addr := start(b, &Server{})
			nc, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			defer nc.Close()
			cmd := []byte("*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$64\r\n" + string(make([]byte, 64)) + "\r\n")
			var batch []byte
			for range depth {
				batch = append(batch, cmd...)
			}
			reply := make([]byte, len(":0\r\n")*depth)
			br := bufio.NewReader(nc)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				if _, err := nc.Write(batch); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(br, reply); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}

// BenchmarkFanout measures the server's fan-out: subs subscriber
// connections read a channel, and one client pipelines PUBLISH to it, 16
// commands per write, reading the replies. An op is one PUBLISH; it
// reports deliveries a second, the subscribers reading as fast as they
// can on loopback.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{10, 100} {
		b.Run("subs="+strconv.Itoa(subs), func(b *testing.B) {
			addr := start(b, &Server{PubSubOutputLimit: &OutputLimit{}})
			var wg sync.WaitGroup
			msg := "*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$64\r\n" + string(make([]byte, 64)) + "\r\n"
			for range subs {
				nc, err := net.Dial("tcp", addr)
				require.NoError(b, err)
				defer nc.Close()
				_, err = nc.Write(resp.AppendCommand(nil, "SUBSCRIBE", "bench"))
				require.NoError(b, err)
				br := bufio.NewReader(nc)
				for range 6 { // the confirmation's lines
					_, err := br.ReadString('\n')
					require.NoError(b, err)
				}
				wg.Add(1)
				go func() { // reads every message, then returns
					defer wg.Done()
					_, _ = io.CopyN(io.Discard, br, int64(len(msg)*b.N))
				}()
			}
			nc, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			defer nc.Close()
			cmd := []byte("*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$64\r\n" + string(make([]byte, 64)) + "\r\n")
			br := bufio.NewReader(nc)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 16 {
				k := min(16, b.N-i)
				if _, err := nc.Write(bytes.Repeat(cmd, k)); err != nil {
					b.Fatal(err)
				}
				for range k {
					if _, err := br.ReadString('\n'); err != nil {
						b.Fatal(err)
					}
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*subs)/b.Elapsed().Seconds(), "deliv/s")
		})
	}
}

// BenchmarkOrderAcrossConnections counts how often a command that came
// later on one connection takes effect before commands that came earlier
// on another, beside redis-server on the same input (its single event loop
// never reorders them, nor does this server's, but two commands that reach
// either within microseconds on two sockets are ordered by epoll). Each op
// opens a fresh connection A and sends, without reading:
//
//   - unsubscribe: SSUBSCRIBE x y z, SUNSUBSCRIBE x on A, then SPUBLISH x
//     on an open connection B: Redis answers 0;
//   - subscribe: SUBSCRIBE x on A, then PUBLISH x on B: Redis answers 1
//     unless A's command was still unread when B's came (its accept and
//     its first read fall in different event-loop turns).
//
// It reports the answers that differ from those, per 1,000 ops.
func BenchmarkOrderAcrossConnections(b *testing.B) {
	servers := []struct{ name, addr string }{{"pubsubd", start(b, &Server{})}}
	if _, err := exec.LookPath("redis-server"); err == nil {
		servers = append(servers, struct{ name, addr string }{"redis", redistest.Start(b)})
	}
	for _, sc := range []struct{ name, want string }{{"unsubscribe", ":0"}, {"subscribe", ":1"}} {
		for _, srv := range servers {
			b.Run(sc.name+"/"+srv.name, func(b *testing.B) {
				pub, err := net.Dial("tcp", srv.addr)
				require.NoError(b, err)
				defer pub.Close()
				replies := bufio.NewReader(pub)
				reordered := 0
				for i := range b.N {
					a, err := net.Dial("tcp", srv.addr)
					require.NoError(b, err)
					ch := "{s}" + strconv.Itoa(i)
					publish := "PUBLISH"
					if sc.name == "unsubscribe" {
						_, err = a.Write(resp.AppendCommand(nil, "SSUBSCRIBE", ch, ch+"y", ch+"z"))
						require.NoError(b, err)
						_, err = a.Write(resp.AppendCommand(nil, "SUNSUBSCRIBE", ch))
						publish = "SPUBLISH"
					} else {
						_, err = a.Write(resp.AppendCommand(nil, "SUBSCRIBE", ch))
					}
					require.NoError(b, err)
					_, err = pub.Write(resp.AppendCommand(nil, publish, ch, "x"))
					require.NoError(b, err)
					line, err := replies.ReadString('\n')
					require.NoError(b, err)
					if strings.TrimSpace(line) != sc.want {
						reordered++
					}
					a.Close()
				}
				b.ReportMetric(1000*float64(reordered)/float64(b.N), "reordered/1000")
			})
		}
	}
}

// BenchmarkPermissionCheck is the ACL check before each command: for the
// default user (every command and channel), and for a user limited to
// the Pub/Sub commands and two channel patterns, publishing to a channel
// the second pattern allows.
func BenchmarkPermissionCheck(b *testing.B) {
	a := newACLState("", false)
	limited := a.newUser("svc")
	for _, rule := range []string{"on", "nopass", "resetchannels", "&payments:*", "&orders:*", "-@all", "+@pubsub"} {
		if err := a.setUser(limited, rule); err != nil {
			b.Fatal(err)
		}
	}
	publish := aclTable().byName["publish"]
	args := []string{"PUBLISH", "orders:42", "placed"}
	for _, u := range []*aclUser{a.def, limited} {
		b.Run("user="+u.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, _ := u.check(publish, false, args); d != aclOK {
					b.Fatal(d)
				}
			}
		})
	}
}

// BenchmarkCredentials checks a user name and password as AUTH does: an
// unknown user, a disabled one and a wrong password do the same work (a
// hash and a constant-time comparison), so that no timing tells them
// apart; the figures of the four cases should agree.
func BenchmarkCredentials(b *testing.B) {
	a := newACLState("secret", false)
	for _, rule := range [][]string{{"alice", "on", ">alicepw"}, {"bob", "off", ">bobpw"}} {
		u := a.newUser(rule[0])
		for _, r := range rule[1:] {
			if err := a.setUser(u, r); err != nil {
				b.Fatal(err)
			}
		}
		a.users[rule[0]] = u
	}
	for _, tc := range []struct{ name, user, pass string }{
		{"right", "alice", "alicepw"}, {"wrong-password", "alice", "nope123"},
		{"unknown-user", "nobody", "nope123"}, {"disabled-user", "bob", "bobpw"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = a.credentials(tc.user, tc.pass)
			}
		})
	}
}

// BenchmarkCommandPath measures the loop's own work per command, without
// a system call: parse a pipeline of 16 PUBLISH of 64 bytes, run them and
// queue their replies (and, with a subscriber, its messages). The output
// is dropped after each pipeline, as a write would take it. It is the
// user-space share of the cheap-command cells of bench/servers.sh;
// auth-fails is that of an AUTH flood (bench/fairness -auth-flood).
func BenchmarkCommandPath(b *testing.B) {
	publish := "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$64\r\n" + strings.Repeat("x", 64) + "\r\n"
	for _, bc := range []struct {
		name     string
		subs     int
		password string // the server's
		cmd      string
	}{
		{"subs=0", 0, "", publish},
		{"subs=1", 1, "", publish},
		{"subs=10", 10, "", publish},
		// A failed AUTH: the password hashed and compared, the denial in ACL LOG.
		{"auth-fails", 0, "s3cret", "*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n"},
	} {
		subs := bc.subs
		b.Run(bc.name, func(b *testing.B) {
			srv := &Server{Password: bc.password, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			srv.mu.Lock()
			srv.init()
			srv.mu.Unlock()
			defer srv.Close()
			client := func() *conn {
				peer, pipe := net.Pipe()
				b.Cleanup(func() { peer.Close() })
				c := newConn(srv, pipe)
				srv.mu.Lock()
				srv.conns[c.id] = c
				srv.mu.Unlock()
				return c
			}
			drop := func(c *conn) {
				c.mu.Lock()
				for _, chunk := range c.out.chunks {
					srv.chunks.Put((*[outChunk]byte)(chunk[:outChunk]))
				}
				c.out = outQueue{}
				c.mu.Unlock()
			}
			pub := client()
			var subscribers []*conn
			for range subs {
				subscribers = append(subscribers, client())
			}
			batch := []byte(strings.Repeat(bc.cmd, 16))
			done := make(chan struct{})
			srv.loop.do(func() { // commands run on the loop only
				defer close(done)
				for _, c := range subscribers {
					c.run([]string{"SUBSCRIBE", "bench"})
					drop(c)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += 16 {
					for rest := batch; len(rest) > 0; {
						n := copy(pub.dec.Space(), rest)
						pub.dec.Wrote(n)
						rest = rest[n:]
					}
					srv.loop.runCommands(pub)
					drop(pub)
					for _, c := range subscribers {
						drop(c)
					}
				}
				b.StopTimer()
			})
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}
