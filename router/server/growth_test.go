package server_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// sizeByDir sums the bytes (keys and values) etcd holds under the env's
// prefix, by top-level directory ("placements", "audit", ...).
func (e *env) sizeByDir(tb testing.TB) map[string]int64 {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix, clientv3.WithPrefix())
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		dir, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), e.prefix), "/")
		out[dir] += int64(len(kv.Key) + len(kv.Value))
	}
	return out
}

// reconcileEnv runs the env's reconciler (and with it the audit chainer
// and the purge) until the test ends.
func reconcileEnv(t *testing.T, e *env, cfg state.ReconcilerConfig) {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.store.Reconcile(c, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
}

// One tenant user looping Place then Release within its Place rate (the
// review's TestReviewPlaceReleaseLoopFillsEtcd, fixed): the workload of
// 256 made-up providers is refused, and with the largest workload the
// limits allow, the released records go once their retention has passed,
// from etcd and from the cache. What stays is the audit trail (the place
// and release entries, their index keys and chain records), a bounded
// number of bytes per Place, at most the caller's Place rate per second.
func TestPlaceReleaseLoopKeepsOnlyTheTrail(t *testing.T) {
	e, _ := newLimitedEnv(t, server.DefaultIdentityLimits)
	got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	tn := got.GetTenant()
	tn.Members = []*pb.TenantMember{{Name: "anouk", Roles: []string{"tenant-submitter"}}}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
		t.Fatal(err)
	}
	provs := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("p%062d", i))
		}
		return out
	}
	w := &pb.Workload{Name: strings.Repeat("n", 128), Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
		Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1, Preferences: &pb.Preferences{Providers: provs(256)}}

	// The review's workload: refused, naming the field, nothing stored.
	check := e.unchanged(t)
	_, err = e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: "r-256", Workload: w})
	wantContains(t, "workload.preferences.providers", wantField(t, err, "workload.preferences.providers"), "at most 16 entries, got 256")
	check()

	// The largest it may be now: 16 preferred providers of 63 bytes
	// (and a 128-byte name, a 118-byte request id).
	w.Preferences.Providers = provs(router.MaxShortListLen)
	const retention = time.Second
	reconcileEnv(t, e, state.ReconcilerConfig{Name: "a", Interval: 100 * time.Millisecond, ReleasedRetention: retention})
	eventually(t, "the reconciler leads", e.store.Leading)

	// The caller's Watch sees each record go.
	wctx, wcancel := context.WithCancel(as(t, asDutch))
	defer wcancel()
	watch, err := e.place.Watch(wctx, &pb.WatchRequest{Tenant: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	var deleted atomic.Int64
	go func() {
		for {
			resp, err := watch.Recv()
			if err != nil {
				return
			}
			for _, ev := range resp.GetEvents() {
				if ev.GetType() == pb.PlacementEventType_PLACEMENT_EVENT_TYPE_DELETED && ev.GetPlacement().GetState() == pb.PlacementState_PLACEMENT_STATE_RELEASED {
					deleted.Add(1)
				}
			}
		}
	}()

	before := e.sizeByDir(t)
	n := 0
	// As a client does, each call is retried with the same request id
	// while the daemon says it is briefly unavailable (its etcd watch
	// re-established on a loaded machine): Place and Release are
	// idempotent by request id.
	retry := func(call func() error) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; {
			err := call()
			if err == nil {
				return
			}
			if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	loop := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); n++ {
			id := fmt.Sprintf("r%07d-%s", n, strings.Repeat("x", 110))
			retry(func() error {
				_, err := e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: id, Workload: w})
				return err
			})
			retry(func() error {
				_, err := e.place.Release(as(t, asDutch), &pb.ReleaseRequest{Id: id})
				return err
			})
		}
	}
	// Spend the burst first: the sustained rate is what counts.
	loop(2 * time.Second)
	n0, start := n, time.Now()
	loop(3 * time.Second)
	rate := float64(n-n0) / time.Since(start).Seconds()

	// Past the retention, every released record is gone, from etcd and
	// from what the daemon serves.
	eventually(t, fmt.Sprintf("every placement record of %d place+release cycles gone", n), func() bool {
		return e.countUnder(t, "placements/") == 0
	})
	eventually(t, "List shows none of them", func() bool {
		resp, err := e.place.List(as(t, asDutch), &pb.ListRequest{PageSize: 1000})
		return err == nil && len(resp.GetPlacements()) == 0
	})

	eventually(t, "the Watch saw every record deleted", func() bool { return deleted.Load() == int64(n) })

	after := e.sizeByDir(t)
	var dirs []string
	var kept int64
	for d, b := range after {
		if d == "election" {
			continue // the leader's key, not the trail
		}
		if b != before[d] {
			dirs = append(dirs, fmt.Sprintf("%s %+d", d, b-before[d]))
		}
		kept += b - before[d]
	}
	sort.Strings(dirs)
	perCycle := float64(kept) / float64(n)
	t.Logf("%d place+release cycles (%.1f/s sustained); kept %d bytes, %.0f per cycle: %s", n, rate, kept, perCycle, strings.Join(dirs, ", "))
	t.Logf("at the default Place rate (20/s) that is %.1f KB/s: a 2 GiB etcd lasts %v", 20*perCycle/1e3,
		time.Duration(float64(2<<30)/(20*perCycle)*float64(time.Second)).Round(time.Hour))
	if d := after["placements"] - before["placements"]; d != 0 {
		t.Errorf("placement records grew by %d bytes; want none kept past the retention", d)
	}
	for d := range after {
		if !strings.HasPrefix(d, "audit") && d != "placements" && d != "usage" && after[d] != before[d] {
			t.Errorf("%s grew by %d bytes; want only the audit trail to grow", d, after[d]-before[d])
		}
	}
	// Two entries a cycle, each with its index keys and chain record.
	if perCycle > 4<<10 {
		t.Errorf("%.0f bytes kept per cycle; want at most 4 KiB (the place and release entries with their index and chain records)", perCycle)
	}
}

