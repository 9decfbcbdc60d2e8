package router

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
)

// Engine decides placements. It holds no state between decisions: each
// reads an immutable Input and returns a Decision; committing it is
// someone else's job. An Engine is safe for concurrent use.
type Engine struct {
	checkers    []checker
	searchLimit int
	pool        sync.Pool // *scratch
}

// Option configures an Engine.
type Option func(*Engine)

// WithSearchLimit bounds the spread search to n candidate checks
// (default DefaultSearchLimit). Values below 1 keep the default.
func WithSearchLimit(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.searchLimit = n
		}
	}
}

// NewEngine returns an engine whose eligibility chain runs, for every
// region, these rules in this order, cheapest first (field compares, then
// a little arithmetic, then scans of short lists); within a cost class the
// lasting security rules come before the transient operational ones, so
// that a region's first reason is the most telling:
//
//  0. scheme          a label of another scheme than the US maps into
//     the scheme of an accreditation in force, through an equivalence
//     entry in force when the schemes differ                          (ReasonNoEquivalence)
//  1. level           accredited level ≥ label level; for another
//     scheme's label, one accreditation holds it whole (Cover)         (ReasonLevel)
//  2. network-domain  the network domain can carry the level          (ReasonNetworkDomain)
//  3. personnel       screening for the level, SCI or export control;
//     export-controlled data: operators are US persons only           (ReasonPersonnel)
//  4. health          the region is active                            (ReasonHealth)
//  5. accreditation   not revoked, and Now is before it expires       (ReasonAccreditation)
//  6. authorization   DoD impact level and FedRAMP baseline, unless
//     accredited for classified data                                  (ReasonAuthorization)
//  7. capacity        one replica fits the free capacity              (ReasonCapacity)
//  8. residency       data rests in an allowed country; export-
//     controlled data rests in the USA                                (ReasonResidency)
//  9. jurisdiction    the operator's jurisdiction is allowed          (ReasonJurisdiction)
//  10. releasability  every operator nationality is releasable        (ReasonReleasability)
//  11. customer       the region may serve the tenant                 (ReasonCustomer)
//  12. policy         the tenant's policy: accredited no higher than
//     its ceiling; its allowed/denied regions and providers          (ReasonPolicy)
//  13. controls       accredited for every control of the label       (ReasonControls)
//  14. capability     every capability and the storage tier offered   (ReasonCapability)
//  15. dependency     every declared dependency is a legal flow from
//     the region to its target, by the rule or through an edge in
//     force (router/flow)                                              (ReasonDependency)
//
// Place stops at a region's first failing rule; Plan runs them all and
// reports every failure. No option removes or weakens a rule.
func NewEngine(opts ...Option) *Engine {
	e := &Engine{
		checkers: []checker{
			schemeChecker{},
			levelChecker{},
			networkDomainChecker{},
			personnelChecker{},
			healthChecker{},
			accreditationChecker{},
			authorizationChecker{},
			capacityChecker{},
			residencyChecker{},
			jurisdictionChecker{},
			releasabilityChecker{},
			customerChecker{},
			policyChecker{},
			controlsChecker{},
			capabilityChecker{},
			dependencyChecker{},
		},
		searchLimit: DefaultSearchLimit,
	}
	// Place runs this chain through firstFailureDirect, which makes the
	// same calls in the same order without interface dispatch.
	for _, o := range opts {
		o(e)
	}
	n := len(e.checkers)
	e.pool.New = func() any { return &scratch{first: make([]int, n+1)} }
	return e
}

// scratch holds the buffers of one decision; they are pooled so that a
// decision does not allocate per region.
type scratch struct {
	want   want
	cands  []cand
	ranked []cand // the sorted prefix of a lazy ranking
	rank   ranking
	// first[i] counts the regions whose first failed rule is checker i;
	// first[len(checkers)] counts RegionStates with no Region record.
	first []int
	// known counts the regions the tenant may know of (see hidden):
	// the only regions any figure of the decision counts.
	known  int
	search spreadSearch
	provs  []string
	order  []int
}

func (e *Engine) get() *scratch {
	s := e.pool.Get().(*scratch)
	s.cands = s.cands[:0]
	clear(s.first)
	s.known = 0
	s.provs = s.provs[:0]
	s.order = s.order[:0]
	return s
}

