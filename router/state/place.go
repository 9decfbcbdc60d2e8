package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// snapshot is what one decision reads, from one memdb read transaction.
type snapshot struct {
	rev     int64
	tenant  *tenantRecord
	regions *regionView
	// existing is the placement the tenant already made with the
	// request id, if any.
	existing *placementRecord
	// live counts the tenant's live placements when its policy caps
	// them (up to the cap), else 0.
	live int
	// equiv is the equivalence table a decision for a label of another
	// scheme than the US reads, and equivGuards the records of every
	// pair from that scheme at the revisions read: the commit compares
	// them, so an entry withdrawn or lowered between the decision and the
	// commit fails the commit, which decides again.
	equiv       equiv.Table
	equivGuards []guard
	// targets are the workload's placement dependencies as tx holds
	// them, and targetGuards their records at the revisions read: a
	// target that moves or is released between the decision and the
	// commit fails the commit.
	targets      map[flow.Target]router.DependencyTarget
	targetGuards []guard
	// edges and services are those of the workload's dependencies, read
	// from the same transaction (flowsOf), and edgeGuards each edge's
	// record at the revision read, by ID: the commit compares those the
	// chosen regions' flows go through (router.FlowEdges).
	edges      []flow.Edge
	services   map[string]*flow.Service
	edgeGuards map[string]guard
}

func (s *Store) snapshot(tenantID, requestID string, w *router.Workload) snapshot {
	tx := s.db.Txn(false)
	defer tx.Abort()
	var snap snapshot
	snap.rev, snap.regions = revisionTxn(tx)
	if w.Foreign() {
		snap.equiv, snap.equivGuards = s.equivalenceFrom(tx, w.Scheme)
	} else if len(w.Dependencies) > 0 {
		// A dependency on a target of another scheme reads entries
		// between the schemes, as the reconciler's re-check does: the
		// whole table, unguarded (an entry changing re-checks every
		// placement, this one once committed).
		snap.equiv = s.Equivalence()
	}
	snap.targetsOf(tx, w, s.keys)
	if len(w.Dependencies) > 0 {
		snap.flowsOf(tx, w, s)
	}
	snap.tenant = tenantTxn(tx, tenantID)
	if requestID != "" {
		snap.existing = placementTxn(tx, placementKey(tenantID, requestID))
		if snap.tenant != nil && snap.tenant.Tenant.MaxPlacements > 0 {
			snap.live, _ = liveCountTxn(tx, tenantID, snap.tenant.Tenant.MaxPlacements) // the index exists
		}
	}
	return snap
}

func (snap *snapshot) input(w *router.Workload, s *Store) router.Input {
	// A US label reads no equivalence.
	return router.Input{Workload: w, Tenant: snap.tenant.Tenant, Regions: snap.regions.states, Now: s.clock(), Equivalence: snap.equiv,
		Targets: snap.targets, Edges: snap.edges, Services: snap.services}
}

// targetsOf reads the placements w depends on: each live one's label,
// rules and regions (its retiring copies' too), and guards on its record
// and its regions' records. A missing one refuses the decision
// (no_target).
func (snap *snapshot) targetsOf(tx *memdb.Txn, w *router.Workload, k keys) {
	for _, d := range w.Dependencies {
		if d.Target.Kind != flow.PlacementTarget {
			continue
		}
		key := placementKey(d.Target.Tenant, d.Target.ID)
		rec := placementTxn(tx, key)
		if rec == nil || !rec.P.State.Live() {
			continue
		}
		var regions []*router.Region
		var gone []string
		keys := slices.Clone(rec.P.Regions)
		for _, rc := range rec.P.Retiring {
			// A retiring copy keeps running until its replacement is
			// confirmed: flows reach it too.
			if !slices.Contains(keys, rc.Region) {
				keys = append(keys, rc.Region)
			}
		}
		for _, key := range keys {
			if st, ok := snap.regions.state(key); ok && st.Region != nil {
				regions = append(regions, st.Region)
				// Its country, operators and network decide the
				// flows: a region record changed before the commit
				// fails it.
				snap.targetGuards = append(snap.targetGuards, guard{key: k.region(key), rev: st.Rev})
			} else {
				gone = append(gone, key) // refused: where its data rests is unknown
			}
		}
		t := router.DependencyTargetOf(&rec.P.Workload, regions)
		t.Gone = gone
		if snap.targets == nil {
			snap.targets = map[flow.Target]router.DependencyTarget{}
		}
		snap.targets[d.Target] = t
		snap.targetGuards = append(snap.targetGuards, guard{key: k.placement(key), rev: rec.Rev})
	}
}

