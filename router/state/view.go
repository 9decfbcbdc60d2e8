package state

import (
	"slices"

	"github.com/hashicorp/go-memdb"

	"github.com/classroute/classroute/router"
)

// regionView is every region with its usage, sorted by key, as of one
// revision: what every decision reads. The apply loop derives it from
// the regions and usage tables in the same memdb transaction that
// changes them, and stores it in the revision row, so a decision gets it
// in O(1) instead of walking both tables; at that revision it is shared,
// read-only, by every decision.
type regionView struct {
	// states, keys and counts are parallel: the region with its usage
	// and revisions, its key, and its number of live placements.
	states []router.RegionState
	keys   []string
	counts []int64
	// index maps a region key to its position.
	index map[string]int
}

// buildView derives the view from the tables: one ordered walk of each.
func buildView(tx *memdb.Txn) *regionView {
	regions, err := tx.Get(tableRegions, indexID)
	if err != nil {
		panic(err) // the table and index exist
	}
	usage, err := tx.Get(tableUsage, indexID)
	if err != nil {
		panic(err)
	}
	v := &regionView{index: make(map[string]int)}
	u, _ := usage.Next().(*usageRecord)
	for raw := regions.Next(); raw != nil; raw = regions.Next() {
		r := raw.(*regionRecord)
		for u != nil && u.Key < r.Key {
			u, _ = usage.Next().(*usageRecord)
		}
		st := router.RegionState{Region: r.Region, Rev: r.Rev}
		var n int64
		if u != nil && u.Key == r.Key {
			st.Used, st.UsageRev, n = u.Used, u.Rev, u.Placements
		}
		agentState(tx, r.Key, &st)
		v.index[r.Key] = len(v.states)
		v.states = append(v.states, st)
		v.keys = append(v.keys, r.Key)
		v.counts = append(v.counts, n)
	}
	return v
}

// patched returns a copy of v with the regions in touched re-read from
// the tables. The set of regions must be the same (else buildView).
func (v *regionView) patched(tx *memdb.Txn, touched map[string]struct{}) *regionView {
	nv := &regionView{states: slices.Clone(v.states), keys: v.keys, counts: slices.Clone(v.counts), index: v.index}
	for key := range touched {
		i, ok := v.index[key]
		if !ok {
			continue // usage of no region
		}
		st := router.RegionState{}
		var n int64
		if r := regionTxn(tx, key); r != nil {
			st.Region, st.Rev = r.Region, r.Rev
		}
		if u := usageTxn(tx, key); u != nil {
			st.Used, st.UsageRev, n = u.Used, u.Rev, u.Placements
		}
		agentState(tx, key, &st)
		nv.states[i], nv.counts[i] = st, n
	}
	return nv
}

func (v *regionView) state(key string) (router.RegionState, bool) {
	i, ok := v.index[key]
	if !ok {
		return router.RegionState{}, false
	}
	return v.states[i], true
}

// agentState fills in what the region's agent records say: its health
// record, and the free capacity its live agent reports (once it has
// reported: a session that has just connected says nothing yet).
func agentState(tx *memdb.Txn, key string, st *router.RegionState) {
	if h := healthTxn(tx, key); h != nil {
		st.Health, st.HealthRev = h.H, h.Rev
	}
	l := liveTxn(tx, key)
	st.AgentLive = l != nil
	if l != nil && !l.V.ReportedAt.IsZero() {
		free := l.V.Free
		st.Reported = &free
	}
}
