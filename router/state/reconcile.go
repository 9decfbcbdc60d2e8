package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/classroute/classroute/router"
)

// The reconciler follows the live world. A placement that was right when
// it was made can be wrong today: its region lost health, was drained,
// or lost its accreditation. The reconciler re-decides every live
// placement whenever the cache changes (and on a timer, since an
// accreditation expires without any write):
//
//   - each replica is rechecked against its region (every rule but
//     capacity). A failed coverage rule (level, accreditation, controls,
//     releasability, residency...) flags the placement a violation at
//     once, with the reasons, in the audit trail and in its record.
//   - a replica that must move gets the best region that qualifies and
//     keeps the spread with the other replicas. The move is committed
//     with the new region's capacity taken, and the old copy kept as a
//     retiring copy, holding its capacity. Only once the replacement is
//     confirmed (its agent acknowledges it running, or its region has no
//     agent to acknowledge) is the old copy released, in a later
//     transaction: the last compliant copy is never lost.
//   - when no region can take it, the placement is marked stranded, with
//     the reasons, and retried on every pass.
//   - a region with an agent (a health record) whose agent has not been
//     live for longer than the grace period is marked unhealthy.
//   - a released placement's record is deleted once its retention has
//     passed (see retention.go).
//
// Exactly one reconciler acts at a time: the daemons campaign in an etcd
// election, and every write of the leader compares the create revision
// of its election key, so a former leader (paused past its session TTL,
// partitioned) cannot write even if it still thinks it leads.

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
	// Interval is the longest time between passes (default 1s).
	Interval time.Duration
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
	if c.SessionTTL < time.Second {
		c.SessionTTL = 5 * time.Second
	}
}

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
	r := &reconciler{s: s, cfg: *cfg, f: f, lostAt: map[string]time.Time{}, lastSeen: map[string]time.Time{}}
	var alongside sync.WaitGroup // the audit chainer and the purge
	if !cfg.Audit.Disabled {
		alongside.Go(func() { s.chainAudit(lctx, f, cfg.Audit) })
	}
	if cfg.ReleasedRetention > 0 || cfg.ReleasedKeep > 0 {
		alongside.Go(func() { s.purgeReleased(lctx, f, cfg) })
	}
	r.lead(lctx)
	cancel()
	alongside.Wait()
	return fmt.Errorf("leadership ended: %w", context.Cause(lctx))
}

// reconciler is one term of leadership.
type reconciler struct {
	s   *Store
	cfg ReconcilerConfig
	f   fence
	// lostAt: when each agent-monitored region was last seen without a
	// live agent begin; lastSeen: its live agent's last report.
	lostAt, lastSeen map[string]time.Time
	lastMove         time.Time
	wrote            int // transactions committed this term
	// regionRevs: each region's record and health revisions at the last
	// pass; watch: placements to look at on every pass, by placement
	// key "tenant/id"; lastFull: when
	// the last full pass began. See pass.
	regionRevs map[string][2]int64
	watch      map[string]bool
	lastFull   time.Time
}

