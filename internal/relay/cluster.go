package relay

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gopherpubsub/pubsub"
)

var errNoOwner = errors.New("relay: no master serves the slot")

// In a Redis Cluster a PUBLISH reaches every node, so channels and
// patterns need one subscription on one node. A shard channel lives on the
// node that owns its slot, so each one is subscribed on that node's
// connection, one command per channel (SSUBSCRIBE refuses channels of
// several slots at once). When the slot moves, the old owner unsubscribes
// us: the name is routed again.

// routeLaterLocked starts routing e to its slot's owner. stale is a node
// known not to own it any more, or "": while the slot map still points
// there, it is read again and asked again, for a while.
func (r *relay) routeLaterLocked(e *entry, stale string) {
	if r.closed {
		return
	}
	r.wg.Add(1)
	go r.route(e, stale)
}

func (r *relay) route(e *entry, stale string) {
	defer r.wg.Done()
	for attempt := 0; ; attempt++ {
		if !r.sleep(backoff(attempt)) || !r.wanted(e) {
			return
		}
		if stale != "" || attempt > 0 {
			r.forgetSlots()
		}
		node, err := r.owner(r.ctx, e.key.name)
		if err != nil || (node == stale && attempt < 30) {
			continue
		}
		r.mu.Lock()
		if r.closed || r.entries[e.key] != e || e.up != nil {
			r.mu.Unlock()
			return
		}
		u := r.upstreamLocked(pubsub.ShardChannels, node)
		e.up = u
		u.subscribeLocked([]*entry{e})
		r.mu.Unlock()
		return
	}
}

// wanted reports whether e is still held locally and not placed.
func (r *relay) wanted(e *entry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closed && r.entries[e.key] == e && e.up == nil
}

// slotMap is the last CLUSTER SLOTS the relay read, sorted by Start.
type slotMap struct {
	ranges []SlotRange
}

// owner returns the address of the master serving name's slot, reading
// the slot map if it is not known.
func (r *relay) owner(ctx context.Context, name string) (string, error) {
	r.slotsMu.Lock()
	m := r.slots
	r.slotsMu.Unlock()
	if m == nil {
		ranges, err := r.b.client.Slots(ctx)
		if err != nil {
			return "", err
		}
		ranges = slices.Clone(ranges)
		slices.SortFunc(ranges, func(a, b SlotRange) int { return a.Start - b.Start })
		m = &slotMap{ranges: ranges}
		r.slotsMu.Lock()
		r.slots = m
		r.slotsMu.Unlock()
	}
	slot := Slot(name)
	i, _ := slices.BinarySearchFunc(m.ranges, slot, func(s SlotRange, slot int) int {
		switch {
		case s.End < slot:
			return -1
		case s.Start > slot:
			return 1
		}
		return 0
	})
	if i < len(m.ranges) && m.ranges[i].Start <= slot && slot <= m.ranges[i].End {
		return m.ranges[i].Master, nil
	}
	r.forgetSlots()
	return "", errNoOwner
}

// forgetSlots makes the next owner call read the slot map again: after a
// lost connection or a slot move.
func (r *relay) forgetSlots() {
	r.slotsMu.Lock()
	r.slots = nil
	r.slotsMu.Unlock()
}

// Slot returns the cluster slot of key: CRC16 (XMODEM) of the key, or of
// its hash tag (the text between the first '{' and the next '}', if not
// empty), modulo 16384.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}
