package server_test

import (
	"context"
	"fmt"
	"google.golang.org/grpc/codes"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Bad input: one table per RPC family. Every case mutates a known-good
// request and wants INVALID_ARGUMENT with a BadRequest naming the field
// at fault, and nothing stored.

// badWorkload is a mutation of the known-good workload (aukus) and the
// field violation it must cause.
type badWorkload struct {
	name   string
	mutate func(w *pb.Workload)
	field  string
	desc   string // part of the field's description
}

// badWorkloads are the workload faults, shared by Place and Plan.
func badWorkloads() []badWorkload {
	return []badWorkload{
		{"label missing", func(w *pb.Workload) { w.Label = "" }, "workload.label", "required"},
		{"label a portion marking", func(w *pb.Workload) { w.Label = "SECRET//NF" }, "workload.label", `"NF" is a portion marking`},
		{"label NOFORN and REL TO", func(w *pb.Workload) { w.Label = "SECRET//NOFORN/REL TO USA, AUS" }, "workload.label", "NOFORN cannot be combined with REL TO"},
		{"name missing", func(w *pb.Workload) { w.Name = "" }, "workload.name", "required"},
		{"name with a space", func(w *pb.Workload) { w.Name = "aukus models" }, "workload.name", `"aukus models"`},
		{"name too long", func(w *pb.Workload) { w.Name = strings.Repeat("a", 129) }, "workload.name", "longer than 128"},
		{"tenant missing", func(w *pb.Workload) { w.Tenant = "" }, "workload.tenant", "required"},
		{"tenant malformed", func(w *pb.Workload) { w.Tenant = "AUS_Defence" }, "workload.tenant", `"AUS_Defence"`},
		{"tenant unknown", func(w *pb.Workload) { w.Tenant = "nzl-defence" }, "workload.tenant", `unknown tenant "nzl-defence"`},
		{"storage countries missing", func(w *pb.Workload) { w.AllowedStorageCountries = nil }, "workload.allowed_storage_countries", "required"},
		{"storage country unknown", func(w *pb.Workload) { w.AllowedStorageCountries = []string{"USA", "XYZ", "GBR"} },
			"workload.allowed_storage_countries[1]", `"XYZ" is not an ISO 3166 alpha-3 country code`},
		{"storage country a digraph", func(w *pb.Workload) { w.AllowedStorageCountries = []string{"US"} },
			"workload.allowed_storage_countries[0]", `"US"`},
		{"storage country repeated", func(w *pb.Workload) { w.AllowedStorageCountries = []string{"USA", "AUS", "USA"} },
			"workload.allowed_storage_countries[2]", "repeats workload.allowed_storage_countries[0]"},
		{"wildcard with a country", func(w *pb.Workload) { w.AllowedStorageCountries = []string{"*", "USA"} },
			"workload.allowed_storage_countries", `"*" must be the only entry`},
		{"jurisdiction unknown", func(w *pb.Workload) { w.AllowedJurisdictions = []string{"UK"} }, "workload.allowed_jurisdictions[0]", `"UK"`},
		{"export control unknown", func(w *pb.Workload) { w.ExportControl = 99 }, "workload.export_control", "unknown value 99"},
		{"ITAR data barred from the USA", func(w *pb.Workload) {
			w.ExportControl = pb.ExportControl_EXPORT_CONTROL_ITAR
			w.AllowedStorageCountries = []string{"AUS", "GBR"}
		}, "workload.allowed_storage_countries", "must be allowed to rest in USA"},
		{"impact level 3", func(w *pb.Workload) { w.MinImpactLevel = 3 }, "workload.min_impact_level", "3 is not a DoD impact level"},
		{"impact level negative", func(w *pb.Workload) { w.MinImpactLevel = -2 }, "workload.min_impact_level", "-2 is not a DoD impact level"},
		{"FedRAMP baseline unknown", func(w *pb.Workload) { w.MinFedramp = 42 }, "workload.min_fedramp", "unknown value 42"},
		{"capability upper case", func(w *pb.Workload) { w.Capabilities = []string{"gpu", "GPU"} }, "workload.capabilities[1]", `"GPU"`},
		{"capability empty", func(w *pb.Workload) { w.Capabilities = []string{""} }, "workload.capabilities[0]", "must not be empty"},
		{"capability repeated", func(w *pb.Workload) { w.Capabilities = []string{"gpu", "gpu"} }, "workload.capabilities[1]", "repeats"},
		{"storage tier malformed", func(w *pb.Workload) { w.StorageTier = "Near Line" }, "workload.storage_tier", `"Near Line"`},
		{"resources missing", func(w *pb.Workload) { w.Resources = nil }, "workload.resources", "at least one of milli_cpu, memory_mib, gpu must be positive"},
		{"resources zero", func(w *pb.Workload) { w.Resources = &pb.Resources{} }, "workload.resources", "at least one"},
		{"memory negative", func(w *pb.Workload) { w.Resources.MemoryMib = -1 }, "workload.resources.memory_mib", "must not be negative, got -1"},
		{"gpu negative", func(w *pb.Workload) { w.Resources.Gpu = -2 }, "workload.resources.gpu", "got -2"},
		{"no replicas", func(w *pb.Workload) { w.Replicas = 0 }, "workload.replicas", "must be between 1 and 16, got 0"},
		{"too many replicas", func(w *pb.Workload) { w.Replicas = 17 }, "workload.replicas", "got 17"},
		{"negative replicas", func(w *pb.Workload) { w.Replicas = -1 }, "workload.replicas", "got -1"},
		{"spread distance negative", func(w *pb.Workload) { w.Spread.MinDistanceKm = -1 }, "workload.spread.min_distance_km", "got -1"},
		{"spread distance beyond half the Earth", func(w *pb.Workload) { w.Spread.MinDistanceKm = 20040 }, "workload.spread.min_distance_km", "< 20040"},
		{"spread distance NaN", func(w *pb.Workload) { w.Spread.MinDistanceKm = math.NaN() }, "workload.spread.min_distance_km", "NaN"},
		{"cost weight above 1", func(w *pb.Workload) { w.Preferences = &pb.Preferences{CostWeight: 1.5} }, "workload.preferences.cost_weight", "between 0 and 1, got 1.5"},
		{"cost weight negative", func(w *pb.Workload) { w.Preferences = &pb.Preferences{CostWeight: -0.1} }, "workload.preferences.cost_weight", "got -0.1"},
		{"cost weight NaN", func(w *pb.Workload) { w.Preferences = &pb.Preferences{CostWeight: math.NaN()} }, "workload.preferences.cost_weight", "NaN"},
		{"preferred provider malformed", func(w *pb.Workload) { w.Preferences = &pb.Preferences{Providers: []string{"AWS"}} },
			"workload.preferences.providers[0]", `"AWS"`},
		{"near latitude off the globe", func(w *pb.Workload) { w.Preferences = &pb.Preferences{Near: &pb.Location{Lat: 91}} },
			"workload.preferences.near.lat", "got 91"},
		{"near longitude off the globe", func(w *pb.Workload) { w.Preferences = &pb.Preferences{Near: &pb.Location{Lon: -180.5}} },
			"workload.preferences.near.lon", "got -180.5"},
	}
}

// wantPlannable checks that the known-good workload is good: Plan
// chooses a region for every replica.
func wantPlannable(tb testing.TB, e *env) {
	tb.Helper()
	resp, err := e.place.Plan(ctx(tb), &pb.PlanRequest{Workload: aukus()})
	if err != nil {
		tb.Fatalf("Plan(known-good workload): %v", err)
	}
	if got := len(resp.GetChosen()); got != int(aukus().GetReplicas()) || resp.GetRefusal() != "" {
		tb.Fatalf("Plan(known-good workload): got %d regions chosen, refusal %q; want %d, none", got, resp.GetRefusal(), aukus().GetReplicas())
	}
}

func TestPlaceBadInput(t *testing.T) {
	e := newEnv(t)
	wantPlannable(t, e)

	cases := []struct {
		name   string
		mutate func(r *pb.PlaceRequest)
		field  string
		desc   string
	}{
		{"request id missing", func(r *pb.PlaceRequest) { r.RequestId = "" }, "request_id", "required"},
		{"request id with a slash", func(r *pb.PlaceRequest) { r.RequestId = "a/b" }, "request_id", "[A-Za-z0-9._:-]"},
		{"request id with a space", func(r *pb.PlaceRequest) { r.RequestId = "a b" }, "request_id", "required"},
		{"request id too long", func(r *pb.PlaceRequest) { r.RequestId = strings.Repeat("r", 129) }, "request_id", "1-128 characters"},
		{"workload missing", func(r *pb.PlaceRequest) { r.Workload = nil }, "workload", "required"},
	}
	for _, c := range badWorkloads() {
		cases = append(cases, struct {
			name   string
			mutate func(r *pb.PlaceRequest)
			field  string
			desc   string
		}{c.name, func(r *pb.PlaceRequest) { c.mutate(r.Workload) }, c.field, c.desc})
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := placeRequest(fmt.Sprintf("bad-%d", i))
			tc.mutate(req)
			check := e.unchanged(t)
			_, err := e.place.Place(ctx(t), req)
			desc := wantField(t, err, tc.field)
			wantContains(t, tc.field, desc, tc.desc)
			check()
		})
	}
}

