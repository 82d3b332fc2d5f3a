package pubsub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
)

// refMatch is a plain port of Redis 7.0's stringmatchlen (src/util.c,
// nocase off): the reference the compiled matcher is checked against.
func refMatch(pattern, s string) bool {
	giveUp := false
	return refMatchNested(pattern, s, false, 0, &giveUp)
}

// refMatchFold is refMatch with nocase on.
func refMatchFold(pattern, s string) bool {
	giveUp := false
	return refMatchNested(pattern, s, true, 0, &giveUp)
}

// refLower is C's tolower on a (signed) char in the C locale.
func refLower(c int) int {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func refMatchNested(p, s string, nocase bool, nesting int, giveUp *bool) bool {
	if nesting > 1000 { // CVE-2024-31228
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if refMatchNested(p[1:], s, nocase, nesting+1, giveUp) {
					return true
				}
				if *giveUp {
					return false
				}
				s = s[1:]
			}
			*giveUp = true
			return false
		case '?':
			p, s = p[1:], s[1:]
		case '[':
			p = p[1:]
			negate := len(p) > 0 && p[0] == '^'
			if negate {
				p = p[1:]
			}
			hit := false
		class:
			for {
				switch {
				case len(p) >= 2 && p[0] == '\\':
					hit = hit || p[1] == s[0]
					p = p[2:]
				case len(p) == 0:
					break class
				case p[0] == ']':
					p = p[1:]
					break class
				case len(p) >= 3 && p[1] == '-':
					lo, hi, c := int(int8(p[0])), int(int8(p[2])), int(int8(s[0]))
					if lo > hi {
						lo, hi = hi, lo
					}
					if nocase {
						lo, hi, c = refLower(lo), refLower(hi), refLower(c)
					}
					hit = hit || (lo <= c && c <= hi)
					p = p[3:]
				default:
					hit = hit || p[0] == s[0] || (nocase && refLower(int(p[0])) == refLower(int(s[0])))
					p = p[1:]
				}
			}
			if hit == negate {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] && !(nocase && refLower(int(p[0])) == refLower(int(s[0]))) {
				return false
			}
			p, s = p[1:], s[1:]
		}
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}

type matchCase struct {
	name             string
	pattern, channel string
	want             bool
}

