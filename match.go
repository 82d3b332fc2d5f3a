package pubsub

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/gobwas/glob"
)

// This file owns Redis glob matching (PSUBSCRIBE, PUBSUB CHANNELS) and the
// pattern index. It is the only file that imports gobwas/glob.
//
// The specification is stringmatchlen in Redis 7.0's src/util.c, with
// nocase off. Its behaviour, including the odd corners, is reproduced here:
//
//   - Matching is byte by byte: '?' matches one byte, not one UTF-8 rune.
//   - An empty channel matches only the empty pattern. stringmatchlen loops
//     while both the pattern and the string are non-empty, so "*" does not
//     match "" (while KEYS * special-cases it).
//   - '\' escapes the next byte; a trailing '\' matches a literal '\'.
//   - '[' opens a class; '^' right after it negates. Inside, '\' escapes
//     when a byte follows it, "x-y" is a range (reversed ranges are
//     swapped), and the class ends at ']' or at the end of the pattern (an
//     unclosed class is not an error). "[]" matches nothing and "[^]"
//     matches any byte. A range may swallow ']' as its upper end, so
//     "[a-]x" is the class {']'..'a', 'x'}, still open.
//   - Range bounds are compared as C chars, which are signed on the
//     platforms Redis ships for: bytes >= 0x80 sort below 0x00.
//   - CVE-2024-31228: each '*' recurses one level deeper and Redis gives up
//     beyond 1000 levels. A match must recurse once for every '*' group
//     that is not at the very end of the pattern, so a pattern with more
//     than 1000 such groups never matches anything.
//
// Redis never rejects a pattern, so neither does compilePattern.

// maxStarNesting is Redis's recursion limit in stringmatchlen_impl.
const maxStarNesting = 1000

type tokenKind uint8

const (
	tokLiteral tokenKind = iota // one given byte
	tokAny                      // '?': any one byte
	tokClass                    // '[...]': one byte in set
	tokStar                     // '*': any run of bytes, possibly empty
)

// byteSet is a 256-bit set of bytes.
type byteSet [4]uint64

func (s *byteSet) add(c byte)      { s[c>>6] |= 1 << (c & 63) }
func (s *byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }
func (s *byteSet) invert()         { s[0], s[1], s[2], s[3] = ^s[0], ^s[1], ^s[2], ^s[3] }
func (s *byteSet) addRange(lo, hi int8) { // signed, as Redis compares them
	for c := int(lo); c <= int(hi); c++ {
		s.add(byte(int8(c)))
	}
}

// addRangeFold adds every byte c for which tolower(c) lies between
// tolower(lo) and tolower(hi), as Redis's nocase mode compares a range.
func (s *byteSet) addRangeFold(lo, hi int8) {
	flo, fhi := int8(lowerASCII(byte(lo))), int8(lowerASCII(byte(hi)))
	for c := range 256 {
		if fc := int8(lowerASCII(byte(c))); flo <= fc && fc <= fhi {
			s.add(byte(c))
		}
	}
}

type token struct {
	kind tokenKind
	lit  byte
	set  *byteSet
}

// tokenize splits a Redis pattern into tokens exactly as stringmatchlen
// walks it. Consecutive stars collapse into one, as Redis skips them.
func tokenize(p string) []token { return tokenizeCase(p, false) }

// tokenizeCase is tokenize with Redis's nocase mode as an option. Under
// nocase, stringmatchlen compares a literal byte, and a byte of a class, with
// tolower on both sides; so a letter becomes the class of its two cases.
// It swaps a range's bounds before lowering them, and compares a byte
// escaped inside a class case-sensitively: parseClass does the same.
func tokenizeCase(p string, nocase bool) []token {
	var toks []token
	for i := 0; i < len(p); {
		switch p[i] {
		case '*':
			if n := len(toks); n == 0 || toks[n-1].kind != tokStar {
				toks = append(toks, token{kind: tokStar})
			}
			i++
		case '?':
			toks = append(toks, token{kind: tokAny})
			i++
		case '[':
			var set *byteSet
			set, i = parseClass(p, i+1, nocase)
			toks = append(toks, token{kind: tokClass, set: set})
		case '\\':
			if i+1 < len(p) {
				toks = append(toks, literal(p[i+1], nocase))
				i += 2
			} else { // a trailing backslash is literal
				toks = append(toks, literal('\\', nocase))
				i++
			}
		default:
			toks = append(toks, literal(p[i], nocase))
			i++
		}
	}
	return toks
}

