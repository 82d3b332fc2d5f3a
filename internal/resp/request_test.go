package resp

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadCommand(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		want    []string
		wantErr string // the text after "-ERR "
	}{
		{"a multibulk command", "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", []string{"foo", "bar"}, ""},
		{"binary-safe bulk strings", "*1\r\n$4\r\na\r\nb\r\n", []string{"a\r\nb"}, ""},
		{"an empty bulk string", "*1\r\n$0\r\n\r\n", []string{""}, ""},
		{"Redis skips the two bytes after bulk data unchecked", "*1\r\n$3\r\nfooXY", []string{"foo"}, ""},
		{"an inline command", "PING\r\n", []string{"PING"}, ""},
		{"an inline command ended by a bare newline", "PING\n", []string{"PING"}, ""},
		{"inline quoting as sdssplitargs", ` set  'a b'  "c\nd" "\x41" 'it\'s'` + "\r\n", []string{"set", "a b", "c\nd", "A", "it's"}, ""},
		{"an empty inline line is ignored", "\r\n", []string{}, ""},
		{"*0 is ignored", "*0\r\n", nil, ""},
		{"*-1 is ignored", "*-1\r\n", nil, ""},
		{"a multibulk length that is not a number", "*abc\r\n", nil, "Protocol error: invalid multibulk length"},
		{"a multibulk length with a leading zero", "*01\r\n", nil, "Protocol error: invalid multibulk length"},
		{"a multibulk length over INT_MAX", "*2147483648\r\n", nil, "Protocol error: invalid multibulk length"},
		{"a bulk without its dollar", "*1\r\n+foo\r\n", nil, "Protocol error: expected '$', got '+'"},
		{"a negative bulk length", "*1\r\n$-1\r\n", nil, "Protocol error: invalid bulk length"},
		{"a bulk length over proto-max-bulk-len", "*1\r\n$536870913\r\n", nil, "Protocol error: invalid bulk length"},
		{"unbalanced double quotes", "\"abc\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"a closing quote not followed by a space", "\"a\"b\r\n", nil, "Protocol error: unbalanced quotes in request"},
		{"an inline request over 64 KiB", strings.Repeat("a", MaxInlineSize+1), nil, "Protocol error: too big inline request"},
		{"a multibulk count line over 64 KiB", "*" + strings.Repeat("1", MaxInlineSize+1), nil, "Protocol error: too big mbulk count string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRequestReader(strings.NewReader(tc.input))
			got, err := r.ReadCommand()
			if tc.wantErr != "" {
				var pe *ProtocolError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, tc.wantErr, pe.Msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestReadCommandUnauthenticatedLimits(t *testing.T) {
	r := NewRequestReader(strings.NewReader("*11\r\n"))
	r.Authenticated = false
	_, err := r.ReadCommand()
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Protocol error: unauthenticated multibulk length", pe.Msg)

	r = NewRequestReader(strings.NewReader("*1\r\n$16385\r\n"))
	r.Authenticated = false
	_, err = r.ReadCommand()
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Protocol error: unauthenticated bulk length", pe.Msg)
}

func TestReadCommandTruncatedInputIsUnexpectedEOF(t *testing.T) {
	for _, in := range []string{"*2\r\n$3\r\nfoo\r\n", "*1\r\n$3\r\nfo", "*1\r\n$3", "PING"} {
		_, err := NewRequestReader(strings.NewReader(in)).ReadCommand()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "input %q", in)
	}
	_, err := NewRequestReader(strings.NewReader("")).ReadCommand()
	assert.ErrorIs(t, err, io.EOF)
}

// A declared bulk length is not an allocation: 512 MB declared and 70 KB
// sent must cost about what was sent.
func TestDeclaredBulkLengthIsNotAnAllocation(t *testing.T) {
	in := "*2\r\n$4\r\nECHO\r\n$536870912\r\n" + strings.Repeat("x", 70<<10)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewRequestReader(strings.NewReader(in)).ReadCommand()
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(4<<20), "reading 70 KB of a declared 512 MB bulk allocated %d bytes", allocated)
}

// The memory of a command with very many arguments is released once the
// next command is read: neither the slice nor its strings are kept.
func TestHugeCommandIsNotKept(t *testing.T) {
	many := make([]string, 100_001)
	many[0] = "SUBSCRIBE"
	for i := 1; i < len(many); i++ {
		many[i] = "channel"
	}
	in := append(AppendCommand(nil, many...), AppendCommand(nil, "PING")...)
	r := NewRequestReader(bytes.NewReader(in))
	args, err := r.ReadCommand()
	require.NoError(t, err)
	require.Len(t, args, len(many))
	args, err = r.ReadCommand()
	require.NoError(t, err)
	assert.Equal(t, []string{"PING"}, args)
	assert.LessOrEqual(t, cap(r.args), maxKeptArgs, "argument slice kept after a huge command")
}

func TestLargeBulkIsReadWhole(t *testing.T) {
	big := strings.Repeat("0123456789", 100_000) // past the 64 KB read buffer
	args, err := NewRequestReader(bytes.NewReader(AppendCommand(nil, "ECHO", big, "x"))).ReadCommand()
	require.NoError(t, err)
	assert.Equal(t, []string{"ECHO", big, "x"}, args)
}

// FuzzRequestReader: arbitrary bytes never panic the reader, and every
// command it reads survives an encode/read round trip unchanged.
func FuzzRequestReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", "PING\r\n", `set 'a b' "c\x41"` + "\n",
		"*1\r\n$-1\r\n", "*abc\r\n", "\"abc\r\n", "*3\r\n$1\r\na\r\n$0\r\n\r\n$2\r\n\x00\xff\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewRequestReader(bytes.NewReader(data))
		for range 100 {
			args, err := r.ReadCommand()
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if len(args) == 0 {
				continue
			}
			again, err := NewRequestReader(bytes.NewReader(AppendCommand(nil, args...))).ReadCommand()
			if err != nil {
				t.Fatalf("re-reading %q: %v", args, err)
			}
			if len(again) != len(args) {
				t.Fatalf("round trip %q -> %q", args, again)
			}
			for i := range args {
				if again[i] != args[i] {
					t.Fatalf("round trip %q -> %q", args, again)
				}
			}
		}
	})
}

