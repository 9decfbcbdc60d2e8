package server

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/state"
)

// CatalogStore is what the catalogue service calls of the store.
type CatalogStore interface {
	// PutRegionOperational applies a region change that needs one
	// administrator; the others are proposed and approved (changes.go).
	// The writes take state.IfRevision: the etag the caller read.
	PutRegionOperational(ctx context.Context, r *router.Region, opts ...state.WriteOption) (int64, error)
	GetRegion(key string) (router.RegionState, error)
	ListRegions() ([]router.RegionState, int64)
	DeleteRegion(ctx context.Context, key string, opts ...state.WriteOption) error
	PutProvider(ctx context.Context, p *router.Provider, opts ...state.WriteOption) error
	GetProviderVersioned(id string) (state.Versioned[*router.Provider], error)
	ListProvidersVersioned() []state.Versioned[*router.Provider]
	DeleteProvider(ctx context.Context, id string, opts ...state.WriteOption) error
	PutTenant(ctx context.Context, t *router.Tenant, opts ...state.WriteOption) error
	GetTenantVersioned(id string) (state.Versioned[*router.Tenant], error)
	ListTenantsVersioned() []state.Versioned[*router.Tenant]
	DeleteTenant(ctx context.Context, id string, opts ...state.WriteOption) error
	// RegionAgent reads what the cache holds of a region's agent.
	RegionAgent(key string) (*router.RegionLive, *router.Health)
}

// catalogService implements CatalogService: regions, providers, tenants
// and label checks.
type catalogService struct {
	pb.UnimplementedCatalogServiceServer
	*Server
	store CatalogStore
}

