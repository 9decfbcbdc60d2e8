package state

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The audit index lets FindAudit read only what a filter selects. Every
// entry's writer puts, in the entry's own transaction, one empty key per
// field value a filter can name, and, for an entry of a tenant, one per
// value paired with the tenant:
//
//	audit-index/t/<tenant>/<id>              the entry's tenant
//	audit-index/w/<workload>/<id>            its workload
//	audit-index/o/<op>/<id>                  its op
//	audit-index/r/<region>/<id>              each region it names
//	audit-index/tw/<tenant>/<workload>/<id>  the same, within its tenant
//	audit-index/to/<tenant>/<op>/<id>
//	audit-index/tr/<tenant>/<region>/<id>
//	audit-index/complete                     marker: every entry has its
//	                                         t, w, o and r keys
//	audit-index/complete-v2                  marker: every entry has all
//
// with each value path-escaped (so a region key "provider/id" is one
// segment) and <id> the entry's id under audit/, which sorts by time.
// The ids of one field value are then one key range in time order, and
// a time range or a page token is a sub-range of it. A filter on several
// fields is a leapfrog join of their ranges: each range is asked, in
// turn, for its first id at or after the candidate, reading a small page
// of keys only (no values) from there (first one key, then doubling up
// to 32); a range that answers with a later id makes it the candidate,
// and an id all ranges answer is a match. So a query reads the keys of
// the matches, at most a page per skip, and then the matched entries,
// never the trail: a filter naming a value no entry has costs one read
// per field named, of at most one key each (etcd finds the range in its
// in-memory index in O(log n)); fields that each match but never
// together cost at most a page per id of the sparser range.
//
// A filter that names a tenant reads only that tenant's ranges (t alone,
// or the tw, to and tr ranges of the other fields it names), never a
// range shared with other tenants: what it reads, and so how long it
// takes, depends on that tenant's entries alone. A tenant's auditor is
// always held to its tenant, so nothing another tenant does, in regions
// the auditor may not know of or any other, moves the work of its
// queries, and a filter on another tenant's workload or on an op only
// others used costs what one on a value nobody used costs. (The shared
// ranges serve the filters of callers who see every tenant.)
//
// The index sorts before "audit0", like the chain (keys.go): the cache's
// watch skips it, and the chainer and VerifyAudit, which read audit/
// alone, never see it. It is derived data: VerifyAudit vouches for the
// entries, and a forged entry written straight into etcd without its
// index keys is found by unfiltered listing and by verification, not by
// a filtered one.
//
// A trail written before the index existed, or before its per-tenant
// keys did, lacks keys: Open writes both markers at once when the trail
// is empty, and otherwise the store indexes the trail in the background
// (backfillAuditIndex) and writes the markers at the end. Until a store
// has seen a marker, the filters it covers are answered without it: a
// filter naming a tenant reads that tenant's t range and matches its
// entries (complete only), and any filter reads the whole time range
// (neither: the old way). An entry written by a daemon of an older
// version after a marker lacks the keys that marker vouches for: upgrade
// every daemon, then delete the markers (audit-index/complete and
// audit-index/complete-v2) and restart one, which indexes the trail
// again.

// auditTrail is a store's state of the audit trail beyond its ids.
type auditTrail struct {
	// indexed is how much of the index covers the trail (the markers
	// seen): indexedNone, indexedShared or indexedTenant.
	indexed atomic.Int32
	// keysRead counts the keys FindAudit has read from etcd, index
	// keys and entries (for metrics and tests).
	keysRead atomic.Int64
	// refusals bounds the refusals audited one by one (auditlimit.go).
	refusals refusalLimiter
}

// Index coverage, as the markers say.
const (
	indexedNone   int32 = 0 // no marker: filters read the whole time range
	indexedShared int32 = 1 // audit-index/complete: the t, w, o and r keys
	indexedTenant int32 = 2 // audit-index/complete-v2: the per-tenant keys too
)

// AuditKeysRead counts the keys FindAudit has read from etcd since the
// store opened, index keys and entries.
func (s *Store) AuditKeysRead() int64 { return s.trail.keysRead.Load() }

// Index fields: the directory of each.
const (
	idxTenant         = "t/"
	idxWorkload       = "w/"
	idxOp             = "o/"
	idxRegion         = "r/"
	idxTenantWorkload = "tw/" // then the tenant, then the workload
	idxTenantOp       = "to/"
	idxTenantRegion   = "tr/"
	idxComplete       = "complete"    // indexedShared
	idxCompleteV2     = "complete-v2" // indexedTenant
)

func (k keys) auditIndex(field, value string) string {
	return k.prefix + auditIndexDir + field + url.PathEscape(value) + "/"
}

