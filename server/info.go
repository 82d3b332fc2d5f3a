package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// INFO prints every section and field redis-server 7.0.15 prints, in its
// order, each with what is true of this server: the process's figures,
// the Go runtime's memory for the allocator's, 0 or Redis's "nothing
// happened" value for what never happens here (keys, forks, replicas).

// ioCounts are what a connection read and wrote, kept by the
// connection's goroutines and summed by INFO.
type ioCounts struct {
	inBytes, outBytes atomic.Int64
	reads, writes     atomic.Int64 // read and write calls that moved bytes
}

func (a *ioCounts) add(b *ioCounts) {
	a.inBytes.Add(b.inBytes.Load())
	a.outBytes.Add(b.outBytes.Load())
	a.reads.Add(b.reads.Load())
	a.writes.Add(b.writes.Load())
}

// infoState is what INFO needs beyond the counters: ids made at start,
// the errors replied, the peak of memory seen, the rates' last sample.
type infoState struct {
	once      sync.Once
	runID     string
	replID    string
	startHeap uint64

	io      ioCounts // of connections gone
	errors  atomic.Int64
	peakMem atomic.Uint64

	mu       sync.Mutex
	errStats map[string]int64 // by the error's first word
	base     infoBase         // the figures at CONFIG RESETSTAT
	sample   rateSample
}

// infoBase is subtracted from the figures CONFIG RESETSTAT resets.
type infoBase struct {
	inBytes, outBytes, reads, writes int64
}

type rateSample struct {
	at                          time.Time
	commands, inBytes, outBytes int64
	opsPerSec, inKbps, outKbps  float64
}

func (s *Server) info() *infoState {
	st := &s.infoState
	st.once.Do(func() {
		st.runID, st.replID = randomHex(), randomHex()
		st.errStats = map[string]int64{}
		st.startHeap = readMemory().used
	})
	return st
}

func randomHex() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// countError notes an error reply, as Redis's errorstats do by its first
// word.
func (s *Server) countError(reply []byte) {
	st := s.info()
	st.errors.Add(1)
	word := string(reply[1:])
	if i := strings.IndexAny(word, " \r"); i >= 0 {
		word = word[:i]
	}
	st.mu.Lock()
	if _, ok := st.errStats[word]; ok || len(st.errStats) < 128 { // Redis keeps at most 128 kinds
		st.errStats[word]++
	}
	st.mu.Unlock()
}

// ioTotals sums what every connection, gone or open, read and wrote.
func (s *Server) ioTotals() infoBase {
	st := s.info()
	var sum ioCounts
	sum.add(&st.io)
	for _, c := range s.connections() {
		sum.add(&c.io)
	}
	return infoBase{sum.inBytes.Load(), sum.outBytes.Load(), sum.reads.Load(), sum.writes.Load()}
}

// memory is the Go runtime's account of the process's memory.
type memory struct {
	used      uint64 // live heap objects and goroutine stacks: what Redis calls used_memory
	allocated uint64 // live heap objects
	active    uint64 // heap spans in use
	resident  uint64 // everything the runtime holds from the OS, less what it gave back
	stacks    uint64
}

func readMemory() memory {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	m := memory{allocated: v(0), stacks: v(2)}
	m.active = m.allocated + v(1)
	m.used = m.allocated + m.stacks
	m.resident = v(3) - v(4)
	return m
}

// bytesToHuman writes n as Redis's bytesToHuman does.
func bytesToHuman(n uint64) string {
	d := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatUint(n, 10) + "B"
	case n < 1024*1024:
		return fmt.Sprintf("%.2fK", d/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.2fM", d/(1024*1024))
	case n < 1024*1024*1024*1024:
		return fmt.Sprintf("%.2fG", d/(1024*1024*1024))
	case n < 1024*1024*1024*1024*1024:
		return fmt.Sprintf("%.2fT", d/(1024*1024*1024*1024))
	case n < 1024*1024*1024*1024*1024*1024:
		return fmt.Sprintf("%.2fP", d/(1024*1024*1024*1024*1024))
	}
	return strconv.FormatUint(n, 10) + "B"
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// section is one INFO section as it is written: its title, then its
// fields in order.
type section struct {
	b strings.Builder
}

func (s *section) field(name string, v any) {
	s.b.WriteString(name)
	s.b.WriteByte(':')
	switch x := v.(type) {
	case string:
		s.b.WriteString(x)
	case int:
		s.b.WriteString(strconv.Itoa(x))
	case int64:
		s.b.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		s.b.WriteString(strconv.FormatUint(x, 10))
	default:
		fmt.Fprint(&s.b, x)
	}
	s.b.WriteString("\r\n")
}

// infoSections are INFO's sections in Redis's order. INFO alone, and
// INFO default, print all but commandstats and latencystats. pubsubd is
// ours, printed only when asked for by name, so that INFO, default, all
// and everything print redis-server 7.0's sections and fields alone.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
	"commandstats", "errorstats", "latencystats", "cluster", "keyspace", "pubsubd"}

