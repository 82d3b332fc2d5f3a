package rueidisbroker

import (
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/relay"
)

// Option configures a Broker made by [New] or [Open].
type Option func(*relay.Settings)

// DefaultHealthCheck is how long an upstream connection may stay silent
// before the Broker asks Redis for a PING; one that does not answer within
// as long again is taken for lost (see [HealthCheck]).
const DefaultHealthCheck = relay.DefaultHealthCheck

// Engine gives the defaults of every local subscription (buffer size,
// overflow policy, ...), as the options of [pubsub.New].
func Engine(opts ...pubsub.Option) Option {
	return func(s *relay.Settings) { s.Engine = append(s.Engine, opts...) }
}

// HealthCheck sets how long an upstream connection may stay silent before
// the Broker sends Redis a PING on it; if nothing arrives within as long
// again, the connection is taken for lost, as a closed one is: the gap is
// reported, it is dialled again and every name subscribed again. So a
// Redis that hangs without closing its connections (stopped, or behind a
// broken network path) is noticed within twice the interval. The default
// is [DefaultHealthCheck]; it must be positive.
func HealthCheck(interval time.Duration) Option {
	return func(s *relay.Settings) { s.SetHealthCheck(interval) }
}
