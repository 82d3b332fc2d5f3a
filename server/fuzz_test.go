package server

import (
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
)

// FuzzCommands runs arbitrary arguments through every command, in RESP2
// and RESP3, subscribed or not, on a live connection: no input may panic
// the server. Commands are separated by '\n' and arguments by NUL; a
// one-byte command name picks one of the served commands.
func FuzzCommands(f *testing.F) {
	for _, seed := range []string{
		"subscribe\x00a\x00b\nunsubscribe", "psubscribe\x00*\npublish\x00a\x00b", "pubsub\x00numsub\x00a",
		"client\x00kill\x00id\x001", "client\x00kill\x00type\x00pubsub\x00skipme\x00no", "hello\x003\x00auth\x00default\x00x",
		"multi\nsubscribe\x00a\nexec", "command\x00docs\x00pubsub|channels", "config\x00get\x00*", "info\x00everything",
		"select\x00-1", "client\x00reply\x00off\nping", "reset\nquit",
	} {
		for mode := range byte(4) {
			f.Add(mode, seed)
		}
	}
	names := slices.Sorted(maps.Keys(newCommandTable().cmds))
	f.Fuzz(func(t *testing.T, mode byte, script string) {
		srv := &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		srv.mu.Lock()
		srv.init()
		srv.mu.Unlock()
		defer srv.Close() // stops the loop and closes the broker
		client, pipe := net.Pipe()
		defer client.Close()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		c := newConn(srv, pipe)
		srv.mu.Lock()
		srv.conns[c.id] = c
		srv.mu.Unlock()
		writerDone := make(chan struct{})
		go func() { c.writeLoop(); close(writerDone) }()
		defer func() { c.kill(); <-writerDone }()
		ran := make(chan struct{})
		srv.loop.do(func() { // commands run on the loop only
			defer close(ran)
			if mode&1 == 1 {
				c.run([]string{"HELLO", "3"})
			}
			if mode&2 == 2 {
				c.run([]string{"SUBSCRIBE", "a"})
			}
			for _, line := range strings.Split(script, "\n") {
				args := strings.Split(line, "\x00")
				if len(args[0]) == 1 {
					args[0] = names[int(args[0][0])%len(names)]
				}
				if args[0] == "" {
					continue
				}
				if c.run(args) {
					return
				}
			}
		})
		<-ran
	})
}