func defaultSection(name string) bool {
	return name != "commandstats" && name != "latencystats" && name != "pubsubd"
}

func cmdInfo(c *conn, w *resp.Writer, args []string) {
	want := slices.DeleteFunc(slices.Clone(infoSections), func(s string) bool { return !defaultSection(s) })
	if len(args) > 1 {
		want = nil
		add := func(s string) {
			if !slices.Contains(want, s) {
				want = append(want, s)
			}
		}
		for _, a := range args[1:] {
			switch s := lower(a); s {
			case "all", "everything":
				for _, s := range infoSections {
					if s != "pubsubd" {
						add(s)
					}
				}
			case "default":
				for _, s := range infoSections {
					if defaultSection(s) {
						add(s)
					}
				}
			default:
				if slices.Contains(infoSections, s) {
					add(s)
				}
			}
		}
		// Redis lists the sections asked for in its own order.
		slices.SortFunc(want, func(x, y string) int { return slices.Index(infoSections, x) - slices.Index(infoSections, y) })
	}
	var b strings.Builder
	for i, name := range want {
		if i > 0 {
			b.WriteString("\r\n")
		}
		var s section
		c.infoSection(&s, name)
		b.WriteString(s.b.String())
	}
	w.Verbatim(b.String())
}

func (c *conn) infoSection(s *section, name string) {
	srv := c.srv
	st := srv.info()
	cfg := func(name string) string { return c.paramValue(srv.config().byName[name]) }
	switch name {
	case "server":
		s.b.WriteString("# Server\r\n")
		up := time.Since(srv.started)
		exe, _ := os.Executable()
		hz := cfg("hz")
		for _, f := range []struct {
			k string
			v any
		}{
			{"redis_version", redisVersion}, {"redis_git_sha1", "00000000"}, {"redis_git_dirty", 0},
			{"redis_build_id", "0"}, {"redis_mode", "standalone"}, {"os", osName()},
			{"arch_bits", strconv.IntSize}, {"monotonic_clock", "POSIX clock_gettime"},
			{"multiplexing_api", multiplexingAPI()}, {"atomicvar_api", "go-sync-atomic"},
			{"gcc_version", "0.0.0"}, {"process_id", os.Getpid()}, {"process_supervised", "no"},
			{"run_id", st.runID}, {"tcp_port", portOf(c.nc.LocalAddr())},
			{"server_time_usec", time.Now().UnixMicro()}, {"uptime_in_seconds", int64(up / time.Second)},
			{"uptime_in_days", int64(up / (24 * time.Hour))}, {"hz", hz}, {"configured_hz", hz},
			{"lru_clock", (time.Now().UnixMilli() / 1000) & (1<<24 - 1)}, {"executable", exe},
			{"config_file", ""}, {"io_threads_active", 0},
		} {
			s.field(f.k, f.v)
		}
	case "clients":
		s.b.WriteString("# Clients\r\n")
		cs := srv.clientFigures()
		s.field("connected_clients", cs.connected)
		s.field("cluster_connections", 0)
		s.field("maxclients", srv.limits.Load().maxClients)
		s.field("client_recent_max_input_buffer", cs.maxInput)
		s.field("client_recent_max_output_buffer", cs.maxOutput)
		s.field("blocked_clients", cs.blocked)
		s.field("tracking_clients", cs.tracking)
		s.field("clients_in_timeout_table", cs.timeouts)
	case "memory":
		c.memorySection(s)
	case "persistence":
		s.b.WriteString("# Persistence\r\n")
		for _, f := range []struct {
			k string
			v any
		}{
			{"loading", 0}, {"async_loading", 0}, {"current_cow_peak", 0}, {"current_cow_size", 0},
			{"current_cow_size_age", 0}, {"current_fork_perc", "0.00"}, {"current_save_keys_processed", 0},
			{"current_save_keys_total", 0}, {"rdb_changes_since_last_save", 0}, {"rdb_bgsave_in_progress", 0},
			{"rdb_last_save_time", srv.started.Unix()}, {"rdb_last_bgsave_status", "ok"},
			{"rdb_last_bgsave_time_sec", -1}, {"rdb_current_bgsave_time_sec", -1}, {"rdb_saves", 0},
			{"rdb_last_cow_size", 0}, {"rdb_last_load_keys_expired", 0}, {"rdb_last_load_keys_loaded", 0},
			{"aof_enabled", 0}, {"aof_rewrite_in_progress", 0}, {"aof_rewrite_scheduled", 0},
			{"aof_last_rewrite_time_sec", -1}, {"aof_current_rewrite_time_sec", -1},
			{"aof_last_bgrewrite_status", "ok"}, {"aof_rewrites", 0}, {"aof_rewrites_consecutive_failures", 0},
			{"aof_last_write_status", "ok"}, {"aof_last_cow_size", 0}, {"module_fork_in_progress", 0},
			{"module_fork_last_cow_size", 0},
		} {
			s.field(f.k, f.v)
		}
	case "stats":
		c.statsSection(s)
	case "replication":
		s.b.WriteString("# Replication\r\n")
		for _, f := range []struct {
			k string
			v any
		}{
			{"role", "master"}, {"connected_slaves", 0}, {"master_failover_state", "no-failover"},
			{"master_replid", st.replID}, {"master_replid2", strings.Repeat("0", 40)},
			{"master_repl_offset", 0}, {"second_repl_offset", -1}, {"repl_backlog_active", 0},
			{"repl_backlog_size", cfg("repl-backlog-size")}, {"repl_backlog_first_byte_offset", 0},
			{"repl_backlog_histlen", 0},
		} {
			s.field(f.k, f.v)
		}
	case "cpu":
		s.b.WriteString("# CPU\r\n")
		sys, user := cpuTimes()
		// One process and no main thread: the main thread's figures are
		// the process's.
		s.field("used_cpu_sys", sys)
		s.field("used_cpu_user", user)
		s.field("used_cpu_sys_children", "0.000000")
		s.field("used_cpu_user_children", "0.000000")
		s.field("used_cpu_sys_main_thread", sys)
		s.field("used_cpu_user_main_thread", user)
	case "modules":
		s.b.WriteString("# Modules\r\n")
	case "errorstats":
		s.b.WriteString("# Errorstats\r\n")
		st.mu.Lock()
		kinds := make([]string, 0, len(st.errStats))
		for k := range st.errStats {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			s.field("errorstat_"+k, "count="+strconv.FormatInt(st.errStats[k], 10))
		}
		st.mu.Unlock()
	case "commandstats":
		c.commandStatsSection(s)
	case "latencystats":
		c.latencyStatsSection(s)
	case "cluster":
		s.b.WriteString("# Cluster\r\ncluster_enabled:0\r\n")
	case "keyspace":
		s.b.WriteString("# Keyspace\r\n")
	case "pubsubd":
		c.pubsubdSection(s)
	}
}

