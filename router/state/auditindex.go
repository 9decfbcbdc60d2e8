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

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router/audit"
)

// The audit index lets FindAudit read only what a filter selects. It
// holds one empty key per field value a filter can name, and, for an
// entry of a tenant, one per value paired with the tenant:
//
//	audit-index/t/<tenant>/<id>              the entry's tenant
//	audit-index/w/<workload>/<id>            its workload
//	audit-index/o/<op>/<id>                  its op
//	audit-index/r/<region>/<id>              each region it names
//	audit-index/tw/<tenant>/<workload>/<id>  the same, within its tenant
//	audit-index/to/<tenant>/<op>/<id>
//	audit-index/tr/<tenant>/<region>/<id>
//	audit-index/watermark                    auditWatermark: how far the keys go
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
// range shared with other tenants: what it reads of the index, and so
// how long that takes, depends on that tenant's entries alone. A
// tenant's auditor is always held to its tenant, so nothing another
// tenant does, in regions the auditor may not know of or any other,
// moves that work, and a filter on another tenant's workload or on an
// op only others used costs what one on a value nobody used costs. (The
// shared ranges serve the filters of callers who see every tenant.)
//
// The index is written off the commit path. A change's transaction
// writes its audit entry alone (audit.go): writing the entry's index
// keys there as well made a one-region Place write 7 more keys, and cut
// Place's throughput against a plain etcd put from 0.59 to 0.33 at
// concurrency 64. The indexer (auditindexer.go), run by the elected
// reconciler leader and fenced like its other writes, follows new
// entries in etcd revision order, as the audit chainer does, and writes
// the index keys of many entries per transaction, with the watermark:
//
//	through  every entry whose last write is at or before this revision is indexed
//	clock    the latest time of the entries indexed that the chainer's
//	         rules take for genuine (audit.Judge)
//	floor    clock less the skew allowance (--audit-max-skew, 5s)
//
// A genuine entry is dated no earlier than any entry written before it
// less the skew allowance (router/audit, "Forged entries"), so every
// entry not yet indexed, written after through, has an id at or after
// the floor. FindAudit reads the watermark at the revision it reads
// everything at. When the index covers that revision (through reaches
// it, or the watermark's own write, which writes no entry, follows
// through at once: an indexer at rest) it answers from the index alone.
// Otherwise it also reads the tail: the entries with ids from the floor
// written after through, matches them, and merges them with what the
// index found, each id once. So the answer is the one the definition
// gives for the whole trail at that revision, indexed or not, save for
// an entry dated beyond the skew allowance before one written ahead of
// it (which the chainer reports as tampering), found by a filter only
// once indexed.
//
// The tail is what the indexer lags by: moments while a leader leads
// (BenchmarkPlaceAuditIndex measures it under a placement storm). Its
// ids are read first, keys only, a page at a time from the floor, which
// etcd answers from its in-memory index walking no further than the
// page; those written after through are kept, and then those entries
// read. A page reads at most about 5,000 keys of the tail (maxTailKeys):
// past them it ends where its read did, and its token resumes there, so
// that a long tail (no leader, or a leader far behind) costs a query
// pages, each bounded, rather than one read of it all; a page cut there
// may be short, or empty, with a token. (Not a read filtered on the mod
// revision: etcd walks the range to its end for one, whatever the
// limit.) It is read whatever the filter, so its cost, unlike the
// index's, depends on every tenant's entries of those moments: a
// tenant's filter on a hidden region costs what one on a missing region
// costs, but how much audit activity there was in the last seconds
// moves the work of every filtered query while the indexer lags (and a
// short page with a token says the tail is long, not whose it is: the
// token is sealed for the caller's tenant). At rest the indexer asks etcd how far its watch has
// come (a progress notice) and moves the watermark up to it, so the
// index covers the latest revision and no tail is read.

// Entries written while no reconciler leads are indexed when one does:
// the new leader's watch starts after through (etcd keeps an hour of
// history; beyond that the indexer reads the trail and indexes what was
// written after through). Meanwhile the tail is all of them, and every
// filtered query reads it, at most about 5,000 keys of it a page.
//
// The index sorts before "audit0", like the chain (keys.go): the cache's
// watch skips it, and the chainer and VerifyAudit, which read audit/
// alone, never see it. It is derived data: VerifyAudit vouches for the
// entries. The indexer indexes every entry it can read, a forged one as
// well (the chainer flags it and VerifyAudit names it).
//
// A trail with no watermark is indexed by the leader, whole, in the
// background, which then writes the watermark; until then every filter
// reads the whole time range, as before the index existed. Open writes
// the watermark at once when it can vouch for one: on an empty trail,
// and on a trail the version before this one indexed in each entry's
// transaction (its marker audit-index/complete-v2), complete up to the
// first daemon of this version to open (with no floor, so that until
// the indexer moves it the tail is every entry written since). Upgrade
// every daemon together: a daemon of that version that finishes a
// backfill after this version has written entries without index keys
// would vouch for them. To index a trail again, stop the daemons,
// delete audit-index/ and start them: the leader indexes it whole.

