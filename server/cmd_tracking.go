package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// Client-side caching (CLIENT TRACKING and its kin). This server holds no
// keys, so no key is ever invalidated; but clients such as rueidis and
// valkey-go turn tracking on when they connect and give up if they cannot,
// and FLUSHALL and FLUSHDB invalidate everything, which Redis announces to
// every tracking client even on an empty server. The state below is kept
// to answer exactly as Redis 7.0 does.

// tracking is a client's CLIENT TRACKING state, guarded by its conn's mu.
type tracking struct {
	on          bool
	bcast       bool
	optin       bool
	optout      bool
	noloop      bool
	brokenRedir bool     // the client redirected to is gone
	redirect    int64    // the client id invalidations go to; 0: this client
	prefixes    []string // sorted
}

func cmdClientTracking(c *conn, w *resp.Writer, args []string) {
	var next tracking
	var redirect int64
	for j := 3; j < len(args); j++ {
		more := j < len(args)-1
		switch opt := lower(args[j]); {
		case opt == "redirect" && more:
			j++
			if redirect != 0 {
				w.Error("ERR A client can only redirect to a single other client")
				return
			}
			id, ok := resp.ParseInt(args[j])
			if !ok {
				w.Error("ERR value is not an integer or out of range")
				return
			}
			if c.srv.connByID(id) == nil {
				w.Error("ERR The client ID you want redirect to does not exist")
				return
			}
			redirect = id
		case opt == "bcast":
			next.bcast = true
		case opt == "optin":
			next.optin = true
		case opt == "optout":
			next.optout = true
		case opt == "noloop":
			next.noloop = true
		case opt == "prefix" && more:
			j++
			next.prefixes = append(next.prefixes, strings.Clone(args[j])) // kept: not a view of the command's buffer
		default:
			w.Error("ERR syntax error")
			return
		}
	}
	switch lower(args[2]) {
	case "on":
		c.mu.Lock()
		err, refused := c.track.enable(next, redirect)
		c.mu.Unlock()
		if err != "" {
			w.Error(err)
		}
		if refused {
			return
		}
	case "off":
		c.mu.Lock()
		c.track = tracking{}
		c.mu.Unlock()
		c.caching = false
	default:
		w.Error("ERR syntax error")
		return
	}
	w.Simple("OK")
}

// enable turns tracking on with the options of next, checked as Redis
// checks them against each other and against the state t is in. It
// returns the error to reply, if any, and whether the command is refused
// (see checkPrefixes for the one error that is not).
func (t *tracking) enable(next tracking, redirect int64) (err string, refused bool) {
	switch {
	case !next.bcast && len(next.prefixes) > 0:
		return "ERR PREFIX option requires BCAST mode to be enabled", true
	case t.on && t.bcast != next.bcast:
		return "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.", true
	case next.bcast && (next.optin || next.optout):
		return "ERR OPTIN and OPTOUT are not compatible with BCAST", true
	case next.optin && next.optout:
		return "ERR You can't specify both OPTIN mode and OPTOUT mode", true
	case next.optin && t.optout || next.optout && t.optin:
		return "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.", true
	}
	if next.bcast {
		if err, refused = t.checkPrefixes(next.prefixes); refused {
			return err, true
		}
	}
	// As Redis's enableTracking: the mode flags are replaced (the caching
	// flag, conn.caching, is not), the redirection too, and the prefixes added to those
	// the client has, "" (every key) when BCAST names none.
	t.on, t.redirect, t.brokenRedir = true, redirect, false
	t.bcast, t.optin, t.optout, t.noloop = next.bcast, next.optin, next.optout, next.noloop
	if next.bcast && len(next.prefixes) == 0 {
		next.prefixes = []string{""}
	}
	// Sorted and each once, as Redis's radix tree of them lists them.
	t.prefixes = append(t.prefixes, next.prefixes...)
	slices.Sort(t.prefixes)
	t.prefixes = slices.Compact(t.prefixes)
	return err, false
}

// checkPrefixes reports, as Redis 7.0 does, a new prefix that overlaps
// (is a prefix of, or has as a prefix) one the client has, or another new
// one. Redis's check of the new prefixes against each other stops at the
// first overlapping pair and refuses the command only when that pair starts
// at the first prefix given; for a later pair it replies the error and
// then enables tracking all the same, replying OK too. That is kept, two
// replies and all.
func (t *tracking) checkPrefixes(prefixes []string) (err string, refused bool) {
	overlap := func(a, b string) bool {
		n := min(len(a), len(b))
		return a[:n] == b[:n]
	}
	for i, p := range prefixes {
		for _, q := range t.prefixes {
			if overlap(q, p) {
				return sanitize(fmt.Sprintf("ERR Prefix '%s' overlaps with an existing prefix '%s'. Prefixes for a single client must not overlap.", p, q)), true
			}
		}
		for _, q := range prefixes[i+1:] {
			if overlap(p, q) {
				return sanitize(fmt.Sprintf("ERR Prefix '%s' overlaps with another provided prefix '%s'. Prefixes for a single client must not overlap.", p, q)), i == 0
			}
		}
	}
	return "", false
}