// FuzzWholeCommandsReadAsByteByByte: a command found whole in the read
// buffer is parsed in one pass; the same bytes arriving one at a time go
// the general way. Both give the same commands and the same error, under
// any limits.
func FuzzWholeCommandsReadAsByteByByte(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n*1\r\n$4\r\nPING\r\n", "*1\r\n$3\r\nfooXY*1\r\n$0\r\n\r\n",
		"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nhi\r\n", "*1\r\n$-1\r\n", "*01\r\n", "*1\n\r\n$1\r\na\r\n",
		"*1\r\n$1\rXa\r\n", "*12\r\n", "*2\r\n$20000\r\n", "*1\r\n+foo\r\n", "*99999999999999999999\r\n",
	} {
		f.Add([]byte(s), true, int64(0), int64(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, authenticated bool, maxBulk, maxQuery int64) {
		read := func(src io.Reader) (cmds [][]string, last string) {
			r := NewRequestReader(src)
			r.Authenticated, r.MaxBulkLen, r.MaxQueryBuffer = authenticated, max(maxBulk, 0), max(maxQuery, 0)
			for range 100 {
				args, err := r.ReadCommand()
				if err != nil {
					return cmds, err.Error()
				}
				cmds = append(cmds, slices.Clone(args))
			}
			return cmds, ""
		}
		wantCmds, wantErr := read(iotest.OneByteReader(bytes.NewReader(data)))
		gotCmds, gotErr := read(bytes.NewReader(data))
		require.Equal(t, wantCmds, gotCmds)
		require.Equal(t, wantErr, gotErr)
	})
}