// flowsOf reads the edges and services a decision for w reads, from tx,
// and guards their records at the revisions read (the services w names;
// the edges by ID, for placeWrite to pick those the decision used), so
// that one revoked, withdrawn or changed between the decision and the
// commit fails the commit, which decides again.
func (snap *snapshot) flowsOf(tx *memdb.Txn, w *router.Workload, s *Store) {
	if it, err := tx.Get(tableEdges, indexID); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			rec := raw.(*edgeRecord)
			snap.edges = append(snap.edges, rec.V.Edge)
			if snap.edgeGuards == nil {
				snap.edgeGuards = map[string]guard{}
			}
			snap.edgeGuards[rec.ID] = guard{key: s.keys.edge(rec.ID), rev: rec.V.Revision}
		}
	}
	for _, d := range w.Dependencies {
		if d.Target.Kind != flow.ServiceTarget {
			continue
		}
		raw, err := tx.First(tableServices, indexID, d.Target.Name)
		if err != nil || raw == nil {
			continue // none: refused (no_target); one created meanwhile is for a later decision
		}
		rec := raw.(*serviceRecord)
		if snap.services == nil {
			snap.services = map[string]*flow.Service{}
		}
		svc := rec.V.Service
		snap.services[rec.Name] = &svc
		snap.targetGuards = append(snap.targetGuards, guard{key: s.keys.service(rec.Name), rev: rec.V.Revision})
		if st, ok := snap.regions.state(svc.Region); ok && st.Region != nil {
			snap.targetGuards = append(snap.targetGuards, guard{key: s.keys.region(svc.Region), rev: st.Rev}) // as a target's
		}
	}
}

// equivalenceFrom returns the equivalence table as tx holds it and the
// guards of every entry from scheme. The table built with the cache is
// used when it agrees with tx on those entries (it is stored just after
// the cache's commit: a reader may come between), else one is built
// from tx.
func (s *Store) equivalenceFrom(tx *memdb.Txn, scheme marking.Scheme) (equiv.Table, []guard) {
	t := s.Equivalence()
	var guards []guard
	agrees := true
	it, err := tx.Get(tableEquivalences, indexID)
	if err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			rec := raw.(*equivRecord)
			if rec.V.From != scheme {
				continue
			}
			guards = append(guards, guard{key: s.keys.equivalence(rec.V.Key()), rev: rec.V.Revision})
			if e, ok := t.Entry(rec.V.Key()); !ok || e.Version != rec.V.Version {
				agrees = false
			}
		}
	}
	if !agrees {
		t = *buildEquivTxn(tx)
	}
	return t, guards
}

// overlayBufs recycles the region slices of overlaid decisions.
var overlayBufs = sync.Pool{New: func() any { return new([]router.RegionState) }}

func unknownTenant(id string) error {
	return router.Violations{{Field: "workload.tenant", Description: fmt.Sprintf("unknown tenant %q", id)}}.Err()
}

