package resp

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeAll feeds data to a Decoder in chunks of the sizes given, in turn
// (a size of 0 feeds nothing, as a wake-up with no bytes), and returns the
// commands it parsed and the error it stopped on, as readAll does for a
// RequestReader.
func decodeAll(d *Decoder, data []byte, sizes []byte) (cmds [][]string, last string) {
	for i := 0; ; i++ {
		for {
			args, ok, err := d.Next()
			if err != nil {
				return cmds, err.Error()
			}
			if !ok {
				break
			}
			if len(cmds) == 100 {
				return cmds, ""
			}
			cmds = append(cmds, slices.Clone(args))
		}
		if len(data) == 0 {
			return cmds, "EOF"
		}
		n := len(data)
		if len(sizes) > 0 {
			n = int(sizes[i%len(sizes)])
		}
		space := d.Space()
		n = copy(space[:min(n, len(space))], data)
		d.Wrote(n)
		data = data[n:]
	}
}

// readAll reads data with a RequestReader, with the Decoder's settings.
func readAll(data []byte, authenticated bool, maxBulk, maxQuery int64) (cmds [][]string, last string) {
	r := NewRequestReader(bytes.NewReader(data))
	r.Authenticated, r.MaxBulkLen, r.MaxQueryBuffer = authenticated, maxBulk, maxQuery
	for range 101 {
		args, err := r.ReadCommand()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return cmds, "EOF"
		}
		if err != nil {
			return cmds, err.Error()
		}
		if len(cmds) == 100 {
			return cmds, ""
		}
		cmds = append(cmds, slices.Clone(args))
	}
	return cmds, ""
}

func TestDecoderReadsAsRequestReader(t *testing.T) {
	big := "*2\r\n$7\r\nPUBLISH\r\n$200000\r\n" + strings.Repeat("x", 200000) + "\r\n"
	cases := []struct {
		name  string
		input string
	}{
		{"a pipeline", "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\nPING\r\n*1\r\n$4\r\nPING\r\n"},
		{"a command larger than the buffer", big + "PING\r\n"},
		{"empty commands", "\r\n*0\r\n*-1\r\nPING\r\n"},
		{"a protocol error after a command", "PING\r\n*1\r\n+foo\r\n"},
		{"an inline request over 64 KiB", strings.Repeat("a", MaxInlineSize+1)},
		{"a multibulk count line over 64 KiB", "*" + strings.Repeat("1", MaxInlineSize+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCmds, wantErr := readAll([]byte(tc.input), true, 0, 0)
			for _, sizes := range [][]byte{nil, {1}, {7, 0, 200}} {
				gotCmds, gotErr := decodeAll(NewDecoder(nil), []byte(tc.input), sizes)
				assert.Equal(t, wantCmds, gotCmds, "sizes %v", sizes)
				assert.Equal(t, wantErr, gotErr, "sizes %v", sizes)
			}
		})
	}
}

func TestDecoderHoldsNoBufferWhenIdle(t *testing.T) {
	pool := &sync.Pool{New: func() any { return new(ReadBuffer) }}
	d := NewDecoder(pool)
	assert.Equal(t, 0, d.Held())
	in := []byte("*1\r\n$4\r\nPING\r\n")
	d.Wrote(copy(d.Space(), in[:5]))
	_, ok, err := d.Next()
	require.NoError(t, err)
	require.False(t, ok)
	assert.Equal(t, ReadBufferSize, d.Held(), "a command cut in two keeps its buffer")
	d.Wrote(copy(d.Space(), in[5:]))
	args, ok, err := d.Next()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []string{"PING"}, args)
	assert.Equal(t, 0, d.Held(), "the buffer goes back once everything is parsed")
}

func TestDecoderGrowsWithTheBytesNotTheClaim(t *testing.T) {
	d := NewDecoder(nil)
	d.Wrote(copy(d.Space(), "*1\r\n$500000000\r\nabc"))
	_, ok, err := d.Next()
	require.NoError(t, err)
	require.False(t, ok)
	assert.Equal(t, ReadBufferSize, d.Held())
}

// FuzzDecoderReadsAsRequestReader holds the Decoder to the RequestReader,
// the reference for every reply and error, however the input is cut.
func FuzzDecoderReadsAsRequestReader(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n*1\r\n$4\r\nPING\r\n", "*1\r\n$3\r\nfooXY*1\r\n$0\r\n\r\n",
		"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nhi\r\n", "*1\r\n$-1\r\n", "*01\r\n", "*1\n\r\n$1\r\na\r\n",
		"*1\r\n$1\rXa\r\n", "*12\r\n", "*2\r\n$20000\r\n", "*1\r\n+foo\r\n", "*99999999999999999999\r\n",
		`set 'a b' "c\x41"` + "\n", "\"abc\r\n",
	} {
		f.Add([]byte(s), []byte{3, 0, 1}, true, int64(0), int64(0))
	}
	f.Fuzz(func(t *testing.T, data, sizes []byte, authenticated bool, maxBulk, maxQuery int64) {
		maxBulk, maxQuery = max(maxBulk, 0), max(maxQuery, 0)
		wantCmds, wantErr := readAll(data, authenticated, maxBulk, maxQuery)
		d := NewDecoder(&sync.Pool{New: func() any { return new(ReadBuffer) }})
		d.Authenticated, d.MaxBulkLen, d.MaxQueryBuffer = authenticated, maxBulk, maxQuery
		if len(sizes) > 0 && !slices.ContainsFunc(sizes, func(b byte) bool { return b > 0 }) {
			sizes = nil // only empty chunks would never end
		}
		gotCmds, gotErr := decodeAll(d, data, sizes)
		require.Equal(t, wantCmds, gotCmds)
		require.Equal(t, wantErr, gotErr)
	})
}
