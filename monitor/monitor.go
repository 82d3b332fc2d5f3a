// Package monitor serves a pubsub server's figures over HTTP, for
// operators, in the spirit of NATS's monitoring endpoints:
//
//	/metrics  Prometheus text format: the server's and the Broker's counters and gauges
//	/varz     JSON: the server's figures
//	/connz    JSON: one entry per client, sortable and paged; the in-process subscriptions
//	/subsz    JSON: channels, patterns and shard channels with their subscriber counts
//
// pubsubd serves it with -monitor addr. It lives in a module of its own so
// that the core module never requires the Prometheus client.
//
// Every figure is read when a request comes: nothing is added to a
// publish. A request takes time in proportion to the number of clients and
// subscriptions, as CLIENT LIST and INFO do.
package monitor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves srv's figures on /metrics, /varz, /connz and /subsz.
// /metrics also carries the Go runtime's and the process's figures.
func Handler(srv *server.Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newCollector(srv))
	m := &monitor{srv: srv}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /varz", m.varz)
	mux.HandleFunc("GET /connz", m.connz)
	mux.HandleFunc("GET /subsz", m.subsz)
	mux.HandleFunc("GET /{$}", m.index)
	return mux
}

type monitor struct {
	srv *server.Server
}

func (m *monitor) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "/metrics  Prometheus text format")
	fmt.Fprintln(w, "/varz     server figures (JSON)")
	fmt.Fprintln(w, "/connz    clients: ?sort=id|out_bytes|out_peak|delivered|idle|subscriptions&state=open|closed|all&offset=0&limit=100")
	fmt.Fprintln(w, "/subsz    channels, patterns and shard channels: ?filter=glob&offset=0&limit=100")
}

// writeJSON writes v indented, as NATS's endpoints do, for curl.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Varz is what /varz answers.
type Varz struct {
	Now         time.Time        `json:"now"`
	Start       time.Time        `json:"start"`
	Uptime      string           `json:"uptime"`
	PID         int              `json:"pid"`
	GoVersion   string           `json:"go"`
	Clients     int              `json:"connections"`
	Total       int64            `json:"total_connections"`
	Rejected    int64            `json:"rejected_connections"`
	Commands    int64            `json:"commands"`
	Disconnects map[string]int64 `json:"disconnects"`
	Broker      BrokerVarz       `json:"broker"`
	MemoryBytes uint64           `json:"mem"` // the Go runtime's memory from the OS
	Goroutines  int              `json:"goroutines"`
}

// BrokerVarz are the Broker's figures in /varz.
type BrokerVarz struct {
	Published     uint64 `json:"published"`
	Delivered     uint64 `json:"delivered"`
	Dropped       uint64 `json:"dropped"`
	Evicted       uint64 `json:"dropped_evicted"`
	Disconnected  uint64 `json:"dropped_disconnected"`
	Gaps          uint64 `json:"gaps"`
	Subscriptions int    `json:"subscriptions"`
	Channels      int    `json:"channels"`
	Patterns      int    `json:"patterns"`
	ShardChannels int    `json:"shard_channels"`
	Queued        int    `json:"queued"`
	HighWater     int    `json:"high_water"`
}

func (m *monitor) varz(w http.ResponseWriter, _ *http.Request) {
	st := m.srv.Stats()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	now := time.Now()
	v := Varz{
		Now: now, Start: st.Started, Uptime: now.Sub(st.Started).Round(time.Second).String(),
		PID: os.Getpid(), GoVersion: runtime.Version(),
		Clients: st.Clients, Total: st.ConnectionsTotal, Rejected: st.Rejected, Commands: st.Commands,
		Disconnects: make(map[string]int64), Broker: brokerVarz(st.Broker),
		MemoryBytes: mem.Sys, Goroutines: runtime.NumGoroutine(),
	}
	for r, n := range st.Disconnects {
		v.Disconnects[server.DisconnectReason(r).String()] = n
	}
	writeJSON(w, v)
}

func brokerVarz(b pubsub.Stats) BrokerVarz {
	return BrokerVarz{
		Published: b.Published, Delivered: b.Delivered, Dropped: b.Dropped, Evicted: b.Evicted,
		Disconnected: b.Disconnected, Gaps: b.Gaps, Subscriptions: b.Subscriptions, Channels: b.Channels,
		Patterns: b.Patterns, ShardChannels: b.ShardChannels, Queued: b.Queued, HighWater: b.HighWater,
	}
}

