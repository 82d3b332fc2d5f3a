package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// Limits Redis applies to requests (src/server.h, src/networking.c).
const (
	// MaxInlineSize is PROTO_INLINE_MAX_SIZE: the longest inline command,
	// and the longest "*<n>" or "$<n>" line.
	MaxInlineSize = 64 << 10
	// MaxUnauthMultibulk and MaxUnauthBulk are the limits Redis applies
	// before a client has authenticated.
	MaxUnauthMultibulk = 10
	MaxUnauthBulk      = 16384
)

// ErrQueryBufferLimit is returned by ReadCommand when a command is longer
// than RequestReader.MaxQueryBuffer; Redis closes such a client without a
// reply.
var ErrQueryBufferLimit = errors.New("resp: command over the query buffer limit")

// ProtocolError is a malformed request. Msg is the text Redis sends after
// "-ERR ", and the connection is then closed.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return e.Msg }

func protoErr(msg string) error { return &ProtocolError{Msg: "Protocol error: " + msg} }

// maxKeptArgs is the largest argument slice kept for reuse between
// commands.
const maxKeptArgs = 1024

// RequestReader reads commands as Redis reads them from a client: RESP
// arrays of bulk strings, or inline commands (what telnet and redis-cli's
// inline mode send), from a reader it waits on. It is the reference the
// server's Decoder is fuzzed against: written as a plain reading parser,
// each of its replies and errors follows Redis's code line by line. It is
// not safe for concurrent use.
type RequestReader struct {
	br Input
	// Authenticated lifts the request limits Redis applies to clients that
	// have not authenticated yet.
	Authenticated bool
	// MaxBulkLen is proto-max-bulk-len; 0 means 512 MB.
	MaxBulkLen int64
	// MaxQueryBuffer bounds the bytes of one command, as Redis's
	// client-query-buffer-limit; 0 means no limit.
	MaxQueryBuffer int64

	args []string // reused by ReadCommand
}

// NewRequestReader returns a RequestReader reading from r, with a read
// buffer of its own, made on the first read.
func NewRequestReader(r io.Reader) *RequestReader {
	rr := &RequestReader{Authenticated: true}
	rr.br.src = r
	return rr
}

// Buffered returns how many bytes are read and not yet parsed.
func (r *RequestReader) Buffered() int { return r.br.Buffered() }

// ReadCommand returns the next command's arguments. An empty command (an
// empty inline line or "*0") returns an empty slice and no error, as Redis
// ignores it. A malformed request returns a *ProtocolError. The slice is
// reused by the next call; the strings are not, but the arguments of one
// command may share one allocation, so a caller that keeps one argument
// long after the others (a channel name it subscribes, say) clones it.
func (r *RequestReader) ReadCommand() ([]string, error) {
	// The previous command is done with: let its strings go, and drop a
	// slice grown for a huge command rather than keep it for every next.
	if cap(r.args) > maxKeptArgs {
		r.args = nil
	} else {
		clear(r.args)
	}
	first, err := r.br.Peek(1)
	if err != nil {
		return nil, err
	}
	if first[0] == '*' {
		return r.readMultibulk()
	}
	return r.readInline()
}

