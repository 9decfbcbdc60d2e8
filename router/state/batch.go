package state

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// A round is one etcd transaction of the committer (see committer.go):
// groups of writes, each group a nested transaction on regions that no
// other group of the round, and no other round in flight, touches.
//
// etcd bounds each level of a transaction to --max-txn-ops operations
// (128 by default), a nested transaction to what its parent level
// leaves, and a request to --max-request-bytes (1.5 MiB by default). A
// round of n groups keeps n + (a group's width) + (the operations of one
// of its writes) within maxTxnOps, and its values within maxBatchBytes.
const (
	maxTxnOps     = 128
	maxBatchBytes = 512 << 10
)

type round struct {
	groups  []*group
	regions []string // held busy while the round is in flight
	size    int
}

// A group is the writes of a round on one set of regions: one nested
// transaction that compares each record they read once and writes each
// region's usage once, with their sum.
type group struct {
	writes  []*write
	regions []string              // in order of first use
	sum     map[string]usageValue // per region: the usage record written
	cmps    []compared            // each key compared once, in order
	cmpOf   map[string]int
	maxw    int // the most operations of one of its writes
}

// compared is one compare of a group: key's mod revision (its create
// revision if create) is rev. region is set when key is that region's
// usage record.
type compared struct {
	key    string
	rev    int64
	create bool
	region string
	value  bool // read the value, not only the revision, when it fails
}

// holds reports whether kv (nil: no such key) is as cm expects.
func (cm *compared) holds(kv *mvccpb.KeyValue) bool {
	switch {
	case kv == nil:
		return cm.rev == 0
	case cm.create:
		return kv.CreateRevision == cm.rev
	default:
		return kv.ModRevision == cm.rev
	}
}

// width is the most operations the group has at its own level: a
// compare, and a read should the compares fail, per key; a usage write
// per region and a nested transaction per write.
func (g *group) width() int { return max(len(g.cmps), len(g.regions)+len(g.writes)) }

// compare adds a compare unless the key is compared already.
func (g *group) compare(cm compared) {
	if _, ok := g.cmpOf[cm.key]; !ok {
		g.cmpOf[cm.key] = len(g.cmps)
		g.cmps = append(g.cmps, cm)
	}
}

// round takes the next round from the queue, or returns nil when no
// queued write can go. It checks every write it takes against the
// freshest state: the cache, and the usage this committer last learnt
// from etcd, with the writes it took before. A write whose decision
// read a record that has changed since, or that no longer fits a region
// it adds to, is answered, to be decided again, instead. Called with
// c.mu held.
func (c *committer) round() *round {
	if len(c.queue) == 0 {
		return nil
	}
	tx := c.s.db.Txn(false)
	viewRev, view := revisionTxn(tx)
	tx.Abort()
	c.prune(view)

	// The newest revision any queued decision read of each guarded
	// record: a write that read an older one is stale (and so two
	// writes of one group never compare a key at two revisions).
	newest := map[string]int64{}
	for _, w := range c.queue {
		for _, g := range w.guards {
			newest[g.key] = max(newest[g.key], g.rev)
		}
	}

	r := &round{}
	byRegion := map[string]*group{}
	acc := map[string]usageKnown{} // each region's usage with the writes taken
	var keep []*write
	full := false
	for _, w := range c.queue {
		if full || !c.ready(w) || (w.solo && len(r.groups) > 0) {
			keep = append(keep, w)
			continue
		}
		if rev, stale := c.stale(w, view, viewRev, newest); stale {
			c.answer(w, outcome{rev: rev})
			continue
		}
		sums, rev, ok := c.fits(w, view, acc)
		if !ok {
			c.answer(w, outcome{rev: rev})
			continue
		}
		g := r.place(c.s, w, byRegion, func(region string) int64 { return c.usage(view, region).rev })
		if g == nil {
			keep = append(keep, w)
			continue
		}
		for region, u := range sums {
			acc[region] = u
			g.sum[region] = u.usageValue
		}
		w.sent = true
		full = w.solo
	}
	c.queue = keep
	if len(r.groups) == 0 {
		return nil
	}
	for _, g := range r.groups {
		r.regions = append(r.regions, g.regions...)
	}
	for _, key := range r.regions {
		c.busy[key] = struct{}{}
	}
	return r
}