// lead runs passes until ctx ends: after every change of the cache, and
// at least every Interval.
func (r *reconciler) lead(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for ctx.Err() == nil {
		seen := r.s.Revision()
		wrote := r.wrote
		if r.s.Ready() == nil {
			if err := r.pass(ctx); err != nil && ctx.Err() == nil {
				r.s.log.Warn("state: reconcile pass", "err", err)
			}
		}
		if r.wrote != wrote {
			// What this pass wrote may let a copy retire, or another
			// move go ahead: look again at once.
			continue
		}
		changed := r.s.rev.wait(seen + 1)
		if changed == nil {
			// Changed during the pass: look again, once a burst of
			// changes has settled.
			select {
			case <-ctx.Done():
			case <-time.After(passSettle):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-changed:
			// Let a burst of changes (a placement storm) settle into
			// one pass rather than one pass per revision.
			select {
			case <-ctx.Done():
			case <-time.After(passSettle):
			}
		case <-t.C:
		}
	}
}

// passSettle is how long a pass waits after a change for more changes.
const passSettle = 20 * time.Millisecond

// pass reconciles region health, then the placements that may need it.
// A full pass (the first of a term, then at least every Interval: an
// accreditation expires without a write) looks at every live placement;
// in between, a pass after a change looks only at the placements in
// regions whose record or health changed, and at those already on the
// watch list (with issues, retiring copies or failed replicas), so that
// a placement storm does not cost a walk of every placement per change.
func (r *reconciler) pass(ctx context.Context) error {
	if err := r.healthPass(ctx); err != nil {
		return err
	}
	full := r.regionRevs == nil || r.s.clock().Sub(r.lastFull) >= r.cfg.Interval
	seen := make(map[string]bool)
	var todo []string // placement keys "tenant/id"
	add := func(key string) {
		if !seen[key] {
			seen[key] = true
			todo = append(todo, key)
		}
	}
	tx := r.s.db.Txn(false)
	_, view := revisionTxn(tx)
	revs := make(map[string][2]int64, len(view.keys))
	for i, key := range view.keys {
		revs[key] = [2]int64{view.states[i].Rev, view.states[i].HealthRev}
	}
	if full {
		for _, st := range []router.PlacementState{router.PlacementPlaced, router.PlacementStranded, router.PlacementViolation} {
			it, err := tx.Get(tablePlacements, indexState, st.String())
			if err != nil {
				tx.Abort()
				return err
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				add(keyOf(raw.(*placementRecord).P))
			}
		}
		r.watch = make(map[string]bool)
		r.lastFull = r.s.clock()
	} else {
		for key, rv := range revs {
			if r.regionRevs[key] == rv {
				continue
			}
			it, err := tx.Get(tablePlacements, indexRegion, key)
			if err != nil {
				tx.Abort()
				return err
			}
			for raw := it.Next(); raw != nil; raw = it.Next() {
				add(keyOf(raw.(*placementRecord).P))
			}
		}
		for key := range r.watch {
			add(key)
		}
	}
	tx.Abort()
	r.regionRevs = revs
	for _, key := range todo {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.s.Ready(); err != nil {
			return err
		}
		if err := r.placement(ctx, key); err != nil {
			r.s.log.Warn("state: reconcile placement", "placement", key, "err", err)
			r.watch[key] = true // look again on the next pass
		}
	}
	return nil
}

// watchOrForget keeps p on the watch list while it needs looking after.
func (r *reconciler) watchOrForget(p *router.Placement) {
	need := p.State.Live() && (len(p.Issues) > 0 || len(p.Retiring) > 0)
	for _, rs := range p.Replicas {
		need = need || rs.State == router.ReplicaFailed
	}
	if need {
		r.watch[keyOf(p)] = true
	} else {
		delete(r.watch, keyOf(p))
	}
}

// healthPass marks unhealthy the agent-monitored regions that have had
// no live agent for longer than the grace period.
func (r *reconciler) healthPass(ctx context.Context) error {
	now := r.s.clock()
	tx := r.s.db.Txn(false)
	_, view := revisionTxn(tx)
	type mark struct {
		key  string
		h    *healthRecord
		lost time.Time
	}
	var marks []mark
	for _, key := range view.keys {
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
		if now.Sub(lost) < r.cfg.AgentGrace {
			continue
		}
		if h != nil && !h.H.Healthy && strings.HasPrefix(h.H.Reason, noAgentReason) {
			continue // already marked
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
		aop, err := r.s.auditOp(AuditEntry{Time: now.UTC(), Op: AuditHealth, Actor: actorReconciler, Regions: []string{m.key}, Reasons: []string{nh.Reason}, Revision: r.s.Revision()})
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
			return err
		}
		if resp.Succeeded {
			r.s.log.Warn("state: region unhealthy: no live agent", "region", m.key, "since", m.lost)
			if err := r.s.waitCommitted(ctx, resp.Header.Revision); err != nil {
				return err
			}
		}
	}
	return nil
}

const noAgentReason = "no live agent"

// actorReconciler is the reconciler's name in the audit trail.
const actorReconciler = "system:reconciler"

// placement reconciles one placement, by placement key "tenant/id", on a
// fresh snapshot and commits what changed in one fenced transaction.
func (r *reconciler) placement(ctx context.Context, key string) error {
	s := r.s
	now := s.clock()
	tx := s.db.Txn(false)
	_, view := revisionTxn(tx)
	rec := placementTxn(tx, key)
	var tenant *tenantRecord
	if rec != nil {
		tenant = tenantTxn(tx, rec.P.Tenant)
	}
	defer tx.Abort() // step 3 reads the live records of the same snapshot
	if rec == nil || !rec.P.State.Live() {
		delete(r.watch, key)
		return nil
	}
	p := rec.P
	if tenant == nil {
		return fmt.Errorf("tenant %q of placement %s is not cached", p.Tenant, p.ID)
	}
	w := p.Workload
	in := router.Input{Workload: &w, Tenant: tenant.Tenant, Regions: view.states, Now: now}
	labelOK := w.Banner != "" && w.Label.String() == w.Banner
	// A tenant whose ceiling was lowered below the workload's label may
	// no longer hold it anywhere: every replica is a violation, and no
	// move can mend it.
	var ceiling error
	if labelOK {
		ceiling = tenant.Tenant.WithinCeiling(w.Label)
	}

	next := clonePlacement(p)
	next.Issues = nil
	var audits []AuditEntry
	audit := func(op string, regions []string, reasons []router.Reason) {
		a := AuditEntry{Time: now.UTC(), Op: op, Actor: actorReconciler, RequestID: p.ID, Tenant: p.Tenant, Workload: w.Name, Label: w.Banner, Regions: regions, Revision: s.Revision()}
		for _, rs := range reasons {
			a.Reasons = append(a.Reasons, string(rs.Code)+": "+rs.Message)
		}
		audits = append(audits, a)
	}

	// The regions every write must find as they were read: the current
	// replicas' (the verdicts rest on them) and any region moved to.
	var compared []int

	// 1. Recheck every replica.
	var keep, avoid []int
	type bad struct {
		i     int
		issue router.Issue
	}
	var bads []bad
	for i, key := range p.Regions {
		idx, ok := view.index[key]
		var reasons []router.Reason
		violation := false
		switch {
		case !labelOK:
			reasons, violation = []router.Reason{{Code: router.ReasonLevel, Message: fmt.Sprintf("stored label %q no longer parses", w.Banner)}}, true
		case ceiling != nil:
			reasons, violation = []router.Reason{{Code: router.ReasonPolicy, Message: ceiling.Error()}}, true
		case !ok:
			reasons, violation = []router.Reason{{Code: router.ReasonHealth, Message: "region record is gone"}}, true
		default:
			compared = append(compared, idx)
			reasons, violation = s.engine.Recheck(in, idx)
		}
		if rs := p.Replica(i); rs.State == router.ReplicaFailed {
			msg := "replica failed in the region"
			if rs.Detail != "" {
				msg += ": " + rs.Detail
			}
			reasons = append(reasons, router.Reason{Code: router.ReasonHealth, Message: msg})
		}
		if len(reasons) == 0 {
			if ok {
				keep = append(keep, idx)
			}
			continue
		}
		if ok {
			avoid = append(avoid, idx)
		}
		bads = append(bads, bad{i, router.Issue{Region: key, Violation: violation, Reasons: reasons, Since: issueSince(p, key, now)}})
	}
	for _, rt := range p.Retiring {
		if idx, ok := view.index[rt.Region]; ok {
			avoid = append(avoid, idx)
		}
	}

	// 2. Move what must move, or say why it cannot.
	var moved []int // view indexes taken by moves
	for _, b := range bads {
		issue := b.issue
		if issue.Violation && !hadIssue(p, issue.Region, func(is router.Issue) bool { return is.Violation }) {
			audit(AuditViolation, []string{issue.Region}, issue.Reasons)
		}
		if !labelOK || ceiling != nil {
			why := "cannot re-decide on a label that does not parse"
			if ceiling != nil {
				why = "no region may hold it: the label is above the tenant's ceiling"
			}
			issue.Stranded = true
			issue.Reasons = append(issue.Reasons, router.Reason{Code: router.ReasonStranded, Message: why})
			next.Issues = append(next.Issues, issue)
			continue
		}
		if r.cfg.MoveEvery > 0 && now.Sub(r.lastMove) < r.cfg.MoveEvery {
			next.Issues = append(next.Issues, carryStranded(p, issue))
			continue // moved on a later pass
		}
		rep, err := s.engine.Replace(in, keep, avoid)
		if err != nil {
			issue.Stranded = true
			issue.Reasons = append(issue.Reasons, router.Reason{Code: router.ReasonStranded, Message: err.Error()})
			if !hadIssue(p, issue.Region, func(is router.Issue) bool { return is.Stranded }) {
				audit(AuditStranded, []string{issue.Region}, issue.Reasons)
			}
			next.Issues = append(next.Issues, issue)
			continue
		}
		to := view.keys[rep.Index]
		next.Regions[b.i] = to
		next.Scores[b.i] = rep.Score
		if b.i < len(next.Replicas) {
			next.Replicas[b.i] = router.ReplicaStatus{State: router.ReplicaPending, At: now.UTC()}
		}
		next.Retiring = append(next.Retiring, router.Retiring{Region: issue.Region, MovedTo: to, Reasons: issue.Reasons, Since: now.UTC()})
		next.Moves++
		keep = append(keep, rep.Index)
		avoid = append(avoid, rep.Index)
		moved = append(moved, rep.Index)
		compared = append(compared, rep.Index)
		audit(AuditReroute, []string{issue.Region, to}, issue.Reasons)
		r.lastMove = now
	}

	// 3. Release the retiring copies whose replacement is confirmed
	// (never one made in this transaction).
	var retired, agentless []string
	kept := next.Retiring[:0:0]
	hasAgent := func(key string) bool { return liveTxn(tx, key) != nil }
	for _, rt := range next.Retiring {
		if ok, none := confirmed(next, rt, view, hasAgent); ok && !rt.Since.Equal(now.UTC()) {
			retired = append(retired, rt.Region)
			if none != "" {
				agentless = append(agentless, none)
			}
			audit(AuditRetire, []string{rt.Region, rt.MovedTo}, nil)
			continue
		}
		kept = append(kept, rt)
	}
	next.Retiring = kept

	// 4. The state: a violation while any replica, or any copy still
	// running, sits where the workload may not be.
	next.State = router.PlacementPlaced
	for _, is := range next.Issues {
		if is.Stranded && next.State != router.PlacementViolation {
			next.State = router.PlacementStranded
		}
		if is.Violation {
			next.State = router.PlacementViolation
		}
	}
	for _, rt := range next.Retiring {
		if idx, ok := view.index[rt.Region]; ok && labelOK {
			if reasons, v := s.engine.Recheck(in, idx); v {
				next.State = router.PlacementViolation
				flagged := hadIssue(p, rt.Region, func(is router.Issue) bool { return is.Violation }) ||
					slices.ContainsFunc(bads, func(b bad) bool { return b.issue.Region == rt.Region && b.issue.Violation })
				if p.State != router.PlacementViolation && !flagged {
					// A copy still running where the workload may not
					// be is a violation on the record, even though it
					// is already leaving.
					audit(AuditViolation, []string{rt.Region}, reasons)
				}
			}
		}
	}
	if len(p.Issues) > 0 && len(next.Issues) == 0 && len(moved) == 0 {
		audit(AuditRecovered, p.Regions, nil)
	}
	if samePlacement(p, next) {
		r.watchOrForget(p)
		return nil
	}
	next.UpdatedAt = now.UTC()
	r.watchOrForget(next) // on failure too: the next pass looks again
	if err := r.commit(ctx, rec, next, view, compared, moved, retired, agentless, audits); err != nil {
		r.watch[key] = true
		return err
	}
	return nil
}

// commit writes a reconciled placement: fenced, comparing the placement,
// every region compared and its health, the usage of the regions moved
// to (taken) and of the copies retired (returned), and that the regions
// in agentless (a retirement rests on their having no agent) still have
// no live agent.
func (r *reconciler) commit(ctx context.Context, rec *placementRecord, next *router.Placement, view *regionView,
	compared, moved []int, retired, agentless []string, audits []AuditEntry) error {
	s := r.s
	pkey := s.keys.placement(keyOf(next))
	pval, err := json.Marshal(next)
	if err != nil {
		return err
	}
	cmps := []clientv3.Cmp{r.f.cmp(), clientv3.Compare(clientv3.ModRevision(pkey), "=", rec.Rev)}
	ops := []clientv3.Op{clientv3.OpPut(pkey, string(pval))}
	for _, idx := range compared {
		key, st := view.keys[idx], &view.states[idx]
		cmps = append(cmps,
			clientv3.Compare(clientv3.ModRevision(s.keys.region(key)), "=", st.Rev),
			clientv3.Compare(clientv3.ModRevision(s.keys.health(key)), "=", st.HealthRev))
	}
	for _, key := range agentless {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.keys.live(key)), "=", 0))
	}
	res := next.Workload.Resources
	for _, idx := range moved {
		key, st := view.keys[idx], &view.states[idx]
		ukey := s.keys.usage(key)
		uval, err := json.Marshal(usageValue{Used: st.Used.Add(res), Placements: view.counts[idx] + 1})
		if err != nil {
			return err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ukey), "=", st.UsageRev))
		ops = append(ops, clientv3.OpPut(ukey, string(uval)))
	}
	for _, key := range retired {
		ukey := s.keys.usage(key)
		idx, ok := view.index[key]
		if !ok {
			// The region is gone: it cannot be while a copy holds it.
			return fmt.Errorf("retiring copy of %s in unknown region %s", next.ID, key)
		}
		st := &view.states[idx]
		left := st.Used.Sub(res)
		left = router.Resources{MilliCPU: max(left.MilliCPU, 0), MemoryMiB: max(left.MemoryMiB, 0), GPU: max(left.GPU, 0)}
		uval, err := json.Marshal(usageValue{Used: left, Placements: max(view.counts[idx]-1, 0)})
		if err != nil {
			return err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ukey), "=", st.UsageRev))
		ops = append(ops, clientv3.OpPut(ukey, string(uval)))
	}
	for _, a := range audits {
		aop, err := s.auditOp(a)
		if err != nil {
			return err
		}
		ops = append(ops, aop)
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(cmps...).Then(ops...).Commit()
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		// Lost a race (or the role): the next pass reads fresh state.
		r.watch[keyOf(next)] = true
		return s.waitCommitted(ctx, resp.Header.Revision)
	}
	r.wrote++
	if len(audits) > 0 {
		s.log.Info("state: reconciled placement", "tenant", next.Tenant, "id", next.ID, "state", next.State, "regions", next.Regions, "retiring", len(next.Retiring), "ops", auditOps(audits))
	}
	return s.waitCommitted(ctx, resp.Header.Revision)
}

