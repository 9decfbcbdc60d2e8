package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/equiv"
)

// The reconciler follows the live world. A placement that was right when
// it was made can be wrong today: its region lost health, was drained,
// or lost its accreditation. What must happen to a placement is decided
// by router.Reconcile, a pure function of the placement, the regions and
// the time (flag a violation, move a replica, strand it, retire a copy,
// recover; see router/reconcile.go). This file keeps the rest: the
// election, the fence, which placements to look at and when, and the
// commits.
//
// Exactly one reconciler acts at a time: the daemons campaign in an etcd
// election, and every write of the leader compares the create revision
// of its election key, so a former leader (paused past its session TTL,
// partitioned) cannot write even if it still thinks it leads.
//
// The leader works on change, not on a clock: its cost at rest does not
// grow with the placements held. The cache's apply loop hands it the
// keys each batch of watch events touched (changeFeed), and it looks at
// the placements a change can affect:
//
//   - a region whose record or health changed, or whose accreditation
//     has just expired: every live placement holding capacity there
//     (the holds index: replicas and retiring copies);
//   - a tenant whose policy changed (router.Tenant.SamePolicy): its
//     live placements (the tenant-live index);
//   - a placement record that changed (an agent's acknowledgement, the
//     reconciler's own move): that placement, when it needs looking
//     after (issues, retiring copies, a failed replica) or holds a region
//     whose accreditation has expired (a Place that committed as it
//     expired);
//   - a placement record that changed or went (moved, acknowledged,
//     released, purged): the live placements that depend on it
//     (router.Workload.Dependencies; the depends-on index), whose flows
//     it may have left illegal;
//   - a region whose agent came or went: the watched placements there
//     (a retiring copy's release rests on whether its replacement's
//     region has an agent);
//   - when capacity may have grown somewhere (a region's record or
//     health changed, its usage fell, its agent came or reported more
//     free): the placements with issues (stranded, or waiting to move),
//     at once for a record or health change and at most every Interval
//     for usage and agent reports;
//   - with MoveEvery, the placements whose moves are held, one move per
//     MoveEvery;
//   - an equivalence entry that changed (a new version, a withdrawal),
//     or came into force or ended (the leader wakes for that, as for an
//     accreditation's expiry), and likewise an edge or a catalogue
//     service applied, revoked or withdrawn, or an edge that expired:
//     every live placement, in a sweep as fast as a term's first.
//
// An accreditation expires without any write: the leader keeps each
// region's expiry and wakes for the next one. A region with an agent (a
// health record) whose agent has not been live for longer than the grace
// period is marked unhealthy: the leader wakes for that deadline too.
//
// A term begins with a sweep of every live placement (the previous
// leader's last changes may not have been acted on), in batches that
// yield to changes. After it, a slow sweep is the safety net: at most
// sweepRate placements a second, a full sweep at most every SweepEvery,
// so that it never shows at rest.
//
// Moves are make-before-break: a move commits the new region with its
// capacity taken and keeps the old copy as a retiring copy holding its
// own; the old copy is released in a later transaction, once the
// replacement is confirmed.
//
// What the leader decides is committed in batches, dozens of placements
// to a fenced transaction, several transactions in flight on disjoint
// usage records (reconcilebatch.go): a drained, failed or revoked
// region's placements leave it, or are stranded, at etcd's pace rather
// than one commit at a time. With MoveEvery, moves are still one per
// MoveEvery.

// ReconcilerConfig configures Reconcile.
type ReconcilerConfig struct {
	// Name identifies this daemon in the election.
	Name string
	// AgentGrace is how long a region with an agent may go without a
	// live one before it is marked unhealthy (default 30s).
	AgentGrace time.Duration
	// RequireAgents holds every region to the grace period, even one no
	// agent has ever served.
	RequireAgents bool
	// Interval (default 1s) is the least time between two retries of the
	// placements with issues that usage or agent reports prompt (a
	// record or health change retries them at once), and the cadence of
	// the purge of released placements (retention.go).
	Interval time.Duration
	// SweepEvery (default 10m) is the least time between the starts of
	// two safety-net sweeps over every live placement. A sweep looks at
	// no more than sweepRate placements a second.
	SweepEvery time.Duration
	// SessionTTL is the election session's lease TTL (default 5s): how
	// long a dead leader holds the role.
	SessionTTL time.Duration
	// MoveEvery, when set, spaces replica moves at least this far apart,
	// so that a region failure does not become a stampede.
	MoveEvery time.Duration
	// ReleasedRetention, when set, is how long a released placement's
	// record is kept after its release; the leader then deletes it (see
	// retention.go). 0: no time bound.
	ReleasedRetention time.Duration
	// ReleasedKeep, when set, is the most released records kept per
	// tenant: the leader deletes the oldest beyond it. 0: no count
	// bound.
	ReleasedKeep int
	// Audit configures the audit chainer, which runs while this
	// reconciler leads (see auditchain.go).
	Audit AuditChainConfig
	// AuditIndexDisabled turns off the audit indexer, which otherwise
	// runs while this reconciler leads (see auditindexer.go), with
	// Audit.MaxSkew (benchmarks; a daemon must index).
	AuditIndexDisabled bool
}

