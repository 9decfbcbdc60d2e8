package state

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-memdb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/equiv"
)

// How the cache follows etcd:
//
//  1. load: read the watched range at one revision R (streamed, decoded
//     in parallel) and replace the whole cache with it in one memdb
//     transaction.
//  2. watch from R+1. The responses that have arrived are applied in one
//     memdb transaction that also records the revision they reach; a
//     progress notification advances the revision without events. Any
//     response confirms that etcd is answering, which Ready requires.
//     The watch asks for no previous values (WithPrevKV): a put carries
//     the new record and a delete its key, which is all the cache needs,
//     and etcd would read the previous value from disk for every event.
//  3. if the watch breaks, resume from the cache's revision+1; if etcd
//     answers that this revision is compacted, go back to 1.
//
// The audit directory is not cached and not watched: audit keys sort
// first under the prefix, so the watch covers [prefix+"audit0", end).

// errCompacted: the watch's start revision is compacted; re-list.
var errCompacted = errors.New("watch revision compacted")

// load reads every cached record at one revision and replaces the cache
// with them. It returns the revision, and the placement records of the
// legacy layout it found (not cached: see migrate.go).
//
// It reads the watched range (everything after the audit directory; the
// records of other kinds in it are skipped as the watch skips them) as
// a stream (listRecords), decodes the batches in parallel as they
// arrive, and inserts them in one memdb transaction in key order: a
// cold start with a million placements is bound by decoding and
// inserting, not by round trips.
func (s *Store) load(ctx context.Context) (int64, []*mvccpb.KeyValue, error) {
	// The first load commits every loadCommitEvery records: nothing
	// reads the cache before it is done (Open has not returned), and a
	// memdb transaction that changes more nodes than its cache of
	// writable nodes holds (8,192) copies them again and again: alone,
	// a million placements insert in 9 s so against 20-25 s in one
	// transaction (in a cold start, where decoding competes for the
	// cores, the load is about 10% faster). A load again, while the
	// store serves, replaces the cache in one transaction.
	first := !s.loaded.Load()
	tx := s.db.Txn(true)
	defer func() { tx.Abort() }()
	var legacy []*mvccpb.KeyValue
	for _, table := range []string{tableProviders, tableRegions, tableTenants, tableUsage, tablePlacements, tableLive, tableHealth, tableEquivalences, tableEdges, tableServices} {
		if _, err := tx.DeleteAll(table, indexID); err != nil {
			return 0, nil, err
		}
	}
	// Pin the revision every read is at.
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	resp, err := s.kv.Get(gctx, s.keys.seeded(), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return 0, nil, unavailable(ctx, err)
	}
	rev := resp.Header.Revision

	lctx, stop := context.WithCancel(ctx)
	defer stop()
	batches := make(chan *loadBatch, loadAhead) // in key order, for the inserter
	work := make(chan *loadBatch, loadAhead)    // for the decoders
	errc := make(chan error, 1)
	go func() {
		defer close(batches)
		defer close(work)
		errc <- s.listRecords(lctx, rev, func(kvs []*mvccpb.KeyValue) bool {
			b := &loadBatch{kvs: kvs, done: make(chan struct{})}
			select {
			case batches <- b:
			case <-lctx.Done():
				return false
			}
			select {
			case work <- b:
				return true
			case <-lctx.Done():
				return false
			}
		})
	}()
	for range loadDecoders() {
		go func() {
			for b := range work {
				b.decode(s)
			}
		}()
	}
	pending := 0
	for b := range batches {
		select {
		case <-b.done:
		case <-lctx.Done():
			// The lister stops, and the decoders with it.
			for range batches {
			}
			if err := <-errc; err != nil {
				return 0, nil, err
			}
			return 0, nil, unavailable(ctx, lctx.Err())
		}
		for i, kv := range b.kvs {
			r := &b.recs[i]
			if r.legacy {
				legacy = append(legacy, kv)
				continue
			}
			s.insertRecord(tx, kv, r.k, r.id, r.obj, r.err)
		}
		if pending += len(b.kvs); first && pending >= loadCommitEvery {
			tx.Commit()
			tx, pending = s.db.Txn(true), 0
		}
	}
	if err := <-errc; err != nil {
		return 0, nil, err
	}
	if err := setRevisionTxn(tx, rev, buildView(tx)); err != nil {
		return 0, nil, err
	}
	et, fd := buildEquivTxn(tx), buildFlowsTxn(tx)
	tx.Commit()
	s.equivTable.Store(et)
	s.flows.Store(fd)
	s.rev.advance(rev)
	s.changes.reload() // a leading reconciler starts again from everything
	s.loaded.Store(true)
	s.log.Debug("state: cache loaded", "revision", rev)
	return rev, legacy, nil
}