// checkWorkload refuses a workload the store cannot place: no tenant, or
// a banner that is not the canonical form of the parsed label (the label
// decides; the banner is what is stored and audited, so they must agree).
func checkWorkload(w *router.Workload) error {
	var v router.Violations
	if w == nil {
		v.Add("workload", "required")
		return v.Err()
	}
	if w.Tenant == "" {
		v.Add("workload.tenant", "required")
	}
	if got := w.LabelString(); w.Banner != got {
		v.Add("workload.label", "banner %q is not the canonical form %q of the parsed label; validate the workload first", w.Banner, got)
	}
	return v.Err()
}

// mayDecide checks the tenant's policy, as the snapshot holds it, before
// a decision for w: the tenant's ceiling dominates w's label and, when
// ctx carries a tenant user, the user is of w's tenant and the tenant
// grants it role. Place's commit compares the tenant record, so a policy
// changed after this check fails the commit and is checked again. The
// errors wrap router.ErrPermissionDenied.
func mayDecide(ctx context.Context, t *router.Tenant, w *router.Workload, role authz.Role) error {
	if p := authz.FromContext(ctx); p != nil && p.Kind == authz.KindTenant {
		if p.Tenant != t.ID {
			return fmt.Errorf("%w: %s may act for tenant %s only", router.ErrPermissionDenied, p.ID, p.Tenant)
		}
		if !slices.Contains(t.MemberRoles(p.Name), role) {
			return fmt.Errorf("%w: tenant %s does not grant %s the %s role", router.ErrPermissionDenied, t.ID, p.Name, role)
		}
	}
	return t.WithinCeilingOf(w)
}

// withinCap refuses a Place by a tenant that holds as many live
// placements as its policy allows. The count is the snapshot's: Places
// of the tenant in flight at once (on this daemon or others) may each
// find room for one, so the cap can be passed by as many as run at once
// (a few, at the callers' Place rates), never by a loop.
func withinCap(t *router.Tenant, live int) error {
	if t.MaxPlacements > 0 && live >= t.MaxPlacements {
		return fmt.Errorf("%w: tenant %s holds %d live placements, its cap (max_placements); release one first", router.ErrPlacementCap, t.ID, live)
	}
	return nil
}

