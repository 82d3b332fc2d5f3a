package seed

import (
	"flag"
	"fmt"
	"net"
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
)

// python is the interpreter Debian's python3-redis is installed for.
const python = "/usr/bin/python3"

// TestMain runs the seed test only where it can run: the article's
// programs beside the repository, and Python with redis-py. Elsewhere it
// says so and runs no test, so that go test's summary line, the only one
// shown for a package that passes, reads "[no tests to run]" instead of
// a bare "ok"; under CI the test runs, and fails for what is missing.
func TestMain(m *testing.M) {
	flag.Parse()
	if why := cannotRun(); why != "" && os.Getenv("CI") == "" {
		fmt.Printf("examples/seed: %s, so the article's programs were not run\n", why)
		_ = flag.Set("test.run", "^$")
	}
	os.Exit(m.Run())
}

// cannotRun says what the seed test lacks here, or "".
func cannotRun() string {
	if findSeed() == "" {
		return "shared/seed was not found beside the repository"
	}
	if _, err := os.Stat(python); err != nil {
		return python + " was not found (Debian: apt-get install python3-redis)"
	}
	if exec.Command(python, "-c", "import redis").Run() != nil {
		return "redis-py is not installed for " + python + " (Debian: apt-get install python3-redis)"
	}
	return ""
}

// findSeed returns shared/seed beside the repository, or "".
func findSeed() string {
	dir, err := filepath.Abs(".")
	if err != nil {
		return ""
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "shared", "seed", "publisher.py")); err == nil && !st.IsDir() {
			return filepath.Join(dir, "shared", "seed")
		}
	}
	return ""
}

// TestSeedProgramsRunUnchanged runs the article's three redis-py programs,
// as written, against pubsubd on localhost:6379. When something already
// listens there (the README's quick start, or a redis-server service), the
// test's pubsubd takes a free port instead, and the programs' Python is
// started with a sitecustomize module that sends their connections to
// localhost:6379 there: their code is still the article's, byte for byte.
func TestSeedProgramsRunUnchanged(t *testing.T) {
	if why := cannotRun(); why != "" {
		t.Fatal(why) // only under CI: elsewhere TestMain runs no test then
	}
	seed := findSeed()

	bin := filepath.Join(t.TempDir(), "pubsubd")
	build := exec.Command("go", "build", "-o", bin, "github.com/gopherpubsub/pubsub/cmd/pubsubd")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run(), "building pubsubd")

	port, pyEnv := 6379, os.Environ()
	if reachable("127.0.0.1:6379") || reachable("[::1]:6379") {
		port = freePort(t)
		shim := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(shim, "sitecustomize.py"), []byte(seedRedirect), 0o644))
		pyEnv = append(pyEnv, "PYTHONPATH="+shim, "PUBSUB_SEED_PORT="+strconv.Itoa(port))
		t.Logf("localhost:6379 is taken; pubsubd listens on %d and the programs' connections to 6379 go there", port)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	var serverLog redistest.Output
	srv := exec.Command(bin, "-port", strconv.Itoa(port))
	srv.Stdout, srv.Stderr = &serverLog, &serverLog
	require.NoError(t, srv.Start())
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			assert.NoError(t, err, "pubsubd exit after SIGTERM; log:\n%s", serverLog.String())
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			t.Error("pubsubd did not stop within 10s of SIGTERM")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(serverLog.String(), "ready to accept connections") {
		select {
		case err := <-exited:
			t.Fatalf("pubsubd on port %d exited (%v); log:\n%s", port, err, serverLog.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "pubsubd not ready; log:\n%s", serverLog.String())
		time.Sleep(20 * time.Millisecond)
	}
	if port == 6379 {
		// Whatever "localhost" resolves to must be our server, not a
		// Redis listening on ::1: only ours refuses GET.
		for _, a := range []string{"127.0.0.1:6379", "[::1]:6379"} {
			if a[0] == '[' && !reachable(a) {
				continue
			}
			c := redistest.Dial(t, a)
			reply := c.Do("GET", "any")
			require.Contains(t, reply.Str, "Pub/Sub only", "the server at %s is not pubsubd", a)
			c.Close()
		}
	}

	run := func(name string) (*exec.Cmd, *redistest.Output) {
		var out redistest.Output
		cmd := exec.Command(python, "-u", filepath.Join(seed, name))
		cmd.Env = pyEnv
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, &out
	}
	_, subOut := run("subscriber.py")
	_, psubOut := run("psubscriber.py")

	ctl := redistest.Dial(t, addr)
	deadline = time.Now().Add(20 * time.Second)
	for {
		numSub := ctl.Do("PUBSUB", "NUMSUB", "news").Elems[1].Int
		numPat := ctl.Do("PUBSUB", "NUMPAT").Int
		if numSub == 1 && numPat == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "subscribers not subscribed (NUMSUB news = %d, NUMPAT = %d); output:\n%s\n%s", numSub, numPat, subOut, psubOut)
		time.Sleep(20 * time.Millisecond)
	}

	pub := exec.Command(python, filepath.Join(seed, "publisher.py"))
	pub.Env = pyEnv
	pubOut, err := pub.CombinedOutput()
	require.NoError(t, err, "publisher.py: %s", pubOut)
	// news:* does not match "news": give the pattern subscriber a news: channel.
	assert.Equal(t, int64(1), ctl.Do("PUBLISH", "news:서울", "패턴 구독 확인").Int)

	var want []string
	for i := 1; i <= 5; i++ {
		want = append(want, "[RECEIVE] (news) <- 안녕하세요, Redis Pub/Sub 테스트입니다! ("+string(rune('0'+i))+")")
	}
	deadline = time.Now().Add(20 * time.Second)
	for !strings.Contains(subOut.String(), want[4]) || !strings.Contains(psubOut.String(), "패턴 구독 확인") {
		require.True(t, time.Now().Before(deadline), "output so far:\n%s\n%s", subOut, psubOut)
		time.Sleep(20 * time.Millisecond)
	}
	var got []string
	for _, line := range strings.Split(subOut.String(), "\n") {
		if strings.HasPrefix(line, "[RECEIVE]") {
			got = append(got, line)
		}
	}
	assert.Equal(t, want, got, "subscriber.py prints the five messages in order")
	assert.Contains(t, psubOut.String(), "[RECEIVE] (news:서울) <- 패턴 구독 확인")
	assert.Contains(t, string(pubOut), "발행 완료. Publisher 종료.")
}

// seedRedirect is the sitecustomize module that sends the programs'
// connections to localhost:6379 (redis-py resolves its address with
// socket.getaddrinfo) to the port in PUBSUB_SEED_PORT.
const seedRedirect = `import os
import socket

_port = int(os.environ["PUBSUB_SEED_PORT"])
_getaddrinfo = socket.getaddrinfo


def _redirected(host, port, *args, **kwargs):
    if str(port) == "6379" and host in ("localhost", "127.0.0.1", "::1"):
        host, port = "127.0.0.1", _port
    return _getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _redirected
`

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
