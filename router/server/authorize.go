package server

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/state"
)

// rule says who may call one method: a principal holding any of roles,
// or, with anyone, every authenticated principal, roles or none.
type rule struct {
	roles  []authz.Role
	anyone bool
}

// Role sets of the policy table.
var (
	submitter = []authz.Role{authz.RoleSubmitter}
	admin     = []authz.Role{authz.RoleCatalogAdmin}
	agent     = []authz.Role{authz.RoleAgent}
	// readers read placements: a tenant's users see their tenant's only
	// (the handlers confine them), the others every tenant's.
	readers = []authz.Role{authz.RoleSubmitter, authz.RoleTenantAuditor, authz.RoleCatalogAdmin, authz.RoleSecurityAuditor}
	// catalogReaders read regions, providers and tenants: a tenant's
	// users only what their tenant may know of (redacted).
	catalogReaders = []authz.Role{authz.RoleSubmitter, authz.RoleCatalogAdmin, authz.RoleSecurityAuditor}
	changeReaders  = []authz.Role{authz.RoleCatalogAdmin, authz.RoleSecurityAuditor}
	auditReaders   = []authz.Role{authz.RoleSecurityAuditor, authz.RoleTenantAuditor}
	// anyRole is every principal that holds a role at all.
	anyRole = authz.Roles
)

// policy is who may call each gRPC method the daemon serves. Deny by
// default: a method missing here is refused with PERMISSION_DENIED "no
// policy for method", so a new RPC is unreachable until it gets its one
// line. TestPolicyCoversEveryMethod holds this table to the registered
// services, and TestMethodRoles walks every method with every role.
//
// The table says which roles may call a method at all; the handlers
// then confine a tenant's users to their tenant (Place, Plan, Get, List,
// Watch, Release, the catalogue reads) and an agent to its region
// (Connect).
var policy = map[string]rule{
	pb.PlacementService_Place_FullMethodName:   {roles: submitter},
	pb.PlacementService_Plan_FullMethodName:    {roles: submitter},
	pb.PlacementService_Get_FullMethodName:     {roles: readers},
	pb.PlacementService_List_FullMethodName:    {roles: readers},
	pb.PlacementService_Release_FullMethodName: {roles: submitter},
	pb.PlacementService_Watch_FullMethodName:   {roles: readers},

	pb.CatalogService_PutRegion_FullMethodName:      {roles: admin},
	pb.CatalogService_GetRegion_FullMethodName:      {roles: catalogReaders},
	pb.CatalogService_ListRegions_FullMethodName:    {roles: catalogReaders},
	pb.CatalogService_DeleteRegion_FullMethodName:   {roles: admin},
	pb.CatalogService_PutProvider_FullMethodName:    {roles: admin},
	pb.CatalogService_GetProvider_FullMethodName:    {roles: catalogReaders},
	pb.CatalogService_ListProviders_FullMethodName:  {roles: catalogReaders},
	pb.CatalogService_DeleteProvider_FullMethodName: {roles: admin},
	pb.CatalogService_PutTenant_FullMethodName:      {roles: admin},
	pb.CatalogService_GetTenant_FullMethodName:      {roles: catalogReaders},
	pb.CatalogService_ListTenants_FullMethodName:    {roles: catalogReaders},
	pb.CatalogService_DeleteTenant_FullMethodName:   {roles: admin},
	pb.CatalogService_CheckLabel_FullMethodName:     {roles: anyRole},

	pb.AgentService_Connect_FullMethodName: {roles: agent},

	// Two-person region changes: a proposal by one administrator,
	// approved or rejected by another (the store checks they differ).
	pb.ChangeService_ProposeRegionChange_FullMethodName: {roles: admin},
	pb.ChangeService_ApproveChange_FullMethodName:       {roles: admin},
	pb.ChangeService_RejectChange_FullMethodName:        {roles: admin},
	pb.ChangeService_GetChange_FullMethodName:           {roles: changeReaders},
	pb.ChangeService_ListChanges_FullMethodName:         {roles: changeReaders},
	// Equivalence entries change by the same two-person proposals; they
	// name agreements between schemes, not regions: anyone may read them.
	pb.ChangeService_ProposeEquivalenceChange_FullMethodName: {roles: admin},
	pb.EquivalenceService_ListEquivalences_FullMethodName:    {roles: anyRole},
	pb.EquivalenceService_GetEquivalence_FullMethodName:      {roles: anyRole},
	// Cross-domain edges and catalogue services change the same way;
	// they say where classified data may cross between networks, so
	// only those who read the change queue read them.
	pb.ChangeService_ProposeEdgeChange_FullMethodName:    {roles: admin},
	pb.ChangeService_ProposeServiceChange_FullMethodName: {roles: admin},
	pb.EdgeService_ListEdges_FullMethodName:              {roles: changeReaders},
	pb.EdgeService_GetEdge_FullMethodName:                {roles: changeReaders},
	pb.EdgeService_ListServices_FullMethodName:           {roles: changeReaders},
	pb.EdgeService_GetService_FullMethodName:             {roles: changeReaders},

	// The audit trail: a tenant auditor reads its tenant's entries only
	// (auditScope), redacted; verifying the whole chain is the security
	// auditor's.
	pb.AuditService_ListAudit_FullMethodName:   {roles: auditReaders},
	pb.AuditService_VerifyAudit_FullMethodName: {roles: []authz.Role{authz.RoleSecurityAuditor}},

	// Probes and tools: health says only whether the daemon serves;
	// reflection describes the API, not its data.
	healthpb.Health_Check_FullMethodName:                                   {anyone: true},
	healthpb.Health_List_FullMethodName:                                    {anyone: true},
	healthpb.Health_Watch_FullMethodName:                                   {anyone: true},
	reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName:      {roles: anyRole},
	reflectionalphapb.ServerReflection_ServerReflectionInfo_FullMethodName: {roles: anyRole},
}

