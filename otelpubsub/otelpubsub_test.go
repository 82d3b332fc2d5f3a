package otelpubsub_test

import (
	"context"
	"testing"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/otelpubsub"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// observed makes a Broker with the bridge on a manual reader.
func observed(t testing.TB, opts ...otelpubsub.Option) (*pubsub.Broker, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	b := pubsub.New(pubsub.WithBufferSize(2))
	t.Cleanup(func() { _ = b.Close() })
	reg, err := otelpubsub.Observe(b, append(opts, otelpubsub.WithMeterProvider(provider))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	return b, reader
}

// point is one data point: an instrument's name and the attribute values
// that tell its series apart.
type point struct {
	name  string
	attrs string
}

// collect returns every data point of the reader, by instrument and
// attributes.
func collect(t testing.TB, reader *sdkmetric.ManualReader) map[point]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[point]int64{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, otelpubsub.ScopeName, sm.Scope.Name)
		assert.Equal(t, "https://opentelemetry.io/schemas/1.43.0", sm.Scope.SchemaURL)
		for _, m := range sm.Metrics {
			var dps []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				assert.True(t, d.IsMonotonic, "%s is a counter", m.Name)
				dps = d.DataPoints
			case metricdata.Gauge[int64]:
				dps = d.DataPoints
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
			for _, dp := range dps {
				system, _ := dp.Attributes.Value("messaging.system")
				assert.Equal(t, "pubsub", system.AsString(), "%s carries messaging.system", m.Name)
				out[point{m.Name, attrsOf(dp.Attributes)}] = dp.Value
			}
		}
	}
	return out
}

// attrsOf returns the attributes but messaging.system, as k=v pairs.
func attrsOf(set attribute.Set) string {
	s := ""
	for _, kv := range set.ToSlice() {
		if kv.Key == "messaging.system" {
			continue
		}
		if s != "" {
			s += ","
		}
		s += string(kv.Key) + "=" + kv.Value.Emit()
	}
	return s
}

// The instruments move as a scripted workload says they must: publishes,
// deliveries, drops of each reason, a gap, and the gauges.
func TestCountersFollowTheWorkload(t *testing.T) {
	ctx := context.Background()
	b, reader := observed(t, otelpubsub.WithChannels("orders"))

	full, err := b.Subscribe(ctx, "orders") // buffer of 2, DropNewest
	require.NoError(t, err)
	ring, err := b.NewSubscription(pubsub.WithOverflow(pubsub.DropOldest))
	require.NoError(t, err)
	require.NoError(t, ring.PSubscribe(ctx, "ord*"))
	strict, err := b.NewSubscription(pubsub.WithOverflow(pubsub.Disconnect))
	require.NoError(t, err)
	require.NoError(t, strict.SSubscribe(ctx, "orders"))

	before := collect(t, reader)
	assert.Equal(t, int64(0), before[point{"messaging.client.sent.messages", "messaging.operation.name=publish"}])
	assert.Equal(t, int64(3), before[point{"pubsub.subscriptions", ""}])
	assert.Equal(t, int64(1), before[point{"pubsub.channel.subscribers", "messaging.destination.name=orders"}])

	for range 5 {
		_, err := b.Publish(ctx, "orders", "o")
		require.NoError(t, err)
	}
	for range 3 {
		_, err := b.SPublish(ctx, "orders", "s")
		require.NoError(t, err)
	}
	b.ReportGap(pubsub.Channels, "orders")

	got := collect(t, reader)
	// 5 publishes: "full" takes 2 and refuses 3; "ring" takes all 5 and
	// evicts 3. 3 shard publishes: "strict" takes 2, and the third closes it.
	want := map[point]int64{
		{"messaging.client.sent.messages", "messaging.operation.name=publish"}:     8,
		{"messaging.client.consumed.messages", "messaging.operation.name=receive"}: 2 + 5 + 2,
		{"pubsub.messages.dropped", "pubsub.drop.reason=full"}:                     3,
		{"pubsub.messages.dropped", "pubsub.drop.reason=evicted"}:                  3,
		{"pubsub.messages.dropped", "pubsub.drop.reason=disconnected"}:             1,
		{"pubsub.gaps", ""}:             1,
		{"pubsub.subscriptions", ""}:    2,
		{"pubsub.channels", ""}:         1,
		{"pubsub.patterns", ""}:         1,
		{"pubsub.shard_channels", ""}:   0,
		{"pubsub.queue.depth", ""}:      2 + 2 + 0,
		{"pubsub.queue.high_water", ""}: 2,
		{"pubsub.channel.subscribers", "messaging.destination.name=orders"}: 1,
	}
	assert.Equal(t, want, got)

	require.NoError(t, full.Close())
	after := collect(t, reader)
	assert.Equal(t, int64(0), after[point{"pubsub.channel.subscribers", "messaging.destination.name=orders"}])
	assert.Equal(t, int64(3), after[point{"pubsub.messages.dropped", "pubsub.drop.reason=full"}], "a closed subscription's drops stay counted")
}

