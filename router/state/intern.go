package state

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// The cache holds many placements that say the same things: a handful of
// tenants, a few dozen region keys, a few workload shapes and banners.
// Interning keeps one copy of each, shared by every cached placement
// that holds it, and keeps the label parsed once per distinct banner
// instead of once per placement. Cached objects are never modified (see
// schema.go), so sharing is safe; what a placement shares is what it
// would hold equal copies of, so decisions cannot tell the difference
// (TestInternSameDecisions).
//
// The tables are bounded: one that reaches its bound is dropped and
// started again, so that a stream of distinct values (workload names,
// say) costs a bounded table, not a growing one; placements interned
// before keep what they hold.

// internTable is one generation of one kind of interned value.
type internTable[V any] struct {
	m sync.Map // string -> V
	n atomic.Int64
}

// interned is a bounded, concurrency-safe table of values by key.
type interned[V any] struct {
	max int64
	cur atomic.Pointer[internTable[V]]
}

func newInterned[V any](max int64) *interned[V] {
	t := &interned[V]{max: max}
	t.cur.Store(new(internTable[V]))
	return t
}

// get returns the value held for key, or stores and returns make(key).
func (t *interned[V]) get(key string, make func(string) V) V {
	tab := t.cur.Load()
	if v, ok := tab.m.Load(key); ok {
		return v.(V)
	}
	v := make(key)
	if got, loaded := tab.m.LoadOrStore(key, v); loaded {
		return got.(V)
	}
	if tab.n.Add(1) >= t.max {
		t.cur.CompareAndSwap(tab, new(internTable[V]))
	}
	return v
}

// interner is the interning of the placements the cache holds.
type interner struct {
	strs   *interned[string]
	lists  *interned[[]string]
	labels *interned[parsedLabel] // US banners
	// markings are the labels of other schemes, keyed by scheme and
	// marking: a table of their own, so no US banner finds one.
	markings *interned[parsedLabel]
}

type parsedLabel struct {
	l  label.Label
	m  marking.Label // a label of another scheme than the US
	ok bool
}

// Bounds of the intern tables: far above what a real estate holds
// (tenants, regions, shapes), small enough to be noise in memory.
const (
	internMaxStrings = 1 << 16
	internMaxLists   = 1 << 14
	internMaxLabels  = 1 << 12
)

// intern is the interner of every store in the process: what it holds is
// immutable and keyed by its content, so stores may share it.
var intern = &interner{
	strs:   newInterned[string](internMaxStrings),
	lists:  newInterned[[]string](internMaxLists),
	labels: newInterned[parsedLabel](internMaxLabels),

	markings: newInterned[parsedLabel](internMaxLabels),
}

// str returns the interned copy of s.
func (in *interner) str(s string) string {
	if s == "" {
		return ""
	}
	return in.strs.get(s, strings.Clone)
}

// list returns an interned slice equal to l (nil for an empty one). The
// slice is shared: never modify it.
func (in *interner) list(l []string) []string {
	if len(l) == 0 {
		return l
	}
	key := strings.Join(l, "\x00")
	return in.lists.get(key, func(string) []string {
		c := make([]string, len(l))
		for i, s := range l {
			c[i] = in.str(s)
		}
		return c
	})
}

// label returns the label banner parses to, parsed once per distinct
// banner, and whether it parses.
func (in *interner) label(banner string) (label.Label, bool) {
	pl := in.labels.get(banner, func(b string) parsedLabel {
		l, err := label.Parse(b)
		return parsedLabel{l: l, ok: err == nil}
	})
	return pl.l, pl.ok
}

// setLabel sets w's parsed label from its banner and scheme, parsed once
// per distinct pair; it reports whether the banner parses. A record with
// no scheme is US: every record before schemes was.
func (in *interner) setLabel(w *router.Workload) bool {
	if w.Banner == "" {
		return false
	}
	if !w.Foreign() {
		l, ok := in.label(w.Banner)
		if ok {
			w.Label = l
		}
		return ok
	}
	scheme := w.Scheme
	pl := in.markings.get(string(scheme)+"\x00"+w.Banner, func(string) parsedLabel {
		m, err := marking.Parse(scheme, w.Banner)
		return parsedLabel{m: m, ok: err == nil}
	})
	if pl.ok {
		w.Marking = pl.m
	}
	return pl.ok
}

// workload interns w's strings and lists in place. w must not be shared
// yet.
func (in *interner) workload(w *router.Workload) {
	w.Name = in.str(w.Name)
	w.Tenant = in.str(w.Tenant)
	w.Banner = in.str(w.Banner)
	w.StorageTier = in.str(w.StorageTier)
	w.AllowedCountries = in.list(w.AllowedCountries)
	w.AllowedJurisdictions = in.list(w.AllowedJurisdictions)
	w.Capabilities = in.list(w.Capabilities)
	w.Preferences.Providers = in.list(w.Preferences.Providers)
}

// placement interns p's strings in place (its regions, tenant and
// workload). p must not be shared yet.
func (in *interner) placement(p *router.Placement) {
	p.Tenant = in.str(p.Tenant)
	in.workload(&p.Workload)
	for i, r := range p.Regions {
		p.Regions[i] = in.str(r)
	}
	for i := range p.Retiring {
		p.Retiring[i].Region = in.str(p.Retiring[i].Region)
		p.Retiring[i].MovedTo = in.str(p.Retiring[i].MovedTo)
	}
	for i := range p.Issues {
		p.Issues[i].Region = in.str(p.Issues[i].Region)
	}
}

// internedCopy returns a copy of p, a placement this store wrote, with
// its strings interned and its label the one shared by its banner (the
// label a decode of the record would give: the banner is the label's
// canonical form, and parsing it gives the label back). p itself is
// left alone: the Place call that made it still returns it.
func internedCopy(p *router.Placement) *router.Placement {
	c := *p
	c.Regions = slices.Clone(p.Regions)
	c.Retiring = slices.Clone(p.Retiring)
	c.Issues = slices.Clone(p.Issues)
	intern.placement(&c)
	intern.setLabel(&c.Workload)
	return &c
}
