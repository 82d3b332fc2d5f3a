package server

import (
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// The transaction commands. Queued commands run at EXEC; the (un)subscribe
// commands among them queue their confirmations themselves, as they do
// outside a transaction.

func multiCommands() []*command {
	const g = "transactions"
	return []*command{
		{name: "multi", arity: 1, noQueue: true, run: cmdMulti, group: g, since: "1.2.0",
			summary: "Start queuing commands for EXEC."},
		{name: "exec", arity: 1, noQueue: true, run: cmdExec, group: g, since: "1.2.0",
			summary: "Run the queued commands."},
		{name: "discard", arity: 1, noQueue: true, run: cmdDiscard, group: g, since: "2.0.0",
			summary: "Drop the queued commands."},
	}
}

func cmdMulti(c *conn, w *resp.Writer, _ []string) {
	if c.multi != nil {
		w.Error("ERR MULTI calls can not be nested")
		return
	}
	c.setMulti(&multiState{})
	w.Simple("OK")
}

func cmdDiscard(c *conn, w *resp.Writer, _ []string) {
	if c.multi == nil {
		w.Error("ERR DISCARD without MULTI")
		return
	}
	c.setMulti(nil)
	w.Simple("OK")
}

func cmdExec(c *conn, w *resp.Writer, _ []string) {
	if c.multi == nil {
		w.Error("ERR EXEC without MULTI")
		return
	}
	m := c.multi
	c.setMulti(nil)
	if m.failed {
		w.Error("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	// Each queued command's reply is queued as soon as it is made, after
	// the array header: the subscribe commands queue theirs themselves.
	w.Array(len(m.queued))
	c.flushReply(w)
	w.Buf = w.Buf[:0]
	c.inExec = true
	defer func() { c.inExec = false }()
	for _, args := range m.queued {
		c.dispatch(w, args)
		c.flushReply(w)
		w.Buf = w.Buf[:0]
		if c.quit {
			return
		}
	}
}
