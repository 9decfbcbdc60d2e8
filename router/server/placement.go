package server

import (
	"context"
	"errors"
	"strings"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/feed"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/state"
)

// PlacementStore is what the placement service calls of the store.
type PlacementStore interface {
	// Place decides and commits a placement; Plan decides and commits
	// nothing.
	Place(ctx context.Context, requestID string, w *router.Workload) (*router.Placement, error)
	Plan(ctx context.Context, w *router.Workload) (state.Plan, error)
	// GetPlacement and Release name a placement by its tenant and
	// request id; GetPlacement with tenant "" finds the one tenant that
	// used the id (InvalidError on "tenant" when several did).
	GetPlacement(tenant, id string) (*router.Placement, error)
	// GetTenant returns a tenant from the cache (its default scheme
	// reads the workload's bare level words).
	GetTenant(id string) (*router.Tenant, error)
	ListPlacements(f state.PlacementFilter, pageSize int, pageToken string) (state.PlacementPage, error)
	Release(ctx context.Context, tenant, id string) (*router.Placement, error)
	// WatchPlacements streams the placement changes after a revision
	// (watch.go).
	WatchPlacements(ctx context.Context, f feed.Filter, after int64) (*feed.Feed, error)
}

// placementService implements PlacementService: Place, Plan, Get, List
// and Release here, Watch in watch.go.
type placementService struct {
	pb.UnimplementedPlacementServiceServer
	*Server
	store PlacementStore
}

// defaultScheme is the scheme the workload's tenant reads bare level
// words in. A tenant user naming another tenant learns nothing of that
// tenant's: its own tenant's scheme is used, and it is refused for the
// other tenant (PERMISSION_DENIED) after validation.
func (s *placementService) defaultScheme(ctx context.Context, tenant string) marking.Scheme {
	if p := authz.FromContext(ctx); p != nil && p.Kind == authz.KindTenant {
		tenant = p.Tenant
	}
	t, err := s.store.GetTenant(tenant)
	if err != nil {
		return ""
	}
	return t.DefaultScheme()
}

// workload converts and validates a request's workload, reading a bare
// level word in defaultScheme.
func workload(w *pb.Workload, defaultScheme marking.Scheme, v *router.Violations) *router.Workload {
	n := len(*v) // violations of other fields must not hide the workload's
	out := convert.WorkloadFromProto(w, v)
	if out == nil || len(*v) > n {
		return out
	}
	if err := router.ValidateWorkload(out, defaultScheme); err != nil {
		if inv, ok := err.(*router.InvalidError); ok {
			*v = append(*v, inv.Violations...)
		} else {
			v.Add("workload", "%v", err)
		}
	}
	return out
}

