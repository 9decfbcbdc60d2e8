package state

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Request ids were once global: a placement was stored under
// placements/<request id>, and one tenant's id blocked (and revealed)
// every other tenant's. A placement is now named by its tenant and
// request id, stored under placements/<tenant>/<request id>, and the
// cache ignores the old layout (keys.parse).
//
// Records of the old layout (a store upgraded in place) are moved when a
// store loads its cache: at Open, and again after any re-list. Each move
// is one transaction that deletes the old record and writes its value,
// unchanged, under the new key, if the old record is still the one read
// and the new key is free. So the move is idempotent and safe with
// several daemons starting at once: the first moves a record, the
// others' compares fail and they find it gone. Nothing about a
// placement changes in the move (the usage records already count it),
// so the move is not audited, and a placement feed passes over it
// (router/feed). A record whose value does not decode, or whose new key is
// taken (by the same tenant's placement of the same id: an older daemon
// still writing the old layout after the upgrade), stays where it is,
// logged at every load: an operator must look at it.
//
// Upgrade every daemon of a cluster together: a daemon of the old layout
// does not see the new one, and what it writes meanwhile is moved only at
// the next load.

// migrateLegacy moves the legacy placement records of kvs (read by load)
// to their tenant's directory and returns the revision of the last move,
// 0 if none.
func (s *Store) migrateLegacy(ctx context.Context, kvs []*mvccpb.KeyValue) (int64, error) {
	var last int64
	moved := 0
	for _, kv := range kvs {
		rev, err := s.migrateOne(ctx, kv)
		if err != nil {
			return last, err
		}
		if rev != 0 {
			last = max(last, rev)
			moved++ // by this daemon or another
		}
	}
	if len(kvs) > 0 {
		s.log.Info("state: moved placement records to the tenant-scoped layout", "found", len(kvs), "moved", moved)
	}
	return last, nil
}

// migrateOne moves one legacy record and returns the revision the cache
// must reach to see it where it now is: its move's, another daemon's
// move's (at or before the revision it found the record gone at), or 0
// when it is left in place.
func (s *Store) migrateOne(ctx context.Context, kv *mvccpb.KeyValue) (int64, error) {
	old := string(kv.Key)
	for attempt := 0; ; attempt++ {
		p, err := decodePlacement(kv.Value)
		id, _ := s.keys.legacyPlacement(old)
		switch {
		case err != nil:
			s.log.Error("state: legacy placement record does not decode; left in place", "key", old, "err", err)
			return 0, nil
		case p.ID != id || !validKeyPart(p.Tenant):
			s.log.Error("state: legacy placement record names another placement; left in place", "key", old, "id", p.ID, "tenant", p.Tenant)
			return 0, nil
		}
		key := s.keys.placement(keyOf(p))
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(old), "=", kv.ModRevision),
					clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				// The delete first: a feed recognises the move by it.
				Then(clientv3.OpDelete(old), clientv3.OpPut(key, string(kv.Value))).
				Else(clientv3.OpGet(old), clientv3.OpGet(key, clientv3.WithKeysOnly())).
				Commit()
		})
		if err != nil {
			return 0, fmt.Errorf("move placement record %s: %w", old, err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		cur := resp.Responses[0].GetResponseRange().GetKvs()
		switch {
		case len(cur) == 0:
			// Moved (or deleted) by another daemon: its move is at or
			// before this answer's revision, which the cache must reach
			// before the store serves (else it answers "not found" for a
			// placement that is there).
			return resp.Header.Revision, nil
		case len(resp.Responses[1].GetResponseRange().GetKvs()) > 0:
			s.log.Error("state: legacy placement record's tenant-scoped key is taken; left in place", "key", old, "taken", key)
			return 0, nil
		case attempt >= s.maxRetries:
			return 0, fmt.Errorf("move placement record %s: it kept changing", old)
		}
		kv = cur[0] // rewritten meanwhile (a daemon of the old layout): move what it holds now
	}
}