// How load overlaps reading, decoding and inserting: loadAhead batches
// may wait between the reader and the inserter, each of up to
// loadPageSize records when read by pages (a stream's chunks are sized
// by etcd, near its request limit).
const (
	loadPageSize    = 2000
	loadAhead       = 8
	loadCommitEvery = 2048
)

// loadDecoders is how many goroutines decode a load's batches.
func loadDecoders() int { return max(1, runtime.GOMAXPROCS(0)) }

// loadBatch is a run of records as read, and what they decode to.
type loadBatch struct {
	kvs  []*mvccpb.KeyValue
	recs []loadedRecord
	done chan struct{} // closed once recs is filled in
}

type loadedRecord struct {
	k      kind
	id     string
	obj    any
	err    error
	legacy bool // a placement record of the legacy layout (migrate.go)
}

func (b *loadBatch) decode(s *Store) {
	b.recs = make([]loadedRecord, len(b.kvs))
	for i, kv := range b.kvs {
		r := &b.recs[i]
		if _, ok := s.keys.legacyPlacement(string(kv.Key)); ok {
			r.legacy = true
			continue
		}
		r.k, r.id, r.obj, r.err = s.decodeKV(kv)
	}
	close(b.done)
}

// listRecords calls page with the records of the watched range at rev,
// in key order, a batch at a time, until it has them all, page returns
// false, or reading fails. It reads them as one stream (etcd's
// RangeStream, which sizes its chunks and counts nothing); from a
// server without it (etcd before 3.7), by pages. A page of a plain range
// read makes etcd count the rest of the range, so that reading N
// records by pages costs it N²/page steps: a million placements by
// pages of 2,000 is half a billion.
func (s *Store) listRecords(ctx context.Context, rev int64, page func([]*mvccpb.KeyValue) bool) error {
	start := s.keys.prefix + auditDir[:len(auditDir)-1] + "0"
	end := clientv3.GetPrefixRangeEnd(s.keys.prefix)
	if !s.loadByPages {
		done, err := s.streamRecords(ctx, rev, start, end, page)
		if done || err != nil {
			return err
		}
		s.log.Info("state: etcd serves no range streams; loading by pages")
	}
	for {
		gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.kv.Get(gctx, start, clientv3.WithRange(end), clientv3.WithLimit(loadPageSize), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return unavailable(ctx, err)
		}
		if len(resp.Kvs) > 0 && !page(resp.Kvs) {
			return nil
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// streamRecords reads [start, end) at rev as one stream. It returns
// false and no error when the server has no range streams. A stream
// that brings nothing for the op timeout is given up. opts may add
// clientv3.WithKeysOnly.
func (s *Store) streamRecords(ctx context.Context, rev int64, start, end string, page func([]*mvccpb.KeyValue) bool, opts ...clientv3.OpOption) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := s.kv.GetStream(sctx, start, append([]clientv3.OpOption{clientv3.WithRange(end), clientv3.WithRev(rev)}, opts...)...)
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return false, nil
		}
		return false, unavailable(ctx, err)
	}
	defer func() {
		cancel()
		for range ch { // the client's reader ends with the stream
		}
	}()
	idle := time.NewTimer(s.opTimeout)
	defer idle.Stop()
	first := true
	for {
		select {
		case r, ok := <-ch:
			if !ok {
				return true, nil
			}
			if err := r.Err(); err != nil {
				if first && status.Code(err) == codes.Unimplemented {
					return false, nil
				}
				return false, unavailable(ctx, err)
			}
			first = false
			if len(r.Kvs) > 0 && !page(r.Kvs) {
				return true, nil
			}
			idle.Reset(s.opTimeout)
		case <-idle.C:
			return false, unavailable(ctx, fmt.Errorf("range stream: nothing for %v", s.opTimeout))
		case <-ctx.Done():
			return false, unavailable(ctx, ctx.Err())
		}
	}
}

