// Package flow decides whether a workload may read, write or call what
// it depends on: Bell–LaPadula within one network domain, and otherwise
// only through an accredited cross-domain or connected-service edge in
// force (DOMAIN.md §7, issue 13).
//
// # Dependencies and flows
//
// A workload declares Dependencies: a Target (another placement,
// "placement:<tenant>/<id>", or a catalogue Service, "service:<name>")
// and a Direction. A Flow is one dependency between one side of the
// workload (a region key and its network domain) and one side of the
// target. It moves data in one or two transfers:
//
//   - read: the target's data comes to the workload;
//   - write: the workload's data goes to the target;
//   - call: both (requests carry the workload's label to the target,
//     responses carry the target's back).
//
// # The rule
//
// Without an edge (DOMAIN.md §7.3) a flow is legal when both sides are
// on one network domain and every transfer lands on a label that
// dominates the label it leaves: a read only of what the workload's
// label dominates (else read_up), a write only to what dominates it
// (else write_down), a call only between equal labels (write_down is
// reported first: requests carry the workload's label). Labels of
// different schemes are never compared (incomparable): equivalence
// entries say how a region of another scheme must hold a label, not
// whether a caveat or a releasability of one scheme covers another's.
// Each air-gapped region is its own network: two air-gapped regions
// share no domain.
//
// Otherwise the flow is legal only through one Edge that carries every
// one of its transfers: for each, the edge's endpoints (a network
// domain name or a region key) match the sides the data leaves and
// reaches, in the edge's Direction (write: From → To; read: To → From;
// call: both). An edge covers the flow when, in addition, its kind's
// label rule holds for each transfer, the labels it checks are in its
// Range (High dominates the label and the label dominates Low, so a
// range is in one scheme), the target's operators meet the personnel
// rule where the workload's data reaches them undowngraded, and the
// edge is in force (not revoked, not expired). What each kind permits:
//
//   - diode: a one-way transfer device, low to high. It carries data
//     in one direction only (never a call) and changes no label: each
//     transfer's data must be in range and the receiving label must
//     dominate it, as within one domain. It fixes the domain crossing,
//     never a write down: a SECRET workload on SIPRNet reads an
//     UNCLASSIFIED store on the internet over a diode internet →
//     SIPRNet, and nothing goes back.
//   - access: an access solution, through which a workload on one
//     domain reads, writes or calls a resource on another without the
//     data being re-labelled. Like a diode it fixes only the crossing
//     (the receiving label must dominate each transfer's data), but it
//     may carry both directions.
//   - guard: a filtering, reviewing transfer solution: the only edge
//     that moves data down. It carries a transfer when both the label
//     the data leaves and the label it reaches are in its range,
//     whichever dominates: a SECRET workload writes an UNCLASSIFIED
//     bucket through a guard approved for UNCLASSIFIED to SECRET. The
//     data it releases is reviewed at the guard, so the personnel rule
//     does not apply to the far side.
//   - connected-service: a service reached across a boundary that is not
//     a CDS (DOMAIN.md §7.2: Azure Government reaching the commercial
//     model endpoints). Its To is the service's region, and it covers
//     only dependencies on a catalogue service, never on a placement
//     that happens to run there. The workload's data sent to the service
//     (From → To) is held there under the edge's accreditation, so it
//     needs only be in range, up to the ceiling, not dominated by the
//     service's catalogue label; any other transfer (the responses) must
//     be in range and dominated by the label it reaches.
//     The service's operators must meet the personnel rule for the
//     workload's label: that is where an export-controlled prompt sent
//     to a commercial endpoint is refused (personnel).
//
// The personnel rule, applied to the target's side whenever the
// workload's data reaches it not through a guard (within one domain
// too): every operator nationality is within the label's releasability
// (a classified label of another scheme naming none is its originator's
// nationals' only); export-controlled data (CUI//SP-EXPT, or a workload
// declaring ITAR or EAR) goes only to US persons (operators exactly
// USA, screened at least as US persons); US classified data only to
// personnel cleared to SECRET, TOP SECRET or SCI data to TS/SCI. No
// operators known is refused wherever the label restricts anything.
//
// Adding an edge never makes a legal flow illegal, and removing one
// never makes an illegal flow legal: Check is the rule or any covering
// edge (the tests prove it as a property).
//
// # Refusals
//
// A refused flow has one Code and a message naming the labels, the
// direction, the sides and the edge that came closest, or its absence.
// The rule's own refusal is write_down, read_up or incomparable when a
// transfer's labels fail (a call's requests are checked first), no_edge
// when only the network crossing is missing, and personnel when only
// the target's operators fail. An edge whose endpoints and direction
// carry the flow is a candidate; the attempt that came closest decides
// the code, from farthest to closest: the rule failing on labels or
// networks; a candidate whose kind cannot carry the labels (the label
// rule's code, naming the edge); out_of_range; personnel; cds_expired (it
// would cover if it were in force). Ties go to the rule, then to the
// least edge ID.
//
// # Not here
//
// The package decides only: it stores nothing and reads no clock. The
// store keeps edges and services (proposed and approved by two
// administrators), the engine builds Flows from placements and regions
// and calls CheckAll per region, and the reconciler re-checks on
// change. Region keys and placement ids follow router's identifier
// shapes, which the package's tests pin; Personnel and network domain
// names are router's, pinned the same way. It imports router/marking
// and nothing that talks to the world (router/deps_test.go enforces
// it).
package flow

