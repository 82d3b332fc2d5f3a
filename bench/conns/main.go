// Command conns measures what many connections cost a server: the
// resident memory of idle subscribed clients, and how soon connections
// opened all at once are answered.
//
// Usage:
//
//	conns [-n 5000] [-mode idle|burst] [-runs 3] name=host:port@pid [...]
//
// idle: n clients connect one after another, each SUBSCRIBEs to a channel
// of its own and then stays idle; the server's RSS (VmRSS of pid, Linux
// only) is read before and after, and the difference per client printed.
//
// burst: n goroutines connect at once, each sends PING and waits for
// PONG; it prints when the last was answered, and the p50 and p99 of the
// time from a goroutine's start to its PONG.
//
// Servers are measured in turn, alternating, -runs times each; the open
// file limit must allow n connections on both sides.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type target struct {
	name, addr string
	pid        int
}

func main() {
	n := flag.Int("n", 5000, "connections")
	mode := flag.String("mode", "idle", "idle or burst")
	runs := flag.Int("runs", 3, "runs per server, alternating")
	flag.Parse()
	var targets []target
	for _, a := range flag.Args() {
		name, rest, _ := strings.Cut(a, "=")
		addr, pidText, _ := strings.Cut(rest, "@")
		pid, _ := strconv.Atoi(pidText)
		targets = append(targets, target{name, addr, pid})
	}
	if len(targets) == 0 || (*mode != "idle" && *mode != "burst") {
		fmt.Fprintln(os.Stderr, "usage: conns [-n 5000] [-mode idle|burst] name=host:port@pid ...")
		os.Exit(2)
	}
	for r := range *runs {
		for _, t := range targets {
			var out string
			var err error
			if *mode == "idle" {
				out, err = idle(t, *n)
			} else {
				out, err = burst(t, *n)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "conns: %s: %v\n", t.name, err)
				os.Exit(1)
			}
			fmt.Printf("run %d %-10s %s\n", r+1, t.name, out)
		}
	}
}

// rss returns the resident memory of pid, in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// readLines reads n lines of a reply.
func readLines(r *bufio.Reader, n int) error {
	for range n {
		if _, err := r.ReadSlice('\n'); err != nil {
			return err
		}
	}
	return nil
}

func idle(t target, n int) (string, error) {
	before, err := rss(t.pid)
	if err != nil {
		return "", err
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(time.Second) // let the server free them before the next run
	}()
	for i := range n {
		nc, err := net.DialTimeout("tcp", t.addr, 10*time.Second)
		if err != nil {
			return "", err
		}
		conns = append(conns, nc)
		ch := "idle:" + strconv.Itoa(i)
		fmt.Fprintf(nc, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", len(ch), ch)
		if err := readLines(bufio.NewReaderSize(nc, 128), 6); err != nil {
			return "", err
		}
	}
	time.Sleep(time.Second)
	after, err := rss(t.pid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("clients %d  rss before %6.1f MB  after %6.1f MB  per client %6.1f KB",
		n, float64(before)/1e6, float64(after)/1e6, float64(after-before)/float64(n)/1e3), nil
}

func burst(t target, n int) (string, error) {
	var wg sync.WaitGroup
	took := make([]time.Duration, n)
	errs := make(chan error, n)
	conns := make([]net.Conn, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			t0 := time.Now()
			nc, err := net.DialTimeout("tcp", t.addr, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = nc
			_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(nc, "*1\r\n$4\r\nPING\r\n"); err != nil {
				errs <- err
				return
			}
			line, err := bufio.NewReaderSize(nc, 64).ReadString('\n')
			if err != nil || line != "+PONG\r\n" {
				errs <- fmt.Errorf("PING answered %q, %v", line, err)
				return
			}
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	all := time.Since(start)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	time.Sleep(time.Second)
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
		failed++
	}
	if failed > 0 {
		return "", fmt.Errorf("%d of %d connections failed, the first: %v", failed, n, first)
	}
	slices.Sort(took)
	return fmt.Sprintf("connections %d  all answered in %8v  p50 %8v  p99 %8v",
		n, all.Round(time.Millisecond), took[n/2].Round(time.Microsecond), took[n*99/100].Round(time.Microsecond)), nil
}
