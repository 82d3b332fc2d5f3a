// Command fairness measures how long one client waits while others
// flood the server: -subs subscriber connections read channel "burst",
// one publisher pipelines -n PUBLISH commands to it in one write, and
// meanwhile a third connection sends PING after PING, one at a time,
// timing each round trip until the publisher has all its replies.
//
// With -auth-flood n, the flood is n clients failing AUTH in a loop for
// -for (the server is given a password with CONFIG SET requirepass for
// the run, and none after it), and PINGs, one a millisecond at most, are
// timed meanwhile from another process than the flood's; the failed
// AUTHs answered a second are printed beside them.
//
// Usage:
//
//	fairness [-subs 50] [-n 100000] [-auth-flood 0] [-for 3s] [-runs 3] name=host:port [name=host:port ...]
//
// Given several servers it measures them in turn, alternating, and
// prints each run (PINGs answered during the burst, their p50, p99 and
// worst round trip, and the burst's duration) and the medians.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	subs := flag.Int("subs", 50, "subscriber connections")
	n := flag.Int("n", 100000, "PUBLISH commands in the burst")
	runs := flag.Int("runs", 3, "runs per server, alternating")
	authFlood := flag.Int("auth-flood", 0, "clients failing AUTH in a loop instead of the PUBLISH burst")
	floodFor := flag.Duration("for", 3*time.Second, "how long the AUTH flood lasts")
	isFloodChild := flag.Bool("flood-child", false, "be the AUTH flood's process (used by -auth-flood)")
	flag.Parse()
	if *isFloodChild {
		if err := floodChild(flag.Arg(0), *authFlood, *floodFor); err != nil {
			fmt.Fprintln(os.Stderr, "fairness: the flood:", err)
			os.Exit(1)
		}
		return
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "fairness: no server given: name=host:port")
		os.Exit(2)
	}
	type target struct{ name, addr string }
	var targets []target
	for _, a := range flag.Args() {
		name, addr, ok := strings.Cut(a, "=")
		if !ok {
			name, addr = a, a
		}
		targets = append(targets, target{name, addr})
	}
	results := make([][]result, len(targets))
	for r := range *runs {
		for i, t := range targets {
			var res result
			var err error
			if *authFlood > 0 {
				res, err = measureAuthFlood(t.addr, *authFlood, *floodFor)
			} else {
				res, err = measure(t.addr, *subs, *n)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "fairness: %s: %v\n", t.name, err)
				os.Exit(1)
			}
			results[i] = append(results[i], res)
			fmt.Printf("run %d %-10s %s\n", r+1, t.name, res)
		}
	}
	if *authFlood > 0 {
		fmt.Printf("medians (auth-flood=%d for %v):\n", *authFlood, *floodFor)
	} else {
		fmt.Printf("medians (subs=%d n=%d):\n", *subs, *n)
	}
	for i, t := range targets {
		fmt.Printf("  %-10s %s\n", t.name, median(results[i]))
	}
}

type result struct {
	pings           int
	p50, p99, worst time.Duration
	burst           time.Duration
	floodRate       float64 // failed AUTHs answered a second, in an AUTH flood
}

func (r result) String() string {
	s := fmt.Sprintf("pings %6d  p50 %9v  p99 %9v  worst %9v  burst %9v", r.pings, r.p50, r.p99, r.worst, r.burst.Round(time.Millisecond))
	if r.floodRate > 0 {
		s += fmt.Sprintf("  auths/s %7.0f", r.floodRate)
	}
	return s
}

