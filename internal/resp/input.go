package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ReadBufferSize is the size of a RequestReader's read buffer and of the
// buffers a Decoder takes from its pool.
const ReadBufferSize = 64 << 10

// ReadBuffer is a buffer of ReadBufferSize bytes, as a Decoder's pool
// holds them.
type ReadBuffer = [ReadBufferSize]byte

// Input is a RequestReader's buffered input: the methods of bufio.Reader
// that the parser uses, with the same meaning. A slice it returns is
// valid until the next call.
type Input struct {
	src  io.Reader
	buf  *ReadBuffer // made on the first read
	r, w int         // buf[r:w] is unread
	err  error
}

// free returns the free end of the buffer, making the buffer first.
func (in *Input) free() []byte {
	if in.buf == nil {
		in.buf = new(ReadBuffer)
	}
	return in.buf[in.w:]
}

func (in *Input) unread() []byte {
	if in.buf == nil {
		return nil
	}
	return in.buf[in.r:in.w]
}

// Buffered returns how many bytes can be read without reading from the
// source.
func (in *Input) Buffered() int { return in.w - in.r }

// takeErr returns the error the last read ended with, once.
func (in *Input) takeErr() error {
	err := in.err
	in.err = nil
	return err
}

// fill moves the unread bytes to the front and reads once more: until the
// source gives a byte or an error.
func (in *Input) fill() {
	if in.r > 0 {
		copy(in.buf[:], in.buf[in.r:in.w])
		in.w -= in.r
		in.r = 0
	}
	for range 100 {
		n, err := in.src.Read(in.free())
		if n < 0 || n > ReadBufferSize-in.w {
			in.err = errImpossibleCount
			return
		}
		in.w += n
		if err != nil {
			in.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	in.err = io.ErrNoProgress
}

// Peek returns the next n bytes without consuming them, or fewer and the
// error that stopped it (bufio.ErrBufferFull past the buffer's size).
func (in *Input) Peek(n int) ([]byte, error) {
	if n > ReadBufferSize {
		return in.unread(), bufio.ErrBufferFull
	}
	for in.w-in.r < n && in.err == nil {
		in.fill()
	}
	if in.w-in.r < n {
		return in.unread(), in.takeErr()
	}
	return in.buf[in.r : in.r+n], nil
}

// ReadSlice reads up to and including delim and returns a view of it in
// the buffer. If the buffer fills first, it returns the whole buffer and
// bufio.ErrBufferFull; if reading fails first, what was read and the
// error.
func (in *Input) ReadSlice(delim byte) ([]byte, error) {
	searched := 0
	for {
		if in.buf != nil {
			if i := bytes.IndexByte(in.buf[in.r+searched:in.w], delim); i >= 0 {
				line := in.buf[in.r : in.r+searched+i+1]
				in.r += searched + i + 1
				return line, nil
			}
		}
		var err error
		switch {
		case in.err != nil:
			err = in.takeErr()
		case in.w-in.r == ReadBufferSize:
			err = bufio.ErrBufferFull
		}
		if err != nil {
			line := in.unread()
			in.r = in.w
			return line, err
		}
		searched = in.w - in.r
		in.fill()
	}
}

// ReadByte reads one byte.
func (in *Input) ReadByte() (byte, error) {
	for in.r == in.w {
		if in.err != nil {
			return 0, in.takeErr()
		}
		in.fill()
	}
	c := in.buf[in.r]
	in.r++
	return c, nil
}

// Discard skips the next n bytes, reading them if need be, and returns
// how many it skipped.
func (in *Input) Discard(n int) (int, error) {
	done := 0
	for {
		k := min(n-done, in.w-in.r)
		in.r += k
		done += k
		if done == n {
			return done, nil
		}
		if in.err != nil {
			return done, in.takeErr()
		}
		in.fill()
	}
}

// Read reads what is buffered into p, reading from the source first if
// nothing is.
func (in *Input) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for in.r == in.w {
		if in.err != nil {
			return 0, in.takeErr()
		}
		in.fill()
	}
	n := copy(p, in.buf[in.r:in.w])
	in.r += n
	return n, nil
}

var errImpossibleCount = errors.New("resp: source returned an impossible count")