// Policy returns the roles that may call method, and whether anyone
// authenticated may; ok is false when the table has no entry for it
// (such a call is refused).
func Policy(method string) (roles []authz.Role, anyone, ok bool) {
	r, ok := policy[method]
	return slices.Clone(r.roles), r.anyone, ok
}

// authorize decides whether p may call method (a full gRPC method name),
// and returns the principal the call runs as: a tenant user's roles are
// the ones its tenant's policy grants it (Tenant.Members), resolved here
// on every call, so that revoking a member takes effect at once.
func (s *Server) authorize(ctx context.Context, method string, p *authz.Principal) (*authz.Principal, error) {
	r, ok := policy[method]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "no policy for method %s", method)
	}
	if r.anyone {
		return p, nil
	}
	if p.Kind == authz.KindTenant {
		// The roles come from the tenant record alone: never from the
		// identity. A stale cache could still grant a revoked role.
		if err := s.ready.Ready(); err != nil {
			return nil, s.fail(ctx, err)
		}
		q := *p
		q.Roles = nil
		if t, err := s.scopes.GetTenant(p.Tenant); err == nil {
			for _, role := range t.MemberRoles(p.Name) {
				if role == authz.RoleSubmitter || role == authz.RoleTenantAuditor {
					q.Roles = append(q.Roles, role)
				}
			}
		}
		p = &q
	}
	for _, role := range r.roles {
		if p.Has(role) {
			return p, nil
		}
	}
	return nil, status.Errorf(codes.PermissionDenied, "%s may not call %s", p, method)
}

// scopeStore is what authorizing a tenant's user and working out a
// caller's scope read of the catalogue: the tenant's record (its
// members' roles, its policy), and the regions it may know of.
type scopeStore interface {
	GetTenant(id string) (*router.Tenant, error)
	ListRegions() ([]router.RegionState, int64)
}

// scope is what one caller may see: everything, or one tenant's
// placements and what that tenant may know of the catalogue.
type scope struct {
	// tenantID is the tenant a tenant user is confined to; "" when the
	// caller is not confined.
	tenantID string
	// tenant is its record; nil when it is gone (then the caller may
	// know of no region).
	tenant *router.Tenant
	// known holds the keys of the regions a confined caller may know of
	// (knownRegions), as of the call's start.
	known map[string]bool
}

func (sc scope) confined() bool { return sc.tenantID != "" }

// mayKnow reports whether the caller may learn that region r exists.
func (sc scope) mayKnow(r *router.Region) bool {
	return !sc.confined() || sc.tenant.MayKnow(r)
}

// redactAccreditations leaves, of region reg's accreditations in other
// schemes than the US, only those a confined caller's tenant may know of
// (router.Tenant.KnowsAccreditation): one above its ceiling in its
// scheme, or in a scheme it has no ceiling in, is not shown, nor counted.
func (sc scope) redactAccreditations(out *pb.Region, reg *router.Region) {
	if !sc.confined() {
		return
	}
	if sc.tenant == nil {
		out.Accreditations = nil
		return
	}
	var kept []*pb.SchemeAccreditation
	for i, a := range out.GetAccreditations() {
		if i < len(reg.Accreditations) && sc.tenant.KnowsAccreditation(&reg.Accreditations[i]) {
			kept = append(kept, a)
		}
	}
	out.Accreditations = kept
}

