package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// ACL users, as redis-server 7.0.15 keeps them: each user has flags,
// password hashes and selectors (the root one, then any added in
// parentheses); a selector says which commands may run (a bitmap over
// Redis's command table, as Redis's), which channels may be published or
// subscribed to, and which key patterns were given (kept and reported;
// no command here touches a key). The rules are applied and described as
// acl.c does, so ACL LIST and GETUSER read as Redis's.
//
// All of it is owned by the loop: commands read and change it there, and
// the Server builds it before the loop starts.

// aclUserFlag is a user's flag, in the order ACL LIST shows them.
type aclUserFlag uint8

const (
	userOn aclUserFlag = 1 << iota
	userOff
	userNopass
	userSkipSanitize
	userSanitize
)

var aclUserFlagNames = []struct {
	flag aclUserFlag
	name string
}{
	{userOn, "on"}, {userOff, "off"}, {userNopass, "nopass"},
	{userSkipSanitize, "skip-sanitize-payload"}, {userSanitize, "sanitize-payload"},
}

// aclSelectorFlag is a selector's flag.
type aclSelectorFlag uint8

const (
	selectorRoot aclSelectorFlag = 1 << iota
	selectorAllKeys
	selectorAllChannels
	selectorAllCommands
)

// Key permissions of a key pattern: %R~, %W~, or both (~).
const (
	keyRead  = 1
	keyWrite = 2
	keyAll   = keyRead | keyWrite
)

// commandBits is a selector's bitmap of allowed commands, by aclCommand id.
// The last bit stands for commands not in the table (Redis's modules to
// come): only +@all sets it, so that a description knows to start from
// +@all.
type commandBits [16]uint64

const futureCommandsBit = len(commandBits{})*64 - 1

func (b *commandBits) get(id int) bool { return b[id/64]&(1<<(id%64)) != 0 }

func (b *commandBits) set(id int, on bool) {
	if on {
		b[id/64] |= 1 << (id % 64)
	} else {
		b[id/64] &^= 1 << (id % 64)
	}
}

type keyPattern struct {
	perm    uint8
	pattern string
}

type aclSelector struct {
	flags   aclSelectorFlag
	allowed commandBits
	// firstArgs are the first arguments allowed for a command whose bit
	// is off (+select|0), by command id; nil when there are none.
	firstArgs map[int][]string
	keys      []keyPattern
	channels  []pubsub.Pattern // compiled once: a publish checks them
	// keyIndex and channelIndex find a pattern in keys and channels once
	// they are long (see listIndex); nil until then, and after a reset.
	keyIndex, channelIndex listIndex
}

type aclUser struct {
	name          string
	flags         aclUserFlag
	passwords     []string // SHA-256 in lower-case hex, in the order added
	passwordIndex listIndex
	selectors     []*aclSelector
}

// listIndex finds a string in a rule list without scanning it, once the
// list is long: a rule is checked against the ones before it (no
// duplicate password, key or channel pattern), which makes an ACL SETUSER
// of n rules take time n², as Redis's does, without it. It maps each
// string to its place in the list; it is made when first needed, and
// dropped (nil) when the list loses an element.
type listIndex map[string]int

// listIndexFrom is the length past which a list is indexed.
const listIndexFrom = 32

// find returns the place of v in a list of n strings, at(i) each, or -1.
func (x *listIndex) find(n int, at func(int) string, v string) int {
	if n <= listIndexFrom {
		for i := 0; i < n; i++ {
			if at(i) == v {
				return i
			}
		}
		return -1
	}
	if *x == nil {
		*x = make(listIndex, n)
		for i := n - 1; i >= 0; i-- { // the first of equals wins
			(*x)[at(i)] = i
		}
	}
	if i, ok := (*x)[v]; ok {
		return i
	}
	return -1
}

// added records v appended at place i, if the list is indexed.
func (x listIndex) added(v string, i int) {
	if x != nil {
		x[v] = i
	}
}

func (s *aclSelector) clone() *aclSelector {
	d := *s
	d.keys = slices.Clone(s.keys)
	d.channels = slices.Clone(s.channels)
	d.keyIndex, d.channelIndex = nil, nil
	d.firstArgs = nil
	for id, args := range s.firstArgs {
		if d.firstArgs == nil {
			d.firstArgs = make(map[int][]string, len(s.firstArgs))
		}
		d.firstArgs[id] = slices.Clone(args)
	}
	return &d
}

