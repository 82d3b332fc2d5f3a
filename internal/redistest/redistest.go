// Package redistest starts a real redis-server for differential tests.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Start runs a fresh redis-server on a free loopback port for the rest of
// the test and returns its address. Where redis-server is not installed
// the test is skipped, unless the CI environment variable is set: then it
// fails, so that CI can never pass without the differential tests.
func Start(t testing.TB, extraArgs ...string) string {
	t.Helper()
	return StartServer(t, extraArgs...).Addr
}

// StartWithConfig is Start with a configuration file, given to
// redis-server first, as its command line wants it; Start's options
// follow it and win over it.
func StartWithConfig(t testing.TB, file string, extraArgs ...string) *Server {
	t.Helper()
	s := StartServer(t, extraArgs...)
	s.Kill()
	s.args = append([]string{file}, s.args...)
	if err := s.run(); err != nil {
		t.Fatalf("redis-server did not start with %s: %v", file, err)
	}
	return s
}

// Server is a redis-server process run by a test.
type Server struct {
	Addr string
	Port int

	t    testing.TB
	path string
	args []string
	cmd  *exec.Cmd
	out  *strings.Builder
}

// StartServer is Start, returning the process so that a test can kill and
// restart it.
func StartServer(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	path := need(t, "redis-server")
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		s, err := startAt(t, path, port, extraArgs)
		if err != nil {
			lastErr = err
			continue // most likely the port was taken in between
		}
		return s
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// need returns the path of a Redis program, or skips (fails under CI).
func need(t testing.TB, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	Need(t, err == nil, program+" not found on PATH: install it (Debian: apt-get install redis-server redis-tools) to run this test against real Redis")
	return path
}

// Need skips the test with msg unless ok, or fails it when the CI
// environment variable is set, so that CI never passes without what a
// test needs.
func Need(t testing.TB, ok bool, msg string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
	}
	t.Skip(msg)
}

func startAt(t testing.TB, path string, port int, extraArgs []string) (*Server, error) {
	s := &Server{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, t: t, path: path,
		args: append([]string{
			"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", t.TempDir(), "--logfile", "",
		}, extraArgs...),
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	t.Cleanup(s.Kill)
	return s, nil
}

func (s *Server) run() error {
	s.cmd = exec.Command(s.path, s.args...)
	s.out = new(strings.Builder)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	if err := waitReady(s.Addr, 10*time.Second); err != nil {
		s.Kill()
		return fmt.Errorf("%v; output:\n%s", err, s.out.String())
	}
	return nil
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
// Killing a stopped server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port, with the same
// arguments and an empty dataset.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.run(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly
	}
	s.t.Fatalf("restarting redis-server on %s: %v", s.Addr, err)
}

// FreePort returns a loopback TCP port free now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = c.Write([]byte("PING\r\n"))
			if err == nil {
				var line string
				line, err = bufio.NewReader(c).ReadString('\n')
				if err == nil && line == "+PONG\r\n" {
					c.Close()
					return nil
				}
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server at %s not ready after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
