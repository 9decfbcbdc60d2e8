package convert_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/label"
)

func goodWorkload() *router.Workload {
	near := router.Location{Lat: 38.9, Lon: -77}
	return &router.Workload{
		Name: "web", Tenant: "usa-dod", Banner: "SECRET//NOFORN",
		AllowedCountries: []string{"USA"}, AllowedJurisdictions: []string{"USA"},
		ExportControl: router.ExportITAR, MinImpactLevel: 5, MinFedRAMP: router.FedRAMPHigh,
		Capabilities: []string{"gpu"}, StorageTier: "online",
		Resources: router.Resources{MilliCPU: 2000, MemoryMiB: 4096, GPU: 1}, Replicas: 2,
		Spread:      router.Spread{MinDistanceKm: 300, DistinctProviders: true},
		Preferences: router.Preferences{Providers: []string{"aws"}, CostWeight: 0.5, Near: &near},
	}
}

func goodRegion() *router.Region {
	return &router.Region{
		Provider: "aws", ID: "us-gov-west-1", Name: "AWS GovCloud (US-West)",
		Country: "USA", OperatorJurisdiction: "USA", OperatorNationalities: []string{"USA"},
		Personnel: router.PersonnelScreenedUSPersons, NetworkDomain: router.DomainSIPRNet,
		Accreditation: router.Accreditation{
			MaxLevel: label.Secret, Controls: []string{"NOFORN"}, ImpactLevel: 6, FedRAMP: router.FedRAMPHigh,
			Frameworks: []string{"ICD 503"}, Expires: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
		},
		Customers: []string{"USA/defense"}, Capabilities: []string{"gpu"}, StorageTiers: []string{"online"},
		Capacity: router.Resources{MilliCPU: 64000, MemoryMiB: 262144, GPU: 8},
		Location: router.Location{Lat: 45.8, Lon: -119.7}, Cost: 1.4, Status: router.StatusDraining,
		Illustrative: true, Notes: "from the catalogue",
	}
}

func goodTenant() *router.Tenant {
	return &router.Tenant{
		ID: "usa-dod", Name: "Department of Defense", Nation: "USA", Sector: "defense", Ceiling: "TOP SECRET",
		AllowedRegions: []string{"aws/us-gov-west-1"}, DeniedRegions: []string{"aws/us-east-1"},
		AllowedProviders: []string{"aws"}, DeniedProviders: []string{"ali"},
		Members:       []router.TenantMember{{Name: "ann", Roles: []authz.Role{authz.RoleSubmitter, authz.RoleTenantAuditor}}},
		MaxPlacements: 100,
	}
}

// TestRoundTrip converts each domain value to the API and back: nothing
// is lost or changed on the way.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		back func(v *router.Violations) any
	}{
		{"workload", goodWorkload(), func(v *router.Violations) any {
			pw := convert.WorkloadToProto(goodWorkload())
			if pw.GetScheme() != "US" {
				t.Errorf("a US workload's scheme goes out as %q; want US", pw.GetScheme())
			}
			w := convert.WorkloadFromProto(pw, v)
			w.Scheme = "" // as ValidateWorkload resolves US
			return w
		}},
		{"region", goodRegion(), func(v *router.Violations) any {
			return convert.RegionFromProto(convert.RegionToProto(router.RegionState{Region: goodRegion()}), v)
		}},
		{"provider", &router.Provider{ID: "aws", Name: "Amazon Web Services", Jurisdiction: "USA", Notes: "n"}, func(v *router.Violations) any {
			return convert.ProviderFromProto(convert.ProviderToProto(&router.Provider{ID: "aws", Name: "Amazon Web Services", Jurisdiction: "USA", Notes: "n"}), v)
		}},
		{"tenant", goodTenant(), func(v *router.Violations) any {
			return convert.TenantFromProto(convert.TenantToProto(goodTenant()), v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v router.Violations
			got := tc.back(&v)
			if len(v) > 0 {
				t.Fatalf("violations %v; want none", v)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Errorf("got %+v; want %+v", got, tc.in)
			}
		})
	}
}

