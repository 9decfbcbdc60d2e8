package state

import (
	"sync"

	"github.com/classroute/classroute/router"
)

// reservations is the in-process overlay of this daemon's uncommitted
// placements: the regions each in-flight Place has chosen, from its
// decision until the cache reflects its commit (or it fails).
//
// It is a throughput device, not a safety one: every placement that
// commits to a region also rewrites the region's usage record, so two
// in-flight commits to one region cannot both succeed, and the loser
// would pay a round trip to learn it. Adding the in-flight resources to
// the region's used capacity would not prevent that (with room to spare
// the region stays the best), so a commit in flight reserves the whole
// of its regions' free capacity: decisions see them full, and concurrent
// placements spread over the other eligible regions instead of queuing
// on the best one. A refusal is never decided on the overlay: when the
// overlaid decision fails, the decision on the committed state alone
// decides whether to refuse, or to wait for a busy region. Holding the
// request id as well keeps the members of a commit batch on disjoint
// keys (see batch.go).
type reservations struct {
	mu      sync.Mutex
	busy    map[string]struct{} // region keys and placement keys held by in-flight commits
	changed chan struct{}       // closed, and replaced, when a hold ends
}

func (r *reservations) init() {
	r.busy = make(map[string]struct{})
	r.changed = make(chan struct{})
}

// overlay returns the regions as a decision of this daemon should see
// them, and a channel closed when a hold ends. A region held by an
// in-flight commit is shown with its whole capacity used (in buf, a
// copy: the view is not touched), so the capacity rule passes over it.
// When nothing is held the view's slice is returned, unchanged is true,
// and nothing is copied.
func (r *reservations) overlay(v *regionView, buf *[]router.RegionState) (regions []router.RegionState, changed <-chan struct{}, unchanged bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	copied := false
	for key := range r.busy {
		i, ok := v.index[key]
		if !ok || v.states[i].Region == nil {
			continue
		}
		if !copied {
			*buf = append((*buf)[:0], v.states...)
			copied = true
		}
		st := &(*buf)[i]
		st.Used = st.Region.Capacity
	}
	if !copied {
		return v.states, r.changed, true
	}
	return *buf, r.changed, false
}

// heldRequest is the reservation key of a placement key "tenant/id"
// (placementKey): two tenants' requests of one id are unrelated. It
// cannot collide with a region key.
func heldRequest(key string) string { return "\x00request/" + key }

// hold marks the chosen regions busy, or returns false if one of them
// already is (another decision took it since the overlay was made).
func (r *reservations) hold(chosen []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range chosen {
		if _, ok := r.busy[k]; ok {
			return false
		}
	}
	for _, k := range chosen {
		r.busy[k] = struct{}{}
	}
	return true
}

// release ends a hold and wakes the decisions waiting for one to end.
func (r *reservations) release(chosen []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range chosen {
		delete(r.busy, k)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}
