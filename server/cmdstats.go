package server

import (
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// INFO's commandstats and latencystats: per command, the calls, their
// time, the calls refused before they ran and those that replied an
// error, and a histogram of their durations. Connections add to one of
// several stripes, chosen by their id, so that parallel publishers do not
// all write the same cache lines.

// histBuckets is a log-linear histogram's size: 16 buckets per power of
// two, within 1/16 of a value, from 1 ns to over an hour.
const (
	histSub     = 4 // log2 of the buckets per power of two
	histBuckets = (43 - histSub) << histSub
)

type latencyHist [histBuckets]atomic.Uint64

func histIndex(ns uint64) int {
	if ns < 1<<histSub {
		return int(ns)
	}
	shift := bits.Len64(ns) - 1 - histSub
	i := (shift+1)<<histSub + int(ns>>shift) - 1<<histSub
	return min(i, histBuckets-1)
}

// histUpper is the largest value bucket i holds, as an HDR histogram
// reports a percentile by its bucket's highest equivalent value.
func histUpper(i int) uint64 {
	if i < 1<<histSub {
		return uint64(i)
	}
	shift := i>>histSub - 1
	sub := uint64(i&(1<<histSub-1) + 1<<histSub)
	return (sub+1)<<shift - 1
}

type cmdStripe struct {
	calls, nanos, rejected, failed atomic.Int64
	hist                           latencyHist
}

// cmdStats are one command's figures, made on its first use.
type cmdStats struct {
	stripes []cmdStripe
}

// commandStats holds every command's figures.
type commandStats struct {
	once    sync.Once
	stripes int // a power of two
	mu      sync.Mutex
	byCmd   map[*command]*cmdStats
}

func (cs *commandStats) of(cmd *command) *cmdStats {
	cs.once.Do(func() {
		cs.stripes = 1 << bits.Len(uint(max(runtime.GOMAXPROCS(0), 1)-1))
		cs.byCmd = map[*command]*cmdStats{}
	})
	if st := cmd.stats.Load(); st != nil {
		return st
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	st := cmd.stats.Load()
	if st == nil {
		st = &cmdStats{stripes: make([]cmdStripe, cs.stripes)}
		cmd.stats.Store(st)
		cs.byCmd[cmd] = st
	}
	return st
}

func (c *conn) cmdStripe(cmd *command) *cmdStripe {
	st := c.srv.cmdStats.of(cmd)
	return &st.stripes[int(c.id)&(len(st.stripes)-1)]
}

// rejected counts a call refused before it ran.
func (c *conn) rejected(cmd *command) { c.cmdStripe(cmd).rejected.Add(1) }

// ran counts a call that ran for d, and failed if it replied an error.
func (c *conn) ran(cmd *command, d time.Duration, failed bool) {
	s := c.cmdStripe(cmd)
	s.calls.Add(1)
	s.nanos.Add(int64(d))
	s.hist[histIndex(uint64(max(d, 0)))].Add(1)
	if failed {
		s.failed.Add(1)
	}
}

// cmdTotals is one command's figures, summed over its stripes.
type cmdTotals struct {
	name                           string
	calls, nanos, rejected, failed int64
	hist                           [histBuckets]uint64
}

func (cs *commandStats) totals() []cmdTotals {
	cs.mu.Lock()
	cmds := make([]*command, 0, len(cs.byCmd))
	stats := make([]*cmdStats, 0, len(cs.byCmd))
	for cmd, st := range cs.byCmd {
		cmds = append(cmds, cmd)
		stats = append(stats, st)
	}
	cs.mu.Unlock()
	var out []cmdTotals
	for i, st := range stats {
		t := cmdTotals{name: cmds[i].name}
		for j := range st.stripes {
			s := &st.stripes[j]
			t.calls += s.calls.Load()
			t.nanos += s.nanos.Load()
			t.rejected += s.rejected.Load()
			t.failed += s.failed.Load()
			for k := range s.hist {
				t.hist[k] += s.hist[k].Load()
			}
		}
		if t.calls+t.rejected+t.failed > 0 {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b cmdTotals) int { return strings.Compare(a.name, b.name) })
	return out
}

// clear starts every figure again from 0, as CONFIG RESETSTAT.
func (cs *commandStats) clear() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, st := range cs.byCmd {
		for j := range st.stripes {
			s := &st.stripes[j]
			s.calls.Store(0)
			s.nanos.Store(0)
			s.rejected.Store(0)
			s.failed.Store(0)
			for k := range s.hist {
				s.hist[k].Store(0)
			}
		}
	}
}

// percentile is the value at or below which p percent of the calls fell.
func (t *cmdTotals) percentile(p float64) uint64 {
	var total uint64
	for _, n := range t.hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := uint64(p / 100 * float64(total))
	if float64(want) < p/100*float64(total) {
		want++
	}
	want = max(want, 1)
	var seen uint64
	for i, n := range t.hist {
		seen += n
		if seen >= want {
			return histUpper(i)
		}
	}
	return histUpper(histBuckets - 1)
}

func (c *conn) commandStatsSection(s *section) {
	s.b.WriteString("# Commandstats\r\n")
	for _, t := range c.srv.cmdStats.totals() {
		usec := t.nanos / 1000
		perCall := 0.0
		if t.calls > 0 {
			perCall = float64(t.nanos) / 1000 / float64(t.calls)
		}
		s.field("cmdstat_"+t.name, fmt.Sprintf("calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d",
			t.calls, usec, perCall, t.rejected, t.failed))
	}
}

func (c *conn) latencyStatsSection(s *section) {
	s.b.WriteString("# Latencystats\r\n")
	if c.paramValue(c.srv.config().byName["latency-tracking"]) != "yes" {
		return
	}
	var percentiles []float64
	for _, f := range strings.Fields(c.paramValue(c.srv.config().byName["latency-tracking-info-percentiles"])) {
		if p, err := strconv.ParseFloat(f, 64); err == nil {
			percentiles = append(percentiles, p)
		}
	}
	for _, t := range c.srv.cmdStats.totals() {
		if t.calls == 0 {
			continue
		}
		var b strings.Builder
		for i, p := range percentiles {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "p%s=%.3f", strconv.FormatFloat(p, 'f', -1, 64), float64(t.percentile(p))/1000)
		}
		s.field("latency_percentiles_usec_"+t.name, b.String())
	}
}
