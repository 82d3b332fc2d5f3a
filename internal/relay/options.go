package relay

import (
	"fmt"
	"time"

	"github.com/gopherpubsub/pubsub"
)

// Settings are what the options of a Broker set.
type Settings struct {
	Engine      []pubsub.Option // defaults of every local subscription
	HealthCheck time.Duration
	err         error
}

// DefaultHealthCheck is the health-check interval of a Broker made
// without one.
const DefaultHealthCheck = time.Second

// SetHealthCheck sets the interval, or records why it is invalid.
func (s *Settings) SetHealthCheck(interval time.Duration) {
	if interval <= 0 {
		s.err = fmt.Errorf("%w: HealthCheck(%v): want a positive interval", pubsub.ErrInvalidOption, interval)
		return
	}
	s.HealthCheck = interval
}

// Resolve applies opts to the defaults.
func Resolve[O ~func(*Settings)](opts []O) (Settings, error) {
	s := Settings{HealthCheck: DefaultHealthCheck}
	for _, opt := range opts {
		if opt != nil {
			opt(&s)
		}
	}
	return s, s.err
}
