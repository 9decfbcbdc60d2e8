package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-memdb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
)

// An agent session is one region agent's connection, as the store sees
// it (see health.go for the two records that follow an agent):
//
//   - ConnectAgent grants an etcd lease of the session's TTL and, in one
//     transaction, creates the region's live record on it, only if the
//     region exists and no live record does: a region has one agent at a
//     time. The live record's create revision is the session's identity
//     (its fencing token): every later write of the session compares it,
//     so a session that lost its record changes nothing more.
//   - An agent id names one agent instance. An agent that connects with
//     the id of the region's live session takes the region over: the old
//     record is deleted and its lease revoked, and the old session ends.
//     So a restarted agent need not wait out the TTL of the session its
//     previous run left behind. Two running agents configured with the
//     same id take the region from each other in turn: give each its own.
//   - Report refreshes the lease (KeepAliveOnce) and rewrites the live
//     record with the report, and writes the region's health record when
//     the health changes. The first report creates the health record:
//     from then on the region is agent-monitored.
//   - The lease is the agent's liveness. An agent that stops reporting,
//     or a daemon that dies, loses the live record when the lease lapses
//     after its TTL; the health record stays. The session itself ends
//     (Done, Err wrapping router.ErrUnavailable) when its lease lapses,
//     or its live record is gone from the cache (expired, or taken over).
//   - Close revokes the lease: the live record disappears at once.

// Bounds of agent input.
const (
	MaxAgentDetailLen = 1024
	// MinAgentTTL is the least session TTL. etcd rounds a lease's TTL up
	// to whole seconds, and up to its own minimum (2s by default).
	MinAgentTTL = time.Second
)

// AgentSession is one agent's live session for one region. Report, Ack
// and Assignments may be called from different goroutines; Assignments
// from one at a time. Close ends it.
type AgentSession struct {
	s         *Store
	region    string
	agent     string
	lease     clientv3.Lease
	leaseID   clientv3.LeaseID
	ttl       time.Duration
	createRev int64
	connected time.Time

	// expires is when (UnixNano, real time) the lease lapses unless a
	// report refreshes it.
	expires atomic.Int64

	amu   sync.Mutex // Assignments
	first bool
	known map[string]*router.Placement // by placement key "tenant/id"

	stop      context.CancelFunc // stops the watchdog
	watchDone chan struct{}
	done      chan struct{}
	endOnce   sync.Once
	err       error
	closeOnce sync.Once
	closeErr  error
}

