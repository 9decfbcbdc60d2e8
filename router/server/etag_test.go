package server_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Two administrators read the same region; the first to write wins, and
// the second's write, carrying the etag it read, is refused with ABORTED
// (ETAG_MISMATCH) instead of silently undoing the first (AIP-154).
func TestConditionalRegionWrite(t *testing.T) {
	e := newEnv(t)
	key := e.regionKeys()[0]
	read := func() *pb.Region {
		t.Helper()
		resp, err := e.catalog.GetRegion(ctx(t), &pb.GetRegionRequest{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetRegion().GetEtag() == "" {
			t.Fatalf("GetRegion(%s): no etag", key)
		}
		return resp.GetRegion()
	}
	alice, bob := read(), read()
	if alice.GetEtag() != bob.GetEtag() {
		t.Fatalf("two reads of an unchanged region: etags %q and %q", alice.GetEtag(), bob.GetEtag())
	}

	alice.Status = pb.RegionStatus_REGION_STATUS_DRAINING
	put, err := e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: alice})
	if err != nil {
		t.Fatalf("first conditional put: %v", err)
	}
	if put.GetRegion().GetEtag() == alice.GetEtag() || put.GetRegion().GetEtag() == "" {
		t.Fatalf("after a put the etag is %q, was %q: want a new one", put.GetRegion().GetEtag(), alice.GetEtag())
	}

	bob.Cost = bob.GetCost() + 1 // an operational edit of the record as bob read it: active
	check := e.unchanged(t)
	_, err = e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: bob})
	st := wantCode(t, err, codes.Aborted)
	wantReason(t, st, "ETAG_MISMATCH")
	check()
	if got := read().GetStatus(); got != pb.RegionStatus_REGION_STATUS_DRAINING {
		t.Fatalf("after the refused stale write the region is %v: alice's drain was undone", got)
	}

	// The delete of the stale version is refused too; an unconditional
	// put (no etag) still applies, as before etags.
	_, err = e.catalog.DeleteRegion(ctx(t), &pb.DeleteRegionRequest{Key: key, Etag: bob.GetEtag()})
	wantReason(t, wantCode(t, err, codes.Aborted), "ETAG_MISMATCH")
	uncond := proto.Clone(bob).(*pb.Region)
	uncond.Etag = ""
	if _, err := e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: uncond}); err != nil {
		t.Fatalf("unconditional put: %v", err)
	}

	// A malformed etag is bad input naming the field.
	bad := read()
	bad.Etag = "W/\"x\""
	_, err = e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: bad})
	wantField(t, err, "region.etag")
}

func TestConditionalTenantAndProviderWrites(t *testing.T) {
	e := newEnv(t)
	tresp, err := e.catalog.ListTenants(ctx(t), &pb.ListTenantsRequest{})
	if err != nil || len(tresp.GetTenants()) == 0 {
		t.Fatalf("ListTenants: %v, %d tenants", err, len(tresp.GetTenants()))
	}
	ten := tresp.GetTenants()[0]
	if ten.GetEtag() == "" {
		t.Fatalf("ListTenants: tenant %s has no etag", ten.GetId())
	}
	first := proto.Clone(ten).(*pb.Tenant)
	first.Name += " (renamed)"
	if _, err := e.catalog.PutTenant(ctx(t), &pb.PutTenantRequest{Tenant: first}); err != nil {
		t.Fatalf("first conditional tenant put: %v", err)
	}
	stale := proto.Clone(ten).(*pb.Tenant)
	stale.Sector = "commercial"
	_, err = e.catalog.PutTenant(ctx(t), &pb.PutTenantRequest{Tenant: stale})
	wantReason(t, wantCode(t, err, codes.Aborted), "ETAG_MISMATCH")
	_, err = e.catalog.DeleteTenant(ctx(t), &pb.DeleteTenantRequest{Id: ten.GetId(), Etag: ten.GetEtag()})
	wantReason(t, wantCode(t, err, codes.Aborted), "ETAG_MISMATCH")

	presp, err := e.catalog.PutProvider(ctx(t), &pb.PutProviderRequest{Provider: &pb.Provider{Id: "newcloud", Name: "New Cloud", Jurisdiction: "USA"}})
	if err != nil {
		t.Fatal(err)
	}
	p := presp.GetProvider()
	if p.GetEtag() == "" {
		t.Fatal("PutProvider: no etag in the response")
	}
	p2 := proto.Clone(p).(*pb.Provider)
	p2.Name = "Newer Cloud"
	if _, err := e.catalog.PutProvider(ctx(t), &pb.PutProviderRequest{Provider: p2}); err != nil {
		t.Fatalf("conditional provider put: %v", err)
	}
	_, err = e.catalog.PutProvider(ctx(t), &pb.PutProviderRequest{Provider: p})
	wantReason(t, wantCode(t, err, codes.Aborted), "ETAG_MISMATCH")
	_, err = e.catalog.DeleteProvider(ctx(t), &pb.DeleteProviderRequest{Id: p.GetId(), Etag: p.GetEtag()})
	wantReason(t, wantCode(t, err, codes.Aborted), "ETAG_MISMATCH")
	g, err := e.catalog.GetProvider(ctx(t), &pb.GetProviderRequest{Id: p.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.catalog.DeleteProvider(ctx(t), &pb.DeleteProviderRequest{Id: p.GetId(), Etag: g.GetProvider().GetEtag()}); err != nil {
		t.Fatalf("delete at the current etag: %v", err)
	}
}

// A proposal carries the etag its region was read at: proposed over a
// change made since, it is refused before anyone is asked to approve it.
func TestConditionalProposal(t *testing.T) {
	e := newEnv(t)
	key := e.regionKeys()[0]
	resp, err := e.catalog.GetRegion(ctx(t), &pb.GetRegionRequest{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	read := resp.GetRegion()
	op := proto.Clone(read).(*pb.Region)
	op.Cost++
	if _, err := e.catalog.PutRegion(ctx(t), &pb.PutRegionRequest{Region: op}); err != nil {
		t.Fatal(err)
	}
	stale := proto.Clone(read).(*pb.Region)
	stale.Accreditation.Revoked = true
	_, err = pb.NewChangeServiceClient(e.conn).ProposeRegionChange(ctx(t), &pb.ProposeRegionChangeRequest{Region: stale, Reason: "ATO lapsed"})
	wantReason(t, wantCode(t, err, codes.Aborted), "ETAG_MISMATCH")
}
