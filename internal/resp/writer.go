package resp

import "strconv"

// Writer appends replies in RESP2 or RESP3, choosing the encoding Redis
// uses for each protocol: null is "$-1" or "*-1" in RESP2 and "_" in RESP3,
// a map is a flat array in RESP2, a push is an array in RESP2.
type Writer struct {
	Buf   []byte
	Proto int // 2 or 3
}

// Simple appends a simple string: +s.
func (w *Writer) Simple(s string) {
	w.Buf = append(w.Buf, '+')
	w.Buf = append(w.Buf, s...)
	w.Buf = append(w.Buf, '\r', '\n')
}

// Error appends an error: -msg. msg starts with its code ("ERR ...").
func (w *Writer) Error(msg string) {
	w.Buf = append(w.Buf, '-')
	w.Buf = append(w.Buf, msg...)
	w.Buf = append(w.Buf, '\r', '\n')
}

// Int appends an integer.
func (w *Writer) Int(n int64) {
	w.Buf = append(w.Buf, ':')
	w.Buf = strconv.AppendInt(w.Buf, n, 10)
	w.Buf = append(w.Buf, '\r', '\n')
}

// Bulk appends a bulk string.
func (w *Writer) Bulk(s string) {
	w.Buf = AppendBulk(w.Buf, s)
}

// NullBulk appends the null of a missing string.
func (w *Writer) NullBulk() {
	if w.Proto == 3 {
		w.Buf = append(w.Buf, "_\r\n"...)
		return
	}
	w.Buf = append(w.Buf, "$-1\r\n"...)
}

// NullArray appends the null of a missing array.
func (w *Writer) NullArray() {
	if w.Proto == 3 {
		w.Buf = append(w.Buf, "_\r\n"...)
		return
	}
	w.Buf = append(w.Buf, "*-1\r\n"...)
}

// Array appends the header of an array of n elements.
func (w *Writer) Array(n int) { w.header('*', n) }

// Set appends the header of a set of n elements (an array in RESP2).
func (w *Writer) Set(n int) {
	if w.Proto == 3 {
		w.header('~', n)
		return
	}
	w.header('*', n)
}

// Push appends the header of an out-of-band push of n elements (an array
// in RESP2).
func (w *Writer) Push(n int) {
	if w.Proto == 3 {
		w.header('>', n)
		return
	}
	w.header('*', n)
}

// Map appends the header of a map of n pairs (an array of 2n in RESP2).
func (w *Writer) Map(n int) {
	if w.Proto == 3 {
		w.header('%', n)
		return
	}
	w.header('*', 2*n)
}

// Double appends a floating point number as Redis writes one, with
// "%.17g": a RESP3 double, a bulk string in RESP2.
func (w *Writer) Double(d float64) {
	text := strconv.FormatFloat(d, 'g', 17, 64)
	if w.Proto == 3 {
		w.Buf = append(w.Buf, ',')
		w.Buf = append(w.Buf, text...)
		w.Buf = append(w.Buf, '\r', '\n')
		return
	}
	w.Bulk(text)
}

// Verbatim appends a verbatim string of format "txt" (a bulk string in
// RESP2).
func (w *Writer) Verbatim(s string) {
	if w.Proto == 3 {
		w.header('=', len(s)+4)
		w.Buf = append(w.Buf, "txt:"...)
		w.Buf = append(w.Buf, s...)
		w.Buf = append(w.Buf, '\r', '\n')
		return
	}
	w.Bulk(s)
}

func (w *Writer) header(kind byte, n int) {
	w.Buf = append(w.Buf, kind)
	w.Buf = strconv.AppendInt(w.Buf, int64(n), 10)
	w.Buf = append(w.Buf, '\r', '\n')
}
