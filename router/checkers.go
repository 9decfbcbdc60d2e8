package router

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// checker is one eligibility rule (DOMAIN.md §0, eligibility 1–9).
//
// Check is the fast path: it runs for every region in Place and Plan,
// must not allocate and must not format. Explain runs only in Plan, only
// after Check has failed, and says in words why, naming the offending
// value. A checker reads the workload's derived requirements from want,
// computed once per decision, and never modifies the region.
type checker interface {
	Code() ReasonCode
	Check(w *want, r *RegionState) bool
	Explain(w *want, r *RegionState) Reason
}

// reasonsOf is every reason c gives for refusing r: one, or one per
// code for a rule that checks several things with codes of their own
// (dependencyChecker).
func reasonsOf(c checker, w *want, r *RegionState) []Reason {
	if m, ok := c.(interface {
		ExplainAll(w *want, r *RegionState) []Reason
	}); ok {
		return m.ExplainAll(w, r)
	}
	return []Reason{c.Explain(w, r)}
}

// want is what a workload requires of a region, derived once per decision
// from the workload, its label and its tenant, so that the checkers only
// compare. Its slices alias the input; nothing here is modified.
type want struct {
	// foreign is the label of a workload of another scheme than the US,
	// nil for a US label. Then level, controls and the rules of US
	// levels do not apply: the label is read into each accreditation of
	// a region through equiv (schemeChecker, levelChecker).
	foreign *marking.Label
	equiv   equiv.Table

	level     label.Level
	controls  []string // label controls, each must be accredited
	anyNation bool     // label carries no foreign-disclosure restriction
	nations   []string // label releasability when !anyNation
	// ownOnly: a classified label of another scheme whose marking names
	// no releasability, so nations is its originator's alone.
	ownOnly bool

	personnel Personnel // least screening of the operators
	// exportControlled: ITAR, EAR or CUI//SP-EXPT. The operators must be
	// US persons (nationalities exactly {USA}) and the data must rest in
	// the USA: storing it abroad is an export.
	exportControlled bool
	exportWhy        string // "ITAR", "EAR" or "CUI//SP-EXPT", for messages
	sci              bool   // the label carries an SCI control

	anyCountry    bool // AllowedCountries is the single entry "*"
	countries     []string
	jurisdictions []string // empty: any jurisdiction

	tenant *Tenant // nil matches no customer pattern (fail closed)

	// minIL and minFedRAMP are the least DoD impact level and FedRAMP
	// baseline an unclassified region must hold: the workload's own,
	// raised for US tenants' unclassified and CUI data (see newWant).
	minIL      int
	minFedRAMP FedRAMP

	caps []string
	tier string

	res Resources // per replica
	now time.Time

	// deps are the workload's dependencies as the input resolves them;
	// depLabel its label in its scheme and depExport its declared export
	// control, as router/flow reads them; edges decides flows through the
	// input's edges (dependencyChecker).
	deps      []wantDep
	depLabel  marking.Label
	depExport string
	depEquiv  equiv.Table
	edges     *flow.Checker
	// edgeEnds are the regions edges name as endpoints; depMemo[i]
	// caches, per network domain, whether dependency i is legal from a
	// region that is on it, not air-gapped and named by no edge: from
	// such a region a flow's outcome depends on its domain alone
	// (dependencyChecker.Check; 0 unknown, 1 legal, 2 not).
	edgeEnds map[string]map[string]bool // provider → id → named
	depMemo  [][numDomains]uint8
}