// matchCases pin down Redis glob behaviour; every one is also asked of a
// real redis-server by TestMatchAgainstRedis.
var matchCases = []matchCase{
	{"a star matches any suffix", "news:*", "news:korea", true},
	{"a star needs the literal prefix", "news:*", "news", false},
	{"a star matches the empty rest", "news:*", "news:", true},
	{"an empty channel never matches a star", "*", "", false},
	{"an empty channel matches the empty pattern", "", "", true},
	{"the empty pattern matches only the empty channel", "", "a", false},
	{"a lone star matches anything non-empty", "*", "a", true},
	{"a star in the middle", "a*z", "abcz", true},
	{"several stars backtrack", "*a*b*c", "xaybzc", true},
	{"a question mark is one byte", "h?llo", "hello", true},
	{"a question mark is not one rune", "?", "가", false},
	{"three question marks are one hangul syllable", "???", "가", true},
	{"a class", "h[ae]llo", "hallo", true},
	{"a negated class", "h[^e]llo", "hello", false},
	{"a negated class matches others", "h[^e]llo", "hallo", true},
	{"a range", "h[a-b]llo", "hbllo", true},
	{"a reversed range is swapped", "[z-a]", "m", true},
	{"an unclosed bracket alone matches nothing", "[", "[", false},
	{"an unclosed class ends at the pattern end", "[abc", "b", true},
	{"an unclosed negated empty class matches any byte", "[^", "z", true},
	{"an empty class matches nothing", "[]", "]", false},
	{"a bracket right after the opening one closes it", "[]]", "]", false},
	{"a negated empty class matches any byte", "[^]", "x", true},
	{"a range swallows the closing bracket: literal after", "[a-]x", "x", true},
	{"a range swallows the closing bracket: range part", "[a-]x", "^", true},
	{"a backslash last in a class is literal", "[\\", "\\", true},
	{"an escaped bracket in an unclosed class", "[\\]", "]", true},
	{"an escaped dash in a class is literal", "[a\\-z]", "-", true},
	{"an escaped dash is not a range", "[a\\-z]", "m", false},
	{"a trailing backslash is literal", "a\\", "a\\", true},
	{"an escaped star is literal", "\\*", "*", true},
	{"an escaped star matches only a star", "\\*", "a", false},
	{"an escaped question mark", "a\\?", "a?", true},
	{"high bytes sort below zero in ranges", "[\x80-\xff]", "a", false},
	{"a range to a high byte wraps below zero", "[a-\xff]", "\x01", true},
	{"a range to a high byte includes it", "[a-\xff]", "\xff", true},
	{"a range to a high byte excludes above a", "[a-\xff]", "b", false},
	{"hangul literal with a star", "news:서울*", "news:서울시", true},
	{"braces are literal in Redis", "{a,b}", "a", false},
	{"braces match themselves", "{a,b}", "{a,b}", true},
	{"bang does not negate", "[!a]", "b", false},
	{"bang is a class member", "[!a]", "!", true},
	{"a NUL byte is an ordinary byte", "a\x00*", "a\x00b", true},
	{"invalid UTF-8 in a literal prefix", "\xff*", "\xffabc", true},
	{"invalid UTF-8 matched by a star", "a*b", "a\xea\xb0b", true},
	{"1000 star groups still match", strings.Repeat("*a", 1000), strings.Repeat("a", 1000), true},
	{"1001 star groups never match (CVE-2024-31228)", strings.Repeat("*a", 1001), strings.Repeat("a", 1001), false},
	{"a trailing star group does not count", strings.Repeat("*a", 1000) + "*", strings.Repeat("a", 1001), true},
}

func TestMatchTable(t *testing.T) {
	for _, tc := range matchCases {
		t.Run(tc.name, func(t *testing.T) {
			got := compilePattern(tc.pattern).match(tc.channel)
			assert.Equal(t, tc.want, got, "match(%q, %q)", tc.pattern, tc.channel)
			assert.Equal(t, tc.want, refMatch(tc.pattern, tc.channel), "refMatch(%q, %q)", tc.pattern, tc.channel)
		})
	}
}

func TestMatcherKinds(t *testing.T) {
	cases := []struct {
		pattern string
		want    matcherKind
	}{
		{"news", matchExact},
		{"news:*", matchGlob},
		{"*:서울", matchGlob},
		{"*:서울:*", matchSegments},
		{"a*b*", matchSegments},
		{"a\\*b*", matchGlob},
		{"{a,b}*", matchGlob},
		{"\xff*", matchTokens}, // gobwas cannot express invalid UTF-8
		{"h?llo", matchTokens},
		{"[ab]*", matchTokens},
		{strings.Repeat("*a", 1001), matchNever},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, compilePattern(tc.pattern).kind, "kind of %q", tc.pattern)
	}
}

func FuzzMatch(f *testing.F) {
	for _, tc := range matchCases {
		if len(tc.pattern) < 100 {
			f.Add(tc.pattern, tc.channel)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		if len(pattern) > 64 || len(channel) > 64 {
			return // keep the reference's recursion cheap
		}
		want := refMatch(pattern, channel)
		if got := compilePattern(pattern).match(channel); got != want {
			t.Fatalf("match(%q, %q) = %v; want %v (kind %d)", pattern, channel, got, want, compilePattern(pattern).kind)
		}
	})
}

