package pubsubtest_test

import (
	"testing"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/pubsubtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The in-process Broker keeps every guarantee: the zero Features.
func TestBroker(t *testing.T) {
	pubsubtest.Run(t, pubsubtest.Features{}, func(t *testing.T) pubsub.Engine {
		return pubsub.New()
	})
}
