// Command pubsub-benchmark measures a Redis Pub/Sub server from outside,
// as a fan-out workload sees it: S subscriber connections, P publisher
// connections, and every message checked on arrival.
//
// Usage:
//
//	pubsub-benchmark [flags] name=host:port [name=host:port ...]
//
// Given several servers (pubsubd and redis-server, say), it runs the same
// workload on each in turn, -runs times, alternating (each run starts with
// the next server), and prints each run
// and then the medians, with each server's ratio to the first.
//
// Each publisher sends -n messages of -size bytes (at least 24) to one
// channel, -pipeline at a time, as fast as the server answers or at -rate
// messages a second. A payload carries its publisher, its sequence number
// and its send time, so each subscriber checks that every publisher's
// messages arrive complete and in order, and measures the latency from
// PUBLISH to its arrival. It reports:
//
//	pub/s       publishes a second (replies received)
//	deliv/s     messages received a second, over all subscribers
//	p50 p99 p999  latency from publish to arrival
//	lost        messages a subscriber never received (the server said it
//	            delivered them: PUBLISH's count)
//	disorder    messages that arrived out of their publisher's order
//	gen-cpu     the CPU this program used, in cores: when it nears the
//	            cores it may use, it measures itself, not the server
//
// The flags:
//
//	-subs n       subscriber connections (default 10)
//	-pubs n       publisher connections (default 1)
//	-kind k       channel, pattern or shard (default channel)
//	-size n       payload bytes (default 64)
//	-pipeline n   PUBLISH commands in flight per publisher (default 1)
//	-n n          messages per publisher (default 100000)
//	-rate n       messages a second per publisher; 0: as fast as possible
//	-runs n       runs per server (default 3)
//	-timeout d    how long to wait for the last messages (default 10s)
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "pubsub-benchmark:", err)
		os.Exit(1)
	}
}

type workload struct {
	subs, pubs, size, pipeline, n, rate int
	kind                                string
	timeout                             time.Duration
}

type target struct{ name, addr string }

func run(args []string) error {
	fs := flag.NewFlagSet("pubsub-benchmark", flag.ContinueOnError)
	var w workload
	fs.IntVar(&w.subs, "subs", 10, "subscriber connections")
	fs.IntVar(&w.pubs, "pubs", 1, "publisher connections")
	fs.StringVar(&w.kind, "kind", "channel", "channel, pattern or shard")
	fs.IntVar(&w.size, "size", 64, "payload bytes (at least 24)")
	fs.IntVar(&w.pipeline, "pipeline", 1, "PUBLISH commands in flight per publisher")
	fs.IntVar(&w.n, "n", 100000, "messages per publisher")
	fs.IntVar(&w.rate, "rate", 0, "messages a second per publisher (0: as fast as possible)")
	runs := fs.Int("runs", 3, "runs per server, alternating")
	fs.DurationVar(&w.timeout, "timeout", 10*time.Second, "how long to wait for the last messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if w.size < 24 || w.pubs < 1 || w.subs < 0 || w.pipeline < 1 || w.n < 1 || !slices.Contains([]string{"channel", "pattern", "shard"}, w.kind) {
		return fmt.Errorf("bad flags: want -size >= 24, -pubs, -pipeline, -n >= 1, -kind channel|pattern|shard")
	}
	var targets []target
	for _, a := range fs.Args() {
		name, addr, ok := strings.Cut(a, "=")
		if !ok {
			name, addr = a, a
		}
		targets = append(targets, target{name, addr})
	}
	if len(targets) == 0 {
		return fmt.Errorf("no server given: name=host:port")
	}
	fmt.Printf("workload: subs=%d pubs=%d kind=%s size=%d pipeline=%d n=%d rate=%d\n", w.subs, w.pubs, w.kind, w.size, w.pipeline, w.n, w.rate)
	results := make([][]result, len(targets))
	for r := range *runs {
		// Each run starts with the next server: with a fixed order,
		// swapping two servers' places moved their ratio from 0.92x to
		// 1.00x (S = 100, P = 1, no pipelining, pinned, 7 runs).
		for k := range targets {
			i := (r + k) % len(targets)
			t := targets[i]
			res, err := w.measure(t.addr, fmt.Sprintf("bench:%d:%d", r, time.Now().UnixNano()))
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			results[i] = append(results[i], res)
			fmt.Printf("run %d %-10s %s\n", r+1, t.name, res)
		}
	}
	fmt.Println("medians:")
	base := median(results[0])
	for i, t := range targets {
		m := median(results[i])
		if w.subs == 0 { // nothing is delivered nor timed: compare the publishes
			fmt.Printf("  %-10s %s  pub/s ratio %.2fx\n", t.name, m, m.pubPerSec/base.pubPerSec)
			continue
		}
		fmt.Printf("  %-10s %s  deliv/s ratio %.2fx  p99 ratio %.2fx\n", t.name, m, m.delivPerSec/base.delivPerSec, float64(m.p99)/float64(base.p99))
	}
	return nil
}

