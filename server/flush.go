package server

import (
	"runtime"
	"sync"
)

// flusher writes the pushed messages queued for subscribers, for every
// connection of the Server, as Redis writes to its clients once per turn
// of its event loop. A publish marks each subscriber it queued a message
// for and wakes the flusher, which first lets the other runnable
// goroutines run (the readers of other publishers, most often, woken by
// the same poll of the network), and then writes to every connection
// marked meanwhile, once each, with one attempt that does not block: the
// messages of many publishes leave in one write. With four publishers on
// one core that doubled the deliveries a second, against a reader writing
// its subscribers itself once its pipeline was done. What a connection
// does not take at once is its writer goroutine's.
type flusher struct {
	wake chan struct{} // cap 1
	stop chan struct{}
	done chan struct{}

	mu sync.Mutex
	// guards dirty
	dirty []*conn
}

func newFlusher() *flusher {
	f := &flusher{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

// markLocked asks for c's output to be written soon. c.mu must be held.
func (f *flusher) markLocked(c *conn) {
	// A plain load first: most publishes find c marked by an earlier one,
	// and a load is cheaper than the swap's locked instruction. Whoever
	// clears the mark does so before taking c.mu to write, so a mark seen
	// here, under c.mu, is one that will write what was just queued.
	if c.flushPending.Load() || c.flushPending.Swap(true) {
		return
	}
	f.mu.Lock()
	f.dirty = append(f.dirty, c)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *flusher) run() {
	defer close(f.done)
	var list []*conn
	for {
		select {
		case <-f.wake:
		case <-f.stop:
			return
		}
		runtime.Gosched() // let the publishers under way queue more first
		list = f.drain(list)
	}
}

// drain writes to the connections marked so far. spare is the slice to
// reuse, returned for the next call.
func (f *flusher) drain(spare []*conn) []*conn {
	f.mu.Lock()
	list := f.dirty
	f.dirty = spare[:0]
	f.mu.Unlock()
	for i, c := range list {
		c.flushPending.Store(false) // before taking its output: what is queued later marks it again
		c.flushNow()
		list[i] = nil
	}
	return list[:0]
}

// close stops the flusher and waits for it.
func (f *flusher) close() {
	close(f.stop)
	<-f.done
}
