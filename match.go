package pubsub

import (
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

type token struct {
	kind tokenKind
	lit  byte
	set  *byteSet
}

// tokenize splits a Redis pattern into tokens exactly as stringmatchlen
// walks it. Consecutive stars collapse into one, as Redis skips them.
func tokenize(p string) []token {
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
			set, i = parseClass(p, i+1)
			toks = append(toks, token{kind: tokClass, set: set})
		case '\\':
			if i+1 < len(p) {
				toks = append(toks, token{kind: tokLiteral, lit: p[i+1]})
				i += 2
			} else { // a trailing backslash is literal
				toks = append(toks, token{kind: tokLiteral, lit: '\\'})
				i++
			}
		default:
			toks = append(toks, token{kind: tokLiteral, lit: p[i]})
			i++
		}
	}
	return toks
}

// parseClass parses a class whose body starts at p[i] (just after '[') and
// returns its set and the index just past it.
func parseClass(p string, i int) (*byteSet, int) {
	set := new(byteSet)
	negate := i < len(p) && p[i] == '^'
	if negate {
		i++
	}
	for i < len(p) {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			set.add(p[i+1])
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
			set.addRange(lo, hi)
			i += 3
		default:
			set.add(p[i])
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
		for _, t := range toks {
			if t.kind == tokStar {
				m.hasStar = true
			} else {
				m.minLen++
			}
		}
	}
	return m
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

// patternEntry is one unique pattern and the members subscribed to it.
type patternEntry struct {
	m       *matcher
	members []*member // copy-on-write: replaced, never mutated
}

// patternIndex maps each subscribed pattern to its subscribers.
type patternIndex struct {
	// count is the number of unique patterns. Publish reads it without the
	// lock to skip pattern matching entirely when there are none.
	count atomic.Int64

	mu sync.RWMutex
	// guards entries
	entries map[string]*patternEntry
}

func newPatternIndex() *patternIndex {
	return &patternIndex{entries: make(map[string]*patternEntry)}
}

func (x *patternIndex) add(mb *member) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[mb.name]
	if e == nil {
		e = &patternEntry{m: compilePattern(mb.name)}
		x.entries[mb.name] = e
		x.count.Add(1)
	}
	e.members = appendMember(e.members, mb)
}

func (x *patternIndex) remove(mb *member) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[mb.name]
	if e == nil {
		return
	}
	e.members = removeMember(e.members, mb)
	if len(e.members) == 0 {
		delete(x.entries, mb.name)
		x.count.Add(-1)
	}
}

// collect appends the member lists of every pattern that matches channel to
// dst. The lists are immutable snapshots that stay valid after the lock is
// released.
func (x *patternIndex) collect(channel string, dst [][]*member) [][]*member {
	if x.count.Load() == 0 {
		return dst
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, e := range x.entries {
		if e.m.match(channel) {
			dst = append(dst, e.members)
		}
	}
	return dst
}

func (x *patternIndex) len() int {
	return int(x.count.Load())
}
