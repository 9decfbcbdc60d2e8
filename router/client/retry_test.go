package client_test

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/classroute/classroute/cmd/cmdtest"
	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/client"
)

// A Place whose daemon cannot reach etcd (the etcd process is paused,
// SIGSTOP, as a hung disk or a partition would leave it) fails its first
// tries with an unknown outcome — the transaction may sit in etcd's
// socket and commit when it wakes. The client retries under the same
// request id until etcd is back, and exactly one placement results.
func TestPlaceRetriesAcrossPausedEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and the daemon as processes")
	}
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	etcdAddr := freeAddr()
	etcd, err := startProc(filepath.Join(bin, "classroute-etcd"), "--data-dir", filepath.Join(dir, "etcd"),
		"--client-addr", etcdAddr, "--peer-addr", freeAddr())
	if err != nil {
		t.Fatal(err)
	}
	resume := func() { _ = syscall.Kill(etcd.cmd.Process.Pid, syscall.SIGCONT) }
	t.Cleanup(func() { resume(); etcd.stop() })
	d, err := startDaemon(bin, dir, "--etcd", etcdAddr, "--stale-after", "1s")
	if err != nil {
		t.Fatalf("%v\netcd:\n%s", err, etcd.logs)
	}
	t.Cleanup(d.stop)

	// Every request id the client sends, in order.
	var mu sync.Mutex
	var sent []string
	record := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*pb.PlaceRequest); ok {
			mu.Lock()
			sent = append(sent, r.GetRequestId())
			mu.Unlock()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	c, err := client.New(client.Config{Server: d.addr, DialOptions: []grpc.DialOption{record},
		Retry: client.Retry{Attempts: 40, Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, AttemptTimeout: 1500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := syscall.Kill(etcd.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	pausedFor := 4 * time.Second
	time.AfterFunc(pausedFor, resume)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	placed, err := c.Place(ctx, kenyaHealthRecords())
	if err != nil {
		t.Fatalf("Place across a paused etcd: %v\ndaemon:\n%s", err, cmdtest.Tail(d.logs.String(), 30))
	}
	if took := time.Since(start); took < pausedFor {
		t.Fatalf("Place succeeded after %v, while etcd was paused for %v: the test did not pause it", took, pausedFor)
	}
	mu.Lock()
	defer mu.Unlock()
	if placed.Attempts < 2 || len(sent) != placed.Attempts {
		t.Fatalf("Place: %d attempts, %d requests sent: want a retry, each attempt one request", placed.Attempts, len(sent))
	}
	for i, id := range sent {
		if id != placed.RequestID {
			t.Fatalf("attempt %d sent request id %q; attempt 1 sent %q: a retry must reuse the id", i+1, id, placed.RequestID)
		}
	}
	n := 0
	for p, err := range c.List(ctx, &pb.ListRequest{Tenant: "ke-moh"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if p.GetId() != placed.RequestID {
			t.Errorf("placement %s: only %s was requested", p.GetId(), placed.RequestID)
		}
	}
	if n != 1 {
		t.Fatalf("%d placements of the tenant after %d tries: want exactly 1", n, placed.Attempts)
	}
	t.Logf("placed after %d tries in %v", placed.Attempts, time.Since(start).Round(time.Millisecond))
}

// A refusal is final: it is returned at once, with the request id, and
// not retried.
func TestPlaceRefusalIsNotRetried(t *testing.T) {
	c, err := client.New(client.FromEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := kenyaHealthRecords()
	w.AllowedStorageCountries = []string{"ATA"} // no region in Antarctica
	_, err = c.Place(context.Background(), w, client.WithRequestID("req-refused-once"))
	pe, ok := err.(*client.PlaceError)
	if !ok {
		t.Fatalf("Place of an unplaceable workload: %T %v; want *client.PlaceError", err, err)
	}
	if pe.RequestID != "req-refused-once" || pe.Attempts != 1 || pe.OutcomeUnknown() {
		t.Fatalf("PlaceError %+v: want the request id, one attempt, a known outcome", pe)
	}
}
