package server

import "sync"

// outChunk is the size of the chunks a client's output is queued in: the
// size of Redis's reply blocks (PROTO_REPLY_CHUNK_BYTES).
const outChunk = 16 << 10

// outQueue is a client's output waiting for the socket: bytes copied into
// fixed-size chunks from the Server's pool. A client at its output limit
// thus holds the limit plus at most one chunk, never a slice grown to
// twice what it needs, and an idle client holds none: written chunks go
// back to the pool. The connection's mu guards it.
type outQueue struct {
	chunks [][]byte // queued; each has capacity outChunk
	queued int64    // bytes in chunks
	taken  int64    // bytes a writer has taken and not yet written
}

// pending is what counts against the output limit: every byte not yet
// written to the socket.
func (q *outQueue) pending() int64 { return q.queued + q.taken }

// append copies b into the queue.
func (q *outQueue) append(b []byte, pool *sync.Pool) {
	q.queued += int64(len(b))
	for len(b) > 0 {
		n := len(q.chunks)
		if n == 0 || len(q.chunks[n-1]) == outChunk {
			q.chunks = append(q.chunks, pool.Get().(*[outChunk]byte)[:0])
			n++
		}
		last := q.chunks[n-1]
		k := copy(last[len(last):outChunk], b)
		q.chunks[n-1] = last[:len(last)+k]
		b = b[k:]
	}
}