// ConnectAgent starts agentID's session for region (a key "provider/id")
// with a lease of ttl (rounded up to whole seconds; etcd may raise it to
// its minimum: TTL says what was granted). The region must exist
// (router.ErrNotFound). If another agent's session is live for the
// region, the connect is refused with router.ErrAgentConnected; if the
// live session is agentID's own, it is taken over (see above). The
// session must report within its TTL, and keep reporting.
func (s *Store) ConnectAgent(ctx context.Context, region, agentID string, ttl time.Duration) (*AgentSession, error) {
	var v router.Violations
	if _, _, ok := splitRegionKey(region); !ok {
		v.Add("hello.region", "want a region key provider/id, got %q", clip(region))
	}
	if !router.ValidAgentID(agentID) {
		v.Add("hello.agent_id", "required: 1-128 characters of [A-Za-z0-9._:@-]")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if ttl < MinAgentTTL {
		return nil, fmt.Errorf("agent session ttl %v: want at least %v", ttl, MinAgentTTL)
	}
	if err := s.Ready(); err != nil {
		return nil, err
	}
	if !s.hasRegion(region) {
		if err := s.notCached(ctx, s.keys.region(region), "region "+region); err != nil {
			return nil, err
		}
	}

	lc := s.newLease()
	secs := int64((ttl + time.Second - 1) / time.Second)
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	granted := time.Now()
	g, err := lc.Grant(gctx, secs)
	cancel()
	if err != nil {
		lc.Close()
		return nil, fmt.Errorf("agent %s for %s: lease: %w", agentID, region, unavailable(ctx, err))
	}
	a := &AgentSession{
		s: s, region: region, agent: agentID, lease: lc, leaseID: g.ID,
		ttl: time.Duration(g.TTL) * time.Second, connected: s.clock().UTC(),
		first: true, known: make(map[string]*router.Placement),
		watchDone: make(chan struct{}), done: make(chan struct{}),
	}
	a.expires.Store(granted.Add(a.ttl).UnixNano())
	rev, err := a.create(ctx)
	if err == nil {
		err = s.waitCommitted(ctx, rev)
	}
	if err != nil {
		a.revoke()
		lc.Close()
		return nil, err
	}
	a.createRev = rev
	wctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	go a.watchdog(wctx)
	s.log.Info("state: agent connected", "region", region, "agent", agentID, "lease", int64(g.ID), "ttl", a.ttl)
	return a, nil
}

func (s *Store) hasRegion(key string) bool {
	tx := s.db.Txn(false)
	defer tx.Abort()
	return regionTxn(tx, key) != nil
}

// create writes the live record on the session's lease and returns its
// revision: the session's identity.
func (a *AgentSession) create(ctx context.Context) (int64, error) {
	s := a.s
	lkey, rkey := s.keys.live(a.region), s.keys.region(a.region)
	val, err := json.Marshal(liveValue{Agent: a.agent, Lease: int64(a.leaseID), ConnectedAt: a.connected})
	if err != nil {
		return 0, err
	}
	tookOver := false
	for {
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(rkey), ">", 0),
					clientv3.Compare(clientv3.CreateRevision(lkey), "=", 0)).
				Then(clientv3.OpPut(lkey, string(val), clientv3.WithLease(a.leaseID))).
				Else(clientv3.OpGet(lkey), clientv3.OpGet(rkey, clientv3.WithKeysOnly())).
				Commit()
		})
		if err != nil {
			return 0, fmt.Errorf("agent %s for %s: %w", a.agent, a.region, err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		if len(resp.Responses[1].GetResponseRange().GetKvs()) == 0 {
			return 0, fmt.Errorf("region %q: %w", a.region, router.ErrNotFound)
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			continue // the live record lapsed meanwhile
		}
		var cur liveValue
		_ = json.Unmarshal(kvs[0].Value, &cur) // unreadable: someone else's
		if cur.Agent != a.agent || tookOver {
			return 0, fmt.Errorf("region %s: %w: agent %q is connected (since %s)", a.region, router.ErrAgentConnected,
				clip(cur.Agent), cur.ConnectedAt.Format(time.RFC3339))
		}
		// The same agent again: its previous session is stale. Delete
		// that record (only that one) and revoke its lease, then retry.
		tookOver = true
		if _, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(lkey), "=", kvs[0].CreateRevision)).
				Then(clientv3.OpDelete(lkey)).Commit()
		}); err != nil {
			return 0, fmt.Errorf("agent %s for %s: take over: %w", a.agent, a.region, err)
		}
		if old := clientv3.LeaseID(kvs[0].Lease); old != 0 {
			rctx, cancel := context.WithTimeout(ctx, s.opTimeout)
			_, _ = a.lease.Revoke(rctx, old)
			cancel()
		}
		s.log.Warn("state: agent took over its own stale session", "region", a.region, "agent", a.agent,
			"old_lease", kvs[0].Lease, "connected_at", cur.ConnectedAt)
	}
}

// Region is the session's region key.
func (a *AgentSession) Region() string { return a.region }

// Agent is the session's agent id.
func (a *AgentSession) Agent() string { return a.agent }

// LeaseID is the etcd lease that is the session's liveness.
func (a *AgentSession) LeaseID() int64 { return int64(a.leaseID) }

// TTL is the lease's granted time to live: the session ends if no
// report refreshes it for this long.
func (a *AgentSession) TTL() time.Duration { return a.ttl }

// Done is closed when the session has ended; Err then says why.
func (a *AgentSession) Done() <-chan struct{} { return a.done }

// Err is nil while the session lives, errSessionClosed after Close, or
// why it ended: an error wrapping router.ErrUnavailable when its lease
// lapsed or its live record is gone.
func (a *AgentSession) Err() error {
	select {
	case <-a.done:
		return a.err
	default:
		return nil
	}
}

var errSessionClosed = errors.New("agent session closed")

func (a *AgentSession) end(err error) {
	a.endOnce.Do(func() {
		a.err = err
		close(a.done)
		if err != errSessionClosed {
			a.s.log.Warn("state: agent session ended", "region", a.region, "agent", a.agent, "err", err)
		}
	})
}

func (a *AgentSession) lost(why string) error {
	return fmt.Errorf("%w: agent %s's session for %s lost: %s", router.ErrUnavailable, a.agent, a.region, why)
}

// Close ends the session and revokes its lease, so its live record
// disappears at once. It is safe to call more than once.
func (a *AgentSession) Close() error {
	a.closeOnce.Do(func() {
		a.end(errSessionClosed)
		a.stop()
		<-a.watchDone
		a.closeErr = a.revoke()
		a.lease.Close()
	})
	return a.closeErr
}