// line reads up to and including '\n' and returns it without the '\n',
// failing with tooBig when more than MaxInlineSize bytes come first.
func (r *RequestReader) line(tooBig string) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxInlineSize && (err != nil || len(buf)-1 > MaxInlineSize) {
			return nil, protoErr(tooBig)
		}
		if err == nil {
			return buf[:len(buf)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func (r *RequestReader) readInline() ([]string, error) {
	line, err := r.line("too big inline request")
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	args, ok := SplitArgs(string(line))
	if !ok {
		return nil, protoErr("unbalanced quotes in request")
	}
	return args, nil
}

// countLine reads a "*<n>" or "$<n>" line and returns its number, and
// the length of its text. Redis finds its end by the first '\r' and skips
// the byte after it unseen, so this does too. The common line, within the
// read buffer, is parsed where it lies, without a copy.
func (r *RequestReader) countLine(tooBig string) (n int64, textLen int, ok bool, err error) {
	line, err := r.br.ReadSlice('\r')
	var long []byte // a line longer than the read buffer, or cut by it
	for errors.Is(err, bufio.ErrBufferFull) {
		long = append(long, line...)
		if len(long)-1 > MaxInlineSize {
			return 0, 0, false, protoErr(tooBig)
		}
		line, err = r.br.ReadSlice('\r')
	}
	if long != nil {
		line = append(long, line...)
	}
	if len(line)-1 > MaxInlineSize {
		return 0, 0, false, protoErr(tooBig)
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, false, err
	}
	text := line[1 : len(line)-1]
	n, ok = parseInt(text)
	if _, err := r.br.ReadByte(); err != nil { // the '\n', unchecked
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, false, err
	}
	return n, len(text), ok, nil
}

func (r *RequestReader) readMultibulk() ([]string, error) {
	if args, ok := r.parseBuffered(); ok {
		return args, nil
	}
	n, textLen, ok, err := r.countLine("too big mbulk count string")
	if err != nil {
		return nil, err
	}
	if !ok || n > 1<<31-1 {
		return nil, protoErr("invalid multibulk length")
	}
	if !r.Authenticated && n > MaxUnauthMultibulk {
		return nil, protoErr("unauthenticated multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	maxBulk := r.MaxBulkLen
	if maxBulk == 0 {
		maxBulk = MaxBulkLen
	}
	args := r.args[:0]
	total := int64(textLen + 3)
	for range n {
		b, err := r.br.Peek(1)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		if b[0] != '$' {
			return nil, protoErr("expected '$', got '" + string(b[0]) + "'")
		}
		size, sizeLen, ok, err := r.countLine("too big bulk count string")
		if err != nil {
			return nil, err
		}
		if !ok || size < 0 || size > maxBulk {
			return nil, protoErr("invalid bulk length")
		}
		if !r.Authenticated && size > MaxUnauthBulk {
			return nil, protoErr("unauthenticated bulk length")
		}
		total += int64(sizeLen) + 3 + size + 2
		if r.MaxQueryBuffer > 0 && total > r.MaxQueryBuffer {
			return nil, ErrQueryBufferLimit
		}
		// The data, then 2 bytes Redis skips unchecked.
		if peeked, err := r.br.Peek(int(size) + 2); err == nil {
			args = append(args, string(peeked[:size]))
			_, _ = r.br.Discard(int(size) + 2)
			continue
		}
		arg, err := r.readLargeBulk(size)
		if err != nil {
			return nil, err
		}
		args = append(args, arg)
	}
	r.args = args
	return args, nil
}

// parseBuffered parses a command that lies whole in the read buffer, the
// common case, in one pass and with one allocation for all its arguments.
// It reports false, consuming nothing, for anything else: a command cut by
// the buffer's end, an error, a limit reached, a line Redis would read
// differently than this pass does; readMultibulk then reads it the slow
// way, which is the reference for every reply and error.
func (r *RequestReader) parseBuffered() ([]string, bool) {
	buf, _ := r.br.Peek(r.br.Buffered())
	// number reads the "*<n>" or "$<n>" line at buf[i], ending at the first
	// '\r' and skipping the byte after it, as countLine does.
	number := func(i int) (n int64, next int, ok bool) {
		const longest = 20 // digits of int64 and a sign: longer is an error countLine reports
		end := bytes.IndexByte(buf[i+1:min(len(buf), i+2+longest)], '\r')
		if end < 0 || i+1+end+1 >= len(buf) {
			return 0, 0, false
		}
		n, ok = parseInt(buf[i+1 : i+1+end])
		return n, i + 1 + end + 2, ok
	}
	n, pos, ok := number(0)
	if !ok || n <= 0 || n > int64(len(buf)) || (!r.Authenticated && n > MaxUnauthMultibulk) {
		return nil, false
	}
	maxBulk := r.MaxBulkLen
	if maxBulk == 0 {
		maxBulk = MaxBulkLen
	}
	// First pass: check every bulk and note where its data lies.
	type span struct{ from, to int }
	var stack [8]span
	spans := stack[:0]
	dataFrom := pos
	for range n {
		if pos >= len(buf) || buf[pos] != '$' {
			return nil, false
		}
		size, next, ok := number(pos)
		if !ok || size < 0 || size > maxBulk || (!r.Authenticated && size > MaxUnauthBulk) {
			return nil, false
		}
		if int64(len(buf)-next) < size+2 {
			return nil, false
		}
		spans = append(spans, span{next, next + int(size)})
		pos = next + int(size) + 2
	}
	if r.MaxQueryBuffer > 0 && int64(pos) > r.MaxQueryBuffer {
		return nil, false
	}
	// One string for the whole command, each argument a slice of it.
	whole := string(buf[dataFrom:pos])
	args := r.args[:0]
	for _, sp := range spans {
		args = append(args, whole[sp.from-dataFrom:sp.to-dataFrom])
	}
	r.args = args
	_, _ = r.br.Discard(pos)
	return args, true
}

// readLargeBulk reads a bulk string longer than the read buffer, and the
// two bytes after it. A declared length is a claim, not an allocation: the
// string grows with what arrives, so a client that declares 512 MB and
// sends little costs little (Redis too grows its query buffer as the bytes
// come).
func (r *RequestReader) readLargeBulk(size int64) (string, error) {
	var b strings.Builder
	b.Grow(int(min(size, 2*ReadBufferSize)))
	if _, err := io.CopyN(&b, &r.br, size); err != nil {
		return "", unexpectedEOF(err)
	}
	if _, err := r.br.Discard(2); err != nil {
		return "", unexpectedEOF(err)
	}
	return b.String(), nil
}

// ParseInt parses a decimal integer as Redis's string2ll does: an optional
// '-', no '+', no leading zeros, no spaces, within int64.
func ParseInt(s string) (int64, bool) { return parseInt(s) }

// parseInt is ParseInt for a string or the bytes of one, so that a count
// line is parsed in the read buffer.
func parseInt[T string | []byte](s T) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	if len(s) == 1 && s[0] == '0' {
		return 0, true
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<64-1)/10 {
			return 0, false
		}
		v *= 10
		if v > 1<<64-1-uint64(c-'0') {
			return 0, false
		}
		v += uint64(c - '0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// SplitArgs splits an inline command line as Redis's sdssplitargs does:
// arguments separated by spaces; "double quotes" with \n \r \t \b \a \\ \"
// and \xHH escapes; 'single quotes' with \' only. A closing quote must be
// followed by a space or the end. A NUL byte ends the line. ok is false
// for unbalanced quotes.
func SplitArgs(line string) (args []string, ok bool) {
	if nul := strings.IndexByte(line, 0); nul >= 0 {
		line = line[:nul] // sdssplitargs reads a C string
	}
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			if args == nil {
				args = []string{}
			}
			return args, true
		}
		var cur strings.Builder
		inDouble, inSingle, done := false, false, false
		for !done {
			if inDouble {
				switch {
				case i >= len(line):
					return nil, false
				case line[i] == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					cur.WriteByte(unhex(line[i+2])<<4 | unhex(line[i+3]))
					i += 3
				case line[i] == '\\' && i+1 < len(line):
					i++
					cur.WriteByte(unescape(line[i]))
				case line[i] == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, false
					}
					done = true
				default:
					cur.WriteByte(line[i])
				}
			} else if inSingle {
				switch {
				case i >= len(line):
					return nil, false
				case line[i] == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur.WriteByte('\'')
				case line[i] == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return nil, false
					}
					done = true
				default:
					cur.WriteByte(line[i])
				}
			} else {
				switch {
				case i >= len(line):
					done = true
				case line[i] == ' ' || line[i] == '\n' || line[i] == '\r' || line[i] == '\t':
					done = true // unlike the blanks between arguments, not \v or \f
				case line[i] == '"':
					inDouble = true
				case line[i] == '\'':
					inSingle = true
				default:
					cur.WriteByte(line[i])
				}
			}
			if i < len(line) {
				i++
			}
		}
		args = append(args, cur.String())
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
