package state

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router/audit"
)

// The indexer writes the audit index behind the trail (see auditindex.go
// for what it writes and why off the commit path). One runs while this
// store's reconciler leads, beside the chainer: it reads the watermark,
// indexes the whole trail first when there is none, then watches audit/
// from the revision after the watermark's. Each round it takes what the
// watch brings within indexBatchDelay of the first entry (or until
// indexGather entries), sorts the entries by revision and writes their
// index keys in fenced transactions, each with the watermark it reaches:
// the revision of the entries all written, or, on the round's last, the
// revision the watch has reached. A transaction holds up to
// indexTxnKeys keys in nested transactions (etcd's --max-txn-ops, 128,
// bounds each level, not the whole), so that etcd's cost per request,
// a raft proposal and a disk sync, is paid once per many entries: the
// delay keeps a slow trickle of placements from costing one indexer
// transaction each. When its watch is quiet it asks etcd for a
// progress notice (indexSettle after a round, and every
// indexProgressEvery), which says that no entry was written up to the
// notice's revision, and moves the watermark up to it, so that at rest
// the index covers the latest revision. Every transaction also compares
// the watermark's mod revision with the one the indexer last read or
// wrote: a watermark deleted or changed behind its back (to index the
// trail again) makes it start over.

// Limits of the indexer's transactions.
const (
	// indexNest nested transactions of indexNestOps keys each, beside
	// the watermark, make one transaction: etcd allows a nested level
	// the operations its parent leaves of maxTxnOps.
	indexNest    = 15
	indexNestOps = maxTxnOps - indexNest - 1
	indexTxnKeys = indexNest * indexNestOps // 1680
	// indexTxnBytes keeps a transaction well under etcd's request limit
	// (--max-request-bytes, 1.5 MiB), keys being up to a few hundred
	// bytes.
	indexTxnBytes = 512 << 10
	// indexGather is about how many entries one round takes from the
	// watch, and indexBatchDelay how long it waits for more after the
	// first.
	indexGather     = 1000
	indexBatchDelay = 20 * time.Millisecond
	// indexPassPage is the page size of a read of the whole trail.
	indexPassPage = 1000
)

// How often the indexer asks etcd how far its watch has come: after a
// round, once the watch has been quiet for indexSettle; and every
// indexProgressEvery.
const (
	indexSettle        = 20 * time.Millisecond
	indexProgressEvery = time.Second
)

// indexer is one term's writer of the audit index.
type indexer struct {
	s    *Store
	f    fence
	skew time.Duration
	w    clientv3.Watcher
	// wm is the watermark as last read or written; wm.wrote its mod
	// revision, 0 when there was none.
	wm auditWatermark
}

