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
// retried with the same request id still finds it. The elected
// reconciler deletes the record once ReconcilerConfig.ReleasedRetention
// has passed since its release, or once its tenant has released
// ReleasedKeep placements since (each tenant keeps its ReleasedKeep most
// recent released records at most: one tenant's place-and-release loop
// costs a bounded number of records, in etcd and in every daemon's
// cache, whatever the retention). What is deleted is the record alone:
// its place and release entries stay in the audit trail, which is the
// record of what happened. A Watch sees the deletion as a DELETED event
// carrying the last version; the daemons' caches drop it.
//
// After that the tenant's request id names nothing: Get and Release are
// NOT_FOUND, and a Place with the id makes a new placement. Idempotency
// holds while the record is kept: a client must not retry a Place longer
// than the retention after it was sent.
//
// The purge is the leader's, and fenced like its other writes: a batch
// of at most purgeBatch records is one transaction that compares the
// election key's create revision and each record's mod revision (a
// record written meanwhile is looked at again on fresh state). Batches
// follow one another purgeGap apart while records are due (at most
// purgeBatch/purgeGap, 500 records a second, whatever the backlog). With
// nothing due, a pass costs one lookup in the cache's index of released
// placements (oldest first) per Interval, and, every keepEvery passes, a
// walk of each tenant's newest released records (at most ReleasedKeep
// each) to find those beyond the count.

const (
	// purgeBatch is the most records one purge transaction deletes:
	// with the fence and a compare per record it stays within etcd's
	// default limit of 128 operations per transaction.
	purgeBatch = 100
	// purgeGap spaces the batches while a backlog lasts.
	purgeGap = 200 * time.Millisecond
	// keepEvery: the passes between two walks for records beyond a
	// tenant's count.
	keepEvery = 10
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

// releasedBy is the index value of a released placement under its
// tenant: "tenant/time" (a tenant id holds no '/'), "" for a live one.
func releasedBy(p *placementRecord) string {
	if t := releasedIndex(p); t != "" {
		return p.P.Tenant + "/" + t
	}
	return ""
}

// purgePolicy says which released records go: those released no later
// than cutoff (none when zero), and each tenant's beyond its keep most
// recent (none when keep is 0).
type purgePolicy struct {
	cutoff time.Time
	keep   int
}

// duePurgeTxn returns at most max released placements policy deletes:
// those past the cutoff, oldest first, then those beyond a tenant's
// count, tenant by tenant.
func duePurgeTxn(tx *memdb.Txn, policy purgePolicy, max int) ([]*placementRecord, error) {
	var due []*placementRecord
	if !policy.cutoff.IsZero() {
		it, err := tx.LowerBound(tablePlacements, indexReleased, "")
		if err != nil {
			return nil, err
		}
		for raw := it.Next(); raw != nil && len(due) < max; raw = it.Next() {
			p := raw.(*placementRecord)
			if releasedAt(p.P).After(policy.cutoff) {
				break // the index is in release order: none later is due
			}
			due = append(due, p)
		}
	}
	if policy.keep <= 0 || len(due) >= max {
		return due, nil
	}
	taken := make(map[*placementRecord]bool, len(due))
	for _, p := range due {
		taken[p] = true
	}
	// Tenant by tenant: the first entry at or after from names the
	// next tenant; its entries, newest first, end where the value stops
	// starting with "tenant/"; the next tenant sorts after "tenant0"
	// ('0' follows '/').
	for from := ""; len(due) < max; {
		it, err := tx.LowerBound(tablePlacements, indexTenantReleased, from)
		if err != nil {
			return nil, err
		}
		raw := it.Next()
		if raw == nil {
			break
		}
		tenant := raw.(*placementRecord).P.Tenant
		from = tenant + "0"
		rit, err := tx.ReverseLowerBound(tablePlacements, indexTenantReleased, tenant+"/\x7f")
		if err != nil {
			return nil, err
		}
		n := 0
		for raw := rit.Next(); raw != nil && len(due) < max; raw = rit.Next() {
			p := raw.(*placementRecord)
			if p.P.Tenant != tenant {
				break
			}
			if n++; n > policy.keep && !taken[p] {
				due = append(due, p)
			}
		}
	}
	return due, nil
}

// purgeReleased deletes, while this reconciler leads (ctx), the records
// of released placements cfg's retention and count no longer keep.
func (s *Store) purgeReleased(ctx context.Context, f fence, cfg *ReconcilerConfig) {
	wait := cfg.Interval
	for pass := 0; ; pass++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = cfg.Interval
		if s.Ready() != nil {
			continue // the cache cannot vouch for what is due
		}
		var policy purgePolicy
		if cfg.ReleasedRetention > 0 {
			policy.cutoff = s.clock().Add(-cfg.ReleasedRetention)
		}
		if pass%keepEvery == 0 {
			policy.keep = cfg.ReleasedKeep
		}
		n, err := s.purgeDue(ctx, f, policy)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("state: purge of released placements", "err", err)
			}
		case n == purgeBatch:
			wait = purgeGap // more may be due
			if policy.keep > 0 {
				pass = -1 // walk the counts again next
			}
		}
	}
}

// purgeDue deletes one batch of the records policy deletes, in one
// fenced transaction, and returns how many it deleted.
func (s *Store) purgeDue(ctx context.Context, f fence, policy purgePolicy) (int, error) {
	tx := s.db.Txn(false)
	due, err := duePurgeTxn(tx, policy, purgeBatch)
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
	s.log.Info("state: purged released placements", "count", len(due))
	return len(due), nil
}
