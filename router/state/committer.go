package state

import (
	"context"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// The committer is where this store commits decided placement writes,
// as Nomad's plan applier is where a Nomad leader commits plans: the
// deciders (Place; the reconciler's moves to come) read a snapshot,
// decide, submit a write and wait for its outcome; the committer checks
// each write again against the freshest state it knows, commits the
// writes together, and answers each.
//
// Placements into one region are committed together. A round takes
// every queued write whose regions have no transaction in flight and
// groups them by region (a write naming several regions joins their
// groups into one); each group is one nested transaction of the round's
// single etcd transaction (batch.go):
//
//	Txn().Then(
//	    OpTxn(If(usage, region and health of each region, the tenant
//	             records, each placement's record as read),
//	          Then(usage of each region, once, with the sum;
//	               OpTxn(placement₁, audit₁), OpTxn(placement₂, audit₂), ...),
//	          Else(get each compared key)),
//	    OpTxn(... the next group ...))
//
// so a hot region costs one transaction (one fsync) for as many
// placements as etcd's limits allow, not one each.
//
// Capacity is never overcommitted: each write's decision read a
// snapshot that did not include the writes ahead of it, so the round
// checks every write that adds to a region against the region's usage
// as the committer last knew it (its own last commit, or what etcd
// answered, or the cache, whichever is newest) plus what the writes
// accepted before it in the round add; a write that no longer fits is
// sent back to be decided again. The usage compare makes that knowledge
// safe: if any other writer (another daemon, a release, the reconciler)
// changed the usage, the group fails as a whole and nothing of it is
// written.
//
// A group that fails says why: its Else branch reads every key it
// compared. Only the writes whose own conditions failed are sent back
// to be decided again (a region or health record or tenant record
// changed since their decision: the revision to wait for comes with
// them), or answered (the request id was used meanwhile: the placement
// that holds it). The others of the group are checked again against the
// usage etcd just returned and go in the next round, decided as they
// were.
//
// The API is submit (one write; Place) and submitAll (several queued at
// once, so they can share rounds; a batch of moves). A write is a record
// to write as decided (key, val, obj) with what its decision read:
//
//   - keyRev, the record's mod revision as read (0: a new placement,
//     whose request id must be unused);
//   - deltas, what it adds to or returns to each region's usage, with
//     read set on each region the decision chose (its region and health
//     records' revisions are compared, and it must still fit);
//   - guards, other records compared (the tenant record; a reconciler's
//     fence, by create revision);
//   - ops, written in the same transaction (its audit entry: a write
//     whose audit entry cannot be built is never submitted).
//
// A move is a write like a placement: key the placement, keyRev its mod
// revision as the reconciler read it, val the placement with the new
// region added and the old copy kept as retiring (make-before-break: it
// holds its capacity until its agent has stopped it); a delta adding to
// the new region, with read set; a delta of a negative amount (and count
// -1), without read, for each region whose copy the write drops; the
// fence as a create guard; and join false. Its outcome is
// committed (at rev), lost (the placement changed meanwhile: current is
// what etcd holds), or neither: decide again once the cache reflects
// rev. The committer never decides itself: it only checks again that a
// decision still holds.
//
// While a write is queued or in flight, decisions of this store see
// what it adds to its regions (overlay), and the committer remembers
// each usage value it committed until the cache shows it, so decisions
// count it too; and the watch takes the placements this store wrote as
// they were built (own), without decoding them again.
type committer struct {
	s *Store

	mu      sync.Mutex
	queue   []*write                    // submitted, not yet in a round, in order
	busy    map[string]struct{}         // regions with a round in flight
	keys    map[string]*write           // the record key of each queued or in-flight write that holds it
	pending map[string]router.Resources // per region: what the queued and in-flight writes add
	known   map[string]usageKnown       // per region: the newest usage record this committer learnt from etcd
	lastRev int64                       // the newest revision a round committed at
	changed chan struct{}               // closed, and replaced, whenever a write is answered
	closed  bool
	sending int // rounds being sent

	wake chan struct{} // wakes a sender

	own ownWrites
}

// senders is how many rounds may be in flight at once (on disjoint
// regions): a round waits for etcd, and while it does, the writes to
// other regions need not.
const senders = 4

// A write is one decided change submitted to the committer: a record
// (a placement: new, or updated by a move) written as decided, the
// usage it adds to or returns to regions, the records the decision read
// (each must be unchanged for the write to commit), and the operations
// that go with it in the same transaction (its audit entry).
type write struct {
	// key is the record written and val its value; obj is val decoded,
	// handed to the cache when the watch brings the write back.
	key string
	val string
	obj *router.Placement
	// keyRev is the mod revision of key the decision read: 0 when the
	// record must not exist (a new placement's request id is unused).
	keyRev int64
	// deltas are the write's changes to region usage.
	deltas []delta
	// guards are the other records whose revision the decision read
	// (the tenant record, a fence).
	guards []guard
	// ops are written with the record in the same transaction, size
	// the bytes of val and ops together.
	ops  []clientv3.Op
	size int
	// join: a second write of key while one is queued or in flight
	// does not go itself but takes the first one's outcome (a second
	// Place of one request id). Otherwise it waits for its turn.
	join bool
	// requestID names the write to the test hook (WithBeforeCommit).
	requestID string

	// The committer's, under its mutex.
	done      chan struct{}
	out       outcome
	followers []*write
	answered  bool
	sent      bool
	abandoned bool
	tries     int  // rounds it went back to the queue from
	solo      bool // goes in a round of its own (etcd refused a round it was in)
}

// A delta is what one write does to one region's usage record.
type delta struct {
	region string           // region key "provider/id"
	used   router.Resources // added to what the region's placements use; negative returns it
	count  int64            // added to the region's placement count
	// read: the decision read the region's record at rev and its
	// health record at healthRev (0: none) and chose the region on
	// them; both must be unchanged for the write to commit, and the
	// region must still have room for used.
	read           bool
	rev, healthRev int64
}

// A guard is a record the write's decision read: its mod revision must
// still be rev (0: it must not exist). create compares its create
// revision instead: a reconciler's fence (its election key, which it
// holds from its creation).
type guard struct {
	key    string
	rev    int64
	create bool
}

// outcome is the committer's answer to a write.
type outcome struct {
	// committed: the write is in etcd at rev.
	committed bool
	rev       int64
	// lost: the write's own record was not as its decision read it
	// (a Place: the request id was used meanwhile); current is the
	// record as etcd held it then (nil: none).
	lost    bool
	current *mvccpb.KeyValue
	// Neither committed nor lost, and no err: a record the decision
	// read has changed, or the write no longer fits its regions. Decide
	// again once the cache reflects rev.
	//
	// leader is set when the write joined another of the same key:
	// the outcome is that write's, and so is the placement.
	leader *write
	err    error
}

// usageKnown is a usage record as this committer learnt it from etcd
// (its own commit, or a failed compare's read), at mod revision rev.
type usageKnown struct {
	usageValue
	rev int64
}

func (c *committer) init(s *Store) {
	c.s = s
	c.busy = make(map[string]struct{})
	c.keys = make(map[string]*write)
	c.pending = make(map[string]router.Resources)
	c.known = make(map[string]usageKnown)
	c.changed = make(chan struct{})
	c.wake = make(chan struct{}, senders)
}

// submit queues w and waits for its outcome, or for ctx. If ctx ends
// before w is sent, w is never sent; after, it may commit, like any
// call abandoned in flight.
//
// When no round is being sent, there is nothing to wait for and nothing
// to batch with: the caller sends w's round itself, saving the hand-off
// to a sender and back (on a busy machine, a wait to be scheduled each).
func (c *committer) submit(ctx context.Context, w *write) outcome {
	c.mu.Lock()
	c.add(w)
	var r *round
	if c.sending == 0 {
		if r = c.round(); r != nil {
			c.sending++
		}
	}
	c.mu.Unlock()
	if r != nil {
		// Not cancelled with the call: like a sender's round, it is
		// bounded by the store's operation timeout.
		c.send(context.WithoutCancel(ctx), r)
	}
	c.kick()
	return c.await(ctx, w)
}

// submitAll submits the writes together, all queued before a round
// takes any (a batch of moves), and waits for every outcome.
func (c *committer) submitAll(ctx context.Context, ws []*write) []outcome {
	c.mu.Lock()
	for _, w := range ws {
		c.add(w)
	}
	c.mu.Unlock()
	c.kick()
	outs := make([]outcome, len(ws))
	for i, w := range ws {
		outs[i] = c.await(ctx, w)
	}
	return outs
}

// add queues w, or joins it to the write of its key in flight, or
// answers it at once when the committer is closed.
func (c *committer) add(w *write) {
	w.done = make(chan struct{})
	switch first := c.keys[w.key]; {
	case c.closed:
		w.answered, w.out = true, outcome{err: errClosed}
		close(w.done)
	case first != nil && w.join && first.join:
		first.followers = append(first.followers, w)
	default:
		c.enqueue(w)
	}
}

// kick wakes a sender.
func (c *committer) kick() {
	select {
	case c.wake <- struct{}{}:
	default: // every sender is awake already
	}
}

// await waits for w's outcome, or for ctx: then, if w is still queued,
// it is never sent.
func (c *committer) await(ctx context.Context, w *write) outcome {
	select {
	case <-w.done:
		return w.out
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case w.answered:
		return w.out
	case !w.sent && c.dequeue(w):
		// The writes that joined it go on without it.
		fs := w.followers
		w.followers = nil
		c.answer(w, outcome{err: ctx.Err()})
		if len(fs) > 0 {
			fs[0].followers = fs[1:]
			c.enqueue(fs[0])
		}
	default:
		w.abandoned = true
	}
	return outcome{err: ctx.Err()}
}

// enqueue adds w to the queue: it holds its key unless a write queued
// or in flight already does, and its additions show in the overlay.
func (c *committer) enqueue(w *write) {
	c.queue = append(c.queue, w)
	if c.keys[w.key] == nil {
		c.keys[w.key] = w
	}
	for _, d := range w.deltas {
		if adds(d) {
			c.pending[d.region] = c.pending[d.region].Add(d.used)
		}
	}
}

// dequeue removes a write that is in the queue; false if it is not.
func (c *committer) dequeue(w *write) bool {
	for i, q := range c.queue {
		if q == w {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return true
		}
	}
	return false
}

func adds(d delta) bool {
	return d.used.MilliCPU > 0 || d.used.MemoryMiB > 0 || d.used.GPU > 0
}

// answer hands w (and the writes that joined it) its outcome, lets its
// key and its overlay go, and wakes the decisions waiting for a change.
func (c *committer) answer(w *write, out outcome) {
	if w.answered {
		return
	}
	w.answered, w.out = true, out
	close(w.done)
	if c.keys[w.key] == w {
		delete(c.keys, w.key) // the next queued write of the key takes it (ready)
	}
	for _, d := range w.deltas {
		if adds(d) {
			left := c.pending[d.region].Sub(d.used)
			if left == (router.Resources{}) {
				delete(c.pending, d.region)
			} else {
				c.pending[d.region] = left
			}
		}
	}
	for _, f := range w.followers {
		fo := out
		fo.leader = w
		f.answered, f.out = true, fo
		close(f.done)
	}
	w.followers = nil
	close(c.changed)
	c.changed = make(chan struct{})
}

// overlay returns the regions as a decision of this store should see
// them: each region's usage as the committer last learnt it from etcd
// when that is newer than the view's, plus what the queued and
// in-flight writes add (from free capacity an agent reported too).
// Regions it changes are copies in buf; when it changes none, the
// view's slice is returned. The wait says what to wait for before
// deciding again if only the overlay stands in the way.
func (c *committer) overlay(v *regionView, buf *[]router.RegionState) ([]router.RegionState, overlaid) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := overlaid{changed: c.changed}
	copied := false
	add := func(key string, used router.Resources) {
		i, ok := v.index[key]
		if !ok || v.states[i].Region == nil {
			return
		}
		if !copied {
			*buf = append((*buf)[:0], v.states...)
			copied = true
		}
		st := &(*buf)[i]
		st.Used = st.Used.Add(used)
		if st.Reported != nil {
			free := st.Reported.Sub(positive(used))
			st.Reported = &free
		}
	}
	for key, k := range c.known {
		if i, ok := v.index[key]; ok && k.rev > v.states[i].UsageRev {
			add(key, k.Used.Sub(v.states[i].Used))
			o.behind = max(o.behind, k.rev)
		}
	}
	for key, used := range c.pending {
		add(key, used)
		o.pending = true
	}
	if !copied {
		return v.states, overlaid{}
	}
	return *buf, o
}

