package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
)

// The reconciler's writes go to etcd in batches. A drained, failed or
// revoked region can hold tens of thousands of placements; one
// transaction each (one raft proposal, one fsync, one wait for the
// cache) would take minutes. Instead the reconciler decides placement
// after placement on one snapshot and gathers what they write into one
// transaction, up to etcd's limits (maxTxnOps operations at each level,
// maxBatchBytes), then commits it and reads back a fresh snapshot:
//
//	Txn().If(fence, each placement at its mod revision,
//	         each region a decision rests on and its health at theirs,
//	         each region whose having no agent a retirement rests on: no agent,
//	         the usage of each region written, at its mod revision)
//	     .Then(each placement, its audit entries, one usage record per region)
//
// All or nothing: a batch is as safe as one placement alone. Each
// decision reads the regions as the snapshot had them plus what the
// moves already in the batch took (the capacity and the agent's
// reported free), so the batch never takes more than a region has; the
// usage written is the snapshot's plus the batch's moves less its
// retirements, compared at the snapshot's revision. Moves stay
// make-before-break: the old copy is kept, retiring, and released by a
// later batch once the replacement is confirmed (Reconcile never
// retires a copy in the call that moved it).
//
// A batch that loses a race (a Place took capacity in a region it
// writes, an agent acknowledged a replica of one of its placements) is
// decided again on a fresh snapshot, in batches half as large, down to
// one placement; a placement that loses alone is looked at again after
// retryAfter. Successes double the size back up. With MoveEvery, a
// batch holds at most one move: the pacing is per move, not per batch.

// maxBatchMembers bounds the placements of one batch; etcd's limits
// bound it first (about 60 moves a transaction).
const maxBatchMembers = 512

// reconcileWrite is what committing one reconciled placement takes.
type reconcileWrite struct {
	key string // "tenant/id"
	rec *placementRecord
	res router.Reconciliation
	// cmp compares the placement at its mod revision; ops are its put
	// and its audit entries (each a nested transaction, the widest of
	// width operations); size is the bytes they write.
	cmp   clientv3.Cmp
	ops   []clientv3.Op
	width int
	size  int
	// usage: what its moves take and its retirements return; agentless:
	// the regions whose having no agent its retirements rest on.
	usage     []usageDelta
	agentless []string
	audits    []audit.Entry
}

// usageDelta is a change to a region's usage: a move takes a replica's
// resources in its new region (n = +1), a retirement returns them in the
// old one (n = -1).
type usageDelta struct {
	region string
	res    router.Resources
	n      int64
}

// reconcileWrite turns a reconciliation of rec, decided at now, into
// what its commit writes.
func (s *Store) reconcileWrite(key string, rec *placementRecord, res router.Reconciliation, now time.Time) (*reconcileWrite, error) {
	p, next := rec.P, res.Next
	w := &reconcileWrite{key: key, rec: rec, res: res}
	pkey := s.keys.placement(keyOf(next))
	pval, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	w.cmp = clientv3.Compare(clientv3.ModRevision(pkey), "=", rec.Rev)
	w.ops = append(w.ops, clientv3.OpPut(pkey, string(pval)))
	w.size = len(pkey) + len(pval)
	wl := &p.Workload
	record := func(op string, regions []string, reasons []router.Reason) {
		a := audit.Entry{Time: now.UTC(), Op: op, Actor: actorReconciler, RequestID: p.ID, Tenant: p.Tenant, Workload: wl.Name, Label: wl.AuditLabel(), Regions: regions, Revision: s.Revision()}
		for _, rs := range reasons {
			a.Reasons = append(a.Reasons, string(rs.Code)+": "+rs.Message)
		}
		w.audits = append(w.audits, a)
	}
	for _, a := range res.Actions {
		switch a.Kind {
		case router.ActionFlag:
			record(audit.OpViolation, []string{a.Region}, a.Reasons)
		case router.ActionStrand:
			record(audit.OpStranded, []string{a.Region}, a.Reasons)
		case router.ActionMove:
			record(audit.OpReroute, []string{a.Region, a.To}, a.Reasons)
			w.usage = append(w.usage, usageDelta{region: a.To, res: wl.Resources, n: 1})
		case router.ActionRetire:
			record(audit.OpRetire, []string{a.Region, a.To}, nil)
			w.usage = append(w.usage, usageDelta{region: a.Region, res: wl.Resources, n: -1})
			if a.NoAgent != "" {
				w.agentless = append(w.agentless, a.NoAgent)
			}
		case router.ActionRecover:
			record(audit.OpRecovered, p.Regions, nil)
		}
	}
	for _, a := range w.audits {
		aops, size, err := s.auditOps(a)
		if err != nil {
			return nil, err
		}
		w.ops = append(w.ops, clientv3.OpTxn(nil, aops, nil))
		w.width = max(w.width, len(aops))
		w.size += size
	}
	return w, nil
}