// ready: no other write of w's key is ahead of it or in flight, and
// none of its regions has a round in flight. A ready write holds its key.
func (c *committer) ready(w *write) bool {
	if h := c.keys[w.key]; h != nil && h != w && !h.answered {
		return false
	}
	for _, d := range w.deltas {
		if _, busy := c.busy[d.region]; busy {
			return false
		}
	}
	c.keys[w.key] = w
	return true
}

// stale reports whether a record w's decision read has changed since,
// as the cache (view, at viewRev) or a newer decision shows, and the
// revision to wait for before deciding again. (The cache is at least
// as new as every decision's snapshot: they were taken before.)
func (c *committer) stale(w *write, view *regionView, viewRev int64, newest map[string]int64) (int64, bool) {
	for _, d := range w.deltas {
		if !d.read {
			continue
		}
		st, ok := view.state(d.region)
		if !ok || st.Region == nil || st.Rev != d.rev || st.HealthRev != d.healthRev {
			return viewRev, true
		}
	}
	for _, g := range w.guards {
		if n := newest[g.key]; n > g.rev {
			return n, true
		}
	}
	return 0, false
}

// usage is a region's usage record as the committer knows it best:
// what it learnt from etcd when that is newer than the cache's.
func (c *committer) usage(view *regionView, region string) usageKnown {
	i, ok := view.index[region]
	if !ok {
		return c.known[region]
	}
	st := &view.states[i]
	if k, ok := c.known[region]; ok && k.rev > st.UsageRev {
		return k
	}
	return usageKnown{usageValue{Used: st.Used, Placements: view.counts[i]}, st.UsageRev}
}

// prune forgets the usage records the cache has caught up with.
func (c *committer) prune(view *regionView) {
	for region, k := range c.known {
		if i, ok := view.index[region]; !ok || view.states[i].UsageRev >= k.rev {
			delete(c.known, region)
		}
	}
}

// fits checks w against each region's usage with the writes taken
// before it (acc; for a region none of them touched, the freshest
// known): every region w adds to must have room for it, as the
// capacity rule reckons room. It returns the usage records with w, or
// the revision to wait for when w does not fit.
func (c *committer) fits(w *write, view *regionView, acc map[string]usageKnown) (map[string]usageKnown, int64, bool) {
	sums := make(map[string]usageKnown, len(w.deltas))
	for _, d := range w.deltas {
		u, ok := sums[d.region]
		if !ok {
			if u, ok = acc[d.region]; !ok {
				u = c.usage(view, d.region)
			}
		}
		if adds(d) {
			st, ok := view.state(d.region)
			if !ok || st.Region == nil {
				return nil, 0, false
			}
			// The region as it is with the writes before w: what they
			// add is gone from its capacity, and from what its agent
			// reported free.
			if extra := positive(u.Used.Sub(st.Used)); st.Reported != nil {
				free := st.Reported.Sub(extra)
				st.Reported = &free
			}
			st.Used = u.Used
			if !d.used.Fits(st.Free()) {
				return nil, u.rev, false
			}
		}
		u.Used = positive(u.Used.Add(d.used))
		u.Placements = max(u.Placements+d.count, 0)
		sums[d.region] = u
	}
	return sums, 0, true
}

// positive is r with negative amounts taken as none.
func positive(r router.Resources) router.Resources {
	return router.Resources{MilliCPU: max(r.MilliCPU, 0), MemoryMiB: max(r.MemoryMiB, 0), GPU: max(r.GPU, 0)}
}