func TestMatchFold(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"MAXCLIENTS", "maxclients", true},
		{"max*", "maxclients", true},
		{"MAX[C]LIENTS", "maxclients", true},
		{"m[^A]x*", "maxclients", false},
		{"[\\M]axclients", "maxclients", false}, // escaped in a class: case-sensitive
		{"\\Maxclients", "maxclients", true},    // escaped outside: folded
		{"[Z-a]x", "ax", false},                 // swapped before lowering: 'z'..'a' is empty
		{"[a-Z]x", "ax", false},
		{"[A-C]x", "bx", true},
		{"[a-c]x", "BX", true},
		{"TIME?UT", "timeout", true},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, MatchFold(tc.pattern, tc.name), "MatchFold(%q, %q)", tc.pattern, tc.name)
		assert.Equal(t, tc.want, refMatchFold(tc.pattern, tc.name), "refMatchFold(%q, %q)", tc.pattern, tc.name)
	}
}

func FuzzMatchFold(f *testing.F) {
	f.Add("MAX[a-Z]*", "maxclients")
	f.Add("[\\A]", "a")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 64 {
			return
		}
		if got, want := MatchFold(pattern, name), refMatchFold(pattern, name); got != want {
			t.Fatalf("MatchFold(%q, %q) = %v; want %v", pattern, name, got, want)
		}
		if got, want := Match(pattern, name), refMatch(pattern, name); got != want {
			t.Fatalf("Match(%q, %q) = %v; want %v", pattern, name, got, want)
		}
	})
}

// genPiece strings pieces together: random byte strings made of the bytes
// that matter to the glob, whole and partial UTF-8 sequences included.
func genPiece(r *rand.Rand, pieces []string, maxPieces int) string {
	var b strings.Builder
	for range r.IntN(maxPieces + 1) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

var (
	patternPieces = []string{"a", "b", "c", ":", "*", "*", "?", "[", "]", "^", "-", "\\", "가", "\xea", "\xb0", "\xff", "\x80", "{", ","}
	channelPieces = []string{"a", "b", "c", ":", "[", "]", "^", "-", "\\", "*", "?", "가", "\xea", "\xb0", "\x80", "\xff", "{", ","}
)

// TestMatchAgainstRedis asks a real redis-server which patterns match
// which channels: one connection PSUBSCRIBEs every pattern, and each
// PUBLISH returns how many matched while the pmessages say which.
func TestMatchAgainstRedis(t *testing.T) {
	addr := redistest.Start(t)
	r := rand.New(rand.NewPCG(1, 2))

	patternSet := map[string]bool{}
	channelSet := map[string]bool{}
	for _, tc := range matchCases {
		patternSet[tc.pattern] = true
		channelSet[tc.channel] = true
	}
	for len(patternSet) < 500 {
		patternSet[genPiece(r, patternPieces, 7)] = true
	}
	for len(channelSet) < 120 {
		channelSet[genPiece(r, channelPieces, 6)] = true
	}
	patterns := slices.Sorted(func(yield func(string) bool) {
		for p := range patternSet {
			if !yield(p) {
				return
			}
		}
	})
	kinds := map[matcherKind]int{}
	compiled := make([]*matcher, len(patterns))
	for i, p := range patterns {
		compiled[i] = compilePattern(p)
		kinds[compiled[i].kind]++
	}
	for _, k := range []matcherKind{matchExact, matchGlob, matchSegments, matchTokens, matchNever} {
		require.NotZero(t, kinds[k], "the generated patterns must exercise matcher kind %d", k)
	}

	sub := redistest.Dial(t, addr)
	sub.Send(append([]string{"PSUBSCRIBE"}, patterns...)...)
	for range patterns {
		v := sub.Read()
		require.Equal(t, "psubscribe", v.Elems[0].Str)
	}
	pub := redistest.Dial(t, addr)

	pairs, disagreements := 0, 0
	for ch := range channelSet {
		v := pub.Do("PUBLISH", ch, "x")
		require.Equal(t, byte(':'), v.Type, "PUBLISH reply %v", v)
		redisSaid := map[string]bool{}
		for range v.Int {
			m := sub.Read()
			require.Equal(t, "pmessage", m.Elems[0].Str)
			redisSaid[m.Elems[1].Str] = true
		}
		for i, p := range patterns {
			pairs++
			if got := compiled[i].match(ch); got != redisSaid[p] {
				disagreements++
				t.Errorf("match(%q, %q) = %v; redis-server says %v", p, ch, got, redisSaid[p])
			}
		}
	}
	t.Logf("checked %d (pattern, channel) pairs against redis-server: %d disagreements; patterns by matcher kind: exact %d, gobwas %d, segments %d, byte-wise %d, never %d",
		pairs, disagreements, kinds[matchExact], kinds[matchGlob], kinds[matchSegments], kinds[matchTokens], kinds[matchNever])
}

// collect returns the member lists of the patterns matching channel.
func (x *patternIndex) collect(channel string, dst [][]*member) [][]*member {
	x.forEachMatch(channel, func(ms []*member) { dst = append(dst, ms) })
	return dst
}

// TestPatternIndexFindsExactlyTheMatches files thousands of generated
// patterns of every shape and checks that the index finds, for each
// channel, exactly the patterns a linear scan with refMatch finds. Then it
// removes them all and checks that nothing is left behind.
func TestPatternIndexFindsExactlyTheMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := newPatternIndex()
	byPattern := map[string]*member{}
	for len(byPattern) < 3000 {
		p := genPiece(r, patternPieces, 8)
		if byPattern[p] == nil {
			byPattern[p] = &member{name: p}
			x.add(byPattern[p])
		}
	}
	filed := map[anchorKind]int{}
	for _, e := range x.entries {
		filed[e.filed.kind]++
	}
	for _, k := range []anchorKind{anchorExact, anchorHead, anchorTail, anchorHeadText, anchorTailText, anchorGram, anchorAlways} {
		require.NotZero(t, filed[k], "no generated pattern was filed under anchor kind %d", k)
	}
	for range 2000 {
		ch := genPiece(r, channelPieces, 8)
		var want []string
		for p := range byPattern {
			if refMatch(p, ch) {
				want = append(want, p)
			}
		}
		var got []string
		for _, ms := range x.collect(ch, nil) {
			got = append(got, ms[0].name)
		}
		require.ElementsMatch(t, want, got, "patterns matching %q", ch)
	}
	for _, mb := range byPattern {
		x.remove(mb)
	}
	assert.Zero(t, x.len())
	assert.True(t, x.prefix.empty(), "prefix trie pruned")
	assert.True(t, x.suffix.empty(), "suffix trie pruned")
	assert.Equal(t, textEnds{}, x.heads)
	assert.Equal(t, textEnds{}, x.tails)
	assert.Empty(t, x.grams)
	assert.Nil(t, x.filter)
	assert.Zero(t, x.gramLens)
	assert.Empty(t, x.always)
	assert.Zero(t, x.never)
}