func (c *ReconcilerConfig) defaults() {
	if c.Name == "" {
		c.Name = "classrouted"
	}
	if c.AgentGrace <= 0 {
		c.AgentGrace = 30 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = 10 * time.Minute
	}
	if c.SessionTTL < time.Second {
		c.SessionTTL = 5 * time.Second
	}
}

const (
	// passSettle is how long the leader waits after a change for more
	// changes, so that a burst (a placement storm) is one step.
	passSettle = 20 * time.Millisecond
	// stepBudget bounds the time one step spends on placements before
	// it takes the changes that arrived meanwhile.
	stepBudget = 100 * time.Millisecond
	// sweepRate is the most placements the slow sweep looks at a second,
	// in batches of sweepBatch; the term's first sweep is not slowed.
	sweepRate  = 1000
	sweepBatch = 100
	// retryAfter: a placement whose commit lost a race is looked at
	// again after this (one whose commit failed, after Interval).
	retryAfter = 50 * time.Millisecond
	// notReadyPoll: how often a leader whose cache cannot vouch for
	// itself looks again.
	notReadyPoll = 100 * time.Millisecond
	// maxSleep bounds any wait (a clock that jumps is caught up with).
	maxSleep = time.Minute
)

// fence is a leader's election key and its create revision. Every write
// of the leader compares it.
type fence struct {
	key string
	rev int64
}

func (f fence) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev)
}

// Leading reports whether this store's reconciler is the elected leader.
func (s *Store) Leading() bool { return s.leading.Load() }

// Reconcile campaigns for the reconciler role and, while elected, keeps
// every placement compliant. It returns when ctx ends.
func (s *Store) Reconcile(ctx context.Context, cfg ReconcilerConfig) error {
	cfg.defaults()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.campaign(ctx, &cfg)
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("state: reconciler: not leading", "err", err, "retry", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return ctx.Err()
}

// campaign wins the election and leads until the session or ctx ends.
func (s *Store) campaign(ctx context.Context, cfg *ReconcilerConfig) error {
	// The session gets a lease and a watcher client of its own, closed
	// with it, so that no keep-alive goroutine outlives a term.
	lc, wc := clientv3.NewLease(s.cli), clientv3.NewWatcher(s.cli)
	defer lc.Close()
	defer wc.Close()
	cli := clientv3.NewCtxClient(ctx)
	defer cli.Close()
	cli.KV, cli.Lease, cli.Watcher = s.kv, lc, wc
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(int(cfg.SessionTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("election session: %w", err)
	}
	// Step down at once rather than hold the role until the lease
	// expires: revoking the session's lease deletes the election key.
	// (ctx may be over: the daemon is stopping.)
	defer func() {
		sess.Orphan()
		rctx, rcancel := context.WithTimeout(context.Background(), s.opTimeout)
		_, _ = lc.Revoke(rctx, sess.Lease())
		rcancel()
	}()
	el := concurrency.NewElection(sess, s.keys.election())
	if err := el.Campaign(ctx, cfg.Name); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	f := fence{key: el.Key(), rev: el.Rev()}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sess.Done():
			cancel()
		case <-lctx.Done():
		}
	}()
	s.leading.Store(true)
	defer s.leading.Store(false)
	s.log.Info("state: reconciler elected", "name", cfg.Name, "fence", f.rev)
	r := &reconciler{s: s, cfg: *cfg, f: f}
	var alongside sync.WaitGroup // the audit chainer and indexer, and the purge
	if !cfg.Audit.Disabled {
		alongside.Go(func() { s.chainAudit(lctx, f, cfg.Audit) })
	}
	if !cfg.AuditIndexDisabled {
		alongside.Go(func() { s.indexAudit(lctx, f, cfg.Audit.MaxSkew) })
	}
	if cfg.ReleasedRetention > 0 || cfg.ReleasedKeep > 0 {
		alongside.Go(func() { s.purgeReleased(lctx, f, cfg) })
	}
	r.lead(lctx)
	cancel()
	alongside.Wait()
	return fmt.Errorf("leadership ended: %w", context.Cause(lctx))
}

// changeFeed carries to the leading reconciler what the cache's apply
// loop changed: the region keys (record, usage, live or health record),
// tenant ids and placement keys that a batch of watch events touched, or
// that everything may have changed (the cache was re-listed). It
// collects only while a reconciler listens.
type changeFeed struct {
	on   atomic.Bool
	mu   sync.Mutex
	c    changes
	wake chan struct{} // 1-buffered: something was added
}

// changes is what the feed collected since the reconciler last took it.
type changes struct {
	all                          bool
	regions, tenants, placements map[string]struct{}
	// equiv: an equivalence entry, an edge or a service changed
	// (equivalence.go, flows.go).
	equiv bool
}

func (c *changes) empty() bool {
	return !c.all && !c.equiv && len(c.regions) == 0 && len(c.tenants) == 0 && len(c.placements) == 0
}

// listen starts collecting and returns the channel that says something
// was added.
func (f *changeFeed) listen() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.wake == nil {
		f.wake = make(chan struct{}, 1)
	}
	f.c = changes{}
	f.on.Store(true)
	return f.wake
}

// stop stops collecting and drops what was collected.
func (f *changeFeed) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on.Store(false)
	f.c = changes{}
}

