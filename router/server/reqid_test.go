package server_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Request ids are the tenant's own: the tenant users of this file.
const (
	asDaan = "/tenant/nld-mod/user/daan" // granted tenant-submitter by nld-mod
)

// grantDutch gives nld-mod the submitter asDaan, as an administrator does.
func grantDutch(t *testing.T, e *env) {
	t.Helper()
	got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	tn := got.GetTenant()
	tn.Members = []*pb.TenantMember{{Name: "daan", Roles: []string{"tenant-submitter"}}}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
		t.Fatal(err)
	}
}

// dutch is an UNCLASSIFIED workload of nld-mod the default catalogue places.
func dutch() *pb.Workload {
	return &pb.Workload{
		Name:                    "nld-deploy",
		Tenant:                  "nld-mod",
		Label:                   "UNCLASSIFIED",
		AllowedStorageCountries: []string{"USA"},
		Resources:               &pb.Resources{MilliCpu: 800, MemoryMib: 512},
		Replicas:                1,
	}
}

// icSmall is a small us-ic workload.
func icSmall() *pb.Workload {
	w := tsSITK()
	w.Resources = &pb.Resources{MilliCpu: 100, MemoryMib: 128}
	return w
}

// TestRequestIDSquatting: a tenant user that places an id another
// tenant will use later, and keeps it or releases it, neither blocks
// that tenant's Place nor learns anything from it.
func TestRequestIDSquatting(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	grantDutch(t, e)

	// us-ic's jane squats the Dutch tenant's next ids: one she keeps,
	// one she releases.
	for _, id := range []string{"nld-deploy-1", "nld-deploy-2"} {
		if _, err := e.place.Place(as(t, asOtherSub), &pb.PlaceRequest{RequestId: id, Workload: icSmall()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.place.Release(as(t, asOtherSub), &pb.ReleaseRequest{Id: "nld-deploy-2"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"nld-deploy-1", "nld-deploy-2"} {
		resp, err := e.place.Place(as(t, asDaan), &pb.PlaceRequest{RequestId: id, Workload: dutch()})
		if err != nil {
			t.Fatalf("nld-mod's Place of %s, which us-ic used: %v; want its own placement", id, err)
		}
		if p := resp.GetPlacement(); p.GetId() != id || p.GetTenant() != "nld-mod" || p.GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED {
			t.Fatalf("Place: got %v; want nld-mod's placed %s", p, id)
		}
		// And jane's own is as she left it.
		got, err := e.place.Get(as(t, asOtherSub), &pb.GetRequest{Id: id})
		if err != nil || got.GetPlacement().GetTenant() != "us-ic" {
			t.Errorf("jane's Get of %s: %v, %v; want us-ic's", id, got.GetPlacement(), err)
		}
	}
}

// TestRequestIDsPerTenant: two tenants place the same request id at
// once; each gets a placement of its own, and sees, watches, lists and
// releases only its own. Within a tenant the id is idempotent as ever.
func TestRequestIDsPerTenant(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	users := map[string]string{asSubmitter: "ke-moh", asOtherSub: "us-ic"}
	reqs := map[string]*pb.Workload{asSubmitter: kenya(), asOtherSub: icSmall()}

	// Each user watches from before the placements.
	watches := make(map[string]pb.PlacementService_WatchClient)
	for caller := range users {
		st, err := e.place.Watch(as(t, caller), &pb.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil { // the start notice
			t.Fatal(err)
		}
		watches[caller] = st
	}

	got := make(map[string]*pb.Placement)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for caller, w := range reqs {
		wg.Go(func() {
			resp, err := e.place.Place(as(t, caller), &pb.PlaceRequest{RequestId: "deploy-1", Workload: w})
			if err != nil {
				t.Errorf("Place deploy-1 as %s: %v; want a placement of its own", caller, err)
				return
			}
			mu.Lock()
			got[caller] = resp.GetPlacement()
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for caller, tenant := range users {
		p := got[caller]
		if p.GetId() != "deploy-1" || p.GetTenant() != tenant {
			t.Fatalf("Place as %s: got %s/%s; want %s/deploy-1", caller, p.GetTenant(), p.GetId(), tenant)
		}
		// Get, with the tenant left out or named: its own.
		for _, named := range []string{"", tenant} {
			resp, err := e.place.Get(as(t, caller), &pb.GetRequest{Id: "deploy-1", Tenant: named})
			if err != nil || !proto.Equal(resp.GetPlacement(), p) {
				t.Errorf("Get deploy-1 (tenant %q) as %s: %v, %v; want %v", named, caller, resp.GetPlacement(), err, p)
			}
		}
		// Naming another tenant is refused, as List's filter is,
		// whether or not that tenant used the id.
		for _, other := range []string{"ke-moh", "us-ic", "nld-mod"} {
			if other == tenant {
				continue
			}
			for _, id := range []string{"deploy-1", "never-used"} {
				_, err := e.place.Get(as(t, caller), &pb.GetRequest{Id: id, Tenant: other})
				msg := wantCode(t, err, codes.PermissionDenied).Message()
				wantContains(t, "Get of another tenant", msg, "may see tenant "+tenant+" only")
				_, err = e.place.Release(as(t, caller), &pb.ReleaseRequest{Id: id, Tenant: other})
				wantCode(t, err, codes.PermissionDenied)
			}
		}
		// List: its own deploy-1 only.
		resp, err := e.place.List(as(t, caller), &pb.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if ps := resp.GetPlacements(); len(ps) != 1 || !proto.Equal(ps[0], p) {
			t.Errorf("List as %s: got %v; want only its deploy-1", caller, ps)
		}
		// Idempotency within the tenant: the same workload returns the
		// placement, another is ALREADY_EXISTS.
		again, err := e.place.Place(as(t, caller), &pb.PlaceRequest{RequestId: "deploy-1", Workload: reqs[caller]})
		if err != nil || !proto.Equal(again.GetPlacement(), p) {
			t.Errorf("Place again as %s: %v, %v; want %v", caller, again.GetPlacement(), err, p)
		}
		other := proto.Clone(reqs[caller]).(*pb.Workload)
		other.Name = "another-workload"
		_, err = e.place.Place(as(t, caller), &pb.PlaceRequest{RequestId: "deploy-1", Workload: other})
		wantReason(t, wantCode(t, err, codes.AlreadyExists), "REQUEST_ID_REUSED")
	}

	// An administrator (Get) or the development principal (Release: a
	// submitter of every tenant) names the tenant when the id is ambiguous.
	_, err := e.place.Get(as(t, asAdmin), &pb.GetRequest{Id: "deploy-1"})
	wantContains(t, "admin Get without a tenant", wantField(t, err, "tenant"), "more than one tenant")
	_, err = e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "deploy-1"})
	wantField(t, err, "tenant")
	for caller, tenant := range users {
		// (A tenant's user sees no revision in its copy: compare the rest.)
		resp, err := e.place.Get(as(t, asAdmin), &pb.GetRequest{Id: "deploy-1", Tenant: tenant})
		if p := resp.GetPlacement(); err != nil || p.GetTenant() != tenant || !proto.Equal(p.GetWorkload(), got[caller].GetWorkload()) ||
			!proto.Equal(p.GetCreateTime(), got[caller].GetCreateTime()) {
			t.Errorf("admin Get deploy-1 of %s: %v, %v", tenant, resp.GetPlacement(), err)
		}
	}
	_, err = e.place.Get(as(t, asAdmin), &pb.GetRequest{Id: "deploy-1", Tenant: "Not/A-Tenant"})
	wantField(t, err, "tenant")

	// ke-moh's user releases deploy-1: ke-moh's, not us-ic's.
	rel, err := e.place.Release(as(t, asSubmitter), &pb.ReleaseRequest{Id: "deploy-1"})
	if err != nil || rel.GetPlacement().GetTenant() != "ke-moh" || rel.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
		t.Fatalf("Release as ke-moh: %v, %v", rel.GetPlacement(), err)
	}
	ic, err := e.place.Get(as(t, asOtherSub), &pb.GetRequest{Id: "deploy-1"})
	if err != nil || ic.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED {
		t.Errorf("us-ic's deploy-1 after ke-moh's release: %v, %v; want placed", ic.GetPlacement(), err)
	}

	// The watches: each saw its own tenant's placement, and ke-moh's
	// its release too, and nothing of the other tenant.
	for caller, tenant := range users {
		want := []pb.PlacementEventType{pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED}
		if tenant == "ke-moh" {
			want = append(want, pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED)
		}
		var seen []pb.PlacementEventType
		for len(seen) < len(want) {
			resp, err := watches[caller].Recv()
			if err != nil {
				t.Fatalf("Watch as %s: %v", caller, err)
			}
			for _, ev := range resp.GetEvents() {
				if p := ev.GetPlacement(); p.GetTenant() != tenant || p.GetId() != "deploy-1" {
					t.Errorf("Watch as %s: event of %s/%s", caller, p.GetTenant(), p.GetId())
				}
				seen = append(seen, ev.GetType())
			}
		}
		if len(seen) != len(want) || seen[0] != want[0] || seen[len(seen)-1] != want[len(want)-1] {
			t.Errorf("Watch as %s: got %v; want %v", caller, seen, want)
		}
	}

	// The development principal releases us-ic's by naming it; then, with one
	// tenant's placement of an id, the tenant may be left out.
	if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "deploy-1", Tenant: "us-ic"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.place.Place(as(t, asOtherSub), &pb.PlaceRequest{RequestId: "ic-only", Workload: icSmall()}); err != nil {
		t.Fatal(err)
	}
	if resp, err := e.place.Get(as(t, asAdmin), &pb.GetRequest{Id: "ic-only"}); err != nil || resp.GetPlacement().GetTenant() != "us-ic" {
		t.Errorf("admin Get ic-only: %v, %v; want us-ic's", resp.GetPlacement(), err)
	}
	if resp, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "ic-only"}); err != nil || resp.GetPlacement().GetTenant() != "us-ic" {
		t.Errorf("dev Release ic-only: %v, %v; want us-ic's", resp.GetPlacement(), err)
	}
	_, err = e.place.Get(as(t, asAdmin), &pb.GetRequest{Id: "never-used"})
	wantCode(t, err, codes.NotFound)
}

// TestAgentAckPerTenant: two Kenyan tenants' placements of one request id
// in konza are two assignments, each naming its tenant; an ack names the
// tenant, and one that leaves it out while the id is ambiguous ends the
// stream with INVALID_ARGUMENT on ack.tenant, changing nothing.
func TestAgentAckPerTenant(t *testing.T) {
	e := newEnv(t)
	moi := &pb.Tenant{Id: "ke-moi", Name: "Kenya Ministry of Interior", Nation: "KEN", Sector: "civil", Ceiling: "CUI", Ceilings: []*pb.SchemeCeiling{{Scheme: "KEN", Level: "CONFIDENTIAL"}}}
	if _, err := e.catalog.PutTenant(ctx(t), &pb.PutTenantRequest{Tenant: moi}); err != nil {
		t.Fatal(err)
	}
	a, _ := e.connect(t, konza, "konza-agent")
	w := kenya()
	e.mustPlace(t, "k1", w)
	w.Tenant = "ke-moi"
	e.mustPlace(t, "k1", w)
	tenants := map[string]bool{}
	for range 2 {
		u := a.next().GetAssignment()
		if u.GetPlacementId() != "k1" || u.GetAction() != pb.AssignmentAction_ASSIGNMENT_ACTION_RUN || u.GetTenant() != u.GetWorkload().GetTenant() {
			t.Fatalf("assignment %v; want RUN k1 naming its tenant", u)
		}
		tenants[u.GetTenant()] = true
	}
	if !tenants["ke-moh"] || !tenants["ke-moi"] {
		t.Fatalf("RUNs for %v; want ke-moh's and ke-moi's", tenants)
	}
	a.send(&pb.ConnectRequest{Msg: &pb.ConnectRequest_Ack{Ack: &pb.AgentAck{
		Region: konza, Tenant: "ke-moi", PlacementId: "k1", State: pb.ReplicaState_REPLICA_STATE_RUNNING}}})
	state := func(tenant string) pb.ReplicaState {
		p, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "k1", Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return p.GetPlacement().GetAssignments()[0].GetState()
	}
	eventually(t, "ke-moi's k1 running", func() bool { return state("ke-moi") == pb.ReplicaState_REPLICA_STATE_RUNNING })
	if st := state("ke-moh"); st != pb.ReplicaState_REPLICA_STATE_PENDING {
		t.Errorf("ke-moh's k1 after ke-moi's ack: %v; want pending", st)
	}
	a.send(ack(konza, "k1", pb.ReplicaState_REPLICA_STATE_FAILED))
	st := a.ended(5 * time.Second)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "ack.tenant") {
		t.Errorf("ack without a tenant of an ambiguous id: %v %q; want INVALID_ARGUMENT on ack.tenant", st.Code(), st.Message())
	}
	if st := state("ke-moh"); st != pb.ReplicaState_REPLICA_STATE_PENDING {
		t.Errorf("ke-moh's k1 after the refused ack: %v; want pending", st)
	}
}
