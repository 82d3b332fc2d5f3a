package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOrdersScenario(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out))
	got := out.String()
	for _, want := range []string{
		`PUBLISH orders:placed "order #1001 (keyboard x1, Kim)" -> 6 receivers`,
		`PUBLISH orders:cancelled "order #1001 (keyboard x1, Kim)" -> 2 receivers`,
		`PUBLISH orders:refunded "order #1001 (keyboard x1, Kim)" -> 1 receivers`,
		`[payment     ] charged the card for order #1002 (monitor x2, Lee)`,
		`[stock       ] put the items of order #1001 (keyboard x1, Kim) back on the shelf`,
		`[statistics  ] counted a "refunded" event (pattern orders:*) for order #1001 (keyboard x1, Kim)`,
		"published 4 events, delivered 15, dropped 0",
	} {
		assert.Contains(t, got, want)
	}
	assert.Equal(t, 4+15+1, strings.Count(got, "\n"), "one line per publish, per reaction, and the summary")
}