// literal is the token matching byte c; under nocase, a letter matches
// both its cases.
func literal(c byte, nocase bool) token {
	if nocase && lowerASCII(c) != upperASCII(c) {
		set := new(byteSet)
		set.add(lowerASCII(c))
		set.add(upperASCII(c))
		return token{kind: tokClass, set: set}
	}
	return token{kind: tokLiteral, lit: c}
}

// lowerASCII is C's tolower in the C locale, as Redis calls it.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// parseClass parses a class whose body starts at p[i] (just after '[') and
// returns its set and the index just past it.
func parseClass(p string, i int, nocase bool) (*byteSet, int) {
	set := new(byteSet)
	negate := i < len(p) && p[i] == '^'
	if negate {
		i++
	}
	for i < len(p) {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			set.add(p[i+1]) // case-sensitive even under nocase, as in Redis
			i += 2
		case p[i] == ']':
			i++
			if negate {
				set.invert()
			}
			return set, i
		case i+2 < len(p) && p[i+1] == '-':
			lo, hi := int8(p[i]), int8(p[i+2])
			if lo > hi {
				lo, hi = hi, lo
			}
			if nocase {
				set.addRangeFold(lo, hi)
			} else {
				set.addRange(lo, hi)
			}
			i += 3
		default:
			set.add(p[i])
			if nocase {
				set.add(lowerASCII(p[i]))
				set.add(upperASCII(p[i]))
			}
			i++
		}
	}
	// Unclosed: Redis ends the class at the end of the pattern.
	if negate {
		set.invert()
	}
	return set, i
}

// matcher is a compiled Redis pattern. Matching is safe for concurrent use.
type matcher struct {
	pattern string
	kind    matcherKind
	gl      *glob.Pattern // kind == matchGlob
	toks    []token       // kind == matchTokens
	minLen  int           // kind == matchTokens: non-star tokens
	hasStar bool          // kind == matchTokens
}

type matcherKind uint8

const (
	matchExact  matcherKind = iota // no special bytes: string equality
	matchGlob                      // only literals and '*': gobwas/glob
	matchTokens                    // anything else: our byte-wise matcher
	matchNever                     // over Redis's nesting limit
)

// Match reports whether name matches the Redis glob pattern, exactly as
// Redis's stringmatchlen decides for PSUBSCRIBE and PUBSUB CHANNELS; see
// the package doc for the syntax. It takes time proportional to
// len(pattern) × len(name) at most, whatever the pattern.
func Match(pattern, name string) bool {
	return compilePattern(pattern).match(name)
}

// MatchFold is [Match] in Redis's nocase mode, as CONFIG GET matches
// parameter names: ASCII letters match either case. As in Redis, a letter
// escaped inside a class, as in [\A], still matches its own case only.
func MatchFold(pattern, name string) bool {
	m := &matcher{pattern: pattern, kind: matchTokens, toks: tokenizeCase(pattern, true)}
	m.finishTokens()
	return m.match(name)
}

