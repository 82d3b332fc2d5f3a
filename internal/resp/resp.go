// Package resp reads and writes the Redis serialization protocol (RESP2
// and RESP3).
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Value is one RESP value. Type is the RESP type byte: '+' simple string,
// '-' error, ':' integer, '$' bulk string, '*' array, and for RESP3 '_'
// null, ',' double, '#' boolean, '!' bulk error, '=' verbatim string, '('
// big number, '%' map, '~' set, '>' push, '|' attribute.
type Value struct {
	Type  byte
	Str   string  // text of strings, errors, doubles, big numbers; "t"/"f" for booleans
	Int   int64   // integers
	Elems []Value // arrays, sets, pushes; maps and attributes as key, value, key, value...
	Null  bool    // $-1, *-1 and _
}

// String renders v compactly, for test failure messages.
func (v Value) String() string {
	switch {
	case v.Null:
		return "(nil)"
	case v.Type == ':':
		return strconv.FormatInt(v.Int, 10)
	case v.Type == '-' || v.Type == '!':
		return "(error) " + v.Str
	case v.Elems != nil || v.Type == '*' || v.Type == '>' || v.Type == '%' || v.Type == '~' || v.Type == '|':
		parts := make([]string, len(v.Elems))
		for i, e := range v.Elems {
			parts[i] = e.String()
		}
		return string(v.Type) + "[" + strings.Join(parts, " ") + "]"
	}
	return strconv.Quote(v.Str)
}

// ErrProtocol is wrapped by every error about malformed input.
var ErrProtocol = errors.New("resp: protocol error")

// Limits from Redis: proto-max-bulk-len and the aggregate length it accepts.
const (
	MaxBulkLen  = 512 << 20
	MaxArrayLen = 1<<31 - 1
)

// Reader reads RESP values.
type Reader struct {
	br *bufio.Reader
}

// NewReader returns a Reader reading from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 16<<10)}
}

// ReadValue reads one value.
func (r *Reader) ReadValue() (Value, error) {
	line, err := r.line()
	if err != nil {
		return Value{}, err
	}
	if len(line) == 0 {
		return Value{}, fmt.Errorf("%w: empty line", ErrProtocol)
	}
	v := Value{Type: line[0]}
	body := line[1:]
	switch v.Type {
	case '+', '-', ',', '(':
		v.Str = body
	case '#':
		if body != "t" && body != "f" {
			return v, fmt.Errorf("%w: bad boolean %q", ErrProtocol, body)
		}
		v.Str = body
	case '_':
		v.Null = true
	case ':':
		v.Int, err = strconv.ParseInt(body, 10, 64)
		if err != nil {
			return v, fmt.Errorf("%w: bad integer %q", ErrProtocol, body)
		}
	case '$', '!', '=':
		n, err := parseLen(body, MaxBulkLen)
		if err != nil {
			return v, err
		}
		if n < 0 {
			v.Null = true
			return v, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return v, unexpectedEOF(err)
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return v, fmt.Errorf("%w: bulk string not followed by CRLF", ErrProtocol)
		}
		v.Str = string(buf[:n])
	case '*', '>', '~', '%', '|':
		n, err := parseLen(body, MaxArrayLen)
		if err != nil {
			return v, err
		}
		if n < 0 {
			v.Null = true
			return v, nil
		}
		if v.Type == '%' || v.Type == '|' {
			n *= 2
		}
		v.Elems = make([]Value, 0, min(n, 1024))
		for range n {
			e, err := r.ReadValue()
			if err != nil {
				return v, unexpectedEOF(err)
			}
			v.Elems = append(v.Elems, e)
		}
		if v.Type == '|' { // an attribute precedes the value it describes
			return r.ReadValue()
		}
	default:
		return v, fmt.Errorf("%w: unknown type byte %q", ErrProtocol, v.Type)
	}
	return v, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func parseLen(s string, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 || n > max {
		return 0, fmt.Errorf("%w: bad length %q", ErrProtocol, s)
	}
	return n, nil
}

// line reads one CRLF-terminated line without its terminator.
func (r *Reader) line() (string, error) {
	line, err := r.br.ReadString('\n')
	if err != nil {
		if err == io.EOF && line != "" {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", fmt.Errorf("%w: line not terminated by CRLF", ErrProtocol)
	}
	return line[:len(line)-2], nil
}

// AppendCommand appends args as a RESP array of bulk strings, the form in
// which clients send commands.
func AppendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendBulk appends s as a bulk string.
func AppendBulk(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}
