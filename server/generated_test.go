package server

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
)

// genScript makes a random script over four connections (two in RESP3)
// from small pools of names, so that subscriptions, patterns and
// publishes collide often. It tracks what each connection holds only to
// keep argument-less unsubscribes to at most one name, whose reply order
// Redis leaves to its hash.
func genScript(r *rand.Rand, steps int) []step {
	channels := []string{"a", "b", "news:서울", "", "a\xff"}
	patterns := []string{"a*", "*", "?", "[ab]", "news:*", "*b*", ""}
	conns := []string{"c0", "c1", "c2", "c3"}
	held := map[string]map[string]map[string]bool{}
	script := []step{
		{conn: "c2", args: []string{"HELLO", "3"}, normalize: normalizeHello},
		{conn: "c3", args: []string{"HELLO", "3"}, normalize: normalizeHello},
	}
	pick := func(pool []string) []string {
		out := []string{}
		for range 1 + r.IntN(3) {
			out = append(out, pool[r.IntN(len(pool))])
		}
		return out
	}
	for range steps {
		conn := conns[r.IntN(len(conns))]
		if held[conn] == nil {
			held[conn] = map[string]map[string]bool{"": {}, "P": {}, "S": {}}
		}
		kind := []string{"", "P", "S"}[r.IntN(3)]
		pool := channels
		if kind == "P" {
			pool = patterns
		}
		switch op := r.IntN(10); {
		case op < 3:
			names := pick(pool)
			for _, n := range names {
				held[conn][kind][n] = true
			}
			script = append(script, step{conn: conn, args: append([]string{kind + "SUBSCRIBE"}, names...)})
		case op < 5:
			names := pick(pool)
			if r.IntN(3) == 0 && len(held[conn][kind]) <= 1 {
				names = nil // unsubscribe from all: at most one reply with a name
			}
			if names == nil {
				clear(held[conn][kind])
			}
			for _, n := range names {
				delete(held[conn][kind], n)
			}
			script = append(script, step{conn: conn, args: append([]string{kind + "UNSUBSCRIBE"}, names...)})
		case op < 8:
			cmd := "PUBLISH"
			if kind == "S" {
				cmd = "SPUBLISH"
			}
			script = append(script, step{conn: "pub", args: []string{cmd, channels[r.IntN(len(channels))], fmt.Sprint("m", r.IntN(100))}, unordered: true})
		default:
			queries := [][]string{
				{"PUBSUB", "CHANNELS"}, {"PUBSUB", "CHANNELS", patterns[r.IntN(len(patterns))]},
				{"PUBSUB", "SHARDCHANNELS"}, append([]string{"PUBSUB", "NUMSUB"}, pick(channels)...),
				append([]string{"PUBSUB", "SHARDNUMSUB"}, pick(channels)...), {"PUBSUB", "NUMPAT"},
			}
			script = append(script, step{conn: "pub", args: queries[r.IntN(len(queries))], sets: true})
		}
	}
	return script
}

// TestGeneratedScriptsMatchRedis runs random scripts on redis-server and
// on our server and compares what every connection receives.
func TestGeneratedScriptsMatchRedis(t *testing.T) {
	redisAddr := redistest.Start(t)
	ours := start(t, &Server{})
	const scripts, steps = 8, 120
	compared := 0
	for seed := range uint64(scripts) {
		script := genScript(rand.New(rand.NewPCG(seed, 5)), steps)
		red := &session{t: t, addr: redisAddr, conns: map[string]*redistest.Conn{}}
		our := &session{t: t, addr: ours, conns: map[string]*redistest.Conn{}}
		for i, st := range script {
			compared += compareStep(t, st, red, our, fmt.Sprintf("script %d step %d %q", seed, i, st.args))
		}
		// Leave both servers with no subscriptions for the next script.
		for _, sess := range []*session{red, our} {
			for name, c := range sess.conns {
				require.Equal(t, "RESET", c.Do("RESET").Str, name)
			}
		}
	}
	t.Logf("compared %d replies and pushes of %d generated scripts with redis-server", compared, scripts)
}
