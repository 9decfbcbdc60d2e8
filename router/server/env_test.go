package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/convert"
	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// shared is the etcd member of every test that does not stop its own;
// each test keeps its records under a prefix of its own.
var shared *etcdlocal.Member

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var stop func()
	var err error
	shared, stop, err = etcdtest.Shared("server-test-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// env is one classrouted as the daemon wires it: a state store seeded
// with the default catalogue on a real etcd, and a gRPC server with the
// classroute services, health and reflection on a loopback port, with
// clients of it.
type env struct {
	etcd    *clientv3.Client // for reading etcd behind the store's back
	prefix  string
	store   *state.Store
	srv     *server.Server
	grpc    *grpc.Server
	cat     *providers.Catalog
	conn    *grpc.ClientConn
	place   pb.PlacementServiceClient
	catalog pb.CatalogServiceClient
	agents  pb.AgentServiceClient
	health  healthpb.HealthClient
}

// agentTTL is the agent session TTL of the test servers: etcd's least.
const agentTTL = 2 * time.Second

// healthEvery is how often the test servers' WatchHealth polls the store.
const healthEvery = 20 * time.Millisecond

// newEnv starts an env on the shared etcd member, and checks at cleanup
// that it left no goroutine behind.
func newEnv(tb testing.TB) *env {
	tb.Helper()
	return startEnv(tb, shared, true)
}

// startEnv starts an env on member m, under a prefix of the test's own
// (emptied first), with the store options given, and stops it at
// cleanup; with leakCheck, it then checks that no goroutine was left
// behind.
func startEnv(tb testing.TB, m *etcdlocal.Member, leakCheck bool, opts ...state.Option) *env {
	tb.Helper()
	return startEnvFull(tb, m, leakCheck, nil, nil, opts...)
}

// startEnvCatalog is startEnv with the default catalogue changed by
// mutate before it is seeded (nil: unchanged).
func startEnvCatalog(tb testing.TB, m *etcdlocal.Member, leakCheck bool, mutate func(*providers.Catalog), opts ...state.Option) *env {
	tb.Helper()
	return startEnvFull(tb, m, leakCheck, mutate, nil, opts...)
}

// startEnvWith is startEnv with srvOpts added to the server's options.
func startEnvWith(tb testing.TB, m *etcdlocal.Member, leakCheck bool, srvOpts []server.Option, opts ...state.Option) *env {
	tb.Helper()
	return startEnvFull(tb, m, leakCheck, nil, srvOpts, opts...)
}

// startEnvFull is startEnv with the catalogue changed by mutate (nil:
// unchanged) and srvOpts added to the server's options.
func startEnvFull(tb testing.TB, m *etcdlocal.Member, leakCheck bool, mutate func(*providers.Catalog), srvOpts []server.Option, opts ...state.Option) *env {
	tb.Helper()
	cli := etcdtest.Client(tb, m.Endpoints()...)
	if leakCheck {
		// The baseline counts the client's goroutines; the check runs
		// after every other cleanup but the client's Close.
		etcdtest.LeakCheck(tb)
	}
	e := &env{etcd: cli, prefix: "/server-test/" + tb.Name() + "/"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, e.prefix, clientv3.WithPrefix()); err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	opts = append([]state.Option{state.WithPrefix(e.prefix), state.WithLogger(log)}, opts...)
	store, err := state.Open(ctx, cli, router.NewEngine(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	e.store = store
	tb.Cleanup(func() { store.Close() })
	if e.cat, err = providers.Default(); err != nil {
		tb.Fatal(err)
	}
	if mutate != nil {
		mutate(e.cat)
	}
	if ok, err := store.Seed(ctx, e.cat.Providers, e.cat.Regions, e.cat.Tenants); err != nil || !ok {
		tb.Fatalf("Seed: got %v, %v; want true, nil", ok, err)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = server.New(store, log, append([]server.Option{server.WithAgentTTL(agentTTL), server.WithAuthenticator(headerAuthenticator)}, srvOpts...)...)
	g := grpc.NewServer(append(server.ServerOptions(log), e.srv.AuthOptions()...)...)
	e.srv.Register(g)
	e.grpc = g
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	hctx, hcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); server.WatchHealth(hctx, hs, store, healthEvery) }()
	go func() { defer wg.Done(); _ = g.Serve(lis) }()
	tb.Cleanup(func() {
		hcancel()
		g.Stop()
		wg.Wait()
	})

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	e.conn = conn
	e.place = pb.NewPlacementServiceClient(conn)
	e.catalog = pb.NewCatalogServiceClient(conn)
	e.agents = pb.NewAgentServiceClient(conn)
	e.health = healthpb.NewHealthClient(conn)
	return e
}

// principalHeader names the caller of a test call: a SPIFFE ID of trust
// domain testTrustDomain (see as). Calls without it run as the
// development principal, as the loopback daemon does.
const (
	principalHeader = "x-test-principal"
	testTrustDomain = "test.example"
)

// headerAuthenticator authenticates a test call by its principalHeader.
// Tests only: the daemon never trusts a header for identity.
func headerAuthenticator(ctx context.Context) (*authz.Principal, error) {
	ids := metadata.ValueFromIncomingContext(ctx, principalHeader)
	switch len(ids) {
	case 0:
		return server.DevPrincipal, nil
	case 1:
	default:
		return nil, fmt.Errorf("%d %s headers", len(ids), principalHeader)
	}
	return authz.ParseID(ids[0], testTrustDomain)
}

// as returns a context whose calls run as the principal of path (a
// SPIFFE ID path: "/tenant/ke-moh/user/amina", "/admin/grace").
func as(tb testing.TB, path string) context.Context {
	tb.Helper()
	return metadata.AppendToOutgoingContext(ctx(tb), principalHeader, "spiffe://"+testTrustDomain+path)
}

// ctx is a context for one call of a test: bounded, and ended with the test.
func ctx(tb testing.TB) context.Context {
	tb.Helper()
	c, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	tb.Cleanup(cancel)
	return c
}

// stored is what etcd holds under an env's prefix: how many keys, and
// the latest revision that wrote one of them. Any write under the prefix
// changes it, whatever other tests do on the same member.
type stored struct {
	Keys   int64
	MaxRev int64
}

func (e *env) stored(tb testing.TB) stored {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		tb.Fatal(err)
	}
	s := stored{Keys: resp.Count}
	for _, kv := range resp.Kvs {
		s.MaxRev = max(s.MaxRev, kv.ModRevision)
	}
	return s
}

// countUnder counts the keys under the env's prefix + dir ("placements/").
func (e *env) countUnder(tb testing.TB, dir string) int64 {
	tb.Helper()
	resp, err := e.etcd.Get(ctx(tb), e.prefix+dir, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		tb.Fatal(err)
	}
	return resp.Count
}

// placements lists every placement through the API.
func (e *env) placements(tb testing.TB) []*pb.Placement {
	tb.Helper()
	resp, err := e.place.List(ctx(tb), &pb.ListRequest{PageSize: 1000})
	if err != nil {
		tb.Fatalf("List: %v", err)
	}
	return resp.GetPlacements()
}

// unchanged returns a func that fails the test if anything was written
// under the env's prefix, or any placement appeared, since it was called.
func (e *env) unchanged(tb testing.TB) func() {
	tb.Helper()
	before, n := e.stored(tb), len(e.placements(tb))
	return func() {
		tb.Helper()
		if after := e.stored(tb); after != before {
			tb.Errorf("etcd under %s: got %+v; want %+v (nothing stored)", e.prefix, after, before)
		}
		if got := len(e.placements(tb)); got != n {
			tb.Errorf("List: got %d placements; want %d", got, n)
		}
	}
}

// wantCode checks that err is a status of code want and returns it.
func wantCode(tb testing.TB, err error, want codes.Code) *status.Status {
	tb.Helper()
	st, ok := status.FromError(err)
	if !ok {
		tb.Fatalf("got error %v; want a gRPC status", err)
	}
	if st.Code() != want {
		tb.Fatalf("got %v %q; want %v", st.Code(), st.Message(), want)
	}
	return st
}

// wantField checks that err is INVALID_ARGUMENT with a BadRequest that
// names field, and returns that violation's description.
func wantField(tb testing.TB, err error, field string) string {
	tb.Helper()
	st := wantCode(tb, err, codes.InvalidArgument)
	br := detail[*errdetails.BadRequest](tb, st)
	var fields []string
	for _, v := range br.GetFieldViolations() {
		if v.GetField() == field {
			return v.GetDescription()
		}
		fields = append(fields, v.GetField())
	}
	tb.Fatalf("BadRequest fields: got %q; want one of them %q (message %q)", fields, field, st.Message())
	return ""
}

// detail returns the status's one detail of type T.
func detail[T any](tb testing.TB, st *status.Status) T {
	tb.Helper()
	var found []T
	for _, d := range st.Details() {
		if err, ok := d.(error); ok {
			tb.Fatalf("status detail: %v", err)
		}
		if t, ok := d.(T); ok {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		var zero T
		tb.Fatalf("details of %v %q: got %d of type %T; want 1", st.Code(), st.Message(), len(found), zero)
	}
	return found[0]
}

// wantReason checks the status's ErrorInfo.
func wantReason(tb testing.TB, st *status.Status, reason string) *errdetails.ErrorInfo {
	tb.Helper()
	info := detail[*errdetails.ErrorInfo](tb, st)
	if info.GetReason() != reason || info.GetDomain() != server.ErrorDomain {
		tb.Fatalf("ErrorInfo: got %s/%s; want %s/%s", info.GetDomain(), info.GetReason(), server.ErrorDomain, reason)
	}
	return info
}

// wantContains fails unless s contains every one of subs.
func wantContains(tb testing.TB, what, s string, subs ...string) {
	tb.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			tb.Errorf("%s: got %q; want it to contain %q", what, s, sub)
		}
	}
}

