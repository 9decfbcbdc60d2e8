package router

import (
	"fmt"
	"strings"
	"time"

	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// Personnel is the screening of the people who operate a region, ordered
// from least to most trusted.
type Personnel uint8

// Personnel screening levels (DOMAIN.md §5).
const (
	PersonnelNone              Personnel = iota // no screening asserted
	PersonnelScreenedUSPersons                  // screened US persons (GovCloud, Azure Government; ITAR)
	PersonnelUSPersonsADP                       // US persons with ADP/T3/T5 investigations (IL4/IL5)
	PersonnelClearedSecret                      // citizens of the operating nations cleared to SECRET (IL6)
	PersonnelClearedTopSecret                   // citizens of the operating nations cleared to TS/SCI
)

var personnelNames = [...]string{"none", "screened-us-persons", "us-persons-adp", "cleared-secret", "cleared-top-secret"}

func (p Personnel) String() string { return enumString(personnelNames[:], int(p), "Personnel") }

// MarshalText implements encoding.TextMarshaler.
func (p Personnel) MarshalText() ([]byte, error) {
	return enumMarshal(personnelNames[:], int(p), "personnel")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Personnel) UnmarshalText(b []byte) error {
	i, err := enumParse(personnelNames[:], string(b), "personnel")
	*p = Personnel(i)
	return err
}

// NetworkDomain is the network a region sits on. Each domain carries
// data up to a ceiling level.
type NetworkDomain uint8

// Network domains.
const (
	DomainInternet  NetworkDomain = iota // public internet; commercial and GovCloud regions
	DomainNIPRNet                        // DoD unclassified network, reached through a (B)CAP
	DomainSIPRNet                        // SECRET network (Intelink-S)
	DomainJWICS                          // TOP SECRET/SCI network (Intelink-TS)
	DomainAirGapped                      // an air-gapped national network; its ceiling is the region's accreditation
)

// numDomains is how many network domains there are.
const numDomains = int(DomainAirGapped) + 1

var domainNames = [numDomains]string{"internet", "niprnet", "siprnet", "jwics", "air-gapped"}

func (d NetworkDomain) String() string { return enumString(domainNames[:], int(d), "NetworkDomain") }

// Ceiling is the highest level the network domain may carry.
func (d NetworkDomain) Ceiling() label.Level {
	switch d {
	case DomainSIPRNet:
		return label.Secret
	case DomainJWICS, DomainAirGapped:
		return label.TopSecret
	default:
		return label.CUI
	}
}

// MarshalText implements encoding.TextMarshaler.
func (d NetworkDomain) MarshalText() ([]byte, error) {
	return enumMarshal(domainNames[:], int(d), "network domain")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *NetworkDomain) UnmarshalText(b []byte) error {
	i, err := enumParse(domainNames[:], string(b), "network domain")
	*d = NetworkDomain(i)
	return err
}

// FedRAMP is a FedRAMP authorisation baseline.
type FedRAMP uint8

// FedRAMP baselines.
const (
	FedRAMPNone FedRAMP = iota
	FedRAMPLow
	FedRAMPModerate
	FedRAMPHigh
)

var fedrampNames = [...]string{"none", "low", "moderate", "high"}

func (f FedRAMP) String() string { return enumString(fedrampNames[:], int(f), "FedRAMP") }

// MarshalText implements encoding.TextMarshaler.
func (f FedRAMP) MarshalText() ([]byte, error) {
	return enumMarshal(fedrampNames[:], int(f), "fedramp")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *FedRAMP) UnmarshalText(b []byte) error {
	i, err := enumParse(fedrampNames[:], string(b), "fedramp")
	*f = FedRAMP(i)
	return err
}

// Status is the operational status of a region.
type Status uint8

// Region statuses. Only StatusActive regions take new placements.
const (
	StatusActive Status = iota
	StatusDraining
	StatusUnhealthy
	StatusOffline
)

var statusNames = [...]string{"active", "draining", "unhealthy", "offline"}

func (s Status) String() string { return enumString(statusNames[:], int(s), "Status") }

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return enumMarshal(statusNames[:], int(s), "status") }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	i, err := enumParse(statusNames[:], string(b), "status")
	*s = Status(i)
	return err
}