// copyFrom gives u src's rules; u keeps its name.
func (u *aclUser) copyFrom(src *aclUser) {
	u.flags = src.flags
	u.passwords = slices.Clone(src.passwords)
	u.passwordIndex = nil
	u.selectors = make([]*aclSelector, len(src.selectors))
	for i, s := range src.selectors {
		u.selectors[i] = s.clone()
	}
}

func (u *aclUser) root() *aclSelector { return u.selectors[0] }

func (u *aclUser) password(i int) string         { return u.passwords[i] }
func (s *aclSelector) keyPatternAt(i int) string { return s.keys[i].pattern }
func (s *aclSelector) channelAt(i int) string    { return s.channels[i].String() }

// aclCommand is one of redis-server's commands or subcommands, as ACL
// rules name them.
type aclCommand struct {
	id         int
	name       string // "config|get"
	parent     *aclCommand
	subs       []*aclCommand // sorted by name
	categories uint32        // bit i: aclCategories[i]
}

type aclCommandTable struct {
	byName map[string]*aclCommand
	top    []*aclCommand // sorted by name
}

var aclTable = sync.OnceValue(func() *aclCommandTable {
	t := &aclCommandTable{byName: make(map[string]*aclCommand, len(redisArities))}
	names := make([]string, 0, len(redisArities))
	for name := range redisArities {
		names = append(names, name)
	}
	sort.Strings(names) // a parent before its subcommands
	for i, name := range names {
		cmd := &aclCommand{id: i, name: name}
		if top, _, ok := strings.Cut(name, "|"); ok {
			cmd.parent = t.byName[top]
			cmd.parent.subs = append(cmd.parent.subs, cmd)
		} else {
			t.top = append(t.top, cmd)
		}
		t.byName[name] = cmd
	}
	if len(names) >= futureCommandsBit {
		panic("server: commandBits too small for redis-server's command table")
	}
	for i, cat := range aclCategories {
		for _, name := range cat.commands {
			t.byName[name].categories |= 1 << i
		}
	}
	return t
})

// lookup finds a command as ACL rules name it, "name" or "name|sub",
// ignoring case, as Redis's ACLLookupCommand: nil if Redis has none.
func (t *aclCommandTable) lookup(name string) *aclCommand {
	top, sub, hasSub := strings.Cut(name, "|")
	if hasSub && strings.Contains(sub, "|") {
		return nil
	}
	cmd := t.byName[lower(top)]
	if cmd == nil || !hasSub {
		return cmd
	}
	if cmd.subs == nil {
		return nil // "get|x": no such subcommand
	}
	return t.byName[cmd.name+"|"+lower(sub)]
}

// aclCategoryIndex returns the index of a category in aclCategories, or -1.
func aclCategoryIndex(name string) int {
	for i, cat := range aclCategories {
		if strings.EqualFold(cat.name, name) {
			return i
		}
	}
	return -1
}

// aclRuleError is why a rule was refused: its text is Redis's.
type aclRuleError string

const (
	errRuleSyntax         aclRuleError = "Syntax error"
	errRuleUnknownCommand aclRuleError = "Unknown command or category name in ACL"
	errRuleKeyAfterAll    aclRuleError = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	errRuleChanAfterAll   aclRuleError = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	errRuleNoSuchPassword aclRuleError = "The password you are trying to remove from the user does not exist"
	errRuleBadHash        aclRuleError = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	errRuleDuplicateUser  aclRuleError = "Duplicate user found. A user can only be defined once in config files"
	errRuleSubFirstArg    aclRuleError = "Allowing first-arg of a subcommand is not supported"
)

func (e aclRuleError) Error() string { return string(e) }

// aclState is the users and how new selectors start.
type aclState struct {
	users map[string]*aclUser
	def   *aclUser // "default": the same user for as long as the Server lives
	// allChannels is acl-pubsub-default: whether a new selector (and a
	// reset user) may use every channel.
	allChannels bool
}