// The known-good requests every table mutates.

// aukus is examples/aukus-secret.yaml: SECRET data releasable to the USA,
// Australia and the UK, for the Australian defence tenant. The default
// catalogue can place it.
func aukus() *pb.Workload {
	return &pb.Workload{
		Name:                    "aukus-pillar2-models",
		Tenant:                  "aus-defence",
		Label:                   "SECRET//REL TO USA, AUS, GBR",
		AllowedStorageCountries: []string{"USA", "AUS", "GBR"},
		Resources:               &pb.Resources{MilliCpu: 8000, MemoryMib: 32768, Gpu: 2},
		Replicas:                2,
		Spread:                  &pb.Spread{MinDistanceKm: 1000},
	}
}

func placeRequest(id string) *pb.PlaceRequest {
	return &pb.PlaceRequest{RequestId: id, Workload: aukus()}
}

// kenyaGPU is a workload nothing in the default catalogue can take:
// Kenyan health data that must stay in Kenya, on a GPU, which the one
// Kenyan region does not offer.
func kenyaGPU() *pb.Workload {
	return &pb.Workload{
		Name:                    "kenya-gpu",
		Tenant:                  "ke-moh",
		Label:                   "UNCLASSIFIED",
		AllowedStorageCountries: []string{"KEN"},
		Capabilities:            []string{"gpu"},
		Resources:               &pb.Resources{MilliCpu: 1000, MemoryMib: 1024},
		Replicas:                1,
	}
}

// region returns a catalogue region by key, as the API carries it.
func (e *env) region(tb testing.TB, key string) *pb.Region {
	tb.Helper()
	for i := range e.cat.Regions {
		if r := &e.cat.Regions[i]; r.Key() == key {
			// A deep copy: the tests mutate it.
			return proto.Clone(convert.RegionToProto(router.RegionState{Region: r})).(*pb.Region)
		}
	}
	tb.Fatalf("no region %s in the catalogue", key)
	return nil
}