func (a *AgentSession) revoke() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.s.opTimeout)
	defer cancel()
	_, err := a.lease.Revoke(ctx, a.leaseID)
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("agent %s for %s: revoke lease: %w", a.agent, a.region, err)
	}
	return nil
}

// watchdog ends the session when its lease lapses unrefreshed or its
// live record is no longer its own, as the cache shows.
func (a *AgentSession) watchdog(ctx context.Context) {
	defer close(a.watchDone)
	for {
		select {
		case <-a.s.done:
			a.end(fmt.Errorf("%w: store closed", router.ErrUnavailable))
			return
		default:
		}
		rev := a.s.rev.current()
		if err := a.check(); err != nil {
			a.end(err)
			return
		}
		changed := a.s.rev.wait(rev + 1)
		if changed == nil {
			continue // the cache moved meanwhile: check again
		}
		t := time.NewTimer(time.Until(time.Unix(0, a.expires.Load())))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.s.done:
		case <-t.C:
		case <-changed:
		}
		t.Stop()
	}
}

// check says why the session can no longer stand, or nil.
func (a *AgentSession) check() error {
	if time.Now().UnixNano() >= a.expires.Load() {
		return a.lost(fmt.Sprintf("no report refreshed its lease within %v", a.ttl))
	}
	tx := a.s.db.Txn(false)
	defer tx.Abort()
	if l := liveTxn(tx, a.region); l == nil || l.CreateRev != a.createRev {
		return a.lost("its live record is gone (lease expired, or the region taken over)")
	}
	return nil
}

// stillOurs reports whether the live record in a failed transaction's
// Else response (an OpGet of it) is still this session's.
func (a *AgentSession) stillOurs(r *clientv3.TxnResponse, i int) bool {
	kvs := r.Responses[i].GetResponseRange().GetKvs()
	return len(kvs) == 1 && kvs[0].CreateRevision == a.createRev
}

func checkDetail(v *router.Violations, field, detail string) {
	switch {
	case len(detail) > MaxAgentDetailLen:
		v.Add(field, "longer than %d bytes", MaxAgentDetailLen)
	case !utf8.ValidString(detail):
		v.Add(field, "not valid UTF-8")
	}
}

// Report records the agent's report: the region is healthy or not (and
// why: detail), with free capacity left. It refreshes the session's
// lease, rewrites the live record, and writes the health record when the
// health (healthy flag, reason, or agent) changes; both in one
// transaction that compares the live record's create revision (the
// session's) and the health record's mod revision (so a change made
// elsewhere is re-read). The reason of a healthy region is empty: detail
// is kept in the live record. Bad values are router.InvalidError; a
// session that lost its lease or record ends, and Report returns why.
func (a *AgentSession) Report(ctx context.Context, healthy bool, detail string, free router.Resources) error {
	var v router.Violations
	if free.MilliCPU < 0 {
		v.Add("report.free.milli_cpu", "must not be negative, got %d", free.MilliCPU)
	}
	if free.MemoryMiB < 0 {
		v.Add("report.free.memory_mib", "must not be negative, got %d", free.MemoryMiB)
	}
	if free.GPU < 0 {
		v.Add("report.free.gpu", "must not be negative, got %d", free.GPU)
	}
	checkDetail(&v, "report.detail", detail)
	if err := v.Err(); err != nil {
		return err
	}
	if err := a.Err(); err != nil {
		return err
	}
	s := a.s
	if err := a.refresh(ctx); err != nil {
		return err
	}
	reason := ""
	if !healthy {
		reason = detail
	}
	lkey, hkey := s.keys.live(a.region), s.keys.health(a.region)
	return s.retry(ctx, "report for "+a.region, func(ctx context.Context) (bool, int64, error) {
		if err := s.Ready(); err != nil {
			return false, 0, err
		}
		now := s.clock().UTC()
		tx := s.db.Txn(false)
		h := healthTxn(tx, a.region)
		tx.Abort()
		lval, err := json.Marshal(liveValue{Agent: a.agent, Lease: int64(a.leaseID), ConnectedAt: a.connected,
			ReportedAt: now, Healthy: healthy, Detail: detail, Free: free})
		if err != nil {
			return false, 0, err
		}
		var hrev int64
		ops := []clientv3.Op{clientv3.OpPut(lkey, string(lval), clientv3.WithLease(a.leaseID))}
		if h != nil {
			hrev = h.Rev
		}
		if h == nil || h.H.Healthy != healthy || h.H.Reason != reason || h.H.Agent != a.agent {
			nh := router.Health{Healthy: healthy, Reason: reason, Since: now, Agent: a.agent}
			if h != nil && h.H.Healthy == healthy {
				nh.Since = h.H.Since // the same health, said differently
			}
			hval, err := json.Marshal(nh)
			if err != nil {
				return false, 0, err
			}
			ops = append(ops, clientv3.OpPut(hkey, string(hval)))
		}
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(lkey), "=", a.createRev),
					clientv3.Compare(clientv3.ModRevision(hkey), "=", hrev)).
				Then(ops...).
				Else(clientv3.OpGet(lkey, clientv3.WithKeysOnly())).
				Commit()
		})
		if err != nil {
			return false, 0, err
		}
		if resp.Succeeded {
			return true, resp.Header.Revision, nil
		}
		if !a.stillOurs(resp, 0) {
			err := a.lost("its live record is gone (lease expired, or the region taken over)")
			a.end(err)
			return false, 0, err
		}
		return false, resp.Header.Revision, nil // the health record changed: re-read it
	})
}