// listening reports whether a reconciler listens: the apply loop
// collects nothing otherwise.
func (f *changeFeed) listening() bool { return f.on.Load() }

// add records what one applied batch touched. It is called after the
// batch is committed to the cache, so that a reconciler woken by it
// reads a cache that holds the changes.
func (f *changeFeed) add(regions, tenants, placements map[string]struct{}) {
	if len(regions) == 0 && len(tenants) == 0 && len(placements) == 0 {
		return
	}
	f.mu.Lock()
	if !f.on.Load() {
		f.mu.Unlock()
		return
	}
	merge := func(dst *map[string]struct{}, src map[string]struct{}) {
		if len(src) == 0 {
			return
		}
		if *dst == nil {
			*dst = src // the caller hands it over
			return
		}
		for k := range src {
			(*dst)[k] = struct{}{}
		}
	}
	merge(&f.c.regions, regions)
	merge(&f.c.tenants, tenants)
	merge(&f.c.placements, placements)
	f.mu.Unlock()
	f.notify()
}

// equivalence records that an equivalence entry, an edge or a service
// changed: any live placement's label may now map otherwise, or its
// dependencies flow otherwise.
func (f *changeFeed) equivalence() {
	f.mu.Lock()
	if !f.on.Load() {
		f.mu.Unlock()
		return
	}
	f.c.equiv = true
	f.mu.Unlock()
	f.notify()
}

// reload records that the cache was replaced: everything may have changed.
func (f *changeFeed) reload() {
	f.mu.Lock()
	if !f.on.Load() {
		f.mu.Unlock()
		return
	}
	f.c.all = true
	f.mu.Unlock()
	f.notify()
}