// A pattern filed before others shared its anchor is filed anew once they
// do: the first of many "*:<i>:*:events" would otherwise stay under the
// tail ":events", the first "tenant:*:<i>" under the head "tenant:", each a
// candidate on every publish to such a channel.
func TestFirstPatternLeavesAnAnchorOthersShare(t *testing.T) {
	for _, shape := range []string{"*:%d:*:events", "tenant:*:%d"} {
		x := newPatternIndex()
		for i := range 100 {
			x.add(&member{name: fmt.Sprintf(shape, i)})
		}
		for p, e := range x.entries {
			switch e.filed.kind {
			case anchorHeadText:
				t.Errorf("%s is filed under its head, which all share", p)
			case anchorTailText:
				assert.NotEqual(t, ":events", e.filed.text, "%s is filed under the tail all share", p)
			case anchorGram:
				assert.NotEqual(t, gramKey(":events"), e.filed.gram, "%s is filed under the gram all share", p)
				assert.NotEqual(t, gramKey("tenant:"), e.filed.gram, "%s is filed under the gram all share", p)
			}
		}
	}
}

// A huge pattern of '?' and literals is kept in four bytes a byte of
// pattern (its matcher's ops), not in sixteen (its tokens): an 8 MB one
// kept 128 MB, where Redis keeps the pattern alone.
func TestHugePatternIsKeptCompact(t *testing.T) {
	p := strings.Repeat("a?", 2<<20) // 4 MB
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := compilePattern(p)
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, kept, int64(6*len(p)), "bytes kept for a %d-byte pattern", len(p))
	assert.True(t, m.match(strings.Repeat("ab", 2<<20)))
	assert.False(t, m.match(strings.Repeat("ba", 2<<20)))
}