// A request with several faults names every one, so a client can fix
// them in one round trip.
func TestPlaceReportsEveryBadField(t *testing.T) {
	e := newEnv(t)
	req := placeRequest("")
	req.Workload.Replicas = 0
	req.Workload.Preferences = &pb.Preferences{CostWeight: 2}
	check := e.unchanged(t)
	_, err := e.place.Place(ctx(t), req)
	for _, f := range []string{"request_id", "workload.replicas", "workload.preferences.cost_weight"} {
		wantField(t, err, f)
	}
	check()
}

func TestPlanBadInput(t *testing.T) {
	e := newEnv(t)
	wantPlannable(t, e)

	cases := []struct {
		name   string
		mutate func(r *pb.PlanRequest)
		field  string
		desc   string
	}{
		{"workload missing", func(r *pb.PlanRequest) { r.Workload = nil }, "workload", "required"},
	}
	for _, c := range badWorkloads() {
		cases = append(cases, struct {
			name   string
			mutate func(r *pb.PlanRequest)
			field  string
			desc   string
		}{c.name, func(r *pb.PlanRequest) { c.mutate(r.Workload) }, c.field, c.desc})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &pb.PlanRequest{Workload: aukus()}
			tc.mutate(req)
			check := e.unchanged(t)
			_, err := e.place.Plan(ctx(t), req)
			desc := wantField(t, err, tc.field)
			wantContains(t, tc.field, desc, tc.desc)
			check()
		})
	}
}

