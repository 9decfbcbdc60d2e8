package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/server"
)

// The callers of the method × role walk: a path of a SPIFFE ID of the
// test trust domain, or "" for the development principal.
const (
	asSubmitter = "/tenant/ke-moh/user/wanjiru" // granted tenant-submitter by ke-moh
	asTenantAud = "/tenant/ke-moh/user/otieno"  // granted tenant-auditor by ke-moh
	asNobody    = "/tenant/ke-moh/user/mallory" // a ke-moh identity ke-moh grants nothing
	asOtherSub  = "/tenant/us-ic/user/jane"     // granted tenant-submitter by us-ic
	asAdmin     = "/admin/grace"
	asSecAud    = "/auditor/ida"
	asAgent     = "/agent/ke-gov/konza-1"
	asDev       = ""
)

var callers = []string{asSubmitter, asTenantAud, asNobody, asOtherSub, asAdmin, asSecAud, asAgent, asDev}

// grantMembers gives ke-moh and us-ic the members the callers above
// need, as a catalogue administrator does.
func grantMembers(t *testing.T, e *env) {
	t.Helper()
	grant := map[string][]*pb.TenantMember{
		"ke-moh": {{Name: "wanjiru", Roles: []string{"tenant-submitter"}}, {Name: "otieno", Roles: []string{"tenant-auditor"}}},
		"us-ic":  {{Name: "jane", Roles: []string{"tenant-submitter"}}},
	}
	for id, members := range grant {
		got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		tn := got.GetTenant()
		tn.Members = members
		if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
			t.Fatal(err)
		}
	}
}

// callAs returns a context for a call by caller.
func callAs(t *testing.T, caller string) context.Context {
	t.Helper()
	if caller == asDev {
		return ctx(t)
	}
	return as(t, caller)
}

// streamCode is the outcome of a server stream: the code its first
// receive ends with, OK when a message arrives, or OK when nothing
// arrives for a moment (the call was admitted and is waiting).
func streamCode(err error) codes.Code {
	if err == nil || status.Code(err) == codes.DeadlineExceeded {
		return codes.OK
	}
	return status.Code(err)
}

