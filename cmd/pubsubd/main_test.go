package main

import (
	"crypto/tls"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
	"github.com/gopherpubsub/pubsub/internal/tlstest"
	"github.com/gopherpubsub/pubsub/server"
)

// need is redistest.Need.
func need(t *testing.T, ok bool, msg string) { t.Helper(); redistest.Need(t, ok, msg) }

// TestSIGTERMWithAClientThatNeverReads: pubsubd exits within its shutdown
// timeout on SIGTERM, whatever a client does; here one has sent a
// pipeline and QUIT and never reads its replies.
func TestSIGTERMWithAClientThatNeverReads(t *testing.T) {
	bin := buildPubsubd(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var log redistest.Output
	srv := exec.Command(bin, "-port", strconv.Itoa(port), "-shutdown-timeout", "500ms")
	srv.Stdout, srv.Stderr = &log, &log
	require.NoError(t, srv.Start())
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() { _ = srv.Process.Kill() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitListening(t, addr, &log)
	nc := redistest.DialSmallReadBuffer(t, addr, 4096)
	var pipeline []byte
	for range 4000 {
		pipeline = resp.AppendCommand(pipeline, "ECHO", strings.Repeat("x", 4096))
	}
	_, err = nc.Write(append(pipeline, resp.AppendCommand(nil, "QUIT")...))
	require.NoError(t, err)

	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		assert.NoError(t, err, "log:\n%s", log.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("pubsubd did not exit within 10 s of SIGTERM (shutdown timeout 500 ms); log:\n%s", log.String())
	}
}

// TestHelpListsTheFlags: -h exits 0 and lists every flag, each of which
// the package doc (go doc ./cmd/pubsubd) names too.
func TestHelpListsTheFlags(t *testing.T) {
	err := run([]string{"-h"})
	require.ErrorIs(t, err, flag.ErrHelp)
	out, err := exec.Command("go", "run", ".", "-h").CombinedOutput()
	require.NoError(t, err, "pubsubd -h must exit 0: %s", out)
	doc, err := exec.Command("go", "doc", ".").CombinedOutput()
	require.NoError(t, err, "go doc: %s", doc)
	for _, name := range []string{"bind", "port", "requirepass", "maxclients", "timeout", "client-output-buffer-limit-pubsub", "client-output-buffer-limit-normal", "client-query-buffer-limit", "shutdown-timeout", "monitor"} {
		assert.Contains(t, string(out), "-"+name+" ", "pubsubd -h")
		assert.Contains(t, string(doc), "-"+name+" ", "go doc ./cmd/pubsubd")
	}
}

func TestConfigureTakesRedisNotation(t *testing.T) {
	var srv server.Server
	require.NoError(t, configure(&srv, "300", "16mb 4mb 30", "0 0 0", "512mb"))
	assert.Equal(t, 300*time.Second, srv.IdleTimeout)
	assert.Equal(t, server.OutputLimit{Hard: 16 << 20, Soft: 4 << 20, SoftPeriod: 30 * time.Second}, *srv.PubSubOutputLimit)
	assert.Equal(t, server.OutputLimit{}, *srv.NormalOutputLimit)
	assert.Equal(t, int64(512<<20), srv.MaxQueryBuffer)
	require.NoError(t, configure(&srv, "1m30s", "32mb 8mb 60", "0 0 0", "1gb"))
	assert.Equal(t, 90*time.Second, srv.IdleTimeout)
	assert.Error(t, configure(&srv, "soon", "32mb 8mb 60", "0 0 0", "1gb"))
	assert.Error(t, configure(&srv, "0", "32mb 8mb", "0 0 0", "1gb"))
	assert.Error(t, configure(&srv, "0", "32mb 8mb 60", "0 0 0", "lots"))
}

// TestMonitorServesTheEndpoints: with -monitor, pubsubd serves /metrics
// and the JSON endpoints beside the Redis port, and still exits cleanly on
// SIGTERM.
func TestMonitorServesTheEndpoints(t *testing.T) {
	bin := buildPubsubd(t)
	var log redistest.Output
	srv := exec.Command(bin, "-port", "0", "-monitor", "127.0.0.1:0")
	srv.Stdout, srv.Stderr = &log, &log
	require.NoError(t, srv.Start())
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() { _ = srv.Process.Kill() })

	addrIn := func(prefix string) string {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, rest, ok := strings.Cut(log.String(), prefix); ok {
				addr, _, _ := strings.Cut(rest, "\n")
				return strings.TrimSpace(addr)
			}
			require.True(t, time.Now().Before(deadline), "no %q in the log:\n%s", prefix, log.String())
			time.Sleep(10 * time.Millisecond)
		}
	}
	monitorURL := addrIn("msg=\"pubsubd monitoring\" addr=")
	redisAddr := addrIn("msg=\"ready to accept connections\" addr=")
	c := redistest.Dial(t, redisAddr)
	c.Do("SUBSCRIBE", "news")

	for path, want := range map[string]string{
		"/metrics": "pubsubd_clients 1",
		"/varz":    `"connections": 1`,
		"/connz":   `"channels": 1`,
		"/subsz":   `"name": "news"`,
	} {
		resp, err := http.Get(monitorURL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Contains(t, string(body), want, path)
	}

	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		assert.NoError(t, err, "log:\n%s", log.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("pubsubd did not exit within 10 s of SIGTERM; log:\n%s", log.String())
	}
}

// TestTLSPortServesRedisCli: with -port 0 and a TLS port, pubsubd serves
// redis-cli --tls with the test CA's certificates, a subscriber over TLS
// receives what redis-cli publishes, and a plain-text client on the TLS
// port is served nothing.
func TestTLSPortServesRedisCli(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	need(t, err == nil, "redis-cli (Debian's redis-tools) is not installed")
	ca := tlstest.NewCA(t)
	srvCert, cliCert := ca.Server(), ca.Client()
	bin := buildPubsubd(t)
	port := freePort(t)

	var log redistest.Output
	srv := exec.Command(bin, "-port", "0", "-tls-port", port, "-tls-cert-file", srvCert.CertFile,
		"-tls-key-file", srvCert.KeyFile, "-tls-ca-cert-file", ca.CertFile)
	srv.Stdout, srv.Stderr = &log, &log
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addr := net.JoinHostPort("127.0.0.1", port)
	redisCli := func(args ...string) string {
		t.Helper()
		full := append([]string{"--tls", "--cacert", ca.CertFile, "--cert", cliCert.CertFile, "--key", cliCert.KeyFile, "-p", port}, args...)
		out, err := exec.Command(cli, full...).CombinedOutput()
		require.NoError(t, err, "redis-cli %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	waitListening(t, addr, &log)
	assert.Equal(t, "PONG", redisCli("PING"))

	sub, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{cliCert.TLS}, ServerName: "localhost"})
	require.NoError(t, err)
	defer sub.Close()
	_ = sub.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = sub.Write(resp.AppendCommand(nil, "SUBSCRIBE", "news"))
	require.NoError(t, err)
	r := resp.NewReader(sub)
	_, err = r.ReadValue() // the confirmation
	require.NoError(t, err)
	assert.Equal(t, "1", redisCli("PUBLISH", "news", "over tls"))
	m, err := r.ReadValue()
	require.NoError(t, err)
	assert.Equal(t, "over tls", m.Elems[2].Str)

	plain, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.Write(resp.AppendCommand(nil, "PING"))
	require.NoError(t, err)
	_ = plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(plain)
	require.NoError(t, err, "closed by the server")
	assert.NotContains(t, string(got), "PONG")
}

// TestTLSFlagsAreChecked: a TLS port without a certificate, or asking for
// clients' certificates without a CA, stops the start with a clear error.
func TestTLSFlagsAreChecked(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.Server()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-port", "1"}, "TLS needs tls-cert-file and tls-key-file"},
		{[]string{"-tls-port", "1", "-tls-cert-file", pair.CertFile, "-tls-key-file", pair.KeyFile}, "either tls-ca-cert-file or tls-ca-cert-dir must be specified"},
		{[]string{"-tls-port", "1", "-tls-cert-file", pair.CertFile, "-tls-key-file", pair.KeyFile, "-tls-auth-clients", "no", "-tls-protocols", "SSLv3"}, `unknown protocol "SSLv3"`},
		{[]string{"-tls-port", "1", "-tls-cert-file", pair.KeyFile, "-tls-key-file", pair.KeyFile, "-tls-auth-clients", "no"}, "tls-cert-file, tls-key-file"},
	} {
		err := run(tc.args)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

// freePort is a loopback port free now, for pubsubd to listen on.
func freePort(t *testing.T) string {
	t.Helper()
	p, err := redistest.FreePort()
	require.NoError(t, err)
	return strconv.Itoa(p)
}

// buildPubsubd builds the binary for a test.
func buildPubsubd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pubsubd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building pubsubd")
	return bin
}

// waitListening waits until pubsubd accepts connections on addr.
func waitListening(t *testing.T, addr string, log *redistest.Output) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
			return
		}
		require.True(t, time.Now().Before(deadline), "pubsubd not listening on %s: %v; log:\n%s", addr, err, log.String())
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConfigFileThenCommandLine: pubsubd /path/redis.conf --directive v
// -flag v reads the file, then the directives, then the flags, the later
// winning, as redis-server reads its configuration.
func TestConfigFileThenCommandLine(t *testing.T) {
	bin := buildPubsubd(t)
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "redis.conf")
	require.NoError(t, os.WriteFile(conf, []byte("port "+port+"\ntimeout 30\nmaxclients 50\nhz 20\nrequirepass fromfile\n"), 0o644))

	var log redistest.Output
	srv := exec.Command(bin, conf, "--maxclients", "60", "--hz", "15", "-requirepass", "fromflag")
	srv.Stdout, srv.Stderr = &log, &log
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addr := net.JoinHostPort("127.0.0.1", port)
	waitListening(t, addr, &log)
	c := redistest.Dial(t, addr)
	assert.Equal(t, "OK", c.Do("AUTH", "fromflag").Str, "the flag comes last")
	for name, want := range map[string]string{"timeout": "30", "maxclients": "60", "hz": "15", "port": port} {
		assert.Equal(t, want, c.Do("CONFIG", "GET", name).Elems[1].Str, name)
	}
}