// batch gathers reconciled placements decided on one snapshot for one
// transaction (see above). The placements of a batch write the usage of
// the same regions (its lane: sig), so that batches of other lanes can
// be in flight at the same time.
type batch struct {
	sig    string
	writes []*reconcileWrite
	// The comparisons the members share: regions (by index) and their
	// health, regions without an agent, usage records written.
	regions   map[int]struct{}
	agentless map[string]struct{}
	usage     map[string]struct{}
	// What the transaction holds so far: comparisons and operations at
	// its top level, the widest nested transaction, bytes written.
	cmps, ops, width, size int
}

func newBatch(sig string) *batch {
	return &batch{
		sig:     sig,
		regions: map[int]struct{}{}, agentless: map[string]struct{}{}, usage: map[string]struct{}{},
		cmps: 1, // the fence
	}
}

// lane is the usage records w writes, as a batch's sig.
func lane(w *reconcileWrite) string {
	switch len(w.usage) {
	case 0:
		return ""
	case 1:
		return w.usage[0].region
	}
	keys := make([]string, 0, len(w.usage))
	for _, d := range w.usage {
		if !slices.Contains(keys, d.region) {
			keys = append(keys, d.region)
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, " ")
}

// fits reports whether w can join the batch within etcd's limits and
// at most members placements. An empty batch takes anything: a write
// too large alone is etcd's to refuse.
func (b *batch) fits(w *reconcileWrite, members int) bool {
	if len(b.writes) == 0 {
		return true
	}
	if len(b.writes) >= members {
		return false
	}
	cmps, ops := b.cmps+1, b.ops+len(w.ops)
	for _, idx := range w.res.Compared {
		if _, ok := b.regions[idx]; !ok {
			cmps += 2
		}
	}
	for _, key := range w.agentless {
		if _, ok := b.agentless[key]; !ok {
			cmps++
		}
	}
	for _, d := range w.usage {
		if _, ok := b.usage[d.region]; !ok {
			cmps, ops = cmps+1, ops+1
		}
	}
	return max(cmps, ops)+max(b.width, w.width) <= maxTxnOps && b.size+w.size <= maxBatchBytes
}

// add puts w in the batch.
func (b *batch) add(w *reconcileWrite) {
	b.writes = append(b.writes, w)
	b.cmps++
	b.ops += len(w.ops)
	for _, idx := range w.res.Compared {
		if _, ok := b.regions[idx]; !ok {
			b.regions[idx] = struct{}{}
			b.cmps += 2
		}
	}
	for _, key := range w.agentless {
		if _, ok := b.agentless[key]; !ok {
			b.agentless[key] = struct{}{}
			b.cmps++
		}
	}
	for _, d := range w.usage {
		if _, ok := b.usage[d.region]; !ok {
			b.usage[d.region] = struct{}{}
			b.cmps, b.ops = b.cmps+1, b.ops+1
		}
	}
	b.width = max(b.width, w.width)
	b.size += w.size
}

// take takes from the reconciler's regions what w's moves take (the
// capacity, and the free its agent reported), so that the decisions
// after it see it, whatever batch they go in. A batch that fails leaves
// its moves taken until the snapshot is released: the later decisions
// on it only saw less room than there was.
func (r *reconciler) take(w *reconcileWrite) {
	for _, a := range w.res.Actions {
		if a.Kind != router.ActionMove {
			continue
		}
		if !r.owned {
			r.states, r.owned = slices.Clone(r.states), true
		}
		st := &r.states[a.ToIndex]
		res := w.rec.P.Workload.Resources
		st.Used = st.Used.Add(res)
		if st.Reported != nil {
			left := st.Reported.Sub(res)
			st.Reported = &left
		}
	}
}

// txn is the batch's transaction: its comparisons and operations, and
// the usage records it writes. The usage of a region is the one in base
// when it has it (what an earlier batch on the same snapshot wrote),
// else the snapshot's.
func (b *batch) txn(s *Store, f fence, view *regionView, base map[string]usageBase) ([]clientv3.Cmp, []clientv3.Op, map[string]usageBase, error) {
	cmps := make([]clientv3.Cmp, 0, b.cmps)
	ops := make([]clientv3.Op, 0, b.ops)
	cmps = append(cmps, f.cmp())
	var deltas []usageDelta
	for _, w := range b.writes {
		cmps = append(cmps, w.cmp)
		ops = append(ops, w.ops...)
		deltas = append(deltas, w.usage...)
	}
	idxs := make([]int, 0, len(b.regions))
	for idx := range b.regions {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	for _, idx := range idxs {
		key, st := view.keys[idx], &view.states[idx]
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(s.keys.region(key)), "=", st.Rev),
			clientv3.Compare(clientv3.ModRevision(s.keys.health(key)), "=", st.HealthRev))
	}
	for _, key := range sortedKeys(b.agentless) {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.keys.live(key)), "=", 0))
	}
	ucmps, uops, wrote, err := s.usageOps(view, base, deltas)
	if err != nil {
		return nil, nil, nil, err
	}
	return append(cmps, ucmps...), append(ops, uops...), wrote, nil
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// usageBase is a region's usage record as a batch wrote it: what the
// next batch on the same snapshot starts from, and compares (rev is the
// revision it was written at).
type usageBase struct {
	used router.Resources
	n    int64
	rev  int64
}