// confirmed reports whether the replacement of a retiring copy is
// confirmed: following the moves from rt (a replacement may itself have
// moved on before it was confirmed) to a current replica, that replica
// has no issue and is acknowledged running, or its region has no agent
// to acknowledge it (no health record, and no live agent session: one
// that has connected but not yet reported is an agent). When it rests on
// the region having no agent, it returns that region too.
func confirmed(p *router.Placement, rt router.Retiring, view *regionView, hasAgent func(string) bool) (bool, string) {
	to := rt.MovedTo
	for range len(p.Retiring) + 1 {
		if j := slices.Index(p.Regions, to); j >= 0 {
			for _, is := range p.Issues {
				if is.Region == to {
					return false, ""
				}
			}
			if p.Replica(j).State == router.ReplicaRunning {
				return true, ""
			}
			if st, ok := view.state(to); ok && st.Health == nil && !hasAgent(to) {
				return true, to
			}
			return false, ""
		}
		k := slices.IndexFunc(p.Retiring, func(o router.Retiring) bool { return o.Region == to })
		if k < 0 {
			return false, ""
		}
		to = p.Retiring[k].MovedTo
	}
	return false, ""
}

// issueSince keeps the time an issue was first seen.
func issueSince(p *router.Placement, region string, now time.Time) time.Time {
	for _, is := range p.Issues {
		if is.Region == region {
			return is.Since
		}
	}
	return now.UTC()
}

