package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/metrics"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
	"github.com/classroute/classroute/router/version"
)

// env is a store on a real etcd with the default catalogue, a gRPC
// server with the metrics interceptor, and the metrics HTTP endpoint.
type env struct {
	store   *state.Store
	place   pb.PlacementServiceClient
	metrics string // base URL
	conn    *grpc.ClientConn
	grpc    *grpc.Server
}

func newEnv(t *testing.T) *env { return newEnvCatalog(t, nil) }

// newEnvCatalog is newEnv with the default catalogue changed by mutate
// (nil: unchanged) before it is loaded.
func newEnvCatalog(t *testing.T, mutate func(*providers.Catalog)) *env {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	member := etcdtest.Member(t)
	cli := etcdtest.Client(t, member.Endpoints()...)

	m := metrics.New()
	log := slog.New(slog.DiscardHandler)
	store, err := state.Open(c, cli, router.NewEngine(), state.WithObserver(m), state.WithProgressEvery(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cat, err := providers.Default()
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(cat)
	}
	if _, err := store.Seed(c, cat.Providers, cat.Regions, cat.Tenants); err != nil {
		t.Fatal(err)
	}
	m.AddStore(store)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(m.ServerOptions(), server.ServerOptions(log)...)...)
	server.New(store, log).Register(g)
	m.InitializeMethods(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	hs := httptest.NewServer(m.Handler(store.Ready))
	t.Cleanup(hs.Close)
	return &env{store: store, place: pb.NewPlacementServiceClient(conn), metrics: hs.URL, conn: conn, grpc: g}
}

// scrape reads /metrics and returns each sample by name and labels,
// "name{k=v,...}"; a histogram as its _count.
func (e *env) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func aukus() *pb.Workload {
	return &pb.Workload{
		Name: "aukus-pillar2-models", Tenant: "aus-defence", Label: "SECRET//REL TO USA, AUS, GBR",
		AllowedStorageCountries: []string{"USA", "AUS", "GBR"},
		Resources:               &pb.Resources{MilliCpu: 1000, MemoryMib: 1024},
		Replicas:                2,
		Spread:                  &pb.Spread{MinDistanceKm: 1000},
	}
}

// kenyaGPU cannot be placed: Kenyan data on a GPU, which Konza lacks.
func kenyaGPU() *pb.Workload {
	return &pb.Workload{
		Name: "kenya-gpu", Tenant: "ke-moh", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"KEN"},
		Capabilities: []string{"gpu"}, Resources: &pb.Resources{MilliCpu: 1000, MemoryMib: 1024}, Replicas: 1,
	}
}