// newWant derives the requirements of in.Workload, once per decision.
// It does not allocate.
func newWant(in *Input) want {
	wl := in.Workload
	l := &wl.Label
	w := want{
		level:         l.Level,
		controls:      l.Controls,
		anyNation:     l.AnyNation,
		nations:       l.Nations,
		anyCountry:    len(wl.AllowedCountries) == 1 && wl.AllowedCountries[0] == "*",
		countries:     wl.AllowedCountries,
		jurisdictions: wl.AllowedJurisdictions,
		tenant:        in.Tenant,
		caps:          wl.Capabilities,
		tier:          wl.StorageTier,
		res:           wl.Resources,
		now:           in.Now,
	}
	if len(wl.Dependencies) > 0 {
		w.deps, w.depLabel, w.depExport, w.edges = dependencies(in), workloadMarking(wl), exportName(wl.ExportControl), flow.NewChecker(in.Edges, in.Now)
		w.depEquiv = in.Equivalence
		w.depMemo = make([][numDomains]uint8, len(w.deps))
		for i := range in.Edges {
			for _, end := range [...]string{in.Edges[i].From, in.Edges[i].To} {
				if prov, id, ok := strings.Cut(end, "/"); ok {
					if w.edgeEnds == nil {
						w.edgeEnds = map[string]map[string]bool{}
					}
					if w.edgeEnds[prov] == nil {
						w.edgeEnds[prov] = map[string]bool{}
					}
					w.edgeEnds[prov][id] = true
				}
			}
		}
	}
	if wl.Foreign() {
		w = w.foreignWant(in)
		w.reachDeps()
		return w
	}
	switch {
	case wl.ExportControl == ExportITAR:
		w.exportControlled, w.exportWhy = true, "ITAR"
	case wl.ExportControl == ExportEAR:
		w.exportControlled, w.exportWhy = true, "EAR"
	case l.ExportControlled():
		w.exportControlled, w.exportWhy = true, "CUI//"+label.ExportCategory
	}
	w.sci = l.RequiresSCI()

	// Authorisations US tenants need without asking (DOMAIN.md §2, §3):
	// DoD data needs IL2 when unclassified and IL4 when CUI; federal CUI
	// needs FedRAMP Moderate (32 CFR 2002.14).
	w.minIL, w.minFedRAMP = wl.MinImpactLevel, wl.MinFedRAMP
	if t := in.Tenant; t != nil && t.Nation == label.USA {
		if t.Sector == "defense" {
			switch l.Level {
			case label.Unclassified:
				w.minIL = max(w.minIL, 2)
			case label.CUI:
				w.minIL = max(w.minIL, 4)
			}
		}
		if l.Level == label.CUI {
			w.minFedRAMP = max(w.minFedRAMP, FedRAMPModerate)
		}
	}
	if w.exportControlled {
		w.personnel = PersonnelScreenedUSPersons
	}
	if l.Level >= label.Confidential {
		w.personnel = max(w.personnel, PersonnelClearedSecret)
	}
	if l.Level >= label.TopSecret || w.sci {
		w.personnel = PersonnelClearedTopSecret
	}
	w.reachDeps()
	return w
}

// foreignWant completes w for a label of another scheme than the US: its
// releasability is the marking's; the level and controls are checked by
// reading it into the region's accreditations (schemeChecker,
// levelChecker), never as a US label. Export control comes from the
// workload; the US-tenant defaults of US levels do not apply.
func (w want) foreignWant(in *Input) want {
	wl := in.Workload
	l := &wl.Marking
	w.foreign, w.equiv = l, in.Equivalence
	w.level, w.controls = label.Unclassified, nil
	w.anyNation, w.nations = l.AnyNation, l.Nations
	if l.AnyNation && l.NationalSecurity() {
		// Classified information whose marking names no releasability
		// is its originator's nationals' only, as US classified data
		// without REL TO is US-only: an equivalence entry says how
		// another scheme's region must protect it, not who may see it.
		w.anyNation, w.nations, w.ownOnly = false, originNations(l), true
	}
	switch wl.ExportControl {
	case ExportITAR:
		w.exportControlled, w.exportWhy = true, "ITAR"
	case ExportEAR:
		w.exportControlled, w.exportWhy = true, "EAR"
	}
	if w.exportControlled {
		w.personnel = PersonnelScreenedUSPersons
	}
	w.minIL, w.minFedRAMP = wl.MinImpactLevel, wl.MinFedRAMP
	return w
}