// usageOps compares the usage of every region the deltas change, as base
// (else view) has it, and writes it with the deltas applied (never below
// zero). It returns what it writes (rev unset).
func (s *Store) usageOps(view *regionView, base map[string]usageBase, deltas []usageDelta) ([]clientv3.Cmp, []clientv3.Op, map[string]usageBase, error) {
	var order []string
	sums := make(map[string]usageBase)
	for _, d := range deltas {
		u, ok := sums[d.region]
		if !ok {
			idx, known := view.index[d.region]
			if !known {
				// A copy cannot hold a region that is gone, nor a move
				// take one.
				return nil, nil, nil, fmt.Errorf("usage of unknown region %s", d.region)
			}
			if u, ok = base[d.region]; !ok {
				st := &view.states[idx]
				u = usageBase{used: st.Used, n: view.counts[idx], rev: st.UsageRev}
			}
			order = append(order, d.region)
		}
		if d.n > 0 {
			u.used = u.used.Add(d.res)
		} else {
			u.used = u.used.Sub(d.res)
		}
		u.n += d.n
		sums[d.region] = u
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	wrote := make(map[string]usageBase, len(order))
	for _, key := range order {
		u := sums[key]
		used := router.Resources{MilliCPU: max(u.used.MilliCPU, 0), MemoryMiB: max(u.used.MemoryMiB, 0), GPU: max(u.used.GPU, 0)}
		n := max(u.n, 0)
		uval, err := json.Marshal(usageValue{Used: used, Placements: n})
		if err != nil {
			return nil, nil, nil, err
		}
		ukey := s.keys.usage(key)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ukey), "=", u.rev))
		ops = append(ops, clientv3.OpPut(ukey, string(uval)))
		wrote[key] = usageBase{used: used, n: n}
	}
	return cmps, ops, wrote, nil
}

// maxInflight is the most batches in flight at once (on disjoint
// usage records): etcd commits the ones that arrive together in one
// round of its log, one fsync for all.
const maxInflight = 4

