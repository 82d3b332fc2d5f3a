package server

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// CLIENT PAUSE holds back commands as Redis 7.0 does: with ALL, every
// command of every client, the pausing one's too, until the pause ends
// (CLIENT UNPAUSE is a command like any other then); with WRITE, only
// the commands Redis would replicate (PUBLISH, SPUBLISH, FLUSHALL, ...,
// and an EXEC that queued one). A held command runs once the pause ends,
// in its client's order. Go code publishing to the Broker is not held.

// pause is one pause in force; a later CLIENT PAUSE replaces it with one
// as strict and as long as both.
type pause struct {
	all   bool
	until time.Time
	ended chan struct{} // closed when this pause ends or is replaced
	timer *time.Timer
}

type pauses struct {
	mu      sync.Mutex // held to start or end a pause
	current atomic.Pointer[pause]
}

// start begins a pause, or extends the one in force.
func (p *pauses) start(all bool, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := &pause{all: all, until: until, ended: make(chan struct{})}
	if old := p.current.Load(); old != nil {
		next.all = next.all || old.all
		if old.until.After(next.until) {
			next.until = old.until
		}
		old.timer.Stop()
		close(old.ended)
	}
	next.timer = time.AfterFunc(time.Until(next.until), func() { p.end(next) })
	p.current.Store(next)
}

// end ends the pause in force if it is want, or any pause if want is nil.
func (p *pauses) end(want *pause) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.current.Load()
	if cur == nil || (want != nil && cur != want) {
		return
	}
	cur.timer.Stop()
	close(cur.ended)
	p.current.Store(nil)
}

// heldBy reports whether pause p holds back cmd, sent by client c.
func (c *conn) heldBy(p *pause, cmd *command) bool {
	if p.all || cmd.writes {
		return true
	}
	if cmd.name != "exec" || c.multi == nil {
		return false
	}
	for _, args := range c.multi.queued {
		if queued, _ := c.srv.table().lookup(args); queued != nil && queued.writes {
			return true
		}
	}
	return false
}

// heldByPause reports whether a pause in force holds cmd back; if so,
// the client is parked with its command, which runs once the pause ends
// (or is held again by the next), and its later commands wait behind it.
func (c *conn) heldByPause(cmd *command, args []string) bool {
	p := c.srv.pauses.current.Load()
	if p == nil || !c.heldBy(p, cmd) {
		return false
	}
	args = slices.Clone(args) // the strings are the command's own; the slice is reused
	c.blocked.Store(blockedForever)
	l := c.srv.loop
	l.park(c, func() bool {
		defer c.blocked.Store(notBlocked)
		select {
		case <-p.ended:
			return true
		case <-c.done:
			return false
		}
	}, func() { l.runHeld(c, args) })
	return true
}

func cmdClientPause(c *conn, w *resp.Writer, args []string) {
	if len(args) > 4 {
		subcommandSyntaxError(w, "CLIENT", args[1])
		return
	}
	ms, ok := parseTimeout(w, args[2])
	if !ok {
		return
	}
	// As in Redis, a timeout past int64's milliseconds wraps into the
	// past: the pause is over at once.
	end := time.Now().UnixMilli() + ms
	all := true
	if len(args) == 4 {
		switch strings.ToLower(args[3]) {
		case "all":
		case "write":
			all = false
		default:
			w.Error("ERR CLIENT PAUSE mode must be WRITE or ALL")
			return
		}
	}
	c.srv.pauses.start(all, time.UnixMilli(end))
	w.Simple("OK")
}

func cmdClientUnpause(c *conn, w *resp.Writer, _ []string) {
	c.srv.pauses.end(nil)
	w.Simple("OK")
}

// parseTimeout parses a timeout in milliseconds as Redis's
// getTimeoutFromObjectOrReply does, or writes its error.
func parseTimeout(w *resp.Writer, arg string) (int64, bool) {
	ms, ok := resp.ParseInt(arg)
	switch {
	case !ok:
		w.Error("ERR timeout is not an integer or out of range")
		return 0, false
	case ms < 0:
		w.Error("ERR timeout is negative")
		return 0, false
	}
	return ms, true
}
