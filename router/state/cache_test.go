package state_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// TestCacheFollowsEtcd writes behind the store's back, with another
// client: the store's cache follows.
func TestCacheFollowsEtcd(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()

	before := e.store.Revision()
	r := secretRegion("aws", "secret-west", big)
	rev := e.putJSON("regions/aws/secret-west", r)
	waitFor(t, e.store, rev)
	if e.store.Revision() <= before {
		t.Errorf("revision %d; want past %d", e.store.Revision(), before)
	}
	st, err := e.store.GetRegion("aws/secret-west")
	if err != nil || st.Rev != rev || st.Region.ID != "secret-west" {
		t.Fatalf("GetRegion = %+v, %v; want the region written at %d", st, err, rev)
	}

	// A second store on the same etcd sees the first one's placements.
	second := e.open(e.other)
	p, err := e.store.Place(ctx, "a", secretWorkload(t, "w"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, second, e.store.Revision())
	if got, err := second.GetPlacement("us-army", "a"); err != nil || got.Regions[0] != p.Regions[0] {
		t.Errorf("second store's GetPlacement = %+v, %v", got, err)
	}
	// And can release it.
	if _, err := second.Release(ctx, "us-army", "a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.store, second.Revision())
	if got, _ := e.store.GetPlacement("us-army", "a"); got.State != router.PlacementReleased {
		t.Errorf("first store sees %v; want released", got.State)
	}

	resp, err := e.other.Delete(ctx, e.prefix+"regions/aws/secret-west")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.store, resp.Header.Revision)
	if _, err := e.store.GetRegion("aws/secret-west"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetRegion after delete in etcd = %v; want ErrNotFound", err)
	}

	// A revision made only outside the prefix is reached too (by a
	// progress notification).
	presp, err := e.other.Put(ctx, "/elsewhere/"+t.Name(), "x")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.store, presp.Header.Revision)
}

// TestUnreadableRecordDropped writes a region record the store cannot
// decode over a good one: the store must stop deciding on the old one,
// not keep it.
func TestUnreadableRecordDropped(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "secret-east", big)}, []router.Tenant{army()})
	ctx := context.Background()
	resp, err := e.other.Put(ctx, e.prefix+"regions/aws/secret-east", `{"provider": "aws", "id": "secret-east", "status": "bogus"}`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.store, resp.Header.Revision)
	if _, err := e.store.GetRegion("aws/secret-east"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetRegion of an unreadable record = %v; want ErrNotFound", err)
	}
	if _, err := e.store.Place(ctx, "a", secretWorkload(t, "w")); !errors.Is(err, router.ErrNoEligibleRegion) {
		t.Errorf("Place = %v; want a refusal", err)
	}
	// A record under another region's key is unreadable too.
	resp2 := e.putJSON("regions/aws/secret-west", secretRegion("aws", "secret-north", big))
	waitFor(t, e.store, resp2)
	if _, err := e.store.GetRegion("aws/secret-west"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetRegion of a record naming another region = %v; want ErrNotFound", err)
	}
	// A well-formed record the API would refuse (an impact level that
	// does not exist) is never decided on either.
	bad := secretRegion("aws", "secret-south", big)
	bad.Accreditation.ImpactLevel = 99
	waitFor(t, e.store, e.putJSON("regions/aws/secret-south", bad))
	if _, err := e.store.GetRegion("aws/secret-south"); !errors.Is(err, router.ErrNotFound) {
		t.Errorf("GetRegion of an invalid record = %v; want ErrNotFound", err)
	}
	if !strings.Contains(e.logs.String(), "unreadable record") {
		t.Errorf("nothing logged:\n%s", e.logs)
	}
}

// TestCompactionRecovery keeps the store's watch down while etcd moves
// on and compacts its history: the store must find its revision
// compacted, re-list, and end consistent with etcd.
func TestCompactionRecovery(t *testing.T) {
	m := etcdtest.Member(t)
	e := newEnv(t, m)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "secret-east", big), secretRegion("aws", "secret-west", big)},
		[]router.Tenant{army()})
	ctx := context.Background()
	if _, err := e.store.Place(ctx, "a", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}

	second := e.open(e.other)
	resume := e.store.InterruptWatch()
	// Changes the store misses: a new region, a deleted one, a
	// placement by another daemon.
	e.putJSON("regions/aws/secret-north", secretRegion("aws", "secret-north", big))
	resp, err := e.other.Delete(ctx, e.prefix+"regions/aws/secret-west")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, second, resp.Header.Revision)
	if _, err := second.Place(ctx, "b", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}
	last := second.Revision()
	if _, err := e.other.Compact(ctx, last, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Ready(); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Ready with the watch down = %v; want ErrUnavailable", err)
	}
	if _, err := e.store.Place(ctx, "c", secretWorkload(t, "w")); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Place with the watch down = %v; want ErrUnavailable", err)
	}
	resume()

	waitFor(t, e.store, last)
	deadline := time.Now().Add(5 * time.Second)
	for e.store.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.store.Ready(); err != nil {
		t.Fatalf("not ready after re-listing: %v", err)
	}
	if !strings.Contains(e.logs.String(), "re-listing") {
		t.Errorf("the store did not re-list:\n%s", e.logs)
	}
	regions, _ := e.store.ListRegions()
	var keys []string
	for _, r := range regions {
		keys = append(keys, r.Region.Key())
	}
	if strings.Join(keys, " ") != "aws/secret-east aws/secret-north" {
		t.Errorf("regions after re-listing %v", keys)
	}
	if p, err := e.store.GetPlacement("us-army", "b"); err != nil || p.Workload.Label.Level != secretWorkload(t, "w").Label.Level {
		t.Errorf("the other daemon's placement after re-listing: %+v, %v", p, err)
	}
	if _, err := e.store.Place(ctx, "c", secretWorkload(t, "w")); err != nil {
		t.Errorf("Place after re-listing: %v", err)
	}
	for _, key := range keys {
		page, err := e.store.ListPlacements(state.PlacementFilter{Region: key}, 0, "")
		items := page.Placements
		if _, n := e.usage(key); err != nil || n != int64(len(items)) {
			t.Errorf("usage of %s counts %d placements; %d listed (%v)", key, n, len(items), err)
		}
	}
}
