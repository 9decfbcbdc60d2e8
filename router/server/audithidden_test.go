package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router/state"
)

// A tenant auditor's ListAudit does the same work whatever other tenants
// did: a filter on a region it may not know of (where another tenant is
// busy), on another tenant's workload or on an op only others used
// answers, and costs, exactly as one on a value nobody used. (Adversarial
// review of issue 8: the filter was joined against index ranges holding
// every tenant's entries, and a hidden region was 9–15× slower than a
// missing one after 300 interleaved placements.) The work is counted in
// the keys the store reads, which wall time follows.
func TestListAuditCostUnmovedByHidden(t *testing.T) {
	e := startEnvCatalog(t, shared, false, nil)
	grantMembers(t, e)
	grantDutchAnouk(t, e, "tenant-submitter", "tenant-auditor")
	nl := &pb.Workload{Name: "nl", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
		Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1}
	ic := icSmall()
	ic.Replicas, ic.Spread = 1, nil
	ic.Resources = &pb.Resources{MilliCpu: 1}
	var icRegion, nlRegion string
	const n = 40
	for i := range n {
		p, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("nl-%d", i), Workload: nl})
		if err != nil {
			t.Fatal(err)
		}
		nlRegion = p.GetPlacement().GetAssignments()[0].GetRegion()
		if p, err = e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("ic-%d", i), Workload: ic}); err != nil {
			t.Fatal(err)
		}
		icRegion = p.GetPlacement().GetAssignments()[0].GetRegion()
		if i%2 == 1 {
			if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: fmt.Sprintf("ic-%d", i), Tenant: "us-ic"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.catalog.GetRegion(as(t, asDutch), &pb.GetRegionRequest{Key: icRegion}); err == nil {
		t.Fatalf("%s is not hidden from the Dutch user", icRegion)
	}
	// The leader indexes the trail behind it (router/state/auditindex.go);
	// once it has caught up a query reads the index alone. (While it
	// lags, every query also reads the entries not yet indexed, the
	// same whatever the filter.)
	reconcileEnv(t, e, state.ReconcilerConfig{Interval: time.Hour})
	eventually(t, "the audit index catches up", func() bool {
		st, err := e.store.AuditIndexState(ctx(t))
		return err == nil && st.Current
	})
	audit := pb.NewAuditServiceClient(e.conn)
	list := func(req *pb.ListAuditRequest) (*pb.ListAuditResponse, int64, time.Duration) {
		t.Helper()
		before := e.store.AuditKeysRead()
		start := time.Now()
		resp, err := audit.ListAudit(as(t, asDutch), req)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("ListAudit %v: %v", req, err)
		}
		return resp, e.store.AuditKeysRead() - before, took
	}
	for _, tc := range []struct {
		name            string
		hidden, missing *pb.ListAuditRequest
	}{
		{"a hidden region", &pb.ListAuditRequest{Region: icRegion}, &pb.ListAuditRequest{Region: "aws/no-such-region-1"}},
		{"a hidden region and a workload", &pb.ListAuditRequest{Region: icRegion, Workload: "nl"}, &pb.ListAuditRequest{Region: "aws/no-such-region-1", Workload: "nl"}},
		{"another tenant's workload", &pb.ListAuditRequest{Workload: ic.Name}, &pb.ListAuditRequest{Workload: "no-such-workload"}},
		{"an op only others used", &pb.ListAuditRequest{Op: "release"}, &pb.ListAuditRequest{Op: "no-such-op"}},
		{"a known region and an op only others used", &pb.ListAuditRequest{Region: nlRegion, Op: "release"}, &pb.ListAuditRequest{Region: nlRegion, Op: "no-such-op"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dh, dm []time.Duration
			for range 5 {
				h, rh, th := list(tc.hidden)
				m, rm, tm := list(tc.missing)
				dh, dm = append(dh, th), append(dm, tm)
				if !proto.Equal(h, m) || len(h.GetEntries()) != 0 {
					t.Fatalf("%v: %v; %v: %v; want both empty", tc.hidden, h, tc.missing, m)
				}
				if rh != rm {
					t.Fatalf("%v read %d keys; %v read %d", tc.hidden, rh, tc.missing, rm)
				}
			}
			slices.Sort(dh)
			slices.Sort(dm)
			t.Logf("median %v (%v), %v (%v)", dh[2], tc.hidden, dm[2], tc.missing)
		})
	}
	// What it may see still answers, from its own entries alone: the
	// keys of its two index ranges, and the entries.
	resp, read, _ := list(&pb.ListAuditRequest{Region: nlRegion, Workload: "nl"})
	if len(resp.GetEntries()) != n || read != 3*n {
		t.Errorf("its own region and workload: %d entries, %d keys read; want %d, %d", len(resp.GetEntries()), read, n, 3*n)
	}

	// A region its entries name that it may no longer know of (it serves
	// others only now) answers as one that never existed: no entries,
	// nothing read.
	st, err := e.store.GetRegion(nlRegion)
	if err != nil {
		t.Fatal(err)
	}
	r := *st.Region
	r.Customers = []string{"USA/intelligence"}
	if _, err := e.store.PutRegion(ctx(t), &r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the region is hidden", func() bool {
		_, err := e.catalog.GetRegion(as(t, asDutch), &pb.GetRegionRequest{Key: nlRegion})
		return err != nil
	})
	h, rh, _ := list(&pb.ListAuditRequest{Region: nlRegion})
	m, rm, _ := list(&pb.ListAuditRequest{Region: "aws/no-such-region-1"})
	if !proto.Equal(h, m) || len(h.GetEntries()) != 0 || rh != 0 || rm != 0 {
		t.Errorf("a region turned hidden: %d entries, %d keys read; a missing one: %d entries, %d keys read; want none, nothing read",
			len(h.GetEntries()), rh, len(m.GetEntries()), rm)
	}
}

