package main

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gopherpubsub/pubsub/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHistogramBucketsAreWithinSevenPercent(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 15, 16, 17, 100, 999, time.Microsecond, 37 * time.Microsecond, time.Millisecond, 3 * time.Second} {
		v := time.Duration(bucketValue(bucketOf(int64(d))))
		assert.LessOrEqual(t, v, d, "bucket of %v starts at %v", d, v)
		assert.GreaterOrEqual(t, float64(v), float64(d)*0.93, "bucket of %v starts at %v", d, v)
	}
	var h histogram
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	p50 := h.quantile(0.5, 100)
	assert.InDelta(t, float64(50*time.Millisecond), float64(p50), float64(4*time.Millisecond), "p50 = %v", p50)
}

func TestReadPushTakesTheLastBulk(t *testing.T) {
	in := "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" + // a confirmation
		">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n" +
		"*4\r\n$8\r\npmessage\r\n$3\r\nc*h\r\n$2\r\nch\r\n$0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	var buf []byte
	last, err := readPush(br, &buf)
	require.NoError(t, err)
	assert.Equal(t, "ch", string(last))
	last, err = readPush(br, &buf)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(last))
	last, err = readPush(br, &buf)
	require.NoError(t, err)
	assert.Equal(t, "", string(last))
	_, err = readPush(br, &buf)
	assert.Error(t, err)
}

// The whole workload against a server in the process: every message
// arrives, in order, and the figures add up.
func TestMeasureCountsEveryDelivery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &server.Server{}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		assert.True(t, errors.Is(<-served, server.ErrServerClosed))
	}()
	for _, kind := range []string{"channel", "pattern", "shard"} {
		w := workload{subs: 3, pubs: 2, size: 32, pipeline: 4, n: 50, kind: kind, timeout: 5 * time.Second}
		res, err := w.measure(ln.Addr().String(), "test:"+kind)
		require.NoError(t, err, kind)
		assert.Equal(t, int64(w.subs*w.pubs*w.n), res.delivered, "%s: delivered", kind)
		assert.Zero(t, res.lost, "%s: lost", kind)
		assert.Zero(t, res.disorder, "%s: disorder", kind)
		assert.Greater(t, res.delivPerSec, 0.0, kind)
		assert.Greater(t, res.p99, time.Duration(0), kind)
	}
}