// A placement, a refusal and an invalid request move the counters and
// histograms they should; the gauges read the store when scraped.
func TestScrape(t *testing.T) {
	e := newEnv(t)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := e.scrape(t)
	if _, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "a1", Workload: aukus()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "k1", Workload: kenyaGPU()}); err == nil {
		t.Fatal("kenya-gpu placed")
	}
	if _, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "bad id!", Workload: aukus()}); err == nil {
		t.Fatal("a bad request id accepted")
	}
	if _, err := e.place.Get(c, &pb.GetRequest{Id: "a1"}); err != nil {
		t.Fatal(err) // not a Place: counts nothing
	}
	time.Sleep(100 * time.Millisecond) // a freshness read or two
	after := e.scrape(t)

	moved := map[string]float64{
		`classroute_placements_total{outcome=placed}`:                1,
		`classroute_placements_total{outcome=refused}`:               1,
		`classroute_placements_total{outcome=invalid}`:               1,
		`classroute_placements_total{outcome=unavailable}`:           0,
		`classroute_refusals_total{reason=no_eligible_region}`:       1,
		`classroute_refusal_region_reasons_total{code=residency}`:    1,
		`classroute_refusal_region_reasons_total{code=capability}`:   1,
		`classroute_decision_duration_seconds_count`:                 2, // the refusal is decided too
		`classroute_commit_duration_seconds{result=committed}_count`: 1,
		`classroute_commit_duration_seconds{result=failed}_count`:    0,
	}
	for key, want := range moved {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v; want %v", key, got, want)
		}
	}
	gauges := map[string]func(float64) bool{
		"classroute_store_ready":                 func(v float64) bool { return v == 1 },
		"classroute_etcd_reachable":              func(v float64) bool { return v == 1 },
		"classroute_cache_revision":              func(v float64) bool { return v >= float64(e.store.Revision()-1) && v > 0 },
		"classroute_cache_revision_lag":          func(v float64) bool { return v >= 0 && v < 5 },
		"classroute_cache_freshness_age_seconds": func(v float64) bool { return v >= 0 && v < 1 },
		"classroute_agents_connected":            func(v float64) bool { return v == 0 },
		"classroute_placements_stranded":         func(v float64) bool { return v == 0 },
		"classroute_placements_violating":        func(v float64) bool { return v == 0 },
		"classroute_reconciler_leader":           func(v float64) bool { return v == 0 }, // the test runs no reconciler
		"classroute_etcd_alarm{type=nospace}":    func(v float64) bool { return v == 0 },
		"classroute_etcd_alarm{type=corrupt}":    func(v float64) bool { return v == 0 },
	}
	cat, err := providers.Default()
	if err != nil {
		t.Fatal(err)
	}
	var nearest time.Time
	for _, r := range cat.Regions {
		if a := r.Accreditation; !a.Revoked && (nearest.IsZero() || a.Expires.Before(nearest)) {
			nearest = a.Expires
		}
	}
	gauges["classroute_accreditation_expiry_seconds"] = func(v float64) bool { return v > 0 && math.Abs(time.Until(nearest).Seconds()-v) < 5 }
	for name, ok := range gauges {
		if v, found := after[name]; !found || !ok(v) {
			t.Errorf("%s = %v (exported: %v)", name, v, found)
		}
	}
	if v, found := after["classroute_audit_chain_lag_seconds"]; found {
		t.Errorf("classroute_audit_chain_lag_seconds = %v exported where no chainer runs", v)
	}
	if _, found := after["go_goroutines"]; !found {
		t.Error("the Go runtime's metrics are not exported")
	}

	// Names and help follow Prometheus' conventions.
	mfs, err := metrics.New().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "classroute_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}

	// /healthz follows the store: ok while ready, 503 once closed.
	if code, body := get(t, e.metrics+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz while ready: %d %q", code, body)
	}
	e.store.Close()
	if code, body := get(t, e.metrics+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store closed") {
		t.Errorf("/healthz after Close: %d %q; want 503 saying why", code, body)
	}
	if v := e.scrape(t)["classroute_store_ready"]; v != 0 {
		t.Errorf("classroute_store_ready after Close = %v; want 0", v)
	}
}

// statsSource is a metrics.Source reporting fixed stats.
type statsSource state.Stats

func (s statsSource) Stats() state.Stats { return state.Stats(s) }

// The accreditation expiry and audit chain lag gauges are exported when
// the store has something to say: a region with an expiry, a chainer
// running here.
func TestExpiryAndChainLagGauges(t *testing.T) {
	for _, tc := range []struct {
		name                string
		st                  state.Stats
		expiry, lag         float64
		hasExpiry, hasChain bool
	}{
		{"nothing to say", state.Stats{}, 0, 0, false, false},
		{"expiring in a day", state.Stats{AccreditationExpiry: 24 * time.Hour, HasAccreditationExpiry: true}, 86400, 0, true, false},
		{"expired an hour ago", state.Stats{AccreditationExpiry: -time.Hour, HasAccreditationExpiry: true}, -3600, 0, true, false},
		{"chaining, caught up", state.Stats{AuditChaining: true}, 0, 0, false, true},
		{"chaining, behind", state.Stats{AuditChaining: true, AuditChainLag: 90 * time.Second}, 0, 90, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			m.AddStore(statsSource(tc.st))
			hs := httptest.NewServer(m.Handler(func() error { return nil }))
			defer hs.Close()
			got := (&env{metrics: hs.URL}).scrape(t)
			if v, ok := got["classroute_accreditation_expiry_seconds"]; ok != tc.hasExpiry || v != tc.expiry {
				t.Errorf("classroute_accreditation_expiry_seconds = %v (exported: %v); want %v (%v)", v, ok, tc.expiry, tc.hasExpiry)
			}
			if v, ok := got["classroute_audit_chain_lag_seconds"]; ok != tc.hasChain || v != tc.lag {
				t.Errorf("classroute_audit_chain_lag_seconds = %v (exported: %v); want %v (%v)", v, ok, tc.lag, tc.hasChain)
			}
		})
	}
}