// overlaid says what an overlay added to a view.
type overlaid struct {
	// behind is the newest usage record the committer knew and the
	// view did not show (0: none).
	behind int64
	// pending: writes queued or in flight added to it; changed is
	// closed when one of them (or any write) is answered.
	pending bool
	changed <-chan struct{}
}

func (o overlaid) any() bool { return o.behind != 0 || o.pending }

// settled waits for what the overlay o counted to settle: for the cache
// to show the usage records o was ahead of it by, or else for a write
// to be answered and the cache to show what the committer has
// committed. Then a decision on the cache alone sees what o counted.
func (c *committer) settled(ctx context.Context, o overlaid) error {
	if o.behind != 0 {
		return c.s.waitCommitted(ctx, o.behind)
	}
	select {
	case <-o.changed:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	rev := c.lastRev
	c.mu.Unlock()
	return c.s.waitCommitted(ctx, rev)
}

// run is one sender: it sends rounds until ctx ends.
func (c *committer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			c.close()
			return
		case <-c.wake:
		}
		for {
			c.mu.Lock()
			r := c.round()
			more := r != nil && len(c.queue) > 0
			if r != nil {
				c.sending++
			}
			c.mu.Unlock()
			if r == nil {
				break
			}
			if more {
				select {
				case c.wake <- struct{}{}: // another sender can take the rest
				default:
				}
			}
			c.send(ctx, r)
		}
	}
}

// close answers every queued write: the store is closing.
func (c *committer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	q := c.queue
	c.queue = nil
	for _, w := range q {
		c.answer(w, outcome{err: errClosed})
	}
}

// ownWrites remembers the placements this store is committing, by key,
// with the exact value written: when the watch brings one back, the
// cache takes the object as it is instead of decoding the value and
// parsing the label again.
type ownWrites struct {
	mu sync.Mutex
	m  map[string]ownWrite
}

type ownWrite struct {
	val string
	p   *router.Placement
}

func (o *ownWrites) add(key, val string, p *router.Placement) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[string]ownWrite)
	}
	o.m[key] = ownWrite{val, p}
}

func (o *ownWrites) drop(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, key)
}

// take returns the placement written as val under key, if this store
// wrote it, and forgets it.
func (o *ownWrites) take(key string, val []byte) *router.Placement {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.m[key]
	if !ok || w.val != string(val) {
		return nil
	}
	delete(o.m, key)
	return w.p
}