func TestPutRegionBadInput(t *testing.T) {
	e := newEnv(t)
	// The known-good region: a copy of aws/us-east-1 under a new id.
	good := func() *pb.Region {
		r := e.region(t, "aws/us-east-1")
		r.Id, r.Key, r.Used = "test-east-1", "", nil
		return r
	}

	cases := []struct {
		name   string
		mutate func(r *pb.PutRegionRequest)
		field  string
		desc   string
	}{
		{"region missing", func(r *pb.PutRegionRequest) { r.Region = nil }, "region", "required"},
		{"accreditation missing", func(r *pb.PutRegionRequest) { r.Region.Accreditation = nil }, "region.accreditation", "required"},
		{"personnel unspecified", func(r *pb.PutRegionRequest) { r.Region.Personnel = pb.Personnel_PERSONNEL_UNSPECIFIED }, "region.personnel", "required"},
		{"personnel unknown", func(r *pb.PutRegionRequest) { r.Region.Personnel = 99 }, "region.personnel", "unknown value 99"},
		{"network domain unspecified", func(r *pb.PutRegionRequest) { r.Region.NetworkDomain = pb.NetworkDomain_NETWORK_DOMAIN_UNSPECIFIED },
			"region.network_domain", "required"},
		{"network domain unknown", func(r *pb.PutRegionRequest) { r.Region.NetworkDomain = 6 }, "region.network_domain", "unknown value 6"},
		{"status unspecified", func(r *pb.PutRegionRequest) { r.Region.Status = pb.RegionStatus_REGION_STATUS_UNSPECIFIED }, "region.status", "required"},
		{"max level unspecified", func(r *pb.PutRegionRequest) { r.Region.Accreditation.MaxLevel = pb.Level_LEVEL_UNSPECIFIED },
			"region.accreditation.max_level", "required"},
		{"max level unknown", func(r *pb.PutRegionRequest) { r.Region.Accreditation.MaxLevel = 6 }, "region.accreditation.max_level", "unknown value 6"},
		{"max level above the network domain's ceiling", func(r *pb.PutRegionRequest) { r.Region.Accreditation.MaxLevel = pb.Level_LEVEL_TOP_SECRET },
			"region.accreditation.max_level", "exceeds what network domain"},
		{"FedRAMP unspecified", func(r *pb.PutRegionRequest) { r.Region.Accreditation.Fedramp = pb.FedRAMP_FED_RAMP_UNSPECIFIED },
			"region.accreditation.fedramp", "required"},
		{"impact level 3", func(r *pb.PutRegionRequest) { r.Region.Accreditation.ImpactLevel = 3 }, "region.accreditation.impact_level", "3 is not a DoD impact level"},
		{"control malformed", func(r *pb.PutRegionRequest) { r.Region.Accreditation.Controls = []string{"si"} }, "region.accreditation.controls[0]", `"si"`},
		{"framework empty", func(r *pb.PutRegionRequest) { r.Region.Accreditation.Frameworks = []string{""} }, "region.accreditation.frameworks[0]", "must not be empty"},
		{"expires missing", func(r *pb.PutRegionRequest) { r.Region.Accreditation.Expires = nil }, "region.accreditation.expires", "required"},
		{"expires out of range", func(r *pb.PutRegionRequest) {
			r.Region.Accreditation.Expires = &timestamppb.Timestamp{Seconds: math.MaxInt64}
		}, "region.accreditation.expires", "timestamp"},
		{"country unknown", func(r *pb.PutRegionRequest) { r.Region.Country = "XYZ" }, "region.country", `"XYZ" is not an ISO 3166 alpha-3 country code`},
		{"country missing", func(r *pb.PutRegionRequest) { r.Region.Country = "" }, "region.country", "required"},
		{"country lower case", func(r *pb.PutRegionRequest) { r.Region.Country = "usa" }, "region.country", `"usa"`},
		{"operator jurisdiction unknown", func(r *pb.PutRegionRequest) { r.Region.OperatorJurisdiction = "EU" }, "region.operator_jurisdiction", `"EU"`},
		{"operator nationalities missing", func(r *pb.PutRegionRequest) { r.Region.OperatorNationalities = nil }, "region.operator_nationalities", "required"},
		{"operator nationality unknown", func(r *pb.PutRegionRequest) { r.Region.OperatorNationalities = []string{"USA", "XXX"} },
			"region.operator_nationalities[1]", `"XXX"`},
		{"provider missing", func(r *pb.PutRegionRequest) { r.Region.Provider = "" }, "region.provider", "required"},
		{"provider malformed", func(r *pb.PutRegionRequest) { r.Region.Provider = "AWS" }, "region.provider", `"AWS"`},
		{"id missing", func(r *pb.PutRegionRequest) { r.Region.Id = "" }, "region.id", "required"},
		{"id with a slash", func(r *pb.PutRegionRequest) { r.Region.Id = "us/east" }, "region.id", `"us/east"`},
		{"name too long", func(r *pb.PutRegionRequest) { r.Region.Name = strings.Repeat("n", 257) }, "region.name", "longer than 256"},
		{"customers missing", func(r *pb.PutRegionRequest) { r.Region.Customers = nil }, "region.customers", "required"},
		{"customer sector unknown", func(r *pb.PutRegionRequest) { r.Region.Customers = []string{"USA/army"} }, "region.customers[0]", `unknown sector "army"`},
		{"customer not a nation", func(r *pb.PutRegionRequest) { r.Region.Customers = []string{"NATO"} }, "region.customers[0]", `"NATO"`},
		{"capability malformed", func(r *pb.PutRegionRequest) { r.Region.Capabilities = []string{"GPU"} }, "region.capabilities[0]", `"GPU"`},
		{"storage tier repeated", func(r *pb.PutRegionRequest) { r.Region.StorageTiers = []string{"online", "online"} }, "region.storage_tiers[1]", "repeats"},
		{"capacity negative", func(r *pb.PutRegionRequest) { r.Region.Capacity.Gpu = -1 }, "region.capacity.gpu", "must not be negative"},
		{"latitude off the globe", func(r *pb.PutRegionRequest) { r.Region.Location.Lat = -90.5 }, "region.location.lat", "got -90.5"},
		{"cost negative", func(r *pb.PutRegionRequest) { r.Region.Cost = -1 }, "region.cost", "got -1"},
		{"cost infinite", func(r *pb.PutRegionRequest) { r.Region.Cost = math.Inf(1) }, "region.cost", "+Inf"},
		{"cost NaN", func(r *pb.PutRegionRequest) { r.Region.Cost = math.NaN() }, "region.cost", "NaN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &pb.PutRegionRequest{Region: good()}
			tc.mutate(req)
			check := e.unchanged(t)
			_, err := e.catalog.PutRegion(ctx(t), req)
			desc := wantField(t, err, tc.field)
			wantContains(t, tc.field, desc, tc.desc)
			check()
		})
	}

	// A region of a provider the catalogue does not hold refers to
	// nothing: INVALID_ARGUMENT naming region.provider, not NOT_FOUND
	// (which would read as "no such region"). A new region is a
	// two-person proposal, checked when proposed.
	t.Run("provider unknown", func(t *testing.T) {
		r := good()
		r.Provider = "no-such-cloud"
		check := e.unchanged(t)
		_, err := pb.NewChangeServiceClient(e.conn).ProposeRegionChange(ctx(t), &pb.ProposeRegionChangeRequest{Region: r})
		wantContains(t, "region.provider", wantField(t, err, "region.provider"), `unknown provider "no-such-cloud"`)
		check()
	})

	// PutRegion applies operational changes only: a new region, or a
	// change of what a region is accredited for, needs two people.
	t.Run("new region needs two people", func(t *testing.T) {
		check := e.unchanged(t)
		_, err := e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: good()})
		wantReason(t, wantCode(t, err, codes.FailedPrecondition), "TWO_PERSON_REQUIRED")
		check()
		r := e.region(t, "aws/us-east-1")
		r.Key, r.Used, r.Health = "", nil, nil
		r.Accreditation.Revoked = true
		_, err = e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: r})
		wantReason(t, wantCode(t, err, codes.FailedPrecondition), "TWO_PERSON_REQUIRED")
		check()
	})

	t.Run("known-good operational change", func(t *testing.T) {
		r := e.region(t, "aws/us-east-1")
		r.Key, r.Used, r.Health = "", nil, nil
		r.Cost = 1.25
		r.Status = pb.RegionStatus_REGION_STATUS_DRAINING
		resp, err := e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: r})
		if err != nil {
			t.Fatalf("PutRegion(operational change): %v", err)
		}
		if got, want := resp.GetRegion().GetKey(), "aws/us-east-1"; got != want {
			t.Errorf("PutRegion: got key %q; want %q", got, want)
		}
		got, err := e.catalog.GetRegion(ctx(t), &pb.GetRegionRequest{Key: "aws/us-east-1"})
		if err != nil {
			t.Fatalf("GetRegion: %v", err)
		}
		if !proto.Equal(got.GetRegion(), resp.GetRegion()) || got.GetRegion().GetCost() != 1.25 {
			t.Errorf("GetRegion: got %v; want %v", got.GetRegion(), resp.GetRegion())
		}
	})
}