// classroute_etcd_alarm is 1 for each alarm etcd reports, 0 for the
// others. (router/state's TestEtcdNoSpaceAlarm raises a real one.)
func TestEtcdAlarmGauge(t *testing.T) {
	for _, tc := range []struct {
		alarms           []string
		nospace, corrupt float64
	}{
		{nil, 0, 0},
		{[]string{"nospace"}, 1, 0},
		{[]string{"corrupt", "nospace"}, 1, 1},
	} {
		m := metrics.New()
		m.AddStore(statsSource{EtcdAlarms: tc.alarms})
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range mfs {
			if f.GetName() == "classroute_etcd_alarm" {
				for _, s := range f.GetMetric() {
					got[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
				}
			}
		}
		if got["nospace"] != tc.nospace || got["corrupt"] != tc.corrupt || len(got) != 2 {
			t.Errorf("alarms %v: classroute_etcd_alarm %v; want nospace %v, corrupt %v", tc.alarms, got, tc.nospace, tc.corrupt)
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// BenchmarkObserver is what the metrics add to each Place: two clock
// reads and two histogram observations (compare BenchmarkPlace in
// router/state, about a millisecond).
func BenchmarkObserver(b *testing.B) {
	m := metrics.New()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t0 := time.Now()
			m.Decided(time.Since(t0))
			t0 = time.Now()
			m.Committed(time.Since(t0), true)
		}
	})
}

// What the limits refuse is counted by fixed names: every limit the
// server reports, each listener and cap; anything else counts as other,
// so no caller, tenant or region can become a label.
func TestLimitMetrics(t *testing.T) {
	m := metrics.New()
	for _, l := range server.LimitNames {
		m.Limited(l)
	}
	m.Limited("tenant/ke-moh/user/amina")
	refused := m.ConnRefused("grpc")
	refused(server.RefusedTotal)
	refused(server.RefusedPerSource)
	refused(server.RefusedPerSource)
	m.ConnRefused("10.0.0.1:7400")("total")
	m.AddListener("metrics", func() int { return 7 })
	hs := httptest.NewServer(m.Handler(func() error { return nil }))
	defer hs.Close()
	got := (&env{metrics: hs.URL}).scrape(t)
	want := map[string]float64{
		"classroute_rate_limited_total{limit=other}":                              1,
		"classroute_connections_refused_total{listener=grpc,reason=total}":        1,
		"classroute_connections_refused_total{listener=grpc,reason=per_source}":   2,
		"classroute_connections_refused_total{listener=other,reason=total}":       1,
		"classroute_connections_refused_total{listener=health,reason=per_source}": 0,
		"classroute_connections_open{listener=metrics}":                           7,
	}
	for _, l := range server.LimitNames {
		want["classroute_rate_limited_total{limit="+l+"}"] = 1
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
	for k := range got {
		if strings.Contains(k, "amina") || strings.Contains(k, "10.0.0.1") {
			t.Errorf("a caller or address became a label: %s", k)
		}
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "classroute_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// A Place refused by its tenant's policy is refused, with its reason:
// above the tenant's clearance ceiling, or beyond its placement cap.
// (The ceiling's refusal was counted as an error.)
func TestTenantPolicyRefusals(t *testing.T) {
	e := newEnvCatalog(t, func(cat *providers.Catalog) {
		for i := range cat.Tenants {
			if cat.Tenants[i].ID == "aus-defence" {
				cat.Tenants[i].MaxPlacements = 1
			}
		}
	})
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := e.scrape(t)
	above := kenyaGPU()
	above.Label = "SECRET//REL TO USA, KEN" // ke-moh's ceiling is CUI
	if _, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "above-1", Workload: above}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Place above the ceiling: %v; want PERMISSION_DENIED", err)
	}
	if _, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "a1", Workload: aukus()}); err != nil {
		t.Fatal(err)
	}
	second := aukus()
	second.Name = "aukus-second"
	if _, err := e.place.Place(c, &pb.PlaceRequest{RequestId: "a2", Workload: second}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Place beyond the cap: %v; want RESOURCE_EXHAUSTED", err)
	}
	after := e.scrape(t)
	moved := map[string]float64{
		`classroute_placements_total{outcome=placed}`:            1,
		`classroute_placements_total{outcome=refused}`:           2,
		`classroute_placements_total{outcome=error}`:             0,
		`classroute_placements_total{outcome=limited}`:           0,
		`classroute_refusals_total{reason=above_ceiling}`:        1,
		`classroute_refusals_total{reason=placement_cap}`:        1,
		`classroute_refusals_total{reason=no_eligible_region}`:   0,
		`classroute_refusals_total{reason=spread_unsatisfiable}`: 0,
	}
	for key, want := range moved {
		if _, ok := after[key]; !ok {
			t.Errorf("%s not exported", key)
		}
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v; want %v", key, got, want)
		}
	}
}

