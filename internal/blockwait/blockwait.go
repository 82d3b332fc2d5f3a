// Package blockwait lets a publisher that must never wait (the server's
// loop, which runs every client's commands) publish to subscriptions
// under the Block policy: a delivery that would wait for room is handed
// back to it instead, to be finished on a goroutine of its own, while the
// rest of the publish goes on.
package blockwait

import "context"

// Waits collects the deliveries a publish left waiting, in the order it
// reached them. Its owner (one publisher) runs them with Run; they are
// not safe for concurrent use.
type Waits struct {
	fns []func(context.Context)
}

type key struct{}

// With returns ctx carrying w: a publish under it hands its waiting
// deliveries to w instead of waiting.
func With(ctx context.Context, w *Waits) context.Context {
	return context.WithValue(ctx, key{}, w)
}

// From returns the Waits ctx carries, or nil.
func From(ctx context.Context) *Waits {
	w, _ := ctx.Value(key{}).(*Waits)
	return w
}

// Add queues a delivery to finish later. fn waits for room until ctx ends
// or the subscription closes.
func (w *Waits) Add(fn func(context.Context)) { w.fns = append(w.fns, fn) }

// Len returns how many deliveries are waiting.
func (w *Waits) Len() int { return len(w.fns) }

// Take returns the waiting deliveries and empties w.
func (w *Waits) Take() []func(context.Context) {
	fns := w.fns
	w.fns = nil
	return fns
}
