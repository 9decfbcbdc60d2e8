package convert

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// Enums are offset by one: the API's zero value is UNSPECIFIED, which a
// required field refuses.

func levelToProto(l label.Level) pb.Level { return pb.Level(l) + 1 }

func levelFromProto(l pb.Level, field string, v *router.Violations) label.Level {
	if l == pb.Level_LEVEL_UNSPECIFIED {
		v.Add(field, "required")
		return 0
	}
	if _, ok := pb.Level_name[int32(l)]; !ok {
		v.Add(field, "unknown value %d", int32(l))
		return 0
	}
	return label.Level(l - 1)
}

// enumFromProto converts an API enum whose values are the domain's plus
// one; UNSPECIFIED and unknown values are violations of field.
func enumFromProto[E ~int32](e E, names map[int32]string, field string, v *router.Violations) uint8 {
	if e == 0 {
		v.Add(field, "required")
		return 0
	}
	if _, ok := names[int32(e)]; !ok {
		v.Add(field, "unknown value %d", int32(e))
		return 0
	}
	return uint8(e - 1)
}

// LabelToProto converts a parsed US label, with its banner.
func LabelToProto(l label.Label) *pb.Label {
	return &pb.Label{
		Banner:     l.String(),
		Level:      levelToProto(l.Level),
		Controls:   l.Controls,
		AnyNation:  l.AnyNation,
		Nations:    l.Nations,
		Dissem:     l.Dissem,
		Scheme:     string(marking.US),
		LevelName:  l.Level.String(),
		Originator: "USA",
	}
}

// MarkingToProto converts a parsed label of any scheme, with its
// canonical marking. A US label converts as LabelToProto does.
func MarkingToProto(m marking.Label) *pb.Label {
	if m.Scheme == marking.US && m.US != nil {
		return LabelToProto(*m.US)
	}
	return &pb.Label{
		Banner:     m.String(),
		Scheme:     string(m.Scheme),
		LevelName:  m.Level.Name,
		Axis:       m.Level.Axis,
		Caveats:    m.Caveats,
		AnyNation:  m.AnyNation,
		Nations:    m.Nations,
		Originator: m.Originator,
	}
}

// WorkloadLabelToProto converts the parsed label of a validated workload.
func WorkloadLabelToProto(w *router.Workload) *pb.Label {
	if w.Foreign() {
		return MarkingToProto(w.Marking)
	}
	return LabelToProto(w.Label)
}

func schemeAccreditationsFromProto(in []*pb.SchemeAccreditation, v *router.Violations) []router.SchemeAccreditation {
	var out []router.SchemeAccreditation
	for i, a := range in {
		sa := router.SchemeAccreditation{
			Scheme: marking.Scheme(a.GetScheme()), MaxLevel: a.GetMaxLevel(), Caveats: a.GetCaveats(),
			Authority: a.GetAuthority(), Revoked: a.GetRevoked(), Illustrative: a.GetIllustrative(), Notes: a.GetNotes(),
		}
		if e := a.GetExpires(); e != nil {
			if err := e.CheckValid(); err != nil {
				v.Add(fmt.Sprintf("region.accreditations[%d].expires", i), "%v", err)
			} else {
				sa.Expires = e.AsTime()
			}
		}
		out = append(out, sa)
	}
	return out
}

func schemeAccreditationsToProto(in []router.SchemeAccreditation) []*pb.SchemeAccreditation {
	var out []*pb.SchemeAccreditation
	for _, a := range in {
		out = append(out, &pb.SchemeAccreditation{
			Scheme: string(a.Scheme), MaxLevel: a.MaxLevel, Caveats: a.Caveats, Authority: a.Authority,
			Expires: timeToProto(a.Expires), Revoked: a.Revoked, Illustrative: a.Illustrative, Notes: a.Notes,
		})
	}
	return out
}

func resourcesToProto(r router.Resources) *pb.Resources {
	return &pb.Resources{MilliCpu: r.MilliCPU, MemoryMib: r.MemoryMiB, Gpu: r.GPU}
}

// ResourcesFromProto converts an amount of compute; nil is none.
func ResourcesFromProto(r *pb.Resources) router.Resources {
	return router.Resources{MilliCPU: r.GetMilliCpu(), MemoryMiB: r.GetMemoryMib(), GPU: r.GetGpu()}
}

