package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Audit operations.
const (
	AuditPlace   = "place"   // a placement committed
	AuditRefuse  = "refuse"  // a placement refused: no eligible region, or spread unsatisfiable
	AuditRelease = "release" // a placement released

	// AuditRefuseSummary stands for the refusals of one caller and
	// tenant that were not audited one by one (see auditlimit.go):
	// Count of them, made from From to To, by reason in Reasons.
	AuditRefuseSummary = "refuse-summary"

	// Written by the reconciler (reconcile.go), in the transaction of
	// the change they record.
	AuditViolation = "violation" // a replica's region no longer covers the workload
	AuditStranded  = "stranded"  // a replica must move and no region can take it
	AuditReroute   = "reroute"   // a replica moved: Regions holds from, to
	AuditRetire    = "retire"    // a moved-away copy released once its replacement was confirmed
	AuditRecovered = "recovered" // a placement's issues cleared without a move
	AuditHealth    = "health"    // a region marked unhealthy: no live agent past the grace period
	// AuditReplicaFailed: a region's agent acknowledged a replica as
	// FAILED (Regions names the region, Reasons the agent's detail).
	// Bounded per agent as refusals are (auditlimit.go).
	AuditReplicaFailed = "replica-failed"
	// AuditReplicaFailedSummary stands for the replica-failed entries of
	// one agent and tenant that were not written one by one: Count of
	// them, from From to To, by placement in Reasons.
	AuditReplicaFailedSummary = "replica-failed-summary"

	// Catalogue changes, written in the transaction of the change. For
	// regions, Before and After summarise the accreditation.
	AuditRegionPut      = "region-put"
	AuditRegionDelete   = "region-delete"
	AuditProviderPut    = "provider-put"
	AuditProviderDelete = "provider-delete"
	AuditTenantPut      = "tenant-put"
	AuditTenantDelete   = "tenant-delete"
)

// AuditEntry is one audit record: what was decided, for whom, on what
// label, where, and on which revision of the state. Place and release
// records are written in the same etcd transaction as the change they
// record; refusal records are written before the refusal is returned,
// one by one up to each caller's rate and then as counted summaries
// (auditlimit.go). Its stored form is at most MaxAuditEntryBytes.
type AuditEntry struct {
	Time time.Time `json:"time"`
	Op   string    `json:"op"`
	// Actor is who: the caller's SPIFFE ID, or "system" (the reconciler).
	Actor     string `json:"actor"`
	RequestID string `json:"request_id"`
	Tenant    string `json:"tenant"`
	// Workload is the workload's name.
	Workload string `json:"workload"`
	// Label is the workload's canonical banner.
	Label   string    `json:"label"`
	Regions []string  `json:"regions,omitempty"`
	Scores  []float64 `json:"scores,omitempty"`
	// Reasons says why a refusal refused: the summary, then for every
	// region refused "provider/id: code, code", first those of the
	// regions the tenant may know of (router.Tenant.MayKnow) and then
	// the others, each part in the decision's order. Each reason is at
	// most maxReasonBytes, and all of them at most MaxAuditReasonsBytes:
	// the region verdicts past the bound are counted in ReasonsOmitted.
	Reasons        []string `json:"reasons,omitempty"`
	ReasonsOmitted int      `json:"reasons_omitted,omitempty"`
	// Revision is the etcd revision the decision read.
	Revision int64 `json:"revision"`
	// Provider is the provider a provider-put or -delete changed.
	Provider string `json:"provider,omitempty"`
	// Before and After summarise what a catalogue change changed (a
	// region's accreditation); empty for the others.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Count, in a refuse-summary (or replica-failed-summary), is how
	// many refusals (or failure acknowledgements) it stands for,
	// made from From to To. Its Time, like any entry's, is when it was
	// written: never before the entries written ahead of it.
	Count int64     `json:"count,omitempty"`
	From  time.Time `json:"from,omitzero"`
	To    time.Time `json:"to,omitzero"`
}