// Place decides where w runs and commits the placement under requestID.
//
// A request id names one placement of the workload's tenant (another
// tenant's placements of the same id are unrelated): placing the same
// workload again with it returns the placement already made, and a
// different workload is router.ErrRequestReused. Place reads one
// snapshot of the cache, decides on it, and submits the placement to
// the store's committer (committer.go), which commits it with the other
// placements into the same regions in one etcd transaction: it compares
// the mod revision of every record the decision read about the regions
// it chose (region, usage and health records) and of the tenant record,
// and that the tenant's request id is unused, and writes the placement,
// each chosen region's usage, and an audit record. A decision that no
// longer holds (a record it read changed, or the regions filled up
// meanwhile) is made again on fresh state, up to the retry bound (then
// router.ErrConflict). Place returns once the cache reflects the
// placement. A refusal is a *router.RefusalError with every region's
// verdict, and is audited. When the store cannot vouch for its cache,
// Place refuses with router.ErrUnavailable.
func (s *Store) Place(ctx context.Context, requestID string, w *router.Workload) (*router.Placement, error) {
	if !validKeyPart(requestID) {
		return nil, router.Violations{{Field: "request_id", Description: "required, without '/'"}}.Err()
	}
	if err := checkWorkload(w); err != nil {
		return nil, err
	}
	want, err := workloadJSON(w)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; {
		if err := s.Ready(); err != nil {
			return nil, err
		}
		snap := s.snapshot(w.Tenant, requestID, w)
		if snap.existing != nil {
			return sameWorkload(snap.existing.P, want)
		}
		if snap.tenant == nil {
			return nil, unknownTenant(w.Tenant)
		}
		err := mayDecide(ctx, snap.tenant.Tenant, w, authz.RoleSubmitter)
		if err == nil {
			err = withinCap(snap.tenant.Tenant, snap.live)
		}
		if err != nil {
			// A refusal like any other: on the record (on its own or
			// counted, see auditlimit.go), or UNAVAILABLE.
			if aerr := s.auditRefusal(ctx, audit.Entry{
				Time: s.clock().UTC(), Op: audit.OpRefuse, Actor: authz.Actor(ctx), RequestID: requestID,
				Tenant: w.Tenant, Workload: w.Name, Label: w.AuditLabel(), Reasons: []string{err.Error()}, Revision: snap.rev,
			}, err); aerr != nil {
				return nil, fmt.Errorf("%w: refusal of %s not audited: %w", router.ErrUnavailable, requestID, aerr)
			}
			return nil, err
		}
		in := snap.input(w, s)
		t0 := time.Now()
		_, span := s.tracer.Start(ctx, "decide")
		d, wait := s.decide(&in, snap.regions)
		endDecide(span, d.Err, wait.any())
		s.observer.Decided(time.Since(t0))
		if wait.any() {
			if err := s.committer.settled(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		if d.Err != nil {
			// Another daemon may have committed this request id a
			// moment ago, its write not yet in this cache: then that
			// placement, not a refusal, is the answer.
			if prev, err := s.placedElsewhere(ctx, w.Tenant, requestID, want); prev != nil || err != nil {
				return prev, err
			}
			return nil, s.refuse(ctx, requestID, &in, snap.rev, d.Err)
		}
		wr, err := s.placeWrite(ctx, requestID, w, &snap, &in, d)
		if err != nil {
			return nil, err
		}
		t0 = time.Now()
		_, span = s.tracer.Start(ctx, "commit")
		out := s.committer.submit(ctx, wr)
		endCommit(span, out)
		s.observer.Committed(time.Since(t0), out.committed)
		switch {
		case out.err != nil:
			// The transaction may have reached etcd and commit later
			// (a member without quorum keeps it in its log): the
			// outcome is unknown, and the request id is how the caller
			// finds out.
			return nil, fmt.Errorf("place %s: %w; the placement may or may not have been committed: retry with the same request id",
				requestID, unavailable(ctx, out.err))
		case out.committed:
			p := wr.obj
			if out.leader != nil {
				// A Place of the same request id was in flight: its
				// placement is this one's, if the workload is the same.
				if p, err = sameWorkload(out.leader.obj, want); err != nil {
					return nil, err
				}
			}
			err := s.waitCommitted(ctx, out.rev)
			s.committer.own.drop(wr.key) // applied by now, unless the wait failed
			if err != nil {
				return nil, err
			}
			if cur, err := s.GetPlacement(w.Tenant, requestID); err == nil {
				return cur, nil // the cached copy: shares nothing with w
			}
			return p, nil
		case out.lost:
			// The tenant used the request id meanwhile (another
			// daemon, or a retry of this request racing itself).
			if out.current == nil {
				break // placed and purged meanwhile: decide again
			}
			prev, err := decodePlacement(out.current.Value)
			if err != nil {
				return nil, fmt.Errorf("place %s: stored placement: %w", requestID, err)
			}
			return sameWorkload(prev, want)
		}
		// The decision no longer holds: decide again once the cache
		// shows what changed.
		if attempt >= s.maxRetries {
			return nil, fmt.Errorf("place %s: %w: lost %d races", requestID, router.ErrConflict, attempt+1)
		}
		if err := s.afterConflict(ctx, out.rev, attempt); err != nil {
			return nil, err
		}
		attempt++
	}
}

// decide makes the Place decision on in as this daemon should: on the
// regions as the committer overlays them (with what this store's
// writes in flight add, and the usage it learnt from etcd that the
// cache does not show yet). A refusal (d.Err) is decided on the cache
// alone: when only the overlay stands in the way, decide returns what
// to wait for (with the committer's settled) before deciding again on
// a fresh snapshot.
func (s *Store) decide(in *router.Input, view *regionView) (d router.Decision, wait overlaid) {
	buf := overlayBufs.Get().(*[]router.RegionState)
	over := *in
	var o overlaid
	over.Regions, o = s.committer.overlay(view, buf)
	d = s.engine.Place(over)
	clear(*buf)
	overlayBufs.Put(buf)
	if d.Err != nil && o.any() && s.engine.Place(*in).Err == nil {
		return d, o
	}
	return d, overlaid{}
}

// placeWrite is the committer's write of a decided placement: the
// placement record (its request id unused), the chosen regions' usage,
// the records the decision read, and the audit entry.
func (s *Store) placeWrite(ctx context.Context, requestID string, w *router.Workload, snap *snapshot, in *router.Input, d router.Decision) (*write, error) {
	chosen := make([]string, len(d.Chosen))
	for i, idx := range d.Chosen {
		chosen[i] = snap.regions.keys[idx]
	}
	p := &router.Placement{
		ID:        requestID,
		Tenant:    w.Tenant,
		Workload:  cloneWorkload(w),
		Regions:   chosen,
		Scores:    d.Scores,
		State:     router.PlacementPlaced,
		DecidedAt: snap.rev,
		CreatedAt: s.clock().UTC(),
	}
	pval, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("place %s: encode: %w", requestID, err)
	}
	aops, asize, err := s.auditOps(audit.Entry{
		Actor:     authz.Actor(ctx),
		Time:      p.CreatedAt,
		Op:        audit.OpPlace,
		RequestID: requestID,
		Tenant:    w.Tenant,
		Workload:  w.Name,
		Label:     w.AuditLabel(),
		Regions:   chosen,
		Scores:    d.Scores,
		Revision:  snap.rev,
	})
	if err != nil {
		return nil, err
	}
	wr := &write{
		key:       s.keys.placement(placementKey(w.Tenant, requestID)),
		val:       string(pval),
		obj:       p,
		deltas:    make([]delta, len(d.Chosen)),
		guards:    append(append([]guard{{key: s.keys.tenant(w.Tenant), rev: snap.tenant.Rev}}, snap.equivGuards...), snap.targetGuards...),
		ops:       aops,
		size:      len(pval) + asize,
		join:      true,
		requestID: requestID,
	}
	for _, id := range router.FlowEdges(in, d.Chosen) {
		if g, ok := snap.edgeGuards[id]; ok {
			wr.guards = append(wr.guards, g)
		}
	}
	for i, idx := range d.Chosen {
		rs := &snap.regions.states[idx]
		wr.deltas[i] = delta{region: chosen[i], used: w.Resources, count: 1, read: true, rev: rs.Rev, healthRev: rs.HealthRev}
	}
	return wr, nil
}

// placedElsewhere reads the tenant's placement of the request id from
// etcd: the placement if one exists (or ErrRequestReused), nil if none.
func (s *Store) placedElsewhere(ctx context.Context, tenant, requestID string, want []byte) (*router.Placement, error) {
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, s.keys.placement(placementKey(tenant, requestID)))
	cancel()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	p, err := decodePlacement(resp.Kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("place %s: stored placement: %w", requestID, err)
	}
	return sameWorkload(p, want)
}