// Without WithChannels, no instrument carries a channel name.
func TestNoChannelNamesByDefault(t *testing.T) {
	ctx := context.Background()
	b, reader := observed(t)
	_, err := b.Subscribe(ctx, "user:1", "user:2")
	require.NoError(t, err)
	for p := range collect(t, reader) {
		assert.NotContains(t, p.attrs, "messaging.destination.name", "%s", p.name)
	}
}

// The bridge adds nothing to Publish: still no allocation per publish to a
// subscriber, with the instruments registered and collected.
func TestPublishAllocatesNothingWithTheBridge(t *testing.T) {
	ctx := context.Background()
	b, reader := observed(t)
	s, err := b.NewSubscription(pubsub.WithBufferSize(1), pubsub.WithOverflow(pubsub.DropOldest))
	require.NoError(t, err)
	require.NoError(t, s.Subscribe(ctx, "a"))
	collect(t, reader)
	allocs := testing.AllocsPerRun(1000, func() {
		_, _ = b.Publish(ctx, "a", "x")
	})
	assert.Zero(t, allocs)
	assert.Equal(t, int64(1000), collect(t, reader)[point{"pubsub.messages.dropped", "pubsub.drop.reason=evicted"}])
}

// Publish to one subscriber that drains its buffer, with and without the
// bridge: the figures benchstat compares. Under Block nothing is dropped,
// so msgs/s is what was delivered, received before the timer stops.
func BenchmarkPublish(b *testing.B) {
	for _, bridge := range []bool{false, true} {
		name := "bridge=off"
		if bridge {
			name = "bridge=on"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var br *pubsub.Broker
			if bridge {
				br, _ = observed(b)
			} else {
				br = pubsub.New()
				defer br.Close()
			}
			s, err := br.NewSubscription(pubsub.WithBufferSize(1024), pubsub.WithOverflow(pubsub.Block))
			require.NoError(b, err)
			require.NoError(b, s.Subscribe(ctx, "a"))
			received := make(chan int)
			go func() {
				n := 0
				for range s.Channel() {
					n++
				}
				received <- n
			}()
			b.ReportAllocs()
			for b.Loop() {
				_, _ = br.Publish(ctx, "a", "x")
			}
			require.NoError(b, s.Close()) // the channel closes after what is queued
			n := <-received
			if n != b.N {
				b.Fatalf("received %d of %d", n, b.N)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// WithSystem and WithAttributes label every measurement.
func TestSystemAndAttributesLabelEveryPoint(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	b := pubsub.New()
	defer b.Close()
	reg, err := otelpubsub.Observe(b, otelpubsub.WithMeterProvider(provider), otelpubsub.WithSystem("redis"),
		otelpubsub.WithAttributes(attribute.String("broker", "orders")))
	require.NoError(t, err)
	defer reg.Unregister()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	points := 0
	for _, m := range rm.ScopeMetrics[0].Metrics {
		var sets []attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				sets = append(sets, p.Attributes)
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				sets = append(sets, p.Attributes)
			}
		}
		for _, set := range sets {
			points++
			system, _ := set.Value("messaging.system")
			broker, _ := set.Value("broker")
			assert.Equal(t, "redis", system.AsString(), m.Name)
			assert.Equal(t, "orders", broker.AsString(), m.Name)
		}
	}
	assert.Equal(t, 12, points, "every instrument but the per-channel one, which names no channel here")
}
