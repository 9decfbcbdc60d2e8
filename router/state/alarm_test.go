package state_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/metrics"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
)

// TestEtcdNoSpaceAlarm fills an etcd member's quota: the store reports
// the NOSPACE alarm (Ready, so the health service says NOT_SERVING and
// Place is UNAVAILABLE, saying why), the metric shows it, and once an
// operator frees space and disarms the alarm the daemon serves again.
func TestEtcdNoSpaceAlarm(t *testing.T) {
	ep := etcdtest.QuotaMember(t, 2<<20)
	cli := etcdtest.Client(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := metrics.New()
	s, err := state.Open(ctx, cli, router.NewEngine(), state.WithProgressEvery(50*time.Millisecond), state.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Seed(ctx, []router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{army()}); err != nil {
		t.Fatal(err)
	}
	m.AddStore(s)
	hs := health.NewServer()
	go server.WatchHealth(ctx, hs, s, 20*time.Millisecond)
	healthz := httptest.NewServer(m.Handler(s.Ready))
	t.Cleanup(healthz.Close)
	serving := func() healthpb.HealthCheckResponse_ServingStatus {
		resp, err := hs.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	alarmGauge := func() float64 {
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mfs {
			if f.GetName() == "classroute_etcd_alarm" {
				for _, g := range f.GetMetric() {
					if g.GetLabel()[0].GetValue() == "nospace" {
						return g.GetGauge().GetValue()
					}
				}
			}
		}
		t.Fatal("classroute_etcd_alarm{type=nospace} not exported")
		return 0
	}
	eventually(t, 10*time.Second, func() (bool, string) { return serving() == healthpb.HealthCheckResponse_SERVING, serving().String() })
	if _, err := s.Place(ctx, "before", secretWorkload(t, "w")); err != nil {
		t.Fatal(err)
	}

	// Fill etcd until it refuses writes.
	big := strings.Repeat("x", 128<<10)
	for i := 0; ; i++ {
		_, err := cli.Put(ctx, fmt.Sprintf("/filler/%d", i), big)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			t.Logf("etcd out of space after %d puts of 128 KiB", i)
			break
		}
		if err != nil || i > 400 {
			t.Fatalf("put %d: %v; want NOSPACE within 400", i, err)
		}
		// etcd weighs its quota against the backend's size, which grows
		// as its batches commit (every 100ms): on a loaded machine the puts
		// can outrun it. Let the batches catch up now and then.
		if i%16 == 15 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "NOSPACE"), fmt.Sprint(err)
	})
	if st := serving(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		eventually(t, 10*time.Second, func() (bool, string) {
			return serving() == healthpb.HealthCheckResponse_NOT_SERVING, serving().String()
		})
	}
	if v := alarmGauge(); v != 1 {
		t.Errorf("classroute_etcd_alarm{type=nospace} = %v; want 1", v)
	}
	resp, err := http.Get(healthz.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "NOSPACE") || !strings.Contains(string(body), "disarm") {
		t.Errorf("/healthz: %d %q; want 503 saying NOSPACE and what to do", resp.StatusCode, body)
	}
	_, err = s.Place(ctx, "during", secretWorkload(t, "w"))
	if !errors.Is(err, router.ErrUnavailable) || !strings.Contains(err.Error(), "NOSPACE") {
		t.Errorf("Place while etcd is full: %v; want unavailable, saying NOSPACE", err)
	}
	t.Logf("while full: %v", err)

	// The operator frees space: delete, compact, defragment, disarm.
	if _, err := cli.Delete(ctx, "/filler/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, st.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() (bool, string) { err := s.Ready(); return err == nil, fmt.Sprint(err) })
	eventually(t, 10*time.Second, func() (bool, string) { return serving() == healthpb.HealthCheckResponse_SERVING, serving().String() })
	if v := alarmGauge(); v != 0 {
		t.Errorf("classroute_etcd_alarm{type=nospace} after disarm = %v; want 0", v)
	}
	if _, err := s.Place(ctx, "after", secretWorkload(t, "w")); err != nil {
		t.Errorf("Place after recovery: %v", err)
	}
}