// hadIssue reports whether p already had an issue in region that is.
func hadIssue(p *router.Placement, region string, is func(router.Issue) bool) bool {
	for _, x := range p.Issues {
		if x.Region == region && is(x) {
			return true
		}
	}
	return false
}

// carryStranded keeps a replica's stranded mark while its move waits.
func carryStranded(p *router.Placement, issue router.Issue) router.Issue {
	for _, is := range p.Issues {
		if is.Region == issue.Region && is.Stranded {
			return is
		}
	}
	return issue
}

func auditOps(as []AuditEntry) string {
	ops := make([]string, len(as))
	for i, a := range as {
		ops[i] = a.Op
	}
	return strings.Join(ops, ",")
}

// clonePlacement copies the parts of p the reconciler changes.
func clonePlacement(p *router.Placement) *router.Placement {
	c := *p
	c.Regions = slices.Clone(p.Regions)
	c.Scores = slices.Clone(p.Scores)
	c.Replicas = slices.Clone(p.Replicas)
	c.Issues = slices.Clone(p.Issues)
	c.Retiring = slices.Clone(p.Retiring)
	return &c
}

// samePlacement reports whether the reconciler would change nothing.
func samePlacement(a, b *router.Placement) bool {
	if a.State != b.State || a.Moves != b.Moves || !slices.Equal(a.Regions, b.Regions) || len(a.Issues) != len(b.Issues) || len(a.Retiring) != len(b.Retiring) {
		return false
	}
	for i := range a.Issues {
		x, y := a.Issues[i], b.Issues[i]
		if x.Region != y.Region || x.Violation != y.Violation || x.Stranded != y.Stranded || !slices.Equal(x.Reasons, y.Reasons) {
			return false
		}
	}
	for i := range a.Retiring {
		if a.Retiring[i].Region != b.Retiring[i].Region || a.Retiring[i].MovedTo != b.Retiring[i].MovedTo {
			return false
		}
	}
	return true
}
