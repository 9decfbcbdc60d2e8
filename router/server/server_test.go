package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		call func(c context.Context) error
		want string // in the message
	}{
		{"Get", func(c context.Context) error {
			_, err := e.place.Get(c, &pb.GetRequest{Id: "no-such-placement"})
			return err
		}, `"no-such-placement"`},
		{"Release", func(c context.Context) error {
			_, err := e.place.Release(c, &pb.ReleaseRequest{Id: "no-such-placement"})
			return err
		}, "no-such-placement"},
		{"GetRegion", func(c context.Context) error {
			_, err := e.catalog.GetRegion(c, &pb.GetRegionRequest{Key: "aws/no-such-region"})
			return err
		}, `"aws/no-such-region"`},
		{"GetRegion of an unknown provider", func(c context.Context) error {
			_, err := e.catalog.GetRegion(c, &pb.GetRegionRequest{Key: "no-such-cloud/us-east-1"})
			return err
		}, `"no-such-cloud/us-east-1"`},
		{"DeleteRegion", func(c context.Context) error {
			_, err := e.catalog.DeleteRegion(c, &pb.DeleteRegionRequest{Key: "aws/no-such-region"})
			return err
		}, `"aws/no-such-region"`},
		{"GetProvider", func(c context.Context) error {
			_, err := e.catalog.GetProvider(c, &pb.GetProviderRequest{Id: "no-such-cloud"})
			return err
		}, `"no-such-cloud"`},
		{"DeleteProvider", func(c context.Context) error {
			_, err := e.catalog.DeleteProvider(c, &pb.DeleteProviderRequest{Id: "no-such-cloud"})
			return err
		}, `"no-such-cloud"`},
		{"GetTenant", func(c context.Context) error {
			_, err := e.catalog.GetTenant(c, &pb.GetTenantRequest{Id: "no-such-tenant"})
			return err
		}, `"no-such-tenant"`},
		{"DeleteTenant", func(c context.Context) error {
			_, err := e.catalog.DeleteTenant(c, &pb.DeleteTenantRequest{Id: "no-such-tenant"})
			return err
		}, `"no-such-tenant"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check := e.unchanged(t)
			st := wantCode(t, tc.call(ctx(t)), codes.NotFound)
			wantContains(t, "message", st.Message(), tc.want)
			check()
		})
	}
}

// regionKeys are the keys of the catalogue's regions, sorted.
func (e *env) regionKeys() []string {
	var keys []string
	for i := range e.cat.Regions {
		keys = append(keys, e.cat.Regions[i].Key())
	}
	slices.Sort(keys)
	return keys
}

// verdictKeys are the regions of verdicts, sorted.
func verdictKeys(vs []*pb.RegionVerdict) []string {
	var keys []string
	for _, v := range vs {
		keys = append(keys, v.GetRegion())
	}
	slices.Sort(keys)
	return keys
}

// hasViolation reports whether pf holds a violation of type typ about subject.
func hasViolation(pf *errdetails.PreconditionFailure, typ, subject string) bool {
	for _, v := range pf.GetViolations() {
		if v.GetType() == typ && v.GetSubject() == subject && v.GetDescription() != "" {
			return true
		}
	}
	return false
}

// A workload no region can take is refused with every region's verdict,
// never placed on a weaker region.
func TestRefusal(t *testing.T) {
	e := newEnv(t)
	audits := e.countUnder(t, "audit/")
	_, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "kenya-1", Workload: kenyaGPU()})
	st := wantCode(t, err, codes.FailedPrecondition)
	info := wantReason(t, st, "NO_ELIGIBLE_REGION")
	if got, want := info.GetMetadata()["regions"], fmt.Sprint(len(e.cat.Regions)); got != want {
		t.Errorf("ErrorInfo metadata regions: got %q; want %q", got, want)
	}

	pf := detail[*errdetails.PreconditionFailure](t, st)
	for _, v := range []struct{ typ, subject string }{
		{"residency", "azure/southafricanorth"},
		{"residency", "aws/us-east-1"},
		{"capability", "ke-gov/konza-1"},
	} {
		if !hasViolation(pf, v.typ, v.subject) {
			t.Errorf("PreconditionFailure: no violation {%s %s} with a description in %v", v.typ, v.subject, pf.GetViolations())
		}
	}

	refusal := detail[*pb.Refusal](t, st)
	if refusal.GetSummary() != st.Message() {
		t.Errorf("Refusal summary: got %q; want the status message %q", refusal.GetSummary(), st.Message())
	}
	if got, want := verdictKeys(refusal.GetRegions()), e.regionKeys(); !slices.Equal(got, want) {
		t.Errorf("Refusal regions: got %q; want every region of the catalogue %q", got, want)
	}
	for _, v := range refusal.GetRegions() {
		if v.GetEligible() || v.GetChosen() || len(v.GetReasons()) == 0 {
			t.Errorf("Refusal verdict of %s: got eligible %v, chosen %v, %d reasons; want ineligible with reasons",
				v.GetRegion(), v.GetEligible(), v.GetChosen(), len(v.GetReasons()))
		}
	}

	// Nothing is placed; the refusal itself is audited.
	if _, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "kenya-1"}); err == nil {
		t.Errorf("Get(kenya-1) after a refusal: got a placement; want NOT_FOUND")
	} else {
		wantCode(t, err, codes.NotFound)
	}
	if got := e.countUnder(t, "placements/"); got != 0 {
		t.Errorf("placements in etcd: got %d; want 0", got)
	}
	if got := len(e.placements(t)); got != 0 {
		t.Errorf("List: got %d placements; want 0", got)
	}
	if got := e.countUnder(t, "audit/"); got != audits+1 {
		t.Errorf("audit records: got %d; want %d (the refusal)", got, audits+1)
	}

	// Plan explains the same refusal in its answer, not as an error.
	plan, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: kenyaGPU()})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if plan.GetRefusal() == "" || len(plan.GetChosen()) != 0 || len(plan.GetRegions()) != len(e.cat.Regions) {
		t.Errorf("Plan: got refusal %q, chosen %q, %d verdicts; want a refusal, none chosen, %d verdicts",
			plan.GetRefusal(), plan.GetChosen(), len(plan.GetRegions()), len(e.cat.Regions))
	}
}

// tsSITK is examples/ts-si-tk-noforn.yaml; five regions of three
// providers may take it.
func tsSITK() *pb.Workload {
	return &pb.Workload{
		Name:                    "sigint-analytics",
		Tenant:                  "us-ic",
		Label:                   "TOP SECRET//SI/TK//NOFORN",
		AllowedStorageCountries: []string{"USA"},
		Resources:               &pb.Resources{MilliCpu: 16000, MemoryMib: 65536},
		Replicas:                2,
		Spread:                  &pb.Spread{MinDistanceKm: 1000},
	}
}

func TestSpreadUnsatisfiable(t *testing.T) {
	e := newEnv(t)
	eligible := []string{"aws/us-iso-east-1", "aws/us-iso-west-1", "azure/usnateast", "azure/usnatwest", "google/gdc-airgapped-us"}

	// Four replicas on four distinct providers, where the five eligible
	// regions span three.
	w := tsSITK()
	w.Replicas = 4
	w.Spread = &pb.Spread{DistinctProviders: true}
	_, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: "sigint-4", Workload: w})
	st := wantCode(t, err, codes.FailedPrecondition)
	wantReason(t, st, "SPREAD_UNSATISFIABLE")
	wantContains(t, "message", st.Message(), "3 providers")
	refusal := detail[*pb.Refusal](t, st)
	var got []string
	for _, v := range refusal.GetRegions() {
		if v.GetChosen() {
			t.Errorf("Refusal: %s chosen; want none", v.GetRegion())
		}
		if v.GetEligible() {
			got = append(got, v.GetRegion())
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, eligible) {
		t.Errorf("Refusal eligible regions: got %q; want %q", got, eligible)
	}
	if n := e.countUnder(t, "placements/"); n != 0 {
		t.Errorf("placements in etcd: got %d; want 0", n)
	}

	// Three distinct providers can be had.
	w.Replicas = 3
	plan, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: w})
	if err != nil || len(plan.GetChosen()) != 3 {
		t.Errorf("Plan(3 replicas, distinct providers): got %q, %v; want 3 regions", plan.GetChosen(), err)
	}
}

func TestPlaceIdempotent(t *testing.T) {
	e := newEnv(t)
	first, err := e.place.Place(ctx(t), placeRequest("aukus-1"))
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	p := first.GetPlacement()
	if p.GetId() != "aukus-1" || p.GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED || len(p.GetAssignments()) != 2 {
		t.Fatalf("Place: got %v; want aukus-1 placed on 2 regions", p)
	}

	check := e.unchanged(t)
	again, err := e.place.Place(ctx(t), placeRequest("aukus-1"))
	if err != nil {
		t.Fatalf("Place again: %v", err)
	}
	if !proto.Equal(again.GetPlacement(), p) {
		t.Errorf("Place again: got %v; want %v", again.GetPlacement(), p)
	}
	// The same workload, its banner written another way.
	req := placeRequest("aukus-1")
	req.Workload.Label = "secret//rel to usa, gbr, aus"
	if same, err := e.place.Place(ctx(t), req); err != nil || !proto.Equal(same.GetPlacement(), p) {
		t.Errorf("Place with an equivalent banner: got %v, %v; want %v", same.GetPlacement(), err, p)
	}
	got, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "aukus-1"})
	if err != nil || !proto.Equal(got.GetPlacement(), p) {
		t.Errorf("Get: got %v, %v; want %v", got.GetPlacement(), err, p)
	}

	reuses := []struct {
		name   string
		mutate func(w *pb.Workload)
	}{
		{"fewer replicas", func(w *pb.Workload) { w.Replicas = 1 }},
		{"another label", func(w *pb.Workload) { w.Label = "SECRET//REL TO USA, AUS" }},
		{"more resources", func(w *pb.Workload) { w.Resources.Gpu = 4 }},
		{"another name", func(w *pb.Workload) { w.Name = "aukus-other" }},
	}
	for _, tc := range reuses {
		t.Run(tc.name, func(t *testing.T) {
			req := placeRequest("aukus-1")
			tc.mutate(req.Workload)
			_, err := e.place.Place(ctx(t), req)
			st := wantCode(t, err, codes.AlreadyExists)
			wantReason(t, st, "REQUEST_ID_REUSED")
		})
	}
	check()

	// Release is idempotent too.
	rel, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "aukus-1"})
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	if rel.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED || rel.GetPlacement().GetReleaseTime() == nil {
		t.Errorf("Release: got %v; want released with a release time", rel.GetPlacement())
	}
	check = e.unchanged(t)
	rel2, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "aukus-1"})
	if err != nil || !proto.Equal(rel2.GetPlacement(), rel.GetPlacement()) {
		t.Errorf("Release again: got %v, %v; want %v", rel2.GetPlacement(), err, rel.GetPlacement())
	}
	check()
}

func TestDeleteInUse(t *testing.T) {
	e := newEnv(t)
	placed, err := e.place.Place(ctx(t), placeRequest("aukus-1"))
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	key := placed.GetPlacement().GetAssignments()[0].GetRegion()
	provider, _, _ := strings.Cut(key, "/")

	inUse := []struct {
		name string
		call func(c context.Context) error
	}{
		{"DeleteRegion " + key, func(c context.Context) error {
			_, err := e.catalog.DeleteRegion(c, &pb.DeleteRegionRequest{Key: key})
			return err
		}},
		{"DeleteProvider " + provider, func(c context.Context) error {
			_, err := e.catalog.DeleteProvider(c, &pb.DeleteProviderRequest{Id: provider})
			return err
		}},
		{"DeleteTenant aus-defence", func(c context.Context) error {
			_, err := e.catalog.DeleteTenant(c, &pb.DeleteTenantRequest{Id: "aus-defence"})
			return err
		}},
	}
	for _, tc := range inUse {
		t.Run(tc.name, func(t *testing.T) {
			check := e.unchanged(t)
			st := wantCode(t, tc.call(ctx(t)), codes.FailedPrecondition)
			wantReason(t, st, "IN_USE")
			check()
		})
	}

	if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "aukus-1"}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := e.catalog.DeleteRegion(ctx(t), &pb.DeleteRegionRequest{Key: key}); err != nil {
		t.Fatalf("DeleteRegion after Release: %v", err)
	}
	_, err = e.catalog.GetRegion(ctx(t), &pb.GetRegionRequest{Key: key})
	wantCode(t, err, codes.NotFound)
}

func TestMessageLimits(t *testing.T) {
	e := newEnv(t)

	t.Run("Place larger than MaxRecvMsgSize", func(t *testing.T) {
		req := placeRequest("huge")
		for i := range server.MaxRecvMsgSize/64 + 1 {
			req.Workload.Capabilities = append(req.Workload.Capabilities, fmt.Sprintf("%063d", i))
		}
		if n := proto.Size(req); n <= server.MaxRecvMsgSize {
			t.Fatalf("request of %d bytes; want more than %d", n, server.MaxRecvMsgSize)
		}
		check := e.unchanged(t)
		_, err := e.place.Place(ctx(t), req)
		wantCode(t, err, codes.ResourceExhausted)
		check()
		// The connection survives.
		if _, err := e.place.Plan(ctx(t), &pb.PlanRequest{Workload: aukus()}); err != nil {
			t.Errorf("Plan after the refused message: %v", err)
		}
	})

	for _, n := range []int{4097, 1 << 20} {
		t.Run(fmt.Sprintf("CheckLabel banner of %d bytes", n), func(t *testing.T) {
			banner := "SECRET" + strings.Repeat(" ", n-len("SECRET"))
			_, err := e.catalog.CheckLabel(ctx(t), &pb.CheckLabelRequest{Banner: banner})
			wantContains(t, "banner", wantField(t, err, "banner"), "longer than 4096 bytes")
		})
	}
}

// waitHealth polls the health service until service reports want, or
// fails the test after a bounded wait.
func waitHealth(tb testing.TB, e *env, service string, want healthpb.HealthCheckResponse_ServingStatus) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, cancel := context.WithTimeout(tb.Context(), time.Second)
		resp, err := e.health.Check(c, &healthpb.HealthCheckRequest{Service: service})
		cancel()
		if err == nil && resp.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("health of %q: got %v, %v; want %v", service, resp.GetStatus(), err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// When the store cannot vouch for its state, decisions are refused as
// UNAVAILABLE and health says NOT_SERVING.
func TestUnavailable(t *testing.T) {
	// Its cleanup is registered before the env's, so it runs after them.
	member := etcdtest.Member(t)
	// The member stops under the store, so goroutine counts are not
	// comparable: no leak check.
	e := startEnv(t, member, false,
		state.WithStaleAfter(500*time.Millisecond), state.WithProgressEvery(100*time.Millisecond), state.WithOpTimeout(time.Second))
	placeSvc := pb.PlacementService_ServiceDesc.ServiceName
	waitHealth(t, e, "", healthpb.HealthCheckResponse_SERVING)
	waitHealth(t, e, placeSvc, healthpb.HealthCheckResponse_SERVING)

	// Close waits several seconds for the store's watch stream before
	// cutting it: etcd's graceful stop.
	member.Close()
	waitHealth(t, e, "", healthpb.HealthCheckResponse_NOT_SERVING)
	waitHealth(t, e, placeSvc, healthpb.HealthCheckResponse_NOT_SERVING)

	calls := []struct {
		name string
		call func(c context.Context) error
	}{
		{"Place", func(c context.Context) error {
			_, err := e.place.Place(c, placeRequest("aukus-1"))
			return err
		}},
		{"Plan", func(c context.Context) error {
			_, err := e.place.Plan(c, &pb.PlanRequest{Workload: aukus()})
			return err
		}},
		{"Release", func(c context.Context) error {
			_, err := e.place.Release(c, &pb.ReleaseRequest{Id: "aukus-1"})
			return err
		}},
		{"DeleteRegion", func(c context.Context) error {
			_, err := e.catalog.DeleteRegion(c, &pb.DeleteRegionRequest{Key: "aws/us-east-1"})
			return err
		}},
		// Reads refuse too: a stale cache could show a released
		// placement as live, or a downgraded region as it was.
		{"Get", func(c context.Context) error {
			_, err := e.place.Get(c, &pb.GetRequest{Id: "aukus-1"})
			return err
		}},
		{"List", func(c context.Context) error {
			_, err := e.place.List(c, &pb.ListRequest{})
			return err
		}},
		{"Watch", func(c context.Context) error {
			stream, err := e.place.Watch(c, &pb.WatchRequest{})
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}},
		{"GetRegion", func(c context.Context) error {
			_, err := e.catalog.GetRegion(c, &pb.GetRegionRequest{Key: "aws/us-east-1"})
			return err
		}},
		{"ListRegions", func(c context.Context) error {
			_, err := e.catalog.ListRegions(c, &pb.ListRegionsRequest{})
			return err
		}},
		{"ListTenants", func(c context.Context) error {
			_, err := e.catalog.ListTenants(c, &pb.ListTenantsRequest{})
			return err
		}},
		{"GetProvider", func(c context.Context) error {
			_, err := e.catalog.GetProvider(c, &pb.GetProviderRequest{Id: "aws"})
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			st := wantCode(t, tc.call(ctx(t)), codes.Unavailable)
			wantReason(t, st, "STATE_UNAVAILABLE")
		})
	}
}

func TestHealthAndReflection(t *testing.T) {
	e := newEnv(t)
	for _, svc := range []string{"", pb.PlacementService_ServiceDesc.ServiceName} {
		resp, err := e.health.Check(ctx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: got %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	var got []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		got = append(got, s.GetName())
	}
	for _, want := range []string{pb.PlacementService_ServiceDesc.ServiceName, pb.CatalogService_ServiceDesc.ServiceName, healthpb.Health_ServiceDesc.ServiceName} {
		if !slices.Contains(got, want) {
			t.Errorf("reflection services: got %q; want %s among them", got, want)
		}
	}
}

// Every method of the API is implemented: an empty request is answered
// (mostly INVALID_ARGUMENT), never UNIMPLEMENTED.
func TestEveryMethodImplemented(t *testing.T) {
	e := newEnv(t)
	services := []protoreflect.ServiceDescriptor{
		pb.File_classroute_v1_placement_proto.Services().ByName("PlacementService"),
		pb.File_classroute_v1_catalog_proto.Services().ByName("CatalogService"),
		pb.File_classroute_v1_agent_proto.Services().ByName("AgentService"),
	}
	for _, sd := range services {
		methods := sd.Methods()
		if methods.Len() == 0 {
			t.Fatalf("%s: no methods", sd.FullName())
		}
		for i := range methods.Len() {
			md := methods.Get(i)
			method := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
			t.Run(method, func(t *testing.T) {
				in, out := newMessage(t, md.Input()), newMessage(t, md.Output())
				check := e.unchanged(t)
				var err error
				if md.IsStreamingServer() {
					err = firstMessage(ctx(t), e.conn, method, in, out)
				} else {
					err = e.conn.Invoke(ctx(t), method, in, out)
				}
				if c := status.Code(err); c == codes.Unimplemented || c == codes.Internal || c == codes.Unknown {
					t.Errorf("%s(empty request): got %v; want it answered", method, err)
				}
				check()
			})
		}
	}

	// The check can fail: a method the server lacks is UNIMPLEMENTED.
	err := e.conn.Invoke(ctx(t), "/classroute.v1.PlacementService/Migrate", &pb.GetRequest{}, &pb.GetResponse{})
	wantCode(t, err, codes.Unimplemented)
}

// firstMessage calls a server-streaming method and receives its first
// message (or its error), then ends the call.
func firstMessage(c context.Context, conn *grpc.ClientConn, method string, in, out proto.Message) error {
	c, cancel := context.WithCancel(c)
	defer cancel()
	stream, err := conn.NewStream(c, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(in); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return stream.RecvMsg(out)
}

func newMessage(tb testing.TB, md protoreflect.MessageDescriptor) proto.Message {
	tb.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		tb.Fatal(err)
	}
	return mt.New().Interface()
}
