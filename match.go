package pubsub

import (
	"bytes"
	"math/bits"
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
	// One allocation of the final size: a huge pattern must not cost the
	// doublings of a growing slice too.
	toks := make([]token, 0, countTokens(p))
	classes := map[byteSet]*byteSet{}
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
			// A pattern repeating one class shares its set.
			if same, ok := classes[*set]; ok {
				set = same
			} else if len(classes) < 256 {
				classes[*set] = set
			}
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

// countTokens is the number of tokens tokenizeCase makes of p.
func countTokens(p string) int {
	n := 0
	lastStar := false
	for i := 0; i < len(p); {
		star := false
		switch p[i] {
		case '*':
			star = true
			if !lastStar {
				n++
			}
			i++
		case '[':
			i = classEnd(p, i+1)
			n++
		case '\\':
			i += min(2, len(p)-i)
			n++
		default:
			i++
			n++
		}
		lastStar = star
	}
	return n
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

// classEnd returns the index just past the class whose body starts at
// p[i], walking it as parseClass does.
func classEnd(p string, i int) int {
	if i < len(p) && p[i] == '^' {
		i++
	}
	for i < len(p) {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			i += 2
		case p[i] == ']':
			return i + 1
		case i+2 < len(p) && p[i+1] == '-':
			i += 3
		default:
			i++
		}
	}
	return i
}

// matcher is a compiled Redis pattern. Matching is safe for concurrent use.
type matcher struct {
	pattern string
	kind    matcherKind
	gl      *glob.Pattern // kind == matchGlob
	segs    []string      // kind == matchSegments: the literal runs between the stars
	ops     []matchOp     // kind == matchTokens: the tokens, four bytes each
	classes []byteSet     // kind == matchTokens: the sets the ops' classes index
	minLen  int           // kind == matchTokens: non-star tokens
	hasStar bool          // kind == matchTokens
}

// matchOp is a token as a matcher keeps it: its kind in the top two bits,
// and below them its literal byte or the index of its class in
// matcher.classes. A token is 16 bytes (its class is a pointer), a
// matchOp 4, so that a huge pattern of '?' and literals costs the matcher
// four bytes a byte of pattern, not sixteen.
type matchOp uint32

const opKindShift = 30

func (o matchOp) kind() tokenKind { return tokenKind(o >> opKindShift) }
func (o matchOp) arg() uint32     { return uint32(o) & (1<<opKindShift - 1) }

// maxInternedClasses bounds the sets setTokens shares between classes of
// one pattern: a pattern with more distinct classes keeps each.
const maxInternedClasses = 256

type matcherKind uint8

const (
	matchExact    matcherKind = iota // no special bytes: string equality
	matchGlob                        // literals and one '*': gobwas/glob
	matchTokens                      // anything else: our byte-wise matcher
	matchNever                       // over Redis's nesting limit
	matchSegments                    // literals and '*' that gobwas/glob is not best at
)

// maxGlobPattern is the longest pattern handed to gobwas/glob, which
// takes time and memory far beyond the pattern's length to compile a huge
// one (1.9 GB for 8 MB); longer ones of its shape are matched by segments.
const maxGlobPattern = 4096

// gobwas/glob is fastest on one star ("news:*", "*:events", "a:*:b",
// within 1-2 ns of matching by segments) but takes 5-10 times as long as
// the segments on two or more ("*:1234:*:events": 157 ns against 20 ns;
// "*a*b*c*": 320 ns against 29 ns), so it gets only the patterns with one.

// Match reports whether name matches the Redis glob pattern, exactly as
// Redis's stringmatchlen decides for PSUBSCRIBE and PUBSUB CHANNELS; see
// the package doc for the syntax. It takes time proportional to
// len(pattern) × len(name) at most, whatever the pattern.
func Match(pattern, name string) bool {
	return compilePattern(pattern).match(name)
}

// Pattern is a Redis glob pattern compiled once, for code that matches
// many names against the same pattern ([Match] compiles it on each
// call). A Pattern is immutable and safe for concurrent use; the zero
// Pattern matches only the empty name, as the pattern "" does.
type Pattern struct{ m *matcher }

// CompilePattern compiles pattern for [Pattern.Match]; any string is a
// pattern, as in Redis.
func CompilePattern(pattern string) Pattern { return Pattern{compilePattern(pattern)} }

// Match reports whether name matches the pattern, as [Match] does.
func (p Pattern) Match(name string) bool {
	if p.m == nil {
		return name == ""
	}
	return p.m.match(name)
}

// String returns the pattern as written.
func (p Pattern) String() string {
	if p.m == nil {
		return ""
	}
	return p.m.pattern
}

// MatchFold is [Match] in Redis's nocase mode, as CONFIG GET matches
// parameter names: ASCII letters match either case. As in Redis, a letter
// escaped inside a class, as in [\A], still matches its own case only.
func MatchFold(pattern, name string) bool {
	m := &matcher{pattern: pattern, kind: matchTokens}
	m.setTokens(tokenizeCase(pattern, true))
	return m.match(name)
}

func compilePattern(p string) *matcher { return compilePatternWith(p, maxGlobPattern) }

// compilePatternWith is compilePattern handing gobwas/glob patterns of up to
// maxGlob bytes.
func compilePatternWith(p string, maxGlob int) *matcher {
	m, _ := compileTokens(p, maxGlob)
	return m
}

// compileTokens is compilePatternWith returning the pattern's tokens too,
// nil for a pattern with no special byte.
func compileTokens(p string, maxGlob int) (*matcher, []token) {
	m := &matcher{pattern: p}
	if !strings.ContainsAny(p, `*?[\`) {
		m.kind = matchExact
		return m, nil
	}
	toks := tokenize(p)
	stars, allStars, literalOnly := 0, 0, true
	for i, t := range toks {
		switch t.kind {
		case tokStar:
			allStars++
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
	case literalOnly && (len(p) > maxGlob || allStars > 1):
		m.kind, m.segs = matchSegments, segmentsOf(toks)
	case literalOnly:
		if gl := compileGlob(toks); gl != nil {
			m.kind, m.gl = matchGlob, gl
			return m, toks
		}
		fallthrough
	default:
		m.kind = matchTokens
		m.setTokens(toks)
	}
	return m, toks
}

// setTokens makes the ops of a matchTokens matcher from its tokens, with
// what it needs besides: the length bounds, and Redis's nesting limit.
func (m *matcher) setTokens(toks []token) {
	m.ops = make([]matchOp, len(toks))
	interned := map[byteSet]uint32{}
	stars := 0
	for i, t := range toks {
		arg := uint32(t.lit)
		switch t.kind {
		case tokStar:
			m.hasStar = true
			if i != len(toks)-1 {
				stars++
			}
		case tokClass:
			idx, ok := interned[*t.set]
			if !ok {
				idx = uint32(len(m.classes))
				m.classes = append(m.classes, *t.set)
				if len(interned) < maxInternedClasses {
					interned[*t.set] = idx
				}
			}
			arg = idx
		}
		if t.kind != tokStar {
			m.minLen++
		}
		m.ops[i] = matchOp(uint32(t.kind)<<opKindShift | arg)
	}
	if stars > maxStarNesting {
		m.kind = matchNever
	}
}

// compileGlob hands a pattern made of literal bytes and one star to
// gobwas/glob, which is fastest on that shape. gobwas reads its pattern as
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

// segmentsOf returns the literal runs of toks, made of literals and stars
// only, around each star: n stars make n+1 runs, empty ones included.
func segmentsOf(toks []token) []string {
	var segs []string
	var run []byte
	for _, t := range toks {
		if t.kind == tokStar {
			segs = append(segs, string(run))
			run = run[:0]
			continue
		}
		run = append(run, t.lit)
	}
	return append(segs, string(run))
}

// matchBySegments matches a pattern of literal runs joined by stars: the
// first run must start the string and the last end it, and the runs
// between must occur in order, each as early as it can (taking the
// earliest place leaves the most room to the rest, so it never misses a
// match). O(len(s)) string searches in all.
func matchBySegments(segs []string, s string) bool {
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	if !strings.HasSuffix(s, last) {
		return false
	}
	s = s[:len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(s, seg)
		if i < 0 {
			return false
		}
		s = s[i+len(seg):]
	}
	return true
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
	case matchSegments:
		return matchBySegments(m.segs, channel)
	case matchTokens:
		if len(channel) < m.minLen || (!m.hasStar && len(channel) != m.minLen) {
			return false
		}
		return m.matchOps(channel)
	default:
		return false
	}
}

// matchOps is the classic iterative glob walk: every token but '*'
// consumes exactly one byte, so backtracking to the most recent star is
// enough to explore every way the stars can split the string.
func (m *matcher) matchOps(s string) bool {
	ops := m.ops
	pi, si := 0, 0
	star, starSi := -1, 0
	for si < len(s) {
		if pi < len(ops) {
			o := ops[pi]
			switch o.kind() {
			case tokStar:
				star, starSi = pi, si
				pi++
				continue
			case tokAny:
				pi++
				si++
				continue
			case tokLiteral:
				if s[si] == byte(o.arg()) {
					pi++
					si++
					continue
				}
			case tokClass:
				if m.classes[o.arg()].has(s[si]) {
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
	for pi < len(ops) && ops[pi].kind() == tokStar {
		pi++
	}
	return pi == len(ops)
}

// The pattern index. A publish must find every subscribed pattern that
// matches its channel without testing them all. Each pattern is filed in
// exactly one place, under one of its anchors, a part of it that every
// channel it matches must show:
//
//   - its whole text, when it has no special byte: "news" (a map lookup);
//   - its head, the tokens before its first '*', at most maxAnchorTokens of
//     them: by its text when they are all literal ("news:*", a map lookup
//     for each head length in use), else in the prefix trie ("h?llo",
//     "[ab]:*");
//   - its tail, the tokens after its last '*', likewise: by its text
//     ("*:kr", "tenant:*:42"), else in the suffix trie, walked from the
//     channel's end ("*:?r");
//   - a gram, up to maxGram bytes of one of its literal runs, which the
//     channel must contain somewhere: "*-42-*";
//   - otherwise in the always list, tested on every publish: "*", "*?*".
//
// Of a pattern's anchors it takes the one the fewest patterns have among
// theirs (counted in a sketch), then the one the fewest are filed under,
// then the longest: patterns that share a head ("tenant:*:<i>") spread
// over their tails, patterns that share a tail over their inner runs, and
// "*ab123*" goes under "b123" rather than under a gram every other
// pattern has. A pattern filed before others shared its anchor is filed
// anew by a later PSUBSCRIBE that shares it, once twice as many share it
// as when it was filed (at most refileBudget patterns a PSUBSCRIBE, so
// that each stays cheap). Every candidate the index finds is confirmed by
// the pattern's exact matcher, so the choice of anchor changes the cost of
// a publish, never its result.
//
// Cost of one publish to a channel of L bytes: one map lookup for the
// whole channel; one for each head and each tail length in use, at most
// maxAnchorTokens of each; two trie walks of at most maxAnchorTokens
// steps, each step a lookup per live branch (more than one only where '?'
// or classes branch); L lookups per gram length in use (at most maxGram), each first
// tested against a filter of the grams filed, so a channel that shares no
// gram with any pattern costs no map lookup; the always list; and one
// exact match for each candidate found, O(len(pattern) × L) at worst.
// Each candidate is confirmed once: a gram met again further on the
// channel is skipped by a set of the grams seen in this publish, O(1) per
// candidate. The adversarial input is many patterns whose anchors all
// occur in the channel but which do not match it: 10,000 patterns
// "*-<i>-*x", each filed under its own gram "-<i>-", and a channel made of
// all those grams one after the other that does not end in "x". Each
// pattern is a candidate, and the publish costs 10,000 exact matches over
// the whole channel, as a linear scan would. A trie node with many
// distinct classes or '?' branches at one level is scanned linearly at
// each step too. Patterns over Redis's nesting limit never match and are
// kept aside only to be counted.

const (
	// maxAnchorTokens bounds the head or tail a pattern is filed under:
	// deeper trie levels seldom tell patterns apart, and a huge pattern
	// then costs the trie a few nodes, not one per byte.
	maxAnchorTokens = 32
	// maxGram is the longest gram: seven bytes tell apart most inner runs
	// ("-12345-") and fit in one word with their length.
	maxGram = 7
	// maxGramChoices bounds the grams a pattern considers, so that
	// filing a huge pattern costs what filing a small one does.
	maxGramChoices = 24
	// refileBudget bounds the patterns a PSUBSCRIBE files anew, and
	// refileScan how far it looks in each list for them, so that a
	// PSUBSCRIBE costs the index lock a bounded time; maxRefilePattern
	// bounds the length of those, as their anchors are found again under
	// the lock.
	refileBudget     = 2
	refileScan       = 4
	maxRefilePattern = 1024
	// wantedBits sizes the sketch of how many patterns could be filed
	// under each anchor (see patternIndex.wanted).
	wantedBits = 16
	// filterBitsPerGram sizes the filter of filed grams: about one
	// position in sixteen of a channel passes it without a filed gram.
	filterBitsPerGram = 16
)

// patternEntry is one unique pattern and the members subscribed to it.
type patternEntry struct {
	m       *matcher
	members memberList // changed in place under the index's write lock
	// choices are the anchors the pattern may be filed under, found
	// before the index is locked; filed is the one it was filed under.
	choices []anchor
	filed   anchor
	// sharedWhenFiled is how many patterns shared its anchor when it was
	// filed; once twice as many do, it may be filed anew (fileLocked).
	sharedWhenFiled int
	node            *trieNode // for a head or tail: the trie node holding it
	wanted          []uint32  // its anchors' slots in patternIndex.wanted, each once
}

type anchorKind uint8

const (
	anchorExact    anchorKind = iota // the whole pattern is literal
	anchorHead                       // the prefix trie: a head with '?' or a class
	anchorTail                       // the suffix trie, tokens reversed
	anchorGram                       // the gram map
	anchorAlways                     // tested on every publish
	anchorNever                      // over the nesting limit: never matches
	anchorHeadText                   // a literal head, by its text
	anchorTailText                   // a literal tail, by its text
)

// anchor is a place a pattern can be filed under.
type anchor struct {
	kind anchorKind
	toks []token // anchorHead, anchorTail (reversed)
	text string  // anchorHeadText, anchorTailText
	gram uint64  // anchorGram: see gramKey
}

// weight is how specific an anchor is, to break ties between anchors
// with as many patterns filed under them.
func (a anchor) weight() int {
	switch a.kind {
	case anchorHead, anchorTail:
		return len(a.toks)
	case anchorHeadText, anchorTailText:
		return len(a.text)
	case anchorGram:
		return gramLen(a.gram)
	}
	return 0
}

// wantedSlots are the anchor's two slots in patternIndex.wanted.
func (a anchor) wantedSlots() [2]uint32 {
	h := mix(a.hash())
	return [2]uint32{uint32(h) & (1<<wantedBits - 1), uint32(h>>32) & (1<<wantedBits - 1)}
}

// hash identifies the anchor in patternIndex.wanted.
func (a anchor) hash() uint64 {
	h := uint64(a.kind)*0x100000001b3 ^ a.gram
	for _, t := range a.toks {
		h = (h ^ uint64(t.kind)<<8 ^ uint64(t.lit)) * 0x100000001b3
		if t.set != nil {
			for _, w := range t.set {
				h = (h ^ w) * 0x100000001b3
			}
		}
	}
	for i := 0; i < len(a.text); i++ {
		h = (h ^ uint64(a.text[i])) * 0x100000001b3
	}
	return h
}

// gramKey packs n <= maxGram bytes and their count in one word.
func gramKey(s string) uint64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		v |= uint64(s[i]) << (8 * i)
	}
	return v | uint64(len(s))<<56
}

func gramLen(k uint64) int { return int(k >> 56) }

// mix spreads a key over a word, for the slots of the sketch and the
// filter.
func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}

// newPatternEntry compiles pattern and finds its anchors. It takes no
// lock: PSUBSCRIBE of a huge pattern keeps no publisher waiting.
func newPatternEntry(pattern string) *patternEntry {
	m, toks := compileTokens(pattern, maxGlobPattern)
	e := &patternEntry{m: m}
	switch e.m.kind {
	case matchNever:
		e.choices = []anchor{{kind: anchorNever}}
		return e
	case matchExact:
		e.choices = []anchor{{kind: anchorExact}}
		return e
	}
	e.choices = anchorsOf(toks)
	return e
}

// anchorsOf lists the anchors of a pattern made of toks, which holds a
// special byte and is within the nesting limit.
func anchorsOf(toks []token) []anchor {
	var out []anchor
	first := slices.IndexFunc(toks, func(t token) bool { return t.kind == tokStar })
	if first < 0 { // '?' or classes but no star: all of it is a head
		first = len(toks)
	}
	if first > 0 {
		head := toks[:min(first, maxAnchorTokens)]
		if text, ok := literalText(head); ok {
			out = append(out, anchor{kind: anchorHeadText, text: text})
		} else {
			out = append(out, anchor{kind: anchorHead, toks: slices.Clone(head)})
		}
	}
	if first < len(toks) {
		last := len(toks) - 1
		for toks[last].kind != tokStar {
			last--
		}
		if tail := toks[last+1:]; len(tail) > 0 {
			tail = tail[max(0, len(tail)-maxAnchorTokens):]
			if text, ok := literalText(tail); ok {
				out = append(out, anchor{kind: anchorTailText, text: text})
			} else {
				rev := slices.Clone(tail)
				slices.Reverse(rev)
				out = append(out, anchor{kind: anchorTail, toks: rev})
			}
		}
	}
	// Grams of every literal run: each gram of maxGram bytes, or the whole
	// run when shorter, at most maxGramChoices of them in all.
	var run []byte
	grams := 0
	flush := func() {
		n := min(len(run), maxGram)
		for i := 0; n > 0 && i+n <= len(run) && grams < maxGramChoices; i++ {
			out = append(out, anchor{kind: anchorGram, gram: gramKey(string(run[i : i+n]))})
			grams++
		}
		run = run[:0]
	}
	for _, t := range toks {
		if t.kind == tokLiteral {
			run = append(run, t.lit)
			continue
		}
		flush()
	}
	flush()
	if len(out) == 0 {
		out = append(out, anchor{kind: anchorAlways})
	}
	return out
}

// literalText is the bytes of toks, if they are all literals.
func literalText(toks []token) (string, bool) {
	b := make([]byte, len(toks))
	for i, t := range toks {
		if t.kind != tokLiteral {
			return "", false
		}
		b[i] = t.lit
	}
	return string(b), true
}

// textEnds files the literal heads (or tails) by their text, with the
// lengths in use in a bit set. A publish looks up the channel's head (or
// tail) of each length in use: lookups that do not wait for one another,
// where a trie walk is a chain of dependent loads, one per byte, each a
// cache miss once the trie outgrows the cache.
type textEnds struct {
	byText map[string][]*patternEntry
	lens   uint64 // bit n set while texts of n bytes are filed
	count  [maxAnchorTokens + 1]int
}

func (t *textEnds) add(text string, e *patternEntry) {
	if t.byText == nil {
		t.byText = make(map[string][]*patternEntry)
	}
	t.byText[text] = append(t.byText[text], e)
	t.count[len(text)]++
	t.lens |= 1 << len(text)
}

func (t *textEnds) remove(text string, e *patternEntry) {
	if list := deleteEntry(t.byText[text], e); len(list) > 0 {
		t.byText[text] = list
	} else {
		delete(t.byText, text)
	}
	if t.count[len(text)]--; t.count[len(text)] == 0 {
		t.lens &^= 1 << len(text)
	}
	if len(t.byText) == 0 {
		t.byText = nil
	}
}

// visit calls visit with the patterns filed under each head of channel,
// or each tail.
func (t *textEnds) visit(channel string, tail bool, visit func([]*patternEntry)) {
	for lens := t.lens; lens != 0; lens &= lens - 1 {
		n := bits.TrailingZeros64(lens)
		if n > len(channel) {
			return
		}
		end := channel[:n]
		if tail {
			end = channel[len(channel)-n:]
		}
		if list := t.byText[end]; len(list) > 0 {
			visit(list)
		}
	}
}

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

// find returns the node reached from n by toks, or nil.
func (n *trieNode) find(toks []token) *trieNode {
	for _, t := range toks {
		if n = n.child(t, false); n == nil {
			return nil
		}
	}
	return n
}

// path returns the node reached from n by toks, creating nodes as needed.
func (n *trieNode) path(toks []token) *trieNode {
	for _, t := range toks {
		n = n.child(t, true)
	}
	return n
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
// suffix trie) and calls visit with every entry list met on the way. A
// node is met at most once: each has one depth, and one path leads to it.
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

func (n *trieNode) hasKids() bool {
	return len(n.kids) > 0 || n.any != nil || len(n.classes) > 0
}

// gramBucket is the patterns filed under one gram.
type gramBucket struct {
	entries []*patternEntry
	id      uint64 // hashed by bucketSet
}

// patternIndex maps each subscribed pattern to its subscribers.
type patternIndex struct {
	// count is the number of unique patterns. Publish reads it without the
	// lock to skip pattern matching entirely when there are none.
	count atomic.Int64

	mu sync.RWMutex
	// guards everything below
	entries map[string]*patternEntry // every pattern, by its text
	prefix  trieNode
	suffix  trieNode
	heads   textEnds
	tails   textEnds
	grams   map[uint64]*gramBucket
	// gramLens has bit n set while grams of n bytes are filed. filter has
	// a bit set for every gram filed (and for some removed since it was
	// last rebuilt), so that most positions of a channel cost no map
	// lookup.
	gramLens    uint8
	lenCount    [maxGram + 1]int
	filter      []uint64
	filterStale int // grams removed since the filter was built
	always      []*patternEntry
	exact       int // patterns filed by their whole text
	never       int
	buckets     uint64 // gram buckets made, for their ids
	rotor       int    // where fileLocked starts looking in a list
	// wanted counts, for each anchor, the patterns that have it among
	// their choices: an anchor many patterns share is probably in many
	// channels too, so a pattern prefers the one it shares with the
	// fewest. Each anchor is counted in two of a fixed number of slots
	// and read as the smaller count (a count-min sketch), so that an
	// anchor sharing one slot with a popular one is not taken for popular.
	wanted []uint32

	// compiling, when set (by a test), is called by add before it compiles
	// a new pattern, with no lock held.
	compiling func(pattern string)
}

func newPatternIndex() *patternIndex {
	return &patternIndex{
		entries: make(map[string]*patternEntry),
		grams:   make(map[uint64]*gramBucket),
	}
}

// add files mb under its pattern. A new pattern is compiled, and its
// anchors found, before the index is locked; the lock is held only to
// choose among them and file it.
func (x *patternIndex) add(mb *member) {
	var fresh *patternEntry
	for {
		x.mu.Lock()
		e := x.entries[mb.name]
		if e == nil && fresh != nil {
			e = fresh
			x.entries[mb.name] = e
			x.fileLocked(e)
			x.count.Add(1)
		}
		if e != nil {
			e.members.add(mb)
			x.mu.Unlock()
			return
		}
		hook := x.compiling
		x.mu.Unlock()
		if hook != nil {
			hook(mb.name)
		}
		fresh = newPatternEntry(mb.name)
	}
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

// filedUnder is the patterns filed under a now. x.mu must be held.
func (x *patternIndex) filedUnder(a anchor) []*patternEntry {
	switch a.kind {
	case anchorHead:
		if n := x.prefix.find(a.toks); n != nil {
			return n.entries
		}
	case anchorTail:
		if n := x.suffix.find(a.toks); n != nil {
			return n.entries
		}
	case anchorHeadText:
		return x.heads.byText[a.text]
	case anchorTailText:
		return x.tails.byText[a.text]
	case anchorGram:
		if b := x.grams[a.gram]; b != nil {
			return b.entries
		}
	}
	return nil
}

// shared is how many patterns have a among their choices, as far as the
// sketch can tell (never fewer). x.mu must be held.
func (x *patternIndex) shared(a anchor) int {
	if x.wanted == nil {
		return 0
	}
	s := a.wantedSlots()
	return int(min(x.wanted[s[0]], x.wanted[s[1]]))
}

// fileLocked files a new entry under the best of its anchors: the one
// the fewest patterns share, then the one the fewest are filed under, then
// the longest. Then it looks again at a few patterns filed under the
// entry's other anchors, which it shares with them: one filed before
// others shared its anchor may now have a better one. x.mu must be held.
func (x *patternIndex) fileLocked(e *patternEntry) {
	if len(e.choices) > 1 {
		x.noteWanted(e)
	}
	x.attach(e, x.best(e.choices))
	again, n := x.outgrown(e)
	e.choices = nil
	for _, o := range again[:n] {
		x.detach(o)
		x.attach(o, x.best(anchorsOf(tokenize(o.m.pattern))))
	}
}

// outgrown picks, among a few of the patterns filed under e's anchors, at
// most refileBudget whose anchor twice as many patterns share as when
// they were filed. x.mu must be held.
func (x *patternIndex) outgrown(e *patternEntry) (picked [refileBudget]*patternEntry, n int) {
	start := x.rotor
	x.rotor++
	for _, a := range e.choices {
		list := x.filedUnder(a)
		for i := range min(len(list), refileScan) {
			if n == len(picked) {
				return picked, n
			}
			o := list[(start+i)%len(list)]
			if o != e && x.shared(o.filed) >= 2*o.sharedWhenFiled+1 &&
				len(o.m.pattern) <= maxRefilePattern && !slices.Contains(picked[:n], o) {
				picked[n] = o
				n++
			}
		}
	}
	return picked, n
}

// best is the anchor to file a pattern with these choices under.
// x.mu must be held.
func (x *patternIndex) best(choices []anchor) anchor {
	type score struct{ shared, crowd, weight int }
	better := func(a, b score) bool {
		if a.shared != b.shared {
			return a.shared < b.shared
		}
		if a.crowd != b.crowd {
			return a.crowd < b.crowd
		}
		return a.weight > b.weight
	}
	var best anchor
	var bestScore score
	for i, a := range choices {
		sc := score{shared: x.shared(a), crowd: len(x.filedUnder(a)), weight: a.weight()}
		if i == 0 || better(sc, bestScore) {
			best, bestScore = a, sc
		}
	}
	return best
}

// attach files e under a. x.mu must be held.
func (x *patternIndex) attach(e *patternEntry, a anchor) {
	e.filed, e.sharedWhenFiled = a, x.shared(a)
	switch a.kind {
	case anchorHead:
		e.node = x.prefix.path(a.toks)
		e.node.entries = append(e.node.entries, e)
	case anchorTail:
		e.node = x.suffix.path(a.toks)
		e.node.entries = append(e.node.entries, e)
	case anchorHeadText:
		x.heads.add(a.text, e)
	case anchorTailText:
		x.tails.add(a.text, e)
	case anchorGram:
		b := x.grams[a.gram]
		if b == nil {
			x.buckets++
			b = &gramBucket{id: x.buckets}
			x.grams[a.gram] = b
		}
		b.entries = append(b.entries, e)
		if len(b.entries) == 1 {
			x.filterAdd(a.gram)
		}
		n := gramLen(a.gram)
		x.lenCount[n]++
		x.gramLens |= 1 << n
	case anchorAlways:
		x.always = append(x.always, e)
	case anchorExact:
		x.exact++
	case anchorNever:
		x.never++
	}
}

// noteWanted counts e's anchors in the sketch, each once. x.mu must be
// held.
func (x *patternIndex) noteWanted(e *patternEntry) {
	if x.wanted == nil {
		x.wanted = make([]uint32, 1<<wantedBits)
	}
	for _, a := range e.choices {
		for _, slot := range a.wantedSlots() {
			if !slices.Contains(e.wanted, slot) {
				e.wanted = append(e.wanted, slot)
			}
		}
	}
	for _, slot := range e.wanted {
		x.wanted[slot]++
	}
}

// filterAdd sets gram k's bit, first growing the filter, rebuilt from the
// grams filed, when it holds too few bits a gram or too many stale ones.
// x.mu must be held.
func (x *patternIndex) filterAdd(k uint64) {
	if len(x.filter)*64 < filterBitsPerGram*len(x.grams) || x.filterStale > len(x.grams) {
		x.rebuildFilter()
		return // the rebuild set k's bit: its bucket is in grams already
	}
	h := mix(k) & uint64(len(x.filter)*64-1)
	x.filter[h/64] |= 1 << (h % 64)
}

func (x *patternIndex) rebuildFilter() {
	words := 1
	for words*64 < 2*filterBitsPerGram*len(x.grams) {
		words *= 2
	}
	x.filter = make([]uint64, words)
	for k := range x.grams {
		h := mix(k) & uint64(words*64-1)
		x.filter[h/64] |= 1 << (h % 64)
	}
	x.filterStale = 0
}

// mayHaveGram reports whether gram k may be filed. x.mu must be held.
func (x *patternIndex) mayHaveGram(k uint64) bool {
	h := mix(k) & uint64(len(x.filter)*64-1)
	return x.filter[h/64]&(1<<(h%64)) != 0
}

// unfileLocked removes an entry from the index and prunes what it leaves
// empty, so that churn of unique patterns does not leak memory.
// x.mu must be held.
func (x *patternIndex) unfileLocked(e *patternEntry) {
	x.detach(e)
	for _, slot := range e.wanted {
		x.wanted[slot]--
	}
	e.wanted = nil
	if x.count.Load() == 1 { // the last pattern is leaving
		x.wanted = nil
	}
}

// detach removes e from under its anchor. x.mu must be held.
func (x *patternIndex) detach(e *patternEntry) {
	switch e.filed.kind {
	case anchorHead, anchorTail:
		n := e.node
		n.entries = deleteEntry(n.entries, e)
		for n.parent != nil && n.empty() {
			n.unlink()
			n = n.parent
		}
		e.node = nil
	case anchorHeadText:
		x.heads.remove(e.filed.text, e)
	case anchorTailText:
		x.tails.remove(e.filed.text, e)
	case anchorGram:
		k := e.filed.gram
		b := x.grams[k]
		if b.entries = deleteEntry(b.entries, e); len(b.entries) == 0 {
			delete(x.grams, k)
			x.filterStale++
		}
		n := gramLen(k)
		if x.lenCount[n]--; x.lenCount[n] == 0 {
			x.gramLens &^= 1 << n
		}
		if len(x.grams) == 0 {
			x.filter, x.filterStale = nil, 0
		}
	case anchorAlways:
		x.always = deleteEntry(x.always, e)
	case anchorExact:
		x.exact--
	case anchorNever:
		x.never--
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

// bucketSet is the gram buckets one publish has met, so that a gram that
// occurs several times in the channel has its patterns confirmed once. Up
// to len(small) it is a list; past that, a hash set of its own, taken from
// a pool and emptied slot by slot after use: O(1) per bucket either way.
type bucketSet struct {
	small [8]*gramBucket
	n     int
	big   *bucketTable
}

type bucketTable struct {
	slots []*gramBucket // open addressing, len a power of two
	used  []int
}

var bucketTables = sync.Pool{New: func() any { return &bucketTable{slots: make([]*gramBucket, 64)} }}

// first reports whether b is met for the first time, and notes it.
func (s *bucketSet) first(b *gramBucket) bool {
	if s.big == nil {
		for _, seen := range s.small[:s.n] {
			if seen == b {
				return false
			}
		}
		if s.n < len(s.small) {
			s.small[s.n] = b
			s.n++
			return true
		}
		s.big = bucketTables.Get().(*bucketTable)
		for _, seen := range s.small {
			s.big.insert(seen)
		}
	}
	return s.big.insert(b)
}

func (s *bucketSet) release() {
	if s.big != nil {
		s.big.reset()
		bucketTables.Put(s.big)
		s.big = nil
	}
}

// insert adds b and reports whether it was absent.
func (t *bucketTable) insert(b *gramBucket) bool {
	if 2*(len(t.used)+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := int(b.id*0x9e3779b97f4a7c15>>32) & mask
	for ; t.slots[i] != nil; i = (i + 1) & mask {
		if t.slots[i] == b {
			return false
		}
	}
	t.slots[i] = b
	t.used = append(t.used, i)
	return true
}

func (t *bucketTable) grow() {
	old := t.used
	oldSlots := t.slots
	t.slots = make([]*gramBucket, 2*len(oldSlots))
	t.used = make([]int, 0, cap(old))
	for _, i := range old {
		t.insert(oldSlots[i])
	}
}

func (t *bucketTable) reset() {
	for _, i := range t.used {
		t.slots[i] = nil
	}
	t.used = t.used[:0]
	if len(t.slots) > 1<<16 { // one huge channel: do not keep its table
		t.slots, t.used = make([]*gramBucket, 64), nil
	}
}

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
	if x.exact > 0 {
		if e := x.entries[channel]; e != nil && e.filed.kind == anchorExact {
			visit(e.members)
		}
	}
	if x.prefix.hasKids() || len(x.prefix.entries) > 0 {
		x.prefix.walk(channel, false, confirm)
	}
	if x.suffix.hasKids() {
		x.suffix.walk(channel, true, confirm)
	}
	if x.heads.lens != 0 {
		x.heads.visit(channel, false, confirm)
	}
	if x.tails.lens != 0 {
		x.tails.visit(channel, true, confirm)
	}
	if x.gramLens != 0 {
		x.confirmGrams(channel, confirm)
	}
	confirm(x.always)
}

// confirmGrams confirms the patterns filed under the grams of channel,
// each gram's patterns once. x.mu must be held.
func (x *patternIndex) confirmGrams(channel string, confirm func([]*patternEntry)) {
	var seen bucketSet
	defer seen.release()
	for i := range len(channel) {
		// The grams starting at i, one byte longer each step.
		var v uint64
		for n := 1; n <= maxGram && i+n <= len(channel); n++ {
			v |= uint64(channel[i+n-1]) << (8 * (n - 1))
			if x.gramLens&(1<<n) == 0 {
				continue
			}
			k := v | uint64(n)<<56
			if !x.mayHaveGram(k) {
				continue
			}
			if b := x.grams[k]; b != nil && seen.first(b) {
				confirm(b.entries)
			}
		}
	}
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
