package server_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

// An equivalence entry changes by two catalogue administrators, over the
// API; every role reads it, with its history.
func TestEquivalenceChangeOverAPI(t *testing.T) {
	e := newEnv(t)
	grantMembers(t, e)
	changes := pb.NewChangeServiceClient(e.conn)
	equivs := pb.NewEquivalenceServiceClient(e.conn)
	alice, bob := "/admin/alice", "/admin/bob"

	list, err := equivs.ListEquivalences(as(t, asSubmitter), &pb.ListEquivalencesRequest{})
	if err != nil || len(list.GetEntries()) != len(equiv.Default()) {
		t.Fatalf("ListEquivalences: %d entries, %v; want the %d defaults", len(list.GetEntries()), err, len(equiv.Default()))
	}
	got, err := equivs.GetEquivalence(as(t, asAgent), &pb.GetEquivalenceRequest{From: "gbr", To: "US"})
	if err != nil || got.GetEntry().GetVersion() != 1 || !got.GetEntry().GetInForce() || len(got.GetHistory()) != 1 {
		t.Fatalf("GetEquivalence: %v, %v", got, err)
	}

	// Refused before anything is stored, naming the field.
	bad := proto2(got.GetEntry())
	bad.Levels[0].To = "VERY SECRET"
	_, err = changes.ProposeEquivalenceChange(as(t, alice), &pb.ProposeEquivalenceChangeRequest{Entry: bad})
	if d := wantField(t, err, "equivalence"); !strings.Contains(d, `levels[0].to: "VERY SECRET" is not a level of US`) {
		t.Fatalf("invalid proposal: %q; want it to name levels[0].to", d)
	}
	if cs, err := changes.ListChanges(ctx(t), &pb.ListChangesRequest{}); err != nil || len(cs.GetChanges()) != 0 {
		t.Fatalf("a refused proposal was stored: %v, %v", cs, err)
	}

	// Withdrawn by alice and bob.
	wd := proto2(got.GetEntry())
	wd.Version, wd.Withdrawn = 0, true
	p, err := changes.ProposeEquivalenceChange(as(t, alice), &pb.ProposeEquivalenceChangeRequest{Entry: wd, Reason: "agreement lapsed"})
	if err != nil {
		t.Fatal(err)
	}
	c := p.GetChange()
	if c.GetKind() != "withdraw" || c.GetEquivalence().GetVersion() != 2 || c.GetRegion() != nil || c.GetState() != "pending" {
		t.Fatalf("proposal %v", c)
	}
	if _, err := changes.ApproveChange(as(t, alice), &pb.ApproveChangeRequest{Id: c.GetId()}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("alice approving her own: %v; want PermissionDenied", err)
	}
	if _, err := changes.ApproveChange(as(t, asSubmitter), &pb.ApproveChangeRequest{Id: c.GetId()}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a tenant user approving: %v; want PermissionDenied", err)
	}
	done, err := changes.ApproveChange(as(t, bob), &pb.ApproveChangeRequest{Id: c.GetId()})
	if err != nil || done.GetChange().GetState() != "applied" {
		t.Fatalf("bob's approval: %v, %v", done, err)
	}
	got, err = equivs.GetEquivalence(as(t, asSubmitter), &pb.GetEquivalenceRequest{From: "GBR", To: "US"})
	if err != nil || got.GetEntry().GetVersion() != 2 || !got.GetEntry().GetWithdrawn() || got.GetEntry().GetInForce() ||
		got.GetEntry().GetChangeId() != c.GetId() || !strings.HasSuffix(got.GetEntry().GetApprovedBy(), bob) || len(got.GetHistory()) != 2 {
		t.Fatalf("after approval: %v, %v", got, err)
	}
	r := e.store.Equivalence().Map(marking.Parser{}, marking.MustParse(marking.GBR, "UK SECRET"), marking.US, time.Now())
	if r.Kind != equiv.NotInForce {
		t.Fatalf("the store's table maps UK SECRET: %+v", r)
	}

	if _, err := equivs.GetEquivalence(ctx(t), &pb.GetEquivalenceRequest{From: "US", To: "GBR"}); status.Code(err) != codes.NotFound {
		t.Errorf("US→GBR: %v; want NotFound", err)
	}
	if _, err := equivs.GetEquivalence(ctx(t), &pb.GetEquivalenceRequest{From: "XX", To: "US"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("XX→US: %v; want InvalidArgument", err)
	}
}

// proto2 copies an API entry as a proposal: the output-only fields left
// out.
func proto2(e *pb.EquivalenceEntry) *pb.EquivalenceEntry {
	out := &pb.EquivalenceEntry{From: e.GetFrom(), To: e.GetTo(), Version: e.GetVersion() + 1, Agreement: e.GetAgreement(),
		ValidFrom: e.GetValidFrom(), ValidUntil: e.GetValidUntil(), Withdrawn: e.GetWithdrawn(), Illustrative: e.GetIllustrative(), Source: e.GetSource()}
	for _, m := range e.GetLevels() {
		out.Levels = append(out.Levels, &pb.EquivalenceMapping{From: m.GetFrom(), WithCaveats: m.GetWithCaveats(), To: m.GetTo(), None: m.GetNone(), Note: m.GetNote()})
	}
	return out
}