// Stored sizes. An audit entry holds at most: a canonical banner (the
// parser bounds its input to router.MaxBannerLen; expanding tetragraphs
// adds a few hundred bytes), up to twice router.MaxReplicas region keys
// (a release while every replica moves: replicas and retiring copies),
// names and ids of bounded length, and reasons bounded here. The worst
// legal entry is about 9.5 KB (TestAuditEntrySize and TestAuditEntryBound
// build it); the cap
// leaves room and is enforced: an entry that would exceed it is not
// written, and the change it records fails with it.
const (
	MaxAuditEntryBytes   = 16 << 10
	MaxAuditReasonsBytes = 4 << 10
	maxReasonBytes       = 512
)

// auditIDs makes audit keys that sort by time and are unique across
// daemons: the clock in nanoseconds, this store's random node id, and a
// per-store sequence number, all fixed width.
type auditIDs struct {
	node string
	seq  atomic.Uint64
}

func (a *auditIDs) next(t time.Time) string {
	ns := max(t.UnixNano(), 0)
	return fmt.Sprintf("%016x-%s-%08x", ns, a.node, a.seq.Add(1))
}

// auditIDTime is the id prefix of time t: every id of an entry at t or
// later sorts at or after it.
func auditIDTime(t time.Time) string { return fmt.Sprintf("%016x", max(t.UnixNano(), 0)) }

// encodeAudit is e's stored form, within MaxAuditEntryBytes: reasons
// clipped to maxReasonBytes each and MaxAuditReasonsBytes together (the
// first, the refusal's summary, always kept; the region verdicts past
// the bound counted in ReasonsOmitted), Before and After clipped.
func encodeAudit(e AuditEntry) ([]byte, error) {
	if len(e.Before) > maxReasonBytes || len(e.After) > maxReasonBytes {
		e.Before, e.After = clipReason(e.Before), clipReason(e.After)
	}
	total, clip := 0, false
	for i, r := range e.Reasons {
		total += len(r)
		clip = clip || len(r) > maxReasonBytes || (i > 0 && total > MaxAuditReasonsBytes)
	}
	if clip {
		kept := make([]string, 0, len(e.Reasons))
		total = 0
		for i, r := range e.Reasons {
			r = clipReason(r)
			if i > 0 && total+len(r) > MaxAuditReasonsBytes {
				e.ReasonsOmitted += len(e.Reasons) - i
				break
			}
			total += len(r)
			kept = append(kept, r)
		}
		e.Reasons = kept
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit record: %w", err)
	}
	if len(b) > MaxAuditEntryBytes {
		return nil, fmt.Errorf("audit record of %s %s is %d bytes, over the bound of %d", e.Op, e.RequestID, len(b), MaxAuditEntryBytes)
	}
	return b, nil
}

// clipReason shortens a reason to maxReasonBytes, saying by how much.
func clipReason(r string) string {
	if len(r) <= maxReasonBytes {
		return r
	}
	const room = 32 // for the note
	cut := strings.ToValidUTF8(r[:maxReasonBytes-room], "")
	return fmt.Sprintf("%s... (%d bytes clipped)", cut, len(r)-len(cut))
}

// auditOps returns the etcd operations that append e, flat, to be put
// in the transaction of the change e records: the entry under audit/
// and its index keys (auditindex.go). A zero e.Time is now. size is the
// bytes they write.
func (s *Store) auditOps(e AuditEntry) (ops []clientv3.Op, size int, err error) {
	if e.Time.IsZero() {
		e.Time = s.clock().UTC()
	}
	val, err := encodeAudit(e)
	if err != nil {
		return nil, 0, err
	}
	id := s.auditID.next(e.Time)
	ops = append(ops, clientv3.OpPut(s.keys.audit(id), string(val)))
	size = len(val)
	for _, k := range s.keys.auditIndexKeys(id, &e, true) {
		ops = append(ops, clientv3.OpPut(k, ""))
		size += len(k)
	}
	return ops, size, nil
}

// auditOp is auditOps as one operation (a nested transaction without
// conditions), for a transaction with room for it: etcd allows a nested
// transaction the operations its parent level leaves of --max-txn-ops,
// and an entry needs at most 6 plus two per region it names (70 for a
// release naming twice router.MaxReplicas regions, whose parent level
// holds 34: the placement, a usage record per region, the entry).
func (s *Store) auditOp(e AuditEntry) (clientv3.Op, error) {
	ops, _, err := s.auditOps(e)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpTxn(nil, ops, nil), nil
}