func compilePattern(p string) *matcher {
	m := &matcher{pattern: p}
	toks := tokenize(p)
	stars, literalOnly := 0, true
	for i, t := range toks {
		switch t.kind {
		case tokStar:
			if i != len(toks)-1 {
				stars++
			}
		case tokAny, tokClass:
			literalOnly = false
		}
	}
	switch {
	case stars > maxStarNesting:
		m.kind = matchNever
	case !strings.ContainsAny(p, `*?[\`):
		m.kind = matchExact
	case literalOnly:
		if gl := compileGlob(toks); gl != nil {
			m.kind, m.gl = matchGlob, gl
			return m
		}
		fallthrough
	default:
		m.kind, m.toks = matchTokens, toks
		m.finishTokens()
	}
	return m
}

// finishTokens sets what matchTokens needs besides the tokens: the length
// bounds, and Redis's nesting limit.
func (m *matcher) finishTokens() {
	stars := 0
	for i, t := range m.toks {
		if t.kind == tokStar {
			m.hasStar = true
			if i != len(m.toks)-1 {
				stars++
			}
		} else {
			m.minLen++
		}
	}
	if stars > maxStarNesting {
		m.kind = matchNever
	}
}

// compileGlob hands a pattern made only of literal bytes and stars to
// gobwas/glob, which is fastest on those shapes. gobwas reads its pattern as
// UTF-8 text, so a pattern whose literal runs are not valid UTF-8 cannot be
// expressed to it; nil means "use the byte-wise matcher". Every literal is
// quoted, so gobwas syntax Redis does not have ('{a,b}', '[!a]') never
// applies. FuzzMatch and the redis-server differential test check that the
// result is exact on arbitrary bytes.
func compileGlob(toks []token) *glob.Pattern {
	var b, run strings.Builder
	flush := func() bool {
		if !utf8.ValidString(run.String()) {
			return false
		}
		b.WriteString(glob.QuoteMeta(run.String()))
		run.Reset()
		return true
	}
	for _, t := range toks {
		if t.kind == tokStar {
			if !flush() {
				return nil
			}
			b.WriteByte('*')
			continue
		}
		run.WriteByte(t.lit)
	}
	if !flush() {
		return nil
	}
	gl, err := glob.Compile(b.String())
	if err != nil {
		return nil
	}
	return gl
}

// match reports whether channel matches the pattern as Redis would.
func (m *matcher) match(channel string) bool {
	if channel == "" {
		return m.pattern == ""
	}
	switch m.kind {
	case matchExact:
		return channel == m.pattern
	case matchGlob:
		return m.gl.Match(channel)
	case matchTokens:
		if len(channel) < m.minLen || (!m.hasStar && len(channel) != m.minLen) {
			return false
		}
		return matchTokenList(m.toks, channel)
	default:
		return false
	}
}

// matchTokenList is the classic iterative glob walk: every token but '*'
// consumes exactly one byte, so backtracking to the most recent star is
// enough to explore every way the stars can split the string.
func matchTokenList(toks []token, s string) bool {
	pi, si := 0, 0
	star, starSi := -1, 0
	for si < len(s) {
		if pi < len(toks) {
			t := &toks[pi]
			switch t.kind {
			case tokStar:
				star, starSi = pi, si
				pi++
				continue
			case tokAny:
				pi++
				si++
				continue
			case tokLiteral:
				if s[si] == t.lit {
					pi++
					si++
					continue
				}
			case tokClass:
				if t.set.has(s[si]) {
					pi++
					si++
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		starSi++
		si, pi = starSi, star+1
	}
	for pi < len(toks) && toks[pi].kind == tokStar {
		pi++
	}
	return pi == len(toks)
}

// The pattern index. A publish must find every subscribed pattern that
// matches its channel without testing them all. Each pattern is filed in
// exactly one place, chosen from its tokens:
//
//   - by the tokens before its first '*' (its head), in the prefix trie,
//     when it has a head: "news:*", "h?llo", "[ab]:*", "" (the root);
//   - otherwise, when it starts with '*', by the tokens after its last '*'
//     (its tail), in the suffix trie, walked from the channel's end: "*:kr";
//   - otherwise (a '*' at both ends) by the first two bytes of its longest
//     literal run, in the bigram map: "*error*";
//   - otherwise in the always list, tested on every publish: "*", "*?*".
//
// Trie edges are literal bytes, '?' and classes, so a walk may follow
// several edges at once. Every candidate found is confirmed by its full
// matcher. Cost per publish: O(len(channel) × live trie branches) for the
// two walks, O(len(channel)) bigram lookups, plus one full match per
// candidate and per always-list pattern. Patterns over Redis's nesting
// limit never match and are kept aside only to be counted.

// patternEntry is one unique pattern and the members subscribed to it.
type patternEntry struct {
	m       *matcher
	members memberList // changed in place under the index's write lock
	where   *trieNode // the trie node holding it, if any
	bigram  uint16    // its bigram key, if filed there
	filed   filing
}

type filing uint8

const (
	filedPrefix filing = iota
	filedSuffix
	filedBigram
	filedAlways
	filedNever
)

// trieNode is a node of a token trie.
type trieNode struct {
	parent  *trieNode
	edge    token // the token leading here from parent
	keys    []byte
	kids    []*trieNode // kids[i] follows literal keys[i]
	any     *trieNode   // follows '?'
	classes []*trieNode // follow classes (their edge.set)
	entries []*patternEntry
}

func (n *trieNode) empty() bool {
	return len(n.kids) == 0 && n.any == nil && len(n.classes) == 0 && len(n.entries) == 0
}

// child returns the node following token t, creating it if asked to.
func (n *trieNode) child(t token, create bool) *trieNode {
	switch t.kind {
	case tokLiteral:
		if i := bytes.IndexByte(n.keys, t.lit); i >= 0 {
			return n.kids[i]
		}
		if !create {
			return nil
		}
		c := &trieNode{parent: n, edge: t}
		n.keys = append(n.keys, t.lit)
		n.kids = append(n.kids, c)
		return c
	case tokAny:
		if n.any == nil && create {
			n.any = &trieNode{parent: n, edge: t}
		}
		return n.any
	default: // tokClass
		for _, c := range n.classes {
			if *c.edge.set == *t.set {
				return c
			}
		}
		if !create {
			return nil
		}
		c := &trieNode{parent: n, edge: t}
		n.classes = append(n.classes, c)
		return c
	}
}

// unlink removes the empty node n from its parent.
func (n *trieNode) unlink() {
	p := n.parent
	switch n.edge.kind {
	case tokLiteral:
		i := bytes.IndexByte(p.keys, n.edge.lit)
		p.keys = append(p.keys[:i], p.keys[i+1:]...)
		p.kids = append(p.kids[:i], p.kids[i+1:]...)
	case tokAny:
		p.any = nil
	default:
		for i, c := range p.classes {
			if c == n {
				p.classes = append(p.classes[:i], p.classes[i+1:]...)
				break
			}
		}
	}
}

// walkStack bounds the live branches kept on the stack during a walk.
const walkStack = 16

// walk follows the channel's bytes from n (forward, or backward for the
// suffix trie) and calls visit with every entry list met on the way.
func (n *trieNode) walk(channel string, backward bool, visit func([]*patternEntry)) {
	var bufA, bufB [walkStack]*trieNode
	live, next := append(bufA[:0], n), bufB[:0]
	for i := 0; ; i++ {
		for _, node := range live {
			if len(node.entries) > 0 {
				visit(node.entries)
			}
		}
		if i == len(channel) || len(live) == 0 {
			return
		}
		c := channel[i]
		if backward {
			c = channel[len(channel)-1-i]
		}
		next = next[:0]
		for _, node := range live {
			if j := bytes.IndexByte(node.keys, c); j >= 0 {
				next = append(next, node.kids[j])
			}
			if node.any != nil {
				next = append(next, node.any)
			}
			for _, cl := range node.classes {
				if cl.edge.set.has(c) {
					next = append(next, cl)
				}
			}
		}
		live, next = next, live
	}
}

// patternIndex maps each subscribed pattern to its subscribers.
type patternIndex struct {
	// count is the number of unique patterns. Publish reads it without the
	// lock to skip pattern matching entirely when there are none.
	count atomic.Int64

	mu sync.RWMutex
	// guards everything below
	entries map[string]*patternEntry
	prefix  trieNode
	suffix  trieNode
	bigrams map[uint16][]*patternEntry
	always  []*patternEntry
}

func newPatternIndex() *patternIndex {
	return &patternIndex{
		entries: make(map[string]*patternEntry),
		bigrams: make(map[uint16][]*patternEntry),
	}
}

func (x *patternIndex) add(mb *member) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[mb.name]
	if e == nil {
		e = &patternEntry{m: compilePattern(mb.name)}
		x.entries[mb.name] = e
		x.fileLocked(e)
		x.count.Add(1)
	}
	e.members.add(mb)
}

func (x *patternIndex) remove(mb *member) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[mb.name]
	if e == nil {
		return
	}
	e.members.remove(mb)
	if len(e.members) == 0 {
		delete(x.entries, mb.name)
		x.unfileLocked(e)
		x.count.Add(-1)
	}
}

// fileLocked puts a new entry in its one place in the index.
// x.mu must be held.
func (x *patternIndex) fileLocked(e *patternEntry) {
	if e.m.kind == matchNever {
		e.filed = filedNever
		return
	}
	toks := tokenize(e.m.pattern)
	head := slices.IndexFunc(toks, func(t token) bool { return t.kind == tokStar })
	if head < 0 {
		head = len(toks)
	}
	if head > 0 || len(toks) == 0 {
		e.filed, e.where = filedPrefix, x.prefix.path(toks[:head])
		e.where.entries = append(e.where.entries, e)
		return
	}
	lastStar := len(toks) - 1
	for toks[lastStar].kind != tokStar {
		lastStar--
	}
	if tail := toks[lastStar+1:]; len(tail) > 0 {
		rev := slices.Clone(tail)
		slices.Reverse(rev)
		e.filed, e.where = filedSuffix, x.suffix.path(rev)
		e.where.entries = append(e.where.entries, e)
		return
	}
	if run := longestLiteralRun(toks); len(run) >= 2 {
		e.filed, e.bigram = filedBigram, bigramKey(run[0], run[1])
		x.bigrams[e.bigram] = append(x.bigrams[e.bigram], e)
		return
	}
	e.filed = filedAlways
	x.always = append(x.always, e)
}

// unfileLocked removes an entry from the index and prunes trie nodes left
// empty, so that churn of unique patterns does not leak memory.
// x.mu must be held.
func (x *patternIndex) unfileLocked(e *patternEntry) {
	switch e.filed {
	case filedPrefix, filedSuffix:
		n := e.where
		n.entries = deleteEntry(n.entries, e)
		for n.parent != nil && n.empty() {
			n.unlink()
			n = n.parent
		}
	case filedBigram:
		if list := deleteEntry(x.bigrams[e.bigram], e); len(list) > 0 {
			x.bigrams[e.bigram] = list
		} else {
			delete(x.bigrams, e.bigram)
		}
	case filedAlways:
		x.always = deleteEntry(x.always, e)
	}
}

func deleteEntry(list []*patternEntry, e *patternEntry) []*patternEntry {
	i := slices.Index(list, e)
	if i < 0 {
		return list
	}
	list[i] = list[len(list)-1]
	list[len(list)-1] = nil
	return list[:len(list)-1]
}

// path returns the node reached from n by toks, creating nodes as needed.
func (n *trieNode) path(toks []token) *trieNode {
	for _, t := range toks {
		n = n.child(t, true)
	}
	return n
}

func longestLiteralRun(toks []token) []byte {
	var best, run []byte
	for _, t := range toks {
		if t.kind == tokLiteral {
			run = append(run, t.lit)
			if len(run) > len(best) {
				best = slices.Clone(run)
			}
		} else {
			run = run[:0]
		}
	}
	return best
}

func bigramKey(a, b byte) uint16 { return uint16(a)<<8 | uint16(b) }

// forEachMatch calls visit with the members of every pattern that matches
// channel, holding the index's read lock throughout: removing a pattern
// membership waits for it, which is what lets Publish deliver without a
// lock per subscription. visit must not block or call into the broker.
func (x *patternIndex) forEachMatch(channel string, visit func(members []*member)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	confirm := func(entries []*patternEntry) {
		for _, e := range entries {
			if e.m.match(channel) {
				visit(e.members)
			}
		}
	}
	x.prefix.walk(channel, false, confirm)
	if len(x.suffix.kids) > 0 || x.suffix.any != nil || len(x.suffix.classes) > 0 {
		x.suffix.walk(channel, true, confirm)
	}
	if len(x.bigrams) > 0 && len(channel) >= 2 {
		// A pattern's bigram can occur several times in one channel;
		// confirm each pattern once.
		var seenBuf [8]*patternEntry
		seen := seenBuf[:0]
		for i := 0; i+1 < len(channel); i++ {
			for _, e := range x.bigrams[bigramKey(channel[i], channel[i+1])] {
				if slices.Contains(seen, e) {
					continue
				}
				seen = append(seen, e)
				if e.m.match(channel) {
					visit(e.members)
				}
			}
		}
	}
	confirm(x.always)
}

func (x *patternIndex) len() int {
	return int(x.count.Load())
}

// deliverTo delivers m to the subscribers of the pattern itself, matching
// nothing (see Broker.Deliver), under the index's read lock as Publish does.
func (x *patternIndex) deliverTo(pattern string, t *tally, m *Message) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e := x.entries[pattern]; e != nil {
		t.offer(e.members, m)
	}
}

// withMembers calls visit with the subscribers of the pattern itself.
func (x *patternIndex) withMembers(pattern string, visit func([]*member)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if e := x.entries[pattern]; e != nil {
		visit(e.members)
	}
}
