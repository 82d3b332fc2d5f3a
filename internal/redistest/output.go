package redistest

import (
	"bytes"
	"sync"
)

// Output collects a program's output while it runs, safe to read at any
// time: give it as the exec.Cmd's Stdout and Stderr.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Output) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Output) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