func newACLState(password string, allChannels bool) *aclState {
	a := &aclState{users: map[string]*aclUser{}, allChannels: allChannels}
	a.def = a.newDefaultUser()
	a.users["default"] = a.def
	a.setDefaultPassword(password)
	return a
}

func (a *aclState) newSelector(flags aclSelectorFlag) *aclSelector {
	if a.allChannels {
		flags |= selectorAllChannels
	}
	return &aclSelector{flags: flags}
}

// newUser is a user as Redis creates one: off, no password, no commands.
func (a *aclState) newUser(name string) *aclUser {
	return &aclUser{name: name, flags: userOff, selectors: []*aclSelector{a.newSelector(selectorRoot)}}
}

func (a *aclState) newDefaultUser() *aclUser {
	u := a.newUser("default")
	for _, rule := range []string{"+@all", "~*", "&*", "on", "nopass"} {
		_ = a.setUser(u, rule)
	}
	return u
}

// setDefaultPassword is requirepass: the default user's only password,
// or nopass when empty.
func (a *aclState) setDefaultPassword(p string) {
	_ = a.setUser(a.def, "resetpass")
	if p == "" {
		_ = a.setUser(a.def, "nopass")
	} else {
		_ = a.setUser(a.def, ">"+p)
	}
}

// sortedUsers returns the users in the order Redis lists them (byte-wise
// by name).
func (a *aclState) sortedUsers() []*aclUser {
	users := make([]*aclUser, 0, len(a.users))
	for _, u := range a.users {
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool { return users[i].name < users[j].name })
	return users
}

func hashPassword(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

func validPasswordHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < 'a' || c > 'f') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// passwordHash is the hash a password rule names: of the password after
// plain (">pass", "<pass"), or given as is ("#hash", "!hash"), which must
// be a SHA-256 in lower-case hex.
func passwordHash(op string, plain byte) (string, error) {
	if op[0] == plain {
		return hashPassword(op[1:]), nil
	}
	if !validPasswordHash(op[1:]) {
		return "", errRuleBadHash
	}
	return op[1:], nil
}

// hasSpaces is Redis's ACLStringHasSpaces: user names, key and channel
// patterns may hold no white space and no NUL.
func hasSpaces(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0:
			return true
		}
	}
	return false
}

// setUser applies one rule to u, as Redis's ACLSetUser. On error u may be
// half changed: callers apply rules to a copy.
func (a *aclState) setUser(u *aclUser, op string) error {
	switch {
	case op == "":
		return nil
	case strings.EqualFold(op, "on"):
		u.flags = u.flags&^userOff | userOn
	case strings.EqualFold(op, "off"):
		u.flags = u.flags&^userOn | userOff
	case strings.EqualFold(op, "skip-sanitize-payload"):
		u.flags = u.flags&^userSanitize | userSkipSanitize
	case strings.EqualFold(op, "sanitize-payload"):
		u.flags = u.flags&^userSkipSanitize | userSanitize
	case strings.EqualFold(op, "nopass"):
		u.flags |= userNopass
		u.passwords, u.passwordIndex = nil, nil
	case strings.EqualFold(op, "resetpass"):
		u.flags &^= userNopass
		u.passwords, u.passwordIndex = nil, nil
	case op[0] == '>' || op[0] == '#':
		h, err := passwordHash(op, '>')
		if err != nil {
			return err
		}
		if u.passwordIndex.find(len(u.passwords), u.password, h) < 0 {
			u.passwordIndex.added(h, len(u.passwords))
			u.passwords = append(u.passwords, h)
		}
		u.flags &^= userNopass
	case op[0] == '<' || op[0] == '!':
		h, err := passwordHash(op, '<')
		if err != nil {
			return err
		}
		i := u.passwordIndex.find(len(u.passwords), u.password, h)
		if i < 0 {
			return errRuleNoSuchPassword
		}
		u.passwords = slices.Delete(u.passwords, i, i+1)
		u.passwordIndex = nil
	case op[0] == '(' && op[len(op)-1] == ')':
		s, err := a.selectorFromOps(op)
		if err != nil {
			return err
		}
		u.selectors = append(u.selectors, s)
	case strings.EqualFold(op, "clearselectors"):
		u.selectors = u.selectors[:1]
	case strings.EqualFold(op, "reset"):
		for _, rule := range []string{"resetpass", "resetkeys", "resetchannels"} {
			_ = a.setUser(u, rule)
		}
		if a.allChannels {
			_ = a.setUser(u, "allchannels")
		}
		for _, rule := range []string{"off", "sanitize-payload", "clearselectors", "-@all"} {
			_ = a.setUser(u, rule)
		}
	default:
		return a.setSelector(u.root(), op)
	}
	return nil
}