// run keeps the cache following etcd until ctx ends.
func (s *Store) run(ctx context.Context, rev int64) {
	backoff := 50 * time.Millisecond
	for {
		err := s.watch(ctx, rev)
		s.live.Store(false)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		hold := s.hold
		s.hold = nil
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return
			}
		}
		if errors.Is(err, errCompacted) {
			s.log.Warn("state: watch fell behind compaction; re-listing", "revision", rev, "err", err)
			var legacy []*mvccpb.KeyValue
			if rev, legacy, err = s.load(ctx); err == nil {
				// The watch, resumed from rev, brings the moves in.
				if _, err := s.migrateLegacy(ctx, legacy); err != nil {
					s.log.Warn("state: moving legacy placement records", "err", err)
				}
				backoff = 50 * time.Millisecond
				continue
			}
		}
		s.log.Warn("state: watch broken; resuming", "revision", s.rev.current(), "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
		if s.loaded.Load() {
			rev = s.rev.current()
		}
	}
}

// watch follows etcd from rev+1 until the watch ends, and says why.
func (s *Store) watch(ctx context.Context, rev int64) error {
	// RequireLeader: a member cut off from its cluster cancels the watch
	// instead of serving it silently.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	s.mu.Lock()
	s.watchCancel = cancel
	s.mu.Unlock()

	wch := s.watcher.Watch(wctx, s.keys.prefix+auditDir[:len(auditDir)-1]+"0",
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.keys.prefix)),
		clientv3.WithRev(rev+1),
		clientv3.WithProgressNotify(),
		clientv3.WithCreatedNotify(),
	)
	for resp := range wch {
		// Apply what has arrived in one memdb transaction: under load
		// the responses queue, and one transaction per response would
		// repeat the commit and the regions view for each.
		var evs []*clientv3.Event
		var progress, header int64
		for more := true; more; {
			header = max(header, resp.Header.Revision)
			if err := watchErr(&resp); err != nil {
				_ = s.applyEvents(evs, progress)
				return err
			}
			switch {
			case resp.Created:
				s.live.Store(true)
			case resp.IsProgressNotify():
				// Every event up to the header revision has been sent.
				progress = max(progress, resp.Header.Revision)
			default:
				evs = append(evs, resp.Events...)
			}
			if len(evs) >= maxApplyBatch {
				break
			}
			select {
			case r, ok := <-wch:
				if !ok {
					_ = s.applyEvents(evs, progress)
					return errors.New("watch closed")
				}
				resp = r
			default:
				more = false
			}
		}
		if s.beforeApply != nil {
			s.beforeApply(wctx)
		}
		if err := s.applyEvents(evs, progress); err != nil {
			return err
		}
		// The cache is current as of now only once it has applied
		// everything up to the revision etcd was at when it sent these
		// responses; a watch replaying a backlog vouches for nothing.
		if s.rev.current() >= header {
			s.confirm(s.clock())
		}
	}
	return errors.New("watch closed")
}

// maxApplyBatch bounds the events applied in one memdb transaction.
const maxApplyBatch = 1024

// watchErr says why a watch response ends the watch, or nil.
func watchErr(resp *clientv3.WatchResponse) error {
	if resp.CompactRevision != 0 {
		return fmt.Errorf("%w: compacted at %d", errCompacted, resp.CompactRevision)
	}
	if err := resp.Err(); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return fmt.Errorf("%w: %w", errCompacted, err)
		}
		return err
	}
	if resp.Canceled {
		return errors.New("watch canceled by etcd")
	}
	return nil
}

