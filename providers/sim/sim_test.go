package sim_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/providers/sim"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// The simulator against a real classrouted in-process: the default
// catalogue on an embedded etcd, and the gRPC services on loopback.

const agentTTL = 2 * time.Second

var member *etcdlocal.Member

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var stop func()
	var err error
	member, stop, err = etcdtest.Shared("sim-test-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// daemon is one classrouted; dial connects to it unless blocked.
type daemon struct {
	store   *state.Store
	addr    string
	place   pb.PlacementServiceClient
	blocked atomic.Bool
	mu      sync.Mutex
	conns   []*grpc.ClientConn
}

func startDaemon(tb testing.TB) *daemon {
	tb.Helper()
	cli := etcdtest.Client(tb, member.Endpoints()...)
	prefix := "/sim-test/" + tb.Name() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	store, err := state.Open(ctx, cli, router.NewEngine(), state.WithPrefix(prefix), state.WithLogger(log))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	cat, err := providers.Default()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := store.Seed(ctx, cat.Providers, cat.Regions, cat.Tenants); err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := grpc.NewServer(server.ServerOptions(log)...)
	server.New(store, log, server.WithAgentTTL(agentTTL)).Register(g)
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	tb.Cleanup(func() { g.Stop(); <-done })
	d := &daemon{store: store, addr: lis.Addr().String()}
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	d.place = pb.NewPlacementServiceClient(conn)
	return d
}

func (d *daemon) dial() (*grpc.ClientConn, error) {
	if d.blocked.Load() {
		return nil, errors.New("network down (test)")
	}
	c, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

// cut closes every connection the agents dialled, as a network failure would.
func (d *daemon) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// run starts an agent of the region and returns it, a channel that
// yields its Run's result, and the cancel of its context.
func (d *daemon) run(tb testing.TB, region string, capacity router.Resources, f sim.Faults) (*sim.Agent, <-chan error, context.CancelFunc) {
	tb.Helper()
	a, err := sim.New(sim.Config{Region: region, AgentID: "sim-test", Capacity: capacity, Faults: f, Dial: d.dial,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	done := make(chan struct{})
	go func() { err := a.Run(ctx); close(done); res <- err }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			tb.Errorf("agent still running 5s after its context ended")
		}
	})
	return a, res, cancel
}

// until polls cond every 20ms, failing after d.
func until(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const konza = "ke-gov/konza-1"

func kenya() *pb.Workload {
	return &pb.Workload{
		Name: "kenya-health-records", Tenant: "ke-moh", Label: "UNCLASSIFIED",
		AllowedStorageCountries: []string{"KEN"}, StorageTier: "nearline",
		Resources: &pb.Resources{MilliCpu: 8000, MemoryMib: 32768}, Replicas: 1,
	}
}

func (d *daemon) mustPlace(tb testing.TB, id string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.place.Place(ctx, &pb.PlaceRequest{RequestId: id, Workload: kenya()}); err != nil {
		tb.Fatal(err)
	}
}

func (d *daemon) replica(tb testing.TB, id string) router.ReplicaStatus {
	tb.Helper()
	p, err := d.store.GetPlacement("ke-moh", id)
	if err != nil {
		tb.Fatal(err)
	}
	return p.Replica(0)
}

var capacity = router.Resources{MilliCPU: 64000, MemoryMiB: 262144}

func TestRunsAndReportsFree(t *testing.T) {
	d := startDaemon(t)
	a, _, _ := d.run(t, konza, capacity, sim.Faults{})
	until(t, 3*time.Second, "the agent's first report", func() bool {
		l, _ := d.store.RegionAgent(konza)
		return l != nil && !l.ReportedAt.IsZero()
	})
	d.mustPlace(t, "k1")
	until(t, 3*time.Second, "k1 running", func() bool { return d.replica(t, "k1").State == router.ReplicaRunning })
	if got := a.Running(); !slices.Equal(got, []string{"ke-moh/k1"}) {
		t.Errorf("Running = %v; want [ke-moh/k1]", got)
	}
	until(t, 3*time.Second, "free capacity less k1", func() bool {
		l, _ := d.store.RegionAgent(konza)
		return l != nil && l.Free == router.Resources{MilliCPU: 56000, MemoryMiB: 262144 - 32768}
	})
}

// A placement released while the agent was away is stopped when it
// comes back: it is not in the initial assignment set.
func TestReconnectDropsWhatWasReleasedMeanwhile(t *testing.T) {
	d := startDaemon(t)
	a, _, _ := d.run(t, konza, capacity, sim.Faults{})
	d.mustPlace(t, "gone")
	d.mustPlace(t, "kept")
	until(t, 3*time.Second, "both running", func() bool { return len(a.Running()) == 2 })

	d.blocked.Store(true)
	d.cut()
	until(t, 3*time.Second, "the session gone", func() bool { l, _ := d.store.RegionAgent(konza); return l == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.place.Release(ctx, &pb.ReleaseRequest{Id: "gone"}); err != nil {
		t.Fatal(err)
	}
	d.blocked.Store(false)
	until(t, 3*time.Second, "the agent back", func() bool { l, _ := d.store.RegionAgent(konza); return l != nil })
	until(t, 3*time.Second, "only kept running", func() bool { return slices.Equal(a.Running(), []string{"ke-moh/kept"}) })
}

func TestCrashAfterRuns(t *testing.T) {
	d := startDaemon(t)
	_, res, _ := d.run(t, konza, capacity, sim.Faults{CrashAfterRuns: 1})
	until(t, 3*time.Second, "the agent connected", func() bool { l, _ := d.store.RegionAgent(konza); return l != nil })
	d.mustPlace(t, "k1")
	select {
	case err := <-res:
		if !errors.Is(err, sim.ErrCrashed) {
			t.Fatalf("Run = %v; want ErrCrashed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not crash after its first assignment")
	}
	if st := d.replica(t, "k1").State; st != router.ReplicaRunning {
		t.Errorf("replica %v; want running (acknowledged before the crash)", st)
	}
	until(t, 3*time.Second, "the live record gone", func() bool { l, _ := d.store.RegionAgent(konza); return l == nil })
	if _, h := d.store.RegionAgent(konza); h == nil || !h.Healthy {
		t.Errorf("health record %+v; want kept, healthy", h)
	}
}

// A hung agent keeps its connection but says nothing: its session ends
// when the lease lapses, and it stays down.
func TestHang(t *testing.T) {
	d := startDaemon(t)
	_, res, _ := d.run(t, konza, capacity, sim.Faults{HangAfter: 500 * time.Millisecond})
	until(t, 3*time.Second, "the agent connected", func() bool { l, _ := d.store.RegionAgent(konza); return l != nil })
	start := time.Now()
	select {
	case err := <-res:
		if !errors.Is(err, sim.ErrHung) {
			t.Fatalf("Run = %v; want ErrHung", err)
		}
	case <-time.After(agentTTL + 3*time.Second):
		t.Fatal("the hung agent's session did not end within its TTL")
	}
	if d := time.Since(start); d < agentTTL/2 {
		t.Errorf("hung session ended after %v; want about the TTL %v", d, agentTTL)
	}
	until(t, 3*time.Second, "the live record gone", func() bool { l, _ := d.store.RegionAgent(konza); return l == nil })
}

// An agent that reports for another region is cut off every time and
// writes nothing for either region.
func TestWrongRegion(t *testing.T) {
	d := startDaemon(t)
	const other = "aws/us-gov-west-1"
	_, res, cancel := d.run(t, konza, capacity, sim.Faults{WrongRegion: other})
	time.Sleep(time.Second) // several connects, each denied at its first report
	for _, key := range []string{konza, other} {
		if _, h := d.store.RegionAgent(key); h != nil {
			t.Errorf("%s: health record %+v written", key, h)
		}
	}
	if l, _ := d.store.RegionAgent(other); l != nil {
		t.Errorf("%s: live record %+v", other, l)
	}
	cancel()
	if err := <-res; err != nil {
		t.Errorf("Run = %v; want nil after its context ended", err)
	}
}

func TestRefuseAndFlap(t *testing.T) {
	d := startDaemon(t)
	_, _, _ = d.run(t, konza, capacity, sim.Faults{Refuse: true, Flap: 700 * time.Millisecond})
	until(t, 3*time.Second, "the agent connected", func() bool { l, _ := d.store.RegionAgent(konza); return l != nil })
	d.mustPlace(t, "k1")
	until(t, 3*time.Second, "k1 failed", func() bool { return d.replica(t, "k1").State == router.ReplicaFailed })
	var sawUnhealthy, sawHealthy bool
	until(t, 5*time.Second, "health flapping both ways", func() bool {
		_, h := d.store.RegionAgent(konza)
		if h != nil {
			sawUnhealthy = sawUnhealthy || !h.Healthy
			sawHealthy = sawHealthy || h.Healthy
		}
		return sawUnhealthy && sawHealthy
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := sim.Config{Region: konza, AgentID: "a", Dial: func() (*grpc.ClientConn, error) { return nil, errors.New("no") }}
	for _, tc := range []struct {
		name string
		edit func(*sim.Config)
	}{
		{"no region", func(c *sim.Config) { c.Region = "" }},
		{"no agent id", func(c *sim.Config) { c.AgentID = "" }},
		{"no dial", func(c *sim.Config) { c.Dial = nil }},
		{"negative capacity", func(c *sim.Config) { c.Capacity.GPU = -1 }},
		{"negative fault", func(c *sim.Config) { c.Faults.Flap = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if _, err := sim.New(c); err == nil {
				t.Errorf("New accepted %+v", c)
			}
		})
	}
	if _, err := sim.New(good); err != nil {
		t.Errorf("New(good) = %v", err)
	}
}

// Two tenants' placements of one request id in one region are two
// assignments: the agent runs both, acknowledges each for its tenant,
// and stops only the one released.
func TestSameRequestIDTwoTenants(t *testing.T) {
	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A second Kenyan tenant, which Konza serves too.
	moi := router.Tenant{ID: "ke-moi", Name: "Kenya Ministry of Interior", Nation: "KEN", Sector: "civil", Ceiling: "CUI", Ceilings: []router.SchemeCeiling{{Scheme: "KEN", Level: "CONFIDENTIAL"}}}
	if err := d.store.PutTenant(ctx, &moi); err != nil {
		t.Fatal(err)
	}
	a, _, _ := d.run(t, konza, capacity, sim.Faults{})
	d.mustPlace(t, "k1")
	w := kenya()
	w.Tenant = "ke-moi"
	w.Resources.MilliCpu = 4000
	if _, err := d.place.Place(ctx, &pb.PlaceRequest{RequestId: "k1", Workload: w}); err != nil {
		t.Fatal(err)
	}
	until(t, 3*time.Second, "both k1 running", func() bool {
		return slices.Equal(a.Running(), []string{"ke-moh/k1", "ke-moi/k1"})
	})
	for _, tenant := range []string{"ke-moh", "ke-moi"} {
		until(t, 3*time.Second, tenant+"'s k1 acknowledged running", func() bool {
			p, err := d.store.GetPlacement(tenant, "k1")
			return err == nil && p.Replica(0).State == router.ReplicaRunning
		})
	}
	until(t, 3*time.Second, "free capacity less both", func() bool {
		l, _ := d.store.RegionAgent(konza)
		return l != nil && l.Free == router.Resources{MilliCPU: 64000 - 8000 - 4000, MemoryMiB: 262144 - 2*32768}
	})
	if _, err := d.place.Release(ctx, &pb.ReleaseRequest{Id: "k1", Tenant: "ke-moi"}); err != nil {
		t.Fatal(err)
	}
	until(t, 3*time.Second, "ke-moi's k1 stopped", func() bool { return slices.Equal(a.Running(), []string{"ke-moh/k1"}) })
	if p, _ := d.store.GetPlacement("ke-moh", "k1"); p.State != router.PlacementPlaced || p.Replica(0).State != router.ReplicaRunning {
		t.Errorf("ke-moh's k1: %v, replica %v; want placed and running", p.State, p.Replica(0).State)
	}
}
