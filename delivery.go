package pubsub

import (
	"context"
	"fmt"
)

// This file is the fan-out of one publish: Publish, SPublish and Deliver
// find the members (topic.go, match.go) and hand them to a tally here,
// which sends, applies the overflow policies and runs what must wait until
// the index lock is released.

// tally delivers one publish and counts its outcome.
//
// The fast path, offer, runs while the caller holds the read lock of the
// index the members came from (a channel stripe or the pattern index).
// Removing a membership takes that index's write lock, so it waits for the
// delivery under way: once Unsubscribe or Close returns, no fast delivery
// can reach the subscription, and Close can close the channel. The fast
// path therefore needs no lock per subscription. What may block or run
// user code is deferred until the lock is released: func subscriptions,
// Block waits, drop handlers and Disconnect closes. The deferred work goes
// in a slice taken from the Broker's spares on first need, so a publish
// that defers nothing touches neither the spares nor the heap.
type tally struct {
	receivers, delivered, dropped int
	err                           error

	spare chan *[]deferredDelivery // the Broker's
	// msg is the message being published, which every deferOffer
	// delivers (with its member's pattern): the deferred entry holds only
	// the membership. It is set by the first deferOffer, held by value so
	// that the publisher's message stays on its stack.
	msg    Message
	hasMsg bool
	// The first deferred deliveries wait here, in the tally itself: a
	// publish to one func subscription (a server's client) touches no
	// spare. More spill into deferred, nil until then.
	inline   [2]deferredDelivery
	inlined  int
	deferred *[]deferredDelivery
}

type deferKind uint8

const (
	deferOffer      deferKind = iota // the checked path: func subscriptions, Block waits
	deferDropHook                    // run the drop handler
	deferDisconnect                  // run the drop handler, then close with ErrSlowConsumer
)

type deferredDelivery struct {
	kind deferKind
	mb   *member
	m    Message // for deferDropHook and deferDisconnect
}

// offer queues *m for every one of members whose buffer has room and
// takes the slow path for the others. The index lock must be held. The
// loop is here, not in the callers, so that the common case costs one
// channel send and one counter increment per subscriber and no call.
func (t *tally) offer(members []*member, m *Message) {
	for _, mb := range members {
		select {
		case mb.ch <- *m: // never ready for a func subscription: ch is nil
			if mb.delivered.Add(1)&7 == 0 {
				mb.s.sampleQueue()
			}
			t.receivers++
			t.delivered++
		default:
			t.full(mb, m)
		}
	}
}

// full handles what offer could not queue at once: a func subscription, or
// a full buffer, for which the overflow policy decides. The index lock
// must be held.
func (t *tally) full(mb *member, m *Message) {
	s := mb.s
	if s.fn != nil {
		t.keep(m)
		t.later(deferredDelivery{kind: deferOffer, mb: mb})
		return
	}
	s.noteFull()
	switch s.overflow {
	case Block:
		t.keep(m)
		t.later(deferredDelivery{kind: deferOffer, mb: mb}) // counted once settled
	case DropOldest:
		t.receivers++
		var evicted Message
		haveEvicted := false
		select {
		case evicted = <-s.ch:
			haveEvicted = true
		default: // the consumer made room meanwhile
		}
		newLost := false
		select {
		case s.ch <- *m:
			s.noteDelivered()
			t.delivered++
		default: // other publishers refilled it: the new one is lost too
			newLost = true
		}
		switch {
		case haveEvicted && newLost: // both go to the drop handler, the evicted one first
			t.dropLater(s, deferredDelivery{kind: deferDropHook, mb: mb, m: evicted})
			t.dropLater(s, deferredDelivery{kind: deferDropHook, mb: mb, m: *m})
		case haveEvicted:
			t.dropLater(s, deferredDelivery{kind: deferDropHook, mb: mb, m: evicted})
		case newLost:
			t.dropLater(s, deferredDelivery{kind: deferDropHook, mb: mb, m: *m})
		}
		if haveEvicted { // after Dropped: see counts
			s.evicted.Add(1)
		}
	case Disconnect:
		t.receivers++
		t.dropLater(s, deferredDelivery{kind: deferDisconnect, mb: mb, m: *m})
		s.disconnected.Add(1) // after Dropped: see counts
	default: // DropNewest
		t.receivers++
		t.dropLater(s, deferredDelivery{kind: deferDropHook, mb: mb, m: *m})
	}
}

// keep notes the message the deferOffers of this publish deliver.
func (t *tally) keep(m *Message) {
	if !t.hasMsg {
		t.msg, t.hasMsg = *m, true
	}
}

// later defers d until the index lock is released.
func (t *tally) later(d deferredDelivery) {
	if t.deferred == nil && t.inlined < len(t.inline) {
		t.inline[t.inlined] = d
		t.inlined++
		return
	}
	if t.deferred == nil {
		select {
		case t.deferred = <-t.spare:
		default:
			t.deferred = new([]deferredDelivery)
		}
	}
	*t.deferred = append(*t.deferred, d)
}

func (t *tally) drop(s *Subscription) {
	s.dropped.Add(1)
	t.dropped++
}

// dropLater counts a lost message and defers what must follow.
func (t *tally) dropLater(s *Subscription, d deferredDelivery) {
	t.drop(s)
	if d.kind == deferDisconnect || s.onDrop != nil {
		t.later(d)
	}
}

// runDeferred performs the deferred work, with no lock held, and returns
// the slice to the spares.
func (t *tally) runDeferred(ctx context.Context) {
	for i := range t.inlined {
		t.run(ctx, &t.inline[i])
		t.inline[i] = deferredDelivery{} // let the message's payload go
	}
	t.inlined = 0
	if t.deferred != nil {
		for i := range *t.deferred {
			t.run(ctx, &(*t.deferred)[i])
		}
		clear(*t.deferred) // let the messages' payloads go
		*t.deferred = (*t.deferred)[:0]
		select {
		case t.spare <- t.deferred:
		default: // enough spares already
		}
		t.deferred = nil
	}
	t.hasMsg = false // the next phase publishes another kind of message
}

// run performs one deferred delivery.
func (t *tally) run(ctx context.Context, d *deferredDelivery) {
	s := d.mb.s
	switch d.kind {
	case deferOffer:
		if t.msg.Kind == KindPMessage {
			t.msg.Pattern = d.mb.name // each member of the pattern phase has its own
		}
		t.offerOne(ctx, d.mb, &t.msg)
	case deferDropHook:
		s.dropHook(d.m)
	case deferDisconnect:
		s.dropHook(d.m)
		s.close(fmt.Errorf("%w: buffer of %d messages full: %w", ErrSlowConsumer, cap(s.ch), ErrClosed))
	}
}

func (t *tally) offerOne(ctx context.Context, mb *member, m *Message) {
	out, err := mb.s.offer(ctx, mb, m)
	switch out {
	case outGone:
		return
	case outDelivered:
		t.delivered++
	case outDropped:
		t.dropped++
	case outWaiting: // a receiver, delivered or dropped once it is finished
	}
	t.receivers++
	if err != nil && t.err == nil {
		t.err = err
	}
}

// record counts the publish in its stripe. Deliveries and drops are
// counted by the memberships and subscriptions, which Broker.Stats adds up,
// so that a publish makes one atomic add here.
func (t *tally) record(sh *stripe) {
	sh.published.Add(1)
}
