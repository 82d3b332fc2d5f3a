package clients_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/servertest"
)

// need is redistest.Need.
func need(t *testing.T, ok bool, msg string) { t.Helper(); redistest.Need(t, ok, msg) }

// ioredis and node-redis, each with its defaults (js/clients.mjs): all
// three kinds of subscription, Redis's receiver counts, order, PUBSUB
// introspection, unsubscribing. Their packages are those of
// js/package-lock.json, installed by `npm ci` in js/ (.ci/run does it).
func TestNodeClients(t *testing.T) {
	node, err := exec.LookPath("node")
	need(t, err == nil, "node not found: install Node.js to run the JavaScript clients")
	_, err = os.Stat(filepath.Join("js", "node_modules", "ioredis"))
	need(t, err == nil, "js/node_modules is missing: run `npm ci` in clients/js")

	srv := servertest.Run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "clients.mjs")
	cmd.Dir = "js"
	cmd.Env = append(os.Environ(), "PUBSUB_ADDR="+srv.Addr())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node clients.mjs:\n%s", out)
	require.Contains(t, string(out), "ioredis ok")
	require.Contains(t, string(out), "node-redis ok")
}