// refuse builds the refusal of a decision that found no placement: every
// region's verdict from the explaining decision on the same input, and
// an audit record (or, past the caller's rate, a count in a summary
// record: see auditlimit.go). If the audit record cannot be written, the
// refusal is router.ErrUnavailable: nothing is decided without its record.
func (s *Store) refuse(ctx context.Context, requestID string, in *router.Input, rev int64, placeErr error) error {
	plan := s.engine.Plan(*in)
	err := plan.Err
	if err == nil {
		err = placeErr // the engines disagree: refuse all the same
	}
	refusal := &router.RefusalError{Err: err, Revision: rev, Regions: plan.Explain(in)}
	// The verdicts of the regions the tenant may know of come first and
	// the others after them, so the entry's size bound, which keeps the
	// first lines, keeps the same lines of the former whatever the
	// latter are: the tenant's auditors, who see only the former, see
	// nothing move when a region they may not know of is added.
	reasons := []string{err.Error()}
	var hidden []string
	for i, e := range refusal.Regions {
		if len(e.Reasons) == 0 {
			continue
		}
		codes := make([]string, len(e.Reasons))
		for j, r := range e.Reasons {
			codes[j] = string(r.Code)
		}
		line := e.Key + ": " + strings.Join(codes, ", ")
		if in.Tenant.MayKnow(in.Regions[plan.Verdicts[i].Index].Region) {
			reasons = append(reasons, line)
		} else {
			hidden = append(hidden, line)
		}
	}
	reasons = append(reasons, hidden...)
	w := in.Workload
	if aerr := s.auditRefusal(ctx, audit.Entry{
		Actor:     authz.Actor(ctx),
		Time:      s.clock().UTC(),
		Op:        audit.OpRefuse,
		RequestID: requestID,
		Tenant:    w.Tenant,
		Workload:  w.Name,
		Label:     w.AuditLabel(),
		Reasons:   reasons,
		Revision:  rev,
	}, err); aerr != nil {
		return fmt.Errorf("%w: refusal of %s not audited: %w", router.ErrUnavailable, requestID, aerr)
	}
	return refusal
}