// A tenant's max_placements: set and shown through the Catalog API,
// bounded, and a Place beyond it is RESOURCE_EXHAUSTED naming the cap,
// until a placement is released.
func TestTenantPlacementCap(t *testing.T) {
	e, _ := newLimitedEnv(t, server.DefaultIdentityLimits)
	got, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "ke-moh"})
	if err != nil {
		t.Fatal(err)
	}
	tn := got.GetTenant()
	tn.MaxPlacements = -1
	_, err = e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn})
	wantContains(t, "tenant.max_placements", wantField(t, err, "tenant.max_placements"), "between 0 (no cap) and 100000")
	tn.MaxPlacements = 2
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn}); err != nil {
		t.Fatal(err)
	}
	mine, err := e.catalog.GetTenant(as(t, asSubmitter), &pb.GetTenantRequest{Id: "ke-moh"})
	if err != nil || mine.GetTenant().GetMaxPlacements() != 2 {
		t.Fatalf("GetTenant as its user: max_placements %d, %v; want 2", mine.GetTenant().GetMaxPlacements(), err)
	}

	for _, id := range []string{"k1", "k2"} {
		if _, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: id, Workload: kenya()}); err != nil {
			t.Fatalf("Place %s: %v", id, err)
		}
	}
	_, err = e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "k3", Workload: kenya()})
	st := wantCode(t, err, codes.ResourceExhausted)
	wantReason(t, st, "PLACEMENT_CAP")
	wantContains(t, "message", st.Message(), "holds 2 live placements, its cap (max_placements); release one first")
	if qf := detail[*errdetails.QuotaFailure](t, st); len(qf.GetViolations()) != 1 || qf.GetViolations()[0].GetSubject() != "tenant.max_placements" {
		t.Errorf("QuotaFailure %v; want one violation of tenant.max_placements", qf)
	}
	if _, err := e.place.Release(as(t, asSubmitter), &pb.ReleaseRequest{Id: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "k3", Workload: kenya()}); err != nil {
		t.Errorf("Place k3 after a release: %v", err)
	}
}
