package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/state"
)

// watchEvery is the progress notice period of the watch tests' stores.
const watchEvery = 50 * time.Millisecond

// watchStream is one Watch call, received in the background.
type watchStream struct {
	cancel context.CancelFunc
	resps  chan *pb.WatchResponse // closed when the stream ends
	err    error                  // why, once resps is closed
}

// watch opens a Watch stream on client; the stream ends with the test.
func watch(tb testing.TB, client pb.PlacementServiceClient, req *pb.WatchRequest) *watchStream {
	tb.Helper()
	c, cancel := context.WithCancel(tb.Context())
	stream, err := client.Watch(c, req)
	if err != nil {
		cancel()
		tb.Fatalf("Watch: %v", err)
	}
	w := &watchStream{cancel: cancel, resps: make(chan *pb.WatchResponse, 1<<16)}
	go func() {
		defer close(w.resps)
		for {
			r, err := stream.Recv()
			if err != nil {
				w.err = err
				return
			}
			w.resps <- r
		}
	}()
	tb.Cleanup(func() {
		cancel()
		for range w.resps {
		}
	})
	return w
}

// until returns the responses up to the first at revision rev or later.
func (w *watchStream) until(tb testing.TB, rev int64) []*pb.WatchResponse {
	tb.Helper()
	var out []*pb.WatchResponse
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-w.resps:
			if !ok {
				tb.Fatalf("watch ended before revision %d: %v", rev, w.err)
			}
			out = append(out, r)
			if r.GetRevision() >= rev {
				return out
			}
		case <-timeout:
			tb.Fatalf("watch: no revision %d after 10s (got %d responses)", rev, len(out))
		}
	}
}

// end waits for the stream to end and returns why.
func (w *watchStream) end(tb testing.TB) ([]*pb.WatchResponse, error) {
	tb.Helper()
	var out []*pb.WatchResponse
	timeout := time.After(20 * time.Second)
	for {
		select {
		case r, ok := <-w.resps:
			if !ok {
				return out, w.err
			}
			out = append(out, r)
		case <-timeout:
			tb.Fatalf("watch did not end after 20s (got %d responses)", len(out))
		}
	}
}

// change is one placement event as a test compares it.
type change struct {
	Rev  int64
	ID   string
	Type pb.PlacementEventType
}

func (c change) String() string {
	return fmt.Sprintf("%d %s %s", c.Rev, strings.TrimPrefix(c.Type.String(), "PLACEMENT_EVENT_TYPE_"), c.ID)
}

// changes flattens responses, checking that each revision comes once
// and in order, and that every event is whole.
func changes(tb testing.TB, resps []*pb.WatchResponse) []change {
	tb.Helper()
	var out []change
	var last int64
	for _, r := range resps {
		if len(r.GetEvents()) == 0 {
			continue
		}
		if r.GetRevision() <= last {
			tb.Errorf("revision %d after %d: a revision split or repeated", r.GetRevision(), last)
		}
		last = r.GetRevision()
		for _, ev := range r.GetEvents() {
			if ev.GetPlacement().GetId() == "" || ev.GetType() == pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UNSPECIFIED {
				tb.Errorf("revision %d: incomplete event %v", r.GetRevision(), ev)
			}
			out = append(out, change{r.GetRevision(), ev.GetPlacement().GetId(), ev.GetType()})
		}
	}
	return out
}

func sortChanges(cs []change) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Rev != cs[j].Rev {
			return cs[i].Rev < cs[j].Rev
		}
		return cs[i].ID < cs[j].ID
	})
}

// history reads from etcd itself every change of the env's placements
// from revision from+1 to to, typed as the API types them.
func (e *env) history(tb testing.TB, from, to int64) []change {
	tb.Helper()
	c, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	wch := e.etcd.Watch(c, e.prefix+"placements/", clientv3.WithPrefix(), clientv3.WithRev(from+1), clientv3.WithPrevKV())
	var out []change
	for resp := range wch {
		if err := resp.Err(); err != nil {
			tb.Fatal(err)
		}
		for _, ev := range resp.Events {
			rev := ev.Kv.ModRevision
			if rev > to {
				return out
			}
			id := string(ev.Kv.Key)
			id = id[strings.LastIndex(id, "/")+1:] // placements/<tenant>/<id>
			typ := pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UPDATED
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				typ = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_DELETED
			case ev.Kv.CreateRevision == rev:
				typ = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED
			case released(tb, ev.Kv.Value) && (ev.PrevKv == nil || !released(tb, ev.PrevKv.Value)):
				typ = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED
			}
			out = append(out, change{rev, id, typ})
		}
		if resp.Header.Revision >= to && (len(resp.Events) == 0 || resp.Events[len(resp.Events)-1].Kv.ModRevision >= to) {
			return out
		}
	}
	tb.Fatalf("etcd history from %d: watch ended before %d", from, to)
	return nil
}

