package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/state"
)

// TestColdStartSameContents fills a store with more placement records
// than a load page holds, of several workloads, some released, and
// checks that a store opened on it afterwards, streamed or by pages,
// serves exactly what the store that watched them being written serves.
func TestColdStartSameContents(t *testing.T) {
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider("aws"), provider("azure")},
		[]router.Region{secretRegion("aws", "east", big), secretRegion("azure", "gov", big), commercialRegion("aws", "com")},
		[]router.Tenant{army()})
	ctx := context.Background()
	// A few placed through Place, the rest copies of them written
	// straight to etcd (the cache does not care how they got there).
	var placed []*router.Placement
	for i, name := range []string{"alpha", "bravo", "charlie"} {
		w := secretWorkload(t, name)
		w.Replicas = 1 + i%2
		if i == 2 {
			w.Banner, w.AllowedCountries = "UNCLASSIFIED", []string{"*"}
			if err := router.ValidateWorkload(w, "US"); err != nil {
				t.Fatal(err)
			}
		}
		p, err := e.store.Place(ctx, fmt.Sprintf("seed-%d", i), w)
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, p)
	}
	n := state.LoadPageSize + 500
	var ops []clientv3.Op
	var rev int64
	flush := func() {
		resp, err := e.other.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			t.Fatal(err)
		}
		rev, ops = resp.Header.Revision, ops[:0]
	}
	for i := range n {
		p := *placed[i%len(placed)]
		p.ID = fmt.Sprintf("copy-%05d", i)
		if i%7 == 0 {
			p.State = router.PlacementReleased
			p.ReleasedAt = p.CreatedAt.Add(1)
		}
		b, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(e.prefix+"placements/us-army/"+p.ID, string(b)))
		if len(ops) == 100 {
			flush()
		}
	}
	flush()
	waitFor(t, e.store, rev)
	want := listAll(t, e.store)
	if len(want) != n+len(placed) {
		t.Fatalf("the watching store holds %d placements; want %d", len(want), n+len(placed))
	}
	for _, tc := range []struct {
		name string
		opts []state.Option
	}{
		{"streamed", nil},
		{"by pages", []state.Option{state.WithLoadByPages()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := e.open(e.cli, tc.opts...)
			if s.Revision() < rev {
				t.Fatalf("loaded at revision %d; want at least %d", s.Revision(), rev)
			}
			got := listAll(t, s)
			if len(got) != len(want) {
				t.Fatalf("loaded %d placements; want %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("placement %d:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
			g, _ := s.ListRegions()
			if w, _ := e.store.ListRegions(); !reflect.DeepEqual(g, w) {
				t.Errorf("regions:\n got %+v\nwant %+v", g, w)
			}
			// The loaded store decides as the other: the same request id
			// and workload returns the placement already made.
			w := secretWorkload(t, "bravo")
			w.Replicas = 2
			p, err := s.Place(ctx, "seed-1", w)
			if err != nil || p.ID != "seed-1" || !reflect.DeepEqual(p.Regions, placed[1].Regions) {
				t.Errorf("Place again = %+v, %v; want %+v", p, err, placed[1])
			}
		})
	}
}

// listAll lists every placement the store serves, by pages.
func listAll(tb testing.TB, s *state.Store) []*router.Placement {
	tb.Helper()
	var all []*router.Placement
	token := ""
	for {
		page, err := s.ListPlacements(state.PlacementFilter{}, state.MaxPageSize, token)
		if err != nil {
			tb.Fatal(err)
		}
		all = append(all, page.Placements...)
		if token = page.Next; token == "" {
			return all
		}
	}
}