// selectorFromOps makes a selector of "(rule rule ...)", split as Redis
// splits a configuration line (quotes allowed). As in Redis, unbalanced
// quotes leave a selector with no rules.
func (a *aclState) selectorFromOps(op string) (*aclSelector, error) {
	s := a.newSelector(0)
	rules, _ := resp.SplitArgs(op[1 : len(op)-1])
	for _, rule := range rules {
		if err := a.setSelector(s, rule); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// setSelector applies one rule to a selector, as Redis's ACLSetSelector.
func (a *aclState) setSelector(s *aclSelector, op string) error {
	t := aclTable()
	switch {
	case op == "": // only inside a selector: "('')"
		return errRuleSyntax
	case strings.EqualFold(op, "allkeys") || op == "~*":
		s.flags |= selectorAllKeys
		s.keys, s.keyIndex = nil, nil
	case strings.EqualFold(op, "resetkeys"):
		s.flags &^= selectorAllKeys
		s.keys, s.keyIndex = nil, nil
	case strings.EqualFold(op, "allchannels") || op == "&*":
		s.flags |= selectorAllChannels
		s.channels, s.channelIndex = nil, nil
	case strings.EqualFold(op, "resetchannels"):
		s.flags &^= selectorAllChannels
		s.channels, s.channelIndex = nil, nil
	case strings.EqualFold(op, "allcommands") || strings.EqualFold(op, "+@all"):
		for i := range s.allowed {
			s.allowed[i] = ^uint64(0)
		}
		s.flags |= selectorAllCommands
		s.firstArgs = nil
	case strings.EqualFold(op, "nocommands") || strings.EqualFold(op, "-@all"):
		s.allowed = commandBits{}
		s.flags &^= selectorAllCommands
		s.firstArgs = nil
	case op[0] == '~' || op[0] == '%':
		return s.addKeyPattern(op)
	case op[0] == '&':
		if s.flags&selectorAllChannels != 0 {
			return errRuleChanAfterAll
		}
		if hasSpaces(op[1:]) {
			return errRuleSyntax
		}
		if s.channelIndex.find(len(s.channels), s.channelAt, op[1:]) < 0 {
			s.channelIndex.added(op[1:], len(s.channels))
			s.channels = append(s.channels, pubsub.CompilePattern(op[1:]))
		}
		s.flags &^= selectorAllChannels
	case op[0] == '+' && !strings.HasPrefix(op, "+@"):
		i := strings.LastIndexByte(op, '|')
		if i < 0 {
			cmd := t.lookup(op[1:])
			if cmd == nil {
				return errRuleUnknownCommand
			}
			s.changePerm(cmd, true)
			return nil
		}
		cmd := t.lookup(op[1:i])
		switch {
		case cmd == nil:
			return errRuleUnknownCommand
		case cmd.parent != nil:
			return errRuleSubFirstArg
		case i == len(op)-1:
			return errRuleSyntax
		case cmd.subs != nil:
			sub := t.lookup(op[1:])
			if sub == nil {
				return errRuleUnknownCommand
			}
			s.changePerm(sub, true)
		default:
			s.addFirstArg(cmd.id, op[i+1:])
		}
	case op[0] == '-' && !strings.HasPrefix(op, "-@"):
		cmd := t.lookup(op[1:])
		if cmd == nil {
			return errRuleUnknownCommand
		}
		s.changePerm(cmd, false)
	case op[0] == '+' || op[0] == '-': // +@category, -@category
		cat := aclCategoryIndex(op[2:])
		if cat < 0 {
			return errRuleUnknownCommand
		}
		s.setCategory(cat, op[0] == '+')
	default:
		return errRuleSyntax
	}
	return nil
}

// addKeyPattern is ~pattern, %R~pattern, %W~pattern or %RW~pattern.
func (s *aclSelector) addKeyPattern(op string) error {
	if s.flags&selectorAllKeys != 0 {
		return errRuleKeyAfterAll
	}
	perm, offset := uint8(keyAll), 1
	if op[0] == '%' {
		perm = 0
		for ; offset < len(op); offset++ {
			c := op[offset]
			if (c == 'R' || c == 'r') && perm&keyRead == 0 {
				perm |= keyRead
			} else if (c == 'W' || c == 'w') && perm&keyWrite == 0 {
				perm |= keyWrite
			} else if c == '~' {
				offset++
				break
			} else {
				return errRuleSyntax
			}
		}
		if perm == 0 { // "%" or "%~": no permission named
			return errRuleSyntax
		}
	}
	pattern := op[offset:]
	if hasSpaces(pattern) {
		return errRuleSyntax
	}
	if i := s.keyIndex.find(len(s.keys), s.keyPatternAt, pattern); i >= 0 {
		s.keys[i].perm |= perm
	} else {
		s.keyIndex.added(pattern, len(s.keys))
		s.keys = append(s.keys, keyPattern{perm: perm, pattern: pattern})
	}
	s.flags &^= selectorAllKeys
	return nil
}

func (s *aclSelector) setBit(id int, on bool) {
	s.allowed.set(id, on)
	if !on {
		s.flags &^= selectorAllCommands
	}
}

// changePerm allows or denies a command, and with a container command
// every subcommand of it; its allowed first arguments go.
func (s *aclSelector) changePerm(cmd *aclCommand, allow bool) {
	s.setBit(cmd.id, allow)
	delete(s.firstArgs, cmd.id)
	for _, sub := range cmd.subs {
		s.setBit(sub.id, allow)
	}
}

// setCategory allows or denies every command in a category, as Redis
// walks its command table: a container command in the category takes its
// subcommands with it.
func (s *aclSelector) setCategory(cat int, allow bool) {
	for _, cmd := range aclTable().top {
		if cmd.categories&(1<<cat) != 0 {
			s.changePerm(cmd, allow)
		}
		for _, sub := range cmd.subs {
			if sub.categories&(1<<cat) != 0 {
				s.changePerm(sub, allow)
			}
		}
	}
}

func (s *aclSelector) addFirstArg(id int, arg string) {
	if s.firstArgs == nil {
		s.firstArgs = map[int][]string{}
	}
	if !slices.ContainsFunc(s.firstArgs[id], func(a string) bool { return strings.EqualFold(a, arg) }) {
		s.firstArgs[id] = append(s.firstArgs[id], arg)
	}
}

// countCategory returns how many commands of a category are allowed and
// denied.
func (s *aclSelector) countCategory(cat int) (on, off int) {
	count := func(c *aclCommand) {
		if c.categories&(1<<cat) == 0 {
			return
		}
		if s.allowed.get(c.id) {
			on++
		} else {
			off++
		}
	}
	for _, cmd := range aclTable().top {
		count(cmd)
		for _, sub := range cmd.subs {
			count(sub)
		}
	}
	return on, off
}

// describeCommands is Redis's ACLDescribeSelectorCommandRules: +@all or
// -@all, then the categories that best fit the bitmap, then single
// commands to make it exact. Redis emits the single commands in its
// command dictionary's order, which changes from one start to the next;
// here they are sorted by name.
func (s *aclSelector) describeCommands() string {
	var b strings.Builder
	fake := &aclSelector{}
	a := &aclState{}
	additive := !s.allowed.get(futureCommandsBit)
	if additive {
		b.WriteString("-@all ")
		_ = a.setSelector(fake, "-@all")
	} else {
		b.WriteString("+@all ")
		_ = a.setSelector(fake, "+@all")
	}
	temp := &aclSelector{allowed: s.allowed}
	applied := make([]bool, len(aclCategories))
	for {
		best, minDiff, maxSame := -1, int(^uint(0)>>1), 0
		for j := range aclCategories {
			if applied[j] {
				continue
			}
			on, off := temp.countCategory(j)
			diff, same := on, off
			if additive {
				diff, same = off, on
			}
			if same > diff && (diff < minDiff || (diff == minDiff && same > maxSame)) {
				best, minDiff, maxSame = j, diff, same
			}
		}
		if best < 0 {
			break
		}
		fake.setCategory(best, additive)
		temp.setCategory(best, !additive)
		if additive {
			b.WriteString("+@")
		} else {
			b.WriteString("-@")
		}
		b.WriteString(aclCategories[best].name)
		b.WriteByte(' ')
		applied[best] = true
	}
	var single func(cmds []*aclCommand)
	single = func(cmds []*aclCommand) {
		for _, cmd := range cmds {
			user := s.allowed.get(cmd.id)
			if user != fake.allowed.get(cmd.id) {
				if user {
					b.WriteByte('+')
				} else {
					b.WriteByte('-')
				}
				b.WriteString(cmd.name)
				b.WriteByte(' ')
				fake.changePerm(cmd, user)
			}
			single(cmd.subs)
			if !user {
				for _, arg := range s.firstArgs[cmd.id] {
					b.WriteString("+" + cmd.name + "|" + arg + " ")
				}
			}
		}
	}
	single(aclTable().top)
	out := b.String()
	return out[:len(out)-1]
}

// describe is a selector as ACL LIST shows it: keys, channels, commands.
func (s *aclSelector) describe() string {
	var b strings.Builder
	if s.flags&selectorAllKeys != 0 {
		b.WriteString("~* ")
	} else {
		for _, k := range s.keys {
			b.WriteString(k.String())
			b.WriteByte(' ')
		}
	}
	if s.flags&selectorAllChannels != 0 {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, ch := range s.channels {
			b.WriteString("&" + ch.String() + " ")
		}
	}
	b.WriteString(s.describeCommands())
	return b.String()
}

func (k keyPattern) String() string {
	switch k.perm {
	case keyRead:
		return "%R~" + k.pattern
	case keyWrite:
		return "%W~" + k.pattern
	default:
		return "~" + k.pattern
	}
}

// keysText and channelsText are a selector's keys and channels as GETUSER
// shows them.
func (s *aclSelector) keysText() string {
	if s.flags&selectorAllKeys != 0 {
		return "~*"
	}
	parts := make([]string, len(s.keys))
	for i, k := range s.keys {
		parts[i] = k.String()
	}
	return strings.Join(parts, " ")
}

func (s *aclSelector) channelsText() string {
	if s.flags&selectorAllChannels != 0 {
		return "&*"
	}
	parts := make([]string, len(s.channels))
	for i, ch := range s.channels {
		parts[i] = "&" + ch.String()
	}
	return strings.Join(parts, " ")
}

// describe is a user as ACL LIST and the ACL file show it, after its name.
func (u *aclUser) describe() string {
	var b strings.Builder
	for _, f := range aclUserFlagNames {
		if u.flags&f.flag != 0 {
			b.WriteString(f.name + " ")
		}
	}
	for _, p := range u.passwords {
		b.WriteString("#" + p + " ")
	}
	for i, s := range u.selectors {
		if i == 0 {
			b.WriteString(s.describe())
		} else {
			b.WriteString(" (" + s.describe() + ")")
		}
	}
	return b.String()
}

// mergeSelectorArgs joins a selector given over several arguments, "(+get"
// "~key)", into one, as Redis does. ok is false for a parenthesis left
// open, with bad the index of the argument that opened it.
func mergeSelectorArgs(args []string) (merged []string, bad int, ok bool) {
	open := -1
	var sel strings.Builder // not +=: a selector spread over many arguments stays linear
	for j, op := range args {
		if strings.HasPrefix(op, "(") && !strings.HasSuffix(op, ")") {
			sel.Reset() // as Redis: one opened before is dropped
			sel.WriteString(op)
			open = j
			continue
		}
		if open >= 0 {
			sel.WriteByte(' ')
			sel.WriteString(op)
			if strings.HasSuffix(op, ")") {
				merged = append(merged, sel.String())
				open = -1
			}
			continue
		}
		merged = append(merged, op)
	}
	if open >= 0 {
		return nil, open, false
	}
	return merged, 0, true
}

// Why a command was refused, in Redis's order of relevance.
type aclDenial int

const (
	aclOK aclDenial = iota
	aclDeniedCommand
	aclDeniedKey
	aclDeniedAuth
	aclDeniedChannel
)

// checkCommand is Redis's ACLSelectorCheckCmd for the commands here: the
// command's bit, or an allowed first argument; then the channels a
// publish or subscribe names (PSUBSCRIBE's patterns taken literally).
// It returns the index of the refused channel argument.
func (s *aclSelector) checkCommand(cmd *aclCommand, noAuth bool, args []string) (aclDenial, int) {
	if s.flags&selectorAllCommands == 0 && !noAuth && !s.allowed.get(cmd.id) {
		first := 1
		if cmd.parent != nil {
			first = 2
		}
		if len(args) <= first || !slices.ContainsFunc(s.firstArgs[cmd.id], func(a string) bool { return strings.EqualFold(a, args[first]) }) {
			return aclDeniedCommand, 0
		}
	}
	if s.flags&selectorAllChannels != 0 {
		return aclOK, 0
	}
	from, to, literal := 0, 0, false
	switch cmd.name {
	case "publish", "spublish":
		from, to = 1, 2
	case "subscribe", "ssubscribe":
		from, to = 1, len(args)
	case "psubscribe":
		from, to, literal = 1, len(args), true
	}
	for j := from; j < to; j++ {
		if !channelAllowed(s.channels, args[j], literal) {
			return aclDeniedChannel, j
		}
	}
	return aclOK, 0
}

// channelAllowed reports whether a channel (or, literal, a PSUBSCRIBE
// pattern, which must be one of the list as written) is in a selector's
// list.
func channelAllowed(list []pubsub.Pattern, channel string, literal bool) bool {
	for _, p := range list {
		if (literal && p.String() == channel) || (!literal && p.Match(channel)) {
			return true
		}
	}
	return false
}

// check is Redis's ACLCheckAllUserCommandPerm: allowed if any selector
// allows it; otherwise the most relevant refusal (a channel over a
// command; the last argument among equals).
func (u *aclUser) check(cmd *aclCommand, noAuth bool, args []string) (aclDenial, int) {
	worst, worstIdx := aclDeniedCommand, 0
	for _, s := range u.selectors {
		d, idx := s.checkCommand(cmd, noAuth, args)
		if d == aclOK {
			return aclOK, 0
		}
		if d > worst || (d == worst && idx > worstIdx) {
			worst, worstIdx = d, idx
		}
	}
	return worst, worstIdx
}

// allowsUnknownCommands reports whether some selector of u allows the
// commands no rule can name, as Redis allows a command loaded after the
// rules (a module's) to a user whose rules start from +@all.
func (u *aclUser) allowsUnknownCommands() bool {
	for _, s := range u.selectors {
		if s.allowed.get(futureCommandsBit) {
			return true
		}
	}
	return false
}

// allowsAllChannels reports whether some selector of u allows every channel.
func (u *aclUser) allowsAllChannels() bool {
	for _, s := range u.selectors {
		if s.flags&selectorAllChannels != 0 {
			return true
		}
	}
	return false
}

// channelList is every channel pattern of u's selectors.
func (u *aclUser) channelList() []pubsub.Pattern {
	var all []pubsub.Pattern
	for _, s := range u.selectors {
		all = append(all, s.channels...)
	}
	return all
}

// noPasswords is what credentials compares a password's hash with for a
// user that has none, or no user: a hash no password has.
var noPasswords = []string{strings.Repeat("0", 64)}

// credentials checks a user name and password as Redis's
// ACLCheckUserCredentials, doing the same work whether the user is
// unknown, disabled or the password wrong, so that no timing tells one
// from another: the password is hashed and compared, in constant time,
// with a hash either way.
func (a *aclState) credentials(name, pass string) *aclUser {
	sum := sha256.Sum256([]byte(pass))
	var hexSum [64]byte
	hex.Encode(hexSum[:], sum[:])
	u := a.users[name]
	hashes := noPasswords // compared with when u has none
	if u != nil && len(u.passwords) > 0 {
		hashes = u.passwords
	}
	match := 0
	for _, h := range hashes {
		match |= subtle.ConstantTimeCompare(hexSum[:], []byte(h))
	}
	switch {
	case u == nil || u.flags&userOff != 0:
		return nil
	case u.flags&userNopass != 0 || match == 1:
		return u
	}
	return nil
}