// auditTrail is a store's state of the audit trail beyond its ids.
type auditTrail struct {
	// keysRead counts the keys FindAudit has read from etcd, index
	// keys and entries (for metrics and tests); not the watermark.
	keysRead atomic.Int64
	// refusals bounds the refusals audited one by one (auditlimit.go).
	refusals refusalLimiter
}

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
	idxWatermark      = "watermark"
	// idxCompleteV2 is the marker the version before this one wrote
	// once every entry had all its index keys, which it wrote in each
	// entry's transaction.
	idxCompleteV2 = "complete-v2"
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
func (k keys) auditIndexKeys(id string, e *audit.Entry, shared bool) []string {
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

func (k keys) auditIndexCompleteV2() string { return k.prefix + auditIndexDir + idxCompleteV2 }
func (k keys) auditWatermark() string       { return k.prefix + auditIndexDir + idxWatermark }

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

// auditWatermark is how far the audit index goes (audit-index/watermark).
type auditWatermark struct {
	// Through: every entry whose last write (its mod revision) is at
	// or before this revision has its index keys.
	Through int64 `json:"through"`
	// Clock is the latest time of the entries indexed that pass the
	// chainer's rules (audit.Judge), zero before the first.
	Clock time.Time `json:"clock,omitzero"`
	// Floor is Clock less the skew allowance: every genuine entry
	// written after Through is dated at or after it. Zero: no bound.
	Floor time.Time `json:"floor,omitzero"`
	// Newest is the id of the last entry indexed.
	Newest string `json:"newest,omitempty"`
	// Time is when it was written, by the writer's clock.
	Time time.Time `json:"time"`

	wrote int64 // its mod revision, as read (not stored)
}

// covers reports whether every entry in etcd as of revision rev is
// indexed: rev is at or before Through, or is the watermark's own write
// and that follows Through at once (the transaction that writes the
// watermark writes no entry).
func (w *auditWatermark) covers(rev int64) bool {
	return rev <= w.Through || (w.wrote != 0 && w.Through >= w.wrote-1 && rev <= w.wrote)
}

// readWatermark decodes a watermark read from etcd (nil: none). One that
// does not decode is taken for none: the index is not vouched for.
func (s *Store) readWatermark(kvs []*mvccpb.KeyValue) *auditWatermark {
	if len(kvs) == 0 {
		return nil
	}
	var w auditWatermark
	if err := json.Unmarshal(kvs[0].Value, &w); err != nil || w.Through <= 0 {
		s.log.Warn("state: audit index watermark unreadable: filters read the whole time range until the leader indexes the trail again", "err", err)
		return nil
	}
	w.wrote = kvs[0].ModRevision
	return &w
}

// initAuditIndex writes the watermark when there is none and the store
// can vouch for one (see above): on an empty trail, or on a trail the
// version before this one indexed as it wrote it. Either way every entry
// written before is indexed, and the indexer indexes every one after.
func (s *Store) initAuditIndex(ctx context.Context) error {
	wmKey, m2 := s.keys.auditWatermark(), s.keys.auditIndexCompleteV2()
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(
			clientv3.OpGet(wmKey, clientv3.WithCountOnly()),
			clientv3.OpGet(m2, clientv3.WithCountOnly()),
			clientv3.OpGet(s.keys.audit(""), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(1)),
		).Commit()
	})
	if err != nil {
		return err
	}
	hasWM := resp.Responses[0].GetResponseRange().GetCount() > 0
	indexed := resp.Responses[1].GetResponseRange().GetCount() > 0
	empty := len(resp.Responses[2].GetResponseRange().GetKvs()) == 0
	if hasWM || !(empty || indexed) {
		return nil // indexed, or to be indexed by the leader
	}
	val, err := json.Marshal(auditWatermark{Through: resp.Header.Revision, Time: s.clock().UTC()})
	if err != nil {
		return err
	}
	// Whoever writes it first: the others' would say the same.
	_, err = s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(wmKey), "=", 0)).
			Then(clientv3.OpPut(wmKey, string(val))).Commit()
	})
	return err
}

// AuditIndexState says how far the audit index goes.
type AuditIndexState struct {
	// Started: the index has a watermark. Until it has, filters read
	// the whole time range (the leader is indexing a trail written
	// before the index).
	Started bool
	// Current: every entry in etcd as of Revision is indexed, so a
	// filtered query reads no tail.
	Current bool
	// Through: every entry written at or before it is indexed.
	Through, Revision int64
	// Newest is the id of the last entry indexed.
	Newest string
}

// AuditIndexState reads the audit index's watermark.
func (s *Store) AuditIndexState(ctx context.Context) (AuditIndexState, error) {
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.kv.Get(gctx, s.keys.auditWatermark())
	if err != nil {
		return AuditIndexState{}, unavailable(ctx, err)
	}
	st := AuditIndexState{Revision: resp.Header.Revision}
	if w := s.readWatermark(resp.Kvs); w != nil {
		st.Started, st.Current, st.Through, st.Newest = true, w.covers(resp.Header.Revision), w.Through, w.Newest
	}
	return st, nil
}
