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
	indexState  = "state"
	indexRegion = "region"
	// indexHolds: the live placements that hold capacity in a region (a
	// replica or a retiring copy there; see router.Placement.Holds). It
	// is what a region's agent is assigned.
	indexHolds = "holds"
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
			indexID: {
				Name:    indexID,
				Unique:  true,
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

func placementTxn(tx *memdb.Txn, id string) *placementRecord {
	raw, err := tx.First(tablePlacements, indexID, id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*placementRecord)
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

// placementsTxn calls yield with the placements f selects, in id order,
// starting after the id after (all when empty), until yield returns false.
// It walks the most selective index; within one index value memdb orders
// entries by primary key, so the walk is in id order and can seek.
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
		if p.P.ID == after {
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

// GetPlacement returns a placement from the cache. An unknown id is ErrNotFound.
func (s *Store) GetPlacement(id string) (*router.Placement, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	p := placementTxn(tx, id)
	if p == nil {
		return nil, fmt.Errorf("placement %q: %w", id, router.ErrNotFound)
	}
	return p.P, nil
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
// id, from the cache. pageSize 0 means DefaultPageSize and is capped at
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
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(page.Placements[len(page.Placements)-1].ID))
	}
	return page, nil
}
