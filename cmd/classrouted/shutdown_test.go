//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/version"
)

// buildDaemon builds classrouted into a directory of the test's.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "classrouted")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The built daemon, run as an operator runs it: --version answers and
// exits; the daemon serves, its metrics cover gRPC's methods, the build
// and the store's gauges; the embedded etcd's logs come out in the
// daemon's format (text or JSON), at its level; and a SIGTERM stops it
// cleanly, with no error logged (etcd logged four error lines with
// stack traces, its listeners' ends, in JSON of its own).
func TestBuiltDaemonLogsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the daemon")
	}
	bin := buildDaemon(t)
	out, err := exec.Command(bin, "--version").Output()
	if want := "classrouted " + version.Get().Version + " "; err != nil || !strings.HasPrefix(string(out), want) {
		t.Errorf("classrouted --version: %q, %v; want a line starting %q, exit 0", out, err, want)
	}
	for _, tc := range []struct{ format, level string }{{"text", "info"}, {"json", "debug"}} {
		t.Run(tc.format, func(t *testing.T) {
			lines := runAndStop(t, bin, "--log-format", tc.format, "--log-level", tc.level)
			etcdLines := 0
			for _, l := range lines {
				var level, component string
				switch tc.format {
				case "text":
					if !strings.HasPrefix(l, "time=") || !strings.Contains(l, " level=") {
						t.Errorf("not a line of the daemon's text format: %s", l)
						continue
					}
					level = strings.Fields(strings.SplitN(l, " level=", 2)[1])[0]
					if strings.Contains(l, " component=etcd") {
						component = "etcd"
					}
				case "json":
					var rec map[string]any
					if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["time"] == nil || rec["msg"] == nil {
						t.Errorf("not a line of the daemon's JSON format: %s", l)
						continue
					}
					level, _ = rec["level"].(string)
					component, _ = rec["component"].(string)
				}
				if level != "DEBUG" && level != "INFO" && level != "WARN" {
					t.Errorf("logged at %q: %s", level, l)
				}
				if component == "etcd" {
					etcdLines++
				}
			}
			if etcdLines == 0 {
				t.Errorf("no line of the embedded etcd's among the daemon's %d", len(lines))
			}
		})
	}
}

// runAndStop runs the daemon with args (and its own addresses and data
// directory), places a workload and scrapes its metrics, then stops it
// with SIGTERM and returns what it logged, line by line. The daemon
// must exit 0.
func runAndStop(t *testing.T, bin string, args ...string) []string {
	t.Helper()
	listen, metricsAddr := etcdtest.FreeAddr(t), etcdtest.FreeAddr(t)
	cmd := exec.Command(bin, append([]string{
		"--listen", listen, "--metrics-listen", metricsAddr, "--data-dir", t.TempDir(),
		"--embedded-etcd-client", etcdtest.FreeAddr(t), "--embedded-etcd-peer", etcdtest.FreeAddr(t),
	}, args...)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", tail(logs.String(), 6000))
		}
	}()

	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + metricsAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("the daemon exited before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon is not ready after 60s")
		}
	}
	conn, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := &pb.Workload{
		Name: "aukus-pillar2-models", Tenant: "aus-defence", Label: "SECRET//REL TO USA, AUS, GBR",
		AllowedStorageCountries: []string{"USA", "AUS", "GBR"},
		Resources:               &pb.Resources{MilliCpu: 1000, MemoryMib: 1024}, Replicas: 1,
	}
	// /healthz answers once the store is ready, a moment before the gRPC
	// listener opens: wait for it rather than fail on a refused dial.
	if _, err := pb.NewPlacementServiceClient(conn).Place(ctx, &pb.PlaceRequest{RequestId: "r1", Workload: w}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("Place: %v", err)
	}

	// The metrics: gRPC's for the calls made and those not, the build,
	// the store's gauges; the reconciler leads here, so it chains.
	m := scrape(t, metricsAddr)
	for _, name := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Place",grpc_service="classroute.v1.PlacementService",grpc_type="unary"}`,
		`grpc_server_started_total{grpc_method="Release",grpc_service="classroute.v1.PlacementService",grpc_type="unary"}`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="grpc.health.v1.Health",grpc_type="unary"}`,
		`grpc_server_handling_seconds_count{grpc_method="Place",grpc_service="classroute.v1.PlacementService",grpc_type="unary"}`,
		`classroute_placements_total{outcome="placed"}`,
		`classroute_accreditation_expiry_seconds`,
		`classroute_store_ready`, `classroute_reconciler_leader`, `classroute_placements_violating`, `classroute_placements_stranded`,
	} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s not exported", name)
		}
	}
	if v := m[`grpc_server_handled_total{grpc_code="OK",grpc_method="Place",grpc_service="classroute.v1.PlacementService",grpc_type="unary"}`]; v != 1 {
		t.Errorf("Place handled OK %v times; want 1", v)
	}
	found := false
	for k, v := range m {
		if strings.HasPrefix(k, "classroute_build_info{") && v == 1 && strings.Contains(k, `version="`+version.Get().Version+`"`) {
			found = true
		}
	}
	if !found {
		t.Error("classroute_build_info{version,revision,go_version} 1 not exported")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if v, ok := scrape(t, metricsAddr)["classroute_audit_chain_lag_seconds"]; ok && v < 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("classroute_audit_chain_lag_seconds not exported at a small value by the leading daemon")
			break
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("after SIGTERM: %v; want exit 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon has not exited 30s after SIGTERM")
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Error("the daemon logged nothing")
	}
	return lines
}