type result struct {
	pubPerSec, delivPerSec float64
	p50, p99, p999         time.Duration
	lost, disorder         int64
	delivered              int64
	genCPU                 float64 // cores
}

func (r result) String() string {
	return fmt.Sprintf("pub/s %9.0f  deliv/s %10.0f  p50 %8v  p99 %8v  p999 %8v  lost %d  disorder %d  gen-cpu %.2f",
		r.pubPerSec, r.delivPerSec, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.p999.Round(time.Microsecond), r.lost, r.disorder, r.genCPU)
}

// median takes each figure's median over the runs.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		pubPerSec:   pick(func(r result) float64 { return r.pubPerSec }),
		delivPerSec: pick(func(r result) float64 { return r.delivPerSec }),
		p50:         time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99:         time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
		p999:        time.Duration(pick(func(r result) float64 { return float64(r.p999) })),
		lost:        int64(pick(func(r result) float64 { return float64(r.lost) })),
		disorder:    int64(pick(func(r result) float64 { return float64(r.disorder) })),
		genCPU:      pick(func(r result) float64 { return r.genCPU }),
	}
}

// histogram counts latencies in buckets about 6% wide.
type histogram [64 * 16]atomic.Int64

func bucketOf(ns int64) int {
	if ns < 16 {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 5 // keep 4 bits below the leading one
	return e*16 + int(ns>>e)
}

func bucketValue(b int) int64 {
	if b < 32 {
		return int64(b)
	}
	e := b/16 - 1
	return int64(b-e*16) << e
}

func (h *histogram) add(d time.Duration) { h[bucketOf(int64(d))].Add(1) }

func (h *histogram) quantile(q float64, total int64) time.Duration {
	want := int64(q * float64(total))
	var seen int64
	for b := range h {
		seen += h[b].Load()
		if seen > want {
			return time.Duration(bucketValue(b))
		}
	}
	return 0
}

// subscriber holds one subscriber connection's findings.
type subscriber struct {
	nc       net.Conn
	received atomic.Int64
	disorder atomic.Int64
	next     []uint64 // next expected sequence number, by publisher
}

func (w *workload) subscribeArgs(channel string) []string {
	switch w.kind {
	case "pattern":
		return []string{"PSUBSCRIBE", channel + "*"}
	case "shard":
		return []string{"SSUBSCRIBE", channel}
	}
	return []string{"SUBSCRIBE", channel}
}

func (w *workload) publishCommand() string {
	if w.kind == "shard" {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// measure runs the workload once against addr.
func (w *workload) measure(addr, channel string) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hist histogram
	subs := make([]*subscriber, w.subs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range subs {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return result{}, err
		}
		defer nc.Close()
		s := &subscriber{nc: nc, next: make([]uint64, w.pubs)}
		subs[i] = s
		if _, err := nc.Write(resp.AppendCommand(nil, w.subscribeArgs(channel)...)); err != nil {
			return result{}, err
		}
		br := bufio.NewReaderSize(nc, 64<<10)
		var buf []byte
		if _, err := readPush(br, &buf); err != nil { // the confirmation: live
			return result{}, fmt.Errorf("subscribing: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.read(ctx, br, &hist)
		}()
	}

	cpu0 := processCPU()
	start := time.Now()
	var receivers atomic.Int64 // what the server said it delivered
	errs := make(chan error, w.pubs)
	var pubWG sync.WaitGroup
	for p := range w.pubs {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			n, err := w.publish(addr, channel, uint64(p))
			receivers.Add(n)
			errs <- err
		}()
	}
	pubWG.Wait()
	pubTime := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			return result{}, err
		}
	}
	want := receivers.Load()
	total := func() int64 {
		var n int64
		for _, s := range subs {
			n += s.received.Load()
		}
		return n
	}
	// Wait for the last messages; stop when none arrive for the timeout.
	last, lastChange := total(), time.Now()
	for last < want && time.Since(lastChange) < w.timeout {
		time.Sleep(time.Millisecond)
		if n := total(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	elapsed := time.Since(start)
	cpu1 := processCPU()
	cancel()
	for _, s := range subs {
		s.nc.Close()
	}
	res := result{
		pubPerSec:   float64(w.pubs*w.n) / pubTime.Seconds(),
		delivPerSec: float64(last) / elapsed.Seconds(),
		lost:        want - last,
		delivered:   last,
		genCPU:      (cpu1 - cpu0).Seconds() / elapsed.Seconds(),
	}
	for _, s := range subs {
		res.disorder += s.disorder.Load()
	}
	res.p50, res.p99, res.p999 = hist.quantile(0.5, last), hist.quantile(0.99, last), hist.quantile(0.999, last)
	return res, nil
}

// publish sends w.n messages as publisher id, and returns the sum of the
// receiver counts the server replied.
func (w *workload) publish(addr, channel string, id uint64) (int64, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	payload := make([]byte, w.size)
	binary.LittleEndian.PutUint64(payload, id)
	var out []byte
	var receivers int64
	var interval time.Duration
	if w.rate > 0 {
		interval = time.Second * time.Duration(w.pipeline) / time.Duration(w.rate)
	}
	next := time.Now()
	for sent := 0; sent < w.n; {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
		}
		batch := min(w.pipeline, w.n-sent)
		out = out[:0]
		for i := range batch {
			binary.LittleEndian.PutUint64(payload[8:], uint64(sent+i))
			binary.LittleEndian.PutUint64(payload[16:], uint64(time.Now().UnixNano()))
			out = resp.AppendCommand(out, w.publishCommand(), channel, string(payload))
		}
		if _, err := nc.Write(out); err != nil {
			return receivers, err
		}
		for range batch {
			n, err := readHeader(br, ":")
			if err != nil {
				return receivers, fmt.Errorf("PUBLISH: %w", err)
			}
			receivers += int64(n)
		}
		sent += batch
	}
	return receivers, nil
}

// read takes the subscriber's messages until ctx ends.
func (s *subscriber) read(ctx context.Context, br *bufio.Reader, hist *histogram) {
	var buf []byte
	for ctx.Err() == nil {
		payload, err := readPush(br, &buf)
		if err != nil {
			return
		}
		if len(payload) < 24 {
			continue
		}
		pub := binary.LittleEndian.Uint64(payload[:8])
		seq := binary.LittleEndian.Uint64(payload[8:16])
		sent := int64(binary.LittleEndian.Uint64(payload[16:24]))
		hist.add(time.Duration(time.Now().UnixNano() - sent))
		if pub < uint64(len(s.next)) {
			if seq != s.next[pub] {
				s.disorder.Add(1)
			}
			s.next[pub] = seq + 1
		}
		s.received.Add(1)
	}
}

// readPush reads one push (or array) of bulk strings and integers and
// returns its last bulk string, read into *buf. It allocates nothing once
// *buf is large enough, so that the generator measures the server rather
// than its own parsing.
func readPush(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	n, err := readHeader(br, "*>")
	if err != nil {
		return nil, err
	}
	var last []byte
	for range n {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(line) < 3 {
			return nil, fmt.Errorf("short line %q", line)
		}
		if line[0] != '$' {
			continue // an integer: the count of a confirmation
		}
		size := atoi(line[1 : len(line)-2])
		if size < 0 {
			last = nil
			continue
		}
		if cap(*buf) < size+2 {
			*buf = make([]byte, size+2)
		}
		b := (*buf)[:size+2]
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		last = b[:size]
	}
	return last, nil
}

func readHeader(br *bufio.Reader, types string) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || !strings.ContainsRune(types, rune(line[0])) {
		return 0, fmt.Errorf("unexpected reply %q", line)
	}
	return atoi(line[1 : len(line)-2]), nil
}

func atoi(b []byte) int {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}
