package state

import (
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/flow"
)

const (
	tablePlacements = "placements"

	// Every index entry costs the cache about half a kilobyte (a radix
	// tree node and leaf, each with its channel) and a cold start a few
	// microseconds per placement, so a live placement, most of what the
	// cache holds, is under as few as serve the reads: its key, its
	// request id, its tenant (tenant-live) and the regions it holds
	// (holds). What lists by tenant or region also needs of released
	// placements is in indexes of their own, walked beside those of the
	// live ones (see placementsTxn).

	// indexRequest: a request id's placements, one per tenant that used it.
	indexRequest = "request"
	// indexState: the placements in a state other than placed (the
	// placed are most of them; a list of those walks indexID).
	indexState = "state"
	// indexHolds: the live placements that hold capacity in a region (a
	// replica or a retiring copy there; see router.Placement.Holds). It
	// is what a region's agent is assigned.
	indexHolds = "holds"
	// indexTenantLive: a tenant's live placements, which its cap
	// (Tenant.MaxPlacements) counts.
	indexTenantLive = "tenant-live"
	// indexDependsOn: the live placements that depend on a placement,
	// by its key, or on a service, by serviceTargetKey (the targets of
	// router.Workload.Dependencies): what the reconciler re-checks at once
	// when that placement moves, changes or goes, or the region either
	// runs in changes. Placements without dependencies are not in it.
	indexDependsOn = "depends-on"
	// indexReleasedTenant and indexReleasedRegion: the released
	// placements by tenant and by region, in key order.
	indexReleasedTenant = "released-tenant"
	indexReleasedRegion = "released-region"
	// indexReleased: the released placements by release time, oldest
	// first (see releasedIndex): what the retention purge walks.
	indexReleased = "released"
	// indexTenantReleased: each tenant's released placements by
	// release time (see releasedBy): what the purge counts.
	indexTenantReleased = "tenant-released"
)

// Page sizes of ListPlacements.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// placementRecord is a cached placement and the etcd mod revision of its record.
type placementRecord struct {
	P   *router.Placement
	Rev int64
}

func placementsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tablePlacements,
		Indexes: map[string]*memdb.IndexSchema{
			// The primary key is the placement key "tenant/id" (see
			// placementKey): a request id is unique within its tenant
			// only. It is the key's suffix under placements/, so the
			// watch deletes by the id it parses, and a page token that
			// holds it seeks within every other index (their entries
			// end in the primary key).
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string { return keyOf(p.P) }),
			},
			indexRequest: {
				Name:    indexRequest,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string { return p.P.ID }),
			},
			indexState: {
				Name:         indexState,
				AllowMissing: true,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string {
					if p.P.State == router.PlacementPlaced {
						return ""
					}
					return p.P.State.String()
				}),
			},
			indexHolds: {
				Name:         indexHolds,
				AllowMissing: true,
				Indexer:      manyIndex[*placementRecord](holdsIndex),
			},
			indexTenantLive: {
				Name:         indexTenantLive,
				AllowMissing: true,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string {
					if !p.P.State.Live() {
						return ""
					}
					return p.P.Tenant
				}),
			},
			indexDependsOn: {
				Name:         indexDependsOn,
				AllowMissing: true,
				Indexer:      manyIndex[*placementRecord](dependsOnIndex),
			},
			indexReleasedTenant: {
				Name:         indexReleasedTenant,
				AllowMissing: true,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string {
					if p.P.State.Live() {
						return ""
					}
					return p.P.Tenant
				}),
			},
			indexReleasedRegion: {
				Name:         indexReleasedRegion,
				AllowMissing: true,
				Indexer: manyIndex[*placementRecord](func(p *placementRecord) []string {
					if p.P.State.Live() {
						return nil
					}
					return placementRegions(p.P)
				}),
			},
			indexTenantReleased: {
				Name:         indexTenantReleased,
				AllowMissing: true,
				Indexer:      oneIndex[*placementRecord](releasedBy),
			},
			indexReleased: {
				Name:         indexReleased,
				AllowMissing: true,
				Indexer:      oneIndex[*placementRecord](releasedIndex),
			},
		},
	}
}

// holdsIndex lists the regions in which a live placement holds capacity.
func holdsIndex(p *placementRecord) []string {
	if !p.P.State.Live() {
		return nil
	}
	return placementRegions(p.P)
}