func (e *Engine) put(s *scratch) {
	// Drop the pointers into the Input.
	clear(s.cands)
	clear(s.ranked[:cap(s.ranked)])
	s.rank = ranking{}
	s.search.rank = nil
	s.want = want{}
	e.pool.Put(s)
}

// A decision for a tenant is made among the regions the tenant may know
// of: those accredited no higher than its ceiling that serve it (its
// customer patterns), the regions Tenant.MayKnow names to its users. No
// other region can be eligible for it (the customer and policy rules
// fail them), so leaving them out changes no choice; it keeps them out
// of every figure a refusal gives: the count of regions, the summary of
// first failed rules, and the work done, which would otherwise move
// when a region the tenant may not know of is added, fills up, or
// changes. Place skips them; Plan gives each a verdict with the rules
// that hide it (customer, policy), for administrators, and the edge
// redacts those verdicts for the tenant's users. With no tenant (nil),
// no region is hidden: every region fails the customer rule instead.
//
// Place decides where in.Workload's replicas run, as fast as it can: a
// region is dropped at its first failing rule, messages are not
// formatted and Verdicts is nil. Chosen and Scores are set, or Err is.
//
// Err wraps ErrNoEligibleRegion when fewer regions are eligible than
// there are replicas (with a count of regions per first failed rule),
// or ErrSpreadUnsatisfiable when enough are eligible but no set of them
// satisfies the spread rules. A refusal never falls back to a weaker region.
func (e *Engine) Place(in Input) Decision {
	if err := checkInput(&in); err != nil {
		return Decision{Err: err}
	}
	s := e.get()
	defer e.put(s)
	s.want = newWant(&in) // in the scratch: a local would escape to the heap
	w := &s.want
	for i := range in.Regions {
		r := &in.Regions[i]
		if r.Region == nil {
			s.known++
			s.first[len(e.checkers)]++
			continue
		}
		if hidden(w, r) {
			continue
		}
		s.known++
		if j := firstFailureDirect(w, r); j >= 0 {
			s.first[j]++
			continue
		}
		s.cands = append(s.cands, cand{idx: i, r: r.Region})
	}
	var d Decision
	if d.Err = e.choose(&in, s, false); d.Err == nil {
		d.Chosen, d.Scores = chosen(s)
	}
	return d
}

// firstFailure returns the index in e.checkers of the first rule r
// fails, or -1.
func (e *Engine) firstFailure(w *want, r *RegionState) int {
	for j, c := range e.checkers {
		if !c.Check(w, r) {
			return j
		}
	}
	return -1
}

// firstFailureDirect is firstFailure for the chain NewEngine wires, with
// each Check called on its concrete type so that the compiler inlines
// it: through the interface, dispatch cost Place as much as the checks
// themselves. It must list the rules in NewEngine's order;
// TestFirstFailureDirect holds the two together.
func firstFailureDirect(w *want, r *RegionState) int {
	switch {
	case !(schemeChecker{}).Check(w, r):
		return 0
	case !(levelChecker{}).Check(w, r):
		return 1
	case !(networkDomainChecker{}).Check(w, r):
		return 2
	case !(personnelChecker{}).Check(w, r):
		return 3
	case !(healthChecker{}).Check(w, r):
		return 4
	case !(accreditationChecker{}).Check(w, r):
		return 5
	case !(authorizationChecker{}).Check(w, r):
		return 6
	case !(capacityChecker{}).Check(w, r):
		return 7
	case !(residencyChecker{}).Check(w, r):
		return 8
	case !(jurisdictionChecker{}).Check(w, r):
		return 9
	case !(releasabilityChecker{}).Check(w, r):
		return 10
	case !(customerChecker{}).Check(w, r):
		return 11
	case !(policyChecker{}).Check(w, r):
		return 12
	case !(controlsChecker{}).Check(w, r):
		return 13
	case !(capabilityChecker{}).Check(w, r):
		return 14
	case !(dependencyChecker{}).Check(w, r):
		return 15
	}
	return -1
}