// What a connection's command waits for: INFO's blocked_clients and
// clients_in_timeout_table.
const (
	notBlocked int32 = iota
	blockedForever
	blockedWithTimeout
)

// clientFigures are INFO's figures of the clients, read from each.
type clientFigures struct {
	connected, blocked, tracking, timeouts int
	maxInput, maxOutput                    int64
}

func (s *Server) clientFigures() clientFigures {
	conns := s.connections()
	f := clientFigures{connected: len(conns)}
	for _, c := range conns {
		f.maxInput = max(f.maxInput, c.queryBuffered.Load())
		switch c.blocked.Load() {
		case blockedWithTimeout:
			f.timeouts++
			f.blocked++
		case blockedForever:
			f.blocked++
		}
		c.mu.Lock()
		f.maxOutput = max(f.maxOutput, c.out.pending())
		if c.track.on {
			f.tracking++
		}
		c.mu.Unlock()
	}
	return f
}

func (c *conn) memorySection(s *section) {
	srv := c.srv
	st := srv.info()
	m := readMemory()
	peak := st.peakMem.Load()
	for m.used > peak && !st.peakMem.CompareAndSwap(peak, m.used) {
		peak = st.peakMem.Load()
	}
	peak = max(peak, m.used)
	rss := processRSS()
	if rss == 0 {
		rss = m.resident
	}
	// The overhead is the goroutines' stacks and the clients' queues;
	// the rest of the heap is the subscriptions, the "dataset".
	var clientsMem int64
	for _, cn := range srv.connections() {
		cn.mu.Lock()
		clientsMem += cn.out.pending()
		cn.mu.Unlock()
	}
	overhead := min(m.stacks+uint64(clientsMem)+st.startHeap, m.used)
	dataset := m.used - overhead
	cfg := func(name string) string { return c.paramValue(srv.config().byName[name]) }
	maxmemory, _ := strconv.ParseUint(cfg("maxmemory"), 10, 64)
	system := systemMemory()
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", x) }
	for _, f := range []struct {
		k string
		v any
	}{
		{"used_memory", m.used}, {"used_memory_human", bytesToHuman(m.used)},
		{"used_memory_rss", rss}, {"used_memory_rss_human", bytesToHuman(rss)},
		{"used_memory_peak", peak}, {"used_memory_peak_human", bytesToHuman(peak)},
		{"used_memory_peak_perc", pct(100 * ratio(m.used, peak))},
		{"used_memory_overhead", overhead}, {"used_memory_startup", min(st.startHeap, m.used)},
		{"used_memory_dataset", dataset},
		{"used_memory_dataset_perc", pct(100 * ratio(dataset, m.used-min(st.startHeap, m.used)))},
		{"allocator_allocated", m.allocated}, {"allocator_active", m.active}, {"allocator_resident", m.resident},
		{"total_system_memory", system}, {"total_system_memory_human", bytesToHuman(system)},
		{"used_memory_lua", 0}, {"used_memory_vm_eval", 0}, {"used_memory_lua_human", "0B"},
		{"used_memory_scripts_eval", 0}, {"number_of_cached_scripts", 0}, {"number_of_functions", 0},
		{"number_of_libraries", 0}, {"used_memory_vm_functions", 0}, {"used_memory_vm_total", 0},
		{"used_memory_vm_total_human", "0B"}, {"used_memory_functions", 0}, {"used_memory_scripts", 0},
		{"used_memory_scripts_human", "0B"}, {"maxmemory", maxmemory}, {"maxmemory_human", bytesToHuman(maxmemory)},
		{"maxmemory_policy", cfg("maxmemory-policy")},
		{"allocator_frag_ratio", fmt.Sprintf("%.2f", ratio(m.active, m.allocated))},
		{"allocator_frag_bytes", int64(m.active) - int64(m.allocated)},
		{"allocator_rss_ratio", fmt.Sprintf("%.2f", ratio(m.resident, m.active))},
		{"allocator_rss_bytes", int64(m.resident) - int64(m.active)},
		{"rss_overhead_ratio", fmt.Sprintf("%.2f", ratio(rss, m.resident))},
		{"rss_overhead_bytes", int64(rss) - int64(m.resident)},
		{"mem_fragmentation_ratio", fmt.Sprintf("%.2f", ratio(rss, m.used))},
		{"mem_fragmentation_bytes", int64(rss) - int64(m.used)},
		{"mem_not_counted_for_evict", 0}, {"mem_replication_backlog", 0}, {"mem_total_replication_buffers", 0},
		{"mem_clients_slaves", 0}, {"mem_clients_normal", clientsMem}, {"mem_cluster_links", 0},
		{"mem_aof_buffer", 0}, {"mem_allocator", "go-" + runtime.Version()}, {"active_defrag_running", 0},
		{"lazyfree_pending_objects", 0}, {"lazyfreed_objects", 0},
	} {
		if f.k == "used_memory" {
			s.b.WriteString("# Memory\r\n")
		}
		s.field(f.k, f.v)
	}
}

