//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/metrics"
)

// The daemon of TestIdleConnectionsDoNotKillDaemon runs in a process of
// its own (this test binary again, running TestDaemonProcess), so that
// its descriptor limit is its own.
const (
	daemonEnv       = "CLASSROUTED_TEST_DAEMON_ARGS"
	daemonNofileEnv = "CLASSROUTED_TEST_DAEMON_NOFILE"
)

// TestDaemonProcess is the daemon of another test: with daemonEnv set,
// it sets its descriptor limit (soft and hard) to daemonNofileEnv, as a
// host whose hard limit is that low would, then runs as main does until
// SIGTERM. Otherwise it is skipped.
func TestDaemonProcess(t *testing.T) {
	args, ok := os.LookupEnv(daemonEnv)
	if !ok {
		t.Skip("the daemon of TestIdleConnectionsDoNotKillDaemon")
	}
	n, err := strconv.ParseUint(os.Getenv(daemonNofileEnv), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatal(err)
	}
	if _, err := raiseFDLimit(); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseFlags(strings.Split(args, "\n"), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
		t.Fatal(err)
	}
}

// dialFrom connects to addr from the loopback address src: on Linux all
// of 127.0.0.0/8 is loopback, and each address a source of its own.
func dialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// Many more idle connections than the daemon has descriptors for (the
// issue's attack: connections opened and held without a handshake) take
// neither the daemon nor its embedded etcd down. The daemon runs with
// 1024 descriptors and the caps derived from them (640 connections, 80
// per source); 6,800 idle connections from 20 sources are opened and
// held. A client connected before is served throughout, placements
// still commit (etcd writes), a new scraper still gets the metrics, and
// the refusals are counted there, past the moment etcd first purges its
// old WAL files (30s after it starts: without the caps, etcd finds no
// descriptor to open its WAL directory with, and the daemon exits,
// "failed to purge wal file ... too many open files"). Once the flood
// closes its connections, a client from its busiest source connects.
func TestIdleConnectionsDoNotKillDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	const nofile = 1024
	listen, metricsAddr, healthAddr := etcdtest.FreeAddr(t), etcdtest.FreeAddr(t), etcdtest.FreeAddr(t)
	args := []string{
		"--listen", listen, "--data-dir", t.TempDir(),
		"--embedded-etcd-client", etcdtest.FreeAddr(t), "--embedded-etcd-peer", etcdtest.FreeAddr(t),
		"--metrics-listen", metricsAddr, "--health-listen", healthAddr, "--handshake-timeout", "2m", "--reconcile=false",
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDaemonProcess$", "-test.v")
	started := time.Now()
	cmd.Env = append(os.Environ(), daemonEnv+"="+strings.Join(args, "\n"), daemonNofileEnv+"="+strconv.Itoa(nofile))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", tail(out.String(), 4000))
		}
	})
	alive := func(when string) {
		t.Helper()
		select {
		case err := <-exited:
			t.Fatalf("%s: the daemon exited: %v", when, err)
		default:
		}
	}

	conn, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health, place := healthpb.NewHealthClient(conn), pb.NewPlacementServiceClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := health.Check(c, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		alive("starting")
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving after 60s: %v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seq := 0
	serves := func(when string) {
		t.Helper()
		alive(when)
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if r, err := health.Check(c, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: health %v, %v; want SERVING (the store vouches for its state: etcd answers)", when, r, err)
		}
		seq++
		w := &pb.Workload{Name: "survivor", Tenant: "aus-defence", Label: "UNCLASSIFIED", Scheme: "US", AllowedStorageCountries: []string{"*"},
			Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1}
		if _, err := place.Place(c, &pb.PlaceRequest{RequestId: fmt.Sprintf("survivor-%d", seq), Workload: w}); err != nil {
			t.Fatalf("%s: Place (an etcd write): %v", when, err)
		}
	}
	serves("before the flood")

	// The flood: 3,000 from one source, 200 from each of 19 more.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// A source whose connection is not even accepted (a daemon out of
	// descriptors leaves them in the kernel's backlog) gives up.
	var unanswered int
	flood := func(src string, n int) {
		for range n {
			c, err := dialFrom(ctx, src, listen)
			if err != nil {
				unanswered++
				return
			}
			conns = append(conns, c)
		}
	}
	flood("127.0.0.1", 3000)
	for i := 2; i <= 20; i++ {
		flood(fmt.Sprintf("127.0.0.%d", i), 200)
	}
	t.Logf("%d idle connections open; %d sources gave up", len(conns), unanswered)
	time.Sleep(time.Second) // let the daemon accept them all
	for i := 0; i < 3 || time.Since(started) < 35*time.Second; i++ {
		serves(fmt.Sprintf("%v into the flood", time.Since(started).Round(time.Second)))
		scrapeFrom(t, "127.0.0.100", metricsAddr)
		time.Sleep(time.Second)
	}
	refused := scrapeFrom(t, "127.0.0.100", metricsAddr)
	if refused[`classroute_connections_refused_total{listener="grpc",reason="per_source"}`] == 0 ||
		refused[`classroute_connections_refused_total{listener="grpc",reason="total"}`] == 0 {
		t.Errorf("refusals not counted: per_source %v, total %v",
			refused[`classroute_connections_refused_total{listener="grpc",reason="per_source"}`],
			refused[`classroute_connections_refused_total{listener="grpc",reason="total"}`])
	}
	if open := refused[`classroute_connections_open{listener="grpc"}`]; open > float64(connBudget(nofile)) {
		t.Errorf("%v connections open; want at most %d", open, connBudget(nofile))
	}
	// The health listener has caps of its own (auxConns).
	for range auxConns.PerSource + 4 {
		c, err := dialFrom(ctx, "127.0.0.50", healthAddr)
		if err != nil {
			t.Fatalf("health listener: %v", err)
		}
		conns = append(conns, c)
	}
	deadline = time.Now().Add(5 * time.Second)
	for scrapeFrom(t, "127.0.0.100", metricsAddr)[`classroute_connections_refused_total{listener="health",reason="per_source"}`] != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to the health listener from one source: want 4 refused", auxConns.PerSource+4)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The flood ends: its connections are counted out, and a client
	// from its busiest source gets in.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	serves("after the flood")
	fresh, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dialFrom(ctx, "127.0.0.1", a) }))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	c, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	// (Waiting for ready: the daemon counts a connection out when it
	// sees it closed, a moment after the client closes it.)
	if _, err := healthpb.NewHealthClient(fresh).Check(c, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Errorf("a new client from the flooding source: %v", err)
	}
}