// originNations is the releasability of a classified label of another
// scheme whose marking names none: its originating nation's nationals.
var originNationsOf = map[marking.Scheme][]string{
	marking.GBR: {"GBR"}, marking.AUS: {"AUS"}, marking.CAN: {"CAN"}, marking.NZL: {"NZL"}, marking.KEN: {"KEN"},
}

func originNations(l *marking.Label) []string {
	return originNationsOf[l.Scheme] // nil (no nation at all) for any other: fail closed
}

// contains reports whether list holds s. Lists here are short; a linear
// scan beats a map and does not allocate.
func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// usOnly reports whether the operator nationalities are exactly {USA}.
func usOnly(nats []string) bool {
	if len(nats) == 0 {
		return false
	}
	for _, n := range nats {
		if n != label.USA {
			return false
		}
	}
	return true
}

// missing returns the entries of need not in have, for messages.
func missing(need, have []string) []string {
	var out []string
	for _, s := range need {
		if !contains(have, s) {
			out = append(out, s)
		}
	}
	return out
}

// list formats a set for a message; "none" when empty.
func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// nationList formats releasable nations as a REL TO list does: USA
// first, then the others in order.
func nationList(nations []string) string {
	if len(nations) == 0 {
		return "no nation"
	}
	out := make([]string, 0, len(nations))
	if contains(nations, label.USA) {
		out = append(out, label.USA)
	}
	for _, n := range nations {
		if n != label.USA {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// schemeChecker: a label of another scheme than the US maps, through an
// equivalence entry in force when the schemes differ, into the scheme of
// at least one accreditation of the region in force (rule 0). A US label
// passes: the US accreditation is of its scheme.
type schemeChecker struct{}

func (schemeChecker) Code() ReasonCode { return ReasonNoEquivalence }

func (schemeChecker) Check(w *want, r *RegionState) bool {
	return w.foreign == nil || mapsInto(w, r.Region)
}

// mapsInto reports whether w's foreign label maps into the scheme of an
// accreditation of reg in force.
func mapsInto(w *want, reg *Region) bool {
	for i := range reg.Accreditations {
		a := &reg.Accreditations[i]
		if w.tenant.KnowsAccreditation(a) && !a.Revoked && w.now.Before(a.Expires) && w.equiv.Map(marking.Parser{}, *w.foreign, a.Scheme, w.now).OK() {
			return true
		}
	}
	a := &reg.Accreditation
	return !a.Revoked && w.now.Before(a.Expires) && w.equiv.Map(marking.Parser{}, *w.foreign, marking.US, w.now).OK()
}

func (schemeChecker) Explain(w *want, r *RegionState) Reason {
	return coverageReason(ReasonNoEquivalence, w.foreign.Scheme, CoverRegion(*w.foreign, r.Region, w.tenant, w.equiv, w.now).Reasons)
}

// coverageReason joins the reasons each accreditation gave into one of
// code, with the equivalence pairs they name.
func coverageReason(code ReasonCode, scheme marking.Scheme, rs []Reason) Reason {
	out := Reason{Code: code, Scheme: scheme}
	msgs := make([]string, len(rs))
	for i, r := range rs {
		msgs[i] = r.Message
		for _, e := range r.Equivalence {
			if !slices.Contains(out.Equivalence, e) {
				out.Equivalence = append(out.Equivalence, e)
			}
		}
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}

// levelChecker: the region is accredited to at least the label's level
// (rule 1). A label of another scheme needs one accreditation that holds
// it whole: its level as mapped, on the same axis, and its caveats
// (Cover); a region none of whose accreditations it maps into is the
// schemeChecker's to refuse.
type levelChecker struct{}

func (levelChecker) Code() ReasonCode { return ReasonLevel }

func (levelChecker) Check(w *want, r *RegionState) bool {
	if w.foreign != nil {
		return covers(w.foreign, r.Region, w.tenant, w.equiv, w.now) || !mapsInto(w, r.Region)
	}
	return r.Region.Accreditation.MaxLevel >= w.level
}

func (levelChecker) Explain(w *want, r *RegionState) Reason {
	if w.foreign != nil {
		var held []Reason
		code := ReasonCode("")
		for _, x := range CoverRegion(*w.foreign, r.Region, w.tenant, w.equiv, w.now).Reasons {
			if x.Code == ReasonNoEquivalence || x.Code == ReasonAccreditation {
				continue
			}
			if code == "" {
				code = x.Code
			}
			held = append(held, x)
		}
		return coverageReason(code, w.foreign.Scheme, held)
	}
	return Reason{Code: ReasonLevel, Message: fmt.Sprintf("accredited to %s; label is %s", r.Region.Accreditation.MaxLevel, w.level)}
}

// networkDomainChecker: the region's network domain can carry the level (rule 7).
type networkDomainChecker struct{}

func (networkDomainChecker) Code() ReasonCode { return ReasonNetworkDomain }

func (networkDomainChecker) Check(w *want, r *RegionState) bool {
	return r.Region.NetworkDomain.Ceiling() >= w.level
}

func (networkDomainChecker) Explain(w *want, r *RegionState) Reason {
	return Reason{Code: ReasonNetworkDomain, Message: fmt.Sprintf("%s cannot carry %s", r.Region.NetworkDomain, w.level)}
}

// personnelChecker: the operators are screened for the label and, for
// export-controlled data, are US persons only (rule 4).
type personnelChecker struct{}

func (personnelChecker) Code() ReasonCode { return ReasonPersonnel }

func (personnelChecker) Check(w *want, r *RegionState) bool {
	return r.Region.Personnel >= w.personnel && (!w.exportControlled || usOnly(r.Region.OperatorNationalities))
}

func (personnelChecker) Explain(w *want, r *RegionState) Reason {
	var parts []string
	if r.Region.Personnel < w.personnel {
		why := w.level.String()
		switch {
		case w.personnel == PersonnelClearedTopSecret && w.sci && w.level < label.TopSecret:
			why = "SCI"
		case w.personnel == PersonnelScreenedUSPersons:
			why = w.exportWhy + " data"
		}
		parts = append(parts, fmt.Sprintf("personnel %s; %s requires %s", r.Region.Personnel, why, w.personnel))
	}
	if w.exportControlled && !usOnly(r.Region.OperatorNationalities) {
		parts = append(parts, fmt.Sprintf("operated by %s nationals; %s data requires US persons only",
			list(r.Region.OperatorNationalities), w.exportWhy))
	}
	return Reason{Code: ReasonPersonnel, Message: strings.Join(parts, "; ")}
}

// healthChecker: the region is active, not draining, unhealthy or
// offline, and its agent, if it has one, says it is healthy (rule 9).
type healthChecker struct{}

func (healthChecker) Code() ReasonCode { return ReasonHealth }

func (healthChecker) Check(_ *want, r *RegionState) bool {
	return r.Region.Status == StatusActive && (r.Health == nil || r.Health.Healthy)
}

func (healthChecker) Explain(_ *want, r *RegionState) Reason {
	if r.Region.Status != StatusActive {
		return Reason{Code: ReasonHealth, Message: fmt.Sprintf("region is %s", r.Region.Status)}
	}
	h := r.Health
	msg := "region agent reports unhealthy"
	if h.Reason != "" {
		msg = "region unhealthy: " + h.Reason
	}
	if !h.Since.IsZero() {
		msg += " (since " + h.Since.UTC().Format(time.RFC3339) + ")"
	}
	return Reason{Code: ReasonHealth, Message: msg}
}

// accreditationChecker: the accreditation is in force: not revoked, and
// the decision's Now is before it expires (rule 1).
type accreditationChecker struct{}

func (accreditationChecker) Code() ReasonCode { return ReasonAccreditation }

func (accreditationChecker) Check(w *want, r *RegionState) bool {
	a := &r.Region.Accreditation
	// A foreign label reads each accreditation's force itself: a region
	// whose US accreditation lapsed may still hold it under another.
	return w.foreign != nil || (!a.Revoked && w.now.Before(a.Expires))
}

func (accreditationChecker) Explain(w *want, r *RegionState) Reason {
	a := &r.Region.Accreditation
	var parts []string
	if a.Revoked {
		parts = append(parts, "accreditation revoked")
	}
	switch {
	case a.Expires.IsZero():
		parts = append(parts, "accreditation has no expiry date")
	case !w.now.Before(a.Expires):
		parts = append(parts, "accreditation expired "+a.Expires.UTC().Format(time.DateOnly))
	}
	return Reason{Code: ReasonAccreditation, Message: strings.Join(parts, "; ")}
}

// authorizationChecker: the region holds the DoD impact level and the
// FedRAMP baseline the workload needs (DOMAIN.md §5.1 (8)). Those
// authorisations grade unclassified clouds; a region accredited for
// classified data satisfies both, whichever nation accredited it. This is
// deliberate: DOMAIN.md's AUKUS scenario places SECRET work on any
// SECRET region operated by the partners, and the eligible set must not
// widen as a label rises, so CUI that may go to such a region at SECRET
// may go there as CUI. Releasability, residency and the region's
// customers still decide; a tenant that must stay on US soil says so in
// allowed_storage_countries.
type authorizationChecker struct{}

func (authorizationChecker) Code() ReasonCode { return ReasonAuthorization }

func (authorizationChecker) Check(w *want, r *RegionState) bool {
	a := &r.Region.Accreditation
	return a.MaxLevel >= label.Confidential || (a.ImpactLevel >= w.minIL && a.FedRAMP >= w.minFedRAMP)
}

func (authorizationChecker) Explain(w *want, r *RegionState) Reason {
	a := &r.Region.Accreditation
	var parts []string
	if a.ImpactLevel < w.minIL {
		have := "no DoD impact level"
		if a.ImpactLevel > 0 {
			have = fmt.Sprintf("impact level IL%d", a.ImpactLevel)
		}
		parts = append(parts, fmt.Sprintf("%s; workload needs IL%d", have, w.minIL))
	}
	if a.FedRAMP < w.minFedRAMP {
		parts = append(parts, fmt.Sprintf("FedRAMP %s; workload needs FedRAMP %s", a.FedRAMP, w.minFedRAMP))
	}
	return Reason{Code: ReasonAuthorization, Message: strings.Join(parts, "; ")}
}

// capacityChecker: one replica's resources fit the region's free capacity (rule 9).
type capacityChecker struct{}

func (capacityChecker) Code() ReasonCode { return ReasonCapacity }

func (capacityChecker) Check(w *want, r *RegionState) bool { return w.res.Fits(r.Free()) }

func (capacityChecker) Explain(w *want, r *RegionState) Reason {
	f := r.Free()
	return Reason{Code: ReasonCapacity, Message: fmt.Sprintf("needs %s; free %s", formatResources(w.res), formatResources(f))}
}

func formatResources(r Resources) string {
	return fmt.Sprintf("cpu %dm, memory %d MiB, gpu %d", r.MilliCPU, r.MemoryMiB, r.GPU)
}

// residencyChecker: the data would rest in an allowed country, and
// export-controlled data rests in the USA (rule 5).
type residencyChecker struct{}

func (residencyChecker) Code() ReasonCode { return ReasonResidency }

func (residencyChecker) Check(w *want, r *RegionState) bool {
	c := r.Region.Country
	return (w.anyCountry || contains(w.countries, c)) && (!w.exportControlled || c == label.USA)
}

func (residencyChecker) Explain(w *want, r *RegionState) Reason {
	c := r.Region.Country
	var parts []string
	if !w.anyCountry && !contains(w.countries, c) {
		parts = append(parts, fmt.Sprintf("data would rest in %s; allowed: %s", c, list(w.countries)))
	}
	if w.exportControlled && c != label.USA {
		parts = append(parts, fmt.Sprintf("data would rest in %s; %s data must rest in USA", c, w.exportWhy))
	}
	return Reason{Code: ReasonResidency, Message: strings.Join(parts, "; ")}
}

// jurisdictionChecker: when the workload limits operator jurisdictions,
// the region's operator is under one of them (rule 5).
type jurisdictionChecker struct{}

func (jurisdictionChecker) Code() ReasonCode { return ReasonJurisdiction }

func (jurisdictionChecker) Check(w *want, r *RegionState) bool {
	return len(w.jurisdictions) == 0 || contains(w.jurisdictions, r.Region.OperatorJurisdiction)
}

func (jurisdictionChecker) Explain(w *want, r *RegionState) Reason {
	return Reason{Code: ReasonJurisdiction, Message: fmt.Sprintf("operator under %s jurisdiction; allowed: %s",
		r.Region.OperatorJurisdiction, list(w.jurisdictions))}

}

// releasabilityChecker: every nationality operating the region is in the
// label's releasability (rule 3). Undeclared nationalities fail closed.
type releasabilityChecker struct{}

func (releasabilityChecker) Code() ReasonCode { return ReasonReleasability }

func (releasabilityChecker) Check(w *want, r *RegionState) bool {
	if w.anyNation {
		return true
	}
	nats := r.Region.OperatorNationalities
	if len(nats) == 0 {
		return false
	}
	for _, n := range nats {
		if !contains(w.nations, n) {
			return false
		}
	}
	return true
}

func (releasabilityChecker) Explain(w *want, r *RegionState) Reason {
	nats := r.Region.OperatorNationalities
	if len(nats) == 0 {
		return Reason{Code: ReasonReleasability, Message: fmt.Sprintf("operator nationalities not declared; label releasable to %s only",
			nationList(w.nations))}

	}
	why := ""
	if w.ownOnly {
		why = fmt.Sprintf(" (a classified %s label naming no releasability is its own nationals' only)", w.foreign.Scheme)
	}
	return Reason{Code: ReasonReleasability, Message: fmt.Sprintf("operated by %s nationals; label releasable to %s only%s",
		list(missing(nats, w.nations)), nationList(w.nations), why)}

}

// customerChecker: the tenant matches one of the region's customer
// patterns: "*", a nation ("USA"), or nation/sector ("USA/defense") (rule 6).
type customerChecker struct{}

func (customerChecker) Code() ReasonCode { return ReasonCustomer }

func (customerChecker) Check(w *want, r *RegionState) bool {
	t := w.tenant
	if t == nil {
		return false
	}
	for _, p := range r.Region.Customers {
		if customerMatch(p, t) {
			return true
		}
	}
	return false
}

// customerMatch matches one customer pattern without allocating.
func customerMatch(p string, t *Tenant) bool {
	if p == "*" || p == t.Nation {
		return true
	}
	n := len(t.Nation)
	return len(p) == n+1+len(t.Sector) && p[n] == '/' && p[:n] == t.Nation && p[n+1:] == t.Sector
}

func (customerChecker) Explain(w *want, r *RegionState) Reason {
	serves := "serves no tenant"
	if len(r.Region.Customers) > 0 {
		serves = "serves " + list(r.Region.Customers) + " tenants only"
	}
	if w.tenant == nil {
		return Reason{Code: ReasonCustomer, Message: serves + "; the workload's tenant is unknown"}
	}
	t := w.tenant
	return Reason{Code: ReasonCustomer, Message: fmt.Sprintf("%s; tenant %s is %s/%s", serves, t.ID, t.Nation, t.Sector)}
}

// policyChecker: the tenant's operator-set policy lets it use the
// region: the region is accredited no higher than the tenant's ceiling
// (a tenant does not run where it may not know of), and its allowed and
// denied regions and providers admit it. The policy only removes
// regions, whatever the workload asks. A tenant without a ceiling has no
// level limit here: the store refuses to decide for it at all
// (Tenant.WithinCeiling). A nil tenant passes: the customer rule fails it.
type policyChecker struct{}

func (policyChecker) Code() ReasonCode { return ReasonPolicy }

func (policyChecker) Check(w *want, r *RegionState) bool {
	t := w.tenant
	if t == nil {
		return true
	}
	return (t.Ceiling == "" || r.Region.Accreditation.MaxLevel <= t.CeilingLabel.Level) && t.MayUse(r.Region)
}

func (policyChecker) Explain(w *want, r *RegionState) Reason {
	t, reg := w.tenant, r.Region
	var parts []string
	if t.Ceiling != "" && reg.Accreditation.MaxLevel > t.CeilingLabel.Level {
		parts = append(parts, fmt.Sprintf("accredited to %s, above tenant %s's ceiling %s", reg.Accreditation.MaxLevel, t.ID, t.Ceiling))
	}
	switch {
	case len(t.AllowedProviders) > 0 && !contains(t.AllowedProviders, reg.Provider):
		// Name the region's own provider, never the allowed list: it may
		// name providers the tenant's users may not know of.
		parts = append(parts, fmt.Sprintf("provider %s is not among tenant %s's allowed providers", reg.Provider, t.ID))
	case contains(t.DeniedProviders, reg.Provider):
		parts = append(parts, fmt.Sprintf("tenant %s may not use provider %s", t.ID, reg.Provider))
	}
	switch {
	case len(t.AllowedRegions) > 0 && !containsKey(t.AllowedRegions, reg):
		parts = append(parts, fmt.Sprintf("not among tenant %s's allowed regions", t.ID))
	case containsKey(t.DeniedRegions, reg):
		parts = append(parts, fmt.Sprintf("denied to tenant %s", t.ID))
	}
	return Reason{Code: ReasonPolicy, Message: strings.Join(parts, "; ")}
}

// controlsChecker: the region is accredited for every control of the
// label: SCI, SAP, AEA and CUI categories (rule 2). Accreditation
// controls may be in any order.
type controlsChecker struct{}

func (controlsChecker) Code() ReasonCode { return ReasonControls }

func (controlsChecker) Check(w *want, r *RegionState) bool {
	have := r.Region.Accreditation.Controls
	for _, c := range w.controls {
		if !contains(have, c) {
			return false
		}
	}
	return true
}

func (controlsChecker) Explain(w *want, r *RegionState) Reason {
	return Reason{Code: ReasonControls, Message: "not accredited for " + list(missing(w.controls, r.Region.Accreditation.Controls))}
}

// capabilityChecker: the region offers every capability and the storage
// tier the workload needs (rule 8).
type capabilityChecker struct{}

func (capabilityChecker) Code() ReasonCode { return ReasonCapability }

func (capabilityChecker) Check(w *want, r *RegionState) bool {
	for _, c := range w.caps {
		if !contains(r.Region.Capabilities, c) {
			return false
		}
	}
	return w.tier == "" || contains(r.Region.StorageTiers, w.tier)
}

func (capabilityChecker) Explain(w *want, r *RegionState) Reason {
	var parts []string
	if m := missing(w.caps, r.Region.Capabilities); len(m) > 0 {
		parts = append(parts, "no "+list(m)+" capability")
	}
	if w.tier != "" && !contains(r.Region.StorageTiers, w.tier) {
		parts = append(parts, "no "+w.tier+" storage tier")
	}
	return Reason{Code: ReasonCapability, Message: strings.Join(parts, "; ")}
}