// look looks at one placement, by key "tenant/id": it decides on the
// shared snapshot, with what the batches gathered on it have taken
// (router.Reconcile), and adds what changed to the batch of its lane,
// sending that batch first when it is full.
func (r *reconciler) look(ctx context.Context, key string, ref dirtyRef) {
	s := r.s
	if _, ok := r.wrote[key]; ok {
		r.flush(ctx) // looked at again: on what the first look wrote
	}
	moves := r.maxMoves(s.clock())
	for {
		snap := r.current()
		if r.states == nil {
			r.states, r.owned = snap.view.states, false
		}
		rec := ref.rec
		if rec == nil || ref.gen != snap.gen {
			rec = placementTxn(snap.tx, key)
		}
		if rec == nil || !rec.P.State.Live() {
			r.forget(key)
			return
		}
		p := rec.P
		tenant := snap.tenant(p.Tenant)
		if tenant == nil {
			s.log.Warn("state: reconcile placement", "placement", key, "err", fmt.Sprintf("tenant %q is not cached", p.Tenant))
			r.retryLater(key, r.cfg.Interval)
			return
		}
		now := s.clock()
		var deps snapshot // the placement's dependencies, as this snapshot holds them
		deps.regions = snap.view
		deps.targetsOf(snap.tx, &p.Workload, s.keys)
		res := router.Reconcile(s.engine, p, router.ReconcileInput{
			Tenant: tenant, Regions: r.states, Index: snap.view.index, Now: now, MaxMoves: moves,
			Equivalence: s.Equivalence(), Targets: deps.targets, Edges: s.Edges(), Services: s.ServicesByName(),
		})
		r.note(key, p, &res)
		if res.Keep() {
			return
		}
		w, err := s.reconcileWrite(key, rec, res, now)
		if err != nil {
			s.log.Warn("state: reconcile placement", "placement", key, "err", err)
			r.retryLater(key, r.cfg.Interval)
			return
		}
		sig := lane(w)
		b := r.open[sig]
		if b == nil {
			b = newBatch(sig)
			r.open[sig] = b
		}
		if !b.fits(w, r.members) {
			if !r.send(ctx, b) {
				continue // the snapshot was let go: decide again on fresh state
			}
			b = newBatch(sig)
			r.open[sig] = b
		}
		b.add(w)
		r.take(w)
		r.wrote[key] = struct{}{}
		if slices.ContainsFunc(res.Actions, func(a router.Action) bool { return a.Kind == router.ActionMove }) {
			r.lastMove = now // (with MoveEvery, the next look holds its moves)
		}
		return
	}
}

// inflight is a batch sent to etcd, not yet answered.
type inflight struct {
	b     *batch
	wrote map[string]usageBase
	done  chan struct{}
	resp  *clientv3.TxnResponse
	err   error
}

// overlaps reports whether fl writes a usage record b writes too.
func (fl *inflight) overlaps(b *batch) bool {
	for key := range b.usage {
		if _, ok := fl.b.usage[key]; ok {
			return true
		}
	}
	return false
}

// send sends batch b (removed from the open ones) once no batch in
// flight writes a usage record it writes and fewer than maxInflight
// are, and starts from the usage those wrote. It reports false if a
// batch in flight failed: then every batch gathered on the snapshot
// was dropped (their placements are decided again on fresh state), b
// with them, and the snapshot released.
func (r *reconciler) send(ctx context.Context, b *batch) bool {
	if r.open[b.sig] == b {
		delete(r.open, b.sig)
	}
	for len(r.inflight) > 0 {
		i := slices.IndexFunc(r.inflight, func(fl *inflight) bool { return fl.overlaps(b) })
		if i < 0 && len(r.inflight) < maxInflight {
			break
		}
		if i < 0 {
			i = 0 // the oldest
		}
		fl := r.inflight[i]
		r.inflight = slices.Delete(r.inflight, i, i+1)
		if !r.settle(ctx, fl) {
			r.requeue(b)
			r.abandon(ctx)
			return false
		}
	}
	if len(b.writes) == 0 {
		return true
	}
	s := r.s
	cmps, ops, wrote, err := b.txn(s, r.f, r.snap.view, r.base)
	if err != nil {
		s.log.Warn("state: reconcile batch", "placements", len(b.writes), "err", err)
		for _, w := range b.writes {
			r.retryLater(w.key, r.cfg.Interval)
		}
		return true
	}
	fl := &inflight{b: b, wrote: wrote, done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		fl.resp, fl.err = s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).If(cmps...).Then(ops...).Commit()
		})
	}()
	r.inflight = append(r.inflight, fl)
	return true
}