// scrape reads the daemon's /metrics: each sample by name and labels.
func scrape(tb testing.TB, addr string) map[string]float64 {
	tb.Helper()
	return scrapeWith(tb, http.DefaultClient, addr)
}

// scrapeFrom is scrape from the loopback address src.
func scrapeFrom(tb testing.TB, src, addr string) map[string]float64 {
	tb.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, a string) (net.Conn, error) { return dialFrom(ctx, src, a) }}
	defer tr.CloseIdleConnections()
	return scrapeWith(tb, &http.Client{Transport: tr}, addr)
}

func scrapeWith(tb testing.TB, client *http.Client, addr string) map[string]float64 {
	tb.Helper()
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// The metrics listener: a connection that sends no request is closed
// after the handshake timeout, and one source holds at most its share.
func TestMetricsListenerLimits(t *testing.T) {
	cfg := &Config{MetricsListen: "127.0.0.1:0", HandshakeTimeout: 300 * time.Millisecond}
	m := metrics.New()
	// serveMetrics listens on the address given: find out which.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MetricsListen = lis.Addr().String()
	lis.Close()
	stop, err := serveMetrics(cfg, m, m.Handler(func() error { return nil }), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	ctx := context.Background()
	silent, err := dialFrom(ctx, "127.0.0.1", cfg.MetricsListen)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := silent.Write([]byte("GET /metr")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(silent); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("a connection that never finished its request is open after 5s; want it closed after %v", cfg.HandshakeTimeout)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v; want about %v", d, cfg.HandshakeTimeout)
	}

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range auxConns.PerSource + 5 {
		c, err := dialFrom(ctx, "127.0.0.2", cfg.MetricsListen)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for scrapeFrom(t, "127.0.0.3", cfg.MetricsListen)[`classroute_connections_refused_total{listener="metrics",reason="per_source"}`] != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections from one source: want 5 refused", len(held))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
