package server_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// A Place is traced: otelgrpc's server span, and within it the store's
// decide and commit spans, its children in the same trace.
func TestPlaceTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	cli := etcdtest.Client(t, shared.Endpoints()...)
	prefix := "/server-test/" + t.Name() + "/"
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Delete(c, prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	store, err := state.Open(c, cli, router.NewEngine(), state.WithPrefix(prefix), state.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cat, err := providers.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Seed(c, cat.Providers, cat.Regions, cat.Tenants); err != nil {
		t.Fatal(err)
	}
	srv := server.New(store, log, server.WithAuthenticator(server.DevAuthenticator))
	g := grpc.NewServer(append(append(server.TraceOptions(tp), server.ServerOptions(log)...), srv.AuthOptions()...)...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	if _, err := pb.NewPlacementServiceClient(conn).Place(c, &pb.PlaceRequest{RequestId: "traced-1", Workload: aukus()}); err != nil {
		t.Fatal(err)
	}
	// The server span ends after the answer is sent: wait for it.
	var rpc *tracetest.SpanStub
	for deadline := time.Now().Add(5 * time.Second); rpc == nil; time.Sleep(10 * time.Millisecond) {
		for _, s := range exp.GetSpans() {
			if s.Name == "classroute.v1.PlacementService/Place" && s.SpanKind == trace.SpanKindServer {
				rpc = &s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server span of Place among %v", names(exp.GetSpans()))
		}
	}
	children := map[string]int{}
	for _, s := range exp.GetSpans() {
		if s.Parent.SpanID() == rpc.SpanContext.SpanID() && s.SpanContext.TraceID() == rpc.SpanContext.TraceID() {
			children[s.Name]++
		}
	}
	if children["decide"] != 1 || children["commit"] != 1 {
		t.Errorf("the Place span's children: %v; want one decide and one commit (spans: %v)", children, names(exp.GetSpans()))
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