// appendAudit writes audit records on their own, in one transaction.
func (s *Store) appendAudit(ctx context.Context, es ...AuditEntry) error {
	var ops []clientv3.Op
	for _, e := range es {
		eops, _, err := s.auditOps(e)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpTxn(nil, eops, nil))
	}
	_, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(ops...).Commit()
	})
	return err
}

// ListAudit returns the latest limit audit records (100 when limit is not
// positive), oldest first, read from etcd.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.kv.Get(gctx, s.keys.audit(""), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	out := make([]AuditEntry, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		e := &out[len(out)-1-i]
		if err := json.Unmarshal(kv.Value, e); err != nil {
			return nil, fmt.Errorf("audit record %s: %w", kv.Key, err)
		}
	}
	return out, nil
}

// AuditFilter selects audit records; zero fields select everything. The
// policy layer forces Tenant for a tenant's auditor.
type AuditFilter struct {
	Tenant   string
	Workload string
	// Region is a region key "provider/id" the record names.
	Region string
	Op     string
	// Since and Until bound the record's time: [Since, Until).
	Since, Until time.Time
	// After is a page token: the ID of the last record of the previous
	// page.
	After string
	// Limit is the page size (default 100, at most 1000).
	Limit int
}

func (f *AuditFilter) match(e *AuditEntry) bool {
	return (f.Tenant == "" || e.Tenant == f.Tenant) &&
		(f.Workload == "" || e.Workload == f.Workload) &&
		(f.Op == "" || e.Op == f.Op) &&
		(f.Region == "" || slices.Contains(e.Regions, f.Region)) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}

// idRange is the range of audit ids f's times and page token allow:
// [from, to), to "" for no bound.
func (f *AuditFilter) idRange() (from, to string) {
	if !f.Since.IsZero() {
		from = auditIDTime(f.Since)
	}
	if f.After != "" {
		from = max(from, f.After+"\x00")
	}
	if !f.Until.IsZero() {
		to = auditIDTime(f.Until)
	}
	return from, to
}

// AuditRecord is an audit entry with its id (the key under audit/, which
// sorts by time) and the etcd revision that wrote it.
type AuditRecord struct {
	ID      string
	Written int64
	Entry   AuditEntry
}

// FindAudit returns the audit records f selects, oldest first, a page of
// at most f.Limit, and the token of the next page ("" after the last).
//
// It reads etcd at one revision. A filter on tenant, workload, region or
// op is answered from the index (auditindex.go): the ids each names are
// joined, reading only index keys near the matches, and then only the
// matching entries are read; a filter naming a value no entry has costs
// a read per named field, whatever the size of the trail. A filter that
// names a tenant reads that tenant's index ranges only, so its work
// depends on no other tenant's entries. Without such a filter the
// entries of f's time range are read in order, each a match. Until the
// index covers the whole trail (a trail written before it existed, or
// before its per-tenant ranges did, is indexed in the background), a
// filter naming a tenant reads and matches that tenant's entries of the
// time range (its t range) when the shared ranges are complete, and any
// other filter every entry of the time range.
func (s *Store) FindAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	from, to := f.idRange()
	if to != "" && from >= to {
		return nil, "", nil
	}
	q := &auditQuery{s: s, ctx: ctx}
	lists := s.keys.auditIndexLists(&f)
	if len(lists) == 0 {
		return q.scan(&f, from, to, limit, limit)
	}
	need := indexedShared
	if f.Tenant != "" {
		need = indexedTenant // its ranges are the per-tenant ones
	}
	if s.trail.indexed.Load() < need {
		if err := s.checkAuditIndex(ctx); err != nil {
			return nil, "", err
		}
	}
	switch level := s.trail.indexed.Load(); {
	case level >= need:
	case f.Tenant != "" && level == indexedShared:
		// Not the other tenants' entries: this tenant's, all of them.
		return q.scanList(&f, s.keys.auditIndex(idxTenant, f.Tenant), from, to, limit)
	default:
		return q.scan(&f, from, to, limit, 500)
	}
	ids, err := q.join(lists, from, to, limit)
	if err != nil {
		return nil, "", err
	}
	recs, err := q.entries(&f, ids)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) == limit {
		next = ids[len(ids)-1]
	}
	return recs, next, nil
}

