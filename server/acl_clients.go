package server

import (
	"time"
)

// What the ACL users mean for a connection: who it runs as, whether it
// must authenticate, what it may run, and its end when its user goes or
// loses its channels. All of it runs in the loop.

// startAs makes def (the default user) the client's user, authenticated
// if def needs no password, as Redis's createClient.
func (c *conn) startAs(def *aclUser) {
	c.runAs(def, def.flags&userNopass != 0 && def.flags&userOff == 0)
}

// runAs makes u the client's user; c.mu must not be held.
func (c *conn) runAs(u *aclUser, authenticated bool) {
	c.user, c.authenticated = u, authenticated
	c.mu.Lock()
	c.userLabel = u.name
	c.mu.Unlock()
}

// authRequired is Redis's authRequired: the default user has a password
// or is off, and the client has not authenticated since.
func (c *conn) authRequired() bool {
	def := c.srv.acl.def
	return (def.flags&userNopass == 0 || def.flags&userOff != 0) && !c.authenticated
}

// userName is the client's user's name, as CLIENT LIST shows it.
func (c *conn) userName() string {
	if c.user == nil {
		return "default"
	}
	return c.user.name
}

// authenticate checks a user name and password; on success the client
// runs as that user from its next command, on failure the attempt is
// logged for ACL LOG under the command's name as written (object).
func (c *conn) authenticate(object, name, pass string, argv int) bool {
	u := c.srv.acl.credentials(name, pass)
	if u == nil {
		c.logDenial("auth", object, name, argv)
		return false
	}
	c.runAs(u, true)
	return true
}

// logDenial adds an entry to ACL LOG for the client: reason is "auth",
// "command" or "channel"; the context is "multi" while a transaction is
// queued or run, as Redis's CLIENT_MULTI.
func (c *conn) logDenial(reason, object, user string, argv int) {
	context := "toplevel"
	if c.multi != nil || c.inExec {
		context = "multi"
	}
	c.srv.aclLog.add(aclLogEntry{reason: reason, context: context, object: object, username: user,
		at: time.Now(), client: c.infoLine(argv)}, c.srv.limits.Load().aclLogMaxLen)
}

// permitted checks the client's user may run cmd with args, as Redis's
// processCommand does before it runs or queues a command, and inside EXEC
// again. It returns Redis's error, or "" to go on, having logged a
// denial.
func (c *conn) permitted(cmd *command, args []string) string {
	u := c.user
	if u == nil {
		return ""
	}
	ac := cmd.acl
	if ac == nil {
		ac = aclTable().byName[cmd.name]
	}
	var denial aclDenial
	var idx int
	if ac != nil {
		denial, idx = u.check(ac, cmd.noAuth, args)
	} else if !u.allowsUnknownCommands() {
		// Not in Redis 7.0's table (CLIENT SETINFO, of 7.2): no rule can
		// name it, so it runs for a user whose rules start from +@all, as
		// a module's command loaded later does in Redis.
		denial, ac = aclDeniedCommand, &aclCommand{name: cmd.name}
	}
	if denial == aclOK {
		return ""
	}
	reason, object := "command", ac.name
	if denial == aclDeniedChannel {
		reason, object = "channel", args[idx]
	}
	c.logDenial(reason, object, u.name, argvMem(args))
	switch {
	case c.inExec && denial == aclDeniedChannel:
		return "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to access one of the channels used as arguments"
	case c.inExec:
		return "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand"
	case denial == aclDeniedChannel:
		return "NOPERM this user has no permissions to access one of the channels used as arguments"
	}
	return "NOPERM this user has no permissions to run the '" + ac.name + "' command"
}

// dropClientsOf ends the clients running as u, as Redis does when u is
// deleted: the one running the command gets its reply first.
func (c *conn) dropClientsOf(users map[*aclUser]bool) {
	for _, o := range c.srv.connections() {
		if !users[o.user] {
			continue
		}
		o.runAs(c.srv.acl.def, false)
		if o == c {
			c.endedBecause(Killed)
			c.quit = true
		} else {
			o.drop()
		}
	}
}

// dropRevokedSubscribers ends the subscribed clients of u holding a
// channel, pattern or shard channel that u's new rules (now) no longer
// allow, as Redis's ACLKillPubsubClientsIfNeeded.
func (c *conn) dropRevokedSubscribers(u, now *aclUser) {
	if now.allowsAllChannels() {
		return
	}
	allowed := now.channelList()
	for _, o := range c.srv.connections() {
		if o.user != u {
			continue
		}
		o.mu.Lock()
		sub, subscribed := o.sub, o.subscribedLocked()
		o.mu.Unlock()
		if !subscribed || sub == nil {
			continue
		}
		channels, patterns, shardChannels := sub.Subscribed()
		revoked := false
		for _, p := range patterns {
			revoked = revoked || !channelAllowed(allowed, p, true)
		}
		for _, ch := range append(channels, shardChannels...) {
			revoked = revoked || !channelAllowed(allowed, ch, false)
		}
		if !revoked {
			continue
		}
		if o == c {
			c.endedBecause(Killed)
			c.quit = true
		} else {
			o.drop()
		}
	}
}
