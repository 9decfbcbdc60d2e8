package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// The abuser of TestAbusiveTenantFlood: a Dutch defence user holding
// both tenant roles, and an agent of a region.
const (
	asAbuser      = "/tenant/nld-mod/user/mallory"
	asAbuserAgent = "/agent/aws/us-east-1"
)

// dialClient returns a client connection to addr whose connections come
// from source address src (any 127/8 address is loopback on Linux).
func dialClient(tb testing.TB, addr, src string) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			return d.DialContext(ctx, "tcp", a)
		}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// victimLatencies runs another tenant's ordinary calls (Get and List of
// its placement, in turn, about a hundred a second: well within its
// read limit) for d, and returns their sorted latencies.
func victimLatencies(t *testing.T, place pb.PlacementServiceClient, id string, d time.Duration) []time.Duration {
	t.Helper()
	var ls []time.Duration
	for i, end := 0, time.Now().Add(d); time.Now().Before(end); i++ {
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, err = place.Get(as(t, asSubmitter), &pb.GetRequest{Id: id})
		} else {
			_, err = place.List(as(t, asSubmitter), &pb.ListRequest{PageSize: 10})
		}
		if err != nil {
			t.Fatalf("the victim's call %d: %v", i, err)
		}
		ls = append(ls, time.Since(start))
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(ls)
	return ls
}