func locationToProto(l router.Location) *pb.Location { return &pb.Location{Lat: l.Lat, Lon: l.Lon} }

func locationFromProto(l *pb.Location) router.Location {
	return router.Location{Lat: l.GetLat(), Lon: l.GetLon()}
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// WorkloadFromProto converts an API workload; structural problems are
// added to v. The label is parsed later, by router.ValidateWorkload.
func WorkloadFromProto(w *pb.Workload, v *router.Violations) *router.Workload {
	if w == nil {
		v.Add("workload", "required")
		return nil
	}
	out := &router.Workload{
		Name:                 w.GetName(),
		Tenant:               w.GetTenant(),
		Banner:               w.GetLabel(),
		Scheme:               marking.Scheme(w.GetScheme()),
		Dependencies:         dependenciesFromProto(w.GetDependencies(), v),
		AllowedCountries:     w.GetAllowedStorageCountries(),
		AllowedJurisdictions: w.GetAllowedJurisdictions(),
		Capabilities:         w.GetCapabilities(),
		StorageTier:          w.GetStorageTier(),
		Resources:            ResourcesFromProto(w.GetResources()),
		Replicas:             int(w.GetReplicas()),
		MinImpactLevel:       int(w.GetMinImpactLevel()),
		Spread: router.Spread{
			MinDistanceKm:     w.GetSpread().GetMinDistanceKm(),
			DistinctProviders: w.GetSpread().GetDistinctProviders(),
		},
		Preferences: router.Preferences{
			Providers:  w.GetPreferences().GetProviders(),
			CostWeight: w.GetPreferences().GetCostWeight(),
		},
	}
	if n := w.GetPreferences().GetNear(); n != nil {
		loc := locationFromProto(n)
		out.Preferences.Near = &loc
	}
	switch f := w.GetMinFedramp(); f {
	case pb.FedRAMP_FED_RAMP_UNSPECIFIED:
	default:
		out.MinFedRAMP = router.FedRAMP(enumFromProto(f, pb.FedRAMP_name, "workload.min_fedramp", v))
	}
	switch w.GetExportControl() {
	case pb.ExportControl_EXPORT_CONTROL_UNSPECIFIED, pb.ExportControl_EXPORT_CONTROL_NONE:
		out.ExportControl = router.ExportNone
	case pb.ExportControl_EXPORT_CONTROL_EAR:
		out.ExportControl = router.ExportEAR
	case pb.ExportControl_EXPORT_CONTROL_ITAR:
		out.ExportControl = router.ExportITAR
	default:
		v.Add("workload.export_control", "unknown value %d", int32(w.GetExportControl()))
	}
	return out
}

// WorkloadToProto converts a domain workload to the API.
func WorkloadToProto(w *router.Workload) *pb.Workload {
	out := &pb.Workload{
		Name:                    w.Name,
		Tenant:                  w.Tenant,
		Label:                   w.Banner,
		Scheme:                  workloadScheme(w),
		Dependencies:            dependenciesToProto(w.Dependencies),
		AllowedStorageCountries: w.AllowedCountries,
		AllowedJurisdictions:    w.AllowedJurisdictions,
		ExportControl:           pb.ExportControl(w.ExportControl) + 1,
		Capabilities:            w.Capabilities,
		StorageTier:             w.StorageTier,
		Resources:               resourcesToProto(w.Resources),
		Replicas:                int32(w.Replicas),
		MinImpactLevel:          int32(w.MinImpactLevel),
		MinFedramp:              pb.FedRAMP(w.MinFedRAMP) + 1,
		Spread:                  &pb.Spread{MinDistanceKm: w.Spread.MinDistanceKm, DistinctProviders: w.Spread.DistinctProviders},
		Preferences:             &pb.Preferences{Providers: w.Preferences.Providers, CostWeight: w.Preferences.CostWeight},
	}
	if w.Preferences.Near != nil {
		out.Preferences.Near = locationToProto(*w.Preferences.Near)
	}
	return out
}

func dependenciesFromProto(in []string, v *router.Violations) []flow.Dependency {
	var out []flow.Dependency
	for i, s := range in {
		d, err := flow.ParseDependency(s)
		if err != nil {
			v.Add(fmt.Sprintf("workload.dependencies[%d]", i), "%v", err)
			continue
		}
		out = append(out, d)
	}
	return out
}

func dependenciesToProto(in []flow.Dependency) []string {
	var out []string
	for _, d := range in {
		out = append(out, d.String())
	}
	return out
}

// workloadScheme is the scheme of a validated or stored workload, by name.
func workloadScheme(w *router.Workload) string {
	if w.Scheme == "" {
		return string(marking.US)
	}
	return string(w.Scheme)
}

// RegionFromProto converts an API region; problems are added to v.
func RegionFromProto(r *pb.Region, v *router.Violations) *router.Region {
	if r == nil {
		v.Add("region", "required")
		return nil
	}
	a := r.GetAccreditation()
	if a == nil {
		v.Add("region.accreditation", "required")
	}
	out := &router.Region{
		Provider:              r.GetProvider(),
		ID:                    r.GetId(),
		Name:                  r.GetName(),
		Country:               r.GetCountry(),
		OperatorJurisdiction:  r.GetOperatorJurisdiction(),
		OperatorNationalities: r.GetOperatorNationalities(),
		Personnel:             router.Personnel(enumFromProto(r.GetPersonnel(), pb.Personnel_name, "region.personnel", v)),
		NetworkDomain:         router.NetworkDomain(enumFromProto(r.GetNetworkDomain(), pb.NetworkDomain_name, "region.network_domain", v)),
		Customers:             r.GetCustomers(),
		Capabilities:          r.GetCapabilities(),
		StorageTiers:          r.GetStorageTiers(),
		Capacity:              ResourcesFromProto(r.GetCapacity()),
		Location:              locationFromProto(r.GetLocation()),
		Cost:                  r.GetCost(),
		Status:                router.Status(enumFromProto(r.GetStatus(), pb.RegionStatus_name, "region.status", v)),
		Illustrative:          r.GetIllustrative(),
		Notes:                 r.GetNotes(),
		Accreditations:        schemeAccreditationsFromProto(r.GetAccreditations(), v),
	}
	if a != nil {
		out.Accreditation = router.Accreditation{
			MaxLevel:    levelFromProto(a.GetMaxLevel(), "region.accreditation.max_level", v),
			Controls:    a.GetControls(),
			ImpactLevel: int(a.GetImpactLevel()),
			FedRAMP:     router.FedRAMP(enumFromProto(a.GetFedramp(), pb.FedRAMP_name, "region.accreditation.fedramp", v)),
			Frameworks:  a.GetFrameworks(),
			Revoked:     a.GetRevoked(),
		}
		if e := a.GetExpires(); e != nil {
			if err := e.CheckValid(); err != nil {
				v.Add("region.accreditation.expires", "%v", err)
			} else {
				out.Accreditation.Expires = e.AsTime()
			}
		}
	}
	return out
}

// RegionToProto converts a region and its usage to the API.
func RegionToProto(s router.RegionState) *pb.Region {
	r := s.Region
	a := r.Accreditation
	return &pb.Region{
		Provider:              r.Provider,
		Id:                    r.ID,
		Name:                  r.Name,
		Country:               r.Country,
		OperatorJurisdiction:  r.OperatorJurisdiction,
		OperatorNationalities: r.OperatorNationalities,
		Personnel:             pb.Personnel(r.Personnel) + 1,
		NetworkDomain:         pb.NetworkDomain(r.NetworkDomain) + 1,
		Accreditation: &pb.Accreditation{
			MaxLevel:    levelToProto(a.MaxLevel),
			Controls:    a.Controls,
			ImpactLevel: int32(a.ImpactLevel),
			Fedramp:     pb.FedRAMP(a.FedRAMP) + 1,
			Frameworks:  a.Frameworks,
			Expires:     timeToProto(a.Expires),
			Revoked:     a.Revoked,
		},
		Customers:      r.Customers,
		Capabilities:   r.Capabilities,
		StorageTiers:   r.StorageTiers,
		Capacity:       resourcesToProto(r.Capacity),
		Location:       locationToProto(r.Location),
		Cost:           r.Cost,
		Status:         pb.RegionStatus(r.Status) + 1,
		Illustrative:   r.Illustrative,
		Notes:          r.Notes,
		Key:            r.Key(),
		Used:           resourcesToProto(s.Used),
		Accreditations: schemeAccreditationsToProto(r.Accreditations),
	}
}

// RegionHealthToProto converts what is known of a region's agent: its
// live session (nil when none is connected) and its health record (nil
// when no agent has reported for it). Nil when neither exists. A region
// without a health record is not agent-monitored: healthy as far as its
// agent goes, as decisions read it.
func RegionHealthToProto(live *router.RegionLive, h *router.Health) *pb.RegionHealth {
	if live == nil && h == nil {
		return nil
	}
	out := &pb.RegionHealth{Healthy: h == nil || h.Healthy}
	if h != nil {
		out.Reason, out.Since, out.Agent = h.Reason, timeToProto(h.Since), h.Agent
	}
	if live != nil {
		out.Agent, out.AgentLive = live.Agent, true
		if !live.ReportedAt.IsZero() {
			out.LastReport = timeToProto(live.ReportedAt)
			out.ReportedFree = resourcesToProto(live.Free)
		}
	}
	return out
}

// ProviderFromProto converts an API provider.
func ProviderFromProto(p *pb.Provider, v *router.Violations) *router.Provider {
	if p == nil {
		v.Add("provider", "required")
		return nil
	}
	return &router.Provider{ID: p.GetId(), Name: p.GetName(), Jurisdiction: p.GetJurisdiction(), Notes: p.GetNotes()}
}

// ProviderToProto converts a provider to the API.
func ProviderToProto(p *router.Provider) *pb.Provider {
	return &pb.Provider{Id: p.ID, Name: p.Name, Jurisdiction: p.Jurisdiction, Notes: p.Notes}
}

// TenantFromProto converts an API tenant.
func TenantFromProto(t *pb.Tenant, v *router.Violations) *router.Tenant {
	if t == nil {
		v.Add("tenant", "required")
		return nil
	}
	out := &router.Tenant{
		ID: t.GetId(), Name: t.GetName(), Nation: t.GetNation(), Sector: t.GetSector(), Ceiling: t.GetCeiling(),
		AllowedRegions: t.GetAllowedRegions(), DeniedRegions: t.GetDeniedRegions(),
		AllowedProviders: t.GetAllowedProviders(), DeniedProviders: t.GetDeniedProviders(),
		MaxPlacements: int(t.GetMaxPlacements()),
		Scheme:        marking.Scheme(t.GetScheme()),
	}
	for _, c := range t.GetCeilings() {
		out.Ceilings = append(out.Ceilings, router.SchemeCeiling{Scheme: marking.Scheme(c.GetScheme()), Level: c.GetLevel()})
	}
	for _, m := range t.GetMembers() {
		tm := router.TenantMember{Name: m.GetName()}
		for _, r := range m.GetRoles() {
			tm.Roles = append(tm.Roles, authz.Role(r))
		}
		out.Members = append(out.Members, tm)
	}
	return out
}

// TenantToProto converts a tenant to the API.
func TenantToProto(t *router.Tenant) *pb.Tenant {
	out := &pb.Tenant{
		Id: t.ID, Name: t.Name, Nation: t.Nation, Sector: t.Sector, Ceiling: t.Ceiling,
		AllowedRegions: t.AllowedRegions, DeniedRegions: t.DeniedRegions,
		AllowedProviders: t.AllowedProviders, DeniedProviders: t.DeniedProviders,
		MaxPlacements: int32(t.MaxPlacements), // validated: at most router.MaxTenantPlacements
		Scheme:        string(t.Scheme),
	}
	for _, c := range t.Ceilings {
		out.Ceilings = append(out.Ceilings, &pb.SchemeCeiling{Scheme: string(c.Scheme), Level: c.Level})
	}
	for _, m := range t.Members {
		pm := &pb.TenantMember{Name: m.Name}
		for _, r := range m.Roles {
			pm.Roles = append(pm.Roles, string(r))
		}
		out.Members = append(out.Members, pm)
	}
	return out
}

// PlacementToProto converts a placement to the API.
func PlacementToProto(p *router.Placement) *pb.Placement {
	out := &pb.Placement{
		Id:                p.ID,
		Tenant:            p.Tenant,
		Workload:          WorkloadToProto(&p.Workload),
		Label:             placementLabel(&p.Workload),
		State:             pb.PlacementState(p.State) + 1,
		DecidedAtRevision: p.DecidedAt,
		CreateTime:        timeToProto(p.CreatedAt),
		ReleaseTime:       timeToProto(p.ReleasedAt),
	}
	for i, key := range p.Regions {
		rs := p.Replica(i)
		a := &pb.Assignment{Region: key, State: replicaStateToProto(rs.State), StateDetail: rs.Detail, StateTime: timeToProto(rs.At)}
		if i < len(p.Scores) {
			a.Score = p.Scores[i]
		}
		out.Assignments = append(out.Assignments, a)
	}
	for _, is := range p.Issues {
		out.Issues = append(out.Issues, &pb.ReplicaIssue{Region: is.Region, Violation: is.Violation, Stranded: is.Stranded,
			Reasons: reasonsToProto(is.Reasons), Since: timeToProto(is.Since)})
	}
	for _, r := range p.Retiring {
		out.Retiring = append(out.Retiring, &pb.RetiringCopy{Region: r.Region, MovedTo: r.MovedTo,
			Reasons: reasonsToProto(r.Reasons), Since: timeToProto(r.Since)})
	}
	out.Moves = int32(p.Moves)
	return out
}

// replicaStateToProto: the API's states are the domain's plus one.
func replicaStateToProto(s router.ReplicaState) pb.ReplicaState { return pb.ReplicaState(s) + 1 }

// PlacementStateFromProto converts a placement state a caller filters on:
// nil for UNSPECIFIED (any state), a violation of field for a value the
// API does not define.
func PlacementStateFromProto(s pb.PlacementState, field string, v *router.Violations) *router.PlacementState {
	switch s {
	case pb.PlacementState_PLACEMENT_STATE_UNSPECIFIED:
	case pb.PlacementState_PLACEMENT_STATE_PLACED, pb.PlacementState_PLACEMENT_STATE_RELEASED,
		pb.PlacementState_PLACEMENT_STATE_STRANDED, pb.PlacementState_PLACEMENT_STATE_VIOLATION:
		st := router.PlacementState(s - 1)
		return &st
	default:
		v.Add(field, "unknown value %d", int32(s))
	}
	return nil
}

// ReplicaStateFromProto converts an agent's acknowledged state: only
// ACCEPTED, RUNNING and FAILED are an agent's to say; others are
// violations of field.
func ReplicaStateFromProto(s pb.ReplicaState, field string, v *router.Violations) router.ReplicaState {
	switch s {
	case pb.ReplicaState_REPLICA_STATE_ACCEPTED, pb.ReplicaState_REPLICA_STATE_RUNNING, pb.ReplicaState_REPLICA_STATE_FAILED:
		return router.ReplicaState(s - 1)
	case pb.ReplicaState_REPLICA_STATE_UNSPECIFIED:
		v.Add(field, "required: ACCEPTED, RUNNING or FAILED")
	default:
		v.Add(field, "want ACCEPTED, RUNNING or FAILED, got %s", s)
	}
	return 0
}

func reasonsToProto(rs []router.Reason) []*pb.Reason {
	var out []*pb.Reason
	for _, r := range rs {
		out = append(out, &pb.Reason{Code: string(r.Code), Message: r.Message, Scheme: string(r.Scheme), Equivalence: r.Equivalence})
	}
	return out
}

// placementLabel is the structured label of a stored workload. If the
// stored banner does not read back as the parsed label (a record written
// by another version, say), only the banner is returned: a zero label
// would claim UNCLASSIFIED for what may be TOP SECRET.
func placementLabel(w *router.Workload) *pb.Label {
	if w.LabelString() != w.Banner {
		return &pb.Label{Banner: w.Banner, Scheme: workloadScheme(w)}
	}
	return WorkloadLabelToProto(w)
}

// VerdictsToProto converts explained verdicts to the API.
func VerdictsToProto(ex []router.Explained) []*pb.RegionVerdict {
	out := make([]*pb.RegionVerdict, len(ex))
	for i, e := range ex {
		rv := &pb.RegionVerdict{Region: e.Key, Eligible: e.Eligible, Chosen: e.Chosen, Score: e.Score, Via: e.Via, Flows: e.Flows}
		rv.Reasons = reasonsToProto(e.Reasons)
		out[i] = rv
	}
	return out
}