// dependsOnIndex lists what a live placement depends on: placement keys
// ("tenant/id") and service target keys ("service:name"; no placement
// key is one, having no '/').
func dependsOnIndex(p *placementRecord) []string {
	if !p.P.State.Live() {
		return nil
	}
	var keys []string
	for _, d := range p.P.Workload.Dependencies {
		switch d.Target.Kind {
		case flow.PlacementTarget:
			keys = append(keys, placementKey(d.Target.Tenant, d.Target.ID))
		case flow.ServiceTarget:
			keys = append(keys, serviceTargetKey(d.Target.Name))
		}
	}
	return keys
}

// serviceTargetKey is the depends-on index key of the service name.
func serviceTargetKey(name string) string { return "service:" + name }

// placementTxn returns the placement of key "tenant/id" (placementKey).
func placementTxn(tx *memdb.Txn, key string) *placementRecord {
	raw, err := tx.First(tablePlacements, indexID, key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*placementRecord)
}

// liveCountTxn counts tenant's live placements, up to limit.
func liveCountTxn(tx *memdb.Txn, tenant string, limit int) (int, error) {
	it, err := tx.Get(tablePlacements, indexTenantLive, tenant)
	if err != nil {
		return 0, err
	}
	n := 0
	for raw := it.Next(); raw != nil && n < limit; raw = it.Next() {
		n++
	}
	return n, nil
}

// PlacementFilter selects placements; zero fields match everything.
type PlacementFilter struct {
	Tenant string
	Region string
	State  *router.PlacementState
}

func (f *PlacementFilter) match(p *router.Placement) bool {
	if f.Tenant != "" && p.Tenant != f.Tenant {
		return false
	}
	if f.State != nil && p.State != *f.State {
		return false
	}
	if f.Region != "" {
		return slices.Contains(placementRegions(p), f.Region)
	}
	return true
}

// placementRegions lists the regions a placement is in: its replicas'
// and its retiring copies'.
func placementRegions(p *router.Placement) []string {
	if len(p.Retiring) == 0 {
		return p.Regions
	}
	out := slices.Clone(p.Regions)
	for _, r := range p.Retiring {
		out = append(out, r.Region)
	}
	return out
}

// placementsTxn calls yield with the placements f selects, in key order
// ("tenant/id": by request id within a tenant), starting after the key
// after (all when empty), until yield returns false. It walks the most
// selective indexes: within one index value memdb orders entries by
// primary key, so each walk is in key order and can seek, and a tenant's
// or a region's placements, live and released being under indexes of
// their own, are the two walks merged.
func placementsTxn(tx *memdb.Txn, f PlacementFilter, after string, yield func(*placementRecord) bool) error {
	var walks []*keyWalk
	walk := func(index string, under func(*router.Placement) bool, args ...any) error {
		w, err := newKeyWalk(tx, index, args, after, under)
		if err == nil {
			walks = append(walks, w)
		}
		return err
	}
	var err error
	switch {
	case f.Tenant != "":
		of := func(p *router.Placement) bool { return p.Tenant == f.Tenant }
		if err = walk(indexTenantLive, of, f.Tenant); err == nil {
			err = walk(indexReleasedTenant, of, f.Tenant)
		}
	case f.Region != "":
		in := func(p *router.Placement) bool { return slices.Contains(placementRegions(p), f.Region) }
		if err = walk(indexHolds, in, f.Region); err == nil {
			err = walk(indexReleasedRegion, in, f.Region)
		}
	case f.State != nil && *f.State != router.PlacementPlaced:
		err = walk(indexState, func(p *router.Placement) bool { return p.State == *f.State }, f.State.String())
	default:
		err = walk(indexID, nil)
	}
	if err != nil {
		return err
	}
	for {
		var next *keyWalk
		for _, w := range walks {
			if w.cur != nil && (next == nil || w.key < next.key) {
				next = w
			}
		}
		if next == nil {
			return nil
		}
		p := next.cur
		next.advance()
		if f.match(p.P) && !yield(p) {
			return nil
		}
	}
}

// keyWalk walks the entries of one index value in key order, from after
// a key.
type keyWalk struct {
	it memdb.ResultIterator
	// under reports whether a placement is under the index value; nil
	// for the whole index.
	under func(*router.Placement) bool
	cur   *placementRecord // the next entry, nil at the end
	key   string           // its key
	last  string           // the last key walked (after, at first)
	// started: past the entry the walk resumes after.
	started bool
}