// TestMethodRoles walks every method of every service the daemon serves
// with every kind of caller, over real gRPC, and checks who is let in:
// OK for the roles the policy names, PERMISSION_DENIED for the others.
// The expectations are written out here, not read from the table.
func TestMethodRoles(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)

	tenantUsers := []string{asSubmitter, asTenantAud, asNobody, asOtherSub}
	readers := []string{asSubmitter, asTenantAud, asOtherSub, asAdmin, asSecAud, asDev}
	catalogReaders := []string{asSubmitter, asOtherSub, asAdmin, asSecAud, asDev}
	admins := []string{asAdmin, asDev}
	submitters := []string{asSubmitter, asOtherSub, asDev}
	roleHolders := []string{asSubmitter, asTenantAud, asOtherSub, asAdmin, asSecAud, asAgent, asDev}
	everyone := callers
	_ = tenantUsers

	seq := 0
	next := func(prefix string) string { seq++; return fmt.Sprintf("%s-%d", prefix, seq) }
	// place makes a ke-moh placement as the development principal.
	place := func(t *testing.T) string {
		id := next("p")
		if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: id, Workload: kenya()}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// ownWorkload is a workload of the caller's own tenant.
	ownWorkload := func(caller string) *pb.Workload {
		w := kenya()
		if caller == asOtherSub {
			w = tsSITK()
			w.Resources = &pb.Resources{MilliCpu: 100, MemoryMib: 128}
		}
		return w
	}
	ownPlacement := func(t *testing.T, caller string) string {
		if caller != asOtherSub {
			return place(t)
		}
		id := next("ic")
		if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: id, Workload: ownWorkload(caller)}); err != nil {
			t.Fatal(err)
		}
		return id
	}

	admins2 := []string{asAdmin, asDev}
	changeReaders := []string{asAdmin, asSecAud, asDev}
	auditReaders := []string{asTenantAud, asSecAud, asDev}
	methods := []struct {
		method  string
		allowed []string
		call    func(t *testing.T, c context.Context, caller string) error
		// admitted: an allowed caller passes when the call is let in,
		// whatever the handler then answers (a change id that does not
		// exist is NOT_FOUND).
		admitted bool
	}{
		{method: pb.ChangeService_ProposeRegionChange_FullMethodName, allowed: admins2, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			r := e.region(t, "aws/eu-west-2")
			r.Id = next("proposed")
			_, err := pb.NewChangeServiceClient(e.conn).ProposeRegionChange(c, &pb.ProposeRegionChangeRequest{Region: r, Reason: "walk"})
			return err
		}},
		{method: pb.ChangeService_ApproveChange_FullMethodName, allowed: admins2, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).ApproveChange(c, &pb.ApproveChangeRequest{Id: "no-such-change"})
			return err
		}},
		{method: pb.ChangeService_RejectChange_FullMethodName, allowed: admins2, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).RejectChange(c, &pb.RejectChangeRequest{Id: "no-such-change", Note: "walk"})
			return err
		}},
		{method: pb.ChangeService_GetChange_FullMethodName, allowed: changeReaders, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).GetChange(c, &pb.GetChangeRequest{Id: "no-such-change"})
			return err
		}},
		{method: pb.ChangeService_ListChanges_FullMethodName, allowed: changeReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).ListChanges(c, &pb.ListChangesRequest{})
			return err
		}},
		{method: pb.ChangeService_ProposeEquivalenceChange_FullMethodName, allowed: admins2, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).ProposeEquivalenceChange(c, &pb.ProposeEquivalenceChangeRequest{
				Entry: &pb.EquivalenceEntry{From: "KEN", To: "GBR", Agreement: next("walk"), Levels: []*pb.EquivalenceMapping{{From: "SECRET", None: true}}}, Reason: "walk"})
			return err
		}},
		{method: pb.ChangeService_ProposeEdgeChange_FullMethodName, allowed: admins2, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).ProposeEdgeChange(c, &pb.ProposeEdgeChangeRequest{Edge: &pb.Edge{Id: "aoai-gov-to-commercial"}, Withdraw: true, Reason: "walk"})
			return err
		}},
		{method: pb.ChangeService_ProposeServiceChange_FullMethodName, allowed: admins2, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewChangeServiceClient(e.conn).ProposeServiceChange(c, &pb.ProposeServiceChangeRequest{Service: &pb.CatalogueService{Name: "azure-openai-gov"}, Withdraw: true, Reason: "walk"})
			return err
		}},
		{method: pb.EdgeService_ListEdges_FullMethodName, allowed: changeReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewEdgeServiceClient(e.conn).ListEdges(c, &pb.ListEdgesRequest{})
			return err
		}},
		{method: pb.EdgeService_GetEdge_FullMethodName, allowed: changeReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewEdgeServiceClient(e.conn).GetEdge(c, &pb.GetEdgeRequest{Id: "aoai-gov-to-commercial"})
			return err
		}},
		{method: pb.EdgeService_ListServices_FullMethodName, allowed: changeReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewEdgeServiceClient(e.conn).ListServices(c, &pb.ListServicesRequest{})
			return err
		}},
		{method: pb.EdgeService_GetService_FullMethodName, allowed: changeReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewEdgeServiceClient(e.conn).GetService(c, &pb.GetServiceRequest{Name: "azure-openai-gov"})
			return err
		}},
		{method: pb.EquivalenceService_ListEquivalences_FullMethodName, allowed: roleHolders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewEquivalenceServiceClient(e.conn).ListEquivalences(c, &pb.ListEquivalencesRequest{})
			return err
		}},
		{method: pb.EquivalenceService_GetEquivalence_FullMethodName, allowed: roleHolders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewEquivalenceServiceClient(e.conn).GetEquivalence(c, &pb.GetEquivalenceRequest{From: "GBR", To: "US"})
			return err
		}},
		{method: pb.AuditService_ListAudit_FullMethodName, allowed: auditReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewAuditServiceClient(e.conn).ListAudit(c, &pb.ListAuditRequest{})
			return err
		}},
		{method: pb.AuditService_VerifyAudit_FullMethodName, allowed: []string{asSecAud, asDev}, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := pb.NewAuditServiceClient(e.conn).VerifyAudit(c, &pb.VerifyAuditRequest{})
			return err
		}},
		{method: pb.PlacementService_Place_FullMethodName, allowed: submitters, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.place.Place(c, &pb.PlaceRequest{RequestId: next("place"), Workload: ownWorkload(caller)})
			return err
		}},
		{method: pb.PlacementService_Plan_FullMethodName, allowed: submitters, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.place.Plan(c, &pb.PlanRequest{Workload: ownWorkload(caller)})
			return err
		}},
		{method: pb.PlacementService_Get_FullMethodName, allowed: readers, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.place.Get(c, &pb.GetRequest{Id: ownPlacement(t, caller)})
			return err
		}},
		{method: pb.PlacementService_List_FullMethodName, allowed: readers, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.place.List(c, &pb.ListRequest{})
			return err
		}},
		{method: pb.PlacementService_Release_FullMethodName, allowed: submitters, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.place.Release(c, &pb.ReleaseRequest{Id: ownPlacement(t, caller)})
			return err
		}},
		{method: pb.PlacementService_Watch_FullMethodName, allowed: readers, call: func(t *testing.T, c context.Context, caller string) error {
			c, cancel := context.WithTimeout(c, 300*time.Millisecond)
			defer cancel()
			st, err := e.place.Watch(c, &pb.WatchRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return status.Error(streamCode(err), fmt.Sprint(err))
		}},
		{method: pb.CatalogService_PutRegion_FullMethodName, allowed: admins, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.PutRegion(c, &pb.PutRegionRequest{Region: e.region(t, "aws/eu-west-2")})
			return err
		}},
		{method: pb.CatalogService_GetRegion_FullMethodName, allowed: catalogReaders, call: func(t *testing.T, c context.Context, caller string) error {
			key := "ke-gov/konza-1"
			if caller == asOtherSub {
				key = "aws/us-iso-east-1"
			}
			_, err := e.catalog.GetRegion(c, &pb.GetRegionRequest{Key: key})
			return err
		}},
		{method: pb.CatalogService_ListRegions_FullMethodName, allowed: catalogReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.ListRegions(c, &pb.ListRegionsRequest{})
			return err
		}},
		{method: pb.CatalogService_DeleteRegion_FullMethodName, allowed: admins, admitted: true, call: func(t *testing.T, c context.Context, caller string) error {
			// Adding a region takes two administrators; deleting one
			// that does not exist shows the call was let in.
			_, err := e.catalog.DeleteRegion(c, &pb.DeleteRegionRequest{Key: "aws/" + next("none")})
			return err
		}},
		{method: pb.CatalogService_PutProvider_FullMethodName, allowed: admins, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.PutProvider(c, &pb.PutProviderRequest{Provider: &pb.Provider{Id: next("prov"), Name: "P", Jurisdiction: "USA"}})
			return err
		}},
		{method: pb.CatalogService_GetProvider_FullMethodName, allowed: catalogReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.GetProvider(c, &pb.GetProviderRequest{Id: "aws"})
			return err
		}},
		{method: pb.CatalogService_ListProviders_FullMethodName, allowed: catalogReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.ListProviders(c, &pb.ListProvidersRequest{})
			return err
		}},
		{method: pb.CatalogService_DeleteProvider_FullMethodName, allowed: admins, call: func(t *testing.T, c context.Context, caller string) error {
			id := next("prov")
			if _, err := e.catalog.PutProvider(ctx(t), &pb.PutProviderRequest{Provider: &pb.Provider{Id: id, Name: "P", Jurisdiction: "USA"}}); err != nil {
				t.Fatal(err)
			}
			_, err := e.catalog.DeleteProvider(c, &pb.DeleteProviderRequest{Id: id})
			return err
		}},
		{method: pb.CatalogService_PutTenant_FullMethodName, allowed: admins, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.PutTenant(c, &pb.PutTenantRequest{Tenant: &pb.Tenant{Id: next("t"), Name: "T", Nation: "KEN", Sector: "civil", Ceiling: "UNCLASSIFIED"}})
			return err
		}},
		{method: pb.CatalogService_GetTenant_FullMethodName, allowed: catalogReaders, call: func(t *testing.T, c context.Context, caller string) error {
			id := "ke-moh"
			if caller == asOtherSub {
				id = "us-ic"
			}
			_, err := e.catalog.GetTenant(c, &pb.GetTenantRequest{Id: id})
			return err
		}},
		{method: pb.CatalogService_ListTenants_FullMethodName, allowed: catalogReaders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.ListTenants(c, &pb.ListTenantsRequest{})
			return err
		}},
		{method: pb.CatalogService_DeleteTenant_FullMethodName, allowed: admins, call: func(t *testing.T, c context.Context, caller string) error {
			id := next("t")
			if _, err := e.catalog.PutTenant(ctx(t), &pb.PutTenantRequest{Tenant: &pb.Tenant{Id: id, Name: "T", Nation: "KEN", Sector: "civil", Ceiling: "UNCLASSIFIED"}}); err != nil {
				t.Fatal(err)
			}
			_, err := e.catalog.DeleteTenant(c, &pb.DeleteTenantRequest{Id: id})
			return err
		}},
		{method: pb.CatalogService_CheckLabel_FullMethodName, allowed: roleHolders, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.catalog.CheckLabel(c, &pb.CheckLabelRequest{Banner: "SECRET//NOFORN"})
			return err
		}},
		{method: pb.AgentService_Connect_FullMethodName, allowed: []string{asAgent, asDev}, call: func(t *testing.T, c context.Context, caller string) error {
			region := "ke-gov/konza-1"
			if caller == asDev {
				region = "aws/us-east-1"
			}
			c, cancel := context.WithCancel(c)
			defer cancel()
			st, err := e.agents.Connect(c)
			if err != nil {
				return err
			}
			if err := st.Send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Hello{Hello: &pb.AgentHello{Region: region, AgentId: "walk"}}}); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			_, err = st.Recv()
			st.CloseSend()
			return err
		}},
		{method: healthpb.Health_Check_FullMethodName, allowed: everyone, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.health.Check(c, &healthpb.HealthCheckRequest{})
			return err
		}},
		{method: healthpb.Health_List_FullMethodName, allowed: everyone, call: func(t *testing.T, c context.Context, caller string) error {
			_, err := e.health.List(c, &healthpb.HealthListRequest{})
			return err
		}},
		{method: healthpb.Health_Watch_FullMethodName, allowed: everyone, call: func(t *testing.T, c context.Context, caller string) error {
			st, err := e.health.Watch(c, &healthpb.HealthCheckRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		}},
		{method: reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName, allowed: roleHolders, call: func(t *testing.T, c context.Context, caller string) error {
			st, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(c)
			if err != nil {
				return err
			}
			st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = st.Recv()
			return err
		}},
		{method: reflectionalphapb.ServerReflection_ServerReflectionInfo_FullMethodName, allowed: roleHolders, call: func(t *testing.T, c context.Context, caller string) error {
			st, err := reflectionalphapb.NewServerReflectionClient(e.conn).ServerReflectionInfo(c)
			if err != nil {
				return err
			}
			st.Send(&reflectionalphapb.ServerReflectionRequest{MessageRequest: &reflectionalphapb.ServerReflectionRequest_ListServices{}})
			_, err = st.Recv()
			return err
		}},
	}

	// Every method the server serves is walked, and has a policy.
	var served []string
	for svc, info := range e.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			served = append(served, "/"+svc+"/"+m.Name)
		}
	}
	sort.Strings(served)
	var walked []string
	for _, m := range methods {
		walked = append(walked, m.method)
	}
	sort.Strings(walked)
	if !slices.Equal(served, walked) {
		t.Fatalf("methods served:\n%q\nwalked:\n%q", served, walked)
	}

	for _, m := range methods {
		if _, _, ok := server.Policy(m.method); !ok {
			t.Errorf("%s: no policy", m.method)
		}
		for _, caller := range callers {
			name := strings.TrimPrefix(m.method, "/") + "/as" + strings.ReplaceAll(caller, "/", "_")
			t.Run(name, func(t *testing.T) {
				err := m.call(t, callAs(t, caller), caller)
				got := status.Code(err)
				if slices.Contains(m.allowed, caller) {
					if got != codes.OK && !(m.admitted && got != codes.PermissionDenied && got != codes.Unauthenticated) {
						t.Errorf("got %v (%v); want OK", got, err)
					}
				} else if got != codes.PermissionDenied {
					t.Errorf("got %v (%v); want PermissionDenied", got, err)
				}
			})
		}
	}
}