// refresh keeps the session's lease alive for another TTL.
func (a *AgentSession) refresh(ctx context.Context) error {
	kctx, cancel := context.WithTimeout(ctx, a.s.opTimeout)
	defer cancel()
	sent := time.Now()
	resp, err := a.lease.KeepAliveOnce(kctx, a.leaseID)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		err := a.lost("its lease expired")
		a.end(err)
		return err
	}
	if err != nil {
		// The session stands until its lease would lapse; the
		// watchdog ends it then.
		return fmt.Errorf("agent %s for %s: keep lease alive: %w", a.agent, a.region, unavailable(ctx, err))
	}
	a.expires.Store(sent.Add(time.Duration(resp.TTL) * time.Second).UnixNano())
	return nil
}

// Ack records the agent's acknowledgement of tenant's placement of
// request id placementID, assigned to its region: ACCEPTED, RUNNING or
// FAILED, with detail. A request id names a placement within its tenant
// only; with tenant "" (an agent that does not say) it is the one
// placement of that id the region holds, and when the region holds
// several tenants' placements of the id, an InvalidError on field
// "ack.tenant". For a replica in the
// region it sets the placement's Replicas entry of that replica (growing
// the slice to one entry per region, pending) in a compare-and-swap on
// the placement's mod revision and the session's live record, retried
// on conflict. A retiring copy has no entry: its ack changes nothing
// (FAILED is still audited). An ack that says what the entry already
// says writes nothing (AckNeeded tells beforehand). FAILED is audited
// in the same transaction, within the agent's bound on audit entries
// (auditlimit.go: past it, counted in a replica-failed-summary). An
// unknown placement is router.ErrNotFound; one that is released or
// holds nothing in the region is router.ErrNotAssigned; either way
// nothing changes.
func (a *AgentSession) Ack(ctx context.Context, tenant, placementID string, st router.ReplicaState, detail string) error {
	tenant, err := a.ackTenant(tenant, placementID, st, detail)
	if err != nil {
		return err
	}
	s := a.s
	lkey := s.keys.live(a.region)
	pkey := s.keys.placement(placementKey(tenant, placementID))
	var adm *auditAdmission // decided once, on the first attempt that audits
	committed := false
	err = s.retry(ctx, "ack "+placementID, func(ctx context.Context) (bool, int64, error) {
		if err := s.Ready(); err != nil {
			return false, 0, err
		}
		tx := s.db.Txn(false)
		rev, _ := revisionTxn(tx)
		rec := placementTxn(tx, placementKey(tenant, placementID))
		tx.Abort()
		if rec == nil {
			return false, 0, s.notCached(ctx, pkey, "placement "+placementID)
		}
		p := rec.P
		i, needed, err := a.ackChange(p, placementID, st, detail)
		if err != nil || !needed {
			return err == nil, 0, err
		}
		now := s.clock().UTC()
		var ops []clientv3.Op
		if i >= 0 {
			np := *p
			np.Replicas = make([]router.ReplicaStatus, len(p.Regions))
			copy(np.Replicas, p.Replicas)
			np.Replicas[i] = router.ReplicaStatus{State: st, Detail: detail, At: now}
			np.UpdatedAt = now
			pval, err := json.Marshal(&np)
			if err != nil {
				return false, 0, err
			}
			ops = append(ops, clientv3.OpPut(pkey, string(pval)))
		}
		if st == router.ReplicaFailed {
			why := "agent " + a.agent + " could not run the replica"
			if detail != "" {
				why += ": " + detail
			}
			e := audit.Entry{
				Actor: authz.Actor(ctx),
				Time:  now, Op: audit.OpReplicaFailed, RequestID: p.ID, Tenant: p.Tenant,
				Workload: p.Workload.Name, Label: p.Workload.AuditLabel(), Regions: []string{a.region},
				Reasons: []string{why}, Revision: rev,
			}
			if adm == nil {
				v := s.admitAudit(ctx, &e, "placement "+p.ID+" in "+a.region)
				adm = &v
			}
			if adm.ok {
				for _, ae := range adm.entries(s, e) {
					aop, err := s.auditOp(ae)
					if err != nil {
						return false, 0, err
					}
					ops = append(ops, aop)
				}
			}
		}
		if len(ops) == 0 {
			return true, 0, nil // counted in the agent's summary, and nothing else to record
		}
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(pkey), "=", rec.Rev),
					clientv3.Compare(clientv3.CreateRevision(lkey), "=", a.createRev)).
				Then(ops...).
				Else(clientv3.OpGet(lkey, clientv3.WithKeysOnly())).
				Commit()
		})
		if err != nil {
			return false, 0, err
		}
		if resp.Succeeded {
			committed = true
			return true, resp.Header.Revision, nil
		}
		if !a.stillOurs(resp, 0) {
			err := a.lost("its live record is gone (lease expired, or the region taken over)")
			a.end(err)
			return false, 0, err
		}
		return false, resp.Header.Revision, nil // the placement changed: re-read it
	})
	if !committed && adm != nil {
		// Not written: the summaries go back to be written with the
		// agent's next audited entry. (A failure counted rather than
		// written stays counted: the agent did acknowledge it.)
		adm.undo(s)
	}
	return err
}

