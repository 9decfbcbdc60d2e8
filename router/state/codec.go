package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/classroute/classroute/router"
)

// decodeRecord decodes the JSON value of a cached record of kind k and
// id, at mod revision rev, into the object its table holds.
func decodeRecord(k kind, id string, val []byte, rev, createRev int64) (any, error) {
	switch k {
	case kindLive:
		return decodeLive(id, val, rev, createRev)
	case kindHealth:
		return decodeHealth(id, val, rev)
	case kindRegion:
		var r router.Region
		if err := json.Unmarshal(val, &r); err != nil {
			return nil, err
		}
		if r.Key() != id {
			return nil, fmt.Errorf("record names region %q", r.Key())
		}
		// A record the API would refuse is never decided on, whoever
		// wrote it into etcd.
		if err := router.ValidateRegion(&r); err != nil {
			return nil, err
		}
		return &regionRecord{Key: id, Region: &r, Rev: rev}, nil
	case kindProvider:
		var p router.Provider
		if err := json.Unmarshal(val, &p); err != nil {
			return nil, err
		}
		if p.ID != id {
			return nil, fmt.Errorf("record names provider %q", p.ID)
		}
		if err := router.ValidateProvider(&p); err != nil {
			return nil, err
		}
		return &providerRecord{Provider: &p, Rev: rev}, nil
	case kindTenant:
		var t router.Tenant
		if err := json.Unmarshal(val, &t); err != nil {
			return nil, err
		}
		if t.ID != id {
			return nil, fmt.Errorf("record names tenant %q", t.ID)
		}
		if err := router.ValidateTenant(&t); err != nil {
			return nil, err
		}
		return &tenantRecord{Tenant: &t, Rev: rev}, nil
	case kindUsage:
		var u usageValue
		if err := json.Unmarshal(val, &u); err != nil {
			return nil, err
		}
		return &usageRecord{Key: id, Used: u.Used, Placements: u.Placements, Rev: rev}, nil
	case kindEquivalence:
		return decodeEquivalence(id, val, rev)
	case kindEdge:
		return decodeEdge(id, val, rev)
	case kindService:
		return decodeService(id, val, rev)
	case kindPlacement:
		p, err := decodePlacement(val)
		if err != nil {
			return nil, err
		}
		if !validKeyPart(p.Tenant) || !validKeyPart(p.ID) || keyOf(p) != id {
			return nil, fmt.Errorf("record names placement %q", keyOf(p))
		}
		return &placementRecord{P: p, Rev: rev}, nil
	}
	return nil, fmt.Errorf("no table for kind %d", k)
}

// decodePlacement decodes a placement and re-parses its workload's label
// from the stored canonical banner (the parsed label is not stored). A
// banner that no longer parses leaves the label zero; the placement
// itself is still served, since it records what was decided. Its strings
// are interned and its label is shared with every placement of the same
// banner (intern.go).
func decodePlacement(val []byte) (*router.Placement, error) {
	var p router.Placement
	if err := json.Unmarshal(val, &p); err != nil {
		return nil, err
	}
	intern.placement(&p)
	intern.setLabel(&p.Workload)
	return &p, nil
}

// cloneWorkload copies w so that the copy shares no memory the caller
// may change. The label is shared: labels are values whose slices are
// never modified (see router/label). TestCloneWorkload fails if a field
// is added that this does not copy.
func cloneWorkload(w *router.Workload) router.Workload {
	c := *w
	c.AllowedCountries = slices.Clone(w.AllowedCountries)
	c.AllowedJurisdictions = slices.Clone(w.AllowedJurisdictions)
	c.Capabilities = slices.Clone(w.Capabilities)
	c.Preferences.Providers = slices.Clone(w.Preferences.Providers)
	c.Dependencies = slices.Clone(w.Dependencies)
	if w.Preferences.Near != nil {
		near := *w.Preferences.Near
		c.Preferences.Near = &near
	}
	return c
}

// workloadJSON is the canonical form of a workload that decides whether
// a request id is reused for the same workload: its JSON, which carries
// the canonical banner and not the parsed label.
func workloadJSON(w *router.Workload) ([]byte, error) { return json.Marshal(w) }

// sameWorkload applies the idempotency rule: a request id that already
// made a placement of the tenant returns it when the workload is the
// same, and ErrRequestReused when it is not. (The workload names the
// tenant: another tenant's placement of the id is never compared.)
func sameWorkload(p *router.Placement, want []byte) (*router.Placement, error) {
	got, err := workloadJSON(&p.Workload)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("request id %q: %w", p.ID, router.ErrRequestReused)
	}
	return p, nil
}
