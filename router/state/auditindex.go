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
// field value a filter can name:
//
//	audit-index/t/<tenant>/<id>     the entry's tenant
//	audit-index/w/<workload>/<id>   its workload
//	audit-index/o/<op>/<id>         its op
//	audit-index/r/<region>/<id>     each region it names
//	audit-index/complete            marker: every entry is indexed
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
// The index sorts before "audit0", like the chain (keys.go): the cache's
// watch skips it, and the chainer and VerifyAudit, which read audit/
// alone, never see it. It is derived data: VerifyAudit vouches for the
// entries, and a forged entry written straight into etcd without its
// index keys is found by unfiltered listing and by verification, not by
// a filtered one.
//
// A trail written before the index existed has no index keys: Open
// writes the marker at once when the trail is empty, and otherwise the
// store indexes the trail in the background (backfillAuditIndex) and
// writes the marker at the end; until a store has seen the marker,
// filtered queries read the whole time range (the old way). An entry
// written by a daemon of a version without the index after the marker
// is not indexed: upgrade every daemon, then delete the marker and
// restart one, which indexes the trail again.

// auditTrail is a store's state of the audit trail beyond its ids.
type auditTrail struct {
	// indexed: the marker was seen; the index covers the trail.
	indexed atomic.Bool
	// keysRead counts the keys FindAudit has read from etcd, index
	// keys and entries (for tests and benchmarks).
	keysRead atomic.Int64
	// refusals bounds the refusals audited one by one (auditlimit.go).
	refusals refusalLimiter
}

// Index fields: the one-letter directory of each.
const (
	idxTenant   = "t/"
	idxWorkload = "w/"
	idxOp       = "o/"
	idxRegion   = "r/"
	idxComplete = "complete"
)

func (k keys) auditIndex(field, value string) string {
	return k.prefix + auditIndexDir + field + url.PathEscape(value) + "/"
}

// auditIndexKeys are the index keys of entry e with id id.
func (k keys) auditIndexKeys(id string, e *AuditEntry) []string {
	out := make([]string, 0, 3+len(e.Regions))
	for _, f := range [...]struct{ field, value string }{{idxTenant, e.Tenant}, {idxWorkload, e.Workload}, {idxOp, e.Op}} {
		if f.value != "" {
			out = append(out, k.auditIndex(f.field, f.value)+id)
		}
	}
	for i, r := range e.Regions {
		if r != "" && !slices.Contains(e.Regions[:i], r) { // a key once per transaction
			out = append(out, k.auditIndex(idxRegion, r)+id)
		}
	}
	return out
}

// auditIndexLists are the index ranges (key prefixes) of the fields f
// names; none when it names none.
func (k keys) auditIndexLists(f *AuditFilter) []string {
	var out []string
	for _, x := range [...]struct{ field, value string }{{idxTenant, f.Tenant}, {idxWorkload, f.Workload}, {idxOp, f.Op}, {idxRegion, f.Region}} {
		if x.value != "" {
			out = append(out, k.auditIndex(x.field, x.value))
		}
	}
	return out
}

func (k keys) auditIndexComplete() string { return k.prefix + auditIndexDir + idxComplete }

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

// checkAuditIndex looks for the marker; on a trail with no entry it
// writes it, so a new store is indexed from its first entry.
func (s *Store) checkAuditIndex(ctx context.Context) error {
	mkey := s.keys.auditIndexComplete()
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(
			clientv3.OpGet(mkey, clientv3.WithCountOnly()),
			clientv3.OpGet(s.keys.audit(""), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1)),
		).Commit()
	})
	if err != nil {
		return err
	}
	if resp.Responses[0].GetResponseRange().GetCount() > 0 {
		s.trail.indexed.Store(true)
		return nil
	}
	if len(resp.Responses[1].GetResponseRange().GetKvs()) > 0 {
		return nil // to be indexed
	}
	// Empty: mark it indexed, unless an entry appeared meanwhile.
	rend := clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	mark, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(mkey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(s.keys.audit("")), "=", 0).WithRange(rend),
		).Then(clientv3.OpPut(mkey, indexMarker(s.clock(), ""))).Commit()
	})
	if err != nil {
		return err
	}
	if mark.Succeeded {
		s.trail.indexed.Store(true)
	}
	return nil
}

func indexMarker(now time.Time, through string) string {
	b, _ := json.Marshal(struct {
		Time    time.Time `json:"time"`
		Through string    `json:"through,omitempty"`
	}{now.UTC(), through})
	return string(b)
}

// backfillAuditIndex indexes a trail written before the index, then
// writes the marker. Index keys are written again for entries that have
// them (the puts are idempotent); several daemons doing it at once is
// waste, not harm. It returns when done or ctx ends.
func (s *Store) backfillAuditIndex(ctx context.Context) {
	for backoff := time.Second; !s.trail.indexed.Load() && ctx.Err() == nil; backoff = min(2*backoff, 30*time.Second) {
		err := s.checkAuditIndex(ctx)
		if err == nil && !s.trail.indexed.Load() {
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

// indexTrail writes the index keys of every entry, then the marker.
func (s *Store) indexTrail(ctx context.Context) error {
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
			keys := s.keys.auditIndexKeys(id, &e)
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
	_, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(clientv3.OpPut(s.keys.auditIndexComplete(), indexMarker(s.clock(), last))).Commit()
	})
	if err != nil {
		return err
	}
	s.trail.indexed.Store(true)
	s.log.Info("state: audit trail indexed", "entries", n, "through", last)
	return nil
}