func (f *changeFeed) notify() {
	f.mu.Lock()
	w := f.wake
	f.mu.Unlock()
	if w != nil {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// take returns what was collected and starts afresh.
func (f *changeFeed) take() changes {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.c
	f.c = changes{}
	return c
}

// reconciler is one term of leadership.
type reconciler struct {
	s   *Store
	cfg ReconcilerConfig
	f   fence
	// lostAt: when each agent-monitored region was last seen without a
	// live agent begin; lastSeen: its live agent's last report.
	lostAt, lastSeen map[string]time.Time
	// graceAt: the earliest time a region of lostAt reaches the grace
	// period (zero: none waits); healthAll: look at every region's
	// agent on the next step.
	graceAt   time.Time
	healthAll bool
	lastMove  time.Time

	// seen: each region as the reconciler last looked at it (see
	// regionChanged); tenants: each tenant's record likewise.
	seen    map[string]regionSeen
	tenants map[string]*router.Tenant
	// expiries: the accreditation expiry of each region still to come.
	expiries map[string]time.Time
	// equivAt: the next time an equivalence entry comes into force or
	// ends (zero: none to come); see equivalenceDue.
	equivAt time.Time
	// edgeAt: the next expiry of an edge not revoked (zero: none to
	// come).
	edgeAt time.Time

	// The placements (by key "tenant/id") to look at: dirty now; watch:
	// those that need looking after (issues, retiring copies, failed
	// replicas); held: those whose move waits for MoveEvery; retry: those
	// to look at again after a failed commit, and when.
	dirty   map[string]dirtyRef
	watch   map[string]struct{}
	held    map[string]struct{}
	retry   map[string]time.Time
	retryAt time.Time

	// growAt: when the placements with issues were last retried for
	// capacity that may have grown; growPending: a retry is owed.
	growAt      time.Time
	growPending bool

	sweep sweep
	snap  *reconcileSnap
	gen   uint64 // the generation of the last snapshot
	// The batches (reconcilebatch.go): states, the snapshot's regions
	// with what the decisions on it took (owned: a copy); open, those
	// being gathered, by lane; inflight, those sent and not yet
	// answered; wrote, the placements written on snap; base, the usage
	// records written on snap; lastRev, the newest revision a batch on
	// snap met; members, the most placements the next batch may hold.
	states   []router.RegionState
	owned    bool
	open     map[string]*batch
	inflight []*inflight
	wrote    map[string]struct{}
	base     map[string]usageBase
	lastRev  int64
	members  int
}

// regionSeen is what decides whether a change of a region can affect a
// placement (see regionChanged).
type regionSeen struct {
	present             bool
	rev, healthRev      int64
	used                router.Resources
	reported            *router.Resources
	agent               bool
	expires             time.Time
	revokedOrNoExpiries bool
	// schemeExpiries are the expiries of its accreditations in other
	// schemes in force: the reconciler wakes for each too.
	schemeExpiries []time.Time
}

// sweep walks the live placements in key order, a batch at a time.
type sweep struct {
	active  bool
	fast    bool      // the term's first: not slowed
	after   string    // the last placement key swept
	started time.Time // when the current or last sweep began
	next    time.Time // when the next batch (or sweep) is due
}

// reconcileSnap is one read of the cache that decisions share until the
// reconciler writes: its own write is then read back.
type reconcileSnap struct {
	tx   *memdb.Txn
	gen  uint64 // counts the snapshots of a term
	view *regionView
	// tenants: the tenant records read so far.
	tenants map[string]*router.Tenant
}

// tenant returns tenant id's record, nil if there is none.
func (sn *reconcileSnap) tenant(id string) *router.Tenant {
	if t, ok := sn.tenants[id]; ok {
		return t
	}
	var t *router.Tenant
	if rec := tenantTxn(sn.tx, id); rec != nil {
		t = rec.Tenant
	}
	sn.tenants[id] = t
	return t
}

// dirtyRef is a placement to look at: the record as read by the
// snapshot of generation gen, if it was at hand (else read afresh).
type dirtyRef struct {
	rec *placementRecord
	gen uint64
}

// markDependants marks the live placements that depend on the placement
// key, or on the service serviceTargetKey(name).
func (r *reconciler) markDependants(snap *reconcileSnap, key string) {
	it, err := snap.tx.Get(tablePlacements, indexDependsOn, key)
	if err != nil {
		return
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r.mark(raw.(*placementRecord))
	}
}

// mark marks rec's placement dirty; rec was read by the current snapshot.
func (r *reconciler) mark(rec *placementRecord) {
	r.dirty[keyOf(rec.P)] = dirtyRef{rec: rec, gen: r.snap.gen}
}

func (r *reconciler) init() {
	if r.seen != nil {
		return
	}
	if r.lostAt == nil {
		r.lostAt = map[string]time.Time{}
	}
	if r.lastSeen == nil {
		r.lastSeen = map[string]time.Time{}
	}
	r.seen = map[string]regionSeen{}
	r.tenants = map[string]*router.Tenant{}
	r.expiries = map[string]time.Time{}
	r.dirty = map[string]dirtyRef{}
	r.watch = map[string]struct{}{}
	r.held = map[string]struct{}{}
	r.retry = map[string]time.Time{}
	r.members = maxBatchMembers
	r.wrote = map[string]struct{}{}
	r.base = map[string]usageBase{}
	r.open = map[string]*batch{}
}

// fresh returns a snapshot of the cache as it is now.
func (r *reconciler) fresh() *reconcileSnap {
	r.drop()
	if r.snap != nil {
		r.snap.tx.Abort()
	}
	tx := r.s.db.Txn(false)
	_, view := revisionTxn(tx)
	r.gen++
	r.snap = &reconcileSnap{tx: tx, gen: r.gen, view: view, tenants: make(map[string]*router.Tenant)}
	return r.snap
}

// current returns the shared snapshot: read afresh after the reconciler
// wrote (commit releases it), so that it reads its own writes.
func (r *reconciler) current() *reconcileSnap {
	if r.snap == nil {
		return r.fresh()
	}
	return r.snap
}

func (r *reconciler) release() {
	r.drop()
	if r.snap != nil {
		r.snap.tx.Abort()
		r.snap = nil
	}
}

// drop forgets a batch gathered on the snapshot being let go, and looks
// again at its placements. (Every path commits its batch first: this is
// the guard.)
func (r *reconciler) drop() {
	for _, fl := range r.inflight {
		r.settle(context.Background(), fl) // (its txn has a deadline)
	}
	r.inflight = r.inflight[:0]
	for _, b := range r.open {
		r.requeue(b)
	}
	clear(r.open)
	if r.lastRev > 0 {
		// What follows reads a cache that holds what the batches met.
		ctx, cancel := context.WithTimeout(context.Background(), r.s.opTimeout)
		if err := r.s.waitCommitted(ctx, r.lastRev); err != nil {
			r.s.log.Warn("state: reconcile batch", "err", err)
		}
		cancel()
	}
	clear(r.wrote)
	clear(r.base)
	r.states, r.owned, r.lastRev = nil, false, 0
}

// gathered is how many placements the open batches hold.
func (r *reconciler) gathered() int {
	n := 0
	for _, b := range r.open {
		n += len(b.writes)
	}
	return n
}

// lead acts on changes until ctx ends.
func (r *reconciler) lead(ctx context.Context) {
	r.init()
	wake := r.s.changes.listen()
	defer r.s.changes.stop()
	defer r.release()
	// The term begins: look at every region and tenant as they are, and
	// sweep every live placement.
	first := true
	timer := time.NewTimer(maxSleep)
	defer timer.Stop()
	for ctx.Err() == nil {
		if r.s.Ready() != nil {
			// The cache cannot vouch for what it holds: decide nothing
			// on it. What changes meanwhile is kept in the feed.
			if !sleep(ctx, timer, notReadyPoll, nil) {
				return
			}
			continue
		}
		if first {
			r.begin()
			first = false
		}
		_, span := r.s.tracer.Start(ctx, "reconcile")
		busy, err := r.step(ctx)
		endSpan(span, err)
		if err != nil && ctx.Err() == nil {
			r.s.log.Warn("state: reconcile", "err", err)
			busy = false // wait a moment rather than spin on the error
			r.wakeAt(r.s.clock().Add(r.cfg.Interval))
		}
		if busy {
			continue // more to do at once: take what changed, and go on
		}
		wait := r.nextWake().Sub(r.s.clock())
		if !sleep(ctx, timer, wait, wake) {
			return
		}
	}
}

// sleep waits for d, or a change on wake (then passSettle more, for the
// rest of a burst), or the end of ctx; it reports whether ctx lives.
func sleep(ctx context.Context, t *time.Timer, d time.Duration, wake <-chan struct{}) bool {
	t.Reset(min(max(d, time.Millisecond), maxSleep))
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-wake:
		t.Reset(passSettle) // (a timer's channel holds no stale value since Go 1.23)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
}

// begin starts a term, or starts again after the cache was re-listed:
// every region and tenant as it is now, and a sweep of every placement.
func (r *reconciler) begin() {
	now := r.s.clock()
	snap := r.fresh()
	clear(r.seen)
	clear(r.tenants)
	clear(r.expiries)
	for _, key := range snap.view.keys {
		r.seen[key] = r.summarize(snap, key)
		r.noteExpiry(key, r.seen[key], now)
	}
	it, err := snap.tx.Get(tableTenants, indexID)
	if err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			t := raw.(*tenantRecord).Tenant
			r.tenants[t.ID] = t
		}
	}
	r.sweep = sweep{active: true, fast: true, started: now}
	r.healthAll = true // look at every region's agent
	r.equivAt = nextEquivalenceBoundary(r.s.Equivalence(), now)
	r.edgeAt = nextEdgeExpiry(r.s.Edges(), now)
}