// indexAudit keeps the audit index until ctx ends (leadership ends).
// skew is the clock-skew allowance (AuditChainConfig.MaxSkew).
func (s *Store) indexAudit(ctx context.Context, f fence, skew time.Duration) {
	if skew <= 0 {
		skew = audit.DefaultMaxSkew
	}
	// A watcher of its own: its progress requests reach its watch only.
	w := s.newWatch()
	defer w.Close()
	x := &indexer{s: s, f: f, skew: skew, w: w}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := x.run(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("state: audit indexer", "err", err, "retry", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// run loads the watermark, indexes the trail when there is none, and
// follows new entries until an error.
func (x *indexer) run(ctx context.Context) error {
	found, err := x.load(ctx)
	if err != nil {
		return err
	}
	if !found {
		x.s.log.Info("state: indexing the audit trail")
		if err := x.pass(ctx, 0); err != nil {
			return err
		}
		x.s.log.Info("state: audit trail indexed", "through", x.wm.Through, "newest", x.wm.Newest)
	}
	for {
		err := x.follow(ctx)
		if !errors.Is(err, errCompacted) {
			return err
		}
		// Down longer than etcd keeps history: read the trail for what
		// was written after the watermark.
		x.s.log.Warn("state: audit indexer fell behind compaction; reading the trail", "through", x.wm.Through, "err", err)
		if err := x.pass(ctx, x.wm.Through); err != nil {
			return err
		}
	}
}

// load reads the watermark; found is false when there is none (or none
// readable).
func (x *indexer) load(ctx context.Context) (found bool, err error) {
	gctx, cancel := context.WithTimeout(ctx, x.s.opTimeout)
	defer cancel()
	resp, err := x.s.kv.Get(gctx, x.s.keys.auditWatermark())
	if err != nil {
		return false, unavailable(ctx, err)
	}
	x.wm = auditWatermark{}
	if len(resp.Kvs) > 0 {
		x.wm.wrote = resp.Kvs[0].ModRevision // to compare, readable or not
	}
	if w := x.s.readWatermark(resp.Kvs); w != nil {
		x.wm = *w
		return true, nil
	}
	return false, nil
}

// pass indexes, reading the whole trail at one revision, the entries
// written after revision after (0: all), and moves the watermark to that
// revision.
func (x *indexer) pass(ctx context.Context, after int64) error {
	s := x.s
	wm := x.wm
	start, end := s.keys.audit(""), clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	var rev int64
	var ops []clientv3.Op
	n, size := 0, 0
	for {
		gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.kv.Get(gctx, start, clientv3.WithRange(end), clientv3.WithLimit(indexPassPage), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return unavailable(ctx, err)
		}
		rev = resp.Header.Revision
		now := s.clock()
		for _, kv := range resp.Kvs {
			if kv.ModRevision <= after {
				continue
			}
			id := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
			var e audit.Entry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				s.log.Warn("state: audit entry not indexed: unreadable", "id", audit.PrintableID(id), "err", err)
				continue
			}
			// In key order, not the order written: the clock takes
			// the latest time that is a daemon's and not ahead.
			if ns, ok := audit.IDNanos(id); ok && ns == e.Time.UnixNano() && !e.Time.After(now.Add(x.skew)) && e.Time.After(wm.Clock) {
				wm.Clock = e.Time
			}
			keys := s.keys.auditIndexKeys(id, &e, true)
			if full(len(ops), size, keys) {
				if err := x.commit(ctx, ops, nil); err != nil {
					return err
				}
				ops, size = ops[:0], 0
			}
			for _, k := range keys {
				ops = append(ops, clientv3.OpPut(k, ""))
				size += len(k)
			}
			wm.Newest = id
			n++
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	wm.Through = max(wm.Through, rev)
	if err := x.commit(ctx, ops, &wm); err != nil {
		return err
	}
	s.log.Info("state: audit index pass", "entries", n, "through", rev)
	return nil
}

// follow indexes the entries written after the watermark, as a watch
// brings them, until an error (errCompacted: the watermark's revision is
// no longer kept).
func (x *indexer) follow(ctx context.Context) error {
	s := x.s
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := x.w.Watch(wctx, s.keys.audit(""), clientv3.WithPrefix(), clientv3.WithRev(x.wm.Through+1))
	tick := time.NewTicker(indexProgressEvery)
	defer tick.Stop()
	var settle <-chan time.Time
	ask := func() {
		if err := x.w.RequestProgress(wctx); err != nil && wctx.Err() == nil {
			s.log.Debug("state: audit indexer: progress request", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			ask()
		case <-settle:
			settle = nil
			ask()
		case wr, ok := <-wch:
			// Take what comes within the delay, so that a trickle of
			// entries, or a storm, is indexed in few transactions.
			var kvs []*mvccpb.KeyValue
			through := x.wm.Through
			delay := time.NewTimer(indexBatchDelay)
			for more := true; more; {
				if !ok {
					delay.Stop()
					return errors.New("audit watch closed")
				}
				if err := watchErr(&wr); err != nil {
					delay.Stop()
					return fmt.Errorf("audit watch: %w", err)
				}
				if wr.IsProgressNotify() {
					// No entry was written up to the header revision
					// that this watch has not sent.
					through = max(through, wr.Header.Revision)
				}
				for _, ev := range wr.Events {
					// A deleted entry's keys stay: a query reads the
					// entry and finds none.
					if ev.Type == mvccpb.PUT {
						kvs = append(kvs, ev.Kv)
					}
					through = max(through, ev.Kv.ModRevision)
				}
				if len(kvs) == 0 || len(kvs) >= indexGather {
					break // a progress notice, or a full round
				}
				select {
				case wr, ok = <-wch:
				case <-delay.C:
					more = false
				case <-ctx.Done():
					delay.Stop()
					return ctx.Err()
				}
			}
			delay.Stop()
			if len(kvs) == 0 && x.wm.covers(through) {
				continue // nothing new: the indexer's own writes, or none
			}
			if err := x.index(ctx, kvs, through); err != nil {
				return err
			}
			if len(kvs) > 0 {
				settle = time.After(indexSettle)
			}
		}
	}
}

// index writes the index keys of kvs, entries written after the
// watermark, and moves the watermark to through, the revision up to
// which the watch has sent every entry written.
func (x *indexer) index(ctx context.Context, kvs []*mvccpb.KeyValue, through int64) error {
	slices.SortFunc(kvs, func(a, b *mvccpb.KeyValue) int {
		return cmp.Or(cmp.Compare(a.ModRevision, b.ModRevision), bytes.Compare(a.Key, b.Key))
	})
	s := x.s
	wm := x.wm
	now := s.clock()
	var ops []clientv3.Op
	size := 0
	for _, kv := range kvs {
		id := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
		// The clock moves as the chainer's does: on the entries it
		// would take for genuine. (audit.Judge decodes the entry; one
		// it faults is decoded again, to be indexed all the same.)
		se := storedEntry(id, kv)
		e, fault := audit.Judge(&se, wm.Clock, now, x.skew)
		if fault != "" {
			e = audit.Entry{}
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				s.log.Warn("state: audit entry not indexed: unreadable", "id", audit.PrintableID(id), "err", err)
				continue
			}
		} else if e.Time.After(wm.Clock) {
			wm.Clock = e.Time
		}
		keys := s.keys.auditIndexKeys(id, &e, true)
		if full(len(ops), size, keys) {
			// Every entry written before this one's revision is in.
			wm.Through = max(wm.Through, kv.ModRevision-1)
			if err := x.commit(ctx, ops, &wm); err != nil {
				return err
			}
			ops, size = ops[:0], 0
		}
		for _, k := range keys {
			ops = append(ops, clientv3.OpPut(k, ""))
			size += len(k)
		}
		wm.Newest = id
	}
	wm.Through = max(wm.Through, through)
	return x.commit(ctx, ops, &wm)
}

// full reports whether a transaction of n keys of size bytes has no
// room for keys.
func full(n, size int, keys []string) bool {
	add := 0
	for _, k := range keys {
		add += len(k)
	}
	return n > 0 && (n+len(keys) > indexTxnKeys || size+add > indexTxnBytes)
}

// commit writes puts, index keys (at most indexTxnKeys), and wm when not
// nil, in one transaction fenced by the leader's election key and by the
// watermark's mod revision as last read or written.
func (x *indexer) commit(ctx context.Context, puts []clientv3.Op, wm *auditWatermark) error {
	key := x.s.keys.auditWatermark()
	ops := make([]clientv3.Op, 0, indexNest+1)
	for len(puts) > 0 {
		n := min(len(puts), indexNestOps)
		ops = append(ops, clientv3.OpTxn(nil, puts[:n], nil))
		puts = puts[n:]
	}
	if wm != nil {
		if !wm.Clock.IsZero() {
			wm.Floor = wm.Clock.Add(-x.skew).UTC()
		}
		wm.Time = x.s.clock().UTC()
		val, err := json.Marshal(wm)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(key, string(val)))
	}
	if len(ops) == 0 {
		return nil
	}
	resp, err := x.s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return x.s.kv.Txn(ctx).If(
			x.f.cmp(),
			clientv3.Compare(clientv3.ModRevision(key), "=", x.wm.wrote),
		).Then(ops...).Commit()
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return errors.New("audit index watermark changed by another writer, or leadership lost")
	}
	if wm != nil {
		x.wm = *wm
		x.wm.wrote = resp.Header.Revision
	}
	return nil
}