// Plan is an explained decision with nothing committed: what the
// explain API returns (PlacementService.Plan, router/server/placement.go).
type Plan struct {
	// Label is the workload's parsed label when it is a US label.
	Label label.Label
	// Marking is the workload's parsed label when it is of another
	// scheme (Marking.Scheme is then set).
	Marking marking.Label
	// Revision is the etcd revision the decision read.
	Revision int64
	// Regions holds every region's verdict: chosen first (in replica
	// order), then the other eligible by score, then the ineligible by key.
	Regions []router.Explained
	// Chosen holds the chosen region keys, one per replica, best first.
	Chosen []string
	// Refusal is non-nil when nothing can be chosen; it wraps
	// router.ErrNoEligibleRegion or router.ErrSpreadUnsatisfiable.
	Refusal error
}

// Plan decides where w would run, with every region's verdict and
// reasons, and commits nothing. It refuses with router.ErrUnavailable
// when the store cannot vouch for its cache.
func (s *Store) Plan(ctx context.Context, w *router.Workload) (Plan, error) {
	if err := checkWorkload(w); err != nil {
		return Plan{}, err
	}
	if err := ctx.Err(); err != nil {
		return Plan{}, err
	}
	if err := s.Ready(); err != nil {
		return Plan{}, err
	}
	snap := s.snapshot(w.Tenant, "", w)
	if snap.tenant == nil {
		return Plan{}, unknownTenant(w.Tenant)
	}
	if err := mayDecide(ctx, snap.tenant.Tenant, w, authz.RoleSubmitter); err != nil {
		return Plan{}, err
	}
	in := snap.input(w, s)
	_, span := s.tracer.Start(ctx, "decide")
	d := s.engine.Plan(in)
	endDecide(span, d.Err, false)
	out := Plan{Label: w.Label, Marking: w.Marking, Revision: snap.rev, Regions: d.Explain(&in), Refusal: d.Err}
	for _, idx := range d.Chosen {
		out.Chosen = append(out.Chosen, snap.regions.keys[idx])
	}
	return out, nil
}

