package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router/audit"
)

// The audit trail in etcd: entries written with the changes they record,
// listed and found. The entries' format, the hash chain and its
// verification are router/audit's; the chainer that seals the trail is
// auditchain.go, its index auditindex.go.

// auditOps returns the etcd operations that append e, flat, to be put
// in the transaction of the change e records: the entry under audit/,
// alone. (Its index keys are written behind it, by the indexer: see
// auditindex.go.) A zero e.Time is now. size is the bytes they write.
func (s *Store) auditOps(e audit.Entry) (ops []clientv3.Op, size int, err error) {
	if e.Time.IsZero() {
		e.Time = s.clock().UTC()
	}
	val, err := audit.Encode(e)
	if err != nil {
		return nil, 0, err
	}
	id := s.auditID.Next(e.Time)
	return []clientv3.Op{clientv3.OpPut(s.keys.audit(id), string(val))}, len(val), nil
}

// auditOp is auditOps as one operation (a nested transaction without
// conditions), so that the callers' transactions keep one shape
// whatever an entry writes.
func (s *Store) auditOp(e audit.Entry) (clientv3.Op, error) {
	ops, _, err := s.auditOps(e)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpTxn(nil, ops, nil), nil
}

// appendAudit writes audit records on their own, in one transaction.
func (s *Store) appendAudit(ctx context.Context, es ...audit.Entry) error {
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
func (s *Store) ListAudit(ctx context.Context, limit int) ([]audit.Entry, error) {
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
	out := make([]audit.Entry, len(resp.Kvs))
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

func (f *AuditFilter) match(e *audit.Entry) bool {
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
		from = audit.IDTime(f.Since)
	}
	if f.After != "" {
		from = max(from, f.After+"\x00")
	}
	if !f.Until.IsZero() {
		to = audit.IDTime(f.Until)
	}
	return from, to
}

// FindAudit returns the audit records f selects, oldest first, a page of
// at most f.Limit, and the token of the next page ("" after the last).
//
// It reads etcd at one revision. A filter on tenant, workload, region or
// op is answered from the index (auditindex.go): the ids each names are
// joined, reading only index keys near the matches, and then only the
// matching entries are read; a filter naming a value no entry has costs
// a read per named field, whatever the size of the trail. A filter that
// names a tenant reads that tenant's index ranges only, so that work
// depends on no other tenant's entries. The index is written behind the
// trail: when it does not yet cover the revision read, the entries
// written since its watermark (the tail, from the watermark's floor) are
// read too, matched and merged, whatever the filter. Without such a
// filter the entries of f's time range are read in order, each a match.
// On a trail not yet indexed (written before the index; the leader
// indexes it in the background) every filter reads the whole time range.
func (s *Store) FindAudit(ctx context.Context, f AuditFilter) ([]audit.Record, string, error) {
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
	wm, err := q.watermark()
	if err != nil {
		return nil, "", err
	}
	if wm == nil {
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
	bound := "" // the index may hold more past it
	if len(ids) == limit {
		bound = ids[len(ids)-1]
	}
	if wm.covers(q.rev) {
		return page(recs, bound, nil, "", limit)
	}
	tail, tbound, err := q.tail(&f, wm, from, to, limit)
	if err != nil {
		return nil, "", err
	}
	return page(recs, bound, tail, tbound, limit)
}

// page merges two ascending lists of records, each complete up to its
// bound ("": complete), into a page of at most limit, each id once, and
// returns it with the next page's token.
func page(a []audit.Record, aBound string, b []audit.Record, bBound string, limit int) ([]audit.Record, string, error) {
	bound := aBound
	if bBound != "" && (bound == "" || bBound < bound) {
		bound = bBound
	}
	out := a
	if len(b) > 0 {
		out = make([]audit.Record, 0, len(a)+len(b))
		i, j := 0, 0
		for i < len(a) || j < len(b) {
			switch {
			case j == len(b) || i < len(a) && a[i].ID < b[j].ID:
				out = append(out, a[i])
				i++
			case i == len(a) || b[j].ID < a[i].ID:
				out = append(out, b[j])
				j++
			default: // both: read at the same revision
				out = append(out, b[j])
				i, j = i+1, j+1
			}
		}
	}
	if bound != "" {
		// Past the bound one list is not complete: the next page
		// starts there.
		n, _ := slices.BinarySearchFunc(out, bound, func(r audit.Record, id string) int { return strings.Compare(r.ID, id) })
		if n < len(out) && out[n].ID == bound {
			n++
		}
		out = out[:n]
	}
	switch {
	case len(out) >= limit:
		out = out[:limit]
		return out, out[limit-1].ID, nil
	default:
		return out, bound, nil
	}
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

// watermark reads the audit index's watermark (nil: none), at the
// latest revision, which becomes the query's. It is not counted in the
// keys read: every filtered query reads it.
func (q *auditQuery) watermark() (*auditWatermark, error) {
	gctx, cancel := context.WithTimeout(q.ctx, q.s.opTimeout)
	defer cancel()
	resp, err := q.s.kv.Get(gctx, q.s.keys.auditWatermark())
	if err != nil {
		return nil, unavailable(q.ctx, err)
	}
	q.rev = resp.Header.Revision
	return q.s.readWatermark(resp.Kvs), nil
}

// tailPage is the page size of a tail read, in keys, and maxTailKeys
// about the most keys one query reads of the tail: past it, the page
// ends where the read did, and its token resumes from there.
const (
	tailPage    = 1000
	maxTailKeys = 5 * tailPage
)

// tail reads the entries not yet indexed (written after wm.Through) with
// ids in [from, to) dated from wm.Floor, in order, and keeps those f
// matches, at most limit; bound is where it stopped when there may be
// more ("" when none): the last match, or, past maxTailKeys, the last
// id read.
func (q *auditQuery) tail(f *AuditFilter, wm *auditWatermark, from, to string, limit int) (recs []audit.Record, bound string, err error) {
	if !wm.Floor.IsZero() {
		from = max(from, audit.IDTime(wm.Floor))
	}
	start, end := q.s.keys.audit(from), clientv3.GetPrefixRangeEnd(q.s.keys.audit(""))
	if to != "" {
		end = q.s.keys.audit(to)
	}
	// The ids first, then those entries: etcd answers a read of keys
	// alone from its in-memory index, and walks no further than the
	// page it returns. (Not with a filter on the mod revision, which
	// would return only the keys written after the watermark: etcd
	// applies it after walking the whole range to its end, whatever the
	// limit, so that with the indexer far behind, or not yet started
	// (no floor), one read would walk every key since.) The keys
	// indexed already are dropped here, and only the others' entries
	// read.
	read := 0
	for start < end {
		resp, err := q.get(start, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(tailPage))
		if err != nil {
			return nil, "", err
		}
		var ids []string
		for _, kv := range resp.Kvs {
			if kv.ModRevision > wm.Through {
				ids = append(ids, strings.TrimPrefix(string(kv.Key), q.s.keys.audit("")))
			}
		}
		found, err := q.entries(f, ids)
		if err != nil {
			return nil, "", err
		}
		recs = append(recs, found...)
		if len(recs) >= limit {
			recs = recs[:limit]
			return recs, recs[limit-1].ID, nil
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		last := string(resp.Kvs[len(resp.Kvs)-1].Key)
		if read += len(resp.Kvs); read >= maxTailKeys {
			return recs, strings.TrimPrefix(last, q.s.keys.audit("")), nil
		}
		start = last + "\x00"
	}
	return recs, "", nil
}

// scan reads the entries with ids in [from, to) in order, page at a
// time, and keeps those f matches.
func (q *auditQuery) scan(f *AuditFilter, from, to string, limit, page int) ([]audit.Record, string, error) {
	start, end := q.s.keys.audit(from), clientv3.GetPrefixRangeEnd(q.s.keys.audit(""))
	if to != "" {
		end = q.s.keys.audit(to)
	}
	var out []audit.Record
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

// entries reads the entries of ids, in order, and keeps those f
// matches: all of them, unless an entry was written without its index
// keys' agreement (straight into etcd), deleted, or does not decode (it
// matches no filter; an unfiltered listing reports it).
func (q *auditQuery) entries(f *AuditFilter, ids []string) ([]audit.Record, error) {
	out := make([]audit.Record, 0, len(ids))
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
				if err == nil && f.match(&rec.Entry) {
					out = append(out, rec)
				}
			}
		}
		ids = ids[n:]
	}
	return out, nil
}

func (s *Store) auditRecord(key, val []byte, written int64) (audit.Record, error) {
	rec := audit.Record{ID: strings.TrimPrefix(string(key), s.keys.audit("")), Written: written}
	if err := json.Unmarshal(val, &rec.Entry); err != nil {
		return audit.Record{}, fmt.Errorf("audit record %s: %w", rec.ID, err)
	}
	return rec, nil
}
