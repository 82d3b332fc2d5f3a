package otelpubsub_test

import (
	"context"
	"fmt"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/otelpubsub"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A Broker's figures through the OpenTelemetry SDK. A program gives its
// own provider (with an OTLP or Prometheus exporter); a manual reader
// shows what any exporter would receive.
func Example() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(ctx)

	b := pubsub.New(pubsub.WithBufferSize(1))
	defer b.Close()
	reg, err := otelpubsub.Observe(b, otelpubsub.WithMeterProvider(provider), otelpubsub.WithChannels("orders"))
	if err != nil {
		panic(err)
	}
	defer reg.Unregister()

	sub, _ := b.Subscribe(ctx, "orders")
	defer sub.Close()
	b.Publish(ctx, "orders", "order 1")
	b.Publish(ctx, "orders", "order 2") // the buffer holds one: dropped

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		var points []metricdata.DataPoint[int64]
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			points = d.DataPoints
		case metricdata.Gauge[int64]:
			points = d.DataPoints
		}
		for _, p := range points {
			if p.Value == 0 {
				continue
			}
			reason, _ := p.Attributes.Value(otelpubsub.DropReasonKey)
			channel, _ := p.Attributes.Value("messaging.destination.name")
			fmt.Println(m.Name, reason.Emit()+channel.Emit(), p.Value)
		}
	}
	// Unordered output:
	// messaging.client.sent.messages  2
	// messaging.client.consumed.messages  1
	// pubsub.messages.dropped full 1
	// pubsub.subscriptions  1
	// pubsub.channels  1
	// pubsub.queue.depth  1
	// pubsub.queue.high_water  1
	// pubsub.channel.subscribers orders 1
}
