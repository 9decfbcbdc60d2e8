package state

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
)

// seedChunkOps keeps each seeding transaction under etcd's default limit
// of 128 operations per transaction (--max-txn-ops).
const seedChunkOps = 120

// defaultSeedLeaseTTL is how long, in seconds, a seed that died part-way
// keeps the seeded marker: after it, the next daemon to start seeds again.
const defaultSeedLeaseTTL = 15

// seedMarker is the value of the seeded key.
type seedMarker struct {
	// State is "seeding" while the chunks are written, then "complete".
	State string `json:"state"`
	Chunk int    `json:"chunk"`
}

// Seed loads a catalogue into an empty store: the first daemon to start
// loads the default catalogue, and no later start overwrites what
// operators changed since. "Empty" is the absence of the seeded marker
// key, compared in the same transaction that creates it (create
// revision 0), so of several daemons starting at once exactly one seeds.
// A catalogue too large for one transaction is written in chunks, each
// guarded by the marker's revision; the marker says "seeding" until the
// last chunk marks it "complete". While seeding, the marker is held on a
// lease this daemon keeps alive, and the last chunk rewrites it without
// one: if the daemon dies part-way, the lease expires, the marker goes,
// and the next start seeds again instead of leaving a partial catalogue
// for good. Seed reports whether it loaded the catalogue. Regions get
// empty usage records unless they have one.
//
// Seed loads the default equivalence entries (equiv.Default()) too, under
// a marker of their own (see seedEquivalences): once, whether or not the
// catalogue was loaded now, so that a store seeded before equivalences
// were stored gets them as well, and no later start overwrites what
// operators changed since. So are the default edges and services
// (flow.Defaults(), under seeded-edges; see seedFlows).
func (s *Store) Seed(ctx context.Context, providers []router.Provider, regions []router.Region, tenants []router.Tenant) (bool, error) {
	erev, err := s.seedEquivalences(ctx, equiv.Default())
	if err != nil {
		return false, err
	}
	if erev > 0 {
		if err := s.waitCommitted(ctx, erev); err != nil {
			return false, fmt.Errorf("seed equivalences: %w", err)
		}
	}
	edges, services := flow.Defaults()
	frev, err := s.seedFlows(ctx, edges, services)
	if err != nil {
		return false, err
	}
	if frev > 0 {
		if err := s.waitCommitted(ctx, frev); err != nil {
			return false, fmt.Errorf("seed edges: %w", err)
		}
	}
	known := make(map[string]bool)
	var ops []clientv3.Op
	for i := range providers {
		p := &providers[i]
		if !validKeyPart(p.ID) {
			return false, router.Violations{{Field: "provider.id", Description: "required: a valid id"}}.Err()
		}
		if err := router.ValidateProvider(p); err != nil {
			return false, fmt.Errorf("seed provider %s: %w", p.ID, err)
		}
		val, err := json.Marshal(p)
		if err != nil {
			return false, err
		}
		known[p.ID] = true
		ops = append(ops, clientv3.OpPut(s.keys.provider(p.ID), string(val)))
	}
	zero, err := json.Marshal(usageValue{})
	if err != nil {
		return false, err
	}
	for i := range regions {
		r := &regions[i]
		if err := validateRegion(r); err != nil {
			return false, fmt.Errorf("seed region: %w", err)
		}
		if _, err := s.GetProvider(r.Provider); !known[r.Provider] && err != nil {
			return false, fmt.Errorf("seed region %s: provider %q: %w", r.Key(), r.Provider, router.ErrNotFound)
		}
		val, err := json.Marshal(r)
		if err != nil {
			return false, err
		}
		ukey := s.keys.usage(r.Key())
		ops = append(ops,
			clientv3.OpPut(s.keys.region(r.Key()), string(val)),
			clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(ukey), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(ukey, string(zero))},
				nil))
	}
	for i := range tenants {
		t := &tenants[i]
		if !validKeyPart(t.ID) {
			return false, router.Violations{{Field: "tenant.id", Description: "required: a valid id"}}.Err()
		}
		if err := router.ValidateTenant(t); err != nil {
			return false, fmt.Errorf("seed tenant %s: %w", t.ID, err)
		}
		val, err := json.Marshal(t)
		if err != nil {
			return false, err
		}
		ops = append(ops, clientv3.OpPut(s.keys.tenant(t.ID), string(val)))
	}

	mkey := s.keys.seeded()
	var markerRev int64
	var lease clientv3.LeaseID
	if len(ops) > seedChunkOps-1 {
		lc := s.newLease()
		defer lc.Close()
		l, err := lc.Grant(ctx, s.seedLeaseTTL)
		if err != nil {
			return false, fmt.Errorf("seed: lease: %w", err)
		}
		lease = l.ID
		kctx, stop := context.WithCancel(context.Background())
		defer func() {
			stop()
			rctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
			defer cancel()
			_, _ = lc.Revoke(rctx, lease) // the marker no longer uses it
		}()
		keep, err := lc.KeepAlive(kctx, lease)
		if err != nil {
			return false, fmt.Errorf("seed: lease: %w", err)
		}
		go func() {
			for range keep {
			}
		}()
	}
	for chunk := 0; chunk == 0 || len(ops) > 0; chunk++ {
		n := min(len(ops), seedChunkOps-1)
		state := "seeding"
		if n == len(ops) {
			state = "complete"
		}
		mval, err := json.Marshal(seedMarker{State: state, Chunk: chunk})
		if err != nil {
			return false, err
		}
		guard := clientv3.Compare(clientv3.CreateRevision(mkey), "=", 0)
		if chunk > 0 {
			guard = clientv3.Compare(clientv3.ModRevision(mkey), "=", markerRev)
		}
		marker := clientv3.OpPut(mkey, string(mval))
		if state == "seeding" {
			marker = clientv3.OpPut(mkey, string(mval), clientv3.WithLease(lease))
		}
		then := append([]clientv3.Op{marker}, ops[:n]...)
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).If(guard).Then(then...).Commit()
		})
		if err != nil {
			return chunk > 0, fmt.Errorf("seed chunk %d: %w", chunk, err)
		}
		if !resp.Succeeded {
			if chunk == 0 {
				return false, nil // seeded before
			}
			return true, fmt.Errorf("seed chunk %d: the seeded marker changed under the seed: %w", chunk, router.ErrConflict)
		}
		markerRev = resp.Header.Revision
		ops = ops[n:]
		if s.afterSeedChunk != nil {
			s.afterSeedChunk(chunk)
		}
	}
	return true, s.waitCommitted(ctx, markerRev)
}