// Release ends tenant's placement of request id id and returns its
// capacity: one etcd transaction compares the placement's and each
// region's usage record's mod revision, marks the placement released,
// decrements the usage, and writes an audit record. Releasing a released
// placement returns it unchanged. An unknown one is router.ErrNotFound.
func (s *Store) Release(ctx context.Context, tenant, id string) (*router.Placement, error) {
	if !validKeyPart(tenant) || !validKeyPart(id) {
		return nil, fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
	}
	key := placementKey(tenant, id)
	pkey := s.keys.placement(key)
	var out *router.Placement
	err := s.retry(ctx, "release "+id, func(ctx context.Context) (bool, int64, error) {
		if err := s.Ready(); err != nil {
			return false, 0, err
		}
		tx := s.db.Txn(false)
		rev, _ := revisionTxn(tx)
		rec := placementTxn(tx, key)
		var usage []*usageRecord
		var held []string // replicas and retiring copies: each holds capacity
		if rec != nil {
			held = placementRegions(rec.P)
			for _, key := range held {
				usage = append(usage, usageTxn(tx, key))
			}
		}
		tx.Abort()
		if rec == nil {
			// Not cached: unknown, or placed through another daemon a
			// moment ago; then retry once the cache has it.
			return false, 0, s.notCached(ctx, pkey, "placement "+id)
		}
		if rec.P.State == router.PlacementReleased {
			out = rec.P
			return true, 0, nil
		}
		p := *rec.P
		p.State, p.ReleasedAt = router.PlacementReleased, s.clock().UTC()
		p.UpdatedAt = p.ReleasedAt
		p.Issues, p.Retiring = nil, nil
		pval, err := json.Marshal(&p)
		if err != nil {
			return false, 0, err
		}
		aop, err := s.auditOp(audit.Entry{
			Actor: authz.Actor(ctx),
			Time:  p.ReleasedAt, Op: audit.OpRelease, RequestID: id, Tenant: p.Tenant,
			Workload: p.Workload.Name, Label: p.Workload.AuditLabel(), Regions: held, Revision: rev,
		})
		if err != nil {
			return false, 0, err
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(pkey), "=", rec.Rev)}
		ops := []clientv3.Op{clientv3.OpPut(pkey, string(pval))}
		for i, key := range held {
			ukey := s.keys.usage(key)
			u := usage[i]
			if u == nil {
				// No usage record (it cannot be deleted while the
				// region holds placements): nothing to return; make
				// sure none appeared meanwhile.
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(ukey), "=", 0))
				continue
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(ukey), "=", u.Rev))
			left := usageValue{Used: u.Used.Sub(p.Workload.Resources), Placements: max(u.Placements-1, 0)}
			left.Used = router.Resources{MilliCPU: max(left.Used.MilliCPU, 0), MemoryMiB: max(left.Used.MemoryMiB, 0), GPU: max(left.Used.GPU, 0)}
			uval, err := json.Marshal(left)
			if err != nil {
				return false, 0, err
			}
			ops = append(ops, clientv3.OpPut(ukey, string(uval)))
		}
		ops = append(ops, aop)
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(pkey)).Commit()
		})
		if err != nil {
			return false, 0, err
		}
		if resp.Succeeded {
			out = &p
			return true, resp.Header.Revision, nil
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			return false, 0, fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
		}
		if cur, err := decodePlacement(kvs[0].Value); err == nil && cur.State == router.PlacementReleased {
			out = cur // released meanwhile
			return true, resp.Header.Revision, nil
		}
		return false, resp.Header.Revision, nil
	})
	if err != nil {
		return nil, err
	}
	if cur, err := s.GetPlacement(tenant, id); err == nil && cur.State == router.PlacementReleased {
		return cur, nil
	}
	return out, nil
}

// notCached handles a record the cache does not hold: if etcd has it
// (written by another daemon a moment ago), it waits for the cache to
// catch up and returns nil, so the caller can retry; otherwise it is
// ErrNotFound.
func (s *Store) notCached(ctx context.Context, key, what string) error {
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, key, clientv3.WithKeysOnly())
	cancel()
	if err != nil {
		return unavailable(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("%s: %w", what, router.ErrNotFound)
	}
	return s.waitCommitted(ctx, resp.Kvs[0].ModRevision)
}