// Place decides and commits a placement.
func (s *placementService) Place(ctx context.Context, req *pb.PlaceRequest) (*pb.PlaceResponse, error) {
	var v router.Violations
	if !router.ValidRequestID(req.GetRequestId()) {
		v.Add("request_id", "required: 1-128 characters of [A-Za-z0-9._:-]")
	}
	w := workload(req.GetWorkload(), s.defaultScheme(ctx, req.GetWorkload().GetTenant()), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.mayActFor(w.Tenant); err != nil {
		return nil, err
	}
	p, err := s.store.Place(ctx, req.GetRequestId(), w)
	var refusal *router.RefusalError
	if errors.As(err, &refusal) && sc.confined() {
		// Name to the caller only the regions it may know of: the
		// decision counted no other (router.Engine), and the
		// revision counts every tenant's writes.
		r := *refusal
		r.Regions, _ = redact(refusal.Regions, s.knownRegions(sc))
		r.Redacted, r.Revision = 0, 0
		err = &r
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "placed", "placement", p, "caller", authz.FromContext(ctx))
	return &pb.PlaceResponse{Placement: sc.placement(p)}, nil
}

// Plan decides without committing.
func (s *placementService) Plan(ctx context.Context, req *pb.PlanRequest) (*pb.PlanResponse, error) {
	var v router.Violations
	w := workload(req.GetWorkload(), s.defaultScheme(ctx, req.GetWorkload().GetTenant()), &v)
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := sc.mayActFor(w.Tenant); err != nil {
		return nil, err
	}
	res, err := s.store.Plan(ctx, w)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	// The decision was made among the regions the tenant may know of
	// (router.Engine): the refusal summary counts no other, and every
	// eligible region is one of them, so only the verdicts of the
	// others need leaving out, uncounted. The revision counts every
	// tenant's writes: never shown to a confined caller.
	regions, _ := redact(res.Regions, s.knownRegions(sc))
	out := &pb.PlanResponse{
		Label:    planLabel(res),
		Revision: sc.revision(res.Revision),
		Regions:  convert.VerdictsToProto(regions),
		Chosen:   res.Chosen,
	}
	if res.Refusal != nil {
		out.Refusal = res.Refusal.Error()
	}
	return out, nil
}

// placementName checks the request id and tenant that name a placement
// in a Get or Release.
func placementName(id, tenant string) error {
	var v router.Violations
	if id == "" {
		v.Add("id", "required")
	}
	if tenant != "" && !router.ValidID(tenant) {
		v.Add("tenant", "want a tenant id of lowercase letters, digits and '-', got %q", clip(tenant, maxDescriptionBytes/2))
	}
	return v.Err()
}

// Get returns one placement: the request id's within the caller's
// tenant for a tenant user, within the tenant named otherwise.
func (s *placementService) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	if err := placementName(req.GetId(), req.GetTenant()); err != nil {
		return nil, s.fail(ctx, err)
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := sc.tenantFilter(req.GetTenant())
	if err != nil {
		return nil, err
	}
	p, err := s.store.GetPlacement(tenant, req.GetId())
	if err == nil && !sc.maySee(p) {
		err = notFound("placement", req.GetId())
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return &pb.GetResponse{Placement: sc.placement(p)}, nil
}

// List returns placements, filtered and paginated.
func (s *placementService) List(ctx context.Context, req *pb.ListRequest) (*pb.ListResponse, error) {
	var v router.Violations
	var f state.PlacementFilter
	f.Tenant, f.Region = req.GetTenant(), req.GetRegion()
	if f.Region != "" && !strings.Contains(f.Region, "/") {
		v.Add("region", "want a region key provider/id, got %q", f.Region)
	}
	f.State = convert.PlacementStateFromProto(req.GetState(), "state", &v)
	if n := req.GetPageSize(); n < 0 || n > 1000 {
		v.Add("page_size", "must be between 0 and 1000, got %d", n)
	}
	if err := v.Err(); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if f.Tenant, err = sc.tenantFilter(f.Tenant); err != nil {
		return nil, err
	}
	if err := s.fresh(ctx); err != nil {
		return nil, err
	}
	page, err := s.store.ListPlacements(f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	token, err := s.resumeToken(ctx, sc.tenantID, page.Revision)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &pb.ListResponse{NextPageToken: page.Next, Revision: sc.revision(page.Revision), ResumeToken: token}
	for _, p := range page.Placements {
		out.Placements = append(out.Placements, sc.placement(p))
	}
	return out, nil
}

// Release frees a placement's capacity: the request id's within the
// caller's tenant for a tenant user (it can touch no other tenant's),
// within the tenant named otherwise.
func (s *placementService) Release(ctx context.Context, req *pb.ReleaseRequest) (*pb.ReleaseResponse, error) {
	if err := placementName(req.GetId(), req.GetTenant()); err != nil {
		return nil, s.fail(ctx, err)
	}
	sc, err := s.scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	tenant, err := sc.tenantFilter(req.GetTenant())
	if err != nil {
		return nil, err
	}
	if tenant == "" {
		// An unconfined caller that names no tenant: the one tenant
		// that used the id, as the cache shows (one placed through
		// another daemon a moment ago may not be found: name the
		// tenant to be sure).
		if err := s.fresh(ctx); err != nil {
			return nil, err
		}
		p, err := s.store.GetPlacement("", req.GetId())
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		tenant = p.Tenant
	}
	p, err := s.store.Release(ctx, tenant, req.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.log.InfoContext(ctx, "released", "placement", p, "caller", authz.FromContext(ctx))
	return &pb.ReleaseResponse{Placement: sc.placement(p)}, nil
}

// planLabel is the structured label a plan was decided for, in its scheme.
func planLabel(p state.Plan) *pb.Label {
	if p.Marking.Scheme != "" {
		return convert.MarkingToProto(p.Marking)
	}
	return convert.LabelToProto(p.Label)
}