func (c *conn) statsSection(s *section) {
	srv := c.srv
	st := srv.info()
	bst := srv.broker.Stats()
	io := srv.ioTotals()
	commands := srv.stats.commands.Load()
	st.mu.Lock()
	base := st.base
	now := time.Now()
	if r := &st.sample; r.at.IsZero() || now.Sub(r.at) >= 100*time.Millisecond {
		if !r.at.IsZero() {
			secs := now.Sub(r.at).Seconds()
			r.opsPerSec = float64(commands-r.commands) / secs
			r.inKbps = float64(io.inBytes-r.inBytes) / secs / 1024
			r.outKbps = float64(io.outBytes-r.outBytes) / secs / 1024
		}
		r.at, r.commands, r.inBytes, r.outBytes = now, commands, io.inBytes, io.outBytes
	}
	rates := st.sample
	st.mu.Unlock()
	tracking := 0
	for _, cn := range srv.connections() {
		cn.mu.Lock()
		tracking += len(cn.track.prefixes)
		cn.mu.Unlock()
	}
	s.b.WriteString("# Stats\r\n")
	for _, f := range []struct {
		k string
		v any
	}{
		{"total_connections_received", srv.stats.connections.Load()}, {"total_commands_processed", commands},
		{"instantaneous_ops_per_sec", int64(rates.opsPerSec)},
		{"total_net_input_bytes", io.inBytes - base.inBytes}, {"total_net_output_bytes", io.outBytes - base.outBytes},
		{"total_net_repl_input_bytes", 0}, {"total_net_repl_output_bytes", 0},
		{"instantaneous_input_kbps", fmt.Sprintf("%.2f", rates.inKbps)},
		{"instantaneous_output_kbps", fmt.Sprintf("%.2f", rates.outKbps)},
		{"instantaneous_input_repl_kbps", "0.00"}, {"instantaneous_output_repl_kbps", "0.00"},
		{"rejected_connections", srv.stats.rejected.Load()}, {"sync_full", 0}, {"sync_partial_ok", 0},
		{"sync_partial_err", 0}, {"expired_keys", 0}, {"expired_stale_perc", "0.00"},
		{"expired_time_cap_reached_count", 0}, {"expire_cycle_cpu_milliseconds", 0}, {"evicted_keys", 0},
		{"evicted_clients", 0}, {"total_eviction_exceeded_time", 0}, {"current_eviction_exceeded_time", 0},
		{"keyspace_hits", 0}, {"keyspace_misses", 0}, {"pubsub_channels", bst.Channels},
		{"pubsub_patterns", bst.Patterns}, {"pubsubshard_channels", bst.ShardChannels},
		{"latest_fork_usec", 0}, {"total_forks", 0}, {"migrate_cached_sockets", 0},
		{"slave_expires_tracked_keys", 0}, {"active_defrag_hits", 0}, {"active_defrag_misses", 0},
		{"active_defrag_key_hits", 0}, {"active_defrag_key_misses", 0}, {"total_active_defrag_time", 0},
		{"current_active_defrag_time", 0}, {"tracking_total_keys", 0}, {"tracking_total_items", 0},
		{"tracking_total_prefixes", tracking}, {"unexpected_error_replies", 0},
		{"total_error_replies", st.errors.Load()}, {"dump_payload_sanitizations", 0},
		{"total_reads_processed", io.reads - base.reads}, {"total_writes_processed", io.writes - base.writes},
		{"io_threaded_reads_processed", 0}, {"io_threaded_writes_processed", 0},
		{"reply_buffer_shrinks", 0}, {"reply_buffer_expands", 0},
	} {
		s.field(f.k, f.v)
	}
}

