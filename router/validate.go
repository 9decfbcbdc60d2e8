package router

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// Validation of API and catalogue input. Each Validate function returns
// nil or an *InvalidError that lists every bad field by its API path
// ("region.accreditation.expires", "workload.allowed_storage_countries[1]"),
// so a caller can fix everything in one round trip.

const (
	// MaxReplicas is the most replicas one workload may ask for.
	MaxReplicas = 16
	// MaxDependencies is the most dependencies one workload may declare.
	MaxDependencies = 16
	// maxDistanceKm bounds spread.min_distance_km: half the Earth's
	// circumference is the farthest two points can be apart.
	maxDistanceKm = 20040
	maxTextLen    = 256
	maxControlLen = 64
)

var (
	// controlRE is the shape of a control token: an SCI system with
	// compartments and sub-compartments (SI-G, HCS-P, "SI-G ABCD"), a SAP
	// (SAR-BP), an AEA marking (RD, "SIGMA 20", "DOD UCNI") or a CUI
	// specified category (SP-EXPT). Whether the token is a known control
	// is the label parser's business; a region may list controls the
	// parser does not know yet.
	controlRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*( [A-Z0-9]+)*$`)
)

// sectors are the tenant sectors, also used in customer patterns.
var sectors = []string{"civil", "defense", "intelligence", "commercial"}

// impactLevels are the DoD SRG impact levels; 0 means none. There is no IL1 or IL3.
var impactLevels = []int{0, 2, 4, 5, 6}

// ValidateRegion checks a region record.
func ValidateRegion(r *Region) error {
	var v Violations
	checkID(&v, "region.provider", r.Provider)
	checkID(&v, "region.id", r.ID)
	checkText(&v, "region.name", r.Name)
	checkCountry(&v, "region.country", r.Country)
	checkCountry(&v, "region.operator_jurisdiction", r.OperatorJurisdiction)
	if len(r.OperatorNationalities) == 0 {
		v.Add("region.operator_nationalities", "required; list the nationalities of the people who operate the region")
	}
	checkEach(&v, "region.operator_nationalities", r.OperatorNationalities, checkCountry)
	if int(r.Personnel) >= len(personnelNames) {
		v.Add("region.personnel", "unknown personnel screening %d", r.Personnel)
	}
	domainOK := int(r.NetworkDomain) < len(domainNames)
	if !domainOK {
		v.Add("region.network_domain", "unknown network domain %d", r.NetworkDomain)
	}

	a := &r.Accreditation
	if !a.MaxLevel.Valid() {
		v.Add("region.accreditation.max_level", "unknown level %d", a.MaxLevel)
	} else if domainOK && a.MaxLevel > r.NetworkDomain.Ceiling() {
		v.Add("region.accreditation.max_level", "%s exceeds what network domain %s may carry", a.MaxLevel, r.NetworkDomain)
	}
	checkEach(&v, "region.accreditation.controls", a.Controls, checkControl)
	if !slices.Contains(impactLevels, a.ImpactLevel) {
		v.Add("region.accreditation.impact_level", "%d is not a DoD impact level (want 0, 2, 4, 5 or 6)", a.ImpactLevel)
	}
	if int(a.FedRAMP) >= len(fedrampNames) {
		v.Add("region.accreditation.fedramp", "unknown FedRAMP baseline %d", a.FedRAMP)
	}
	checkEach(&v, "region.accreditation.frameworks", a.Frameworks, checkRequiredText)
	if a.Expires.IsZero() {
		v.Add("region.accreditation.expires", "required")
	}
	for i := range r.Accreditations {
		validateSchemeAccreditation(&v, fmt.Sprintf("region.accreditations[%d]", i), &r.Accreditations[i])
	}

	if len(r.Customers) == 0 {
		v.Add("region.customers", `required; use ["*"] to serve any tenant`)
	}
	checkEach(&v, "region.customers", r.Customers, checkCustomer)
	checkEach(&v, "region.capabilities", r.Capabilities, checkToken)
	checkEach(&v, "region.storage_tiers", r.StorageTiers, checkToken)
	checkNonNegative(&v, "region.capacity", r.Capacity)
	checkLocation(&v, "region.location", r.Location)
	if !(r.Cost >= 0) || math.IsInf(r.Cost, 1) {
		v.Add("region.cost", "must be a finite number >= 0, got %v", r.Cost)
	}
	if int(r.Status) >= len(statusNames) {
		v.Add("region.status", "unknown status %d", r.Status)
	}
	return v.Err()
}

// validateSchemeAccreditation checks one of a region's accreditations in
// another scheme than the US and sets its parsed Level.
func validateSchemeAccreditation(v *Violations, field string, a *SchemeAccreditation) {
	switch {
	case a.Scheme == marking.US:
		v.Add(field+".scheme", "US: the region's US accreditation is region.accreditation")
	case !a.Scheme.Valid():
		v.Add(field+".scheme", "unknown scheme %q (schemes: %s)", a.Scheme, schemeNames())
	default:
		if l, err := (marking.Parser{}).ParseLevel(a.Scheme, a.MaxLevel); err != nil {
			v.Add(field+".max_level", "%v", err)
		} else {
			a.Level, a.MaxLevel = l, l.Name
		}
	}
	checkEach(v, field+".caveats", a.Caveats, checkRequiredText)
	if strings.TrimSpace(a.Authority) == "" {
		v.Add(field+".authority", "required: who granted it (an Australian agency's authorisation is the agency's)")
	} else {
		checkText(v, field+".authority", a.Authority)
	}
	if a.Expires.IsZero() {
		v.Add(field+".expires", "required")
	}
}

// schemeNames lists the schemes for messages.
func schemeNames() string {
	var names []string
	for _, s := range marking.Schemes() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// ValidateProvider checks a provider record.
func ValidateProvider(p *Provider) error {
	var v Violations
	checkID(&v, "provider.id", p.ID)
	checkText(&v, "provider.name", p.Name)
	checkCountry(&v, "provider.jurisdiction", p.Jurisdiction)
	return v.Err()
}

// parseWorkloadLabel is ValidateWorkload's reading of the label.
func parseWorkloadLabel(v *Violations, w *Workload, defaultScheme marking.Scheme) {
	if w.Scheme != "" && !w.Scheme.Valid() {
		v.Add("workload.scheme", "unknown scheme %q (schemes: %s)", w.Scheme, schemeNames())
		return
	}
	if w.Banner == "" {
		v.Add("workload.label", "required")
		return
	}
	if len(w.Banner) > MaxBannerLen {
		v.Add("workload.label", "longer than %d bytes", MaxBannerLen)
		return
	}
	var m marking.Label
	var err error
	if w.Scheme != "" {
		m, err = (marking.Parser{}).Parse(w.Scheme, w.Banner)
	} else {
		m, err = (marking.Parser{}).ParseDefault(w.Banner, defaultScheme)
	}
	if err != nil && ReadAsUS(w.Scheme, w.Banner, defaultScheme) {
		// A US marking's refusal keeps router/label's words.
		if _, uerr := label.Parse(w.Banner); uerr != nil {
			err = uerr
		}
	}
	if err != nil {
		msg := err.Error()
		if w.Scheme == "" && defaultScheme == "" && strings.Contains(msg, "say which scheme") {
			msg += " (workload.scheme), or a catalogue administrator sets the tenant's scheme"
		}
		v.Add("workload.label", "%s", msg)
		return
	}
	var c string
	if m.Scheme == marking.US {
		c = m.US.String()
	} else {
		c = m.String()
	}
	if len(c) > MaxBannerLen {
		// What is stored is the canonical banner, and a stored record
		// is validated again when read back: one longer than the bound
		// would be dropped from the cache, out of the reconciler's sight.
		v.Add("workload.label", "its canonical form (tetragraphs expanded) is %d bytes, longer than %d", len(c), MaxBannerLen)
		return
	}
	if m.Scheme == marking.US {
		w.Label, w.Scheme, w.Marking = *m.US, "", marking.Label{}
	} else {
		w.Label, w.Scheme, w.Marking = label.Label{}, m.Scheme, m
	}
	w.Banner = c
}

// ReadAsUS reports whether a marking is read as US: its scheme given
// as US, or its syntax US, or, naming none, the tenant's default US.
func ReadAsUS(scheme marking.Scheme, banner string, defaultScheme marking.Scheme) bool {
	if scheme != "" {
		return scheme == marking.US
	}
	switch marking.SyntaxScheme(banner) {
	case marking.US:
		return true
	case "":
		return defaultScheme == marking.US
	}
	return false
}

// ValidateTenant checks a tenant record.
func ValidateTenant(t *Tenant) error {
	var v Violations
	checkID(&v, "tenant.id", t.ID)
	checkText(&v, "tenant.name", t.Name)
	checkCountry(&v, "tenant.nation", t.Nation)
	checkSector(&v, "tenant.sector", t.Sector)
	switch {
	case t.Ceiling == "":
		v.Add("tenant.ceiling", "required: the highest label the tenant may place, as a banner")
	case len(t.Ceiling) > MaxBannerLen:
		v.Add("tenant.ceiling", "longer than %d bytes", MaxBannerLen)
	default:
		if l, err := label.Parse(t.Ceiling); err != nil {
			v.Add("tenant.ceiling", "%v", err)
		} else if c := l.String(); len(c) > MaxBannerLen {
			v.Add("tenant.ceiling", "its canonical form (tetragraphs expanded) is %d bytes, longer than %d", len(c), MaxBannerLen)
		} else {
			t.CeilingLabel, t.Ceiling = l, c
			if label.IsCountry(t.Nation) && !l.ReleasableTo(t.Nation) {
				v.Add("tenant.ceiling", "%s is not releasable to the tenant's nation %s", t.Ceiling, t.Nation)
			}
		}
	}
	if t.Scheme != "" && !t.Scheme.Valid() {
		v.Add("tenant.scheme", "unknown scheme %q (schemes: %s)", t.Scheme, schemeNames())
	}
	for i := range t.Ceilings {
		c := &t.Ceilings[i]
		f := fmt.Sprintf("tenant.ceilings[%d]", i)
		switch {
		case c.Scheme == marking.US:
			v.Add(f+".scheme", "US: the tenant's US ceiling is tenant.ceiling")
		case !c.Scheme.Valid():
			v.Add(f+".scheme", "unknown scheme %q (schemes: %s)", c.Scheme, schemeNames())
		default:
			l, err := (marking.Parser{}).ParseLevel(c.Scheme, c.Level)
			if err != nil {
				v.Add(f+".level", "%v", err)
				continue
			}
			c.Parsed, c.Level = l, l.Name
			for j := range t.Ceilings[:i] {
				if o := &t.Ceilings[j]; o.Scheme == c.Scheme && o.Parsed.Axis == l.Axis && o.Parsed.Name != "" {
					v.Add(f, "a second %s ceiling on the same axis as tenant.ceilings[%d]", c.Scheme, j)
				}
			}
		}
	}
	for _, f := range []struct {
		field string
		list  []string
	}{{"tenant.allowed_regions", t.AllowedRegions}, {"tenant.denied_regions", t.DeniedRegions}} {
		checkList(&v, f.field, f.list, func(field, key string) {
			p, id, ok := strings.Cut(key, "/")
			if !ok {
				v.Add(field, "want a region key provider/id, got %q", clipText(key))
				return
			}
			checkID(&v, field, p)
			checkID(&v, field, id)
		})
	}
	checkList(&v, "tenant.allowed_providers", t.AllowedProviders, func(field, id string) { checkID(&v, field, id) })
	checkList(&v, "tenant.denied_providers", t.DeniedProviders, func(field, id string) { checkID(&v, field, id) })
	if t.MaxPlacements < 0 || t.MaxPlacements > MaxTenantPlacements {
		v.Add("tenant.max_placements", "must be between 0 (no cap) and %d, got %d", MaxTenantPlacements, t.MaxPlacements)
	}
	if len(t.Members) > maxTenantMembers {
		v.Add("tenant.members", "more than %d members", maxTenantMembers)
	}
	seen := make(map[string]bool, len(t.Members))
	for i, m := range t.Members {
		field := fmt.Sprintf("tenant.members[%d]", i)
		if !validMemberName(m.Name) {
			v.Add(field+".name", "%q: want 1-128 letters, digits, '.', '_' and '-' (the user name of its identity)", clipText(m.Name))
		} else if seen[m.Name] {
			v.Add(field+".name", "%q listed twice", m.Name)
		}
		seen[m.Name] = true
		if len(m.Roles) == 0 {
			v.Add(field+".roles", "required: %s and/or %s", authz.RoleSubmitter, authz.RoleTenantAuditor)
		}
		for _, r := range m.Roles {
			if r != authz.RoleSubmitter && r != authz.RoleTenantAuditor {
				v.Add(field+".roles", "%q: a tenant grants only %s and %s", clipText(string(r)), authz.RoleSubmitter, authz.RoleTenantAuditor)
			}
		}
	}
	return v.Err()
}

// Bounds of a tenant's policy.
const (
	maxTenantMembers = 10000
	maxPolicyList    = 1000
	// MaxTenantPlacements bounds a tenant's max_placements: Place counts
	// the tenant's live placements up to the cap.
	MaxTenantPlacements = 100000
)

// checkList checks each entry of a policy list with check, and that the
// list is bounded and has no duplicates.
func checkList(v *Violations, field string, list []string, check func(field, s string)) {
	if len(list) > maxPolicyList {
		v.Add(field, "more than %d entries", maxPolicyList)
		return
	}
	for i, s := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		check(f, s)
		if slices.Contains(list[:i], s) {
			v.Add(f, "%q listed twice", clipText(s))
		}
	}
}

// clipText shortens s for a message.
func clipText(s string) string { return Clip(s, 67) }

// ValidateWorkload checks a workload and parses its label in its scheme:
// w.Scheme when set, otherwise the scheme the marking's syntax names,
// otherwise defaultScheme, the scheme of the tenant's bare level words
// (Tenant.DefaultScheme); with none, a bare level word is refused naming
// the schemes that have it. A label is never read in a scheme it was
// not written in. When the label parses, w.Label (US) or w.Marking
// (other schemes) is set, w.Scheme is resolved ("" for US) and w.Banner
// becomes the canonical marking, whatever else is wrong; a caller must
// not use w when the error is not nil.
func ValidateWorkload(w *Workload, defaultScheme marking.Scheme) error {
	var v Violations
	parseWorkloadLabel(&v, w, defaultScheme)

	if len(w.Dependencies) > MaxDependencies {
		v.Add("workload.dependencies", "%d dependencies; at most %d", len(w.Dependencies), MaxDependencies)
	}
	for i, d := range w.Dependencies {
		f := fmt.Sprintf("workload.dependencies[%d]", i)
		switch {
		case d.Validate() != nil:
			v.Add(f, "%v", d.Validate())
		case d.Target.Kind == flow.PlacementTarget && d.Target.Tenant != w.Tenant:
			// Another tenant's placements are not the workload's to know of.
			v.Add(f, "%s: a workload may depend on its own tenant's placements only", d.Target)
		case slices.ContainsFunc(w.Dependencies[:i], func(o flow.Dependency) bool { return o.Target == d.Target }):
			v.Add(f, "%s listed twice", d.Target)
		}
	}
	switch {
	case w.Name == "":
		v.Add("workload.name", "required")
	case len(w.Name) > MaxNameLen:
		v.Add("workload.name", "longer than %d characters", MaxNameLen)
	case !workloadNameRE.MatchString(w.Name):
		v.Add("workload.name", "%q: only letters, digits, '.', '_' and '-' are allowed", w.Name)
	}
	checkID(&v, "workload.tenant", w.Tenant)

	// Residency is never defaulted open: a spec that says nothing about
	// where its data may rest is refused, not sent anywhere.
	switch {
	case len(w.AllowedCountries) == 0:
		v.Add("workload.allowed_storage_countries", `required; use ["*"] for no residency restriction`)
	case len(w.AllowedCountries) > MaxListLen:
		v.Add("workload.allowed_storage_countries", "at most %d entries, got %d", MaxListLen, len(w.AllowedCountries))
	case slices.Contains(w.AllowedCountries, "*"):
		if len(w.AllowedCountries) > 1 {
			v.Add("workload.allowed_storage_countries", `"*" must be the only entry`)
		}
	default:
		checkEach(&v, "workload.allowed_storage_countries", w.AllowedCountries, checkCountry)
	}
	checkEach(&v, "workload.allowed_jurisdictions", w.AllowedJurisdictions, checkCountry)

	if !slices.Contains(impactLevels, w.MinImpactLevel) {
		v.Add("workload.min_impact_level", "%d is not a DoD impact level (want 0, 2, 4, 5 or 6)", w.MinImpactLevel)
	}
	if int(w.MinFedRAMP) >= len(fedrampNames) {
		v.Add("workload.min_fedramp", "unknown FedRAMP baseline %d", w.MinFedRAMP)
	}
	if int(w.ExportControl) >= len(exportNames) {
		v.Add("workload.export_control", "unknown export control %d", w.ExportControl)
	} else if w.ExportControl != ExportNone && len(w.AllowedCountries) > 0 &&
		!slices.Contains(w.AllowedCountries, label.USA) && !slices.Contains(w.AllowedCountries, "*") {
		v.Add("workload.allowed_storage_countries", "export-controlled data must be allowed to rest in USA (export_control %s)", w.ExportControl)
	}

	checkShort(&v, "workload.capabilities", w.Capabilities, checkToken)
	if w.StorageTier != "" {
		checkToken(&v, "workload.storage_tier", w.StorageTier)
	}
	checkNonNegative(&v, "workload.resources", w.Resources)
	if w.Resources.MilliCPU <= 0 && w.Resources.MemoryMiB <= 0 && w.Resources.GPU <= 0 {
		v.Add("workload.resources", "at least one of milli_cpu, memory_mib, gpu must be positive")
	}
	if w.Replicas < 1 || w.Replicas > MaxReplicas {
		v.Add("workload.replicas", "must be between 1 and %d, got %d", MaxReplicas, w.Replicas)
	}
	if d := w.Spread.MinDistanceKm; !(d >= 0 && d < maxDistanceKm) {
		v.Add("workload.spread.min_distance_km", "must be >= 0 and < %d, got %v", maxDistanceKm, d)
	}
	checkShort(&v, "workload.preferences.providers", w.Preferences.Providers, checkID)
	if cw := w.Preferences.CostWeight; !(cw >= 0 && cw <= 1) {
		v.Add("workload.preferences.cost_weight", "must be between 0 and 1, got %v", cw)
	}
	if w.Preferences.Near != nil {
		checkLocation(&v, "workload.preferences.near", *w.Preferences.Near)
	}
	if len(v) == 0 {
		// Every field within its bound may still add up to more than a
		// workload needs; what is stored (in the placement record, and
		// kept until its retention ends) is this encoding.
		if b, err := json.Marshal(w); err != nil {
			v.Add("workload", "does not encode: %v", err)
		} else if len(b) > MaxWorkloadBytes {
			v.Add("workload", "encodes to %d bytes, more than %d: shorten the label, name or lists", len(b), MaxWorkloadBytes)
		}
	}
	return v.Err()
}

// MaxShortListLen bounds the workload lists that name a few things a
// workload needs or prefers (capabilities, preferred providers): the
// catalogue's regions offer a handful of capabilities, and a workload
// prefers a few providers. Their entries are syntactic ids, not checked
// against the catalogue: a provider the caller may not know of must read
// exactly as one that does not exist, and one may be preferred before it
// is added.
const MaxShortListLen = 16

// MaxWorkloadBytes bounds a valid workload's JSON encoding, as a
// placement record stores it. The largest label (MaxBannerLen) with
// residency and jurisdiction lists of every country fits; the typical
// workload encodes to a few hundred bytes.
const MaxWorkloadBytes = 8 << 10

// checkShort is checkEach with the bound MaxShortListLen.
func checkShort(v *Violations, field string, list []string, check func(v *Violations, field, s string)) {
	if len(list) > MaxShortListLen {
		v.Add(field, "at most %d entries, got %d", MaxShortListLen, len(list))
		return
	}
	checkEach(v, field, list, check)
}

// MaxListLen bounds every list field of a workload, region, provider
// or tenant. No real one needs more (there are 249 ISO 3166 countries),
// and the bound keeps validation linear and error replies small.
const MaxListLen = 256

// MaxBannerLen bounds a banner marking.
const MaxBannerLen = 4096

// checkEach runs check on every item of list, naming it field[i], and
// reports repeated items. A list longer than MaxListLen is reported once,
// unread.
func checkEach(v *Violations, field string, list []string, check func(v *Violations, field, s string)) {
	if len(list) > MaxListLen {
		v.Add(field, "at most %d entries, got %d", MaxListLen, len(list))
		return
	}
	seen := make(map[string]int, len(list))
	for i, s := range list {
		f := indexed(field, i)
		check(v, f, s)
		if j, ok := seen[s]; ok {
			v.Add(f, "%q repeats %s", s, indexed(field, j))
		} else {
			seen[s] = i
		}
	}
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

func checkID(v *Violations, field, id string) {
	switch {
	case id == "":
		v.Add(field, "required")
	case len(id) > MaxIDLen:
		v.Add(field, "longer than %d characters", MaxIDLen)
	case !idRE.MatchString(id):
		v.Add(field, "%q: only lowercase letters, digits and '-' are allowed", id)
	}
}

func checkToken(v *Violations, field, tok string) {
	switch {
	case tok == "":
		v.Add(field, "must not be empty")
	case len(tok) > MaxIDLen:
		v.Add(field, "longer than %d characters", MaxIDLen)
	case !idRE.MatchString(tok):
		v.Add(field, "%q: only lowercase letters, digits and '-' are allowed", tok)
	}
}

func checkText(v *Violations, field, s string) {
	if len(s) > maxTextLen {
		v.Add(field, "longer than %d characters", maxTextLen)
	}
}

func checkRequiredText(v *Violations, field, s string) {
	if s == "" {
		v.Add(field, "must not be empty")
	}
	checkText(v, field, s)
}

func checkCountry(v *Violations, field, code string) {
	switch {
	case code == "":
		v.Add(field, "required")
	case !label.IsCountry(code):
		v.Add(field, "%q is not an ISO 3166 alpha-3 country code", code)
	}
}

func checkSector(v *Violations, field, s string) {
	switch {
	case s == "":
		v.Add(field, "required")
	case !slices.Contains(sectors, s):
		v.Add(field, "unknown sector %q (want one of civil, defense, intelligence, commercial)", s)
	}
}

func checkControl(v *Violations, field, c string) {
	switch {
	case c == "":
		v.Add(field, "must not be empty")
	case len(c) > maxControlLen:
		v.Add(field, "longer than %d characters", maxControlLen)
	case !controlRE.MatchString(c):
		v.Add(field, "%q is not a control token (uppercase, like SI, SI-G, HCS-P, SAR-BP, RD, SP-EXPT)", c)
	}
}

// checkCustomer checks a customer pattern: "*", "NAT" or "NAT/sector".
func checkCustomer(v *Violations, field, c string) {
	if c == "*" {
		return
	}
	nation, sector, hasSector := strings.Cut(c, "/")
	if !label.IsCountry(nation) {
		v.Add(field, `%q: want "*", a country trigraph, or trigraph/sector like "USA/defense"`, c)
		return
	}
	if hasSector {
		checkSector(v, field, sector)
	}
}

func checkNonNegative(v *Violations, field string, r Resources) {
	if r.MilliCPU < 0 {
		v.Add(field+".milli_cpu", "must not be negative, got %d", r.MilliCPU)
	}
	if r.MemoryMiB < 0 {
		v.Add(field+".memory_mib", "must not be negative, got %d", r.MemoryMiB)
	}
	if r.GPU < 0 {
		v.Add(field+".gpu", "must not be negative, got %d", r.GPU)
	}
}

func checkLocation(v *Violations, field string, l Location) {
	if !(l.Lat >= -90 && l.Lat <= 90) {
		v.Add(field+".lat", "must be between -90 and 90, got %v", l.Lat)
	}
	if !(l.Lon >= -180 && l.Lon <= 180) {
		v.Add(field+".lon", "must be between -180 and 180, got %v", l.Lon)
	}
}
