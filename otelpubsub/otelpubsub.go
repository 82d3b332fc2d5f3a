// Package otelpubsub reports a pubsub Broker's figures as OpenTelemetry
// metrics, through the OpenTelemetry metrics API: any SDK and exporter
// (OTLP, Prometheus, stdout) takes them from there.
//
// [Observe] registers asynchronous instruments whose callback reads
// [pubsub.Broker.Stats] once per collection. Nothing is added to Publish:
// the counters it reads already exist (drops and gaps are counted on their
// own paths only), and a collection costs what Stats costs, time in
// proportion to the number of subscriptions.
//
// # Instruments
//
// Names follow the OpenTelemetry messaging semantic conventions, version
// 1.43.0 (the meter carries its schema URL), where they have one; the
// others are this package's, under "pubsub.":
//
//	messaging.client.sent.messages      counter  messages published (Publish and SPublish calls that published)
//	messaging.client.consumed.messages  counter  messages put in a subscription's buffer
//	pubsub.messages.dropped             counter  messages lost, by pubsub.drop.reason: full, evicted, disconnected
//	pubsub.gaps                         counter  gaps a relay reported (a lost connection to Redis, say)
//	pubsub.subscriptions                gauge    open subscriptions
//	pubsub.channels                     gauge    channels with a subscriber
//	pubsub.patterns                     gauge    patterns subscribed to
//	pubsub.shard_channels               gauge    shard channels with a subscriber
//	pubsub.queue.depth                  gauge    messages waiting in the subscriptions' buffers
//	pubsub.queue.high_water             gauge    the highest of the subscriptions' high-water marks
//	pubsub.channel.subscribers          gauge    subscribers per channel: only the channels named with WithChannels
//
// Every one carries messaging.system ("pubsub" unless [WithSystem] says
// otherwise) and the attributes given with [WithAttributes].
//
// # Channel names
//
// The messaging conventions make messaging.destination.name conditionally
// required, "if and only if [it] is known to have low cardinality". A
// Broker's channel names are whatever its users publish to (an order id, a
// user id), so by default no instrument carries them: one attribute value
// per channel would make a time series per channel, without bound. The
// channels a program knows to be few it names with [WithChannels]; each
// gets a pubsub.channel.subscribers series with messaging.destination.name.
package otelpubsub

import (
	"context"
	"fmt"

	"github.com/gopherpubsub/pubsub"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// ScopeName is the instrumentation scope of the meter Observe uses.
const ScopeName = "github.com/gopherpubsub/pubsub/otelpubsub"

// DropReasonKey is the attribute of pubsub.messages.dropped that says why
// messages were lost: "full" (refused by a full buffer), "evicted" (by
// DropOldest) or "disconnected" (by the Disconnect policy).
const DropReasonKey = attribute.Key("pubsub.drop.reason")

// Option configures Observe.
type Option func(*config)

type config struct {
	provider metric.MeterProvider
	system   string
	attrs    []attribute.KeyValue
	channels []string
}

// WithMeterProvider sets where the instruments are made. The default is
// the global provider, otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.provider = mp }
}

// WithSystem sets the value of messaging.system. The default is "pubsub".
func WithSystem(name string) Option {
	return func(c *config) { c.system = name }
}

// WithAttributes adds attributes to every measurement, to tell several
// Brokers apart, say. The default is none.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attrs = append(c.attrs, attrs...) }
}

// WithChannels names channels whose subscriber counts are reported, each
// with its name as messaging.destination.name. Name only a bounded set:
// each name is a time series. The default is none.
func WithChannels(names ...string) Option {
	return func(c *config) { c.channels = append(c.channels, names...) }
}

