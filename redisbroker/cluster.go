package redisbroker

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/gopherpubsub/pubsub"
)

// In a Redis Cluster a PUBLISH reaches every node, so channels and
// patterns need one subscription on one node: the go-redis ClusterClient
// picks it. A shard channel lives on the node that owns its slot, so each
// one is subscribed on that node's connection, one command per channel
// (SSUBSCRIBE refuses channels of several slots at once). When the slot
// moves, the old owner unsubscribes us: the name is routed again.

// routeLaterLocked starts routing e to its slot's owner. stale is a node
// known not to own it any more, or "": while the client's view of the
// cluster still points there, it is reloaded and asked again, for a while.
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
		if !r.sleep(backoff(attempt)) {
			return
		}
		if !r.wanted(e) {
			return
		}
		if stale != "" || attempt > 0 {
			r.reloadCluster()
		}
		node, err := r.b.cluster.MasterForKey(r.ctx, e.key.name)
		if err != nil {
			continue
		}
		addr := node.Options().Addr
		if addr == stale && attempt < 30 {
			continue
		}
		r.mu.Lock()
		if r.closed || r.entries[e.key] != e || e.up != nil {
			r.mu.Unlock()
			return
		}
		u := r.upstreamLocked(pubsub.ShardChannels, addr, node)
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

// reloadCluster makes the client read the cluster's slots now: go-redis's
// ReloadState only schedules it, and ForEachMaster reloads first.
func (r *relay) reloadCluster() {
	_ = r.b.cluster.ForEachMaster(r.ctx, func(context.Context, *redis.Client) error { return nil })
}