// TestConfigErrorAsRedisServer: a configuration redis-server refuses
// stops pubsubd with the same report on standard error and exit status 1.
func TestConfigErrorAsRedisServer(t *testing.T) {
	redisServer, err := exec.LookPath("redis-server")
	need(t, err == nil, "redis-server is not installed (Debian's redis-server)")
	bin := buildPubsubd(t)
	conf := filepath.Join(t.TempDir(), "redis.conf")
	require.NoError(t, os.WriteFile(conf, []byte("port 7201\nmaxclients many\n"), 0o644))
	for _, args := range [][]string{{conf}, {conf, "--timeout", "soon"}, {"--nosuch", "1"}} {
		theirs := exec.Command(redisServer, args...)
		var theirOut strings.Builder
		theirs.Stderr = &theirOut
		theirErr := theirs.Run()
		ours := exec.Command(bin, args...)
		var ourOut strings.Builder
		ours.Stderr = &ourOut
		ourErr := ours.Run()
		var theirExit, ourExit *exec.ExitError
		require.ErrorAs(t, theirErr, &theirExit, "%v", args)
		require.ErrorAs(t, ourErr, &ourExit, "%v", args)
		assert.Equal(t, theirExit.ExitCode(), ourExit.ExitCode(), "%v", args)
		assert.Equal(t, theirOut.String(), ourOut.String(), "%v", args)
	}
}