// TestAbusiveTenantFlood is issue 8's load test: one abusive identity
// floods Place (refused at its ceiling, so each would be audited), Plan,
// ListAudit, List of its own 600 placements a page at a time, Watch
// streams and, as a region agent, health reports, and
// opens idle connections, all from loopback addresses of its own, while
// another tenant's user (from 127.0.0.1) gets and lists its placement.
// With the daemon's default limits the victim's p99 stays within 3× of
// its p99 on the idle daemon, nothing crashes, the abuser gets its rates
// and no more, and etcd grows by a bounded number of audit entries.
//
// Timing on a shared 2-core machine is noisy: the comparison of idle and
// flooded p99 is made up to three times, each with a fresh idle
// baseline, and fails only if every attempt is beyond 3×.
//
// CLASSROUTE_FLOOD_UNLIMITED=1 runs the same flood with no per-caller
// limits and wide connection caps, and only logs: the "before" figures.
func TestAbusiveTenantFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a timed flood")
	}
	limited := os.Getenv("CLASSROUTE_FLOOD_UNLIMITED") == ""
	lim, conns := server.DefaultIdentityLimits, server.ConnLimits{Max: 512, PerSource: 64}
	if !limited {
		lim, conns = server.IdentityLimits{}, server.ConnLimits{Max: 1 << 20, PerSource: 1 << 20}
	}
	e, _ := newLimitedEnv(t, lim)
	tn, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	tn.GetTenant().Members = []*pb.TenantMember{{Name: "mallory", Roles: []string{"tenant-submitter", "tenant-auditor"}}}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn.GetTenant()}); err != nil {
		t.Fatal(err)
	}

	// The same server, fronted as the daemon fronts it: connection caps
	// per source and in all, and a handshake deadline.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := server.LimitListener(lis, conns, nil)
	limits := server.DefaultLimits
	limits.HandshakeTimeout = 2 * time.Second
	g := grpc.NewServer(append(limits.ServerOptions(slog.New(slog.DiscardHandler)), e.srv.AuthOptions()...)...)
	e.srv.Register(g)
	go func() { _ = g.Serve(ll) }()
	t.Cleanup(g.Stop)
	addr := lis.Addr().String()
	// The listener binds 127.0.0.1 alone; sources 127.0.0.x reach it.
	victim := pb.NewPlacementServiceClient(dialClient(t, addr, "127.0.0.1"))
	abuser := dialClient(t, addr, "127.0.0.3")
	aPlace, aAudit, aAgents := pb.NewPlacementServiceClient(abuser), pb.NewAuditServiceClient(abuser), pb.NewAgentServiceClient(abuser)

	// The abuser's own placements, made over the weeks within its rate
	// (here by the exempt development principal, to save the test's
	// time), for it to List a thousand at a time.
	var provs []string
	for i := range 16 {
		provs = append(provs, fmt.Sprintf("p%062d", i))
	}
	own := &pb.Workload{Name: strings.Repeat("n", 128), Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
		Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1, Preferences: &pb.Preferences{Providers: provs}}
	for i := range 600 {
		if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("own-%04d-%s", i, strings.Repeat("x", 110)), Workload: own}); err != nil {
			t.Fatal(err)
		}
	}
	// A daemon's leader indexes the audit trail behind it
	// (router/state/auditindex.go), so that a filtered ListAudit reads
	// the index rather than every entry written since the last leader.
	reconcileEnv(t, e, state.ReconcilerConfig{Interval: time.Hour, Audit: state.AuditChainConfig{Disabled: true}})
	eventually(t, "the audit index catches up", func() bool {
		st, err := e.store.AuditIndexState(ctx(t))
		return err == nil && st.Current
	})
	p, err := victim.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "victim", Workload: kenya()})
	if err != nil {
		t.Fatal(err)
	}
	id := p.GetPlacement().GetId()
	victimLatencies(t, victim, id, 300*time.Millisecond) // warm up
	auditsBefore := e.countUnder(t, "audit/")

	flood := func(ctx context.Context, counts *floodCounts) *sync.WaitGroup {
		var wg sync.WaitGroup
		above := &pb.Workload{Name: "above", Tenant: "nld-mod", Label: "SECRET//REL TO USA, NLD",
			AllowedStorageCountries: []string{"*"}, Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1}
		probe := &pb.Workload{Name: "probe", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"USA"},
			Resources: &pb.Resources{MilliCpu: 800000}, Replicas: 16}
		loop := func(n int, call func(c context.Context, i int) error) {
			for range n {
				wg.Go(func() {
					c := metadataAs(ctx, asAbuser)
					for i := 0; ctx.Err() == nil; i++ {
						counts.count(call(c, i))
					}
				})
			}
		}
		loop(8, func(c context.Context, i int) error {
			_, err := aPlace.Place(c, &pb.PlaceRequest{RequestId: fmt.Sprintf("above-%d", i), Workload: above})
			return err
		})
		loop(8, func(c context.Context, _ int) error {
			_, err := aPlace.Plan(c, &pb.PlanRequest{Workload: probe})
			if err == nil {
				counts.planned.Add(1)
			}
			return err
		})
		loop(4, func(c context.Context, _ int) error {
			_, err := aAudit.ListAudit(c, &pb.ListAuditRequest{Workload: "no-such-workload"})
			return err
		})
		// Its own 600 placements, a page of up to 1,000 at a time, by a
		// client that decodes nothing (it runs in this process).
		loop(8, func(c context.Context, _ int) error {
			_, err := aPlace.List(c, &pb.ListRequest{PageSize: 1000}, grpc.MaxCallRecvMsgSize(64<<20), grpc.ForceCodec(discardCodec{}))
			return err
		})
		// Watch streams, opened and held until refused, then again.
		loop(2, func(c context.Context, _ int) error {
			st, err := aPlace.Watch(c, &pb.WatchRequest{})
			if err == nil {
				_, err = st.Recv()
			}
			return err
		})
		// A region agent reporting as fast as it can.
		wg.Go(func() {
			st, err := aAgents.Connect(metadataAs(ctx, asAbuserAgent))
			if err != nil {
				counts.count(err)
				return
			}
			go func() {
				for {
					if _, err := st.Recv(); err != nil {
						return
					}
				}
			}()
			if err := st.Send(hello("aws/us-east-1", "abuser")); err != nil {
				counts.count(err)
				return
			}
			for i := 0; ctx.Err() == nil; i++ {
				if err := st.Send(report("aws/us-east-1", true, fmt.Sprintf("r%d", i), plenty)); err != nil {
					counts.count(err)
					return
				}
				counts.reports.Add(1)
			}
		})
		// Idle connections that never say a word, from two sources.
		wg.Go(func() {
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for _, src := range []string{"127.0.0.2", "127.0.0.4"} {
				for range 200 {
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
					if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
						conns = append(conns, c)
					}
				}
			}
			<-ctx.Done()
		})
		return &wg
	}

	var last string
	for attempt := 1; attempt <= 3; attempt++ {
		idle := victimLatencies(t, victim, id, 2*time.Second)
		fctx, stop := context.WithCancel(context.Background())
		var counts floodCounts
		wg := flood(fctx, &counts)
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		busy := victimLatencies(t, victim, id, 3*time.Second)
		elapsed := time.Since(start)
		held := ll.Open()
		stop()
		wg.Wait()
		ratio := float64(p99(busy)) / float64(p99(idle))
		last = fmt.Sprintf("attempt %d: victim p99 idle %v, under the flood %v (%.2f×; p50 %v → %v); abuser calls: %s; agent reports sent %d; connections held %d",
			attempt, p99(idle), p99(busy), ratio, idle[len(idle)/2], busy[len(busy)/2], counts.String(), counts.reports.Load(), held)
		t.Log(last)
		if !limited {
			if attempt == 3 {
				return
			}
			continue
		}
		if counts.byCode(codes.ResourceExhausted) == 0 {
			t.Fatalf("the abuser was never refused RESOURCE_EXHAUSTED: the limits are off? %s", last)
		}
		if other := counts.byCode(codes.Internal) + counts.byCode(codes.Unavailable); other > 0 {
			t.Fatalf("the flood got %d INTERNAL or UNAVAILABLE answers: %s", other, last)
		}
		// Placed: never (above the ceiling). Plans: at their rate.
		r := server.DefaultIdentityLimits.Plan
		if most := int64(r.Burst) + int64(r.PerSecond*(elapsed.Seconds()+1)) + 1; counts.planned.Load() > most {
			t.Errorf("the abuser had %d Plans served in %v; want at most %d", counts.planned.Load(), elapsed, most)
		}
		if ratio <= 3 {
			break
		}
		if attempt == 3 {
			t.Errorf("the victim's p99 under the flood is beyond 3× its idle p99 in every attempt; last: %s", last)
		}
	}
	// The refusals at the ceiling were audited at the per-caller rate,
	// with summaries: a bounded number of entries, not one per refusal.
	if n := e.countUnder(t, "audit/") - auditsBefore; n > 600 {
		t.Errorf("%d audit entries written during the floods; want a bounded number", n)
	}
	// Nothing crashed: the daemon still serves the victim and the store
	// vouches for its state.
	if _, err := victim.Get(as(t, asSubmitter), &pb.GetRequest{Id: id}); err != nil {
		t.Errorf("after the flood: %v", err)
	}
	if err := e.store.Ready(); err != nil {
		t.Errorf("after the flood, the store: %v", err)
	}
}

// discardCodec marshals as protobuf and decodes nothing: a flooding
// client that spends no CPU on what it receives.
type discardCodec struct{}

func (discardCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (discardCodec) Unmarshal([]byte, any) error   { return nil }
func (discardCodec) Name() string                  { return "proto" }

// metadataAs is as() on a context of the caller's choosing.
func metadataAs(ctx context.Context, path string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, principalHeader, "spiffe://"+testTrustDomain+path)
}

// floodCounts counts the abuser's calls by outcome.
type floodCounts struct {
	mu      sync.Mutex
	codes   map[codes.Code]int64
	planned atomic.Int64
	reports atomic.Int64
}

func (c *floodCounts) count(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.codes == nil {
		c.codes = make(map[codes.Code]int64)
	}
	c.codes[status.Code(err)]++
}

func (c *floodCounts) byCode(code codes.Code) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.codes[code]
}

func (c *floodCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ""
	for _, code := range []codes.Code{codes.OK, codes.PermissionDenied, codes.ResourceExhausted, codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Internal} {
		if n := c.codes[code]; n > 0 {
			s += fmt.Sprintf("%s %d, ", code, n)
		}
	}
	return s
}