// TestFromProtoViolations mutates known-good API messages: each mutation
// is one violation, named by its field.
func TestFromProtoViolations(t *testing.T) {
	region := func(mut func(r *pb.Region)) func(v *router.Violations) {
		return func(v *router.Violations) {
			r := convert.RegionToProto(router.RegionState{Region: goodRegion()})
			mut(r)
			convert.RegionFromProto(r, v)
		}
	}
	workload := func(mut func(w *pb.Workload)) func(v *router.Violations) {
		return func(v *router.Violations) {
			w := convert.WorkloadToProto(goodWorkload())
			mut(w)
			convert.WorkloadFromProto(w, v)
		}
	}
	for _, tc := range []struct {
		name, field, desc string
		conv              func(v *router.Violations)
	}{
		{"no region", "region", "required", func(v *router.Violations) { convert.RegionFromProto(nil, v) }},
		{"no accreditation", "region.accreditation", "required", region(func(r *pb.Region) { r.Accreditation = nil })},
		{"personnel unspecified", "region.personnel", "required", region(func(r *pb.Region) { r.Personnel = 0 })},
		{"unknown status", "region.status", "unknown value 99", region(func(r *pb.Region) { r.Status = 99 })},
		{"level unspecified", "region.accreditation.max_level", "required", region(func(r *pb.Region) { r.Accreditation.MaxLevel = 0 })},
		{"no workload", "workload", "required", func(v *router.Violations) { convert.WorkloadFromProto(nil, v) }},
		{"unknown export control", "workload.export_control", "unknown value 9", workload(func(w *pb.Workload) { w.ExportControl = 9 })},
		{"unknown fedramp", "workload.min_fedramp", "unknown value 9", workload(func(w *pb.Workload) { w.MinFedramp = 9 })},
		{"no tenant", "tenant", "required", func(v *router.Violations) { convert.TenantFromProto(nil, v) }},
		{"no provider", "provider", "required", func(v *router.Violations) { convert.ProviderFromProto(nil, v) }},
		{"unknown placement state", "state", "unknown value 9", func(v *router.Violations) { convert.PlacementStateFromProto(9, "state", v) }},
		{"ack of pending", "ack.state", "want ACCEPTED, RUNNING or FAILED, got REPLICA_STATE_PENDING", func(v *router.Violations) {
			convert.ReplicaStateFromProto(pb.ReplicaState_REPLICA_STATE_PENDING, "ack.state", v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v router.Violations
			tc.conv(&v)
			if len(v) != 1 || v[0].Field != tc.field || !strings.HasPrefix(v[0].Description, tc.desc) {
				t.Errorf("got %v; want one violation of %s: %s", v, tc.field, tc.desc)
			}
		})
	}
}

func TestPlacementStateFromProto(t *testing.T) {
	var v router.Violations
	if got := convert.PlacementStateFromProto(pb.PlacementState_PLACEMENT_STATE_UNSPECIFIED, "state", &v); got != nil {
		t.Errorf("UNSPECIFIED: got %v; want nil (any state)", *got)
	}
	if got := convert.PlacementStateFromProto(pb.PlacementState_PLACEMENT_STATE_STRANDED, "state", &v); got == nil || *got != router.PlacementStranded {
		t.Errorf("STRANDED: got %v; want %v", got, router.PlacementStranded)
	}
	if len(v) > 0 {
		t.Errorf("violations %v; want none", v)
	}
}

func TestEventTypeToProto(t *testing.T) {
	for in, want := range map[router.EventType]pb.PlacementEventType{
		router.EventPlaced:   pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED,
		router.EventUpdated:  pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UPDATED,
		router.EventReleased: pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED,
		router.EventDeleted:  pb.PlacementEventType_PLACEMENT_EVENT_TYPE_DELETED,
		0:                    pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UNSPECIFIED,
	} {
		if got := convert.EventTypeToProto(in); got != want {
			t.Errorf("EventTypeToProto(%d) = %v; want %v", in, got, want)
		}
	}
}

// TestAuditEntryOmitted: an entry that left region verdicts unrecorded
// says how many in a last reason, without writing into the record.
func TestAuditEntryOmitted(t *testing.T) {
	reasons := make([]string, 1, 4)
	reasons[0] = "aws/us-east-1: level"
	rec := audit.Record{ID: "id", Written: 7, Entry: audit.Entry{Op: audit.OpRefuse, Reasons: reasons, ReasonsOmitted: 3, Revision: 5}}
	got := convert.AuditEntryToProto(rec)
	want := []string{"aws/us-east-1: level", "(3 more regions not recorded)"}
	if !reflect.DeepEqual(got.GetReasons(), want) {
		t.Errorf("reasons %q; want %q", got.GetReasons(), want)
	}
	if got.GetId() != "id" || got.GetWritten() != 7 || got.GetRevision() != 5 {
		t.Errorf("id %q written %d revision %d; want id 7 5", got.GetId(), got.GetWritten(), got.GetRevision())
	}
	if spare := reasons[:2][1]; spare != "" {
		t.Errorf("the record's reasons were written past their length: %q", spare)
	}
}

func TestCheckpoints(t *testing.T) {
	cp := audit.Checkpoint{Seq: 3, Hash: strings.Repeat("ab", 32), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		PublicKey: make([]byte, 32), Signature: make([]byte, 64)}
	good := convert.CheckpointToProto(cp)
	got, v := convert.CheckpointsFromProto([]*pb.AuditCheckpoint{good})
	if len(v) > 0 || len(got) != 1 || !reflect.DeepEqual(got[0], cp) {
		t.Fatalf("round trip: got %+v, %v; want %+v", got, v, cp)
	}
	for _, tc := range []struct {
		name, field string
		mut         func(a *pb.AuditCheckpoint)
	}{
		{"seq zero", "anchors[0].seq", func(a *pb.AuditCheckpoint) { a.Seq = 0 }},
		{"upper-case hash", "anchors[0].hash", func(a *pb.AuditCheckpoint) { a.Hash = strings.ToUpper(a.Hash) }},
		{"short key", "anchors[0].public_key", func(a *pb.AuditCheckpoint) { a.PublicKey = a.PublicKey[:31] }},
		{"short signature", "anchors[0].signature", func(a *pb.AuditCheckpoint) { a.Signature = a.Signature[:63] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := proto.Clone(good).(*pb.AuditCheckpoint)
			tc.mut(a)
			got, v := convert.CheckpointsFromProto([]*pb.AuditCheckpoint{a})
			if len(got) != 0 || len(v) != 1 || v[0].Field != tc.field {
				t.Errorf("got %v, %v; want one violation of %s", got, v, tc.field)
			}
		})
	}
}