// place puts w into the round's group of its regions (joining the
// groups of several regions into one), or into a new group, if etcd's
// limits leave room; nil if they do not. usageRev is the revision of a
// region's usage record to compare when the round has not touched it.
func (r *round) place(s *Store, w *write, byRegion map[string]*group, usageRev func(region string) int64) *group {
	var into []*group
	for _, d := range w.deltas {
		if g := byRegion[d.region]; g != nil && !slices.Contains(into, g) {
			into = append(into, g)
		}
	}
	cmps := w.compares(s, usageRev)
	// What the group would be: its compares, regions and writes.
	keys := map[string]struct{}{}
	regions := map[string]struct{}{}
	writes, maxw := 1, 1+len(w.ops)
	for _, g := range into {
		for _, cm := range g.cmps {
			keys[cm.key] = struct{}{}
		}
		for _, key := range g.regions {
			regions[key] = struct{}{}
		}
		writes, maxw = writes+len(g.writes), max(maxw, g.maxw)
	}
	for _, cm := range cmps {
		keys[cm.key] = struct{}{}
	}
	for _, d := range w.deltas {
		regions[d.region] = struct{}{}
	}
	most := max(len(keys), len(regions)+writes) + maxw
	for _, g := range r.groups {
		if !slices.Contains(into, g) {
			most = max(most, g.width()+g.maxw)
		}
	}
	groups := len(r.groups) + 1 - len(into)
	size := r.size + w.size + len(w.key)
	for _, cm := range cmps {
		size += len(cm.key)
	}
	if len(r.groups) > 0 && (groups+most > maxTxnOps || size > maxBatchBytes) {
		return nil
	}

	var g *group
	if len(into) == 0 {
		g = &group{sum: map[string]usageValue{}, cmpOf: map[string]int{}}
		r.groups = append(r.groups, g)
	} else {
		g = into[0]
		for _, o := range into[1:] { // w joins them
			g.writes = append(g.writes, o.writes...)
			for _, key := range o.regions {
				g.regions = append(g.regions, key)
				g.sum[key] = o.sum[key]
				byRegion[key] = g
			}
			for _, cm := range o.cmps {
				g.compare(cm)
			}
			g.maxw = max(g.maxw, o.maxw)
			r.groups = slices.DeleteFunc(r.groups, func(x *group) bool { return x == o })
		}
	}
	r.size = size
	g.writes = append(g.writes, w)
	g.maxw = max(g.maxw, 1+len(w.ops))
	for _, d := range w.deltas {
		if byRegion[d.region] == nil {
			byRegion[d.region] = g
			g.regions = append(g.regions, d.region)
		}
	}
	for _, cm := range cmps {
		g.compare(cm)
	}
	return g
}

// compares are the compares of w: its own record, each region's usage
// record (at usageRev), the region and health records its decision
// read, and its guards.
func (w *write) compares(s *Store, usageRev func(region string) int64) []compared {
	cmps := make([]compared, 0, 1+3*len(w.deltas)+len(w.guards))
	cmps = append(cmps, compared{key: w.key, rev: w.keyRev, value: true})
	for _, d := range w.deltas {
		cmps = append(cmps, compared{key: s.keys.usage(d.region), rev: usageRev(d.region), region: d.region, value: true})
		if d.read {
			cmps = append(cmps,
				compared{key: s.keys.region(d.region), rev: d.rev},
				// 0 when the region has no health record: one
				// created meanwhile fails the compare too.
				compared{key: s.keys.health(d.region), rev: d.healthRev})
		}
	}
	for _, g := range w.guards {
		cmps = append(cmps, compared{key: g.key, rev: g.rev, create: g.create})
	}
	return cmps
}

// txn is the group's nested transaction.
func (g *group) txn(s *Store) (clientv3.Op, error) {
	cmps := make([]clientv3.Cmp, len(g.cmps))
	els := make([]clientv3.Op, len(g.cmps))
	for i, cm := range g.cmps {
		if cm.create {
			cmps[i] = clientv3.Compare(clientv3.CreateRevision(cm.key), "=", cm.rev)
		} else {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(cm.key), "=", cm.rev)
		}
		if cm.value {
			els[i] = clientv3.OpGet(cm.key)
		} else {
			els[i] = clientv3.OpGet(cm.key, clientv3.WithKeysOnly())
		}
	}
	ops := make([]clientv3.Op, 0, len(g.regions)+len(g.writes))
	for _, region := range g.regions {
		val, err := json.Marshal(g.sum[region])
		if err != nil {
			return clientv3.Op{}, err
		}
		ops = append(ops, clientv3.OpPut(s.keys.usage(region), string(val)))
	}
	for _, w := range g.writes {
		wops := make([]clientv3.Op, 0, 1+len(w.ops))
		wops = append(wops, clientv3.OpPut(w.key, w.val))
		ops = append(ops, clientv3.OpTxn(nil, append(wops, w.ops...), nil))
	}
	return clientv3.OpTxn(cmps, ops, els), nil
}