func TestPutProviderBadInput(t *testing.T) {
	e := newEnv(t)
	good := func() *pb.Provider {
		return &pb.Provider{Id: "test-cloud", Name: "Test Cloud", Jurisdiction: "USA"}
	}
	cases := []struct {
		name   string
		mutate func(r *pb.PutProviderRequest)
		field  string
		desc   string
	}{
		{"provider missing", func(r *pb.PutProviderRequest) { r.Provider = nil }, "provider", "required"},
		{"id missing", func(r *pb.PutProviderRequest) { r.Provider.Id = "" }, "provider.id", "required"},
		{"id upper case", func(r *pb.PutProviderRequest) { r.Provider.Id = "Test" }, "provider.id", `"Test"`},
		{"id with a slash", func(r *pb.PutProviderRequest) { r.Provider.Id = "test/cloud" }, "provider.id", `"test/cloud"`},
		{"id too long", func(r *pb.PutProviderRequest) { r.Provider.Id = strings.Repeat("p", 64) }, "provider.id", "longer than 63"},
		{"name too long", func(r *pb.PutProviderRequest) { r.Provider.Name = strings.Repeat("n", 257) }, "provider.name", "longer than 256"},
		{"jurisdiction missing", func(r *pb.PutProviderRequest) { r.Provider.Jurisdiction = "" }, "provider.jurisdiction", "required"},
		{"jurisdiction unknown", func(r *pb.PutProviderRequest) { r.Provider.Jurisdiction = "XYZ" }, "provider.jurisdiction", `"XYZ"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &pb.PutProviderRequest{Provider: good()}
			tc.mutate(req)
			check := e.unchanged(t)
			_, err := e.catalog.PutProvider(ctx(t), req)
			desc := wantField(t, err, tc.field)
			wantContains(t, tc.field, desc, tc.desc)
			check()
		})
	}
	t.Run("known-good provider", func(t *testing.T) {
		if _, err := e.catalog.PutProvider(ctx(t), &pb.PutProviderRequest{Provider: good()}); err != nil {
			t.Fatalf("PutProvider(known-good provider): %v", err)
		}
		got, err := e.catalog.GetProvider(ctx(t), &pb.GetProviderRequest{Id: "test-cloud"})
		if err != nil || got.GetProvider().GetEtag() == "" {
			t.Fatalf("GetProvider: got %v, %v; want the record with its etag", got.GetProvider(), err)
		}
		want := good()
		want.Etag = got.GetProvider().GetEtag()
		if !proto.Equal(got.GetProvider(), want) {
			t.Errorf("GetProvider: got %v; want %v", got.GetProvider(), want)
		}
	})
}

func TestPutTenantBadInput(t *testing.T) {
	e := newEnv(t)
	good := func() *pb.Tenant {
		return &pb.Tenant{Id: "nzl-defence", Name: "New Zealand Defence Force", Nation: "NZL", Sector: "defense", Ceiling: "SECRET//REL TO USA, NZL"}
	}
	cases := []struct {
		name   string
		mutate func(r *pb.PutTenantRequest)
		field  string
		desc   string
	}{
		{"tenant missing", func(r *pb.PutTenantRequest) { r.Tenant = nil }, "tenant", "required"},
		{"id missing", func(r *pb.PutTenantRequest) { r.Tenant.Id = "" }, "tenant.id", "required"},
		{"id upper case", func(r *pb.PutTenantRequest) { r.Tenant.Id = "NZDF" }, "tenant.id", `"NZDF"`},
		{"id with a slash", func(r *pb.PutTenantRequest) { r.Tenant.Id = "nzl/defence" }, "tenant.id", `"nzl/defence"`},
		{"name too long", func(r *pb.PutTenantRequest) { r.Tenant.Name = strings.Repeat("n", 257) }, "tenant.name", "longer than 256"},
		{"nation missing", func(r *pb.PutTenantRequest) { r.Tenant.Nation = "" }, "tenant.nation", "required"},
		{"nation a digraph", func(r *pb.PutTenantRequest) { r.Tenant.Nation = "NZ" }, "tenant.nation", `"NZ" is not an ISO 3166 alpha-3 country code`},
		{"nation a tetragraph", func(r *pb.PutTenantRequest) { r.Tenant.Nation = "FVEY" }, "tenant.nation", `"FVEY"`},
		{"sector missing", func(r *pb.PutTenantRequest) { r.Tenant.Sector = "" }, "tenant.sector", "required"},
		{"sector unknown", func(r *pb.PutTenantRequest) { r.Tenant.Sector = "military" }, "tenant.sector", `unknown sector "military"`},
		{"ceiling missing", func(r *pb.PutTenantRequest) { r.Tenant.Ceiling = "" }, "tenant.ceiling", "required"},
		{"ceiling malformed", func(r *pb.PutTenantRequest) { r.Tenant.Ceiling = "SECRET//REL TO" }, "tenant.ceiling", "REL TO"},
		{"ceiling not releasable to the nation", func(r *pb.PutTenantRequest) { r.Tenant.Ceiling = "SECRET//NOFORN" }, "tenant.ceiling", "not releasable"},
		{"region key malformed", func(r *pb.PutTenantRequest) { r.Tenant.DeniedRegions = []string{"aws"} }, "tenant.denied_regions[0]", "provider/id"},
		{"provider malformed", func(r *pb.PutTenantRequest) { r.Tenant.AllowedProviders = []string{"AWS"} }, "tenant.allowed_providers[0]", "lowercase"},
		{"member role not a tenant's", func(r *pb.PutTenantRequest) {
			r.Tenant.Members = []*pb.TenantMember{{Name: "kiri", Roles: []string{"catalog-admin"}}}
		}, "tenant.members[0].roles", "grants only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &pb.PutTenantRequest{Tenant: good()}
			tc.mutate(req)
			check := e.unchanged(t)
			_, err := e.catalog.PutTenant(ctx(t), req)
			desc := wantField(t, err, tc.field)
			wantContains(t, tc.field, desc, tc.desc)
			check()
		})
	}
	t.Run("known-good tenant", func(t *testing.T) {
		if _, err := e.catalog.PutTenant(ctx(t), &pb.PutTenantRequest{Tenant: good()}); err != nil {
			t.Fatalf("PutTenant(known-good tenant): %v", err)
		}
		got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nzl-defence"})
		if err != nil || got.GetTenant().GetEtag() == "" {
			t.Fatalf("GetTenant: got %v, %v; want the record with its etag", got.GetTenant(), err)
		}
		want := good()
		want.Etag = got.GetTenant().GetEtag()
		if !proto.Equal(got.GetTenant(), want) {
			t.Errorf("GetTenant: got %v; want %v", got.GetTenant(), want)
		}
	})
}

// TestBadKeysAndIDs covers the requests that name an object, and List's
// filter and paging.
func TestBadKeysAndIDs(t *testing.T) {
	e := newEnv(t)
	type call func(c context.Context) error
	getRegion := func(key string) call {
		return func(c context.Context) error {
			_, err := e.catalog.GetRegion(c, &pb.GetRegionRequest{Key: key})
			return err
		}
	}
	deleteRegion := func(key string) call {
		return func(c context.Context) error {
			_, err := e.catalog.DeleteRegion(c, &pb.DeleteRegionRequest{Key: key})
			return err
		}
	}
	list := func(mutate func(r *pb.ListRequest)) call {
		return func(c context.Context) error {
			r := &pb.ListRequest{Tenant: "aus-defence", Region: "aws/ap-tsc-au-1", State: pb.PlacementState_PLACEMENT_STATE_PLACED, PageSize: 10}
			mutate(r)
			_, err := e.place.List(c, r)
			return err
		}
	}
	cases := []struct {
		name  string
		call  call
		field string
		desc  string
	}{
		{"GetRegion without a slash", getRegion("nokey"), "key", "want a region key provider/id, got nokey"},
		{"GetRegion empty", getRegion(""), "key", "want a region key provider/id"},
		{"GetRegion without a provider", getRegion("/us-east-1"), "key", "/us-east-1"},
		{"GetRegion without an id", getRegion("aws/"), "key", "aws/"},
		{"DeleteRegion without a slash", deleteRegion("nokey"), "key", "got nokey"},
		{"DeleteRegion without an id", deleteRegion("aws/"), "key", "aws/"},
		{"Get empty", func(c context.Context) error {
			_, err := e.place.Get(c, &pb.GetRequest{})
			return err
		}, "id", "required"},
		{"Release empty", func(c context.Context) error {
			_, err := e.place.Release(c, &pb.ReleaseRequest{})
			return err
		}, "id", "required"},
		{"GetProvider empty", func(c context.Context) error {
			_, err := e.catalog.GetProvider(c, &pb.GetProviderRequest{})
			return err
		}, "id", "required"},
		{"DeleteProvider empty", func(c context.Context) error {
			_, err := e.catalog.DeleteProvider(c, &pb.DeleteProviderRequest{})
			return err
		}, "id", "required"},
		{"GetTenant empty", func(c context.Context) error {
			_, err := e.catalog.GetTenant(c, &pb.GetTenantRequest{})
			return err
		}, "id", "required"},
		{"DeleteTenant empty", func(c context.Context) error {
			_, err := e.catalog.DeleteTenant(c, &pb.DeleteTenantRequest{})
			return err
		}, "id", "required"},
		{"List page size 5000", list(func(r *pb.ListRequest) { r.PageSize = 5000 }), "page_size", "must be between 0 and 1000, got 5000"},
		{"List page size negative", list(func(r *pb.ListRequest) { r.PageSize = -1 }), "page_size", "got -1"},
		{"List region not a key", list(func(r *pb.ListRequest) { r.Region = "nokey" }), "region", `want a region key provider/id, got "nokey"`},
		{"List state unknown", list(func(r *pb.ListRequest) { r.State = 7 }), "state", "unknown value 7"},
		{"List page token forged", list(func(r *pb.ListRequest) { r.PageToken = "not base64!" }), "page_token", "not a token this service returned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := e.unchanged(t)
			desc := wantField(t, tc.call(ctx(t)), tc.field)
			wantContains(t, tc.field, desc, tc.desc)
			check()
		})
	}
	t.Run("List known-good", func(t *testing.T) {
		if err := list(func(*pb.ListRequest) {})(ctx(t)); err != nil {
			t.Errorf("List(known-good request): %v", err)
		}
	})
}

func TestCheckLabel(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		banner string
		want   string // the canonical banner; "" when invalid
		desc   string // part of the violation of field banner
	}{
		{"known-good", "SECRET//REL TO USA, AUS, GBR", "SECRET//REL TO USA, AUS, GBR", ""},
		{"lower case and padding", "  secret//rel to usa, gbr, aus ", "SECRET//REL TO USA, AUS, GBR", ""},
		{"4096 bytes is not too long", "SECRET//NOFORN" + strings.Repeat(" ", 4082), "SECRET//NOFORN", ""},
		{"NOFORN with REL TO", "SECRET//NOFORN/REL TO USA, CAN", "", "NOFORN cannot be combined with REL TO"},
		{"unknown country", "SECRET//REL TO USA, XYZ", "", `unknown country code "XYZ"`},
		{"portion marking NF", "SECRET//NF", "", `"NF" is a portion marking; the banner form is NOFORN`},
		{"HCS without a compartment", "TOP SECRET//HCS", "", "HCS requires a compartment"},
		{"USA not first", "SECRET//REL TO GBR, USA", "", "REL TO must list USA first"},
		{"unknown control", "SECRET//XYZ", "", `unknown control "XYZ"`},
		{"trailing separator", "SECRET//", "", `trailing "//"`},
		{"empty", "", "", "empty marking"},
		{"blank", "   ", "", "empty marking"},
		{"longer than 4096 bytes", "SECRET" + strings.Repeat(" ", 4091), "", "longer than 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.catalog.CheckLabel(ctx(t), &pb.CheckLabelRequest{Banner: tc.banner})
			if tc.want != "" {
				if err != nil {
					t.Fatalf("CheckLabel(%q): %v", tc.banner, err)
				}
				if got := resp.GetLabel().GetBanner(); got != tc.want {
					t.Errorf("CheckLabel(%q): got %q; want %q", tc.banner, got, tc.want)
				}
				return
			}
			desc := wantField(t, err, "banner")
			wantContains(t, "banner", desc, tc.desc)
		})
	}
}