// applyEvents applies watch events in one memdb transaction and records
// the revision they reach: the last event's, or progressRev from a
// progress notification if that is later. (An event response's header
// revision may run ahead of its events when etcd sends a long history in
// batches, so it is not used.) When regions or usage change it derives the new regions
// view in the same transaction: patched in place of the changed regions,
// or rebuilt when regions come or go.
func (s *Store) applyEvents(evs []*clientv3.Event, progressRev int64) error {
	rev := progressRev
	if n := len(evs); n > 0 {
		rev = max(rev, evs[n-1].Kv.ModRevision)
	}
	if rev <= s.rev.current() {
		return nil
	}
	tx := s.db.Txn(true)
	defer tx.Abort()
	_, view := revisionTxn(tx)
	var touched map[string]struct{}
	// What else the batch touched, for a leading reconciler (see
	// changeFeed): tenant ids and placement keys.
	feed := s.changes.listening()
	var tenants, placements map[string]struct{}
	rebuild, equivs, flows := false, false, false
	for _, ev := range evs {
		var k kind
		var id string
		present := false
		if ev.Type == clientv3.EventTypeDelete {
			k, id = s.applyDelete(tx, ev.Kv)
		} else {
			k, id, present = s.applyPut(tx, ev.Kv)
			if _, legacy := s.keys.legacyPlacement(string(ev.Kv.Key)); legacy {
				s.log.Warn("state: placement record of the legacy layout (written by a daemon not yet upgraded?) is not served until a daemon reloads and moves it",
					"key", string(ev.Kv.Key), "revision", ev.Kv.ModRevision)
			}
		}
		equivs = equivs || k == kindEquivalence
		flows = flows || k == kindEdge || k == kindService
		if k == kindRegion {
			if _, had := view.index[id]; had != present {
				rebuild = true
			}
		}
		switch {
		case k == kindRegion || k == kindUsage || k == kindLive || k == kindHealth:
			if touched == nil {
				touched = make(map[string]struct{})
			}
			touched[id] = struct{}{}
		case feed && k == kindTenant:
			if tenants == nil {
				tenants = make(map[string]struct{})
			}
			tenants[id] = struct{}{}
		case feed && k == kindPlacement:
			if placements == nil {
				placements = make(map[string]struct{}, len(evs))
			}
			placements[id] = struct{}{}
		}
	}
	switch {
	case rebuild:
		view = buildView(tx)
	case len(touched) > 0:
		view = view.patched(tx, touched)
	}
	if err := setRevisionTxn(tx, rev, view); err != nil {
		return err
	}
	var et *equiv.Table
	if equivs {
		et = buildEquivTxn(tx)
	}
	var fd *flowData
	if flows {
		fd = buildFlowsTxn(tx)
	}
	tx.Commit()
	if et != nil {
		s.equivTable.Store(et)
	}
	if fd != nil {
		s.flows.Store(fd)
	}
	s.rev.advance(rev)
	switch {
	case feed:
		// Handed over: the view keeps no reference to touched.
		s.changes.add(touched, tenants, placements)
		if equivs || flows {
			s.changes.equivalence()
		}
	case s.changes.listening():
		// A reconciler began listening during the batch, which
		// collected nothing for it: it must start from everything.
		s.changes.reload()
	}
	return nil
}

// applyPut caches one record and reports whether it is cached. A record
// that does not decode, or whose id disagrees with its key, is dropped
// from the cache (and logged): the store never decides on a record it
// cannot read, and never keeps the previous version of one in its place.
func (s *Store) applyPut(tx *memdb.Txn, kv *mvccpb.KeyValue) (kind, string, bool) {
	k, id, obj, err := s.decodeKV(kv)
	return k, id, s.insertRecord(tx, kv, k, id, obj, err)
}

// decodeKV decodes the record kv holds into the object its table holds
// (kindOther: none). It reads no table, so that load may call it from
// several goroutines at once.
func (s *Store) decodeKV(kv *mvccpb.KeyValue) (kind, string, any, error) {
	k, id := s.keys.parse(string(kv.Key))
	if k == kindOther {
		return k, id, nil, nil
	}
	if p := s.ownPlacement(k, kv); p != nil {
		return k, id, &placementRecord{P: internedCopy(p), Rev: kv.ModRevision}, nil
	}
	obj, err := decodeRecord(k, id, kv.Value, kv.ModRevision, kv.CreateRevision)
	return k, id, obj, err
}

