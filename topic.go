package pubsub

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
)

// member is one subscription's membership of one channel, pattern or shard
// channel. Indexes hold members rather than subscriptions so that a
// delivery can tell, under the subscription's lock, whether this very
// membership is still current (see Subscription.offer). A fast delivery
// reads and writes the member alone, not the subscription: it holds the
// channel to send on and counts what it queued, which the subscription
// adds up in its Stats and folds in when the membership ends.
type member struct {
	ch        chan Message // the subscription's; nil for a func subscription
	delivered atomic.Uint64
	s         *Subscription
	name      string // the channel or pattern subscribed to
	ns        Namespace
	// removed is set, under s.mu, when the membership ends; the checked
	// path of a func subscription loads it without the lock.
	removed atomic.Bool
	// slot is the member's index in its topic's or pattern's member list,
	// under that index's write lock: it makes removal O(1).
	slot int
}

// topic is one channel with at least one subscriber.
type topic struct {
	name    string
	hash    uint64
	members memberList            // changed in place under the stripe's write lock
	next    atomic.Pointer[topic] // the next topic of the same hash bucket
	// retired is set, under the stripe's write lock, once the topic is no
	// longer in the table: removed, or replaced by a copy when it grew.
	retired bool
}

// stripe is one lock stripe of a topicIndex: a part of its channels, by
// hash, under a lock of their own.
type stripe struct {
	mu sync.RWMutex
	// guards topics
	topics topicTable

	// publishes to the channels of this stripe, counted here so that
	// publishers on different channels do not share a counter
	published atomic.Uint64

	_ [64]byte // keep neighbouring stripes off this cache line
}

// topicIndex maps exact channel names to subscribers. It is striped by
// hash into at least 64 stripes, 32 per GOMAXPROCS up to 512, so that
// publishers on different channels seldom share a lock: only when their
// channels share a stripe (8 busy channels among 64 stripes all have
// stripes of their own two times in three). A publish
// holds its stripe's read lock while it fills the buffers (see tally), and
// a publish to a channel nobody holds takes no lock at all.
type topicIndex struct {
	seed    maphash.Seed
	stripes []stripe
	mask    uint64
	count   atomic.Int64 // number of channels with subscribers
}

func newTopicIndex() *topicIndex {
	n := 64
	for n < 32*runtime.GOMAXPROCS(0) && n < 512 {
		n <<= 1
	}
	return &topicIndex{seed: maphash.MakeSeed(), stripes: make([]stripe, n), mask: uint64(n - 1)}
}

func (x *topicIndex) stripeOf(channel string) (*stripe, uint64) {
	h := maphash.String(x.seed, channel)
	return &x.stripes[h&x.mask], h
}

// topicTable is a hash table of topics keyed by the channel's maphash. The
// hash that picks the stripe also finds the bucket, so a publish hashes its
// channel once (a Go map would hash the key again).
//
// Writers hold the stripe's write lock. find may also run with no lock at
// all: Publish asks it first and skips the lock for a channel nobody holds.
// For that reader every link is an atomic pointer, a topic's name and hash
// never change, a removed topic keeps its link to the next one so that a
// reader standing on it still reaches the rest of its chain, and growing
// links copies of the topics into a new bucket array rather than relinking
// the ones a reader may be walking. A reader without the lock can thus see
// a topic that was just removed, never miss one that was there all along.
type topicTable struct {
	buckets atomic.Pointer[[]atomic.Pointer[topic]] // len is a power of two
	n       int                                     // guarded by the stripe's lock
}

// bucket returns the bucket of hash h in buckets. The low bits chose the
// stripe, so the bucket comes from the high bits.
func bucket(buckets []atomic.Pointer[topic], h uint64) *atomic.Pointer[topic] {
	return &buckets[(h>>32)&uint64(len(buckets)-1)]
}

func (tt *topicTable) find(h uint64, channel string) *topic {
	buckets := tt.buckets.Load()
	if buckets == nil {
		return nil
	}
	for t := bucket(*buckets, h).Load(); t != nil; t = t.next.Load() {
		if t.hash == h && t.name == channel {
			return t
		}
	}
	return nil
}

func (tt *topicTable) insert(t *topic) {
	buckets := tt.buckets.Load()
	if buckets == nil || tt.n >= len(*buckets) {
		buckets = tt.grow()
	}
	b := bucket(*buckets, t.hash)
	t.next.Store(b.Load())
	b.Store(t)
	tt.n++
}

// delete unlinks t. It leaves t.next as it is, for readers standing on t.
func (tt *topicTable) delete(t *topic) {
	link := bucket(*tt.buckets.Load(), t.hash)
	for cur := link.Load(); cur != nil; cur = cur.next.Load() {
		if cur == t {
			link.Store(t.next.Load())
			t.retired = true
			tt.n--
			return
		}
		link = &cur.next
	}
}