// ExportControl is the export-control regime a workload's data falls under.
type ExportControl uint8

// Export-control regimes.
const (
	ExportNone ExportControl = iota
	ExportEAR
	ExportITAR
)

var exportNames = [...]string{"none", "EAR", "ITAR"}

func (e ExportControl) String() string { return enumString(exportNames[:], int(e), "ExportControl") }

// MarshalText implements encoding.TextMarshaler.
func (e ExportControl) MarshalText() ([]byte, error) {
	return enumMarshal(exportNames[:], int(e), "export control")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *ExportControl) UnmarshalText(b []byte) error {
	i, err := enumParse(exportNames[:], string(b), "export control")
	*e = ExportControl(i)
	return err
}

// Resources is an amount of compute.
type Resources struct {
	MilliCPU  int64 `json:"milli_cpu" yaml:"milli_cpu"`
	MemoryMiB int64 `json:"memory_mib" yaml:"memory_mib"`
	GPU       int64 `json:"gpu" yaml:"gpu"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.MilliCPU + o.MilliCPU, r.MemoryMiB + o.MemoryMiB, r.GPU + o.GPU}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.MilliCPU - o.MilliCPU, r.MemoryMiB - o.MemoryMiB, r.GPU - o.GPU}
}

// Fits reports whether r fits within free.
func (r Resources) Fits(free Resources) bool {
	return r.MilliCPU <= free.MilliCPU && r.MemoryMiB <= free.MemoryMiB && r.GPU <= free.GPU
}

// Location is a point on the Earth in decimal degrees.
type Location struct {
	Lat float64 `json:"lat" yaml:"lat"`
	Lon float64 `json:"lon" yaml:"lon"`
}

// Accreditation is what a region is authorised to hold.
type Accreditation struct {
	// MaxLevel is the highest level the region may hold.
	MaxLevel label.Level `json:"max_level" yaml:"max_level"`
	// Controls are the SCI, SAP, AEA and CUI specified controls the region is accredited for.
	Controls []string `json:"controls,omitempty" yaml:"controls,omitempty"`
	// ImpactLevel is the DoD Cloud Computing SRG impact level: 0 (none), 2, 4, 5 or 6.
	ImpactLevel int `json:"impact_level,omitempty" yaml:"impact_level,omitempty"`
	// FedRAMP is the FedRAMP baseline.
	FedRAMP FedRAMP `json:"fedramp,omitempty" yaml:"fedramp,omitempty"`
	// Frameworks names further authorisations (ICD 503, JSIG, ASD PROTECTED).
	Frameworks []string `json:"frameworks,omitempty" yaml:"frameworks,omitempty"`
	// Expires is when the authority to operate ends. The zero time is refused by validation.
	Expires time.Time `json:"expires" yaml:"expires"`
	// Revoked withdraws the accreditation whatever Expires says.
	Revoked bool `json:"revoked,omitempty" yaml:"revoked,omitempty"`
}

// Region is a place a workload may run: one region of one provider.
// Regions are values: never modify one after it is stored.
type Region struct {
	// Provider is the provider id ("aws", "azure", "ke-gov").
	Provider string `json:"provider" yaml:"provider"`
	// ID is the provider's own region id ("us-gov-west-1"). Region ids
	// are unique only within a provider (AWS and Huawei both have
	// af-south-1); Key joins the two.
	ID string `json:"id" yaml:"id"`
	// Name is a human-readable name.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Country is the ISO 3166 trigraph of the country the data rests in.
	Country string `json:"country" yaml:"country"`
	// OperatorJurisdiction is the trigraph of the legal jurisdiction of the operator.
	OperatorJurisdiction string `json:"operator_jurisdiction" yaml:"operator_jurisdiction"`
	// OperatorNationalities are the nationalities of the people who operate the region.
	OperatorNationalities []string `json:"operator_nationalities" yaml:"operator_nationalities"`
	// Personnel is the screening of those people.
	Personnel Personnel `json:"personnel" yaml:"personnel"`
	// NetworkDomain is the network the region sits on.
	NetworkDomain NetworkDomain `json:"network_domain" yaml:"network_domain"`
	// Accreditation is what the region may hold in the US scheme (CAPCO
	// levels and controls, DoD impact levels, FedRAMP).
	Accreditation Accreditation `json:"accreditation" yaml:"accreditation"`
	// Accreditations are what the region may hold in other schemes, each
	// granted by that scheme's authority (UK OFFICIAL on a UK commercial
	// region, Australian PROTECTED by an agency's authorisation). A label
	// of another scheme than the US is eligible only on one of these, or
	// on the US accreditation, and only through an equivalence entry in
	// force when the schemes differ (SchemeAccreditation, Cover).
	Accreditations []SchemeAccreditation `json:"accreditations,omitempty" yaml:"accreditations,omitempty"`
	// Customers are the tenants the region may serve, as patterns:
	// "*" (anyone), "USA" (any tenant of that nation), "USA/defense"
	// (tenants of that nation and sector).
	Customers []string `json:"customers" yaml:"customers"`
	// Capabilities offered ("gpu", "ai-agents", ...).
	Capabilities []string `json:"capabilities,omitempty" yaml:"capabilities,omitempty"`
	// StorageTiers offered ("online", "nearline", "archive").
	StorageTiers []string `json:"storage_tiers,omitempty" yaml:"storage_tiers,omitempty"`
	// Capacity is the total capacity the region offers to classroute.
	Capacity Resources `json:"capacity" yaml:"capacity"`
	// Location is where the region is, for geographic separation and proximity.
	Location Location `json:"location" yaml:"location"`
	// Cost is a relative price index: 1.0 is the catalogue's reference.
	Cost float64 `json:"cost" yaml:"cost"`
	// Status is the operational status.
	Status Status `json:"status" yaml:"status"`
	// Illustrative marks catalogue data that rests on uncertain public
	// facts ([U] in DOMAIN.md): operators must replace it.
	Illustrative bool `json:"illustrative,omitempty" yaml:"illustrative,omitempty"`
	// Notes says where the facts come from.
	Notes string `json:"notes,omitempty" yaml:"notes,omitempty"`
}

// Key is the region's unique key, "provider/id".
func (r *Region) Key() string { return r.Provider + "/" + r.ID }

// Provider is a cloud vendor or national operator.
type Provider struct {
	ID           string `json:"id" yaml:"id"`
	Name         string `json:"name" yaml:"name"`
	Jurisdiction string `json:"jurisdiction" yaml:"jurisdiction"`
	Notes        string `json:"notes,omitempty" yaml:"notes,omitempty"`
}

// Tenant is a customer of the platform: a ministry, an agency, a
// military. A tenant's nation and sector decide which regions may serve it.
type Tenant struct {
	ID     string `json:"id" yaml:"id"`
	Name   string `json:"name" yaml:"name"`
	Nation string `json:"nation" yaml:"nation"`
	// Sector is "civil", "defense", "intelligence" or "commercial".
	Sector string `json:"sector" yaml:"sector"`

	// The tenant's policy, set by catalogue administrators only. It lives
	// in the tenant record, which Place's commit compares, so a policy
	// change between a decision and its commit is caught.

	// Ceiling is the tenant's clearance ceiling, a banner marking: placing
	// or planning a workload whose label it does not dominate is refused,
	// and regions accredited above its level are neither used for the
	// tenant nor named to its users. Required. CeilingLabel is its parsed
	// form, set by ValidateTenant.
	Ceiling      string      `json:"ceiling" yaml:"ceiling"`
	CeilingLabel label.Label `json:"-" yaml:"-"`
	// Scheme is the scheme the tenant's users write bare level words in
	// ("CONFIDENTIAL" from a Kenyan ministry is KEN CONFIDENTIAL). Empty:
	// its nation's own scheme when classroute reads one
	// (marking.NationScheme), and otherwise none, so a bare level word is
	// refused naming the schemes that have it. Markings whose syntax names
	// their scheme ("[SEC=PROTECTED]", "UK SECRET", "SECRET//NOFORN") and
	// workloads that say their scheme need no default.
	Scheme marking.Scheme `json:"scheme,omitempty" yaml:"scheme,omitempty"`
	// Ceilings are the tenant's ceilings in schemes other than the US, one
	// per scheme and axis, each a level of its scheme: a workload labelled
	// in such a scheme must be at or below the ceiling of its scheme on
	// its axis, and a tenant with none there may place nothing in it.
	// Ceiling is the tenant's ceiling in the US scheme.
	Ceilings []SchemeCeiling `json:"ceilings,omitempty" yaml:"ceilings,omitempty"`
	// AllowedRegions (region keys) and AllowedProviders, when not empty,
	// are the only regions and providers the tenant may use;
	// DeniedRegions and DeniedProviders it may never use. They hold
	// whatever a workload asks.
	AllowedRegions   []string `json:"allowed_regions,omitempty" yaml:"allowed_regions,omitempty"`
	DeniedRegions    []string `json:"denied_regions,omitempty" yaml:"denied_regions,omitempty"`
	AllowedProviders []string `json:"allowed_providers,omitempty" yaml:"allowed_providers,omitempty"`
	DeniedProviders  []string `json:"denied_providers,omitempty" yaml:"denied_providers,omitempty"`
	// Members grants the tenant's users their roles: a tenant user with
	// no entry has none.
	Members []TenantMember `json:"members,omitempty" yaml:"members,omitempty"`
	// MaxPlacements, when positive, is the most live placements the
	// tenant may hold at once (a Place beyond it is ErrPlacementCap);
	// 0 sets no cap.
	MaxPlacements int `json:"max_placements,omitempty" yaml:"max_placements,omitempty"`
}

// SchemeCeiling is a tenant's ceiling in one scheme other than the US.
type SchemeCeiling struct {
	Scheme marking.Scheme `json:"scheme" yaml:"scheme"`
	// Level is the highest level of Scheme, by its canonical name.
	Level string `json:"level" yaml:"level"`
	// Parsed is Level read in Scheme, set by ValidateTenant.
	Parsed marking.Level `json:"-" yaml:"-"`
}

// DefaultScheme is the scheme the tenant's bare level words are read in
// ("" when none: they are refused).
func (t *Tenant) DefaultScheme() marking.Scheme {
	if t == nil {
		return ""
	}
	if t.Scheme != "" {
		return t.Scheme
	}
	return marking.NationScheme(t.Nation)
}

// TenantMember is one user of a tenant and the roles it holds there:
// authz.RoleSubmitter and authz.RoleTenantAuditor only.
type TenantMember struct {
	// Name is the user's name in its identity (.../tenant/T/user/<name>).
	Name  string       `json:"name" yaml:"name"`
	Roles []authz.Role `json:"roles" yaml:"roles"`
}

// MemberRoles returns the roles the tenant grants user name; nil when
// it grants none.
func (t *Tenant) MemberRoles(name string) []authz.Role {
	if t == nil {
		return nil
	}
	for i := range t.Members {
		if t.Members[i].Name == name {
			return t.Members[i].Roles
		}
	}
	return nil
}

// MayUse reports whether the tenant's operator-set restrictions let it
// use region r. It does not allocate.
func (t *Tenant) MayUse(r *Region) bool {
	if t == nil {
		return true
	}
	if len(t.AllowedProviders) > 0 && !contains(t.AllowedProviders, r.Provider) {
		return false
	}
	if contains(t.DeniedProviders, r.Provider) {
		return false
	}
	if len(t.AllowedRegions) > 0 && !containsKey(t.AllowedRegions, r) {
		return false
	}
	return !containsKey(t.DeniedRegions, r)
}

// MayKnow reports whether the tenant's users may learn that region r
// exists: it is accredited no higher than the tenant's ceiling, and it
// may serve the tenant (its customers match the tenant's nation and
// sector). Other regions are counted, never named, in what those users
// see. A tenant without a parsed ceiling may know of no region.
func (t *Tenant) MayKnow(r *Region) bool {
	if t == nil || t.Ceiling == "" || r == nil {
		return false
	}
	if r.Accreditation.MaxLevel > t.CeilingLabel.Level {
		return false
	}
	for _, p := range r.Customers {
		if customerMatch(p, t) {
			return true
		}
	}
	return false
}

// KnowsAccreditation reports whether the tenant's users may learn of, and
// its workloads be held under, a region's accreditation in another scheme
// than the US: the tenant has a ceiling in that scheme, on its axis, at or
// above its highest level. Decisions for the tenant read only those; its
// users see only those. A nil tenant (no tenant: the customer rule
// refuses every region) knows them all.
func (t *Tenant) KnowsAccreditation(a *SchemeAccreditation) bool {
	if t == nil {
		return true
	}
	lv := a.Level
	if lv.Name == "" { // not validated: read it (a level that does not read is known to no one)
		var err error
		if lv, err = (marking.Parser{}).ParseLevel(a.Scheme, a.MaxLevel); err != nil {
			return false
		}
	}
	for i := range t.Ceilings {
		c := &t.Ceilings[i]
		if c.Scheme == a.Scheme && c.Parsed.Name != "" && c.Parsed.Axis == lv.Axis && lv.Rank <= c.Parsed.Rank {
			return true
		}
	}
	return false
}

// WithinCeilingOf is WithinCeiling for w's label in whatever scheme it is
// written: a label of another scheme than the US must be at or below the
// tenant's ceiling in that scheme, on its axis (Ceilings).
func (t *Tenant) WithinCeilingOf(w *Workload) error {
	if !w.Foreign() {
		return t.WithinCeiling(w.Label)
	}
	l := &w.Marking
	var axis bool
	for i := range t.Ceilings {
		c := &t.Ceilings[i]
		if c.Scheme != l.Scheme || c.Parsed.Axis != l.Level.Axis {
			continue
		}
		if l.Level.Rank <= c.Parsed.Rank {
			return nil
		}
		axis = true
	}
	if !axis {
		return &ceilingError{fmt.Sprintf("%v: tenant %s has no ceiling in scheme %s for %s; a catalogue administrator must set one (tenant.ceilings)",
			ErrPermissionDenied, t.ID, l.Scheme, l.Level.Name)}
	}
	return &ceilingError{fmt.Sprintf("%v: label %s is above tenant %s's %s ceiling", ErrPermissionDenied, l, t.ID, l.Scheme)}
}

// WithinCeiling returns nil when the tenant's ceiling dominates l, and
// otherwise an error wrapping ErrPermissionDenied and ErrAboveCeiling
// that names the ceiling. A tenant without a ceiling may place nothing.
func (t *Tenant) WithinCeiling(l label.Label) error {
	if t.Ceiling == "" {
		return &ceilingError{fmt.Sprintf("%v: tenant %s has no clearance ceiling; a catalogue administrator must set one", ErrPermissionDenied, t.ID)}
	}
	if !t.CeilingLabel.Dominates(l) {
		return &ceilingError{fmt.Sprintf("%v: label %s is above tenant %s's ceiling %s", ErrPermissionDenied, l, t.ID, t.Ceiling)}
	}
	return nil
}

// containsKey reports whether keys holds r's key, without building it.
func containsKey(keys []string, r *Region) bool {
	for _, k := range keys {
		if hasKey(r, k) {
			return true
		}
	}
	return false
}

// hasKey reports whether k is r's key, without building it.
func hasKey(r *Region, k string) bool {
	n := len(r.Provider)
	return len(k) == n+1+len(r.ID) && k[n] == '/' && k[:n] == r.Provider && k[n+1:] == r.ID
}

// Spread says how the replicas of a workload must be separated.
type Spread struct {
	// MinDistanceKm is the least great-circle distance between any two replicas.
	MinDistanceKm float64 `json:"min_distance_km,omitempty" yaml:"min_distance_km,omitempty"`
	// DistinctProviders puts every replica with a different provider.
	DistinctProviders bool `json:"distinct_providers,omitempty" yaml:"distinct_providers,omitempty"`
}

// Preferences steer scoring among eligible regions; they never make an
// ineligible region eligible.
type Preferences struct {
	// Providers are preferred providers, most preferred first.
	Providers []string `json:"providers,omitempty" yaml:"providers,omitempty"`
	// CostWeight is the weight of cost in the score, 0..1; the rest is
	// shared by headroom, preference and proximity.
	CostWeight float64 `json:"cost_weight,omitempty" yaml:"cost_weight,omitempty"`
	// Near, when set, prefers regions close to this point.
	Near *Location `json:"near,omitempty" yaml:"near,omitempty"`
}

// Workload is what a tenant asks classroute to place.
type Workload struct {
	Name   string `json:"name" yaml:"name"`
	Tenant string `json:"tenant" yaml:"tenant"`
	// Label is the parsed security label of a US label; Banner is its
	// canonical form. For a label of another scheme (Foreign), Label is
	// the zero label and must not be read: Marking is the label.
	Label label.Label `json:"-" yaml:"-"`
	// Banner is the canonical marking of the label, in its scheme.
	Banner string `json:"label" yaml:"label"`
	// Scheme is the scheme the label is written in. On input, empty means
	// the scheme the marking's syntax names or, for a bare level word,
	// the tenant's (Tenant.DefaultScheme); ValidateWorkload resolves it.
	// Once validated, and in stored records, empty is US: the scheme
	// every record before schemes was written in.
	Scheme marking.Scheme `json:"scheme,omitempty" yaml:"scheme,omitempty"`
	// Marking is the parsed label of a Foreign workload (zero for US).
	Marking marking.Label `json:"-" yaml:"-"`
	// AllowedCountries are the trigraphs where the data may rest; "*" means anywhere.
	AllowedCountries []string `json:"allowed_storage_countries" yaml:"allowed_storage_countries"`
	// AllowedJurisdictions, when set, are the operator jurisdictions allowed.
	AllowedJurisdictions []string      `json:"allowed_jurisdictions,omitempty" yaml:"allowed_jurisdictions,omitempty"`
	ExportControl        ExportControl `json:"export_control,omitempty" yaml:"export_control,omitempty"`
	// MinImpactLevel is the least DoD SRG impact level the region must hold
	// (0, 2, 4, 5 or 6). US defense tenants get IL2 for unclassified and
	// IL4 for CUI data without asking.
	MinImpactLevel int `json:"min_impact_level,omitempty" yaml:"min_impact_level,omitempty"`
	// MinFedRAMP is the least FedRAMP baseline the region must hold. US
	// tenants get Moderate for CUI data without asking (32 CFR 2002.14).
	// A region accredited for classified data satisfies both.
	MinFedRAMP   FedRAMP  `json:"min_fedramp,omitempty" yaml:"min_fedramp,omitempty"`
	Capabilities []string `json:"capabilities,omitempty" yaml:"capabilities,omitempty"`
	StorageTier  string   `json:"storage_tier,omitempty" yaml:"storage_tier,omitempty"`
	// Resources are needed by each replica.
	Resources   Resources   `json:"resources" yaml:"resources"`
	Replicas    int         `json:"replicas" yaml:"replicas"`
	Spread      Spread      `json:"spread,omitempty" yaml:"spread,omitempty"`
	Preferences Preferences `json:"preferences,omitempty" yaml:"preferences,omitempty"`
	// Dependencies are what the workload reads, writes or calls: its
	// tenant's own placements and catalogue services (router/flow). Each
	// must be a legal flow from every replica (DependencyChecker).
	Dependencies []flow.Dependency `json:"dependencies,omitempty" yaml:"dependencies,omitempty"`
}

// Foreign reports whether w's label is of another scheme than the US.
func (w *Workload) Foreign() bool { return w.Scheme != "" && w.Scheme != marking.US }

// AuditLabel is how audit entries and logs name w's label: its banner,
// prefixed with its scheme when that is not the US ("(KEN) CONFIDENTIAL").
func (w *Workload) AuditLabel() string {
	if w.Foreign() {
		return "(" + string(w.Scheme) + ") " + w.Banner
	}
	return w.Banner
}

// LabelString is the canonical marking of w's parsed label, in its
// scheme; Banner must equal it.
func (w *Workload) LabelString() string {
	if w.Foreign() {
		return w.Marking.String()
	}
	return w.Label.String()
}

func enumString(names []string, i int, typ string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

func enumMarshal(names []string, i int, what string) ([]byte, error) {
	if i < 0 || i >= len(names) {
		return nil, fmt.Errorf("invalid %s %d", what, i)
	}
	return []byte(names[i]), nil
}

// enumParse finds s among names, ignoring ASCII case only: Unicode case
// folding would read "cleared-top-ſecret" as cleared-top-secret.
func enumParse(names []string, s, what string) (int, error) {
	for i, n := range names {
		if asciiEqualFold(n, s) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q (want one of %s)", what, s, strings.Join(names, ", "))
}

// PlacementState is the lifecycle state of a placement.
type PlacementState uint8

// Placement states. Later states (stranded, violation) are appended, never reordered.
const (
	PlacementPlaced PlacementState = iota
	PlacementReleased
	// PlacementStranded: a replica must move and no eligible region exists.
	PlacementStranded
	// PlacementViolation: a replica's region no longer covers the
	// workload's label, residency or export rules.
	PlacementViolation
)

var placementStateNames = [...]string{"placed", "released", "stranded", "violation"}

// Live reports whether the placement holds capacity (it is not released).
func (s PlacementState) Live() bool { return s != PlacementReleased }

// ReplicaState is what a region's agent last acknowledged for a replica.
type ReplicaState uint8

// Replica states.
const (
	ReplicaPending ReplicaState = iota // assigned, not yet acknowledged
	ReplicaAccepted
	ReplicaRunning
	ReplicaFailed
)

var replicaStateNames = [...]string{"pending", "accepted", "running", "failed"}

func (s ReplicaState) String() string {
	return enumString(replicaStateNames[:], int(s), "ReplicaState")
}

// MarshalText implements encoding.TextMarshaler.
func (s ReplicaState) MarshalText() ([]byte, error) {
	return enumMarshal(replicaStateNames[:], int(s), "replica state")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *ReplicaState) UnmarshalText(b []byte) error {
	i, err := enumParse(replicaStateNames[:], string(b), "replica state")
	*s = ReplicaState(i)
	return err
}

// ReplicaStatus is the acknowledged state of one replica.
type ReplicaStatus struct {
	State  ReplicaState `json:"state"`
	Detail string       `json:"detail,omitempty"`
	At     time.Time    `json:"at,omitzero"`
}

// Issue says why a replica must move.
type Issue struct {
	// Region is the replica's current region key.
	Region string `json:"region"`
	// Violation: the region no longer covers the workload's label,
	// residency or export rules.
	Violation bool `json:"violation,omitempty"`
	// Stranded: no eligible region exists to move it to.
	Stranded bool      `json:"stranded,omitempty"`
	Reasons  []Reason  `json:"reasons"`
	Since    time.Time `json:"since"`
}

// Retiring is a copy moved away from Region to MovedTo. It keeps its
// capacity, and keeps running, until the copy in MovedTo is confirmed.
type Retiring struct {
	Region  string    `json:"region"`
	MovedTo string    `json:"moved_to"`
	Reasons []Reason  `json:"reasons,omitempty"`
	Since   time.Time `json:"since"`
}

func (s PlacementState) String() string {
	return enumString(placementStateNames[:], int(s), "PlacementState")
}

// MarshalText implements encoding.TextMarshaler.
func (s PlacementState) MarshalText() ([]byte, error) {
	return enumMarshal(placementStateNames[:], int(s), "placement state")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *PlacementState) UnmarshalText(b []byte) error {
	i, err := enumParse(placementStateNames[:], string(b), "placement state")
	*s = PlacementState(i)
	return err
}

// Placement is a committed decision: a workload and the regions its replicas run in.
// Placements are values: never modify one after it is stored.
type Placement struct {
	// ID is the client-chosen request id that made the placement.
	ID       string   `json:"id"`
	Tenant   string   `json:"tenant"`
	Workload Workload `json:"workload"`
	// Regions holds one region key per replica, best first.
	Regions []string `json:"regions"`
	// Scores holds the score of each chosen region.
	Scores []float64      `json:"scores"`
	State  PlacementState `json:"state"`
	// Replicas holds the acknowledged state of each replica, parallel
	// to Regions (empty until the first acknowledgement).
	Replicas []ReplicaStatus `json:"replicas,omitempty"`
	// Issues holds the replicas that must move, and why.
	Issues []Issue `json:"issues,omitempty"`
	// Retiring holds moved-away copies awaiting their replacement.
	Retiring []Retiring `json:"retiring,omitempty"`
	// Moves counts the replica moves made.
	Moves int `json:"moves,omitempty"`
	// DecidedAt is the etcd revision the decision read.
	DecidedAt  int64     `json:"decided_at"`
	CreatedAt  time.Time `json:"created_at"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

// Replica returns the acknowledged state of replica i.
func (p *Placement) Replica(i int) ReplicaStatus {
	if i < len(p.Replicas) {
		return p.Replicas[i]
	}
	return ReplicaStatus{}
}

// Holds reports whether the placement holds capacity in region key: a
// replica or a retiring copy there.
func (p *Placement) Holds(key string) bool {
	if !p.State.Live() {
		return false
	}
	for _, r := range p.Regions {
		if r == key {
			return true
		}
	}
	for _, r := range p.Retiring {
		if r.Region == key {
			return true
		}
	}
	return false
}

// Health is what classroute knows of a region's live state from its
// agent. It exists once an agent has served the region.
type Health struct {
	// Healthy is false once the agent reports unhealthy, or no live
	// agent has been seen for longer than the grace period.
	Healthy bool      `json:"healthy"`
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since"`
	// Agent is the agent that last served the region.
	Agent string `json:"agent,omitempty"`
}

// RegionLive is what the store's cache holds of a region's live agent
// session: the agent, the daemon serving it, the session's lease and the
// agent's last report.
type RegionLive struct {
	Agent       string
	Daemon      string
	Lease       int64
	ConnectedAt time.Time
	ReportedAt  time.Time
	Healthy     bool
	Detail      string
	Free        Resources
	// Rev is the record's mod revision; CreateRev identifies the session.
	Rev, CreateRev int64
}

// asciiEqualFold is strings.EqualFold for ASCII letters only.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