// scopeOf returns the scope of ctx's caller. A tenant user is confined
// to its tenant; an administrator, an auditor, an agent and the
// development principal are not. With authentication configured, a call
// that carries no principal is refused; without (a server whose
// AuthOptions are not installed: in-process tests), nothing is confined.
func (s *Server) scopeOf(ctx context.Context) (scope, error) {
	p := authz.FromContext(ctx)
	switch {
	case p == nil && s.authn != nil:
		return scope{}, status.Error(codes.PermissionDenied, "no principal")
	case p == nil || p.Kind != authz.KindTenant:
		return scope{}, nil
	case p.Tenant == "":
		return scope{}, status.Error(codes.PermissionDenied, "tenant user without a tenant")
	}
	sc := scope{tenantID: p.Tenant}
	if t, err := s.scopes.GetTenant(p.Tenant); err == nil {
		sc.tenant = t
	}
	sc.known = s.knownRegions(sc)
	return sc, nil
}

// mayActFor refuses a confined caller acting for another tenant.
func (sc scope) mayActFor(tenant string) error {
	if sc.confined() && tenant != sc.tenantID {
		return status.Errorf(codes.PermissionDenied, "a user of tenant %s may act for tenant %s only", sc.tenantID, sc.tenantID)
	}
	return nil
}

// maySee reports whether the caller may see placement p.
func (sc scope) maySee(p *router.Placement) bool {
	return !sc.confined() || p.Tenant == sc.tenantID
}

// tenantFilter is the tenant filter of a List or Watch by the caller:
// a confined caller's own tenant whatever it asked for, and asking for
// another is refused.
func (sc scope) tenantFilter(asked string) (string, error) {
	if !sc.confined() {
		return asked, nil
	}
	if asked != "" && asked != sc.tenantID {
		return "", status.Errorf(codes.PermissionDenied, "a user of tenant %s may see tenant %s only", sc.tenantID, sc.tenantID)
	}
	return sc.tenantID, nil
}

// knownProviders returns the providers of the regions the scope may know
// of; nil when the scope is not confined. A provider with no such region
// is not named to the caller.
func (s *Server) knownProviders(sc scope) map[string]bool {
	if !sc.confined() {
		return nil
	}
	regions, _ := s.scopes.ListRegions()
	known := make(map[string]bool)
	for _, st := range regions {
		if st.Region != nil && sc.mayKnow(st.Region) {
			known[st.Region.Provider] = true
		}
	}
	return known
}

// knownRegions returns the keys of the regions the scope may know of,
// from the cache now; nil when the scope is not confined. A region not
// in the cache is not known: what cannot be judged is not named.
func (s *Server) knownRegions(sc scope) map[string]bool {
	if !sc.confined() {
		return nil
	}
	regions, _ := s.scopes.ListRegions()
	known := make(map[string]bool, len(regions))
	for _, st := range regions {
		if st.Region != nil && sc.mayKnow(st.Region) {
			known[st.Region.Key()] = true
		}
	}
	return known
}

// revision is an etcd revision as the caller may see it: 0 for a
// confined caller, whom a revision would tell how many writes every
// other tenant made (it gets resume tokens instead; see resume.go).
func (sc scope) revision(rev int64) int64 {
	if sc.confined() {
		return 0
	}
	return rev
}

// etag is a record's etag as the caller may see it: none for a confined
// caller (an etag is a revision; confined callers write no catalogue
// record anyway).
func (sc scope) etag(rev int64) string {
	return state.Etag(sc.revision(rev))
}

// placement converts p as the caller may see it: without etcd
// revisions for a confined caller, and without what the reconciler
// found of a region the caller may no longer know of (its placement
// still names the region it was placed in, but not whom the region
// serves now, or what it is now accredited for).
func (sc scope) placement(p *router.Placement) *pb.Placement {
	out := convert.PlacementToProto(p)
	if !sc.confined() {
		return out
	}
	out.Revision, out.DecidedAtRevision = 0, 0
	for _, is := range out.Issues {
		if !sc.known[is.GetRegion()] {
			is.Reasons = sc.unavailable()
		}
	}
	for _, rt := range out.Retiring {
		if !sc.known[rt.GetRegion()] {
			rt.Reasons = sc.unavailable()
		}
	}
	return out
}

// unavailableMessage is what a confined caller is told of a region it
// may no longer know of, in place of the reasons that say why.
func unavailableMessage(tenant string) string {
	return "the region is no longer available to tenant " + tenant
}

func (sc scope) unavailable() []*pb.Reason {
	return []*pb.Reason{{Code: string(router.ReasonPolicy), Message: unavailableMessage(sc.tenantID)}}
}

// redact keeps the verdicts of regions in known (all when known is nil)
// and counts the others.
func redact(vs []router.Explained, known map[string]bool) (kept []router.Explained, redacted int) {
	if known == nil {
		return vs, 0
	}
	kept = make([]router.Explained, 0, len(vs))
	for _, v := range vs {
		if known[v.Key] {
			kept = append(kept, v)
		} else {
			redacted++
		}
	}
	return kept, redacted
}

// notFound is the error of an unknown object, worded as the store words
// it: an object a caller may not see is reported exactly as one that
// does not exist.
func notFound(kind, id string) error {
	return fmt.Errorf("%s %q: %w", kind, id, router.ErrNotFound)
}