// Connz is what /connz answers.
type Connz struct {
	Now         time.Time          `json:"now"`
	State       string             `json:"state"`
	Sort        string             `json:"sort"`
	Total       int                `json:"total"` // clients in the state asked, before paging
	Offset      int                `json:"offset"`
	Limit       int                `json:"limit"`
	Connections []ConnInfo         `json:"connections"`
	InProcess   []SubscriptionInfo `json:"in_process_subscriptions"`
}

// ConnInfo is one client in /connz.
type ConnInfo struct {
	ID            int64      `json:"cid"`
	Addr          string     `json:"addr"`
	Name          string     `json:"name,omitempty"`
	Library       string     `json:"lib,omitempty"`
	Protocol      int        `json:"resp"`
	Start         time.Time  `json:"start"`
	LastActivity  time.Time  `json:"last_activity"`
	Idle          string     `json:"idle"`
	LastCommand   string     `json:"last_cmd,omitempty"`
	User          string     `json:"user,omitempty"`
	Subscriptions int        `json:"subscriptions"`
	Channels      int        `json:"channels"`
	Patterns      int        `json:"patterns"`
	ShardChannels int        `json:"shard_channels"`
	OutBytes      int64      `json:"out_bytes"`
	OutPeak       int64      `json:"out_peak"`
	Delivered     uint64     `json:"delivered"`
	Stop          *time.Time `json:"stop,omitempty"`
	Reason        string     `json:"reason,omitempty"`
}

// SubscriptionInfo is one in-process subscription in /connz.
type SubscriptionInfo struct {
	Channels      int    `json:"channels"`
	Patterns      int    `json:"patterns"`
	ShardChannels int    `json:"shard_channels"`
	Delivered     uint64 `json:"delivered"`
	Dropped       uint64 `json:"dropped"`
	Evicted       uint64 `json:"dropped_evicted"`
	Disconnected  uint64 `json:"dropped_disconnected"`
	Gaps          uint64 `json:"gaps"`
	Queued        int    `json:"queued"`
	HighWater     int    `json:"high_water"`
	Capacity      int    `json:"capacity"`
}

// DefaultLimit and MaxLimit bound the entries of one page of /connz and
// /subsz.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// sorts are /connz's orders: by ID ascending, the others descending.
var sorts = map[string]func(a, b *server.ClientInfo) int{
	"id":            func(a, b *server.ClientInfo) int { return cmp.Compare(a.ID, b.ID) },
	"out_bytes":     func(a, b *server.ClientInfo) int { return cmp.Compare(b.OutputBytes, a.OutputBytes) },
	"out_peak":      func(a, b *server.ClientInfo) int { return cmp.Compare(b.OutputPeak, a.OutputPeak) },
	"delivered":     func(a, b *server.ClientInfo) int { return cmp.Compare(b.Delivered, a.Delivered) },
	"idle":          func(a, b *server.ClientInfo) int { return a.LastActive.Compare(b.LastActive) },
	"subscriptions": func(a, b *server.ClientInfo) int { return cmp.Compare(subscriptions(b), subscriptions(a)) },
}

func subscriptions(c *server.ClientInfo) int { return c.Channels + c.Patterns + c.ShardChannels }

