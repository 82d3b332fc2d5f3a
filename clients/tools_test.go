package clients_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/servertest"
)

// redis-py, Debian's python3-redis for /usr/bin/python3, with its defaults
// (py/clients.py): subscriptions of all three kinds, counts, order,
// introspection, reconnection after the server drops every client,
// unsubscribing.
func TestRedisPy(t *testing.T) {
	const python = "/usr/bin/python3" // the interpreter Debian's python3-redis is for
	_, err := os.Stat(python)
	need(t, err == nil, python+" not found: install Debian's python3 and python3-redis")
	need(t, exec.Command(python, "-c", "import redis").Run() == nil, "the redis module is missing: install Debian's python3-redis")

	srv := servertest.Run(t)
	out := runScript(t, srv, "py", python, "clients.py")
	require.Contains(t, out, "redis-py ok")
}

// redis-cli: a SUBSCRIBE streaming its messages, PUBLISH and PUBSUB from
// the command line, as people try a server by hand.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	need(t, err == nil, "redis-cli not found: install redis-tools")

	srv := servertest.Run(t)
	host, port, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) string {
		out, err := exec.CommandContext(ctx, cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		require.NoError(t, err, "redis-cli %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}

	sub := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "SUBSCRIBE", "news")
	stdout, err := sub.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, sub.Start())
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
	require.NoError(t, srv.WaitSubscribers(ctx, "news", 1))

	assert.Equal(t, "1", run("PUBLISH", "news", "hello"))
	assert.Equal(t, "0", run("PUBLISH", "other", "nobody"))
	assert.Equal(t, "news\n1", run("PUBSUB", "NUMSUB", "news"))
	assert.Equal(t, "0", run("PUBSUB", "NUMPAT"))

	lines := bufio.NewScanner(stdout)
	var got []string
	for len(got) < 6 && lines.Scan() {
		got = append(got, lines.Text())
	}
	assert.Equal(t, []string{"subscribe", "news", "1", "message", "news", "hello"}, got)
}

// redis-benchmark reads the server's CONFIG when it starts and warns when
// it cannot ("Could not fetch server CONFIG").
func TestRedisBenchmarkFetchesConfig(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	need(t, err == nil, "redis-benchmark not found: install redis-tools")
	srv := servertest.Run(t)
	host, port, err := net.SplitHostPort(srv.Addr())
	require.NoError(t, err)
	out, err := exec.Command(bench, "-h", host, "-p", port, "-n", "100", "-c", "1", "-q", "PUBLISH", "bench", "x").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "Could not fetch server CONFIG")
	assert.Contains(t, string(out), "requests per second")
}