func newKeyWalk(tx *memdb.Txn, index string, args []any, after string, under func(*router.Placement) bool) (*keyWalk, error) {
	var it memdb.ResultIterator
	var err error
	if after == "" {
		it, err = tx.Get(tablePlacements, index, args...)
	} else {
		// LowerBound walks to the end of the index: advance stops at
		// the first entry past the index value.
		it, err = tx.LowerBound(tablePlacements, index, append(args, after)...)
	}
	if err != nil {
		return nil, err
	}
	w := &keyWalk{it: it, under: under, last: after}
	if after == "" {
		w.under = nil // Get walks the value's entries only
	}
	w.advance()
	return w, nil
}

// advance moves to the next entry after the last key walked that is
// under the index value. Past the value, LowerBound walks the entries of
// the next values; an entry there is not the value's when its placement
// is not under it, nor when its key is not past the last one walked
// (under a multi-valued index, such as the regions', a placement that
// is also under the value was walked already, since the value's entries
// come in key order).
func (w *keyWalk) advance() {
	for {
		raw := w.it.Next()
		if raw == nil {
			w.cur, w.key = nil, ""
			return
		}
		p := raw.(*placementRecord)
		key := keyOf(p.P)
		if !w.started {
			w.started = true
			if key == w.last && key != "" {
				continue // the entry the walk resumes after
			}
		}
		if w.under != nil && (key <= w.last || !w.under(p.P)) {
			w.cur, w.key = nil, ""
			return
		}
		w.cur, w.key, w.last = p, key, key
		return
	}
}

func firstPlacementTxn(tx *memdb.Txn, f PlacementFilter) *router.Placement {
	var first *router.Placement
	_ = placementsTxn(tx, f, "", func(p *placementRecord) bool {
		first = p.P
		return false
	})
	return first
}

// GetPlacement returns the placement tenant made with request id id,
// from the cache; an unknown one is ErrNotFound. With tenant "" it is the
// placement of id whatever its tenant, for a caller who may see every
// tenant's: when more than one tenant used the id, the caller must name
// one (an InvalidError on field "tenant").
func (s *Store) GetPlacement(tenant, id string) (*router.Placement, error) {
	if !validKeyPart(id) || tenant != "" && !validKeyPart(tenant) {
		return nil, fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
	}
	tx := s.db.Txn(false)
	defer tx.Abort()
	if tenant == "" {
		return onlyPlacementTxn(tx, id)
	}
	p := placementTxn(tx, placementKey(tenant, id))
	if p == nil {
		return nil, fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
	}
	return p.P, nil
}

// onlyPlacementTxn returns the one placement of request id id, of any
// tenant. It reads at most two.
func onlyPlacementTxn(tx *memdb.Txn, id string) (*router.Placement, error) {
	it, err := tx.Get(tablePlacements, indexRequest, id)
	if err != nil {
		return nil, err
	}
	first := it.Next()
	if first == nil {
		return nil, fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
	}
	if it.Next() != nil {
		return nil, router.Violations{{Field: "tenant", Description: fmt.Sprintf(
			"request id %q is used by more than one tenant: name the tenant", id)}}.Err()
	}
	return first.(*placementRecord).P, nil
}

// PlacementPage is one page of ListPlacements.
type PlacementPage struct {
	Placements []*router.Placement
	// Next is the token of the next page; "" on the last.
	Next string
	// Revision is the etcd revision the page reflects: watching from it
	// (WatchPlacements) misses no change made after the page was read.
	Revision int64
}

// ListPlacements returns one page of the placements f selects, ordered by
// placement key ("tenant/id"), from the cache. pageSize 0 means DefaultPageSize and is capped at
// MaxPageSize. pageToken is "" for the first page, then the token the
// previous page returned; the last page returns "". The placements are
// shared: never modify one.
func (s *Store) ListPlacements(f PlacementFilter, pageSize int, pageToken string) (PlacementPage, error) {
	switch {
	case pageSize <= 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	var after string
	if pageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || len(b) == 0 {
			return PlacementPage{}, router.Violations{{Field: "page_token", Description: "not a token this service returned"}}.Err()
		}
		after = string(b)
	}
	tx := s.db.Txn(false)
	defer tx.Abort()
	var page PlacementPage
	page.Revision, _ = revisionTxn(tx)
	more := false
	err := placementsTxn(tx, f, after, func(p *placementRecord) bool {
		if len(page.Placements) == pageSize {
			more = true
			return false
		}
		page.Placements = append(page.Placements, p.P)
		return true
	})
	if err != nil {
		return PlacementPage{}, fmt.Errorf("list placements: %w", err)
	}
	if more {
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(keyOf(page.Placements[len(page.Placements)-1])))
	}
	return page, nil
}
