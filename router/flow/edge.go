package flow

import (
	"fmt"
	"strings"
	"time"

	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// Kind is the kind of an edge; the package doc says what each permits.
type Kind uint8

// Edge kinds. The zero Kind is invalid.
const (
	_                Kind = iota
	Diode                 // one-way transfer, low to high; changes no label
	Guard                 // filtering, reviewing transfer: the only edge that moves data down
	Access                // access solution: reaches another domain; changes no label
	ConnectedService      // a service reached across a boundary, holding data up to its range's ceiling
)

var kindNames = [...]string{"", "diode", "guard", "access", "connected-service"}

// Valid reports whether k is a defined kind.
func (k Kind) Valid() bool { return k >= Diode && k <= ConnectedService }

func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind reads "diode", "guard", "access" or "connected-service".
func ParseKind(s string) (Kind, error) {
	for k := Diode; k <= ConnectedService; k++ {
		if strings.EqualFold(kindNames[k], s) && isASCII(s) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown edge kind %q (want diode, guard, access or connected-service)", clip(s))
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("invalid edge kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Range is the labels an edge is approved for: every label L with
// High dominating L and L dominating Low. Both bounds are of one scheme,
// so a label of another scheme is never in range.
type Range struct {
	// Scheme is the scheme both bounds are written in; empty on input
	// means the one their syntax names (Validate sets it).
	Scheme marking.Scheme `json:"scheme" yaml:"scheme"`
	// LowMarking and HighMarking are the bounds' markings, canonical once
	// validated.
	LowMarking  string `json:"low" yaml:"low"`
	HighMarking string `json:"high" yaml:"high"`
	// Low and High are the parsed bounds, set by Validate or NewRange.
	Low  marking.Label `json:"-" yaml:"-"`
	High marking.Label `json:"-" yaml:"-"`
}

// NewRange returns the range from low to high, markings filled in. It
// does not check it: Validate does.
func NewRange(low, high marking.Label) Range {
	return Range{Scheme: high.Scheme, LowMarking: low.String(), HighMarking: high.String(), Low: low, High: high}
}

// Covers reports whether l is in r.
func (r Range) Covers(l marking.Label) bool {
	return r.High.Dominates(l) && l.Dominates(r.Low)
}

func (r Range) String() string {
	return fmt.Sprintf("%s to %s", labelText(r.Low), labelText(r.High))
}

// validate parses the markings in p, sets the parsed bounds and the
// canonical markings, and checks that High dominates Low.
func (r *Range) validate(p marking.Parser) []string {
	var errs []string
	if r.Scheme != "" && !r.Scheme.Valid() {
		return []string{fmt.Sprintf("range.scheme: unknown scheme %q", clip(string(r.Scheme)))}
	}
	low, err := p.Parse(r.Scheme, r.LowMarking)
	if err != nil {
		errs = append(errs, fmt.Sprintf("range.low: %v", err))
	}
	high, err := p.Parse(r.Scheme, r.HighMarking)
	if err != nil {
		errs = append(errs, fmt.Sprintf("range.high: %v", err))
	}
	if len(errs) > 0 {
		return errs
	}
	if low.Scheme != high.Scheme {
		return []string{fmt.Sprintf("range: low is %s and high is %s: a range is in one scheme", low.Scheme, high.Scheme)}
	}
	if !high.Dominates(low) {
		return []string{fmt.Sprintf("range: high %s does not dominate low %s", labelText(high), labelText(low))}
	}
	r.Scheme, r.Low, r.High = high.Scheme, low, high
	r.LowMarking, r.HighMarking = low.String(), high.String()
	return nil
}

// Edge is an accredited way across a boundary: a cross-domain solution
// (diode, guard, access) or a connected service. It is data, proposed
// and approved by two administrators; Check reads it.
type Edge struct {
	// ID names the edge (lower-case letters, digits and '-').
	ID   string `json:"id" yaml:"id"`
	Kind Kind   `json:"kind" yaml:"kind"`
	// From and To are its endpoints, each a network domain name
	// ("siprnet") or a region key ("aws/us-gov-west-1"); an air-gapped
	// network is named by its region key. A connected service's To is
	// the service's region.
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
	// Direction is which way it moves data, seen from From: write moves
	// data From → To, read To → From, call both. A diode low → high has
	// its low side as From and direction write, or its high side as From
	// and direction read (the high side reads up the diode); it never
	// calls.
	Direction Direction `json:"direction" yaml:"direction"`
	// Range is the labels it is approved for.
	Range Range `json:"range" yaml:"range"`
	// Authority names who accredited it ("NCDSMO", "DISA CDS AO").
	Authority string `json:"authority" yaml:"authority"`
	// Expires is when its accreditation ends. The zero time is refused.
	Expires time.Time `json:"expires" yaml:"expires"`
	// Revoked withdraws it whatever Expires says.
	Revoked bool `json:"revoked,omitempty" yaml:"revoked,omitempty"`
	// Illustrative marks catalogue data resting on uncertain public
	// facts ([U] in DOMAIN.md): operators must replace it.
	Illustrative bool `json:"illustrative,omitempty" yaml:"illustrative,omitempty"`
	// Notes says where the facts come from.
	Notes string `json:"notes,omitempty" yaml:"notes,omitempty"`
}

// InForce reports whether e is accredited at now: not revoked and not
// expired.
func (e *Edge) InForce(now time.Time) bool { return !e.Revoked && now.Before(e.Expires) }

// Name is how messages cite e: "guard sipr-guard-1".
//
// Refusals read by a tenant's users name an edge this way and no more:
// its authority, its approved range and its expiry are for catalogue
// administrators and security auditors (who may read edges), not for
// every submitter whose flow came near it.
func (e *Edge) Name() string { return fmt.Sprintf("%s %s", e.Kind, e.ID) }

// Validate checks every field, naming each one wrong, and sets the
// range's parsed bounds (reading its markings with p).
func (e *Edge) Validate(p marking.Parser) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !validID(e.ID) {
		bad("id: %q is not an edge id (lower-case letters, digits and '-', at most %d)", clip(e.ID), maxIDLen)
	}
	if !e.Kind.Valid() {
		bad("kind: %s: want diode, guard, access or connected-service", e.Kind)
	}
	fromOK, toOK := validEndpoint(e.From), validEndpoint(e.To)
	if !fromOK {
		bad("from: %s", endpointProblem(e.From))
	}
	if !toOK {
		bad("to: %s", endpointProblem(e.To))
	}
	if fromOK && toOK && e.From == e.To {
		bad("from and to are both %s: an edge joins two sides", e.From)
	}
	if e.Kind == ConnectedService && toOK && !validRegionKey(e.To) {
		bad("to: %s is a network domain: a connected service's to is the service's region key", e.To)
	}
	switch {
	case !e.Direction.Valid():
		bad("direction: %s: want read, write or call", e.Direction)
	case e.Kind == Diode && e.Direction == Call:
		bad("direction: call: a diode carries data one way only (write: from → to, read: to → from)")
	}
	errs = append(errs, e.Range.validate(p)...)
	if strings.TrimSpace(e.Authority) == "" {
		bad("authority: required: who accredited the edge")
	}
	if e.Expires.IsZero() {
		bad("expires: required: when the accreditation ends")
	}
	if len(errs) > 0 {
		return fmt.Errorf("edge %s: %s", clip(e.ID), strings.Join(errs, "; "))
	}
	return nil
}

// validEndpoint reports whether s is a network domain name other than
// air-gapped, or a region key.
func validEndpoint(s string) bool {
	return (ValidDomain(s) && s != DomainAirGapped) || validRegionKey(s)
}

func endpointProblem(s string) string {
	if s == DomainAirGapped {
		return "air-gapped names no one network: name the air-gapped region by its key"
	}
	return fmt.Sprintf("%q is neither a network domain (%s) nor a region key (provider/id)", clip(s), strings.Join(domains[:4], ", "))
}

// matches reports whether endpoint names side s: its region key, or its
// network domain (never an air-gapped one).
func matches(endpoint string, s Side) bool {
	return endpoint == s.Region || (endpoint == s.Domain && s.Domain != DomainAirGapped)
}

// Service is a catalogue entry a dependency may name: a data store, an
// API, a model endpoint, with its own label, region and operators.
type Service struct {
	// Name is the service's name (lower-case letters, digits and '-').
	Name string `json:"name" yaml:"name"`
	// Scheme is the scheme Marking is written in; empty on input means
	// the one its syntax names (Validate sets it).
	Scheme marking.Scheme `json:"scheme,omitempty" yaml:"scheme,omitempty"`
	// Marking is the service's label as written, canonical once
	// validated.
	Marking string `json:"label" yaml:"label"`
	// Label is Marking parsed, set by Validate.
	Label marking.Label `json:"-" yaml:"-"`
	// Region is the key of the region the service runs in.
	Region string `json:"region" yaml:"region"`
	// NetworkDomain is that region's network domain name.
	NetworkDomain string `json:"network_domain" yaml:"network_domain"`
	// OperatorNationalities are the nationalities of the people who
	// operate the service.
	OperatorNationalities []string `json:"operator_nationalities" yaml:"operator_nationalities"`
	// Personnel is their screening.
	Personnel Personnel `json:"personnel" yaml:"personnel"`
	// Illustrative marks catalogue data resting on uncertain public
	// facts ([U] in DOMAIN.md): operators must replace it.
	Illustrative bool `json:"illustrative,omitempty" yaml:"illustrative,omitempty"`
	// Notes says where the facts come from.
	Notes string `json:"notes,omitempty" yaml:"notes,omitempty"`
}

// Target is the dependency target naming s.
func (s *Service) Target() Target { return ServiceNamed(s.Name) }

// Side is where s runs, with its operators.
func (s *Service) Side() Side {
	return Side{Region: s.Region, Domain: s.NetworkDomain, Operators: s.OperatorNationalities, Personnel: s.Personnel}
}

// Validate checks every field, naming each one wrong, and sets Label
// (reading Marking with p) and the canonical Marking and Scheme.
func (s *Service) Validate(p marking.Parser) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !validID(s.Name) {
		bad("name: %q is not a service name (lower-case letters, digits and '-', at most %d)", clip(s.Name), maxIDLen)
	}
	if s.Scheme != "" && !s.Scheme.Valid() {
		bad("scheme: unknown scheme %q", clip(string(s.Scheme)))
	} else if l, err := p.Parse(s.Scheme, s.Marking); err != nil {
		bad("label: %v", err)
	} else {
		s.Label, s.Scheme, s.Marking = l, l.Scheme, l.String()
	}
	if !validRegionKey(s.Region) {
		bad("region: %q is not a region key (provider/id)", clip(s.Region))
	}
	if !ValidDomain(s.NetworkDomain) {
		bad("network_domain: unknown network domain %q (want one of %s)", clip(s.NetworkDomain), strings.Join(domains[:], ", "))
	}
	if len(s.OperatorNationalities) == 0 {
		bad("operator_nationalities: required: who operates the service")
	}
	for i, n := range s.OperatorNationalities {
		if !label.IsCountry(n) {
			bad("operator_nationalities[%d]: %q is not an ISO 3166 country trigraph", i, clip(n))
		}
	}
	if !s.Personnel.Valid() {
		bad("personnel: %s", s.Personnel)
	}
	if len(errs) > 0 {
		return fmt.Errorf("service %s: %s", clip(s.Name), strings.Join(errs, "; "))
	}
	return nil
}
