package server_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/flow"
)

// An edge changes by two catalogue administrators, over the API; only
// administrators and security auditors read edges and services.
func TestEdgeChangeOverAPI(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	changes := pb.NewChangeServiceClient(e.conn)
	edges := pb.NewEdgeServiceClient(e.conn)
	alice, bob := "/admin/alice", "/admin/bob"

	defEdges, defServices := flow.Defaults()
	list, err := edges.ListEdges(as(t, asSecAud), &pb.ListEdgesRequest{})
	if err != nil || len(list.GetEdges()) != len(defEdges) || !list.GetEdges()[0].GetInForce() {
		t.Fatalf("ListEdges: %v, %v; want the %d defaults, in force", list, err, len(defEdges))
	}
	svcs, err := edges.ListServices(as(t, asAdmin), &pb.ListServicesRequest{})
	if err != nil || len(svcs.GetServices()) != len(defServices) {
		t.Fatalf("ListServices: %v, %v; want the %d defaults", svcs, err, len(defServices))
	}
	if _, err := edges.ListEdges(as(t, asSubmitter), &pb.ListEdgesRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a tenant user listing edges: %v; want PermissionDenied", err)
	}

	guard := &pb.Edge{Id: "sipr-guard-1", Kind: "guard", From: "siprnet", To: "internet", Direction: "write",
		RangeScheme: "US", RangeLow: "UNCLASSIFIED", RangeHigh: "SECRET", Authority: "NCDSMO",
		ExpireTime: timestamppb.New(time.Now().AddDate(1, 0, 0))}

	// Refused before anything is stored, naming the field.
	bad := &pb.Edge{Id: guard.Id, Kind: "guard", From: "siprnet", To: "internet", Direction: "write",
		RangeScheme: "US", RangeLow: "UNCLASSIFIED", RangeHigh: "SECRET", ExpireTime: guard.ExpireTime}
	_, err = changes.ProposeEdgeChange(as(t, alice), &pb.ProposeEdgeChangeRequest{Edge: bad})
	if d := wantField(t, err, "edge"); !strings.Contains(d, "authority: required") {
		t.Fatalf("invalid proposal: %q; want it to name authority", d)
	}
	bad.Kind = "wormhole"
	_, err = changes.ProposeEdgeChange(as(t, alice), &pb.ProposeEdgeChangeRequest{Edge: bad})
	if d := wantField(t, err, "edge.kind"); !strings.Contains(d, "wormhole") {
		t.Fatalf("unknown kind: %q", d)
	}
	if cs, err := changes.ListChanges(ctx(t), &pb.ListChangesRequest{}); err != nil || len(cs.GetChanges()) != 0 {
		t.Fatalf("a refused proposal was stored: %v, %v", cs, err)
	}

	p, err := changes.ProposeEdgeChange(as(t, alice), &pb.ProposeEdgeChangeRequest{Edge: guard, Reason: "accredited"})
	if err != nil {
		t.Fatal(err)
	}
	c := p.GetChange()
	if c.GetKind() != "add" || c.GetEdge().GetId() != guard.Id || c.GetRegion() != nil || c.GetState() != "pending" {
		t.Fatalf("proposal %v", c)
	}
	if _, err := changes.ApproveChange(as(t, alice), &pb.ApproveChangeRequest{Id: c.GetId()}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("alice approving her own: %v; want PermissionDenied", err)
	}
	if _, err := changes.ApproveChange(as(t, bob), &pb.ApproveChangeRequest{Id: c.GetId()}); err != nil {
		t.Fatal(err)
	}
	got, err := edges.GetEdge(as(t, asSecAud), &pb.GetEdgeRequest{Id: guard.Id})
	if err != nil || !got.GetEdge().GetInForce() || got.GetEdge().GetChangeId() != c.GetId() ||
		!strings.HasSuffix(got.GetEdge().GetApprovedBy(), bob) || got.GetEdge().GetRangeHigh() != "SECRET//NOFORN" {
		t.Fatalf("after approval: %v, %v", got, err)
	}
	if _, err := edges.GetEdge(ctx(t), &pb.GetEdgeRequest{Id: "no-such"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetEdge of none: %v; want NotFound", err)
	}

	// A service withdrawn.
	w, err := changes.ProposeServiceChange(as(t, bob), &pb.ProposeServiceChangeRequest{Service: &pb.CatalogueService{Name: "azure-openai-commercial"}, Withdraw: true})
	if err != nil || w.GetChange().GetKind() != "withdraw" || !w.GetChange().GetWithdraw() {
		t.Fatalf("withdrawal: %v, %v", w, err)
	}
	if _, err := changes.ApproveChange(as(t, alice), &pb.ApproveChangeRequest{Id: w.GetChange().GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := edges.GetService(ctx(t), &pb.GetServiceRequest{Name: "azure-openai-commercial"}); status.Code(err) != codes.NotFound {
		t.Errorf("withdrawn service: %v; want NotFound", err)
	}
}