// A refusal's audit entry keeps the verdicts of the regions the tenant
// may know of first, so the 4 KiB bound on them never trades a visible
// region's line for a hidden one's: the tenant auditor's view of the
// entry is the same with and without 200 hidden regions sorting before
// every other. (Adversarial review of issue 8.)
func TestRefusalAuditUnmovedByHidden(t *testing.T) {
	run := func(t *testing.T, mutate func(*providers.Catalog)) (dutch, all []string) {
		e := startEnvCatalog(t, shared, false, mutate)
		grantDutchAnouk(t, e, "tenant-submitter", "tenant-auditor")
		w := &pb.Workload{Name: "probe", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"USA"},
			Resources: &pb.Resources{MilliCpu: 800000}, Replicas: 16}
		if _, err := e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: "probe", Workload: w}); err == nil {
			t.Fatal("the probe was placed")
		}
		audit := pb.NewAuditServiceClient(e.conn)
		l, err := audit.ListAudit(as(t, asDutch), &pb.ListAuditRequest{Op: "refuse"})
		if err != nil || len(l.GetEntries()) != 1 {
			t.Fatalf("ListAudit: %v, %v", l, err)
		}
		a, err := audit.ListAudit(as(t, asSecAud), &pb.ListAuditRequest{Op: "refuse"})
		if err != nil || len(a.GetEntries()) != 1 {
			t.Fatalf("ListAudit as a security auditor: %v, %v", a, err)
		}
		return l.GetEntries()[0].GetReasons(), a.GetEntries()[0].GetReasons()
	}
	var plain, hidden, hiddenAll []string
	t.Run("plain", func(t *testing.T) { plain, _ = run(t, nil) })
	t.Run("hidden", func(t *testing.T) { hidden, hiddenAll = run(t, withManyHidden) })
	t.Logf("the Dutch auditor's refusal entry: %d reasons without the hidden regions, %d with; the security auditor's %d", len(plain), len(hidden), len(hiddenAll))
	if len(plain) < 2 {
		t.Fatalf("the refusal entry names no region: %q", plain)
	}
	if strings.Join(plain, "\n") != strings.Join(hidden, "\n") {
		t.Errorf("the refusal entry's reasons moved by hidden regions:\n without: %q\n with:    %q", plain, hidden)
	}
	// All of them are recorded for those who see every region: the
	// Dutch auditor's lines, then the hidden regions' (as many as fit).
	if len(hiddenAll) <= len(hidden) || !slices.Equal(hiddenAll[:len(hidden)], hidden) || !strings.HasPrefix(hiddenAll[len(hidden)], "a-hid/") {
		t.Errorf("the security auditor's view: %q", hiddenAll)
	}
}