// FuzzMatchSegments: patterns of literals and stars with more than one star,
// or too long for gobwas/glob, are matched by segments; here every such
// pattern is, whatever its length or star count.
func FuzzMatchSegments(f *testing.F) {
	for _, s := range [][2]string{{"a*b*c", "abc"}, {"*ab*ab", "abab"}, {`a\*b*`, "a*bc"}, {"**", "x"}, {"ab", "ab"}, {"*a*", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		if len(pattern) > 64 || len(channel) > 64 || strings.ContainsAny(pattern, "?[") {
			return
		}
		m := compilePatternWith(pattern, 0)
		if want := refMatch(pattern, channel); m.match(channel) != want {
			t.Fatalf("match(%q, %q) = %v; want %v (kind %d)", pattern, channel, !want, want, m.kind)
		}
	})
}

// The tokens of a pattern are counted before they are made, so that a huge
// pattern takes one allocation: the count must be exact.
func FuzzCountTokens(f *testing.F) {
	f.Add("a*[b-c]\\x**?[^")
	f.Fuzz(func(t *testing.T, pattern string) {
		if got, want := countTokens(pattern), len(tokenize(pattern)); got != want {
			t.Fatalf("countTokens(%q) = %d; tokenize made %d", pattern, got, want)
		}
	})
}

// A PSUBSCRIBE compiles its pattern with no lock held: while a
// multi-megabyte pattern is being compiled, held there on purpose, publishes
// that go through the pattern index still complete, and once the
// subscription is live the huge pattern matches like any other.
func TestHugePatternCompilesWithoutBlockingPublish(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t, WithBufferSize(4))
	small, err := b.PSubscribe(ctx, "news:*")
	require.NoError(t, err)
	huge := "news:" + strings.Repeat("a?", 2<<20) + "*"

	compiling, release := make(chan struct{}), make(chan struct{})
	b.patterns.mu.Lock()
	b.patterns.compiling = func(p string) {
		if p == huge {
			close(compiling)
			<-release
		}
	}
	b.patterns.mu.Unlock()

	s, err := b.NewSubscription(WithBufferSize(4))
	require.NoError(t, err)
	subscribed := make(chan error, 1)
	go func() { subscribed <- s.PSubscribe(ctx, huge) }()
	<-compiling

	published := make(chan int, 1)
	go func() {
		n, _ := b.Publish(ctx, "news:x", "during")
		published <- n
	}()
	select {
	case n := <-published:
		assert.Equal(t, 1, n, "the small pattern received it")
	case <-time.After(10 * time.Second): // a deadline for a hang, not a measure of speed
		close(release)
		<-published
		t.Fatal("Publish waited for the compilation of another subscription's pattern")
	}
	close(release)
	require.NoError(t, <-subscribed)
	assert.Equal(t, "during", (<-small.Channel()).Payload)

	n, err := b.Publish(ctx, "news:"+strings.Repeat("ab", 2<<20)+"tail", "after")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "both patterns match")
	assert.Equal(t, huge, (<-s.Channel()).Pattern)
}

// A compiled Pattern matches as Match does, once compiled; the zero
// Pattern is the pattern "".
func TestCompiledPattern(t *testing.T) {
	for _, tc := range matchCases {
		p := CompilePattern(tc.pattern)
		if got := p.Match(tc.channel); got != Match(tc.pattern, tc.channel) {
			t.Errorf("CompilePattern(%q).Match(%q) = %v; Match says %v", tc.pattern, tc.channel, got, !got)
		}
		if p.String() != tc.pattern {
			t.Errorf("String() = %q; want %q", p.String(), tc.pattern)
		}
	}
	var zero Pattern
	if !zero.Match("") || zero.Match("a") || zero.String() != "" {
		t.Error("the zero Pattern is not the pattern \"\"")
	}
}
