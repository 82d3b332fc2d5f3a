package server

import (
	"slices"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// aclLog is ACL LOG's list: the denials (a failed AUTH, a command or a
// channel refused), newest first, grouped as Redis groups them. The loop
// owns it: denials happen and ACL LOG runs there.
type aclLog struct {
	entries []*aclLogEntry
}

type aclLogEntry struct {
	count    int64
	reason   string // "auth", "command" or "channel"
	context  string // "toplevel" or "multi"
	object   string // the command (as written, for an auth denial) or the channel
	username string
	at       time.Time // of the last event it counts
	client   string    // CLIENT LIST's line of the last client
}

// aclLogGroupWithin is how close in time an event must come to an entry
// to be counted in it (Redis's ACL_LOG_GROUPING_MAX_TIME_DELTA), and
// aclLogScan how many of the newest entries are looked at.
const (
	aclLogGroupWithin = 60 * time.Second
	aclLogScan        = 10
)

// add records a denial as Redis's addACLLogEntry does: an entry among the
// ten newest with the same reason, context, object and user, within a
// minute, is counted again and moved to the head; else a new one is put
// there, and the oldest dropped past maxLen.
func (l *aclLog) add(e aclLogEntry, maxLen int) {
	for i, old := range l.entries[:min(len(l.entries), aclLogScan)] {
		if old.reason == e.reason && old.context == e.context && old.object == e.object &&
			old.username == e.username && e.at.Sub(old.at) < aclLogGroupWithin {
			old.count++
			old.at, old.client = e.at, e.client
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = old
			return
		}
	}
	e.count = 1
	entry := new(aclLogEntry) // e itself stays on the stack: most events count in an entry
	*entry = e
	l.entries = slices.Insert(l.entries, 0, entry)
	if maxLen >= 0 && len(l.entries) > maxLen {
		clear(l.entries[maxLen:])
		l.entries = l.entries[:maxLen]
	}
}

func cmdACLLog(c *conn, w *resp.Writer, args []string) {
	count := int64(10)
	switch {
	case len(args) > 3:
		subcommandSyntaxError(w, "ACL", args[1])
		return
	case len(args) == 3 && lower(args[2]) == "reset":
		c.srv.aclLog.entries = nil
		w.Simple("OK")
		return
	case len(args) == 3:
		n, ok := resp.ParseInt(args[2])
		if !ok {
			w.Error("ERR value is not an integer or out of range")
			return
		}
		count = max(n, 0)
	}
	l := &c.srv.aclLog
	entries := l.entries[:min(int64(len(l.entries)), count)]
	now := time.Now()
	w.Array(len(entries))
	for _, e := range entries {
		w.Map(7)
		w.Bulk("count")
		w.Int(e.count)
		w.Bulk("reason")
		w.Bulk(e.reason)
		w.Bulk("context")
		w.Bulk(e.context)
		w.Bulk("object")
		w.Bulk(e.object)
		w.Bulk("username")
		w.Bulk(e.username)
		w.Bulk("age-seconds")
		w.Double(float64(now.Sub(e.at).Milliseconds()) / 1000)
		w.Bulk("client-info")
		w.Bulk(e.client)
	}
}