// auditTenantIndex is the range of value within tenant's entries.
func (k keys) auditTenantIndex(field, tenant, value string) string {
	return k.auditIndex(field, tenant) + url.PathEscape(value) + "/"
}

// auditIndexKeys are the index keys of entry e with id id: all of them,
// or with shared false only the per-tenant ones (tw, to, tr).
func (k keys) auditIndexKeys(id string, e *AuditEntry, shared bool) []string {
	out := make([]string, 0, 6+2*len(e.Regions))
	add := func(field, value string) {
		if value == "" {
			return
		}
		if shared {
			out = append(out, k.auditIndex(field, value)+id)
		}
		if e.Tenant != "" && field != idxTenant {
			out = append(out, k.auditTenantIndex(tenantField[field], e.Tenant, value)+id)
		}
	}
	add(idxTenant, e.Tenant)
	add(idxWorkload, e.Workload)
	add(idxOp, e.Op)
	for i, r := range e.Regions {
		if !slices.Contains(e.Regions[:i], r) { // a key once per transaction
			add(idxRegion, r)
		}
	}
	return out
}

// tenantField is the per-tenant directory of each shared one.
var tenantField = map[string]string{idxWorkload: idxTenantWorkload, idxOp: idxTenantOp, idxRegion: idxTenantRegion}

// auditIndexLists are the index ranges (key prefixes) of the fields f
// names, none when it names none: for a filter naming a tenant, that
// tenant's ranges only (see above).
func (k keys) auditIndexLists(f *AuditFilter) []string {
	var out []string
	others := [...]struct{ field, value string }{{idxWorkload, f.Workload}, {idxOp, f.Op}, {idxRegion, f.Region}}
	for _, x := range others {
		switch {
		case x.value == "":
		case f.Tenant != "":
			out = append(out, k.auditTenantIndex(tenantField[x.field], f.Tenant, x.value))
		default:
			out = append(out, k.auditIndex(x.field, x.value))
		}
	}
	if f.Tenant != "" && len(out) == 0 {
		out = append(out, k.auditIndex(idxTenant, f.Tenant))
	}
	return out
}

func (k keys) auditIndexComplete() string   { return k.prefix + auditIndexDir + idxComplete }
func (k keys) auditIndexCompleteV2() string { return k.prefix + auditIndexDir + idxCompleteV2 }

// indexIter walks the ids of one index range, a page of keys at a time.
type indexIter struct {
	q       *auditQuery
	prefix  string // the range's key prefix; ids follow it
	end     string // the range's end key
	page    int    // keys to read next
	maxPage int
	buf     []string // ids read, ascending
	pos     int
	loaded  bool
	more    bool // etcd holds ids past buf in the range
}

// seek returns the range's first id at or after target, or "" when none.
func (it *indexIter) seek(target string) (string, error) {
	if it.pos < len(it.buf) && it.buf[len(it.buf)-1] >= target {
		it.pos += sort.SearchStrings(it.buf[it.pos:], target)
		return it.buf[it.pos], nil
	}
	if it.loaded && !it.more {
		it.pos = len(it.buf)
		return "", nil
	}
	// Past what was read: read a page from the target on, skipping
	// whatever lies between unread.
	resp, err := it.q.get(it.prefix+target, clientv3.WithRange(it.end), clientv3.WithKeysOnly(), clientv3.WithLimit(int64(it.page)))
	if err != nil {
		return "", err
	}
	it.loaded, it.more, it.pos = true, resp.More, 0
	it.page = min(2*it.page, it.maxPage)
	it.buf = it.buf[:0]
	for _, kv := range resp.Kvs {
		it.buf = append(it.buf, strings.TrimPrefix(string(kv.Key), it.prefix))
	}
	if len(it.buf) == 0 {
		return "", nil
	}
	return it.buf[0], nil
}

// join returns up to limit ids in [from, to) found in every one of
// lists (index range prefixes), ascending.
func (q *auditQuery) join(lists []string, from, to string, limit int) ([]string, error) {
	// One range: its first page is the answer. Several: each starts
	// with a probe of one key (so an empty range costs nothing more)
	// and doubles its page with each read, up to 32.
	page, maxPage := limit, limit
	if len(lists) > 1 {
		page, maxPage = 1, min(limit, 32)
	}
	its := make([]*indexIter, len(lists))
	for i, p := range lists {
		end := clientv3.GetPrefixRangeEnd(p)
		if to != "" {
			end = p + to
		}
		its[i] = &indexIter{q: q, prefix: p, end: end, page: page, maxPage: maxPage}
	}
	var out []string
	cand := from
	for len(out) < limit {
		for i, agreed := 0, 0; agreed < len(its); i = (i + 1) % len(its) {
			id, err := its[i].seek(cand)
			if err != nil {
				return nil, err
			}
			if id == "" {
				return out, nil
			}
			if id == cand {
				agreed++
			} else {
				cand, agreed = id, 1
			}
		}
		out = append(out, cand)
		cand += "\x00"
	}
	return out, nil
}