// nextEquivalenceBoundary is the first time after now at which an entry
// of t comes into force or ends, with no write; zero if none.
func nextEquivalenceBoundary(t equiv.Table, now time.Time) time.Time {
	var next time.Time
	for _, e := range t.Entries() {
		for _, b := range [...]time.Time{e.ValidFrom, e.ValidUntil} {
			if !e.Withdrawn && b.After(now) && (next.IsZero() || b.Before(next)) {
				next = b
			}
		}
	}
	return next
}

// step takes what changed, works out which placements it affects and
// looks at them, within stepBudget. It reports whether work remains.
func (r *reconciler) step(ctx context.Context) (bool, error) {
	s := r.s
	c := s.changes.take()
	now := s.clock()
	snap := r.fresh() // after taking the changes: it holds them
	if c.all {
		// The cache was re-listed: no list of what changed. Start
		// again from everything.
		r.begin()
		snap = r.snap
	} else if c.equiv || !r.equivAt.IsZero() && !now.Before(r.equivAt) || !r.edgeAt.IsZero() && !now.Before(r.edgeAt) {
		// An equivalence entry changed, or came into force or ended:
		// every live placement is looked at again, at once, as in a
		// term's first sweep. (A placement does not say which schemes
		// its regions were reached through, so all are; those the
		// entry cannot affect are kept.)
		// Likewise for an edge or a service applied, revoked or
		// withdrawn, or an edge that expired.
		r.sweep = sweep{active: true, fast: true, started: now}
		r.equivAt = nextEquivalenceBoundary(r.s.Equivalence(), now)
		r.edgeAt = nextEdgeExpiry(r.s.Edges(), now)
	}
	// Agents first: a region marked unhealthy comes back as a change.
	var look []string
	switch {
	case c.all || r.healthAll:
		look, r.healthAll = snap.view.keys, false
	case len(c.regions) > 0 || !r.graceAt.IsZero() && !now.Before(r.graceAt):
		for key := range c.regions {
			look = append(look, key)
		}
		for key := range r.lostAt {
			if _, ok := c.regions[key]; !ok {
				look = append(look, key)
			}
		}
	}
	if look != nil {
		if err := r.healthPass(ctx, look); err != nil && ctx.Err() == nil {
			// Looked at again after Interval (graceAt); the placements
			// need not wait for it.
			s.log.Warn("state: reconcile: region agents", "err", err)
		}
	}
	r.changed(snap, &c, now)

	// The placements due now: those a change affects, retries due, a
	// sweep batch due.
	if !r.retryAt.IsZero() && !now.Before(r.retryAt) {
		r.retryAt = time.Time{}
		for key, at := range r.retry {
			if !now.Before(at) {
				r.dirty[key] = dirtyRef{}
				delete(r.retry, key)
			} else if r.retryAt.IsZero() || at.Before(r.retryAt) {
				r.retryAt = at
			}
		}
	}
	// A sweep adds a batch only once the last ones are done with.
	if len(r.dirty) < sweepBatch {
		if r.sweep.active && !now.Before(r.sweep.next) {
			r.sweepBatch(snap, now)
		} else if !r.sweep.active && !now.Before(r.sweep.started.Add(r.cfg.SweepEvery)) {
			r.sweep = sweep{active: true, started: now, next: now}
			r.sweepBatch(snap, now)
		}
	}

	// The placements are decided one after another and committed in
	// batches (reconcilebatch.go).
	defer r.flush(ctx)
	deadline := time.Now().Add(stepBudget)
	for key, ref := range r.dirty {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		// A batch begun is filled (its placements cost one commit), for
		// one more stepBudget at most.
		if now := time.Now(); now.After(deadline) && (r.gathered() == 0 || now.After(deadline.Add(stepBudget))) {
			return true, nil
		}
		if err := s.Ready(); err != nil {
			return false, err
		}
		delete(r.dirty, key)
		r.look(ctx, key, ref)
	}
	r.flush(ctx)
	// Held moves, one at a time as MoveEvery allows.
	if len(r.held) > 0 && r.maxMoves(s.clock()) != 0 {
		keys := make([]string, 0, len(r.held))
		for key := range r.held {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		for _, key := range keys {
			if ctx.Err() != nil || time.Now().After(deadline) {
				break
			}
			r.look(ctx, key, dirtyRef{})
			if r.maxMoves(s.clock()) == 0 {
				break // moved: the next waits for MoveEvery
			}
		}
	}
	busy := len(r.dirty) > 0 || r.sweep.active && r.sweep.fast
	return busy, nil
}

// changed works out which placements the changes in c affect, and marks
// them dirty.
func (r *reconciler) changed(snap *reconcileSnap, c *changes, now time.Time) {
	grow, growNow := false, false
	affect := func(key string) {
		holders, watched, g, gNow := r.regionChanged(snap, key, now)
		grow, growNow = grow || g, growNow || gNow
		switch {
		case holders:
			r.markHolders(snap, key)
		case watched:
			r.markWatched(snap, key)
		}
	}
	for key := range c.regions {
		affect(key)
	}
	// Accreditations that have expired since the last look, with no write.
	for key, at := range r.expiries {
		if !now.Before(at) {
			delete(r.expiries, key)
			r.markHolders(snap, key)
			grow, growNow = true, true
			r.noteExpiry(key, r.seen[key], now) // the region's next expiry, if any
		}
	}
	for id := range c.tenants {
		var t *router.Tenant
		if rec := tenantTxn(snap.tx, id); rec != nil {
			t = rec.Tenant
		}
		old, had := r.tenants[id]
		if t == nil {
			delete(r.tenants, id)
			continue
		}
		r.tenants[id] = t
		if !had || !old.SamePolicy(t) {
			r.markTenant(snap, id)
		}
	}
	for key := range c.placements {
		// Its dependants, whatever became of it: a target that moved,
		// changed or went may leave their flows illegal (no_target, or
		// a flow's code), which is a violation at once, not at the
		// next sweep.
		r.markDependants(snap, key)
		rec := placementTxn(snap.tx, key)
		if rec == nil || !rec.P.State.Live() {
			r.forget(key)
			continue
		}
		// A placement with dependencies is looked at whenever its record
		// changes, a new one included: what its flows rest on may have
		// changed between its decision and its commit (a target's
		// region, an edge's expiry), and a change this reconciler
		// handled before the commit did not see it.
		if _, watched := r.watch[key]; watched || needsLooking(rec.P) || r.expiredIn(rec.P, now) || len(rec.P.Workload.Dependencies) > 0 {
			r.mark(rec)
		}
	}
	if grow || r.growPending {
		if growNow || !now.Before(r.growAt.Add(r.cfg.Interval)) {
			r.growAt, r.growPending = now, false
			for key := range r.watch {
				if rec := placementTxn(snap.tx, key); rec != nil && len(rec.P.Issues) > 0 {
					r.mark(rec)
				}
			}
		} else {
			r.growPending = true
		}
	}
}

// summarize is a region as regionChanged compares it.
func (r *reconciler) summarize(snap *reconcileSnap, key string) regionSeen {
	st, ok := snap.view.state(key)
	if !ok {
		return regionSeen{}
	}
	a := &st.Region.Accreditation
	seen := regionSeen{
		present: true, rev: st.Rev, healthRev: st.HealthRev, used: st.Used,
		reported: st.Reported, agent: st.AgentLive, expires: a.Expires, revokedOrNoExpiries: a.Revoked || a.Expires.IsZero(),
	}
	for _, sa := range st.Region.Accreditations {
		if !sa.Revoked && !sa.Expires.IsZero() {
			seen.schemeExpiries = append(seen.schemeExpiries, sa.Expires)
		}
	}
	return seen
}

// regionChanged compares region key with how it was last seen and says
// what the change can affect: every placement holding capacity there
// (its record or health changed: the rechecks may differ), or only the
// watched ones there (its agent came or went: a retirement may rest on
// it); and whether capacity may have grown for a move (grow), calling
// for a retry of the stranded at once (growNow) or within Interval.
func (r *reconciler) regionChanged(snap *reconcileSnap, key string, now time.Time) (holders, watched, grow, growNow bool) {
	cur := r.summarize(snap, key)
	old, had := r.seen[key]
	if cur.present {
		r.seen[key] = cur
	} else {
		delete(r.seen, key)
	}
	r.noteExpiry(key, cur, now)
	if !had && !cur.present {
		return false, false, false, false // usage of no region
	}
	if had != cur.present || cur.rev != old.rev || cur.healthRev != old.healthRev {
		return true, false, true, true
	}
	if cur.agent != old.agent {
		return false, true, true, false
	}
	if freer(old.reported, cur.reported) || less(cur.used, old.used) {
		return false, false, true, false
	}
	return false, false, false, false
}

// noteExpiry keeps the next time one of region key's accreditations (in
// any scheme) expires, if one is still to come: the reconciler wakes for
// it.
func (r *reconciler) noteExpiry(key string, seen regionSeen, now time.Time) {
	var next time.Time
	consider := func(t time.Time) {
		if now.Before(t) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if seen.present {
		if !seen.revokedOrNoExpiries {
			consider(seen.expires)
		}
		for _, t := range seen.schemeExpiries {
			consider(t)
		}
	}
	if next.IsZero() {
		delete(r.expiries, key)
	} else {
		r.expiries[key] = next
	}
}

// freer reports whether an agent's report b leaves more free in some
// dimension than a (a report where there was none counts).
func freer(a, b *router.Resources) bool {
	switch {
	case b == nil:
		return false
	case a == nil:
		return true
	}
	return b.MilliCPU > a.MilliCPU || b.MemoryMiB > a.MemoryMiB || b.GPU > a.GPU
}

// less reports whether a is below b in some dimension.
func less(a, b router.Resources) bool {
	return a.MilliCPU < b.MilliCPU || a.MemoryMiB < b.MemoryMiB || a.GPU < b.GPU
}

// expiredIn reports whether p holds a region whose accreditation has
// expired by now.
func (r *reconciler) expiredIn(p *router.Placement, now time.Time) bool {
	for _, key := range placementRegions(p) {
		if seen, ok := r.seen[key]; ok && !seen.revokedOrNoExpiries && !now.Before(seen.expires) {
			return true
		}
	}
	return false
}

// markHolders marks dirty every live placement holding capacity in
// region key.
func (r *reconciler) markHolders(snap *reconcileSnap, key string) {
	it, err := snap.tx.Get(tablePlacements, indexHolds, key)
	if err != nil {
		r.s.log.Warn("state: reconcile: placements of a region", "region", key, "err", err)
		return
	}
	var holders []string
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rec := raw.(*placementRecord)
		r.mark(rec)
		holders = append(holders, keyOf(rec.P))
	}
	// Their dependants, and those of the services that run there: a
	// region that changed may leave the flows to it illegal (its
	// country, its operators, its network).
	for _, k := range holders {
		r.markDependants(snap, k)
	}
	for name, svc := range r.s.ServicesByName() {
		if svc.Region == key {
			r.markDependants(snap, serviceTargetKey(name))
		}
	}
}

// markWatched marks dirty the watched placements holding region key.
func (r *reconciler) markWatched(snap *reconcileSnap, key string) {
	for pk := range r.watch {
		if rec := placementTxn(snap.tx, pk); rec != nil && rec.P.Holds(key) {
			r.mark(rec)
		}
	}
}

// markTenant marks dirty every live placement of tenant id.
func (r *reconciler) markTenant(snap *reconcileSnap, id string) {
	it, err := snap.tx.Get(tablePlacements, indexTenantLive, id)
	if err != nil {
		r.s.log.Warn("state: reconcile: placements of a tenant", "tenant", id, "err", err)
		return
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r.mark(raw.(*placementRecord))
	}
}

// sweepBatch marks dirty the next batch of live placements of the
// sweep, and schedules the next batch.
func (r *reconciler) sweepBatch(snap *reconcileSnap, now time.Time) {
	sw := &r.sweep
	batch := sweepBatch
	if sw.fast {
		batch = 10 * sweepBatch
	}
	it, err := snap.tx.LowerBound(tablePlacements, indexID, sw.after)
	if err != nil {
		r.s.log.Warn("state: reconcile sweep", "err", err)
		return
	}
	// Released records are skipped, and counted against the batch at a
	// quarter of a live one, so that a batch stays bounded.
	// Only the first record can be the one the last batch ended on; the
	// key of the last one looked at is built once, at the end.
	cost, first := 0, true
	var last *router.Placement
	for raw := it.Next(); ; raw = it.Next() {
		if raw == nil {
			if sw.fast {
				r.s.log.Debug("state: reconciler: first sweep done", "took", now.Sub(sw.started))
			}
			sw.active, sw.fast, sw.after = false, false, ""
			return
		}
		rec := raw.(*placementRecord)
		if first {
			first = false
			if sw.after != "" && keyOf(rec.P) == sw.after {
				continue
			}
		}
		last = rec.P
		if rec.P.State.Live() {
			r.mark(rec)
			cost += 4
		} else {
			cost++
		}
		if cost >= 4*batch {
			break
		}
	}
	sw.after = keyOf(last)
	if sw.fast {
		sw.next = now
	} else {
		sw.next = now.Add(time.Duration(batch) * time.Second / sweepRate)
	}
}

// nextWake is when the reconciler must look again with no change: the
// next accreditation expiry, agent grace deadline, held move, retry,
// owed capacity retry or sweep batch.
func (r *reconciler) nextWake() time.Time {
	now := r.s.clock()
	next := now.Add(maxSleep)
	at := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	for _, t := range r.expiries {
		at(t)
	}
	at(r.graceAt)
	at(r.equivAt)
	at(r.edgeAt)
	if len(r.held) > 0 {
		at(r.lastMove.Add(r.cfg.MoveEvery))
	}
	at(r.retryAt)
	if r.growPending {
		at(r.growAt.Add(r.cfg.Interval))
	}
	if r.sweep.active {
		at(r.sweep.next)
	} else {
		at(r.sweep.started.Add(r.cfg.SweepEvery))
	}
	return next
}

// wakeAt makes the reconciler look again by t.
func (r *reconciler) wakeAt(t time.Time) {
	if r.retryAt.IsZero() || t.Before(r.retryAt) {
		r.retryAt = t
	}
}

// needsLooking reports whether live placement p needs looking after
// whatever changes: it has issues, retiring copies or a failed replica.
func needsLooking(p *router.Placement) bool {
	if !p.State.Live() {
		return false
	}
	if len(p.Issues) > 0 || len(p.Retiring) > 0 || p.State != router.PlacementPlaced {
		return true
	}
	for _, rs := range p.Replicas {
		if rs.State == router.ReplicaFailed {
			return true
		}
	}
	return false
}

// forget drops a placement the reconciler no longer looks after.
func (r *reconciler) forget(key string) {
	delete(r.watch, key)
	delete(r.held, key)
	delete(r.retry, key)
}

// pass looks at every live placement once, as a fresh leader does:
// region health, then each placement. (Tests run it as a former leader
// to show that its writes are fenced.)
func (r *reconciler) pass(ctx context.Context) error {
	r.init()
	defer r.release()
	r.begin()
	if err := r.healthPass(ctx, r.snap.view.keys); err != nil {
		return err
	}
	for r.sweep.active {
		r.sweepBatch(r.current(), r.s.clock())
		for key, ref := range r.dirty {
			if err := ctx.Err(); err != nil {
				return err
			}
			delete(r.dirty, key)
			r.look(ctx, key, ref)
		}
		r.flush(ctx)
	}
	return nil
}

// healthPass looks at the agents of the regions keys (those whose
// records changed, and every region still waiting out its grace period
// in lostAt): it marks unhealthy the agent-monitored regions that have
// had no live agent for longer than the grace period, and notes when the
// next one will have.
func (r *reconciler) healthPass(ctx context.Context, keys []string) error {
	now := r.s.clock()
	tx := r.s.db.Txn(false)
	_, view := revisionTxn(tx)
	type mark struct {
		key  string
		h    *healthRecord
		lost time.Time
	}
	var marks []mark
	r.graceAt = time.Time{}
	for _, key := range keys {
		if _, ok := view.index[key]; !ok {
			delete(r.lostAt, key) // no such region (any more)
			delete(r.lastSeen, key)
			continue
		}
		live, h := liveTxn(tx, key), healthTxn(tx, key)
		if live != nil {
			r.lastSeen[key] = live.V.ReportedAt
			delete(r.lostAt, key)
			continue
		}
		if h == nil && !r.cfg.RequireAgents {
			continue
		}
		lost, ok := r.lostAt[key]
		if !ok {
			lost = now
			if seen, ok := r.lastSeen[key]; ok && !seen.IsZero() && seen.Before(now) {
				lost = seen
			}
			r.lostAt[key] = lost
		}
		if h != nil && !h.H.Healthy && strings.HasPrefix(h.H.Reason, noAgentReason) {
			continue // already marked
		}
		if due := lost.Add(r.cfg.AgentGrace); now.Before(due) {
			if r.graceAt.IsZero() || due.Before(r.graceAt) {
				r.graceAt = due
			}
			continue
		}
		marks = append(marks, mark{key, h, lost})
	}
	tx.Abort()
	for _, m := range marks {
		nh := router.Health{
			Healthy: false,
			Reason:  fmt.Sprintf("%s since %s (grace %v)", noAgentReason, m.lost.UTC().Format(time.RFC3339), r.cfg.AgentGrace),
			Since:   m.lost.UTC(),
		}
		var hrev int64
		if m.h != nil {
			nh.Agent, hrev = m.h.H.Agent, m.h.Rev
		}
		hval, err := json.Marshal(&nh)
		if err != nil {
			return err
		}
		aop, err := r.s.auditOp(audit.Entry{Time: now.UTC(), Op: audit.OpHealth, Actor: actorReconciler, Regions: []string{m.key}, Reasons: []string{nh.Reason}, Revision: r.s.Revision()})
		if err != nil {
			return err
		}
		hkey := r.s.keys.health(m.key)
		resp, err := r.s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return r.s.kv.Txn(ctx).If(
				r.f.cmp(),
				clientv3.Compare(clientv3.ModRevision(hkey), "=", hrev),
				clientv3.Compare(clientv3.CreateRevision(r.s.keys.live(m.key)), "=", 0),
			).Then(
				clientv3.OpPut(hkey, string(hval)),
				aop,
			).Commit()
		})
		if err != nil {
			r.graceAt = now.Add(r.cfg.Interval)
			return err
		}
		if resp.Succeeded {
			r.s.log.Warn("state: region unhealthy: no live agent", "region", m.key, "since", m.lost)
		} else if r.graceAt.IsZero() || now.Add(retryAfter).Before(r.graceAt) {
			r.graceAt = now.Add(retryAfter) // lost a race: look again
		}
		if err := r.s.waitCommitted(ctx, resp.Header.Revision); err != nil {
			return err
		}
	}
	return nil
}

const noAgentReason = "no live agent"

// actorReconciler is the reconciler's name in the audit trail.
const actorReconciler = "system:reconciler"

// maxMoves is how many replicas the next placement may move.
func (r *reconciler) maxMoves(now time.Time) int {
	switch {
	case r.cfg.MoveEvery <= 0:
		return router.AnyMoves
	case now.Sub(r.lastMove) >= r.cfg.MoveEvery:
		return 1
	default:
		return 0
	}
}