// TestNoPolicyForMethod checks deny by default: a method the policy
// table does not name is refused, whoever calls.
func TestNoPolicyForMethod(t *testing.T) {
	e := newEnv(t)
	g := grpc.NewServer(e.srv.AuthOptions()...)
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: "classroute.test.Unlisted",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Do", Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(healthpb.HealthCheckRequest)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return &healthpb.HealthCheckResponse{}, nil }
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/classroute.test.Unlisted/Do"}, h)
		}}},
	}, struct{}{})
	lis := listen(t)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, caller := range []string{asDev, asAdmin, asSubmitter} {
		err := conn.Invoke(callAs(t, caller), "/classroute.test.Unlisted/Do", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
		st := wantCode(t, err, codes.PermissionDenied)
		wantContains(t, "message", st.Message(), "no policy for method /classroute.test.Unlisted/Do")
	}
}

// hiddenFrom returns the catalogue regions a user of a tenant of nation
// and sector, with a ceiling at level, may not know of: accredited above
// the level, or serving neither everyone nor the tenant. Written out
// independently of the server's rule.
func hiddenFrom(e *env, level label.Level, nation, sector string) []string {
	var out []string
	for _, r := range e.cat.Regions {
		serves := slices.Contains(r.Customers, "*") || slices.Contains(r.Customers, nation) || slices.Contains(r.Customers, nation+"/"+sector)
		if r.Accreditation.MaxLevel > level || !serves {
			out = append(out, r.Key())
		}
	}
	return out
}

