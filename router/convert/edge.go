package convert

import (
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

// EdgeToProto converts an edge; nil is nil. The output-only fields are
// left to the caller.
func EdgeToProto(e *flow.Edge) *pb.Edge {
	if e == nil {
		return nil
	}
	var kind, dir string
	if e.Kind.Valid() {
		kind = e.Kind.String()
	}
	if e.Direction.Valid() {
		dir = e.Direction.String()
	}
	return &pb.Edge{
		Id: e.ID, Kind: kind, From: e.From, To: e.To, Direction: dir,
		RangeScheme: string(e.Range.Scheme), RangeLow: e.Range.LowMarking, RangeHigh: e.Range.HighMarking,
		Authority: e.Authority, ExpireTime: timeToProto(e.Expires), Revoked: e.Revoked,
		Illustrative: e.Illustrative, Notes: e.Notes,
	}
}

// EdgeFromProto converts an API edge, adding a violation for a kind or
// direction the API does not define; flow.Edge.Validate checks the rest.
func EdgeFromProto(e *pb.Edge, v *router.Violations) *flow.Edge {
	if e == nil {
		v.Add("edge", "required")
		return nil
	}
	out := &flow.Edge{
		ID: e.GetId(), From: e.GetFrom(), To: e.GetTo(),
		Range:     flow.Range{Scheme: schemeOf(e.GetRangeScheme()), LowMarking: e.GetRangeLow(), HighMarking: e.GetRangeHigh()},
		Authority: e.GetAuthority(), Expires: timeFromProto(e.GetExpireTime()), Revoked: e.GetRevoked(),
		Illustrative: e.GetIllustrative(), Notes: e.GetNotes(),
	}
	if e.GetKind() != "" {
		k, err := flow.ParseKind(e.GetKind())
		if err != nil {
			v.Add("edge.kind", "%v", err)
		}
		out.Kind = k
	}
	if e.GetDirection() != "" {
		d, err := flow.ParseDirection(e.GetDirection())
		if err != nil {
			v.Add("edge.direction", "%v", err)
		}
		out.Direction = d
	}
	return out
}

// ServiceToProto converts a catalogue service; nil is nil.
func ServiceToProto(s *flow.Service) *pb.CatalogueService {
	if s == nil {
		return nil
	}
	var personnel string
	if s.Personnel.Valid() {
		personnel = s.Personnel.String()
	}
	return &pb.CatalogueService{
		Name: s.Name, Scheme: string(s.Scheme), Label: s.Marking, Region: s.Region, NetworkDomain: s.NetworkDomain,
		OperatorNationalities: s.OperatorNationalities, Personnel: personnel, Illustrative: s.Illustrative, Notes: s.Notes,
	}
}

// ServiceFromProto converts an API service, adding a violation for a
// personnel screening the API does not define; flow.Service.Validate
// checks the rest.
func ServiceFromProto(s *pb.CatalogueService, v *router.Violations) *flow.Service {
	if s == nil {
		v.Add("service", "required")
		return nil
	}
	out := &flow.Service{
		Name: s.GetName(), Scheme: schemeOf(s.GetScheme()), Marking: s.GetLabel(), Region: s.GetRegion(),
		NetworkDomain: s.GetNetworkDomain(), OperatorNationalities: s.GetOperatorNationalities(),
		Illustrative: s.GetIllustrative(), Notes: s.GetNotes(),
	}
	if s.GetPersonnel() != "" {
		if err := out.Personnel.UnmarshalText([]byte(s.GetPersonnel())); err != nil {
			v.Add("service.personnel", "%v", err)
		}
	}
	return out
}

// schemeOf reads a scheme's name, keeping one it does not know as
// written (Validate names it).
func schemeOf(s string) marking.Scheme {
	if sc, err := marking.ParseScheme(s); err == nil {
		return sc
	}
	return marking.Scheme(s)
}

// EdgeDoc is an edge as classroutectl prints and reads it: the edge in
// the shape of router/flow's data files, and how it came to be (output
// only: propose -f ignores it).
type EdgeDoc struct {
	flow.Edge  `yaml:",inline"`
	InForce    bool       `json:"in_force" yaml:"in_force"`
	Change     string     `json:"change,omitempty" yaml:"change,omitempty"`
	ProposedBy string     `json:"proposed_by,omitempty" yaml:"proposed_by,omitempty"`
	ApprovedBy string     `json:"approved_by,omitempty" yaml:"approved_by,omitempty"`
	AppliedAt  *time.Time `json:"applied_at,omitempty" yaml:"applied_at,omitempty"`
}

// EdgeDocFromProto is the document of an API edge; nil is nil.
func EdgeDocFromProto(e *pb.Edge) *EdgeDoc {
	if e == nil {
		return nil
	}
	var v router.Violations
	d := &EdgeDoc{Edge: *EdgeFromProto(e, &v), InForce: e.GetInForce(), Change: e.GetChangeId(),
		ProposedBy: e.GetProposedBy(), ApprovedBy: e.GetApprovedBy()}
	if t := e.GetApplyTime(); t != nil {
		at := t.AsTime().UTC()
		d.AppliedAt = &at
	}
	return d
}

// ServiceDoc is a catalogue service as classroutectl prints and reads
// it (the output-only fields ignored by propose -f).
type ServiceDoc struct {
	flow.Service `yaml:",inline"`
	Change       string     `json:"change,omitempty" yaml:"change,omitempty"`
	ProposedBy   string     `json:"proposed_by,omitempty" yaml:"proposed_by,omitempty"`
	ApprovedBy   string     `json:"approved_by,omitempty" yaml:"approved_by,omitempty"`
	AppliedAt    *time.Time `json:"applied_at,omitempty" yaml:"applied_at,omitempty"`
}

// ServiceDocFromProto is the document of an API service; nil is nil.
func ServiceDocFromProto(s *pb.CatalogueService) *ServiceDoc {
	if s == nil {
		return nil
	}
	var v router.Violations
	d := &ServiceDoc{Service: *ServiceFromProto(s, &v), Change: s.GetChangeId(), ProposedBy: s.GetProposedBy(), ApprovedBy: s.GetApprovedBy()}
	if t := s.GetApplyTime(); t != nil {
		at := t.AsTime().UTC()
		d.AppliedAt = &at
	}
	return d
}