func (m *monitor) connz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sortBy := cmp.Or(q.Get("sort"), "id")
	order, ok := sorts[sortBy]
	if !ok {
		http.Error(w, fmt.Sprintf("unknown sort %q: want id, out_bytes, out_peak, delivered, idle or subscriptions", sortBy), http.StatusBadRequest)
		return
	}
	state := cmp.Or(q.Get("state"), "open")
	var clients []server.ClientInfo
	switch state {
	case "open":
		clients = m.srv.Clients()
	case "closed":
		clients = m.srv.ClosedClients()
	case "all":
		clients = append(m.srv.Clients(), m.srv.ClosedClients()...)
	default:
		http.Error(w, fmt.Sprintf("unknown state %q: want open, closed or all", state), http.StatusBadRequest)
		return
	}
	offset, limit, err := page(q.Get("offset"), q.Get("limit"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	slices.SortStableFunc(clients, func(a, b server.ClientInfo) int {
		return cmp.Or(order(&a, &b), cmp.Compare(a.ID, b.ID))
	})
	now := time.Now()
	c := Connz{Now: now, State: state, Sort: sortBy, Total: len(clients), Offset: offset, Limit: limit, Connections: []ConnInfo{}}
	for _, ci := range window(clients, offset, limit) {
		c.Connections = append(c.Connections, connInfo(ci, now))
	}
	c.InProcess = []SubscriptionInfo{}
	for _, s := range m.srv.InProcessSubscriptions() {
		st := s.Stats()
		c.InProcess = append(c.InProcess, SubscriptionInfo{
			Channels: st.Channels, Patterns: st.Patterns, ShardChannels: st.ShardChannels,
			Delivered: st.Delivered, Dropped: st.Dropped, Evicted: st.Evicted, Disconnected: st.Disconnected,
			Gaps: st.Gaps, Queued: st.Queued, HighWater: st.HighWater, Capacity: st.Capacity,
		})
	}
	writeJSON(w, c)
}

func connInfo(ci server.ClientInfo, now time.Time) ConnInfo {
	out := ConnInfo{
		ID: ci.ID, Addr: ci.Addr, Name: ci.Name, Library: ci.Library, Protocol: ci.Protocol,
		Start: ci.Connected, LastActivity: ci.LastActive, LastCommand: ci.LastCommand, User: ci.User,
		Subscriptions: subscriptions(&ci), Channels: ci.Channels, Patterns: ci.Patterns, ShardChannels: ci.ShardChannels,
		OutBytes: ci.OutputBytes, OutPeak: ci.OutputPeak, Delivered: ci.Delivered,
	}
	end := now
	if !ci.Closed.IsZero() {
		stop := ci.Closed
		out.Stop, out.Reason, end = &stop, ci.Reason.String(), stop
	}
	out.Idle = end.Sub(ci.LastActive).Round(time.Millisecond).String()
	return out
}

// page parses offset and limit.
func page(offsetArg, limitArg string) (offset, limit int, err error) {
	limit = DefaultLimit
	if offsetArg != "" {
		if offset, err = strconv.Atoi(offsetArg); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q: want a whole number, 0 or more", offsetArg)
		}
	}
	if limitArg != "" {
		if limit, err = strconv.Atoi(limitArg); err != nil || limit < 1 || limit > MaxLimit {
			return 0, 0, fmt.Errorf("limit %q: want 1 to %d", limitArg, MaxLimit)
		}
	}
	return offset, limit, nil
}

func window[T any](all []T, offset, limit int) []T {
	if offset >= len(all) {
		return nil
	}
	return all[offset:min(offset+limit, len(all))]
}

// Subsz is what /subsz answers.
type Subsz struct {
	Now           time.Time `json:"now"`
	Filter        string    `json:"filter,omitempty"`
	Offset        int       `json:"offset"`
	Limit         int       `json:"limit"`
	Channels      NameList  `json:"channels"`
	Patterns      NameList  `json:"patterns"`
	ShardChannels NameList  `json:"shard_channels"`
}

// NameList is one page of names, by name, with how many subscriptions
// hold each; Total counts them all.
type NameList struct {
	Total int         `json:"total"`
	Names []NameCount `json:"names"`
}

// NameCount is a channel, pattern or shard channel and its subscribers.
type NameCount struct {
	Name        string `json:"name"`
	Subscribers int    `json:"subscribers"`
}

func (m *monitor) subsz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := q.Get("filter")
	offset, limit, err := page(q.Get("offset"), q.Get("limit"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var counts [3]map[string]int // channels, patterns, shard channels
	for i := range counts {
		counts[i] = make(map[string]int)
	}
	for _, s := range m.srv.BrokerInUse().Subscriptions() {
		channels, patterns, shardChannels := s.Subscribed()
		for i, names := range [3][]string{channels, patterns, shardChannels} {
			for _, name := range names {
				counts[i][name]++
			}
		}
	}
	// The filter is matched once per name, as PUBSUB CHANNELS does: time
	// in proportion to len(filter) × the name's length, at most.
	list := func(c map[string]int) NameList {
		names := make([]NameCount, 0, len(c))
		for name, n := range c {
			if filter == "" || pubsub.Match(filter, name) {
				names = append(names, NameCount{name, n})
			}
		}
		slices.SortFunc(names, func(a, b NameCount) int { return cmp.Compare(a.Name, b.Name) })
		return NameList{Total: len(names), Names: append([]NameCount{}, window(names, offset, limit)...)}
	}
	writeJSON(w, Subsz{
		Now: time.Now(), Filter: filter, Offset: offset, Limit: limit,
		Channels: list(counts[0]), Patterns: list(counts[1]), ShardChannels: list(counts[2]),
	})
}
