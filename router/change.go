package router

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

// Accreditation changes need two people. What a region is accredited for
// — its accreditation, and the facts the security rules read: where the
// data rests, who operates it and how they are screened, the network it
// sits on, whom it may serve — is changed only by a proposal of one
// catalogue administrator approved by a different one; so is adding a
// region. Operational facts (status, capacity, cost, capabilities,
// location, names and notes) are changed by one administrator.

// ChangeKind classifies a proposed region change.
type ChangeKind string

// Change kinds.
const (
	ChangeAdd    ChangeKind = "add"    // a new region
	ChangeRaise  ChangeKind = "raise"  // a higher level, or more controls, or a revocation lifted
	ChangeLower  ChangeKind = "lower"  // a lower level, or fewer controls
	ChangeRevoke ChangeKind = "revoke" // the accreditation revoked
	ChangeOther  ChangeKind = "change" // other security facts changed
	// ChangeWithdraw: an equivalence entry withdrawn.
	ChangeWithdraw ChangeKind = "withdraw"
)

// Change states (Change.State).
const (
	ChangePending  = "pending"
	ChangeApplied  = "applied"
	ChangeRejected = "rejected"
)

// Change is a proposed two-person change of a region or of an
// equivalence entry: proposed by one catalogue administrator, applied or
// rejected by another (router/state stores it under changes/<id>; its
// json tags are that stored format). It carries one of Region,
// Equivalence, Edge or Service.
type Change struct {
	ID     string `json:"id"`
	Region Region `json:"region,omitzero"`
	// Equivalence is the whole entry proposed, at its next version
	// (withdrawn: a withdrawal); nil for a region change.
	Equivalence *equiv.Entry `json:"equivalence,omitempty"`
	// Edge and Service are the whole cross-domain edge or catalogue
	// service proposed (router/flow); Withdraw says the proposal removes
	// it. A revocation is an edge proposed with Revoked set.
	Edge     *flow.Edge    `json:"edge,omitempty"`
	Service  *flow.Service `json:"service,omitempty"`
	Withdraw bool          `json:"withdraw,omitempty"`
	Kind     ChangeKind    `json:"kind"`
	// Fields are the security-relevant fields it changes.
	Fields []string `json:"fields"`
	Reason string   `json:"reason,omitempty"`
	// BaseRevision is the mod revision of the region (or equivalence)
	// record it replaces (0: a new one).
	BaseRevision int64     `json:"base_revision"`
	ProposedBy   string    `json:"proposed_by"`
	ProposedAt   time.Time `json:"proposed_at"`
	State        string    `json:"state"`
	DecidedBy    string    `json:"decided_by,omitempty"`
	DecidedAt    time.Time `json:"decided_at,omitzero"`
	Note         string    `json:"note,omitempty"`
	// Revision is the record's mod revision (not stored).
	Revision int64 `json:"-"`
}

// SecurityChanges lists the security-relevant fields that differ between
// a region and its proposed replacement; old is nil for a new region.
// None means the change is operational and needs one person.
func SecurityChanges(old, new *Region) []string {
	if old == nil {
		return []string{"region (new)"}
	}
	var out []string
	a, b := &old.Accreditation, &new.Accreditation
	add := func(changed bool, field string) {
		if changed {
			out = append(out, field)
		}
	}
	add(a.MaxLevel != b.MaxLevel, "accreditation.max_level")
	add(!sameSet(a.Controls, b.Controls), "accreditation.controls")
	add(a.ImpactLevel != b.ImpactLevel, "accreditation.impact_level")
	add(a.FedRAMP != b.FedRAMP, "accreditation.fedramp")
	add(!sameSet(a.Frameworks, b.Frameworks), "accreditation.frameworks")
	add(!a.Expires.Equal(b.Expires), "accreditation.expires")
	add(a.Revoked != b.Revoked, "accreditation.revoked")
	add(old.Country != new.Country, "country")
	add(old.OperatorJurisdiction != new.OperatorJurisdiction, "operator_jurisdiction")
	add(!sameSet(old.OperatorNationalities, new.OperatorNationalities), "operator_nationalities")
	add(old.Personnel != new.Personnel, "personnel")
	add(old.NetworkDomain != new.NetworkDomain, "network_domain")
	add(!sameSet(old.Customers, new.Customers), "customers")
	add(!sameAccreditations(old.Accreditations, new.Accreditations), "accreditations")
	return out
}