import (
	"fmt"
	"strings"
)

// Direction is which way a dependency moves data, from the workload's
// point of view.
type Direction uint8

// Directions. The zero Direction is invalid, so an unset one is refused.
const (
	_     Direction = iota
	Read            // the workload reads the target: data comes to the workload
	Write           // the workload writes to the target: data goes to the target
	Call            // request and response: both
)

var directionNames = [...]string{"", "read", "write", "call"}

// Valid reports whether d is Read, Write or Call.
func (d Direction) Valid() bool { return d >= Read && d <= Call }

func (d Direction) String() string {
	if d.Valid() {
		return directionNames[d]
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// ParseDirection reads "read", "write" or "call" (any ASCII letter case).
func ParseDirection(s string) (Direction, error) {
	for d := Read; d <= Call; d++ {
		if strings.EqualFold(directionNames[d], s) && isASCII(s) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown direction %q (want read, write or call)", clip(s))
}

// MarshalText implements encoding.TextMarshaler.
func (d Direction) MarshalText() ([]byte, error) {
	if !d.Valid() {
		return nil, fmt.Errorf("invalid direction %d", uint8(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// verb is how messages say d: "reads", "writes to", "calls".
func (d Direction) verb() string {
	switch d {
	case Read:
		return "reads"
	case Write:
		return "writes to"
	case Call:
		return "calls"
	}
	return d.String()
}

// TargetKind is what a dependency names.
type TargetKind uint8

// Target kinds. The zero TargetKind is invalid.
const (
	_               TargetKind = iota
	PlacementTarget            // another placement, by tenant and id
	ServiceTarget              // a service of the catalogue, by name
)

// Target is what a dependency names: "placement:<tenant>/<id>" or
// "service:<name>".
type Target struct {
	Kind TargetKind
	// Tenant and ID name a placement (Kind PlacementTarget).
	Tenant, ID string
	// Name names a service (Kind ServiceTarget).
	Name string
}

// Placement returns the target naming placement id of tenant.
func Placement(tenant, id string) Target {
	return Target{Kind: PlacementTarget, Tenant: tenant, ID: id}
}

// ServiceNamed returns the target naming the catalogue service name.
func ServiceNamed(name string) Target { return Target{Kind: ServiceTarget, Name: name} }

func (t Target) String() string {
	switch t.Kind {
	case PlacementTarget:
		return "placement:" + t.Tenant + "/" + t.ID
	case ServiceTarget:
		return "service:" + t.Name
	}
	return "target(invalid)"
}

// Validate reports whether t names a placement or a service in the
// shapes of their identifiers.
func (t Target) Validate() error {
	switch t.Kind {
	case PlacementTarget:
		if !validID(t.Tenant) {
			return fmt.Errorf("target: tenant %q is not a tenant id (lower-case letters, digits and '-', at most %d)", clip(t.Tenant), maxIDLen)
		}
		if !validRequestID(t.ID) {
			return fmt.Errorf("target: placement id %q is not a placement id (letters, digits, '.', '_', ':' and '-', at most %d)", clip(t.ID), maxNameLen)
		}
	case ServiceTarget:
		if !validID(t.Name) {
			return fmt.Errorf("target: service name %q is not a service name (lower-case letters, digits and '-', at most %d)", clip(t.Name), maxIDLen)
		}
	default:
		return fmt.Errorf("target: kind %d: want a placement or a service", t.Kind)
	}
	return nil
}

// ParseTarget reads "placement:<tenant>/<id>" or "service:<name>".
func ParseTarget(s string) (Target, error) {
	kind, rest, ok := strings.Cut(s, ":")
	var t Target
	switch {
	case !ok:
		return Target{}, fmt.Errorf("target %q: want placement:<tenant>/<id> or service:<name>", clip(s))
	case kind == "placement":
		tenant, id, ok := strings.Cut(rest, "/")
		if !ok {
			return Target{}, fmt.Errorf("target %q: want placement:<tenant>/<id>", clip(s))
		}
		t = Placement(tenant, id)
	case kind == "service":
		t = ServiceNamed(rest)
	default:
		return Target{}, fmt.Errorf("target %q: unknown kind %q (want placement or service)", clip(s), clip(kind))
	}
	if err := t.Validate(); err != nil {
		return Target{}, err
	}
	return t, nil
}

// MarshalText implements encoding.TextMarshaler.
func (t Target) MarshalText() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return []byte(t.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Target) UnmarshalText(b []byte) error {
	v, err := ParseTarget(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Dependency is one thing a workload connects to, and which way.
type Dependency struct {
	Target    Target    `json:"target" yaml:"target"`
	Direction Direction `json:"direction" yaml:"direction"`
}

// Validate reports what is wrong with d, naming the field.
func (d Dependency) Validate() error {
	if err := d.Target.Validate(); err != nil {
		return err
	}
	if !d.Direction.Valid() {
		return fmt.Errorf("direction: %s: want read, write or call", d.Direction)
	}
	return nil
}

// String is the dependency's text form, "<direction> <target>"
// ("call service:azure-openai-usgov"), which ParseDependency reads.
func (d Dependency) String() string { return d.Direction.String() + " " + d.Target.String() }

// ParseDependency reads "<direction> <target>", one space between
// ("read placement:dod-analytics/ingest-1").
func ParseDependency(s string) (Dependency, error) {
	dir, target, ok := strings.Cut(s, " ")
	if !ok {
		return Dependency{}, fmt.Errorf("dependency %q: want \"<read|write|call> <target>\"", clip(s))
	}
	d, err := ParseDirection(dir)
	if err != nil {
		return Dependency{}, fmt.Errorf("dependency %q: %w", clip(s), err)
	}
	t, err := ParseTarget(target)
	if err != nil {
		return Dependency{}, fmt.Errorf("dependency %q: %w", clip(s), err)
	}
	return Dependency{Target: t, Direction: d}, nil
}

// Personnel is the screening of the people who operate a region or a
// service, least trusted first. Its values and names are router's
// Personnel's (the tests pin them), so the engine converts by value.
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

// Valid reports whether p is a defined screening level.
func (p Personnel) Valid() bool { return int(p) < len(personnelNames) }

func (p Personnel) String() string {
	if p.Valid() {
		return personnelNames[p]
	}
	return fmt.Sprintf("Personnel(%d)", uint8(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p Personnel) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("invalid personnel %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Personnel) UnmarshalText(b []byte) error {
	for i, n := range personnelNames {
		if strings.EqualFold(n, string(b)) && isASCII(string(b)) {
			*p = Personnel(i)
			return nil
		}
	}
	return fmt.Errorf("unknown personnel %q (want one of %s)", clip(string(b)), strings.Join(personnelNames[:], ", "))
}

// The network domains, by the names router's NetworkDomain writes (the
// tests pin them).
const (
	DomainInternet  = "internet"
	DomainNIPRNet   = "niprnet"
	DomainSIPRNet   = "siprnet"
	DomainJWICS     = "jwics"
	DomainAirGapped = "air-gapped" // each air-gapped region is its own network
)

var domains = [...]string{DomainInternet, DomainNIPRNet, DomainSIPRNet, DomainJWICS, DomainAirGapped}

// Domains returns the network domain names, in router's order.
func Domains() []string { return domains[:] }

// ValidDomain reports whether s is a network domain name.
func ValidDomain(s string) bool {
	for _, d := range domains {
		if s == d {
			return true
		}
	}
	return false
}

// Side is where one end of a flow runs: a region, the network domain it
// sits on, and who operates it (for the personnel rule).
type Side struct {
	// Region is the region key, "provider/id".
	Region string
	// Domain is the region's network domain name ("siprnet").
	Domain string
	// Operators are the nationalities of the people who operate the
	// region or the service there (ISO 3166 trigraphs).
	Operators []string
	// Personnel is their screening.
	Personnel Personnel
}

// Validate reports what is wrong with s, naming the field.
func (s Side) Validate() error {
	if !validRegionKey(s.Region) {
		return fmt.Errorf("region: %q is not a region key (provider/id)", clip(s.Region))
	}
	if !ValidDomain(s.Domain) {
		return fmt.Errorf("domain: unknown network domain %q (want one of %s)", clip(s.Domain), strings.Join(domains[:], ", "))
	}
	if !s.Personnel.Valid() {
		return fmt.Errorf("personnel: %s", s.Personnel)
	}
	return nil
}

func (s Side) String() string { return s.Region + " (" + s.Domain + ")" }

// sameNetwork reports whether a and b are on one network domain: the
// same domain, and for air-gapped regions the same region.
func sameNetwork(a, b Side) bool {
	return a.Domain == b.Domain && (a.Domain != DomainAirGapped || a.Region == b.Region)
}

// Identifier shapes. They are router's (ValidID, ValidRequestID,
// ValidRegionKey; the tests pin them): this package sits below router
// and cannot import it.
const (
	maxIDLen   = 63
	maxNameLen = 128
)

// validID: ^[a-z0-9-]+$, at most maxIDLen.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validRequestID: ^[A-Za-z0-9._:-]+$, at most maxNameLen.
func validRequestID(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func validRegionKey(s string) bool {
	prov, id, ok := strings.Cut(s, "/")
	return ok && validID(prov) && validID(id)
}

// clip shortens s for a message: an error never echoes an unbounded
// input.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
