package state

import (
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/classroute/classroute/router"
)

const (
	tablePlacements = "placements"

	indexTenant = "tenant"
	// indexRequest: a request id's placements, one per tenant that used it.
	indexRequest = "request"
	indexState   = "state"
	indexRegion  = "region"
	// indexHolds: the live placements that hold capacity in a region (a
	// replica or a retiring copy there; see router.Placement.Holds). It
	// is what a region's agent is assigned.
	indexHolds = "holds"
	// indexReleased: the released placements by release time, oldest
	// first (see releasedIndex): what the retention purge walks.
	indexReleased = "released"
	// indexTenantReleased: each tenant's released placements by
	// release time (see releasedBy): what the purge counts.
	indexTenantReleased = "tenant-released"
	// indexTenantLive: a tenant's live placements, which its cap
	// (Tenant.MaxPlacements) counts.
	indexTenantLive = "tenant-live"
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
			indexTenant: {
				Name:    indexTenant,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string { return p.P.Tenant }),
			},
			indexState: {
				Name:    indexState,
				Indexer: oneIndex[*placementRecord](func(p *placementRecord) string { return p.P.State.String() }),
			},
			indexRegion: {
				Name:         indexRegion,
				AllowMissing: true,
				Indexer:      manyIndex[*placementRecord](func(p *placementRecord) []string { return placementRegions(p.P) }),
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
// selective index; within one index value memdb orders entries by
// primary key, so the walk is in key order and can seek.
func placementsTxn(tx *memdb.Txn, f PlacementFilter, after string, yield func(*placementRecord) bool) error {
	var index string
	var args []any
	switch {
	case f.Tenant != "":
		index, args = indexTenant, []any{f.Tenant}
	case f.Region != "":
		index, args = indexRegion, []any{f.Region}
	case f.State != nil:
		index, args = indexState, []any{f.State.String()}
	default:
		index = indexID
	}
	var it memdb.ResultIterator
	var err error
	if after == "" {
		it, err = tx.Get(tablePlacements, index, args...)
	} else {
		// LowerBound walks to the end of the index: stop at the first
		// entry past the index value (the filter no longer matches).
		it, err = tx.LowerBound(tablePlacements, index, append(args, after)...)
	}
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		p := raw.(*placementRecord)
		if keyOf(p.P) == after {
			continue
		}
		if !f.match(p.P) {
			if after != "" && index != indexID && !inIndex(index, f, p.P) {
				break
			}
			continue
		}
		if !yield(p) {
			break
		}
	}
	return nil
}

// inIndex reports whether p is still under the index value the walk
// started at.
func inIndex(index string, f PlacementFilter, p *router.Placement) bool {
	switch index {
	case indexTenant:
		return p.Tenant == f.Tenant
	case indexState:
		return p.State == *f.State
	case indexRegion:
		return (&PlacementFilter{Region: f.Region}).match(p)
	}
	return true
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
