package feed

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
)

// testSource is a store under the prefix /p/ whose placement records are
// JSON, for the tests that feed responses made up here to a feed.
type testSource struct{ Source }

func (testSource) IsPlacement(key string) bool {
	rest, ok := strings.CutPrefix(key, "/p/placements/")
	return ok && strings.Contains(rest, "/")
}

func (testSource) Legacy(key string) bool {
	rest, ok := strings.CutPrefix(key, "/p/placements/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

func (testSource) Decode(kv *mvccpb.KeyValue) (*router.Placement, error) {
	var p router.Placement
	err := json.Unmarshal(kv.Value, &p)
	return &p, err
}

// The feed's grouping, on responses made up here: etcd itself sends a
// revision's events in one response, so only a made-up stream can split
// one, as the feed must allow for.
func TestFeedGroupsByRevision(t *testing.T) {
	cfg := Config{ProgressEvery: time.Hour, Log: slog.New(slog.DiscardHandler)}
	r := &feedRun{src: testSource{}, cfg: cfg, q: &feedQueue{}}
	r.q.init(100)

	put := func(id string, rev int64) *clientv3.Event {
		b, err := json.Marshal(router.Placement{ID: id, Tenant: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{
			Key: []byte("/p/placements/t/" + id), Value: b, CreateRevision: rev, ModRevision: rev}}
	}
	events := func(evs ...*clientv3.Event) *clientv3.WatchResponse {
		return &clientv3.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: 9}, Events: evs}
	}
	progress := func(rev int64) *clientv3.WatchResponse {
		return &clientv3.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: rev}}
	}
	queued := func() []string {
		var out []string
		for _, b := range r.q.items {
			var ids []string
			for _, e := range b.Events {
				ids = append(ids, e.Placement.ID)
			}
			out = append(out, fmt.Sprint(b.Revision, ids))
		}
		return out
	}
	steps := []struct {
		resp *clientv3.WatchResponse
		want []string // the queue after the response
	}{
		// Revision 5 arrives in two responses; it is held until a later
		// revision shows it complete.
		{events(put("a", 5), put("b", 5)), nil},
		{events(put("c", 5)), nil},
		{events(put("d", 6)), []string{"5 [a b c]"}},
		// A progress notification completes the revision held.
		{progress(6), []string{"5 [a b c]", "6 [d]"}},
		{events(put("e", 7)), []string{"5 [a b c]", "6 [d]"}},
		{events(put("f", 7), put("g", 8)), []string{"5 [a b c]", "6 [d]", "7 [e f]"}},
		{progress(9), []string{"5 [a b c]", "6 [d]", "7 [e f]", "8 [g]"}},
	}
	for i, st := range steps {
		if err := r.handle(st.resp); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := queued(); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: queued %q; want %q", i, got, st.want)
		}
	}
}

// The queue coalesces notices and refuses events beyond its bound,
// except one batch when nothing else waits.
func TestFeedQueueBound(t *testing.T) {
	var q feedQueue
	q.init(3)
	evs := func(n int) []Event { return make([]Event, n) }
	for i, tc := range []struct {
		b    Batch
		ok   bool
		want int // items queued after
	}{
		{Batch{Revision: 1}, true, 1},
		{Batch{Revision: 2}, true, 1}, // replaces the notice
		{Batch{Revision: 3, Events: evs(5)}, true, 2},
		{Batch{Revision: 4, Events: evs(1)}, false, 2},
		{Batch{Revision: 5}, true, 3},
	} {
		if ok := q.push(tc.b); ok != tc.ok || len(q.items) != tc.want {
			t.Fatalf("push %d: got %v with %d queued; want %v with %d", i, ok, len(q.items), tc.ok, tc.want)
		}
	}
	if q.items[0].Revision != 2 {
		t.Errorf("first item at revision %d; want the coalesced notice at 2", q.items[0].Revision)
	}
}