// checkAuditIndex looks for the markers; on a trail with no entry it
// writes them, so a new store is indexed from its first entry.
func (s *Store) checkAuditIndex(ctx context.Context) error {
	m1, m2 := s.keys.auditIndexComplete(), s.keys.auditIndexCompleteV2()
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(
			clientv3.OpGet(m1, clientv3.WithCountOnly()),
			clientv3.OpGet(m2, clientv3.WithCountOnly()),
			clientv3.OpGet(s.keys.audit(""), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1)),
		).Commit()
	})
	if err != nil {
		return err
	}
	level := indexedNone
	switch {
	case resp.Responses[1].GetResponseRange().GetCount() > 0:
		level = indexedTenant
	case resp.Responses[0].GetResponseRange().GetCount() > 0:
		level = indexedShared
	}
	s.trail.raise(level)
	if level == indexedTenant || len(resp.Responses[2].GetResponseRange().GetKvs()) > 0 {
		return nil // indexed, or to be indexed
	}
	// Empty: mark it indexed, unless an entry appeared meanwhile.
	rend := clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	marker := indexMarker(s.clock(), "")
	mark, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(m2), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(s.keys.audit("")), "=", 0).WithRange(rend),
		).Then(clientv3.OpPut(m1, marker), clientv3.OpPut(m2, marker)).Commit()
	})
	if err != nil {
		return err
	}
	if mark.Succeeded {
		s.trail.raise(indexedTenant)
	}
	return nil
}

// raise records that the index covers level (it never falls: the keys
// a marker vouches for are written with every entry from then on).
func (t *auditTrail) raise(level int32) {
	for cur := t.indexed.Load(); cur < level && !t.indexed.CompareAndSwap(cur, level); cur = t.indexed.Load() {
	}
}

func indexMarker(now time.Time, through string) string {
	b, _ := json.Marshal(struct {
		Time    time.Time `json:"time"`
		Through string    `json:"through,omitempty"`
	}{now.UTC(), through})
	return string(b)
}

// backfillAuditIndex indexes a trail written before the index (or
// before its per-tenant keys), then writes the markers. Index keys are
// written again for entries that have them (the puts are idempotent);
// several daemons doing it at once is waste, not harm. It returns when
// done or ctx ends.
func (s *Store) backfillAuditIndex(ctx context.Context) {
	for backoff := time.Second; s.trail.indexed.Load() < indexedTenant && ctx.Err() == nil; backoff = min(2*backoff, 30*time.Second) {
		err := s.checkAuditIndex(ctx)
		if err == nil && s.trail.indexed.Load() < indexedTenant {
			err = s.indexTrail(ctx)
		}
		if err == nil || ctx.Err() != nil {
			continue
		}
		s.log.Warn("state: indexing the audit trail", "err", err, "retry", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
	}
}

// indexTrail writes the index keys of every entry (only the per-tenant
// ones when the shared ones are complete), then the markers.
func (s *Store) indexTrail(ctx context.Context) error {
	shared := s.trail.indexed.Load() < indexedShared
	start, end := s.keys.audit(""), clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	var rev int64
	var last string
	n := 0
	for {
		gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.kv.Get(gctx, start, clientv3.WithRange(end), clientv3.WithLimit(200), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return unavailable(ctx, err)
		}
		rev = resp.Header.Revision
		var ops []clientv3.Op
		flush := func() error {
			if len(ops) == 0 {
				return nil
			}
			_, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
				return s.kv.Txn(ctx).Then(ops...).Commit()
			})
			ops = ops[:0]
			return err
		}
		for _, kv := range resp.Kvs {
			id := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
			var e AuditEntry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				s.log.Warn("state: audit entry not indexed: unreadable", "id", id, "err", err)
				continue
			}
			keys := s.keys.auditIndexKeys(id, &e, shared)
			if len(ops)+len(keys) > 100 {
				if err := flush(); err != nil {
					return err
				}
			}
			for _, k := range keys {
				ops = append(ops, clientv3.OpPut(k, ""))
			}
			last = id
			n++
		}
		if err := flush(); err != nil {
			return err
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	marker := indexMarker(s.clock(), last)
	_, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		ops := []clientv3.Op{clientv3.OpPut(s.keys.auditIndexCompleteV2(), marker)}
		if shared {
			ops = append(ops, clientv3.OpPut(s.keys.auditIndexComplete(), marker))
		}
		return s.kv.Txn(ctx).Then(ops...).Commit()
	})
	if err != nil {
		return err
	}
	s.trail.raise(indexedTenant)
	s.log.Info("state: audit trail indexed", "entries", n, "through", last, "shared", shared)
	return nil
}