// auditQuery is one FindAudit's reads: all at the revision of the first.
type auditQuery struct {
	s   *Store
	ctx context.Context
	rev int64
}

// get is one read at the query's revision; it counts the keys read.
func (q *auditQuery) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	gctx, cancel := context.WithTimeout(q.ctx, q.s.opTimeout)
	defer cancel()
	resp, err := q.s.kv.Get(gctx, key, append(opts, clientv3.WithRev(q.rev))...)
	if err != nil {
		return nil, unavailable(q.ctx, err)
	}
	q.rev = resp.Header.Revision
	q.s.trail.keysRead.Add(int64(len(resp.Kvs)))
	return resp, nil
}

// scan reads the entries with ids in [from, to) in order, page at a
// time, and keeps those f matches.
func (q *auditQuery) scan(f *AuditFilter, from, to string, limit, page int) ([]AuditRecord, string, error) {
	start, end := q.s.keys.audit(from), clientv3.GetPrefixRangeEnd(q.s.keys.audit(""))
	if to != "" {
		end = q.s.keys.audit(to)
	}
	var out []AuditRecord
	for start < end {
		resp, err := q.get(start, clientv3.WithRange(end), clientv3.WithLimit(int64(page)))
		if err != nil {
			return nil, "", err
		}
		for _, kv := range resp.Kvs {
			rec, err := q.s.auditRecord(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, "", err
			}
			if !f.match(&rec.Entry) {
				continue
			}
			out = append(out, rec)
			if len(out) == limit {
				return out, rec.ID, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return out, "", nil
}

// scanList reads the entries of one index range with ids in [from, to)
// in order, a page at a time, and keeps those f matches.
func (q *auditQuery) scanList(f *AuditFilter, list, from, to string, limit int) ([]AuditRecord, string, error) {
	const page = 100
	var out []AuditRecord
	for {
		ids, err := q.join([]string{list}, from, to, page)
		if err != nil {
			return nil, "", err
		}
		recs, err := q.entries(f, ids)
		if err != nil {
			return nil, "", err
		}
		for _, rec := range recs {
			out = append(out, rec)
			if len(out) == limit {
				return out, rec.ID, nil
			}
		}
		if len(ids) < page {
			return out, "", nil
		}
		from = ids[len(ids)-1] + "\x00"
	}
}

// entries reads the entries of ids, in order, and keeps those f
// matches: all of them, unless an entry was written without its index
// keys' agreement (straight into etcd).
func (q *auditQuery) entries(f *AuditFilter, ids []string) ([]AuditRecord, error) {
	out := make([]AuditRecord, 0, len(ids))
	const chunk = 100 // Gets per transaction, under --max-txn-ops
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		ops := make([]clientv3.Op, n)
		for i, id := range ids[:n] {
			ops[i] = clientv3.OpGet(q.s.keys.audit(id), clientv3.WithRev(q.rev))
		}
		tctx, cancel := context.WithTimeout(q.ctx, q.s.opTimeout)
		resp, err := q.s.kv.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return nil, unavailable(q.ctx, err)
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().GetKvs() {
				q.s.trail.keysRead.Add(1)
				rec, err := q.s.auditRecord(kv.Key, kv.Value, kv.ModRevision)
				if err != nil {
					return nil, err
				}
				if f.match(&rec.Entry) {
					out = append(out, rec)
				}
			}
		}
		ids = ids[n:]
	}
	return out, nil
}

func (s *Store) auditRecord(key, val []byte, written int64) (AuditRecord, error) {
	rec := AuditRecord{ID: strings.TrimPrefix(string(key), s.keys.audit("")), Written: written}
	if err := json.Unmarshal(val, &rec.Entry); err != nil {
		return AuditRecord{}, fmt.Errorf("audit record %s: %w", rec.ID, err)
	}
	return rec, nil
}