// median takes each figure's median over the runs.
func median(rs []result) result {
	pick := func(f func(result) time.Duration) time.Duration {
		v := make([]time.Duration, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	pings := make([]int, len(rs))
	for i, r := range rs {
		pings[i] = r.pings
	}
	slices.Sort(pings)
	rates := make([]float64, len(rs))
	for i, r := range rs {
		rates[i] = r.floodRate
	}
	slices.Sort(rates)
	return result{
		floodRate: rates[len(rates)/2],
		pings:     pings[len(pings)/2],
		p50:       pick(func(r result) time.Duration { return r.p50 }),
		p99:       pick(func(r result) time.Duration { return r.p99 }),
		worst:     pick(func(r result) time.Duration { return r.worst }),
		burst:     pick(func(r result) time.Duration { return r.burst }),
	}
}

func dial(addr string) (net.Conn, *bufio.Reader, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	return nc, bufio.NewReaderSize(nc, 64<<10), nil
}

// readLines reads n lines that begin a RESP value (every reply here is
// one line, or an array of bulk strings whose lines are counted too).
func readLines(r *bufio.Reader, n int) error {
	for range n {
		if _, err := r.ReadSlice('\n'); err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
	return nil
}

func measure(addr string, subs, n int) (result, error) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range subs {
		nc, r, err := dial(addr)
		if err != nil {
			return result{}, err
		}
		conns = append(conns, nc)
		if _, err := io.WriteString(nc, "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nburst\r\n"); err != nil {
			return result{}, err
		}
		if err := readLines(r, 6); err != nil { // *3, $9, subscribe, $5, burst, :1
			return result{}, err
		}
		go func() { _, _ = io.Copy(io.Discard, r) }() // until the connection is closed
	}
	pub, pubR, err := dial(addr)
	if err != nil {
		return result{}, err
	}
	conns = append(conns, pub)
	pinger, pingR, err := dial(addr)
	if err != nil {
		return result{}, err
	}
	conns = append(conns, pinger)

	cmd := "*3\r\n$7\r\nPUBLISH\r\n$5\r\nburst\r\n$5\r\nhello\r\n"
	burst := []byte(strings.Repeat(cmd, n))
	replied := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := pub.Write(burst)
		if err == nil {
			err = readLines(pubR, n)
		}
		replied <- err
	}()
	return pingUntil(pinger, pingR, replied, start, 0)
}

// pingUntil sends PING after PING on pinger, one at a time, until the
// load reports its end on done, and returns the round trips' figures.
// With every > 0, a PING starts that long after the previous one started
// (at once if its reply came later), so that the pinger takes little of
// the generator's core from the load.
func pingUntil(pinger net.Conn, pingR *bufio.Reader, done <-chan error, start time.Time, every time.Duration) (result, error) {
	var rtts []time.Duration
	ping := []byte("*1\r\n$4\r\nPING\r\n")
	next := time.Now()
	for {
		if every > 0 {
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
			next = time.Now().Add(every)
		}
		select {
		case err := <-done:
			if err != nil {
				return result{}, err
			}
			elapsed := time.Since(start)
			if len(rtts) == 0 {
				return result{}, fmt.Errorf("no PING was answered during the load")
			}
			slices.Sort(rtts)
			return result{
				pings: len(rtts),
				p50:   rtts[len(rtts)/2],
				p99:   rtts[len(rtts)*99/100],
				worst: rtts[len(rtts)-1],
				burst: elapsed,
			}, nil
		default:
		}
		t := time.Now()
		if _, err := pinger.Write(ping); err != nil {
			return result{}, err
		}
		if err := readLines(pingR, 1); err != nil {
			return result{}, err
		}
		rtts = append(rtts, time.Since(t))
	}
}

// measureAuthFlood times PINGs while clients fail AUTH in a loop. The
// flood runs in a process of its own (floodChild): within one Go process
// the pinger's goroutine would wait its turn among the flood's thousand
// after each reply, and its round trips would time this program's
// scheduler more than the server. As a process of its own, the kernel
// runs it as soon as a reply wakes it.
func measureAuthFlood(addr string, clients int, d time.Duration) (result, error) {
	const secret = "fairness-secret"
	admin, adminR, err := dial(addr)
	if err != nil {
		return result{}, err
	}
	defer admin.Close()
	command := func(args ...string) error {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := io.WriteString(admin, b.String()); err != nil {
			return err
		}
		line, err := adminR.ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "+OK") {
			err = fmt.Errorf("%s: %s", args[0], strings.TrimSpace(line))
		}
		return err
	}
	if err := command("CONFIG", "SET", "requirepass", secret); err != nil {
		return result{}, err
	}
	defer func() { _ = command("CONFIG", "SET", "requirepass", ""); _ = command("ACL", "LOG", "RESET") }()

	pinger, pingR, err := dial(addr)
	if err != nil {
		return result{}, err
	}
	defer pinger.Close()
	if _, err := io.WriteString(pinger, "*2\r\n$4\r\nAUTH\r\n$"+strconv.Itoa(len(secret))+"\r\n"+secret+"\r\n"); err != nil {
		return result{}, err
	}
	if err := readLines(pingR, 1); err != nil {
		return result{}, err
	}

	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	child := exec.Command(self, "-flood-child", "-auth-flood", strconv.Itoa(clients), "-for", d.String(), addr)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := child.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	childOut := bufio.NewReader(out)
	if line, err := childOut.ReadString('\n'); err != nil || line != "ready\n" {
		return result{}, fmt.Errorf("the flood did not start: %q %v", line, err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { time.Sleep(d); done <- nil }()
	res, err := pingUntil(pinger, pingR, done, start, floodPingEvery)
	if err != nil {
		return result{}, err
	}
	line, err := childOut.ReadString('\n')
	if err != nil {
		return result{}, fmt.Errorf("the flood's end: %v", err)
	}
	if _, err := fmt.Sscanf(line, "%f", &res.floodRate); err != nil {
		return result{}, fmt.Errorf("the flood's end: %q", line)
	}
	return res, nil
}

// floodPingEvery paces the PINGs during an AUTH flood: sent back to back,
// they took half of the generator's core from the flood's process, whose
// load then fell whenever the server answered them quickly.
const floodPingEvery = time.Millisecond

// floodChild is the AUTH flood's process: clients connections fail AUTH
// in a loop for d from the moment it prints "ready", then it prints how
// many a second were answered, and returns.
func floodChild(addr string, clients int, d time.Duration) error {
	var conns []net.Conn
	var readers []*bufio.Reader
	for range clients {
		nc, r, err := dial(addr)
		if err != nil {
			return err
		}
		conns, readers = append(conns, nc), append(readers, r)
	}
	var stop atomic.Bool
	var answered atomic.Int64 // failed AUTHs the flood's clients have had answered
	var wg sync.WaitGroup
	fmt.Println("ready")
	start := time.Now()
	for i, nc := range conns {
		r := readers[i]
		wg.Go(func() {
			defer nc.Close()
			wrong := []byte("*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n")
			var n int64
			defer func() { answered.Add(n) }()
			for !stop.Load() {
				if _, err := nc.Write(wrong); err != nil {
					return
				}
				if err := readLines(r, 1); err != nil {
					return
				}
				n++
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	fmt.Printf("%.0f\n", float64(answered.Load())/time.Since(start).Seconds())
	return nil
}
