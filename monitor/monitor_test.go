package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/monitor"
	"github.com/gopherpubsub/pubsub/server"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// served runs srv on loopback and its monitor on an httptest server.
func served(t *testing.T, srv *server.Server) (addr string, mon *httptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	mon = httptest.NewServer(monitor.Handler(srv))
	t.Cleanup(func() {
		mon.Close()
		_ = srv.Close()
		if err := <-done; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String(), mon
}

func get(t *testing.T, mon *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := mon.Client().Get(mon.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func getJSON[T any](t *testing.T, mon *httptest.Server, path string) T {
	t.Helper()
	code, body := get(t, mon, path)
	require.Equal(t, http.StatusOK, code, body)
	var v T
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	return v
}

// scrape parses /metrics with the Prometheus text parser and returns
// each sample's value by name and label values ("name" or
// "name{value}").
func scrape(t *testing.T, mon *httptest.Server) map[string]float64 {
	t.Helper()
	code, body := get(t, mon, "/metrics")
	require.Equal(t, http.StatusOK, code)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err, "the Prometheus text parser reads /metrics")
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := name
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// A scripted workload moves the counters of /metrics as it must:
// publishes and deliveries over RESP, drops of an in-process
// subscription, and disconnections by reason.
func TestMetricsFollowTheWorkload(t *testing.T) {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()
	srv := &server.Server{Broker: b, PubSubOutputLimit: &server.OutputLimit{Hard: 1 << 20}}
	addr, mon := served(t, srv)

	before := scrape(t, mon)
	assert.Equal(t, 0.0, before["pubsub_messages_published_total"])
	assert.Equal(t, 0.0, before["pubsubd_disconnects_total{output_hard_limit}"])
	assert.Contains(t, before, "go_goroutines", "the Go runtime's figures come along")

	sub := redistest.Dial(t, addr)
	sub.Do("SUBSCRIBE", "news")
	inProcess, err := b.NewSubscription(pubsub.WithBufferSize(2), pubsub.WithOverflow(pubsub.DropOldest))
	require.NoError(t, err)
	require.NoError(t, inProcess.Subscribe(ctx, "news"))
	pub := redistest.Dial(t, addr)
	for range 5 {
		assert.Equal(t, int64(2), pub.Do("PUBLISH", "news", "hello").Int)
	}
	for range 5 {
		sub.Read()
	}
	// A subscriber that never reads, past the 1 MB hard limit.
	never := redistest.Dial(t, addr)
	never.Do("SUBSCRIBE", "firehose")
	payload := strings.Repeat("x", 64<<10)
	published := 5
	for pub.Do("PUBLISH", "firehose", payload).Int == 1 {
		published++
	}
	published++ // the one that found it gone
	// One that speaks no RESP.
	bad := redistest.Dial(t, addr)
	bad.SendRaw([]byte("*1\r\n$x\r\n"))
	_, _ = bad.ReadErr()
	redistest.WaitFor(t, "both disconnections to be counted", func() bool {
		m := scrape(t, mon)
		return m["pubsubd_disconnects_total{output_hard_limit}"] == 1 && m["pubsubd_disconnects_total{protocol_error}"] == 1
	})

	m := scrape(t, mon)
	assert.Equal(t, float64(published), m["pubsub_messages_published_total"])
	assert.Equal(t, 3.0, m["pubsub_messages_dropped_total{evicted}"], "the in-process subscription of 2 kept the last 2 of 5")
	assert.Equal(t, 0.0, m["pubsub_messages_dropped_total{full}"])
	assert.Equal(t, 2.0, m["pubsub_subscriptions"], "the reading client's and the in-process one")
	assert.Equal(t, 1.0, m["pubsub_channels"])
	assert.Equal(t, 2.0, m["pubsub_queue_depth"])
	assert.Equal(t, 0.0, m["pubsubd_disconnects_total{killed}"])
	assert.Equal(t, 2.0, m["pubsubd_clients"], "sub and pub are left")
	assert.GreaterOrEqual(t, m["pubsubd_connections_total"], 4.0)
	assert.GreaterOrEqual(t, m["pubsub_messages_delivered_total"], 5.0+5.0)
}

// /connz shows a subscriber that never reads: its queue growing, first
// by out_bytes, and once it passes the limit, among the closed clients
// with the reason.
func TestConnzShowsAStuckSubscriberAndWhyItWent(t *testing.T) {
	srv := &server.Server{PubSubOutputLimit: &server.OutputLimit{Hard: 4 << 20}}
	addr, mon := served(t, srv)
	never := redistest.Dial(t, addr)
	never.Do("CLIENT", "SETNAME", "never-reads")
	never.Send("SUBSCRIBE", "firehose")
	never.Read()
	pub := redistest.Dial(t, addr)
	pub.Do("CLIENT", "SETNAME", "publisher")

	payload := strings.Repeat("x", 64<<10)
	var queue []int64
	for pub.Do("PUBLISH", "firehose", payload).Int == 1 {
		c := getJSON[monitor.Connz](t, mon, "/connz?sort=out_bytes&limit=1")
		require.Len(t, c.Connections, 1)
		if c.Connections[0].Name == "never-reads" && c.Connections[0].OutBytes > 0 {
			queue = append(queue, c.Connections[0].OutBytes)
		}
	}
	// A PUBLISH that counts it may be the one that takes it past the limit.
	require.NotEmpty(t, queue, "/connz showed the queue")
	assert.Greater(t, slices.Max(queue), int64(2<<20), "/connz showed the queue growing towards the 4 MB limit")

	redistest.WaitFor(t, "the closed client in /connz", func() bool {
		return getJSON[monitor.Connz](t, mon, "/connz?state=closed").Total == 1
	})
	closed := getJSON[monitor.Connz](t, mon, "/connz?state=closed").Connections[0]
	assert.Equal(t, "never-reads", closed.Name)
	assert.Equal(t, "output_hard_limit", closed.Reason)
	assert.NotNil(t, closed.Stop)
	assert.Greater(t, closed.OutPeak, int64(2<<20))

	open := getJSON[monitor.Connz](t, mon, "/connz")
	require.Len(t, open.Connections, 1)
	assert.Equal(t, "publisher", open.Connections[0].Name)
	assert.Equal(t, "publish", open.Connections[0].LastCommand)
	assert.Equal(t, "default", open.Connections[0].User)
	assert.Equal(t, 2, open.Connections[0].Protocol)
	all := getJSON[monitor.Connz](t, mon, "/connz?state=all&offset=1&limit=5")
	assert.Equal(t, 2, all.Total)
	assert.Len(t, all.Connections, 1, "the second of two")

	for _, bad := range []string{"/connz?sort=nonesuch", "/connz?state=gone", "/connz?limit=0", "/connz?offset=-1", "/subsz?limit=x"} {
		code, body := get(t, mon, bad)
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}
}

// /connz lists in-process subscriptions with their drops; /subsz counts
// subscribers per name, clients' and in-process alike, filtered by glob.
func TestSubszAndInProcessSubscriptions(t *testing.T) {
	ctx := context.Background()
	b := pubsub.New()
	defer b.Close()
	srv := &server.Server{Broker: b}
	addr, mon := served(t, srv)

	local, err := b.NewSubscription(pubsub.WithBufferSize(1))
	require.NoError(t, err)
	require.NoError(t, local.Subscribe(ctx, "orders:1", "orders:2"))
	c := redistest.Dial(t, addr)
	c.Send("SUBSCRIBE", "orders:1", "users:1")
	c.Read()
	c.Read()
	c.Send("PSUBSCRIBE", "orders:*")
	c.Read()
	c.Send("SSUBSCRIBE", "shard:{a}")
	c.Read()
	for range 3 {
		_, err := b.Publish(ctx, "orders:2", "x")
		require.NoError(t, err)
	}

	connz := getJSON[monitor.Connz](t, mon, "/connz")
	require.Len(t, connz.InProcess, 1, "the client's own subscription is not listed as in-process")
	assert.Equal(t, monitor.SubscriptionInfo{Channels: 2, Delivered: 1, Dropped: 2, Queued: 1, HighWater: 1, Capacity: 1}, connz.InProcess[0])
	require.Len(t, connz.Connections, 1)
	assert.Equal(t, 4, connz.Connections[0].Subscriptions)
	assert.Equal(t, uint64(3), connz.Connections[0].Delivered, "the pattern's 3 pmessages")

	subsz := getJSON[monitor.Subsz](t, mon, "/subsz?filter=orders:*")
	assert.Equal(t, []monitor.NameCount{{"orders:1", 2}, {"orders:2", 1}}, subsz.Channels.Names)
	assert.Equal(t, []monitor.NameCount{{"orders:*", 1}}, subsz.Patterns.Names)
	assert.Empty(t, subsz.ShardChannels.Names)
	everything := getJSON[monitor.Subsz](t, mon, "/subsz?limit=1&offset=1")
	assert.Equal(t, 3, everything.Channels.Total)
	assert.Equal(t, []monitor.NameCount{{"orders:2", 1}}, everything.Channels.Names, "page 2 of 1 by name")
	assert.Equal(t, []monitor.NameCount{{"shard:{a}", 1}}, getJSON[monitor.Subsz](t, mon, "/subsz").ShardChannels.Names)

	varz := getJSON[monitor.Varz](t, mon, "/varz")
	assert.Equal(t, 1, varz.Clients)
	assert.Equal(t, uint64(3), varz.Broker.Published)
	assert.Equal(t, uint64(2), varz.Broker.Dropped)
	assert.Equal(t, 2, varz.Broker.Subscriptions)
	assert.Contains(t, varz.Disconnects, "output_hard_limit")
}
