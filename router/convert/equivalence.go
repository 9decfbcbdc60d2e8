package convert

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

// EquivalenceToProto converts an equivalence entry to the API; nil is
// nil.
func EquivalenceToProto(e *equiv.Entry) *pb.EquivalenceEntry {
	if e == nil {
		return nil
	}
	out := &pb.EquivalenceEntry{
		From:         string(e.From),
		To:           string(e.To),
		Version:      int32(e.Version),
		Agreement:    e.Agreement,
		ValidFrom:    timeToProto(e.ValidFrom),
		ValidUntil:   timeToProto(e.ValidUntil),
		Withdrawn:    e.Withdrawn,
		Illustrative: e.Illustrative,
		Source:       e.Source,
	}
	for _, m := range e.Levels {
		out.Levels = append(out.Levels, &pb.EquivalenceMapping{From: m.From, WithCaveats: m.WithCaveats, To: m.To, None: m.None, Note: m.Note})
	}
	return out
}

// EquivalenceFromProto converts an API equivalence entry: the schemes
// are read by name in any letter case (an unknown one is kept as given,
// for equiv.Entry.Validate to name); a version out of range is added to
// v. The output-only fields are ignored.
func EquivalenceFromProto(e *pb.EquivalenceEntry, v *router.Violations) *equiv.Entry {
	if e == nil {
		v.Add("entry", "required")
		return nil
	}
	scheme := func(s string) marking.Scheme {
		if sc, err := marking.ParseScheme(s); err == nil {
			return sc
		}
		return marking.Scheme(s)
	}
	if e.GetVersion() < 0 {
		v.Add("entry.version", "%d; want 0 (the next) or more", e.GetVersion())
	}
	out := &equiv.Entry{
		From:         scheme(e.GetFrom()),
		To:           scheme(e.GetTo()),
		Version:      int(e.GetVersion()),
		Agreement:    e.GetAgreement(),
		ValidFrom:    timeFromProto(e.GetValidFrom()),
		ValidUntil:   timeFromProto(e.GetValidUntil()),
		Withdrawn:    e.GetWithdrawn(),
		Illustrative: e.GetIllustrative(),
		Source:       e.GetSource(),
	}
	for _, m := range e.GetLevels() {
		out.Levels = append(out.Levels, equiv.Mapping{From: m.GetFrom(), WithCaveats: m.GetWithCaveats(), To: m.GetTo(), None: m.GetNone(), Note: m.GetNote()})
	}
	return out
}

// timeFromProto converts a timestamp; unset is the zero time.
func timeFromProto(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime().UTC()
}

// EquivalenceDoc is an equivalence entry as classroutectl prints and
// reads it: the entry in the shape of equiv's data files, and how its
// version came to be (output only: propose -f ignores it).
type EquivalenceDoc struct {
	equiv.Entry `yaml:",inline"`
	InForce     bool       `json:"in_force" yaml:"in_force"`
	Change      string     `json:"change,omitempty" yaml:"change,omitempty"`
	ProposedBy  string     `json:"proposed_by,omitempty" yaml:"proposed_by,omitempty"`
	ApprovedBy  string     `json:"approved_by,omitempty" yaml:"approved_by,omitempty"`
	AppliedAt   *time.Time `json:"applied_at,omitempty" yaml:"applied_at,omitempty"`
}

// EquivalenceDocFromProto is the document of an API entry; nil is nil.
func EquivalenceDocFromProto(e *pb.EquivalenceEntry) *EquivalenceDoc {
	if e == nil {
		return nil
	}
	var v router.Violations
	d := &EquivalenceDoc{Entry: *EquivalenceFromProto(e, &v), InForce: e.GetInForce(), Change: e.GetChangeId(),
		ProposedBy: e.GetProposedBy(), ApprovedBy: e.GetApprovedBy()}
	if t := e.GetApplyTime(); t != nil {
		at := t.AsTime().UTC()
		d.AppliedAt = &at
	}
	return d
}

// Proto is the API entry of d, the output-only fields left out.
func (d *EquivalenceDoc) Proto() *pb.EquivalenceEntry { return EquivalenceToProto(&d.Entry) }