// settle waits for batch fl and reports whether it committed. What it
// wrote becomes the base of the batches after it; if it did not commit,
// its placements are looked at again (decided again on fresh state, in
// smaller batches; one alone, a moment later).
func (r *reconciler) settle(ctx context.Context, fl *inflight) bool {
	<-fl.done
	s := r.s
	b := fl.b
	if fl.err == nil {
		r.lastRev = max(r.lastRev, fl.resp.Header.Revision)
	}
	if fl.err == nil && fl.resp.Succeeded {
		for key, u := range fl.wrote {
			u.rev = fl.resp.Header.Revision
			r.base[key] = u
		}
		r.members = min(2*r.members, maxBatchMembers)
		for _, w := range b.writes {
			if len(w.audits) > 0 {
				n := w.res.Next
				s.log.Info("state: reconciled placement", "tenant", n.Tenant, "id", n.ID, "state", n.State, "regions", n.Regions, "retiring", len(n.Retiring), "ops", auditOps(w.audits))
			}
		}
		return true
	}
	switch {
	case fl.err != nil && !errors.Is(fl.err, rpctypes.ErrTooManyOps) && !errors.Is(fl.err, rpctypes.ErrRequestTooLarge):
		if ctx.Err() == nil {
			s.log.Warn("state: reconcile batch", "placements", len(b.writes), "err", fl.err)
		}
		for _, w := range b.writes {
			r.retryLater(w.key, r.cfg.Interval)
		}
	case len(b.writes) == 1:
		r.retryLater(b.writes[0].key, retryAfter) // lost a race (or the role)
	default:
		// Lost a race, or too large for etcd: decide them again, in
		// smaller batches.
		why := "a comparison failed"
		if fl.err != nil {
			why = fl.err.Error()
		}
		r.members = max(1, len(b.writes)/2)
		s.log.Debug("state: reconcile batch not committed; deciding again", "placements", len(b.writes), "why", why)
		r.requeue(b)
	}
	return false
}

// requeue looks at b's placements again, on fresh state.
func (r *reconciler) requeue(b *batch) {
	for _, w := range b.writes {
		r.dirty[w.key] = dirtyRef{}
	}
}

// abandon, after a batch failed, waits for the others in flight, drops
// the open ones (their placements are looked at again) and releases
// the snapshot once the cache holds what the failure met.
func (r *reconciler) abandon(ctx context.Context) {
	for _, fl := range r.inflight {
		r.settle(ctx, fl)
	}
	r.inflight = r.inflight[:0]
	for _, b := range r.open {
		r.requeue(b)
	}
	clear(r.open)
	r.release()
}

// flush sends the open batches and waits for every batch in flight, and
// releases the snapshot once the cache holds what they wrote, so that
// what follows reads it.
func (r *reconciler) flush(ctx context.Context) {
	for _, sig := range slices.Sorted(maps.Keys(r.open)) {
		if b := r.open[sig]; b != nil && !r.send(ctx, b) {
			return
		}
	}
	ok := true
	for _, fl := range r.inflight {
		ok = r.settle(ctx, fl) && ok
	}
	r.inflight = r.inflight[:0]
	if !ok {
		r.abandon(ctx)
		return
	}
	r.release()
}

// retryLater looks at placement key again after d.
func (r *reconciler) retryLater(key string, d time.Duration) {
	at := r.s.clock().Add(d)
	r.retry[key] = at
	r.wakeAt(at)
}

// note keeps the watch and held sets up to date with what was decided
// for placement key (p as read).
func (r *reconciler) note(key string, p *router.Placement, res *router.Reconciliation) {
	next := p
	if res.Next != nil {
		next = res.Next
	}
	if needsLooking(next) {
		r.watch[key] = struct{}{}
	} else {
		delete(r.watch, key)
	}
	if res.Held() {
		r.held[key] = struct{}{}
	} else {
		delete(r.held, key)
	}
}

func auditOps(as []audit.Entry) string {
	ops := make([]string, len(as))
	for i, a := range as {
		ops[i] = a.Op
	}
	return strings.Join(ops, ",")
}
