package clients_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/servertest"
)

// runScript runs a client script and, each time it prints a line "drop",
// drops every client on the server (DropClients, as a network failure
// would) and answers "dropped" on the script's standard input, so that
// the script checks its client's reconnection. It returns the script's
// output; the script failing fails the test.
// The script finds the server at PUBSUB_ADDR, and runs in dir.
func runScript(t *testing.T, srv *servertest.Server, dir, program string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PUBSUB_ADDR="+srv.Addr())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var out strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			out.WriteString(lines.Text() + "\n")
			if lines.Text() == "drop" {
				srv.DropClients()
				_, _ = io.WriteString(stdin, "dropped\n")
			}
		}
	}()
	wg.Wait()
	err = cmd.Wait()
	require.NoError(t, err, "%s:\n%s%s", cmd.Args, out.String(), stderr.String())
	return out.String()
}