// sameAccreditations reports whether two lists of scheme accreditations
// hold the same security facts, in any order (illustrative flags and
// notes aside).
func sameAccreditations(a, b []SchemeAccreditation) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(x SchemeAccreditation) string {
		c := slices.Clone(x.Caveats)
		slices.Sort(c)
		return strings.Join([]string{string(x.Scheme), x.MaxLevel, strings.Join(c, ","), x.Authority,
			x.Expires.UTC().Format(time.RFC3339Nano), strconv.FormatBool(x.Revoked)}, "\x00")
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// lowersAccreditations reports whether new takes away anything old's
// scheme accreditations held: one removed, revoked, or replaced by one
// of the same scheme at a lower level or with fewer caveats.
func lowersAccreditations(old, new []SchemeAccreditation) bool {
	for _, o := range old {
		if o.Revoked {
			continue
		}
		held := slices.ContainsFunc(new, func(n SchemeAccreditation) bool {
			return n.Scheme == o.Scheme && !n.Revoked && n.Level.Axis == o.Level.Axis && n.Level.Rank >= o.Level.Rank &&
				subset(o.Caveats, n.Caveats) && !n.Expires.Before(o.Expires)
		})
		if !held {
			return true
		}
	}
	return false
}

// ClassifyChange says what kind of change a proposal is.
func ClassifyChange(old, new *Region) ChangeKind {
	switch {
	case old == nil:
		return ChangeAdd
	case new.Accreditation.Revoked && !old.Accreditation.Revoked:
		return ChangeRevoke
	case new.Accreditation.MaxLevel > old.Accreditation.MaxLevel,
		!new.Accreditation.Revoked && old.Accreditation.Revoked:
		return ChangeRaise
	case new.Accreditation.MaxLevel < old.Accreditation.MaxLevel:
		return ChangeLower
	}
	oc, nc := old.Accreditation.Controls, new.Accreditation.Controls
	switch {
	case subset(oc, nc) && len(nc) > len(oc):
		return ChangeRaise
	case subset(nc, oc) && len(oc) > len(nc):
		return ChangeLower
	}
	if !sameAccreditations(old.Accreditations, new.Accreditations) {
		if lowersAccreditations(old.Accreditations, new.Accreditations) {
			return ChangeLower
		}
		return ChangeRaise
	}
	return ChangeOther
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.EqualFunc(slices.Compact(x), slices.Compact(y), strings.EqualFold)
}

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// Subject names what a change changes: "region aws/us-east-1",
// "equivalence GBR→US".
func (c *Change) Subject() string {
	switch {
	case c.Equivalence != nil:
		return "equivalence " + c.Equivalence.Key().String()
	case c.Edge != nil:
		return "edge " + c.Edge.ID
	case c.Service != nil:
		return "service " + c.Service.Name
	}
	return "region " + c.Region.Key()
}

// EdgeChanges lists the fields that differ between an edge and its
// proposed replacement; old is nil for a new edge, new nil for a
// withdrawal. None means the proposal changes nothing.
func EdgeChanges(old, new *flow.Edge) []string {
	switch {
	case old == nil:
		return []string{"edge (new)"}
	case new == nil:
		return []string{"edge (withdrawn)"}
	}
	var out []string
	add := func(changed bool, field string) {
		if changed {
			out = append(out, field)
		}
	}
	add(old.Kind != new.Kind, "edge.kind")
	add(old.From != new.From, "edge.from")
	add(old.To != new.To, "edge.to")
	add(old.Direction != new.Direction, "edge.direction")
	add(old.Range.Scheme != new.Range.Scheme || old.Range.LowMarking != new.Range.LowMarking ||
		old.Range.HighMarking != new.Range.HighMarking, "edge.range")
	add(old.Authority != new.Authority, "edge.authority")
	add(!old.Expires.Equal(new.Expires), "edge.expires")
	add(old.Revoked != new.Revoked, "edge.revoked")
	add(old.Illustrative != new.Illustrative, "edge.illustrative")
	add(old.Notes != new.Notes, "edge.notes")
	return out
}

// ClassifyEdgeChange says what kind of change a proposed edge is: add,
// withdraw (removed), revoke (revoked), raise (a revocation lifted) or
// change.
func ClassifyEdgeChange(old, new *flow.Edge) ChangeKind {
	switch {
	case old == nil:
		return ChangeAdd
	case new == nil:
		return ChangeWithdraw
	case new.Revoked && !old.Revoked:
		return ChangeRevoke
	case old.Revoked && !new.Revoked:
		return ChangeRaise
	}
	return ChangeOther
}

// ServiceChanges lists the fields that differ between a catalogue
// service and its proposed replacement; old is nil for a new service,
// new nil for a withdrawal. None means the proposal changes nothing.
func ServiceChanges(old, new *flow.Service) []string {
	switch {
	case old == nil:
		return []string{"service (new)"}
	case new == nil:
		return []string{"service (withdrawn)"}
	}
	var out []string
	add := func(changed bool, field string) {
		if changed {
			out = append(out, field)
		}
	}
	add(old.Scheme != new.Scheme || old.Marking != new.Marking, "service.label")
	add(old.Region != new.Region, "service.region")
	add(old.NetworkDomain != new.NetworkDomain, "service.network_domain")
	add(!sameSet(old.OperatorNationalities, new.OperatorNationalities), "service.operator_nationalities")
	add(old.Personnel != new.Personnel, "service.personnel")
	add(old.Illustrative != new.Illustrative, "service.illustrative")
	add(old.Notes != new.Notes, "service.notes")
	return out
}

// EquivalenceChanges lists the fields that differ between an entry and
// its proposed next version; old is nil for a new pair. None means the
// proposal changes nothing.
func EquivalenceChanges(old, new *equiv.Entry) []string {
	if old == nil {
		return []string{"equivalence (new)"}
	}
	var out []string
	add := func(changed bool, field string) {
		if changed {
			out = append(out, field)
		}
	}
	add(old.Agreement != new.Agreement, "equivalence.agreement")
	add(!old.ValidFrom.Equal(new.ValidFrom), "equivalence.valid_from")
	add(!old.ValidUntil.Equal(new.ValidUntil), "equivalence.valid_until")
	add(old.Withdrawn != new.Withdrawn, "equivalence.withdrawn")
	add(!slices.EqualFunc(old.Levels, new.Levels, sameMapping), "equivalence.levels")
	add(old.Illustrative != new.Illustrative, "equivalence.illustrative")
	add(old.Source != new.Source, "equivalence.source")
	return out
}

func sameMapping(a, b equiv.Mapping) bool {
	return a.From == b.From && a.To == b.To && a.None == b.None && a.Note == b.Note && sameSet(a.WithCaveats, b.WithCaveats)
}

// ClassifyEquivalenceChange says what kind of change a proposed entry
// is: add (a new pair), withdraw, lower (a row that mapped now maps to a
// lower or incomparable level, or to none, or is gone; or the validity
// narrowed: labels that were held somewhere may no longer be), raise (a
// withdrawn entry reinstated, a row added or mapped higher, the validity
// widened), or change (the rest: the agreement, notes, sources).
func ClassifyEquivalenceChange(p marking.Parser, old, new *equiv.Entry) ChangeKind {
	switch {
	case old == nil:
		return ChangeAdd
	case new.Withdrawn && !old.Withdrawn:
		return ChangeWithdraw
	case old.Withdrawn && !new.Withdrawn:
		return ChangeRaise
	}
	rowKey := func(m *equiv.Mapping) string {
		c := slices.Clone(m.WithCaveats)
		slices.Sort(c)
		return m.From + "|" + strings.Join(c, ",")
	}
	newRows := make(map[string]*equiv.Mapping, len(new.Levels))
	for i := range new.Levels {
		newRows[rowKey(&new.Levels[i])] = &new.Levels[i]
	}
	lower, raise := false, false
	oldRows := make(map[string]bool, len(old.Levels))
	for i := range old.Levels {
		o := &old.Levels[i]
		oldRows[rowKey(o)] = true
		n := newRows[rowKey(o)]
		switch {
		case n == nil:
			lower = lower || !o.None
		case o.None && !n.None:
			raise = true
		case !o.None && n.None:
			lower = true
		case !o.None && o.To != n.To:
			ol, oerr := p.ParseLevel(new.To, o.To)
			nl, nerr := p.ParseLevel(new.To, n.To)
			switch {
			case oerr != nil || nerr != nil || ol.Axis != nl.Axis || nl.Rank < ol.Rank:
				lower = true // incomparable: fail closed
			case nl.Rank > ol.Rank:
				raise = true
			}
		}
	}
	for k, n := range newRows {
		if !oldRows[k] && !n.None {
			raise = true
		}
	}
	narrowed := later(new.ValidFrom, old.ValidFrom) || earlier(new.ValidUntil, old.ValidUntil)
	widened := later(old.ValidFrom, new.ValidFrom) || earlier(old.ValidUntil, new.ValidUntil)
	switch {
	case lower || narrowed:
		return ChangeLower
	case raise || widened:
		return ChangeRaise
	}
	return ChangeOther
}

// later reports whether a starts later than b, a zero start being the
// earliest.
func later(a, b time.Time) bool { return !a.IsZero() && (b.IsZero() || a.After(b)) }

// earlier reports whether a ends earlier than b, a zero end being the
// latest.
func earlier(a, b time.Time) bool { return !a.IsZero() && (b.IsZero() || a.Before(b)) }
