package state

import (
	"context"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// Released placements do not stay forever. A release keeps the
// placement's record (state released) so that a Get, a List or a Place
// retried with the same request id still finds it; once
// ReconcilerConfig.ReleasedRetention has passed since its release, the
// elected reconciler deletes the record. What is deleted is the record
// alone: its place and release entries stay in the audit trail, which
// is the record of what happened. A Watch sees the deletion as a
// DELETED event carrying the last version; the daemons' caches drop it.
//
// After that the tenant's request id names nothing: Get and Release are
// NOT_FOUND, and a Place with the id makes a new placement (idempotency
// holds within the retention only, so a client must not retry a Place
// that long after it was sent).
//
// The purge is the leader's, and fenced like its other writes: a batch
// of at most purgeBatch records is one transaction that compares the
// election key's create revision and each record's mod revision (a
// record written meanwhile is looked at again on fresh state). Batches
// follow one another purgeGap apart while records are due (at most
// purgeBatch/purgeGap, 500 records a second, whatever the backlog); with
// nothing due it costs one lookup in the cache's index of released
// placements (oldest first) per Interval.

const (
	// purgeBatch is the most records one purge transaction deletes:
	// with the fence and a compare per record it stays within etcd's
	// default limit of 128 operations per transaction.
	purgeBatch = 100
	// purgeGap spaces the batches while a backlog lasts.
	purgeGap = 200 * time.Millisecond
)

// releasedLayout formats a release time as an index value that sorts as
// the time does (fixed width, UTC).
const releasedLayout = "20060102T150405.000000000Z"

// releasedAt is when p was released. A record released before the time
// was recorded falls back to its last update, then its creation.
func releasedAt(p *router.Placement) time.Time {
	for _, t := range []time.Time{p.ReleasedAt, p.UpdatedAt, p.CreatedAt} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// releasedIndex is the index value of a released placement, "" (not
// indexed) for a live one.
func releasedIndex(p *placementRecord) string {
	if p.P.State != router.PlacementReleased {
		return ""
	}
	return releasedAt(p.P).UTC().Format(releasedLayout)
}

// duePurgeTxn returns the released placements released no later than
// cutoff, oldest first, at most max.
func duePurgeTxn(tx *memdb.Txn, cutoff time.Time, max int) ([]*placementRecord, error) {
	it, err := tx.LowerBound(tablePlacements, indexReleased, "")
	if err != nil {
		return nil, err
	}
	var due []*placementRecord
	for raw := it.Next(); raw != nil && len(due) < max; raw = it.Next() {
		p := raw.(*placementRecord)
		if releasedAt(p.P).After(cutoff) {
			break // the index is in release order: none later is due
		}
		due = append(due, p)
	}
	return due, nil
}

// purgeReleased deletes, while this reconciler leads (ctx), the records
// of placements released longer than retention ago.
func (s *Store) purgeReleased(ctx context.Context, f fence, retention, every time.Duration) {
	wait := every
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = every
		if s.Ready() != nil {
			continue // the cache cannot vouch for what is due
		}
		n, err := s.purgeDue(ctx, f, s.clock().Add(-retention))
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("state: purge of released placements", "err", err)
			}
		case n == purgeBatch:
			wait = purgeGap // more may be due
		}
	}
}

// purgeDue deletes one batch of the records released no later than
// cutoff, in one fenced transaction, and returns how many it deleted.
func (s *Store) purgeDue(ctx context.Context, f fence, cutoff time.Time) (int, error) {
	tx := s.db.Txn(false)
	due, err := duePurgeTxn(tx, cutoff, purgeBatch)
	tx.Abort()
	if err != nil || len(due) == 0 {
		return 0, err
	}
	cmps := make([]clientv3.Cmp, 0, 1+len(due))
	ops := make([]clientv3.Op, 0, len(due))
	cmps = append(cmps, f.cmp())
	for _, p := range due {
		key := s.keys.placement(keyOf(p.P))
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", p.Rev))
		ops = append(ops, clientv3.OpDelete(key))
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(cmps...).Then(ops...).Commit()
	})
	if err != nil {
		return 0, err
	}
	// Succeeded or not, the next batch reads a cache that holds what
	// this one met: the deletions, or what beat them.
	if err := s.waitCommitted(ctx, resp.Header.Revision); err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, nil
	}
	s.log.Info("state: purged released placements", "count", len(due), "released_until", cutoff.UTC())
	return len(due), nil
}