// AckNeeded checks an ack as Ack does and says, from the cache, whether
// Ack would write anything: not when the region's replica entry already
// says st and detail, nor for a retiring copy's ACCEPTED or RUNNING. It
// returns the ack's tenant (found as Ack finds it when tenant is ""),
// and the errors Ack would: router.InvalidError, router.ErrNotFound,
// router.ErrNotAssigned. It writes nothing. A server holding an agent's
// acks to a rate spends the rate only on those that write, and holds
// back no more acks than the region holds placements.
func (a *AgentSession) AckNeeded(ctx context.Context, tenant, placementID string, st router.ReplicaState, detail string) (string, bool, error) {
	tenant, err := a.ackTenant(tenant, placementID, st, detail)
	if err != nil {
		return "", false, err
	}
	key := placementKey(tenant, placementID)
	for cached := false; ; cached = true {
		tx := a.s.db.Txn(false)
		rec := placementTxn(tx, key)
		tx.Abort()
		if rec != nil {
			_, needed, err := a.ackChange(rec.P, placementID, st, detail)
			return tenant, needed, err
		}
		if cached {
			return "", false, fmt.Errorf("placement %q: %w", placementID, router.ErrNotFound)
		}
		// Not in the cache: in etcd, perhaps, and the cache behind.
		if err := a.s.notCached(ctx, a.s.keys.placement(key), "placement "+placementID); err != nil {
			return "", false, err
		}
	}
}

// ackTenant checks an ack's values and the session, and returns the
// tenant the ack is for (tenantOf when it names none).
func (a *AgentSession) ackTenant(tenant, placementID string, st router.ReplicaState, detail string) (string, error) {
	var v router.Violations
	if !validKeyPart(placementID) {
		v.Add("ack.placement_id", "required: a placement id")
	}
	if tenant != "" && !validKeyPart(tenant) {
		v.Add("ack.tenant", "not a tenant id")
	}
	switch st {
	case router.ReplicaAccepted, router.ReplicaRunning, router.ReplicaFailed:
	default:
		v.Add("ack.state", "want accepted, running or failed, got %s", st)
	}
	checkDetail(&v, "ack.detail", detail)
	if err := v.Err(); err != nil {
		return "", err
	}
	if err := a.Err(); err != nil {
		return "", err
	}
	if tenant == "" {
		return a.tenantOf(placementID)
	}
	return tenant, nil
}

