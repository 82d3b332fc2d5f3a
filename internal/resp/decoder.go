package resp

import (
	"bytes"
	"sync"
)

// Decoder parses requests from bytes handed to it as they arrive, for a
// server whose one loop reads every client and must never wait for a
// client's next bytes: Redis's processInputBuffer. It reads what
// RequestReader reads, with the same limits and the same errors (a fuzz
// test holds the two to it), but where RequestReader would wait for more
// input, Next reports that it needs more and keeps how far it got: each
// header of a command is parsed once however the command is cut, so a
// command of many arguments arriving slowly costs no more than one
// arriving at once.
//
// Its buffer comes from a pool only while it holds unparsed bytes, so an
// idle client costs none, as Redis frees an idle client's query buffer. A
// command larger than one pooled buffer grows a buffer of its own as its
// bytes come (never to the length a header merely claims), bounded by
// MaxQueryBuffer, and dropped once the command is parsed.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	// Authenticated lifts the request limits Redis applies to clients
	// that have not authenticated yet.
	Authenticated bool
	// MaxBulkLen is proto-max-bulk-len; 0 means 512 MB.
	MaxBulkLen int64
	// MaxQueryBuffer bounds the bytes of one command, as Redis's
	// client-query-buffer-limit; 0 means no limit.
	MaxQueryBuffer int64

	pool   *sync.Pool // of *ReadBuffer; nil: buffers are made
	buf    []byte     // buf[r:w] is unparsed; nil when empty
	pooled bool       // buf is a pool's *ReadBuffer
	r, w   int

	// The command being parsed, which starts at buf[r]: positions are
	// relative to r, so that they survive moving the bytes.
	argc  int64  // arguments announced; -1 before the "*<n>" line
	pos   int    // the next byte to parse
	total int64  // the command's bytes so far, for MaxQueryBuffer
	spans []span // where each argument's data lies

	args []string // reused by Next
}

type span struct{ from, to int }

// NewDecoder returns a Decoder taking its buffers from pool (of
// *ReadBuffer), or making them if pool is nil. It starts authenticated.
func NewDecoder(pool *sync.Pool) *Decoder {
	return &Decoder{Authenticated: true, pool: pool, argc: -1}
}

// Space returns where the next bytes read from the client go: at most
// ReadBufferSize bytes, and at least one. Call Wrote with how many were
// put there.
func (d *Decoder) Space() []byte {
	switch {
	case d.buf == nil:
		if d.pool != nil {
			d.buf, d.pooled = d.pool.Get().(*ReadBuffer)[:], true
		} else {
			d.buf = make([]byte, ReadBufferSize)
		}
	case d.w == len(d.buf) && d.r > 0:
		d.w = copy(d.buf, d.buf[d.r:d.w])
		d.r = 0
	case d.w == len(d.buf):
		// One command fills the buffer: it grows as its bytes come.
		grown := make([]byte, 2*len(d.buf))
		copy(grown, d.buf[:d.w])
		d.release()
		d.buf = grown
	}
	return d.buf[d.w:min(len(d.buf), d.w+ReadBufferSize)]
}

// Wrote accounts for n bytes put into the slice Space returned.
func (d *Decoder) Wrote(n int) {
	d.w += n
	d.releaseIfEmpty()
}

// Buffered returns how many bytes are held and not yet parsed into a
// command.
func (d *Decoder) Buffered() int { return d.w - d.r }

// Held returns the size of the buffer held, 0 when none.
func (d *Decoder) Held() int { return len(d.buf) }

// Discard drops the bytes held, and the buffer with them.
func (d *Decoder) Discard() {
	d.consume(d.w - d.r)
	d.releaseIfEmpty()
}

func (d *Decoder) release() {
	if d.pooled {
		d.pool.Put((*ReadBuffer)(d.buf))
	}
	d.buf, d.pooled = nil, false
}

func (d *Decoder) releaseIfEmpty() {
	if d.r == d.w && d.buf != nil {
		d.release()
		d.r, d.w = 0, 0
	}
}

// Next parses the next command. It returns ok false, and no error, when
// the bytes held end before the command does; the parse goes on from
// there once more bytes have been written. An empty command (an empty
// inline line, "*0") returns ok and no arguments, as Redis ignores it. A
// malformed request returns a *ProtocolError, a command over
// MaxQueryBuffer ErrQueryBufferLimit; after an error, the Decoder is
// done with. The slice is reused by the next call; the arguments of one
// command share one allocation, so a caller keeping one long after the
// others clones it.
func (d *Decoder) Next() (args []string, ok bool, err error) {
	if cap(d.args) > maxKeptArgs {
		d.args = nil
	} else {
		clear(d.args)
	}
	if d.r == d.w {
		return nil, false, nil
	}
	if d.buf[d.r] == '*' {
		args, ok, err = d.multibulk()
	} else {
		args, ok, err = d.inline()
	}
	d.releaseIfEmpty()
	return args, ok, err
}