// wantNoneNamed fails if the text of m names any of keys.
func wantNoneNamed(t *testing.T, what string, m proto.Message, keys []string) {
	t.Helper()
	text := prototext.Format(m)
	for _, k := range keys {
		if strings.Contains(text, k) {
			t.Errorf("%s names %s, which the caller may not know of", what, k)
		}
	}
}

// rawAuditID is the form of an audit entry's stored id: its time, the
// writing daemon's node and its count of entries.
var rawAuditID = regexp.MustCompile(`^[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{8}$`)

// TestRedaction checks that a Kenyan tenant's users never learn of a
// region above their ceiling or not serving Kenya: plans, refusals and
// the catalogue neither name nor count such regions. Others see all.
func TestRedaction(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	hidden := hiddenFrom(e, label.CUI, "KEN", "civil")
	for _, ts := range []string{"aws/us-iso-east-1", "azure/usnateast", "google/gdc-airgapped-us", "aws/ap-tsc-au-1"} {
		if !slices.Contains(hidden, ts) {
			t.Fatalf("%s is not hidden from ke-moh: the test cannot tell", ts)
		}
	}
	total := len(e.cat.Regions)

	t.Run("plan", func(t *testing.T) {
		resp, err := e.place.Plan(as(t, asSubmitter), &pb.PlanRequest{Workload: kenya()})
		if err != nil {
			t.Fatal(err)
		}
		wantNoneNamed(t, "plan", resp, hidden)
		if got := resp.GetRedactedRegions(); got != 0 { //nolint:staticcheck // deprecated: pinned at 0
			t.Errorf("redacted_regions: got %d; want 0 (hidden regions are counted nowhere)", got)
		}
		if resp.GetRevision() != 0 {
			t.Errorf("plan revision: got %d; want 0 for a tenant's user", resp.GetRevision())
		}
		if got, want := len(resp.GetRegions()), total-len(hidden); got != want {
			t.Errorf("verdicts: got %d; want %d", got, want)
		}
		if len(resp.GetChosen()) != 1 {
			t.Errorf("chosen: got %q; want one region", resp.GetChosen())
		}
		// The development principal sees every region.
		all, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenya()})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.GetRegions()) != total || all.GetRedactedRegions() != 0 {
			t.Errorf("dev plan: got %d verdicts, %d redacted; want %d, 0", len(all.GetRegions()), all.GetRedactedRegions(), total)
		}
	})

	t.Run("plan refusal", func(t *testing.T) {
		resp, err := e.place.Plan(as(t, asSubmitter), &pb.PlanRequest{Workload: kenyaGPU()})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetRefusal() == "" {
			t.Fatal("kenya-gpu planned; want a refusal")
		}
		wantNoneNamed(t, "plan", resp, hidden)
	})

	t.Run("place refusal", func(t *testing.T) {
		_, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "gpu-1", Workload: kenyaGPU()})
		st := wantCode(t, err, codes.FailedPrecondition)
		for _, d := range st.Proto().GetDetails() {
			m, err := d.UnmarshalNew()
			if err != nil {
				t.Fatal(err)
			}
			wantNoneNamed(t, "refusal detail", m, hidden)
		}
		wantNoneNamed(t, "refusal status", st.Proto(), hidden)
		for _, k := range hidden {
			if strings.Contains(st.Message(), k) {
				t.Errorf("message names %s", k)
			}
		}
		ref := detail[*pb.Refusal](t, st)
		if got := ref.GetRedactedRegions(); got != 0 { //nolint:staticcheck // deprecated: pinned at 0
			t.Errorf("refusal redacted_regions: got %d; want 0", got)
		}
		if ref.GetRevision() != 0 {
			t.Errorf("refusal revision: got %d; want 0 for a tenant's user", ref.GetRevision())
		}
		if want := fmt.Sprintf("among %d regions", total-len(hidden)); !strings.Contains(ref.GetSummary(), want) {
			t.Errorf("refusal summary %q; want it to count the %d regions the caller may know of", ref.GetSummary(), total-len(hidden))
		}
		if got, want := len(ref.GetRegions()), total-len(hidden); got != want {
			t.Errorf("refusal verdicts: got %d; want %d", got, want)
		}
		pf := detail[*errdetails.PreconditionFailure](t, st)
		for _, v := range pf.GetViolations() {
			if slices.Contains(hidden, v.GetSubject()) {
				t.Errorf("PreconditionFailure names %s", v.GetSubject())
			}
		}
		// The development principal's refusal names every region.
		_, err = e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "gpu-2", Workload: kenyaGPU()})
		if ref := detail[*pb.Refusal](t, wantCode(t, err, codes.FailedPrecondition)); len(ref.GetRegions()) != total || ref.GetRedactedRegions() != 0 {
			t.Errorf("dev refusal: got %d verdicts, %d redacted; want %d, 0", len(ref.GetRegions()), ref.GetRedactedRegions(), total)
		}
	})

	t.Run("audit", func(t *testing.T) {
		// A us-ic placement, so there is another tenant's entry to hide.
		ic := tsSITK()
		ic.Resources = &pb.Resources{MilliCpu: 100, MemoryMib: 128}
		if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "ic-audit", Workload: ic}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "gpu-audit", Workload: kenyaGPU()}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("kenya-gpu: got %v; want a refusal", err)
		}
		audit := pb.NewAuditServiceClient(e.conn)
		resp, err := audit.ListAudit(as(t, asTenantAud), &pb.ListAuditRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		wantNoneNamed(t, "ListAudit", resp, hidden)
		refusals := 0
		for _, en := range resp.GetEntries() {
			if en.GetTenant() != "ke-moh" {
				t.Errorf("ListAudit as a ke-moh auditor: entry %s of tenant %q", en.GetId(), en.GetTenant())
			}
			if en.GetOp() == "refuse" {
				refusals++
				if text := strings.Join(en.GetReasons(), "\n"); strings.Contains(text, "redacted") {
					t.Errorf("refusal entry %q: want hidden regions left out uncounted", text)
				}
			}
			// Ids count the daemon's entries of every tenant, and
			// revisions every write: sealed and left out.
			if rawAuditID.MatchString(en.GetId()) || en.GetRevision() != 0 || en.GetWritten() != 0 {
				t.Errorf("entry as a tenant auditor: id %q, revision %d, written %d; want a sealed id and no revisions", en.GetId(), en.GetRevision(), en.GetWritten())
			}
		}
		if refusals == 0 {
			t.Errorf("ListAudit as a ke-moh auditor: no refusal entry among %d", len(resp.GetEntries()))
		}
		_, err = audit.ListAudit(as(t, asTenantAud), &pb.ListAuditRequest{Tenant: "us-ic"})
		wantCode(t, err, codes.PermissionDenied)
		// A security auditor sees every tenant's entries, unredacted.
		all, err := audit.ListAudit(as(t, asSecAud), &pb.ListAuditRequest{PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if text := prototext.Format(all); !strings.Contains(text, "us-ic") || !strings.Contains(text, "aws/us-iso-east-1") {
			t.Errorf("ListAudit as a security auditor: want us-ic's entries and every region named")
		}
	})

	t.Run("catalogue", func(t *testing.T) {
		resp, err := e.catalog.ListRegions(as(t, asSubmitter), &pb.ListRegionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wantNoneNamed(t, "ListRegions", resp, hidden)
		if got := int(resp.GetRedactedRegions()); got != 0 || len(resp.GetRegions()) != total-len(hidden) || resp.GetRevision() != 0 { //nolint:staticcheck
			t.Errorf("ListRegions: got %d regions, %d redacted, revision %d; want %d, 0, 0", len(resp.GetRegions()), got, resp.GetRevision(), total-len(hidden))
		}
		// A hidden region is not found, worded exactly as one that does not exist.
		_, err = e.catalog.GetRegion(as(t, asSubmitter), &pb.GetRegionRequest{Key: "aws/us-iso-east-1"})
		got := wantCode(t, err, codes.NotFound).Message()
		_, err = e.catalog.GetRegion(as(t, asSubmitter), &pb.GetRegionRequest{Key: "aws/us-iso-nowhere-1"})
		if want := wantCode(t, err, codes.NotFound).Message(); got != strings.ReplaceAll(want, "us-iso-nowhere-1", "us-iso-east-1") {
			t.Errorf("GetRegion of a hidden region: got %q; want it worded as %q", got, want)
		}
		if _, err := e.catalog.GetRegion(as(t, asSubmitter), &pb.GetRegionRequest{Key: "ke-gov/konza-1"}); err != nil {
			t.Errorf("GetRegion of Kenya's own region: %v", err)
		}
		provs, err := e.catalog.ListProviders(as(t, asSubmitter), &pb.ListProvidersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range provs.GetProviders() {
			if p.GetId() == "oracle" {
				t.Errorf("ListProviders names oracle, none of whose regions serves Kenya")
			}
		}
		tenants, err := e.catalog.ListTenants(as(t, asSubmitter), &pb.ListTenantsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(tenants.GetTenants()) != 1 || tenants.GetTenants()[0].GetId() != "ke-moh" {
			t.Errorf("ListTenants: got %v; want ke-moh only", tenants.GetTenants())
		}
		_, err = e.catalog.GetTenant(as(t, asSubmitter), &pb.GetTenantRequest{Id: "us-ic"})
		wantCode(t, err, codes.NotFound)
		// An administrator sees every region.
		all, err := e.catalog.ListRegions(as(t, asAdmin), &pb.ListRegionsRequest{})
		if err != nil || len(all.GetRegions()) != total || all.GetRedactedRegions() != 0 {
			t.Errorf("admin ListRegions: got %d regions, %d redacted, %v; want %d", len(all.GetRegions()), all.GetRedactedRegions(), err, total)
		}
	})
}

// TestCeiling checks that a tenant's users may neither place nor plan a
// workload its ceiling does not dominate, and the refusal names the
// ceiling; the development principal is held to the tenant's ceiling too.
func TestCeiling(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	placements, audits := len(e.placements(t)), e.countUnder(t, "audit/")
	for _, caller := range []string{asSubmitter, asDev} {
		w := kenya()
		w.Label = "SECRET//REL TO USA, KEN"
		_, err := e.place.Plan(callAs(t, caller), &pb.PlanRequest{Workload: w})
		wantContains(t, "Plan", wantCode(t, err, codes.PermissionDenied).Message(), "ke-moh's ceiling CUI")
		_, err = e.place.Place(callAs(t, caller), &pb.PlaceRequest{RequestId: "above", Workload: w})
		wantContains(t, "Place", wantCode(t, err, codes.PermissionDenied).Message(), "ke-moh's ceiling CUI")
	}
	// Nothing placed; each refused Place is on the record (a Plan
	// decides nothing and is not).
	if got := len(e.placements(t)); got != placements {
		t.Errorf("List: got %d placements; want %d", got, placements)
	}
	if got := e.countUnder(t, "audit/"); got != audits+2 {
		t.Errorf("audit entries: got %d; want %d (one per refused Place)", got, audits+2)
	}
}

// TestTenantIsolation checks that a tenant's users see and touch only
// their tenant's placements: another tenant's is not found, lists and
// watches are confined, and they act for their own tenant only.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	// A ke-moh placement, made by its submitter.
	if _, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "ke-1", Workload: kenya()}); err != nil {
		t.Fatal(err)
	}
	ic := tsSITK()
	ic.Resources = &pb.Resources{MilliCpu: 100, MemoryMib: 128}
	if _, err := e.place.Place(as(t, asOtherSub), &pb.PlaceRequest{RequestId: "ic-1", Workload: ic}); err != nil {
		t.Fatal(err)
	}

	// Get: another tenant's placement is not found, worded as a missing one.
	_, err := e.place.Get(as(t, asOtherSub), &pb.GetRequest{Id: "ke-1"})
	got := wantCode(t, err, codes.NotFound).Message()
	_, err = e.place.Get(as(t, asOtherSub), &pb.GetRequest{Id: "ke-x"})
	if want := wantCode(t, err, codes.NotFound).Message(); got != strings.ReplaceAll(want, "ke-x", "ke-1") {
		t.Errorf("Get of another tenant's placement: got %q; want it worded as %q", got, want)
	}
	for _, caller := range []string{asSubmitter, asTenantAud} {
		if _, err := e.place.Get(as(t, caller), &pb.GetRequest{Id: "ke-1"}); err != nil {
			t.Errorf("Get own placement as %s: %v", caller, err)
		}
		_, err := e.place.Get(as(t, caller), &pb.GetRequest{Id: "ic-1"})
		wantCode(t, err, codes.NotFound)
	}

	// List: confined to the caller's tenant; asking for another is refused.
	for caller, want := range map[string]string{asSubmitter: "ke-1", asTenantAud: "ke-1", asOtherSub: "ic-1"} {
		resp, err := e.place.List(as(t, caller), &pb.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range resp.GetPlacements() {
			ids = append(ids, p.GetId())
		}
		if !slices.Equal(ids, []string{want}) {
			t.Errorf("List as %s: got %q; want [%s]", caller, ids, want)
		}
	}
	_, err = e.place.List(as(t, asOtherSub), &pb.ListRequest{Tenant: "ke-moh"})
	wantCode(t, err, codes.PermissionDenied)
	if resp, err := e.place.List(ctx(t), &pb.ListRequest{}); err != nil || len(resp.GetPlacements()) != 2 {
		t.Errorf("List as dev: got %d, %v; want both placements", len(resp.GetPlacements()), err)
	}

	// Watch: from a List's resume token (a tenant's user sees no
	// revision), a ke-moh user sees only ke-moh's placements.
	wctx, cancel := context.WithTimeout(as(t, asTenantAud), 2*time.Second)
	defer cancel()
	if st, err := e.place.Watch(wctx, &pb.WatchRequest{AfterRevision: 1}); err == nil {
		_, err = st.Recv()
		wantField(t, err, "after_revision")
	} else {
		wantField(t, err, "after_revision")
	}
	list, err := e.place.List(as(t, asTenantAud), &pb.ListRequest{})
	if err != nil || list.GetResumeToken() == "" || list.GetRevision() != 0 {
		t.Fatalf("List as a tenant auditor: token %q, revision %d, %v; want a token and no revision", list.GetResumeToken(), list.GetRevision(), err)
	}
	st, err := e.place.Watch(wctx, &pb.WatchRequest{ResumeToken: list.GetResumeToken()})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	placed := false
	for !seen["ke-2"] {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("Watch: %v (seen %v)", err, seen)
		}
		if resp.GetRevision() != 0 || resp.GetResumeToken() == "" {
			t.Errorf("Watch response as a tenant auditor: revision %d, token %q; want no revision and a token", resp.GetRevision(), resp.GetResumeToken())
		}
		for _, ev := range resp.GetEvents() {
			seen[ev.GetPlacement().GetId()] = true
			if ev.GetPlacement().GetTenant() != "ke-moh" {
				t.Errorf("Watch as a ke-moh user: event of %s's placement %s", ev.GetPlacement().GetTenant(), ev.GetPlacement().GetId())
			}
			if p := ev.GetPlacement(); p.GetRevision() != 0 || p.GetDecidedAtRevision() != 0 {
				t.Errorf("Watch as a ke-moh user: placement %s with revisions %d, %d", p.GetId(), p.GetRevision(), p.GetDecidedAtRevision())
			}
		}
		if !placed {
			placed = true
			// Another of each tenant, after the watch started.
			if _, err := e.place.Place(as(t, asOtherSub), &pb.PlaceRequest{RequestId: "ic-2", Workload: ic}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "ke-2", Workload: kenya()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st2, err := e.place.Watch(as(t, asTenantAud), &pb.WatchRequest{Tenant: "us-ic"})
	if err == nil {
		_, err = st2.Recv()
	}
	wantCode(t, err, codes.PermissionDenied)

	// Release: another tenant's placement is not found, and stays placed.
	_, err = e.place.Release(as(t, asOtherSub), &pb.ReleaseRequest{Id: "ke-1"})
	wantCode(t, err, codes.NotFound)
	if resp, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "ke-1"}); err != nil || resp.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED {
		t.Errorf("ke-1 after another tenant's release: %v, %v; want placed", resp.GetPlacement().GetState(), err)
	}
	if _, err := e.place.Release(as(t, asSubmitter), &pb.ReleaseRequest{Id: "ke-1"}); err != nil {
		t.Errorf("Release own placement: %v", err)
	}

	// Place and Plan: for the caller's own tenant only.
	// (refused at the edge, before the store, which checks again).
	_, err = e.place.Place(as(t, asOtherSub), &pb.PlaceRequest{RequestId: "ke-3", Workload: kenya()})
	wantContains(t, "Place", wantCode(t, err, codes.PermissionDenied).Message(), "a user of tenant us-ic may act for tenant us-ic only")
	_, err = e.place.Plan(as(t, asOtherSub), &pb.PlanRequest{Workload: kenya()})
	wantContains(t, "Plan", wantCode(t, err, codes.PermissionDenied).Message(), "a user of tenant us-ic may act for tenant us-ic only")
	// An agent connects for its own region only.
	stream, err := e.agents.Connect(as(t, asAgent))
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Hello{Hello: &pb.AgentHello{Region: "aws/us-east-1", AgentId: "a"}}})
	_, err = stream.Recv()
	wantCode(t, err, codes.PermissionDenied)
}

// listen returns a loopback listener, closed at cleanup.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}
