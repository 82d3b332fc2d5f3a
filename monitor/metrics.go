package monitor

import (
	"github.com/gopherpubsub/pubsub/server"
	"github.com/prometheus/client_golang/prometheus"
)

// collector reads the Server's figures at every scrape: a Collector rather
// than counters kept up to date, because the figures exist already and a
// scrape is rarer than a publish.
type collector struct {
	srv *server.Server

	clients, connections, rejected, commands, disconnects *prometheus.Desc
	outputBytes                                           *prometheus.Desc
	published, delivered, dropped, gaps                   *prometheus.Desc
	subscriptions, channels, patterns, shardChannels      *prometheus.Desc
	queued, highWater                                     *prometheus.Desc
}

func newCollector(srv *server.Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		srv:           srv,
		clients:       d("pubsubd_clients", "Client connections open now."),
		connections:   d("pubsubd_connections_total", "Client connections accepted."),
		rejected:      d("pubsubd_connections_rejected_total", "Client connections refused at maxclients."),
		commands:      d("pubsubd_commands_total", "Commands run."),
		disconnects:   d("pubsubd_disconnects_total", "Client connections ended, by reason.", "reason"),
		outputBytes:   d("pubsubd_output_bytes", "Output queued for the clients and not yet written."),
		published:     d("pubsub_messages_published_total", "Messages published (PUBLISH and SPUBLISH that published)."),
		delivered:     d("pubsub_messages_delivered_total", "Messages delivered to a subscription."),
		dropped:       d("pubsub_messages_dropped_total", "Messages a subscription lost, by reason: full (refused by a full buffer), evicted (by DropOldest), disconnected (by the Disconnect policy).", "reason"),
		gaps:          d("pubsub_gaps_total", "Gaps reported by a relay."),
		subscriptions: d("pubsub_subscriptions", "Open subscriptions, the clients' and the in-process ones."),
		channels:      d("pubsub_channels", "Channels with at least one subscriber."),
		patterns:      d("pubsub_patterns", "Unique patterns subscribed to."),
		shardChannels: d("pubsub_shard_channels", "Shard channels with at least one subscriber."),
		queued:        d("pubsub_queue_depth", "Messages waiting in the in-process subscriptions' buffers."),
		highWater:     d("pubsub_queue_high_water", "The highest of the subscriptions' high-water marks."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clients, c.connections, c.rejected, c.commands, c.disconnects, c.outputBytes,
		c.published, c.delivered, c.dropped, c.gaps, c.subscriptions, c.channels, c.patterns, c.shardChannels,
		c.queued, c.highWater} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(c.clients, float64(st.Clients))
	counter(c.connections, float64(st.ConnectionsTotal))
	counter(c.rejected, float64(st.Rejected))
	counter(c.commands, float64(st.Commands))
	for r, n := range st.Disconnects {
		counter(c.disconnects, float64(n), server.DisconnectReason(r).String())
	}
	var out int64
	for _, ci := range c.srv.Clients() {
		out += ci.OutputBytes
	}
	gauge(c.outputBytes, float64(out))
	b := st.Broker
	counter(c.published, float64(b.Published))
	counter(c.delivered, float64(b.Delivered))
	counter(c.dropped, float64(b.Dropped-b.Evicted-b.Disconnected), "full")
	counter(c.dropped, float64(b.Evicted), "evicted")
	counter(c.dropped, float64(b.Disconnected), "disconnected")
	counter(c.gaps, float64(b.Gaps))
	gauge(c.subscriptions, float64(b.Subscriptions))
	gauge(c.channels, float64(b.Channels))
	gauge(c.patterns, float64(b.Patterns))
	gauge(c.shardChannels, float64(b.ShardChannels))
	gauge(c.queued, float64(b.Queued))
	gauge(c.highWater, float64(b.HighWater))
}
