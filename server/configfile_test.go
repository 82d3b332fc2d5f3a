package server

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
		{"rename-command nosuch x\n", nil},
		{"rename-command publish subscribe\n", nil},
		{"rename-command publish pub2\nrename-command PUBLISH p3\n", nil},
		{"rename-command publish\n", nil},
		{"rename-command get x y\n", nil},
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

// TestConfigRewriteAsRedis gives redis-server and this server the same
// configuration file, changes parameters and users with CONFIG SET and
// ACL SETUSER on both, has both rewrite their file, and compares the
// files: the lines in place exactly (the port and dir lines aside, which
// differ between the two servers), the lines appended after "# Generated
// by CONFIG REWRITE" as sets (redis-server appends them in its parameter
// table's hash order).
func TestConfigRewriteAsRedis(t *testing.T) {
	text := "# a configuration to rewrite\n\n\n" +
		"timeout 30\nTIMEOUT 40\n" +
		"maxclients 123\n" +
		"save 900 1\nsave 300 10\n" +
		"client-output-buffer-limit pubsub 1mb 512kb 10\n" +
		"HASH-MAX-ZIPLIST-ENTRIES 100\nhash-max-listpack-entries 200\n" +
		"slave-priority 5\nreplica-priority 6\n" +
		"requirepass \"\"\n" +
		"logfile \"\"\n" +
		"user bob on >pw resetchannels &orders:* -@all +@pubsub\n" +
		"# keep me\n\n" +
		"loglevel notice\n" +
		"latency-tracking-info-percentiles 50 99\n" +
		"notify-keyspace-events \"\"\n" +
		"proto-max-bulk-len 536870912\n"
	dir := t.TempDir()
	theirFile, ourFile := filepath.Join(dir, "redis.conf"), filepath.Join(dir, "ours.conf")
	inc := filepath.Join(dir, "inc.conf")
	require.NoError(t, os.WriteFile(inc, []byte("hz 15\n"), 0o644))
	text += "include " + inc + "\n"
	require.NoError(t, os.WriteFile(theirFile, []byte(text), 0o644))
	require.NoError(t, os.WriteFile(ourFile, []byte(text), 0o644))

	theirs := redistest.Dial(t, redistest.StartWithConfig(t, theirFile).Addr)
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""}
	cfg, err := ReadConfig(ourFile, args)
	require.NoError(t, err)
	ours := redistest.Dial(t, start(t, &Server{Config: cfg}))
	for _, cmd := range [][]string{
		{"CONFIG", "SET", "maxclients", "200", "acllog-max-len", "64", "client-query-buffer-limit", "2mb"},
		{"CONFIG", "SET", "slowlog-max-len", "256", "notify-keyspace-events", "KEA", "active-defrag-ignore-bytes", "300mb"},
		{"CONFIG", "SET", "client-output-buffer-limit", "normal 2mb 1mb 5"},
		{"CONFIG", "SET", "requirepass", "s p"},
		{"AUTH", "s p"},
		{"ACL", "SETUSER", "carl", "on", "nopass", "&*", "+@all"},
		{"ACL", "SETUSER", "bob", "+ping"},
		{"CONFIG", "REWRITE"},
	} {
		require.Equal(t, theirs.Do(cmd...), ours.Do(cmd...), "%q", cmd)
	}
	canon := func(file string) (string, []string) {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		inPlace, appended, _ := strings.Cut(string(b), "# Generated by CONFIG REWRITE\n")
		var lines []string
		for _, l := range strings.Split(appended, "\n") {
			if !strings.HasPrefix(l, "port ") && !strings.HasPrefix(l, "dir ") {
				lines = append(lines, canonRules(l))
			}
		}
		slices.Sort(lines)
		return inPlace, lines
	}
	theirInPlace, theirAppended := canon(theirFile)
	ourInPlace, ourAppended := canon(ourFile)
	assert.Equal(t, theirInPlace, ourInPlace)
	assert.Equal(t, theirAppended, ourAppended)

	// The rewritten file starts a server as the one that wrote it.
	again, err := ReadConfig(ourFile, nil)
	require.NoError(t, err)
	restarted := redistest.Dial(t, start(t, &Server{Config: again}))
	require.Equal(t, "OK", restarted.Do("AUTH", "s p").Str)
	for _, name := range []string{"maxclients", "timeout", "client-output-buffer-limit", "notify-keyspace-events", "hz", "requirepass", "save"} {
		assert.Equal(t, ours.Do("CONFIG", "GET", name), restarted.Do("CONFIG", "GET", name), name)
	}
	// As redis-server, a "user default" line resets the default user
	// first, which flags it sanitize-payload; the others read back as
	// they were.
	want := ours.Do("ACL", "LIST")
	last := &want.Elems[len(want.Elems)-1]
	last.Str = strings.Replace(last.Str, "user default on ", "user default on sanitize-payload ", 1)
	assert.Equal(t, want, restarted.Do("ACL", "LIST"))
	assert.Equal(t, "ERR The server is running without a config file", redistest.Dial(t, start(t, &Server{})).Do("CONFIG", "REWRITE").Str)
}

// With an ACL file, CONFIG REWRITE leaves the users to it: the file's
// "user" lines go, as in Redis.
func TestConfigRewriteLeavesUsersToTheACLFile(t *testing.T) {
	dir := t.TempDir()
	conf, acl := filepath.Join(dir, "redis.conf"), filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte("user default on nopass ~* &* +@all\n"), 0o644))
	require.NoError(t, os.WriteFile(conf, []byte("aclfile "+acl+"\n# users\ntimeout 5\n"), 0o644))
	cfg, err := ReadConfig(conf, nil)
	require.NoError(t, err)
	c := redistest.Dial(t, start(t, &Server{Config: cfg}))
	require.Equal(t, "OK", c.Do("ACL", "SETUSER", "x", "on").Str)
	require.Equal(t, "OK", c.Do("CONFIG", "SET", "timeout", "7").Str)
	require.Equal(t, "OK", c.Do("CONFIG", "REWRITE").Str)
	b, err := os.ReadFile(conf)
	require.NoError(t, err)
	assert.Equal(t, "aclfile \""+acl+"\"\n# users\ntimeout 7\n", strings.SplitAfter(string(b), "timeout 7\n")[0])
	assert.NotContains(t, string(b), "user ")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary file left")
}

// rename-command renames a command for both servers alike: the old name
// is unknown, the new one runs it; to "" removes it.
func TestRenameCommandAsRedis(t *testing.T) {
	args := []string{"--rename-command", "publish", "pub2", "--rename-command", "CONFIG", "", "--rename-command", "pubsub", "PS"}
	cfg, err := ReadConfig("", args)
	require.NoError(t, err)
	theirs := redistest.Dial(t, redistest.Start(t, args...))
	ours := redistest.Dial(t, start(t, &Server{Config: cfg}))
	for _, cmd := range [][]string{
		{"PUBLISH", "a", "b"}, {"pub2", "a", "b"}, {"PUB2", "a"}, {"CONFIG", "GET", "port"},
		{"PS", "NUMSUB", "a"}, {"pubsub", "NUMSUB", "a"}, {"ps", "help", "x"},
		{"ACL", "DRYRUN", "default", "publish", "a", "b"}, {"ACL", "SETUSER", "u", "+publish", "-pub2"},
	} {
		assert.Equal(t, theirs.Do(cmd...), ours.Do(cmd...), "%q", cmd)
	}
}
