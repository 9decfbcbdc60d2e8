package state_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// A store opened on an idle etcd (a daemon restarted with nothing written
// since) must stay ready: etcd sends no progress notification until its
// revision reaches the watch's start, so freshness cannot rest on those
// alone.
func TestIdleEtcdStaysFresh(t *testing.T) {
	m := etcdtest.Member(t)
	fast := []state.Option{state.WithStaleAfter(500 * time.Millisecond), state.WithProgressEvery(100 * time.Millisecond)}
	e := newEnv(t, m, fast...)
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "us-isob-east-1", router.Resources{MilliCPU: 10000, MemoryMiB: 10000})},
		[]router.Tenant{army()})

	restarted := e.open(etcdtest.Client(t, m.Endpoints()...), fast...)
	deadline := time.Now().Add(2 * time.Second) // four stale bounds with no write
	for time.Now().Before(deadline) {
		if err := restarted.Ready(); err != nil {
			t.Fatalf("store on an idle etcd: Ready() = %v; want nil", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := restarted.Place(t.Context(), "after-idle", secretWorkload(t, "after-idle")); err != nil {
		t.Fatalf("Place after an idle spell: %v", err)
	}
}

// A watch that silently stops delivering (etcd reachable, stream open,
// nothing arriving) leaves the cache behind etcd: the store refuses as
// stale, restarts the watch, and recovers by itself.
func TestStalledWatchRestarts(t *testing.T) {
	m := etcdtest.Member(t)
	var stall atomic.Bool
	e := newEnv(t, m,
		state.WithStaleAfter(500*time.Millisecond), state.WithProgressEvery(100*time.Millisecond),
		state.WithBeforeApply(func(watch context.Context) {
			if stall.CompareAndSwap(true, false) {
				<-watch.Done() // deliver nothing until this watch is cancelled
			}
		}))
	e.seed([]router.Provider{provider("aws")},
		[]router.Region{secretRegion("aws", "us-isob-east-1", router.Resources{MilliCPU: 10000, MemoryMiB: 10000})},
		[]router.Tenant{army()})

	stall.Store(true)
	rev := e.putJSON("regions/aws/us-isob-west-1", secretRegion("aws", "us-isob-west-1", router.Resources{MilliCPU: 1, MemoryMiB: 1}))

	// While the cache lags, the store refuses rather than decide on it.
	deadline := time.Now().Add(5 * time.Second)
	for e.store.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("store still ready with a stalled watch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.store.Place(t.Context(), "while-stalled", secretWorkload(t, "w")); !errors.Is(err, router.ErrUnavailable) {
		t.Errorf("Place with a stalled watch = %v; want ErrUnavailable", err)
	}
	// Then it restarts the watch and catches up without help.
	waitFor(t, e.store, rev)
	for deadline = time.Now().Add(5 * time.Second); e.store.Ready() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("store not ready after the restart: %v", e.store.Ready())
		}
	}
	if !strings.Contains(e.logs.String(), "watch stalled") {
		t.Errorf("restart not logged:\n%s", e.logs)
	}
}

// A daemon that dies part-way through seeding a large catalogue does not
// leave a partial catalogue for good: its lease on the seeded marker
// expires, and the next daemon to start seeds the whole catalogue.
func TestSeedDiesPartWay(t *testing.T) {
	e := newEnv(t, nil)
	var regions []router.Region
	for i := range 150 { // three chunks
		regions = append(regions, secretRegion("aws", fmt.Sprintf("r-%03d", i), big))
	}
	dying := etcdtest.Client(t, e.member.Endpoints()...)
	var leased int64
	first := e.open(dying, state.WithSeedLeaseTTL(2), state.WithAfterSeedChunk(func(chunk int) {
		if chunk != 0 {
			return
		}
		resp, err := e.other.Get(context.Background(), e.prefix+"seeded")
		if err != nil || len(resp.Kvs) != 1 {
			t.Errorf("marker after chunk 0: %v, %v", resp, err)
			return
		}
		leased = resp.Kvs[0].Lease
		dying.Close() // the daemon dies: no more chunks, no more keep-alives
	}))
	if ok, err := first.Seed(context.Background(), []router.Provider{provider("aws")}, regions, []router.Tenant{army()}); err == nil {
		t.Fatalf("seed by a dead client = %v, nil; want an error", ok)
	}
	if leased == 0 {
		t.Fatal("the seeding marker was not held on a lease")
	}

	// The next daemon starts after the lease has expired.
	second := e.open(etcdtest.Client(t, e.member.Endpoints()...))
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := second.Seed(context.Background(), []router.Provider{provider("aws")}, regions, []router.Tenant{army()})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the part-way seed's marker never expired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, _ := second.ListRegions(); len(got) != len(regions) {
		t.Errorf("%d regions after the second seed; want %d", len(got), len(regions))
	}
	resp, err := e.other.Get(context.Background(), e.prefix+"seeded")
	if err != nil || len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), "complete") || resp.Kvs[0].Lease != 0 {
		t.Errorf("marker after a complete seed: %v, %v; want complete, with no lease", resp.Kvs, err)
	}
}