// Plan decides as Place does and explains: Verdicts holds every region,
// with every failing rule of an ineligible region and the score of an
// eligible one, ordered chosen first (in replica order), then the other
// eligible by score (ties by key), then the ineligible by key.
func (e *Engine) Plan(in Input) Decision {
	if err := checkInput(&in); err != nil {
		return Decision{Err: err}
	}
	s := e.get()
	defer e.put(s)
	s.want = newWant(&in)
	w := &s.want
	byIndex := make([]Verdict, len(in.Regions))
	for i := range in.Regions {
		r := &in.Regions[i]
		v := &byIndex[i]
		v.Index = i
		if r.Region == nil {
			s.known++
			s.first[len(e.checkers)]++
			v.Reasons = []Reason{{Code: ReasonHealth, Message: "no region record"}}
			continue
		}
		if hidden(w, r) {
			v.Reasons = hiddenReasons(w, r)
			continue
		}
		s.known++
		first := -1
		for j, c := range e.checkers {
			if !c.Check(w, r) {
				if first < 0 {
					first = j
				}
				v.Reasons = append(v.Reasons, reasonsOf(c, w, r)...)
			}
		}
		if first >= 0 {
			s.first[first]++
			continue
		}
		v.Eligible = true
		s.cands = append(s.cands, cand{idx: i, r: r.Region})
	}
	var d Decision
	if d.Err = e.choose(&in, s, true); d.Err == nil {
		d.Chosen, d.Scores = chosen(s)
	}

	// s.cands is now sorted best first.
	d.Verdicts = make([]Verdict, 0, len(byIndex))
	for _, c := range s.cands {
		byIndex[c.idx].Score = c.score
	}
	for _, i := range d.Chosen {
		byIndex[i].Chosen = true
		d.Verdicts = append(d.Verdicts, byIndex[i])
	}
	for _, c := range s.cands {
		if !byIndex[c.idx].Chosen {
			d.Verdicts = append(d.Verdicts, byIndex[c.idx])
		}
	}
	for i := range byIndex {
		if !byIndex[i].Eligible {
			s.order = append(s.order, i)
		}
	}
	slices.SortFunc(s.order, func(a, b int) int {
		ra, rb := in.Regions[a].Region, in.Regions[b].Region
		switch {
		case ra == nil && rb == nil:
			return a - b
		case ra == nil:
			return -1
		case rb == nil:
			return 1
		}
		if c := compareKeys(ra, rb); c != 0 {
			return c
		}
		return a - b
	})
	for _, i := range s.order {
		d.Verdicts = append(d.Verdicts, byIndex[i])
	}
	return d
}

// hidden reports whether region r is one w's tenant may not know of:
// accredited above the tenant's ceiling, or serving other tenants only.
// It checks what the policy rule's level part and the customer rule
// check, and no more, so it hides only regions those rules would fail.
func hidden(w *want, r *RegionState) bool {
	t := w.tenant
	if t == nil {
		return false
	}
	if t.Ceiling != "" && r.Region.Accreditation.MaxLevel > t.CeilingLabel.Level {
		return true
	}
	return !(customerChecker{}).Check(w, r)
}

// hiddenReasons explains a hidden region with the rules that hide it.
func hiddenReasons(w *want, r *RegionState) []Reason {
	var out []Reason
	if c := (customerChecker{}); !c.Check(w, r) {
		out = append(out, c.Explain(w, r))
	}
	if c := (policyChecker{}); !c.Check(w, r) {
		out = append(out, c.Explain(w, r))
	}
	return out
}

// checkInput refuses input no decision can be trusted on, even from an
// in-process caller that skipped validation: the engine fails closed.
func checkInput(in *Input) error {
	var v Violations
	if in.Workload == nil {
		v.Add("workload", "missing")
		return v.Err()
	}
	if in.Now.IsZero() {
		v.Add("now", "required: accreditation expiry is judged against it")
	}
	if d := in.Workload.Spread.MinDistanceKm; !(d >= 0) || math.IsInf(d, 0) {
		v.Add("workload.spread.min_distance_km", "must be a finite number >= 0, got %v", d)
	}
	return v.Err()
}