func cmdClientCaching(c *conn, w *resp.Writer, args []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.track
	if !t.on {
		w.Error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
		return
	}
	switch lower(args[2]) {
	case "yes":
		if !t.optin {
			w.Error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
			return
		}
	case "no":
		if !t.optout {
			w.Error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
			return
		}
	default:
		w.Error("ERR syntax error")
		return
	}
	c.caching = true
	w.Simple("OK")
}

func cmdClientGetredir(c *conn, w *resp.Writer, _ []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.track.on {
		w.Int(-1)
		return
	}
	w.Int(c.track.redirect)
}

func cmdClientTrackinginfo(c *conn, w *resp.Writer, _ []string) {
	c.mu.Lock()
	t := c.track
	t.prefixes = append([]string(nil), t.prefixes...)
	c.mu.Unlock()
	w.Map(3)
	w.Bulk("flags")
	flags := t.flags(c.caching)
	w.Set(len(flags))
	for _, f := range flags {
		w.Bulk(f)
	}
	w.Bulk("redirect")
	if t.on {
		w.Int(t.redirect)
	} else {
		w.Int(-1)
	}
	w.Bulk("prefixes")
	w.Array(len(t.prefixes))
	for _, p := range t.prefixes {
		w.Bulk(p)
	}
}

// flags are CLIENT TRACKINGINFO's, in Redis's order; caching is whether
// CLIENT CACHING was sent for the next command.
func (t *tracking) flags(caching bool) []string {
	if !t.on {
		return []string{"off"}
	}
	flags := []string{"on"}
	add := func(set bool, name string) {
		if set {
			flags = append(flags, name)
		}
	}
	add(t.bcast, "bcast")
	add(t.optin, "optin")
	add(t.optin && caching, "caching-yes")
	add(t.optout, "optout")
	add(t.optout && caching, "caching-no")
	add(t.noloop, "noloop")
	add(t.brokenRedir, "broken_redirect")
	return flags
}

// listFlags are the tracking letters of CLIENT LIST's flags field.
func (t *tracking) listFlags() string {
	var b strings.Builder
	if t.on {
		b.WriteByte('t')
	}
	if t.brokenRedir {
		b.WriteByte('R')
	}
	if t.bcast {
		b.WriteByte('B')
	}
	return b.String()
}

// cmdFlush is FLUSHALL and FLUSHDB: there are no keys to remove, but every
// tracking client is told that everything is invalidated, as Redis tells
// it on any flush.
func cmdFlush(c *conn, w *resp.Writer, args []string) {
	if len(args) > 2 || len(args) == 2 && lower(args[1]) != "sync" && lower(args[1]) != "async" {
		w.Error("ERR syntax error")
		return
	}
	for _, o := range c.srv.connections() {
		if o != c {
			o.invalidateAll()
		}
	}
	w.Simple("OK")
	c.invalidateAfterReply = true // Redis sends the caller's own after its reply
}

// invalidateAll sends c's "everything is invalidated" message if it tracks,
// as Redis's sendTrackingMessage: to c itself in RESP3, or to the client
// it redirects to, in RESP3 or, in RESP2, as a message of the
// __redis__:invalidate channel to a subscribed client. The null stands in
// c's own protocol, as Redis writes it.
func (c *conn) invalidateAll() {
	c.mu.Lock()
	t := c.track
	null := "$-1\r\n"
	if c.proto == 3 {
		null = "_\r\n"
	}
	if !t.on {
		c.mu.Unlock()
		return
	}
	if t.redirect == 0 {
		if c.proto == 3 {
			c.queueLocked([]byte(">2\r\n$10\r\ninvalidate\r\n" + null))
		}
		c.mu.Unlock()
		return
	}
	target := c.srv.connByID(t.redirect)
	if target == nil {
		c.track.brokenRedir = true
		if c.proto == 3 {
			c.queueLocked([]byte(fmt.Sprintf(">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n", t.redirect)))
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	target.mu.Lock()
	defer target.mu.Unlock()
	switch {
	case target.proto == 3:
		target.queueLocked([]byte(">2\r\n$10\r\ninvalidate\r\n" + null))
	case target.subscribedLocked():
		target.queueLocked([]byte("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + null))
	}
}