// pubsubdSection is INFO pubsubd: the Broker's figures and the
// connections ended by reason, which Redis does not have.
func (c *conn) pubsubdSection(s *section) {
	srv := c.srv
	st := srv.Stats()
	bst := st.Broker
	s.b.WriteString("# Pubsubd\r\n")
	for _, f := range []struct {
		k string
		v any
	}{
		{"pubsub_clients", bst.Subscriptions},
		{"pubsub_messages_published", bst.Published}, {"pubsub_messages_delivered", bst.Delivered},
		{"pubsub_messages_dropped", bst.Dropped}, {"pubsub_messages_dropped_evicted", bst.Evicted},
		{"pubsub_messages_dropped_disconnected", bst.Disconnected}, {"pubsub_gaps", bst.Gaps},
		{"pubsub_messages_queued", bst.Queued}, {"pubsub_queue_high_water", bst.HighWater},
	} {
		s.field(f.k, f.v)
	}
	for r, n := range st.Disconnects {
		s.field("disconnected_clients_"+DisconnectReason(r).String(), n)
	}
}

// resetInfo starts INFO's reset figures again from 0, as CONFIG RESETSTAT.
func (s *Server) resetInfo() {
	st := s.info()
	io := s.ioTotals()
	st.mu.Lock()
	st.base = io
	clear(st.errStats)
	st.sample = rateSample{}
	st.mu.Unlock()
	st.errors.Store(0)
}