// Observe registers instruments reporting b's figures at every collection
// until the returned registration is unregistered. It fails only if the
// meter refuses an instrument or the callback.
func Observe(b *pubsub.Broker, opts ...Option) (metric.Registration, error) {
	cfg := config{system: "pubsub"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.provider == nil {
		cfg.provider = otel.GetMeterProvider()
	}
	meter := cfg.provider.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	inst, err := newInstruments(meter)
	if err != nil {
		return nil, fmt.Errorf("otelpubsub: %w", err)
	}
	common := append([]attribute.KeyValue{semconv.MessagingSystemKey.String(cfg.system)}, cfg.attrs...)
	set := func(extra ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributes(append(append([]attribute.KeyValue(nil), common...), extra...)...)
	}
	// The attribute sets are made once: a collection then allocates
	// nothing for them.
	var (
		all          = set()
		sent         = set(semconv.MessagingOperationNameKey.String("publish"))
		consumed     = set(semconv.MessagingOperationNameKey.String("receive"))
		full         = set(DropReasonKey.String("full"))
		evicted      = set(DropReasonKey.String("evicted"))
		disconnected = set(DropReasonKey.String("disconnected"))
		perChannel   = make([]metric.MeasurementOption, len(cfg.channels))
	)
	for i, name := range cfg.channels {
		perChannel[i] = set(semconv.MessagingDestinationNameKey.String(name))
	}
	channels := cfg.channels
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		st := b.Stats()
		o.ObserveInt64(inst.sent, int64(st.Published), sent)
		o.ObserveInt64(inst.consumed, int64(st.Delivered), consumed)
		o.ObserveInt64(inst.dropped, int64(st.Dropped-st.Evicted-st.Disconnected), full)
		o.ObserveInt64(inst.dropped, int64(st.Evicted), evicted)
		o.ObserveInt64(inst.dropped, int64(st.Disconnected), disconnected)
		o.ObserveInt64(inst.gaps, int64(st.Gaps), all)
		o.ObserveInt64(inst.subscriptions, int64(st.Subscriptions), all)
		o.ObserveInt64(inst.channels, int64(st.Channels), all)
		o.ObserveInt64(inst.patterns, int64(st.Patterns), all)
		o.ObserveInt64(inst.shardChannels, int64(st.ShardChannels), all)
		o.ObserveInt64(inst.queueDepth, int64(st.Queued), all)
		o.ObserveInt64(inst.highWater, int64(st.HighWater), all)
		if len(channels) == 0 {
			return nil
		}
		counts, err := b.NumSub(ctx, channels...)
		if err != nil {
			return nil // a closed Broker: its figures above are final, its channels gone
		}
		for i, name := range channels {
			o.ObserveInt64(inst.channelSubscribers, int64(counts[name]), perChannel[i])
		}
		return nil
	}, inst.all()...)
}

type instruments struct {
	sent, consumed, dropped, gaps                    metric.Int64ObservableCounter
	subscriptions, channels, patterns, shardChannels metric.Int64ObservableGauge
	queueDepth, highWater, channelSubscribers        metric.Int64ObservableGauge
}

func newInstruments(m metric.Meter) (*instruments, error) {
	var i instruments
	sent, err1 := messagingconv.NewClientSentMessagesObservable(m)
	consumed, err2 := messagingconv.NewClientConsumedMessagesObservable(m)
	i.sent, i.consumed = sent.Inst(), consumed.Inst()
	counter := func(name, unit, desc string, err *error) metric.Int64ObservableCounter {
		c, e := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if *err == nil {
			*err = e
		}
		return c
	}
	gauge := func(name, unit, desc string, err *error) metric.Int64ObservableGauge {
		g, e := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if *err == nil {
			*err = e
		}
		return g
	}
	var err error
	i.dropped = counter("pubsub.messages.dropped", "{message}", "Messages a subscription lost, by reason.", &err)
	i.gaps = counter("pubsub.gaps", "{gap}", "Times a relay reported that messages may have been lost outside the process.", &err)
	i.subscriptions = gauge("pubsub.subscriptions", "{subscription}", "Open subscriptions.", &err)
	i.channels = gauge("pubsub.channels", "{channel}", "Channels with at least one subscriber.", &err)
	i.patterns = gauge("pubsub.patterns", "{pattern}", "Unique patterns subscribed to.", &err)
	i.shardChannels = gauge("pubsub.shard_channels", "{channel}", "Shard channels with at least one subscriber.", &err)
	i.queueDepth = gauge("pubsub.queue.depth", "{message}", "Messages waiting in the subscriptions' buffers.", &err)
	i.highWater = gauge("pubsub.queue.high_water", "{message}", "The highest of the subscriptions' high-water marks.", &err)
	i.channelSubscribers = gauge("pubsub.channel.subscribers", "{subscription}", "Subscribers of each channel named with WithChannels.", &err)
	for _, e := range []error{err1, err2, err} {
		if e != nil {
			return nil, e
		}
	}
	return &i, nil
}

func (i *instruments) all() []metric.Observable {
	return []metric.Observable{i.sent, i.consumed, i.dropped, i.gaps, i.subscriptions, i.channels,
		i.patterns, i.shardChannels, i.queueDepth, i.highWater, i.channelSubscribers}
}