// choose scores and ranks the eligible regions in s.cands and picks the
// replicas' regions into s.search.pick, or says why it cannot. With
// sortAll it sorts s.cands best first; otherwise it ranks them only as
// far as the spread search looks.
func (e *Engine) choose(in *Input, s *scratch, sortAll bool) error {
	wl := in.Workload
	need := max(wl.Replicas, 1)
	if len(s.cands) == 0 {
		if s.known == 0 && in.Tenant != nil {
			// Worded the same however many regions are hidden.
			return fmt.Errorf("%w: no region serves tenant %s within its ceiling", ErrNoEligibleRegion, in.Tenant.ID)
		}
		return fmt.Errorf("%w among %d regions: %s", ErrNoEligibleRegion, s.known, e.summary(s.first))
	}

	sc := newScorer(wl)
	sc.setCosts(s.cands)
	for i := range s.cands {
		s.cands[i].score = sc.score(&in.Regions[s.cands[i].idx])
	}
	lazy := !sortAll && len(s.cands) >= need
	if lazy {
		s.rank.lazy(s.cands, s.ranked)
	} else {
		s.rank.full(s.cands)
	}

	if len(s.cands) < need {
		keys := make([]string, len(s.cands))
		for i, c := range s.cands {
			keys[i] = c.r.Key()
		}
		var others string
		if sum := e.summary(s.first); sum != "" {
			others = "; the others: " + sum
		}
		return fmt.Errorf("%w: %d replicas need %d distinct regions; only %d of %d regions eligible (%s)%s",
			ErrNoEligibleRegion, need, need, len(s.cands), s.known, strings.Join(keys, ", "), others)
	}

	sr := &s.search
	*sr = spreadSearch{
		rank:     &s.rank,
		need:     need,
		minDist:  wl.Spread.MinDistanceKm,
		distinct: wl.Spread.DistinctProviders,
		limit:    e.searchLimit,
		pick:     sr.pick[:0],
	}
	if sr.distinct && need > 1 {
		s.provs = providers(s.provs[:0], s.cands, need)
		if len(s.provs) < need {
			return sr.spreadError(s.provs)
		}
	}
	ok := sr.run()
	if lazy {
		s.ranked = s.rank.sorted[:0] // keep the grown buffer for the next decision
	}
	if !ok {
		return sr.spreadError(s.provs)
	}
	return nil
}

// chosen copies the picked regions' indexes and scores out of the scratch.
func chosen(s *scratch) ([]int, []float64) {
	idx := make([]int, len(s.search.pick))
	scores := make([]float64, len(s.search.pick))
	for i, p := range s.search.pick {
		c := s.rank.at(p)
		idx[i], scores[i] = c.idx, c.score
	}
	return idx, scores
}

// summary names how many regions failed first at each rule, most first
// (ties in chain order): "residency 29, level 2".
func (e *Engine) summary(first []int) string {
	type entry struct {
		code ReasonCode
		n    int
	}
	var es []entry
	for i, n := range first {
		if n == 0 {
			continue
		}
		code := ReasonHealth // a RegionState without a Region record
		if i < len(e.checkers) {
			code = e.checkers[i].Code()
		}
		es = append(es, entry{code, n})
	}
	slices.SortStableFunc(es, func(a, b entry) int { return b.n - a.n })
	parts := make([]string, len(es))
	for i, x := range es {
		parts[i] = fmt.Sprintf("%s %d", x.code, x.n)
	}
	return strings.Join(parts, ", ")
}

// Explain returns the Decision's verdicts by region key, in the
// Decision's order. in must be the Input the Decision was made from. A
// Place decision has no verdicts, so its explanation is empty.
func (d *Decision) Explain(in *Input) []Explained {
	out := make([]Explained, len(d.Verdicts))
	var w want
	if in.Workload != nil && len(in.Workload.Dependencies) > 0 {
		w = newWant(in)
	}
	for i, v := range d.Verdicts {
		var key string
		if r := in.Regions[v.Index].Region; r != nil {
			key = r.Key()
		}
		out[i] = Explained{Key: key, Eligible: v.Eligible, Chosen: v.Chosen, Score: v.Score, Reasons: v.Reasons}
		if v.Eligible && len(w.deps) > 0 {
			out[i].Flows = w.flowsVia(in.Regions[v.Index].Region)
		}
		if v.Eligible && in.Workload.Foreign() {
			out[i].Via = CoverRegion(in.Workload.Marking, in.Regions[v.Index].Region, in.Tenant, in.Equivalence, in.Now).Via
		}
	}
	return out
}