// ackChange says what an ack of p's copy in the session's region
// changes: i is the index of the region's replica entry (-1 for a
// retiring copy), needed whether anything is written (the entry, or for
// FAILED an audit entry). A placement that holds nothing in the region
// is router.ErrNotAssigned.
func (a *AgentSession) ackChange(p *router.Placement, placementID string, st router.ReplicaState, detail string) (i int, needed bool, err error) {
	if !p.Holds(a.region) {
		return 0, false, fmt.Errorf("placement %q, region %s: %w", placementID, a.region, router.ErrNotAssigned)
	}
	if i = slices.Index(p.Regions, a.region); i >= 0 {
		cur := p.Replica(i)
		return i, cur.State != st || cur.Detail != detail, nil
	}
	return -1, st == router.ReplicaFailed, nil
}

// tenantOf finds the tenant of an ack that names none: the one tenant
// whose placement of request id id holds the region. None is
// router.ErrNotFound (like an ack of a placement that no longer holds
// the region, it changes nothing); several, an InvalidError on
// ack.tenant.
func (a *AgentSession) tenantOf(id string) (string, error) {
	tenants := make(map[string]bool)
	tx := a.s.db.Txn(false)
	it, err := tx.Get(tablePlacements, indexRequest, id)
	if err != nil {
		tx.Abort()
		return "", err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if p := raw.(*placementRecord).P; p.Holds(a.region) {
			tenants[p.Tenant] = true
		}
	}
	tx.Abort()
	switch len(tenants) {
	case 0:
		return "", fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
	case 1:
		for t := range tenants {
			return t, nil
		}
	}
	return "", router.Violations{{Field: "ack.tenant", Description: fmt.Sprintf(
		"required: the region holds more than one tenant's placement of request id %q", id)}}.Err()
}

// Assignments returns the changes to what the session's region is
// assigned. The first call returns at once with a RUN for every live
// placement that holds the region (a replica or a retiring copy there),
// possibly none. Each later call waits until the cache moves past what
// the previous call saw and the region's set differs from it, then
// returns a RUN for each placement that joined the set and a STOP for
// each that left it (released, or moved away with no retiring copy
// left). It reads the cache's index of the placements holding the
// region, never every placement. It returns early when ctx ends, the
// session ends, or the store closes.
func (a *AgentSession) Assignments(ctx context.Context) ([]router.Assignment, error) {
	a.amu.Lock()
	defer a.amu.Unlock()
	for {
		select {
		case <-a.s.done:
			return nil, fmt.Errorf("%w: store closed", router.ErrUnavailable)
		default:
		}
		if err := a.Err(); err != nil {
			return nil, err
		}
		tx := a.s.db.Txn(false)
		rev, _ := revisionTxn(tx)
		out, err := a.diffTxn(tx, rev)
		tx.Abort()
		if err != nil {
			return nil, err
		}
		if len(out) > 0 || a.first {
			a.first = false
			return out, nil
		}
		changed := a.s.rev.wait(rev + 1)
		if changed == nil {
			continue // the cache moved meanwhile
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-a.done:
		case <-a.s.done:
		case <-changed:
		}
	}
}

// diffTxn compares the region's set of placements at rev with the one
// last returned, updates it, and returns the changes: RUNs in placement
// key order ("tenant/id"), then STOPs in placement key order.
func (a *AgentSession) diffTxn(tx *memdb.Txn, rev int64) ([]router.Assignment, error) {
	it, err := tx.Get(tablePlacements, indexHolds, a.region)
	if err != nil {
		return nil, err
	}
	var out []router.Assignment
	seen := make(map[string]struct{}, len(a.known))
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rec := raw.(*placementRecord)
		key := keyOf(rec.P)
		seen[key] = struct{}{}
		if _, ok := a.known[key]; !ok {
			out = append(out, router.Assignment{Action: router.AssignRun, Placement: rec.P, Revision: rec.Rev})
			a.known[key] = rec.P
		}
	}
	if len(seen) == len(a.known) {
		return out, nil // every known placement is still there
	}
	var stops []router.Assignment
	for key, last := range a.known {
		if _, ok := seen[key]; ok {
			continue
		}
		st := router.Assignment{Action: router.AssignStop, Placement: last, Revision: rev}
		if rec := placementTxn(tx, key); rec != nil {
			st.Placement, st.Revision = rec.P, rec.Rev
		}
		stops = append(stops, st)
		delete(a.known, key)
	}
	sort.Slice(stops, func(i, j int) bool { return keyOf(stops[i].Placement) < keyOf(stops[j].Placement) })
	return append(out, stops...), nil
}

// clip shortens what a caller sent for an error message.
func clip(s string) string { return router.Clip(s, 203) }
