package clients_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/servertest"
)

// need is redistest.Need.
func need(t *testing.T, ok bool, msg string) { t.Helper(); redistest.Need(t, ok, msg) }

// ioredis and node-redis, each with its defaults (js/clients.mjs): all
// three kinds of subscription, Redis's receiver counts, order, PUBSUB
// introspection, reconnection after the server drops every client,
// unsubscribing. Their packages are those of
// js/package-lock.json, installed by `npm ci` in js/ (.ci/run does it).
func TestNodeClients(t *testing.T) {
	node, err := exec.LookPath("node")
	need(t, err == nil, "node not found: install Node.js to run the JavaScript clients")
	_, err = os.Stat(filepath.Join("js", "node_modules", "ioredis"))
	need(t, err == nil, "js/node_modules is missing: run `npm ci` in clients/js")

	srv := servertest.Run(t)
	out := runScript(t, srv, "js", node, "clients.mjs")
	require.Contains(t, out, "ioredis ok")
	require.Contains(t, out, "node-redis ok")
}