// PutRegion replaces a region with an operational change (status,
// capacity, cost...). Adding a region or changing what it is accredited
// for is FAILED_PRECONDITION (TWO_PERSON_REQUIRED): ChangeService.
func (s *catalogService) PutRegion(ctx context.Context, req *pb.PutRegionRequest) (*pb.PutRegionResponse, error) {
	var v router.Violations
	r := convert.RegionFromProto(req.GetRegion(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateRegion(r); err != nil {
		return nil, s.fail(ctx, err)
	}
	ifRev, err := state.ParseEtag("region.etag", req.GetRegion().GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	rev, err := s.store.PutRegionOperational(ctx, r, state.IfRevision(ifRev))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	st, err := s.store.GetRegion(r.Key())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "region put", "region", r.Key(), "revision", rev)
	out := s.regionToProto(st)
	out.Etag = state.Etag(st.Rev)
	return &pb.PutRegionResponse{Region: out, Revision: rev}, nil
}

func regionKey(key string) error {
	if p, id, ok := strings.Cut(key, "/"); !ok || p == "" || id == "" {
		return router.Violations{{Field: "key", Description: "want a region key provider/id, got " + strings.TrimSpace(key)}}.Err()
	}
	return nil
}

// GetRegion returns one region with its usage.
func (s *catalogService) GetRegion(ctx context.Context, req *pb.GetRegionRequest) (*pb.GetRegionResponse, error) {
	if err := regionKey(req.GetKey()); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.store.GetRegion(req.GetKey())
	if err == nil && !sc.mayKnow(st.Region) {
		err = notFound("region", req.GetKey())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := s.regionToProto(st)
	out.Etag = sc.etag(st.Rev)
	sc.redactAccreditations(out, st.Region)
	return &pb.GetRegionResponse{Region: out}, nil
}

// ListRegions returns every region, or one provider's.
func (s *catalogService) ListRegions(ctx context.Context, req *pb.ListRegionsRequest) (*pb.ListRegionsResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	// A region the caller may not know of is left out and counted
	// nowhere, so a filter on a provider it may not know of answers
	// exactly as one on a provider that does not exist.
	regions, rev := s.store.ListRegions()
	out := &pb.ListRegionsResponse{Revision: sc.revision(rev)}
	for _, st := range regions {
		if req.GetProvider() != "" && st.Region.Provider != req.GetProvider() {
			continue
		}
		if !sc.mayKnow(st.Region) {
			continue
		}
		r := s.regionToProto(st)
		r.Etag = sc.etag(st.Rev)
		sc.redactAccreditations(r, st.Region)
		out.Regions = append(out.Regions, r)
	}
	return out, nil
}

// regionToProto converts a region with what is known of its agent.
func (s *catalogService) regionToProto(st router.RegionState) *pb.Region {
	r := convert.RegionToProto(st)
	live, _ := s.store.RegionAgent(r.GetKey())
	r.Health = convert.RegionHealthToProto(live, st.Health)
	return r
}

// DeleteRegion removes a region no placement uses.
func (s *catalogService) DeleteRegion(ctx context.Context, req *pb.DeleteRegionRequest) (*pb.DeleteRegionResponse, error) {
	if err := regionKey(req.GetKey()); err != nil {
		return nil, s.fail(ctx, err)
	}
	ifRev, err := state.ParseEtag("etag", req.GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.DeleteRegion(ctx, req.GetKey(), state.IfRevision(ifRev)); err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "region deleted", "region", req.GetKey())
	return &pb.DeleteRegionResponse{}, nil
}

// PutProvider creates or replaces a provider.
func (s *catalogService) PutProvider(ctx context.Context, req *pb.PutProviderRequest) (*pb.PutProviderResponse, error) {
	var v router.Violations
	p := convert.ProviderFromProto(req.GetProvider(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateProvider(p); err != nil {
		return nil, s.fail(ctx, err)
	}
	ifRev, err := state.ParseEtag("provider.etag", req.GetProvider().GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.PutProvider(ctx, p, state.IfRevision(ifRev)); err != nil {
		return nil, s.fail(ctx, err)
	}
	// The etag of the record as written: read back from the cache, which
	// reflects the write; if another write came between, none (the
	// caller reads again).
	out := convert.ProviderToProto(p)
	if v, err := s.store.GetProviderVersioned(p.ID); err == nil && reflect.DeepEqual(v.Value, p) {
		out.Etag = state.Etag(v.Rev)
	}
	return &pb.PutProviderResponse{Provider: out}, nil
}

// GetProvider returns one provider.
func (s *catalogService) GetProvider(ctx context.Context, req *pb.GetProviderRequest) (*pb.GetProviderResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	// For a confined caller, the providers it may know of are worked
	// out first, whatever it asked for: a hidden provider and a missing
	// one cost the same.
	var p state.Versioned[*router.Provider]
	if sc.confined() && !s.knownProviders(sc)[req.GetId()] {
		err = notFound("provider", req.GetId())
	} else {
		p, err = s.store.GetProviderVersioned(req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := convert.ProviderToProto(p.Value)
	out.Etag = sc.etag(p.Rev)
	return &pb.GetProviderResponse{Provider: out}, nil
}

// ListProviders returns every provider.
func (s *catalogService) ListProviders(ctx context.Context, _ *pb.ListProvidersRequest) (*pb.ListProvidersResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	known := s.knownProviders(sc)
	out := &pb.ListProvidersResponse{}
	for _, v := range s.store.ListProvidersVersioned() {
		if sc.confined() && !known[v.Value.ID] {
			continue
		}
		p := convert.ProviderToProto(v.Value)
		p.Etag = sc.etag(v.Rev)
		out.Providers = append(out.Providers, p)
	}
	return out, nil
}

// DeleteProvider removes a provider that has no regions.
func (s *catalogService) DeleteProvider(ctx context.Context, req *pb.DeleteProviderRequest) (*pb.DeleteProviderResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	ifRev, err := state.ParseEtag("etag", req.GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.DeleteProvider(ctx, req.GetId(), state.IfRevision(ifRev)); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteProviderResponse{}, nil
}

// PutTenant creates or replaces a tenant.
func (s *catalogService) PutTenant(ctx context.Context, req *pb.PutTenantRequest) (*pb.PutTenantResponse, error) {
	var v router.Violations
	t := convert.TenantFromProto(req.GetTenant(), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := router.ValidateTenant(t); err != nil {
		return nil, s.fail(ctx, err)
	}
	ifRev, err := state.ParseEtag("tenant.etag", req.GetTenant().GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.PutTenant(ctx, t, state.IfRevision(ifRev)); err != nil {
		return nil, s.fail(ctx, err)
	}
	out := convert.TenantToProto(t)
	if v, err := s.store.GetTenantVersioned(t.ID); err == nil && reflect.DeepEqual(v.Value, t) {
		out.Etag = state.Etag(v.Rev)
	}
	return &pb.PutTenantResponse{Tenant: out}, nil
}

// GetTenant returns one tenant.
func (s *catalogService) GetTenant(ctx context.Context, req *pb.GetTenantRequest) (*pb.GetTenantResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	t, err := s.store.GetTenantVersioned(req.GetId())
	if err == nil && sc.confined() && t.Value.ID != sc.tenantID {
		err = notFound("tenant", req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := s.tenantToProto(ctx, sc, t.Value)
	out.Etag = sc.etag(t.Rev)
	return &pb.GetTenantResponse{Tenant: out}, nil
}

// ListTenants returns every tenant.
func (s *catalogService) ListTenants(ctx context.Context, _ *pb.ListTenantsRequest) (*pb.ListTenantsResponse, error) {
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	ts := s.store.ListTenantsVersioned()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Value.ID < ts[j].Value.ID })
	out := &pb.ListTenantsResponse{}
	for _, v := range ts {
		if sc.confined() && v.Value.ID != sc.tenantID {
			continue
		}
		t := s.tenantToProto(ctx, sc, v.Value)
		t.Etag = sc.etag(v.Rev)
		out.Tenants = append(out.Tenants, t)
	}
	return out, nil
}

// DeleteTenant removes a tenant with no live placements.
func (s *catalogService) DeleteTenant(ctx context.Context, req *pb.DeleteTenantRequest) (*pb.DeleteTenantResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	ifRev, err := state.ParseEtag("etag", req.GetEtag())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.store.DeleteTenant(ctx, req.GetId(), state.IfRevision(ifRev)); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteTenantResponse{}, nil
}

// CheckLabel parses a banner marking.
func (s *catalogService) CheckLabel(ctx context.Context, req *pb.CheckLabelRequest) (*pb.CheckLabelResponse, error) {
	if len(req.GetBanner()) > router.MaxBannerLen {
		return nil, s.fail(ctx, router.Violations{{Field: "banner", Description: fmt.Sprintf("longer than %d bytes", router.MaxBannerLen)}}.Err())
	}
	scheme := marking.Scheme(req.GetScheme())
	if scheme != "" && !scheme.Valid() {
		return nil, s.fail(ctx, router.Violations{{Field: "scheme", Description: fmt.Sprintf("unknown scheme %q (schemes: US, GBR, AUS, NATO, CAN, NZL, EU, KEN)", scheme)}}.Err())
	}
	// A tenant's user's bare level words are read in its tenant's scheme,
	// as its workloads' are; anyone else names the scheme.
	var def marking.Scheme
	if p := authz.FromContext(ctx); p != nil && p.Kind == authz.KindTenant {
		if t, err := s.store.GetTenantVersioned(p.Tenant); err == nil {
			def = t.Value.DefaultScheme()
		}
	}
	var m marking.Label
	var err error
	if scheme != "" {
		m, err = marking.Parse(scheme, req.GetBanner())
	} else {
		m, err = marking.ParseDefault(req.GetBanner(), def)
	}
	if err != nil {
		if router.ReadAsUS(scheme, req.GetBanner(), def) {
			// A US marking's refusal keeps router/label's words.
			if _, uerr := label.Parse(req.GetBanner()); uerr != nil {
				err = uerr
			}
		}
		return nil, s.fail(ctx, router.Violations{{Field: "banner", Description: err.Error()}}.Err())
	}
	return &pb.CheckLabelResponse{Label: convert.MarkingToProto(m)}, nil
}

// tenantToProto converts tenant record t as the caller may see it. Its
// members (who holds which role) are shown to callers that are not
// confined and to the tenant's own auditors; a confined caller sees, of
// its allowed and denied regions and providers, only those it may know
// of, since an administrator may have named a region it may not.
func (s *catalogService) tenantToProto(ctx context.Context, sc scope, t *router.Tenant) *pb.Tenant {
	out := convert.TenantToProto(t)
	if !sc.confined() {
		return out
	}
	if !authz.FromContext(ctx).Has(authz.RoleTenantAuditor) {
		out.Members = nil
	}
	regions, providers := s.knownRegions(sc), s.knownProviders(sc)
	keep := func(list []string, known map[string]bool) []string {
		var kept []string
		for _, x := range list {
			if known[x] {
				kept = append(kept, x)
			}
		}
		return kept
	}
	out.AllowedRegions, out.DeniedRegions = keep(out.AllowedRegions, regions), keep(out.DeniedRegions, regions)
	out.AllowedProviders, out.DeniedProviders = keep(out.AllowedProviders, providers), keep(out.DeniedProviders, providers)
	return out
}
