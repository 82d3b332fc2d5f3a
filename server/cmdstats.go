package server

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// INFO's commandstats and latencystats: per command, the calls, their
// time, the calls refused before they ran and those that replied an
// error, and a histogram of their durations. Only the loop runs commands
// and INFO, so the figures are the loop's alone: plain counters, no lock.

// histBuckets is a log-linear histogram's size: 16 buckets per power of
// two, within 1/16 of a value, from 1 ns to over an hour.
const (
	histSub     = 4 // log2 of the buckets per power of two
	histBuckets = (43 - histSub) << histSub
)

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

// cmdStats are one command's figures, made on its first use.
type cmdStats struct {
	calls, nanos, rejected, failed int64
	hist                           [histBuckets]uint64
}

// commandStats holds every command's figures; the loop owns it.
type commandStats struct {
	byCmd map[*command]*cmdStats
}

func (cs *commandStats) of(cmd *command) *cmdStats {
	if cmd.stats != nil {
		return cmd.stats
	}
	if cs.byCmd == nil {
		cs.byCmd = map[*command]*cmdStats{}
	}
	st := &cmdStats{}
	cmd.stats = st
	cs.byCmd[cmd] = st
	return st
}

// rejected counts a call refused before it ran.
func (c *conn) rejected(cmd *command) { c.srv.cmdStats.of(cmd).rejected++ }

// ran counts a call that ran for d, and failed if it replied an error.
func (c *conn) ran(cmd *command, d time.Duration, failed bool) {
	s := c.srv.cmdStats.of(cmd)
	s.calls++
	s.nanos += int64(d)
	s.hist[histIndex(uint64(max(d, 0)))]++
	if failed {
		s.failed++
	}
}

// cmdTotals is one command's figures and its name.
type cmdTotals struct {
	name string
	*cmdStats
}

func (cs *commandStats) totals() []cmdTotals {
	var out []cmdTotals
	for cmd, st := range cs.byCmd {
		if st.calls+st.rejected+st.failed > 0 {
			out = append(out, cmdTotals{cmd.name, st})
		}
	}
	slices.SortFunc(out, func(a, b cmdTotals) int { return strings.Compare(a.name, b.name) })
	return out
}

// clear starts every figure again from 0, as CONFIG RESETSTAT.
func (cs *commandStats) clear() {
	for _, st := range cs.byCmd {
		*st = cmdStats{}
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