// consume ends the command being parsed at d.r+n.
func (d *Decoder) consume(n int) {
	d.r += n
	d.argc, d.pos, d.total = -1, 0, 0
	d.spans = d.spans[:0]
	if cap(d.spans) > maxKeptArgs {
		d.spans = nil
	}
}

func (d *Decoder) inline() ([]string, bool, error) {
	data := d.buf[d.r:d.w]
	i := bytes.IndexByte(data[d.pos:], '\n')
	if i < 0 {
		if len(data) > MaxInlineSize {
			return nil, false, protoErr("too big inline request")
		}
		d.pos = len(data) // searched
		return nil, false, nil
	}
	end := d.pos + i
	if end > MaxInlineSize {
		return nil, false, protoErr("too big inline request")
	}
	line := bytes.TrimSuffix(data[:end], []byte{'\r'})
	args, ok := SplitArgs(string(line))
	if !ok {
		return nil, false, protoErr("unbalanced quotes in request")
	}
	d.consume(end + 1)
	return args, true, nil
}

// number parses the "*<n>" or "$<n>" line at data[at] as countLine does:
// it ends at the first '\r', and the byte after it is skipped unseen. It
// returns the number, the length of its text and where the next line
// starts, or next 0 when the line has not all arrived.
func number(data []byte, at int, tooBig string) (n int64, textLen, next int, ok bool, err error) {
	// Most lengths are a few digits without a leading zero: read them in
	// one pass. Anything else (a sign, a zero, an odd byte, a line not
	// all here) takes the general way below, which has Redis's rules.
	if k := at + 1; k < len(data) && '1' <= data[k] && data[k] <= '9' {
		var v int64
		for ; k < len(data) && k-at <= 18 && '0' <= data[k] && data[k] <= '9'; k++ {
			v = v*10 + int64(data[k]-'0')
		}
		if k+1 < len(data) && data[k] == '\r' {
			return v, k - at - 1, k + 2, true, nil
		}
	}
	i := bytes.IndexByte(data[at:], '\r')
	if i < 0 {
		if len(data)-at-1 > MaxInlineSize {
			return 0, 0, 0, false, protoErr(tooBig)
		}
		return 0, 0, 0, false, nil
	}
	if i > MaxInlineSize {
		return 0, 0, 0, false, protoErr(tooBig)
	}
	if at+i+1 >= len(data) { // the byte after '\r' has not come
		return 0, 0, 0, false, nil
	}
	n, ok = parseInt(data[at+1 : at+i])
	return n, i - 1, at + i + 2, ok, nil
}

func (d *Decoder) multibulk() ([]string, bool, error) {
	data := d.buf[d.r:d.w]
	if d.argc < 0 {
		n, textLen, next, ok, err := number(data, 0, "too big mbulk count string")
		if err != nil || next == 0 {
			return nil, false, err
		}
		if !ok || n > 1<<31-1 {
			return nil, false, protoErr("invalid multibulk length")
		}
		if !d.Authenticated && n > MaxUnauthMultibulk {
			return nil, false, protoErr("unauthenticated multibulk length")
		}
		if n <= 0 {
			d.consume(next)
			return nil, true, nil
		}
		d.argc, d.pos, d.total = n, next, int64(textLen+3)
	}
	maxBulk := d.MaxBulkLen
	if maxBulk == 0 {
		maxBulk = MaxBulkLen
	}
	for int64(len(d.spans)) < d.argc {
		at := d.pos
		if at >= len(data) {
			return nil, false, nil
		}
		if data[at] != '$' {
			return nil, false, protoErr("expected '$', got '" + string(data[at]) + "'")
		}
		size, sizeLen, next, ok, err := number(data, at, "too big bulk count string")
		if err != nil || next == 0 {
			return nil, false, err
		}
		if !ok || size < 0 || size > maxBulk {
			return nil, false, protoErr("invalid bulk length")
		}
		if !d.Authenticated && size > MaxUnauthBulk {
			return nil, false, protoErr("unauthenticated bulk length")
		}
		d.total += int64(sizeLen) + 3 + size + 2
		if d.MaxQueryBuffer > 0 && d.total > d.MaxQueryBuffer {
			return nil, false, ErrQueryBufferLimit
		}
		// Each header is parsed once: its span is noted now, and the
		// next header is looked for once the data and the 2 bytes Redis
		// skips unchecked have come.
		d.spans = append(d.spans, span{next, next + int(size)})
		d.pos = next + int(size) + 2
	}
	if d.pos > len(data) {
		return nil, false, nil
	}
	// One string for the whole command, each argument a slice of it.
	from := d.spans[0].from
	whole := string(data[from:d.spans[len(d.spans)-1].to])
	args := d.args[:0]
	for _, sp := range d.spans {
		args = append(args, whole[sp.from-from:sp.to-from])
	}
	d.args = args
	d.consume(d.pos)
	return args, true, nil
}