func released(tb testing.TB, val []byte) bool {
	tb.Helper()
	var p router.Placement
	if err := json.Unmarshal(val, &p); err != nil {
		tb.Fatal(err)
	}
	return p.State == router.PlacementReleased
}

// lastPlacementRev is the latest revision that changed a placement record of the env.
func (e *env) lastPlacementRev(tb testing.TB) int64 {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix+"placements/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		tb.Fatal(err)
	}
	var rev int64
	for _, kv := range resp.Kvs {
		rev = max(rev, kv.ModRevision)
	}
	return rev
}

// small is the aukus workload with little capacity, so many fit.
func small() *pb.Workload {
	w := aukus()
	w.Resources = &pb.Resources{MilliCpu: 100, MemoryMib: 128}
	return w
}

func kenya() *pb.Workload {
	return &pb.Workload{
		Name:                    "kenya-health-records",
		Tenant:                  "ke-moh",
		Label:                   "UNCLASSIFIED",
		AllowedStorageCountries: []string{"KEN"},
		AllowedJurisdictions:    []string{"KEN"},
		StorageTier:             "nearline",
		Resources:               &pb.Resources{MilliCpu: 1000, MemoryMib: 1024},
		Replicas:                1,
	}
}

func (e *env) mustPlace(tb testing.TB, id string, w *pb.Workload) *pb.Placement {
	tb.Helper()
	resp, err := e.place.Place(ctx(tb), &pb.PlaceRequest{RequestId: id, Workload: w})
	if err != nil {
		tb.Fatalf("Place %s: %v", id, err)
	}
	return resp.GetPlacement()
}

// record reads tenant's placement record id from etcd.
func (e *env) record(tb testing.TB, tenant, id string) router.Placement {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix+"placements/"+tenant+"/"+id)
	if err != nil || len(resp.Kvs) != 1 {
		tb.Fatalf("placement record %s: %v, %d keys", id, err, len(resp.Kvs))
	}
	var p router.Placement
	if err := json.Unmarshal(resp.Kvs[0].Value, &p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// putRecords writes placement records in one etcd transaction (one
// revision), behind the store's back, and returns the revision.
func (e *env) putRecords(tb testing.TB, ps ...router.Placement) int64 {
	tb.Helper()
	var ops []clientv3.Op
	for _, p := range ps {
		b, err := json.Marshal(p)
		if err != nil {
			tb.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(e.prefix+"placements/"+p.Tenant+"/"+p.ID, string(b)))
	}
	resp, err := e.etcd.Txn(ctx(tb)).Then(ops...).Commit()
	if err != nil {
		tb.Fatal(err)
	}
	return resp.Header.Revision
}

// A watcher cut off again and again while placements, releases and
// batched same-revision writes go on, each time resuming from the last
// revision it received, sees every change etcd made exactly once.
func TestWatchResumesWithoutGapOrRepeat(t *testing.T) {
	e := startEnv(t, shared, true, state.WithWatchProgressEvery(watchEvery))
	list, err := e.place.List(ctx(t), &pb.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	start := list.GetRevision()
	if start == 0 {
		t.Fatal("List returned no revision")
	}

	// The writer: rounds of concurrent placements (committed in batches
	// that share a revision), a release, and records written two to a
	// revision behind the store's back.
	const rounds, perRound = 12, 6
	var wg sync.WaitGroup
	writerDone := make(chan struct{})
	wg.Go(func() {
		defer close(writerDone)
		for r := range rounds {
			var pw sync.WaitGroup
			for i := range perRound {
				pw.Go(func() {
					if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("p-%d-%d", r, i), Workload: small()}); err != nil {
						t.Errorf("Place: %v", err)
					}
				})
			}
			pw.Wait()
			if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: fmt.Sprintf("p-%d-0", r)}); err != nil {
				t.Errorf("Release: %v", err)
			}
			if r%3 == 0 {
				a, b := e.record(t, "aus-defence", fmt.Sprintf("p-%d-1", r)), e.record(t, "aus-defence", fmt.Sprintf("p-%d-2", r))
				a.ID, b.ID = fmt.Sprintf("twin-%d-a", r), fmt.Sprintf("twin-%d-b", r)
				e.putRecords(t, a, b)
			}
		}
	})

	// The reader: a segment takes a few responses with events, then
	// cuts the stream, and the next resumes after the last revision
	// received; once the writer is done it reads up to its last change.
	var got []*pb.WatchResponse
	after, segments := start, 0
	var final int64
	for final == 0 || after < final {
		select {
		case <-writerDone:
			if final == 0 {
				final = e.lastPlacementRev(t)
			}
		default:
		}
		segments++
		w := watch(t, e.place, &pb.WatchRequest{AfterRevision: after})
		withEvents := 0
	segment:
		for withEvents < 3 {
			select {
			case r, ok := <-w.resps:
				if !ok {
					t.Fatalf("segment %d ended: %v", segments, w.err)
				}
				if r.GetRevision() < after {
					t.Fatalf("segment from %d: response at revision %d", after, r.GetRevision())
				}
				got = append(got, r)
				after = r.GetRevision()
				if len(r.GetEvents()) > 0 {
					withEvents++
				}
				if final != 0 && after >= final {
					break segment
				}
			case <-time.After(200 * time.Millisecond):
				break segment // idle: cut anyway
			}
		}
		w.cancel()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	want := e.history(t, start, final)
	have := changes(t, got)
	sortChanges(want)
	sortChanges(have)
	if !slices.Equal(have, want) {
		t.Errorf("resumed watch over %d segments: got %d changes, etcd made %d\ngot:  %v\nwant: %v", segments, len(have), len(want), have, want)
	}
	batched := false
	for _, r := range got {
		batched = batched || len(r.GetEvents()) > 1
	}
	if !batched {
		t.Error("no response carried two changes of one revision; the test did not exercise batches")
	}
	if segments < 5 {
		t.Errorf("only %d segments: the stream was not cut mid-way", segments)
	}
}