// send commits a round and answers its writes.
func (c *committer) send(ctx context.Context, r *round) {
	if hook := c.s.beforeCommit; hook != nil {
		for _, g := range r.groups {
			for _, w := range g.writes {
				hook(w.requestID)
			}
		}
	}
	ops := make([]clientv3.Op, len(r.groups))
	var err error
	for i, g := range r.groups {
		if ops[i], err = g.txn(c.s); err != nil {
			break
		}
		for _, w := range g.writes {
			if w.obj != nil {
				c.own.add(w.key, w.val, w.obj)
			}
		}
	}
	var resp *clientv3.TxnResponse
	if err == nil {
		tctx, cancel := context.WithTimeout(ctx, c.s.opTimeout)
		resp, err = c.s.kv.Txn(tctx).Then(ops...).Commit()
		cancel()
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.sending--
	for _, key := range r.regions {
		delete(c.busy, key)
	}
	var requeue []*write
	writes := 0
	for _, g := range r.groups {
		writes += len(g.writes)
	}
	for i, g := range r.groups {
		var gr *etcdserverpb.TxnResponse
		if err == nil && i < len(resp.Responses) {
			gr = resp.Responses[i].GetResponseTxn()
		}
		switch {
		case err != nil && writes > 1 && (errors.Is(err, rpctypes.ErrTooManyOps) ||
			errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrDuplicateKey)):
			// etcd refused the round as a whole (past a limit this
			// reckoning missed, or a key twice, which would be a bug):
			// each write goes again in a round of its own, so one
			// cannot fail the others.
			c.s.log.Warn("state: etcd refused a round of placements; sending them one by one", "writes", len(g.writes), "err", err)
			for _, w := range g.writes {
				c.own.drop(w.key)
				w.sent, w.solo = false, true
				requeue = append(requeue, w)
			}
		case err != nil || gr == nil:
			if err == nil {
				err = errors.New("etcd answered a round without a response for each group")
			}
			// The outcome is unknown: the transaction may have reached
			// etcd and commit later.
			for _, region := range g.regions {
				delete(c.known, region)
			}
			for _, w := range g.writes {
				c.own.drop(w.key)
				c.answer(w, outcome{err: err})
			}
		case gr.Succeeded:
			rev := resp.Header.Revision
			c.lastRev = max(c.lastRev, rev)
			for _, region := range g.regions {
				c.known[region] = usageKnown{g.sum[region], rev}
			}
			for _, w := range g.writes {
				c.answer(w, outcome{committed: true, rev: rev})
			}
		default:
			requeue = append(requeue, c.failed(g, gr, resp.Header.Revision)...)
		}
	}
	if len(requeue) > 0 {
		c.queue = append(requeue, c.queue...)
		c.kick()
	}
}

// failed handles a group whose compares failed: it learns the usage
// etcd holds, answers the writes whose own conditions failed, and
// returns the others, to go again.
func (c *committer) failed(g *group, gr *etcdserverpb.TxnResponse, rev int64) []*write {
	changed := map[string]*mvccpb.KeyValue{} // the keys whose compare failed: what etcd holds
	for i, cm := range g.cmps {
		var kv *mvccpb.KeyValue
		if i < len(gr.Responses) {
			if kvs := gr.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
				kv = kvs[0]
			}
		}
		if cm.holds(kv) {
			continue
		}
		changed[cm.key] = kv
		if cm.region == "" {
			continue
		}
		cur := kv.GetModRevision()
		var u usageValue
		if kv == nil || json.Unmarshal(kv.Value, &u) != nil {
			delete(c.known, cm.region) // the cache will tell
			continue
		}
		if k, ok := c.known[cm.region]; !ok || k.rev < cur {
			c.known[cm.region] = usageKnown{u, cur}
		}
	}
	var again []*write
	for _, w := range g.writes {
		c.own.drop(w.key)
		if kv, ok := changed[w.key]; ok {
			c.answer(w, outcome{lost: true, current: kv, rev: rev})
			continue
		}
		if w.affected(c.s, changed) || w.tries >= c.s.maxRetries {
			c.answer(w, outcome{rev: rev})
			continue
		}
		if w.abandoned {
			// Its caller has gone: it need not go again. The writes
			// that joined it (Places of its request id) decide again.
			c.answer(w, outcome{rev: rev})
			continue
		}
		// Only usage moved (or another write's record): the same
		// decision goes again, checked against the usage just read.
		w.tries++
		w.sent = false
		again = append(again, w)
	}
	return again
}

// affected reports whether a record w's decision read is among the
// changed keys (usage records aside: the committer checks those itself).
func (w *write) affected(s *Store, changed map[string]*mvccpb.KeyValue) bool {
	for _, d := range w.deltas {
		if !d.read {
			continue
		}
		if _, ok := changed[s.keys.region(d.region)]; ok {
			return true
		}
		if _, ok := changed[s.keys.health(d.region)]; ok {
			return true
		}
	}
	for _, g := range w.guards {
		if _, ok := changed[g.key]; ok {
			return true
		}
	}
	return false
}

var errClosed = errors.New("store closed")