// insertRecord caches obj, what decodeKV made of kv, and reports whether
// it is cached.
func (s *Store) insertRecord(tx *memdb.Txn, kv *mvccpb.KeyValue, k kind, id string, obj any, err error) bool {
	if k == kindOther {
		return false
	}
	if err != nil {
		s.log.Error("state: dropping unreadable record", "key", string(kv.Key), "revision", kv.ModRevision, "err", err)
		s.applyDelete(tx, kv)
		return false
	}
	if err := tx.Insert(tableOf[k], obj); err != nil {
		s.log.Error("state: cache insert", "key", string(kv.Key), "err", err)
		return false
	}
	return true
}

// ownPlacement returns the placement kv holds if this store wrote it.
func (s *Store) ownPlacement(k kind, kv *mvccpb.KeyValue) *router.Placement {
	if k != kindPlacement {
		return nil
	}
	return s.committer.own.take(string(kv.Key), kv.Value)
}

func (s *Store) applyDelete(tx *memdb.Txn, kv *mvccpb.KeyValue) (kind, string) {
	k, id := s.keys.parse(string(kv.Key))
	if k == kindOther {
		return k, id
	}
	if _, err := tx.DeleteAll(tableOf[k], indexID, id); err != nil {
		s.log.Error("state: cache delete", "key", string(kv.Key), "err", err)
	}
	return k, id
}

var tableOf = [...]string{
	kindRegion:      tableRegions,
	kindProvider:    tableProviders,
	kindTenant:      tableTenants,
	kindUsage:       tableUsage,
	kindPlacement:   tablePlacements,
	kindLive:        tableLive,
	kindHealth:      tableHealth,
	kindEquivalence: tableEquivalences,
	kindEdge:        tableEdges,
	kindService:     tableServices,
}

// requestProgress asks etcd to confirm the watch every progressEvery,
// and at once when kicked.
func (s *Store) requestProgress(ctx context.Context) {
	t := time.NewTicker(s.progressEvery)
	defer t.Stop()
	var behindSince time.Time // when the cache was first seen behind etcd
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if !s.live.Load() {
			continue
		}
		// The request must carry the watch's metadata (RequireLeader)
		// to reach the watch's stream.
		rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.progressEvery)
		err := s.watcher.RequestProgress(rctx)
		if err != nil && ctx.Err() == nil {
			s.log.Debug("state: progress request", "err", err)
		}
		// etcd answers a progress request only once its revision has
		// reached the watch's start revision, so on an idle etcd (a
		// daemon restarted with nothing written since) no notification
		// comes. A linearizable read confirms the cache instead when the
		// cache already holds the revision etcd reports; when it does
		// not, the watch is behind and confirms itself as it catches up.
		asked := s.clock()
		resp, err := s.kv.Get(rctx, s.keys.prefix, clientv3.WithCountOnly())
		cancel()
		if err == nil {
			s.etcd.saw(resp.Header.Revision, s.clock())
		}
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Debug("state: freshness read", "err", err)
			}
		case s.live.Load() && s.rev.current() >= resp.Header.Revision:
			s.confirm(asked)
			behindSince = time.Time{}
		case behindSince.IsZero():
			behindSince = asked
		case asked.Sub(behindSince) > s.staleAfter:
			// etcd is reachable and ahead of the cache, and the watch has
			// not caught up within the stale bound: it has stalled.
			// Cancel it; run resumes it from the cache's revision.
			s.log.Warn("state: watch stalled behind etcd; restarting it",
				"cache", s.rev.current(), "etcd", resp.Header.Revision, "behind", asked.Sub(behindSince))
			s.mu.Lock()
			if s.watchCancel != nil {
				s.watchCancel()
			}
			s.mu.Unlock()
			behindSince = time.Time{}
		}
	}
}

// confirm records that etcd vouched for the cache as of t; it never
// moves the confirmation back.
func (s *Store) confirm(t time.Time) {
	n := t.UnixNano()
	for {
		old := s.confirmed.Load()
		if old >= n || s.confirmed.CompareAndSwap(old, n) {
			return
		}
	}
}