// grow replaces the bucket array by one twice as large, holding copies of
// the topics, and returns it.
func (tt *topicTable) grow() *[]atomic.Pointer[topic] {
	var old []atomic.Pointer[topic]
	if p := tt.buckets.Load(); p != nil {
		old = *p
	}
	buckets := make([]atomic.Pointer[topic], max(8, 2*len(old)))
	for i := range old {
		for t := old[i].Load(); t != nil; t = t.next.Load() {
			c := &topic{name: t.name, hash: t.hash, members: t.members}
			t.retired = true
			b := bucket(buckets, c.hash)
			c.next.Store(b.Load())
			b.Store(c)
		}
	}
	tt.buckets.Store(&buckets)
	return &buckets
}

func (tt *topicTable) all(yield func(*topic)) {
	buckets := tt.buckets.Load()
	if buckets == nil {
		return
	}
	for i := range *buckets {
		for t := (*buckets)[i].Load(); t != nil; t = t.next.Load() {
			yield(t)
		}
	}
}

// withMembers calls visit with the members of channel, under its
// stripe's read lock: the list changes in place once the lock is released.
func (x *topicIndex) withMembers(channel string, visit func([]*member)) {
	sh, h := x.stripeOf(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if t := sh.topics.find(h, channel); t != nil {
		visit(t.members)
	}
}

func (x *topicIndex) add(mb *member) {
	sh, h := x.stripeOf(mb.name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.topics.find(h, mb.name)
	if t == nil {
		t = &topic{name: mb.name, hash: h}
		sh.topics.insert(t)
		x.count.Add(1)
	}
	t.members.add(mb)
}

func (x *topicIndex) remove(mb *member) {
	sh, h := x.stripeOf(mb.name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.topics.find(h, mb.name)
	if t == nil {
		return
	}
	t.members.remove(mb)
	if len(t.members) == 0 {
		sh.topics.delete(t)
		x.count.Add(-1)
	}
}

// locate returns channel's stripe and the channel's topic as a look
// without the lock finds it (see topicTable). If it finds none, the
// channel had no subscriber when the call began; one it finds may be
// retired by the time the caller takes the lock.
func (x *topicIndex) locate(channel string) (*stripe, *topic) {
	sh, h := x.stripeOf(channel)
	return sh, sh.topics.find(h, channel)
}

// deliverAt offers *m to every member of tp's channel on t's fast path,
// holding the read lock of tp's stripe sh. It looks the channel up again
// only if tp was retired meanwhile.
func (x *topicIndex) deliverAt(sh *stripe, tp *topic, t *tally, m *Message) {
	sh.mu.RLock()
	if tp.retired {
		tp = sh.topics.find(tp.hash, tp.name)
	}
	if tp != nil {
		t.offer(tp.members, m)
	}
	sh.mu.RUnlock()
}

// deliver offers *m to every member of channel on t's fast path, and
// returns the stripe for its counters.
func (x *topicIndex) deliver(channel string, t *tally, m *Message) *stripe {
	sh, tp := x.locate(channel)
	if tp != nil {
		x.deliverAt(sh, tp, t, m)
	}
	return sh
}

// numSub returns the number of subscribers of channel.
func (x *topicIndex) numSub(channel string) int {
	n := 0
	x.withMembers(channel, func(members []*member) { n = len(members) })
	return n
}

// names returns the channels with subscribers for which keep returns true.
func (x *topicIndex) names(keep func(string) bool) []string {
	var out []string
	for i := range x.stripes {
		sh := &x.stripes[i]
		sh.mu.RLock()
		sh.topics.all(func(t *topic) {
			if keep(t.name) {
				out = append(out, t.name)
			}
		})
		sh.mu.RUnlock()
	}
	return out
}

// published sums the publish counters of every stripe.
func (x *topicIndex) published() uint64 {
	var n uint64
	for i := range x.stripes {
		n += x.stripes[i].published.Load()
	}
	return n
}

// memberList is the members of one channel or pattern. It changes in
// place under its index's write lock, and publishers read it under the read
// lock, so adding and removing a member cost O(1) however many there are;
// nothing may keep the slice once the lock is released.
type memberList []*member

func (l *memberList) add(mb *member) {
	mb.slot = len(*l)
	*l = append(*l, mb)
}

// remove takes mb out by moving the last member into its slot. A list
// that shrank to a quarter of its capacity is copied into a smaller one, so
// that a channel that once had a million subscribers does not keep their
// slots.
func (l *memberList) remove(mb *member) {
	list := *l
	i := mb.slot
	if i >= len(list) || list[i] != mb {
		return // not in this list
	}
	last := len(list) - 1
	list[i] = list[last]
	list[i].slot = i
	list[last] = nil
	list = list[:last]
	if c := cap(list); c > 64 && len(list) < c/4 {
		list = append(make(memberList, 0, 2*len(list)), list...)
	}
	*l = list
}