// TestUsersFromConfigAndACLFile: users declared in redis.conf get their
// permissions; an ACL file given with --aclfile is loaded, saved and
// reloaded; a bad ACL file stops pubsubd before it listens, with Redis's
// report of the line.
func TestUsersFromConfigAndACLFile(t *testing.T) {
	bin := buildPubsubd(t)
	dir := t.TempDir()
	port := func() string { return freePort(t) }
	startd := func(args ...string) string {
		p := port()
		var log redistest.Output
		srv := exec.Command(bin, append(args, "--port", p)...)
		srv.Stdout, srv.Stderr = &log, &log
		require.NoError(t, srv.Start())
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
		addr := net.JoinHostPort("127.0.0.1", p)
		waitListening(t, addr, &log)
		return addr
	}

	conf := filepath.Join(dir, "redis.conf")
	require.NoError(t, os.WriteFile(conf, []byte("user orders-svc on >s3cret resetchannels &orders:* -@all +@pubsub\n"), 0o644))
	c := redistest.Dial(t, startd(conf))
	assert.Equal(t, "OK", c.Do("AUTH", "orders-svc", "s3cret").Str)
	assert.Equal(t, int64(0), c.Do("PUBLISH", "orders:1", "placed").Int)
	assert.Equal(t, "NOPERM this user has no permissions to access one of the channels used as arguments", c.Do("PUBLISH", "payments:1", "x").Str)

	acl := filepath.Join(dir, "users.acl")
	require.NoError(t, os.WriteFile(acl, []byte("user default on nopass ~* &* +@all\nuser svc on >pw resetchannels &a -@all +publish\n"), 0o644))
	c = redistest.Dial(t, startd("--aclfile", acl))
	assert.Equal(t, acl, c.Do("CONFIG", "GET", "aclfile").Elems[1].Str)
	assert.Equal(t, "OK", c.Do("ACL", "SETUSER", "late", "on", "nopass").Str)
	assert.Equal(t, "OK", c.Do("ACL", "SAVE").Str)
	saved, err := os.ReadFile(acl)
	require.NoError(t, err)
	assert.Contains(t, string(saved), "user late on nopass resetchannels -@all\n")
	assert.Equal(t, "OK", c.Do("ACL", "LOAD").Str)
	assert.Len(t, c.Do("ACL", "USERS").Elems, 3)

	require.NoError(t, os.WriteFile(acl, []byte("user svc on bogus\n"), 0o644))
	out, err := exec.Command(bin, "--aclfile", acl, "--port", port()).CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Contains(t, string(out), "Aborting Redis startup because of ACL errors: "+acl+":1: Syntax error.")
	assert.NotContains(t, string(out), "ready to accept", "refused before it listens")
}

// TestBindEveryAddress: as redis-server, pubsubd listens on every bind
// address, and skips one given with "-" that this host does not have.
func TestBindEveryAddress(t *testing.T) {
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil { // a property of the host, not a dependency CI installs
		t.Skip("no IPv6 loopback on this host")
	}
	ln6.Close()
	bin := buildPubsubd(t)
	port := freePort(t)
	var log redistest.Output
	srv := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "-::1", "-192.0.2.1")
	srv.Stdout, srv.Stderr = &log, &log
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, port)
		waitListening(t, addr, &log)
		assert.Equal(t, "PONG", redistest.Dial(t, addr).Do("PING").Str, addr)
	}
	out, err := exec.Command(bin, "--port", port, "--bind", "192.0.2.1").CombinedOutput()
	require.Error(t, err, "an address this host does not have, not optional")
	assert.Contains(t, string(out), "192.0.2.1")
}
