package server

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
)

// redisServerReport starts redis-server with a configuration file of
// text and args after it, as a user would, and returns what it printed
// once it refused to start. Every case here is refused: the good ones by
// "--port 0" at the end, which leaves it nowhere to listen.
func redisServerReport(t *testing.T, file string, args []string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	redistest.Need(t, err == nil, "redis-server is not installed (Debian's redis-server)")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{file}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "redis-server must refuse to start: %v\n%s", err, out)
	return string(out)
}

// TestConfigErrorsAsRedis compares what ReadConfig refuses with what
// redis-server 7.0.15 prints for the same file and command line.
func TestConfigErrorsAsRedis(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"port 7201\nfoo bar\n", nil},
		{"maxclients abc\n", nil},
		{"# a comment\n\n  port 7201\ntimeout -5\n", nil},
		{"port\n", nil},
		{"timeout 1 2\n", nil},
		{"requirepass \"unbalanced\n", nil},
		{"client-output-buffer-limit normal 1 2\n", nil},
		{"client-output-buffer-limit master 1 2 3\n", nil},
		{"appendfsync sometimes\n", nil},
		{"maxmemory 1zb\n", nil},
		{"loglevel debug\nactiverehashing maybe\n", nil},
		{"hz 20\n", []string{"--timeout", "x"}},
		{"port 7201\n", []string{"--maxclients", "10", "--nosuch", "1"}},
		{"save 900 1\n", []string{"--save", "--appendonly", "perhaps"}},
		{"\r\nTIMEOUT 10\r\nMaxClients -1\r\n", nil},
		{"bind 127.0.0.1 ::1\nlatency-tracking-info-percentiles 50 abc\n", nil},
		{"notify-keyspace-events KEx\nnotify-keyspace-events Z!\n", nil},
		{"user alice on >pw bogus\n", nil},
		{"user alice on (+ping\n", nil},
		{"user alice\nuser alice on\n", nil},
		{"user\n", nil},
		{"user bob on &* &x\n", nil},
		{"port 7201\n", []string{"--user", "carol", "#abc"}},
	} {
		file := filepath.Join(t.TempDir(), "redis.conf")
		require.NoError(t, os.WriteFile(file, []byte(tc.file), 0o644))
		want := redisServerReport(t, file, tc.args)
		_, err := ReadConfig(file, tc.args)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, "%q %q: redis-server said:\n%s", tc.file, tc.args, want)
		assert.Equal(t, want, ce.Error(), "%q %q", tc.file, tc.args)
	}
}

// TestConfigAsRedis reads a configuration that redis-server accepts and
// compares CONFIG GET of what it sets, on both servers.
func TestConfigAsRedis(t *testing.T) {
	text := `# a configuration of mixed directives
timeout 30
maxclients 123
client-output-buffer-limit pubsub 1mb 512kb 10
client-output-buffer-limit normal 2mb 1mb 5
save 900 1
save 300 10
loglevel warning
hz 20
client-query-buffer-limit 2mb
notify-keyspace-events KEA
latency-tracking-info-percentiles 50 99 99.99
"slave-read-only" "no"
`
	dir := t.TempDir()
	inc := filepath.Join(dir, "more.conf")
	require.NoError(t, os.WriteFile(inc, []byte("maxmemory 10mb\nappendfsync no\n"), 0o644))
	file := filepath.Join(dir, "redis.conf")
	require.NoError(t, os.WriteFile(file, []byte(text+"include "+inc+"\n"), 0o644))
	args := []string{"--proto-max-bulk-len", "1mb", "--maxclients", "77"}

	names := []string{"timeout", "maxclients", "client-output-buffer-limit", "save", "loglevel", "hz",
		"client-query-buffer-limit", "notify-keyspace-events", "latency-tracking-info-percentiles",
		"replica-read-only", "maxmemory", "appendfsync", "proto-max-bulk-len"}
	theirs := redisServerWithConfig(t, file, args)

	cfg, err := ReadConfig(file, args)
	require.NoError(t, err)
	ours := redistest.Dial(t, start(t, &Server{Config: cfg}))
	for _, name := range names {
		assert.Equal(t, theirs.Do("CONFIG", "GET", name), ours.Do("CONFIG", "GET", name), name)
	}
	v, ok := cfg.Get("maxclients")
	assert.True(t, ok)
	assert.Equal(t, "77", v, "the command line comes after the file")
	_, ok = cfg.Get("port")
	assert.False(t, ok)
}

// redisServerWithConfig starts redis-server with the configuration file
// first, then args, on a free loopback port, and connects to it.
func redisServerWithConfig(t *testing.T, file string, args []string) *redistest.Conn {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	redistest.Need(t, err == nil, "redis-server is not installed (Debian's redis-server)")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, append(append([]string{file}, args...), "--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir())...)
	var out redistest.Output
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			nc.Close()
			return redistest.Dial(t, "127.0.0.1:"+port)
		}
		require.True(t, time.Now().Before(deadline), "redis-server did not start: %v\n%s", err, out.String())
		time.Sleep(10 * time.Millisecond)
	}
}

// An include that includes itself stops, and a missing one is reported.
func TestConfigIncludes(t *testing.T) {
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop.conf")
	require.NoError(t, os.WriteFile(loop, []byte("include "+loop+"\n"), 0o644))
	_, err := ReadConfig(loop, nil)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "too many nested includes", ce.Reason)

	_, err = ReadConfig(filepath.Join(dir, "missing.conf"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "can't open config file")
	assert.Contains(t, err.Error(), "No such file or directory")
}

// Debian's /etc/redis/redis.conf, as installed with redis-server, reads
// as redis-server reads it: CONFIG GET of its directives matches. (Its
// save lines are commented out, so save is Redis's default there and
// empty here: this server never saves, and says so unless told.)
func TestDebianRedisConfAsRedis(t *testing.T) {
	const file = "/etc/redis/redis.conf"
	_, err := os.Stat(file)
	redistest.Need(t, err == nil, file+" is missing (Debian's redis-server installs it)")
	args := []string{"--daemonize", "no", "--logfile", "", "--pidfile", "", "--supervised", "no", "--unixsocket", ""}
	theirs := redisServerWithConfig(t, file, args)
	cfg, err := ReadConfig(file, args)
	require.NoError(t, err)
	ours := redistest.Dial(t, start(t, &Server{Config: cfg}))
	for _, name := range []string{"oom-score-adj-values", "loglevel", "timeout", "tcp-keepalive", "databases",
		"maxclients", "appendonly", "appendfsync", "client-output-buffer-limit", "hz", "notify-keyspace-events",
		"protected-mode", "supervised", "tcp-backlog", "lua-time-limit", "slowlog-max-len", "latency-monitor-threshold",
		"stream-node-max-bytes", "activerehashing", "jemalloc-bg-thread", "daemonize", "logfile", "pidfile"} {
		assert.Equal(t, theirs.Do("CONFIG", "GET", name), ours.Do("CONFIG", "GET", name), name)
	}
}
