package server

import (
	"context"
	"fmt"
	"sort"
	"strings"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/label"
)

// CatalogStore is what the catalogue service calls of the store.
type CatalogStore interface {
	// PutRegionOperational applies a region change that needs one
	// administrator; the others are proposed and approved (changes.go).
	PutRegionOperational(ctx context.Context, r *router.Region) (int64, error)
	GetRegion(key string) (router.RegionState, error)
	ListRegions() ([]router.RegionState, int64)
	DeleteRegion(ctx context.Context, key string) error
	PutProvider(ctx context.Context, p *router.Provider) error
	GetProvider(id string) (*router.Provider, error)
	ListProviders() []*router.Provider
	DeleteProvider(ctx context.Context, id string) error
	PutTenant(ctx context.Context, t *router.Tenant) error
	GetTenant(id string) (*router.Tenant, error)
	ListTenants() []*router.Tenant
	DeleteTenant(ctx context.Context, id string) error
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
	rev, err := s.store.PutRegionOperational(ctx, r)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	st, err := s.store.GetRegion(r.Key())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "region put", "region", r.Key(), "revision", rev)
	return &pb.PutRegionResponse{Region: s.regionToProto(st), Revision: rev}, nil
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
	return &pb.GetRegionResponse{Region: s.regionToProto(st)}, nil
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
		out.Regions = append(out.Regions, s.regionToProto(st))
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
	if err := s.store.DeleteRegion(ctx, req.GetKey()); err != nil {
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
	if err := s.store.PutProvider(ctx, p); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.PutProviderResponse{Provider: convert.ProviderToProto(p)}, nil
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
	var p *router.Provider
	if sc.confined() && !s.knownProviders(sc)[req.GetId()] {
		err = notFound("provider", req.GetId())
	} else {
		p, err = s.store.GetProvider(req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetProviderResponse{Provider: convert.ProviderToProto(p)}, nil
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
	for _, p := range s.store.ListProviders() {
		if sc.confined() && !known[p.ID] {
			continue
		}
		out.Providers = append(out.Providers, convert.ProviderToProto(p))
	}
	return out, nil
}

// DeleteProvider removes a provider that has no regions.
func (s *catalogService) DeleteProvider(ctx context.Context, req *pb.DeleteProviderRequest) (*pb.DeleteProviderResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.store.DeleteProvider(ctx, req.GetId()); err != nil {
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
	if err := s.store.PutTenant(ctx, t); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.PutTenantResponse{Tenant: convert.TenantToProto(t)}, nil
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
	t, err := s.store.GetTenant(req.GetId())
	if err == nil && sc.confined() && t.ID != sc.tenantID {
		err = notFound("tenant", req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetTenantResponse{Tenant: s.tenantToProto(ctx, sc, t)}, nil
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
	ts := s.store.ListTenants()
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	out := &pb.ListTenantsResponse{}
	for _, t := range ts {
		if sc.confined() && t.ID != sc.tenantID {
			continue
		}
		out.Tenants = append(out.Tenants, s.tenantToProto(ctx, sc, t))
	}
	return out, nil
}

// DeleteTenant removes a tenant with no live placements.
func (s *catalogService) DeleteTenant(ctx context.Context, req *pb.DeleteTenantRequest) (*pb.DeleteTenantResponse, error) {
	if req.GetId() == "" {
		return nil, s.fail(ctx, router.Violations{{Field: "id", Description: "required"}}.Err())
	}
	if err := s.store.DeleteTenant(ctx, req.GetId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.DeleteTenantResponse{}, nil
}

// CheckLabel parses a banner marking.
func (s *catalogService) CheckLabel(ctx context.Context, req *pb.CheckLabelRequest) (*pb.CheckLabelResponse, error) {
	if len(req.GetBanner()) > router.MaxBannerLen {
		return nil, s.fail(ctx, router.Violations{{Field: "banner", Description: fmt.Sprintf("longer than %d bytes", router.MaxBannerLen)}}.Err())
	}
	l, err := label.Parse(req.GetBanner())
	if err != nil {
		return nil, s.fail(ctx, router.Violations{{Field: "banner", Description: err.Error()}}.Err())
	}
	return &pb.CheckLabelResponse{Label: convert.LabelToProto(l)}, nil
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