// grpcKey is the scrape key of one of gRPC's metrics of a method.
func grpcKey(name, typ, service, method string, more ...string) string {
	labels := append([]string{"grpc_method=" + method, "grpc_service=" + service, "grpc_type=" + typ}, more...)
	slices.Sort(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}

// gRPC's standard metrics cover every method the server registers: each
// is exported at zero before any call, and each call of each method
// (here with an empty request, whatever it answers) moves its started
// and handled counters and its handling-time histogram by one. The
// labels name methods and codes only.
func TestEveryMethodCounted(t *testing.T) {
	e := newEnv(t)
	type method struct{ typ, service, name, full string }
	var methods []method
	streams := map[string]grpc.MethodInfo{}
	for svc, info := range e.grpc.GetServiceInfo() {
		for _, mi := range info.Methods {
			typ := "unary"
			switch {
			case mi.IsClientStream && mi.IsServerStream:
				typ = "bidi_stream"
			case mi.IsClientStream:
				typ = "client_stream"
			case mi.IsServerStream:
				typ = "server_stream"
			}
			full := "/" + svc + "/" + mi.Name
			methods = append(methods, method{typ, svc, mi.Name, full})
			streams[full] = mi
		}
	}
	if len(methods) < 20 {
		t.Fatalf("%d methods registered; want every classroute service's", len(methods))
	}
	before := e.scrape(t)
	for _, m := range methods {
		for _, k := range []string{
			grpcKey("grpc_server_started_total", m.typ, m.service, m.name),
			grpcKey("grpc_server_handled_total", m.typ, m.service, m.name, "grpc_code=OK"),
			grpcKey("grpc_server_handled_total", m.typ, m.service, m.name, "grpc_code=Unavailable"),
			grpcKey("grpc_server_handling_seconds", m.typ, m.service, m.name) + "_count",
		} {
			if v, ok := before[k]; !ok || v != 0 {
				t.Errorf("before any call: %s = %v (exported: %v); want 0", k, v, ok)
			}
		}
	}

	for _, m := range methods {
		c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if m.typ == "unary" {
			_ = e.conn.Invoke(c, m.full, &emptypb.Empty{}, &emptypb.Empty{})
		} else {
			mi := streams[m.full]
			s, err := e.conn.NewStream(c, &grpc.StreamDesc{ServerStreams: mi.IsServerStream, ClientStreams: mi.IsClientStream}, m.full)
			if err == nil {
				_ = s.SendMsg(&emptypb.Empty{})
				_ = s.CloseSend()
				for s.RecvMsg(&emptypb.Empty{}) == nil {
				}
			}
		}
		cancel()
	}

	// A stream's handler ends after its client has gone: wait for them.
	var after map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		after = e.scrape(t)
		missing := []string{}
		for _, m := range methods {
			handled := 0.0
			for k, v := range after {
				if strings.HasPrefix(k, "grpc_server_handled_total{") && strings.Contains(k, "grpc_method="+m.name+",") && strings.Contains(k, "grpc_service="+m.service+",") {
					handled += v
				}
			}
			if handled != 1 {
				missing = append(missing, fmt.Sprintf("%s handled %v times", m.full, handled))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one call of each method: %s; want each once", strings.Join(missing, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range methods {
		for _, k := range []string{
			grpcKey("grpc_server_started_total", m.typ, m.service, m.name),
			grpcKey("grpc_server_handling_seconds", m.typ, m.service, m.name) + "_count",
		} {
			if got := after[k] - before[k]; got != 1 {
				t.Errorf("%s moved by %v; want 1", k, got)
			}
		}
	}
	for k := range after {
		if strings.Contains(k, "ke-moh") || strings.Contains(k, "aukus") || strings.Contains(k, "aws/") {
			t.Errorf("a tenant, workload or region became a label: %s", k)
		}
	}
	if v := after[`classroute_build_info{go_version=`+version.Get().GoVersion+`,revision=`+version.Get().Revision+`,version=`+version.Get().Version+`}`]; v != 1 {
		t.Errorf("classroute_build_info = %v; want 1 labelled with version.Get() %+v", v, version.Get())
	}
}
