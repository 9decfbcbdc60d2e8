//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/metrics"
)

// get fetches url and returns its status and body.
func get(tb testing.TB, url string) (int, []byte) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, body
}

// The debug listener serves pprof and nothing else, closes a connection
// that sends no request in time, and holds one source to its share.
func TestDebugListener(t *testing.T) {
	cfg := &Config{DebugListen: etcdtest.FreeAddr(t), HandshakeTimeout: 300 * time.Millisecond}
	m := metrics.New()
	stop, err := serveDebug(cfg, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	base := "http://" + cfg.DebugListen

	if code, body := get(t, base+"/debug/pprof/"); code != http.StatusOK || !bytes.Contains(body, []byte("goroutine")) {
		t.Errorf("/debug/pprof/: %d %.200q; want 200 and the profile index", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/heap?debug=1"); code != http.StatusOK || !bytes.Contains(body, []byte("heap profile")) {
		t.Errorf("/debug/pprof/heap?debug=1: %d %.200q; want 200 and a heap profile", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/cmdline"); code != http.StatusOK || !strings.Contains(string(body), "classrouted") {
		t.Errorf("/debug/pprof/cmdline: %d %q; want 200 and this binary's command line", code, body)
	}
	// A CPU profile is gzipped protobuf.
	if code, body := get(t, base+"/debug/pprof/profile?seconds=1"); code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Errorf("/debug/pprof/profile?seconds=1: %d %.200q; want 200 and a gzipped profile", code, body)
	}
	for _, path := range []string{"/", "/metrics", "/healthz", "/debug/vars"} {
		if code, _ := get(t, base+path); code != http.StatusNotFound {
			t.Errorf("%s: %d; want 404: the debug listener serves pprof only", path, code)
		}
	}

	ctx := context.Background()
	silent, err := dialFrom(ctx, "127.0.0.1", cfg.DebugListen)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := silent.Write([]byte("GET /debug/pp")); err != nil {
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

	hs := httptest.NewServer(m.Handler(func() error { return nil }))
	defer hs.Close()
	scraped := strings.TrimPrefix(hs.URL, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range debugConns.PerSource + 2 {
		c, err := dialFrom(ctx, "127.0.0.2", cfg.DebugListen)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, scraped)[`classroute_connections_refused_total{listener="debug",reason="per_source"}`] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections from one source: want 2 refused, counted for the debug listener", len(held))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The daemon serves pprof on -debug-listen (off by default:
// TestDebugListenOffByDefault).
func TestDaemonServesPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	listen, debug := etcdtest.FreeAddr(t), etcdtest.FreeAddr(t)
	cfg, err := parseFlags([]string{
		"--listen", listen, "--data-dir", t.TempDir(),
		"--embedded-etcd-client", etcdtest.FreeAddr(t), "--embedded-etcd-peer", etcdtest.FreeAddr(t),
		"--metrics-listen", "", "--reconcile=false", "--debug-listen", debug,
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() { exited <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	defer func() {
		cancel()
		if err := <-exited; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	conn, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		r, err := healthpb.NewHealthClient(conn).Check(c, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("daemon exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving after 60s: %v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The daemon's own goroutines: the state store's among them.
	if code, body := get(t, "http://"+debug+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !bytes.Contains(body, []byte("router/state")) {
		t.Fatalf("goroutine profile: %d %.300q; want 200 and the daemon's goroutines", code, body)
	}
}