// Each filter sees exactly the changes of the placements it selects,
// before or after the change: a placement moved out of a region is seen
// by that region's watcher, and an unreadable record is skipped.
func TestWatchFilters(t *testing.T) {
	e := startEnv(t, shared, true, state.WithWatchProgressEvery(watchEvery))
	list, err := e.place.List(ctx(t), &pb.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	start := list.GetRevision()

	a1 := e.mustPlace(t, "a1", small())
	x, y := a1.GetAssignments()[0].GetRegion(), a1.GetAssignments()[1].GetRegion()
	k1 := e.mustPlace(t, "k1", kenya())
	k := k1.GetAssignments()[0].GetRegion()
	var z string // a region a1 is not in, to move it to
	for _, r := range e.cat.Regions {
		if key := r.Key(); key != x && key != y && key != k {
			z = key
			break
		}
	}
	// A move as the reconciler makes it: the replica in x moves to z,
	// and the copy in x retires once z's is confirmed.
	moved := e.record(t, "aus-defence", "a1")
	moved.Regions = []string{z, y}
	moved.Retiring = []router.Retiring{{Region: x, MovedTo: z, Since: time.Now()}}
	e.putRecords(t, moved)
	moved.Retiring = nil
	e.putRecords(t, moved)
	if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "a1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.etcd.Delete(ctx(t), e.prefix+"placements/ke-moh/k1"); err != nil {
		t.Fatal(err)
	}
	// Unreadable records: not JSON, and one whose id disagrees with its key.
	if _, err := e.etcd.Put(ctx(t), e.prefix+"placements/aus-defence/bad", "{not json"); err != nil {
		t.Fatal(err)
	}
	other := e.record(t, "aus-defence", "a1")
	other.ID = "someone-else"
	b, _ := json.Marshal(other)
	if _, err := e.etcd.Put(ctx(t), e.prefix+"placements/aus-defence/misnamed", string(b)); err != nil {
		t.Fatal(err)
	}
	e.mustPlace(t, "k2", kenya())
	final := e.lastPlacementRev(t)

	const (
		placed   = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED
		updated  = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_UPDATED
		released = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED
		deleted  = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_DELETED
	)
	type ev struct {
		ID   string
		Type pb.PlacementEventType
	}
	all := []ev{{"a1", placed}, {"k1", placed}, {"a1", updated}, {"a1", updated}, {"a1", released}, {"k1", deleted}, {"k2", placed}}
	aukusOnly := []ev{{"a1", placed}, {"a1", updated}, {"a1", updated}, {"a1", released}}
	kenyaOnly := []ev{{"k1", placed}, {"k1", deleted}, {"k2", placed}}
	tests := []struct {
		name string
		req  *pb.WatchRequest
		want []ev
	}{
		{"everything", &pb.WatchRequest{}, all},
		{"tenant", &pb.WatchRequest{Tenant: "aus-defence"}, aukusOnly},
		{"other tenant", &pb.WatchRequest{Tenant: "ke-moh"}, kenyaOnly},
		{"workload", &pb.WatchRequest{Workload: "aukus-pillar2-models"}, aukusOnly},
		{"tenant and workload", &pb.WatchRequest{Tenant: "aus-defence", Workload: "aukus-pillar2-models"}, aukusOnly},
		{"tenant and another's workload", &pb.WatchRequest{Tenant: "ke-moh", Workload: "aukus-pillar2-models"}, nil},
		{"unknown tenant", &pb.WatchRequest{Tenant: "nobody"}, nil},
		// Retiring in x, then gone from x: both seen there, the release not.
		{"region moved out of", &pb.WatchRequest{Region: x}, []ev{{"a1", placed}, {"a1", updated}, {"a1", updated}}},
		{"region moved into", &pb.WatchRequest{Region: z}, []ev{{"a1", updated}, {"a1", updated}, {"a1", released}}},
		{"region kept", &pb.WatchRequest{Region: y}, aukusOnly},
		{"region and tenant", &pb.WatchRequest{Region: k, Tenant: "ke-moh"}, kenyaOnly},
		{"region and other tenant", &pb.WatchRequest{Region: k, Tenant: "aus-defence"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.AfterRevision = start
			resps := watch(t, e.place, req).until(t, final)
			if first := resps[0]; first.GetRevision() != start || len(first.GetEvents()) != 0 {
				t.Errorf("first response: revision %d with %d events; want a notice at the start revision %d",
					first.GetRevision(), len(first.GetEvents()), start)
			}
			var got []ev
			for _, c := range changes(t, resps) {
				got = append(got, ev{c.ID, c.Type})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}

	// The watch went past the unreadable records; the cache dropped them.
	if _, err := e.place.Get(ctx(t), &pb.GetRequest{Id: "bad"}); err == nil {
		t.Error("an unreadable record is served")
	}
}

// A placement's event carries it whole: the released placement with its
// regions, and for a deletion its last version.
func TestWatchEventCarriesPlacement(t *testing.T) {
	e := startEnv(t, shared, true, state.WithWatchProgressEvery(watchEvery))
	w := watch(t, e.place, &pb.WatchRequest{Tenant: "aus-defence"})
	start := w.until(t, 0)[0].GetRevision()
	if start == 0 {
		t.Fatal("from now: the first notice has no revision")
	}
	p := e.mustPlace(t, "a1", small())
	rel, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	del, err := e.etcd.Delete(ctx(t), e.prefix+"placements/aus-defence/a1")
	if err != nil {
		t.Fatal(err)
	}
	var evs []*pb.PlacementEvent
	for _, r := range w.until(t, del.Header.Revision) {
		evs = append(evs, r.GetEvents()...)
	}
	if len(evs) != 3 {
		t.Fatalf("got %d events; want 3: %v", len(evs), evs)
	}
	for i, want := range []*pb.Placement{p, rel.GetPlacement(), rel.GetPlacement()} {
		got := evs[i].GetPlacement()
		if got.GetState() != want.GetState() || !slices.EqualFunc(got.GetAssignments(), want.GetAssignments(),
			func(a, b *pb.Assignment) bool { return a.GetRegion() == b.GetRegion() }) || got.GetLabel().GetBanner() != want.GetLabel().GetBanner() {
			t.Errorf("event %d (%v): placement %v; want %v", i, evs[i].GetType(), got, want)
		}
	}
}

// While nothing matches, progress notices carry the revision forward,
// so a client resuming later starts from a recent revision.
func TestWatchProgressNotices(t *testing.T) {
	e := startEnv(t, shared, true, state.WithWatchProgressEvery(watchEvery))
	w := watch(t, e.place, &pb.WatchRequest{Tenant: "ke-moh"})
	w.until(t, 0) // the first notice
	e.mustPlace(t, "a1", small())
	rev := e.lastPlacementRev(t)
	resps := w.until(t, rev)
	for _, r := range resps {
		if len(r.GetEvents()) > 0 {
			t.Errorf("revision %d: events %v for another tenant's placement", r.GetRevision(), r.GetEvents())
		}
	}
}

// A watch from a compacted revision, or one etcd has not reached, is
// OUT_OF_RANGE, and says to list again.
func TestWatchOutOfRange(t *testing.T) {
	m := etcdtest.Member(t)
	e := startEnv(t, m, true, state.WithWatchProgressEvery(watchEvery))
	first := e.mustPlace(t, "a1", small())
	e.mustPlace(t, "a2", small())
	now := e.lastPlacementRev(t)
	if _, err := e.etcd.Compact(ctx(t), now, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		after int64
	}{
		{"compacted", first.GetDecidedAtRevision()},
		{"just before the compaction", now - 2},
		{"ahead of etcd", now + 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := watch(t, e.place, &pb.WatchRequest{AfterRevision: tc.after}).end(t)
			st := wantCode(t, err, codes.OutOfRange)
			wantReason(t, st, "REVISION_OUT_OF_RANGE")
			wantContains(t, "message", st.Message(), "list again")
		})
	}
	// From the compaction revision on, the watch is served.
	w := watch(t, e.place, &pb.WatchRequest{AfterRevision: now - 1})
	e.mustPlace(t, "a3", small())
	var ids []string
	for _, c := range changes(t, w.until(t, e.lastPlacementRev(t))) {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, []string{"a2", "a3"}) {
		t.Errorf("watch from %d: got %v; want [a2 a3]", now-1, ids)
	}
}

// A client that does not read falls behind: its stream ends with
// RESOURCE_EXHAUSTED once it has taken what was queued, and resuming
// from the last revision it received loses nothing.
func TestWatchSlowClient(t *testing.T) {
	e := startEnv(t, shared, true, state.WithWatchProgressEvery(watchEvery), state.WithWatchBuffer(4))
	start := e.store.Revision()
	const n = 200
	base := e.record(t, "aus-defence", e.mustPlace(t, "seed", small()).GetId())
	for i := range n {
		p := base
		p.ID = fmt.Sprintf("bulk-%03d", i)
		e.putRecords(t, p)
	}
	final := e.lastPlacementRev(t)

	// A fixed flow-control window, so the server's sends block once the
	// client stops reading.
	conn, err := grpc.NewClient(e.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewPlacementServiceClient(conn)
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := client.Watch(c, &pb.WatchRequest{AfterRevision: start})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // not reading
	var got []*pb.WatchResponse
	for {
		r, err := stream.Recv()
		if err != nil {
			st := wantCode(t, err, codes.ResourceExhausted)
			wantReason(t, st, "WATCHER_TOO_SLOW")
			break
		}
		got = append(got, r)
	}
	if len(got) == 0 || got[len(got)-1].GetRevision() >= final {
		t.Fatalf("the slow client got %d responses, up to the end: it was not cut off", len(got))
	}
	// Resume until the end. Even a client that reads at once may be cut
	// off again while the watch catches up faster than it reads, with
	// so small a buffer; each resumption makes progress.
	for resumed := 0; got[len(got)-1].GetRevision() < final; resumed++ {
		if resumed == 100 {
			t.Fatalf("not caught up after %d resumptions", resumed)
		}
		w := watch(t, client, &pb.WatchRequest{AfterRevision: got[len(got)-1].GetRevision()})
		for r := range w.resps {
			got = append(got, r)
			if r.GetRevision() >= final {
				break
			}
		}
		if got[len(got)-1].GetRevision() < final && status.Code(w.err) != codes.ResourceExhausted {
			t.Fatalf("resumed watch: %v", w.err) // w.err is set: resps was closed
		}
		w.cancel()
	}
	want := e.history(t, start, final)
	have := changes(t, got)
	if !slices.Equal(have, want) {
		t.Errorf("after resuming: got %d changes; etcd made %d", len(have), len(want))
	}
}

// Watch refuses bad filters naming the field, and refuses when the
// store cannot vouch for its state.
func TestWatchBadInput(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		req   *pb.WatchRequest
		field string
	}{
		{"negative revision", &pb.WatchRequest{AfterRevision: -1}, "after_revision"},
		{"region without provider", &pb.WatchRequest{Region: "us-east-1"}, "region"},
		{"region with two slashes", &pb.WatchRequest{Region: "aws/us/east"}, "region"},
		{"region empty part", &pb.WatchRequest{Region: "aws/"}, "region"},
		{"tenant shape", &pb.WatchRequest{Tenant: "AUS Defence"}, "tenant"},
		{"tenant too long", &pb.WatchRequest{Tenant: strings.Repeat("a", 64)}, "tenant"},
		{"workload shape", &pb.WatchRequest{Workload: "a/b"}, "workload"},
		{"workload too long", &pb.WatchRequest{Workload: strings.Repeat("w", 129)}, "workload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := watch(t, e.place, tc.req).end(t)
			wantField(t, err, tc.field)
		})
	}
}
