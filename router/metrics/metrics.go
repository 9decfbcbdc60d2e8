// Package metrics exports classroute's Prometheus metrics, from a
// registry of its own: the gRPC edge's, the store's and the daemon's. It
// owns the metric names and labels; it reads the store but never writes
// it, and the decision engine (router) never imports it.
package metrics

import (
	"context"
	"net/http"
	"slices"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
	"github.com/classroute/classroute/router/version"
)

// The metrics. Every label has a small fixed set of values: no request
// ids, tenants, workloads or regions, whose number has no bound (and
// whose names may say more than a dashboard's viewers may see).
//
//	classroute_build_info{version,revision,go_version}  1: the running build (router/version)
//	classroute_placements_total{outcome}           Place calls by outcome (see outcomes)
//	classroute_refusals_total{reason}              refused Place calls: no_eligible_region, spread_unsatisfiable, above_ceiling or placement_cap
//	classroute_refusal_region_reasons_total{code}  per refused Place, each reason code some region failed on (router.ReasonCode)
//	classroute_decision_duration_seconds           one Place decision (the engine)
//	classroute_commit_duration_seconds{result}     one Place commit to etcd: committed or failed (lost a race, or an error)
//	classroute_store_ready                         1 while the store vouches for its cache (reads and decisions are served)
//	classroute_etcd_reachable                      1 while the store's freshness reads of etcd succeed
//	classroute_cache_revision                      the etcd revision the cache reflects
//	classroute_cache_revision_lag                  etcd's revision at the last freshness read minus the cache's
//	classroute_cache_freshness_age_seconds         since etcd last vouched for the cache
//	classroute_agents_connected                    regions with a connected agent (live records)
//	classroute_reconciler_leader                   1 while this daemon leads the reconciler
//	classroute_placements_stranded                 placements with a replica that must move and nowhere to go
//	classroute_placements_violating                placements with a replica whose region no longer covers them
//	classroute_accreditation_expiry_seconds        until the nearest accreditation expiry of a region (negative once expired)
//	classroute_audit_chain_lag_seconds             how long the oldest audit entry not yet chained has waited (the chaining daemon only)
//	classroute_etcd_alarm{type}                    1 while etcd has raised the alarm: nospace (its quota is full) or corrupt
//	classroute_rate_limited_total{limit}           calls and streams refused (agent messages held back) by a per-caller limit: place, plan, list_audit, agent_report, agent_ack, streams, read, verify_audit
//	classroute_connections_refused_total{listener,reason}  connections closed at accept: grpc, health or metrics; total or per_source cap
//	classroute_connections_open{listener}          connections a listener holds open
//
// The gauges read the store when scraped. The Go runtime's and the
// process's standard metrics are exported too, and gRPC's for every
// method of the server (go-grpc-middleware's Prometheus provider):
//
//	grpc_server_started_total{grpc_type,grpc_service,grpc_method}            calls started
//	grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}  calls finished, by status code
//	grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}         time to handle a call (histogram)
//	grpc_server_msg_received_total, grpc_server_msg_sent_total               stream messages

// outcomes are the values of classroute_placements_total's outcome
// label. A Place refused by its tenant's policy (its ceiling, its
// placement cap) is refused, like one no region may hold: the
// refusals' reason tells them apart.
var outcomes = []string{"placed", "refused", "invalid", "unavailable", "conflict", "reused", "canceled", "limited", "error"}

// limits, listeners and connRefusals bound the labels of the limit
// metrics; any other value counts as "other". limits are
// server.LimitNames, reasons server.RefusedTotal and RefusedPerSource.
var (
	limits       = []string{"place", "plan", "list_audit", "agent_report", "agent_ack", "streams", "read", "verify_audit"}
	listeners    = []string{"grpc", "health", "metrics", "debug"}
	connRefusals = []string{"total", "per_source"}
)

// reasonCodes bound the code label; any other code counts as "other".
var reasonCodes = []router.ReasonCode{
	router.ReasonLevel, router.ReasonAccreditation, router.ReasonAuthorization, router.ReasonControls,
	router.ReasonReleasability, router.ReasonPersonnel, router.ReasonResidency, router.ReasonJurisdiction,
	router.ReasonCustomer, router.ReasonNetworkDomain, router.ReasonCapability, router.ReasonCapacity,
	router.ReasonHealth, router.ReasonSpread, router.ReasonStranded, router.ReasonPolicy,
}

// Metrics holds classroute's metrics and their registry. It is a
// state.Observer; New's result is ready to use, and safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	placements *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	refusedFor *prometheus.CounterVec
	decision   prometheus.Histogram
	commit     *prometheus.HistogramVec
	committed  prometheus.Observer // commit's children, looked up once
	failed     prometheus.Observer
	known      map[string]bool // reason codes
	limited    *prometheus.CounterVec
	connsRefd  *prometheus.CounterVec
	grpc       *grpcprom.ServerMetrics
}

// refusalReasons are the values of classroute_refusals_total's reason
// label, by the ErrorInfo reason of the refusal's status.
var refusalReasons = map[string]string{
	"NO_ELIGIBLE_REGION":   "no_eligible_region",
	"SPREAD_UNSATISFIABLE": "spread_unsatisfiable",
	"ABOVE_CEILING":        "above_ceiling",
	"PLACEMENT_CAP":        "placement_cap",
}

// New makes the metrics in a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classroute_placements_total",
			Help: "Place calls by outcome: placed (including an idempotent repeat), refused (no eligible region, or the tenant's ceiling or placement cap), invalid, unavailable, conflict (lost every retry), reused (request id of another workload), canceled, limited (the caller's rate), error.",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classroute_refusals_total",
			Help: "Refused Place calls by reason: no_eligible_region, spread_unsatisfiable, above_ceiling (the label is above the tenant's clearance ceiling) or placement_cap (the tenant holds as many placements as it may).",
		}, []string{"reason"}),
		refusedFor: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classroute_refusal_region_reasons_total",
			Help: "For each refused Place call, each reason code that some region failed on, counted once per call.",
		}, []string{"code"}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "classroute_decision_duration_seconds",
			Help:    "Time the store took to make one Place decision.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 12), // 10µs .. 0.24s
		}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "classroute_commit_duration_seconds",
			Help:    "Time one Place commit took, from queueing its etcd transaction to the answer, by result: committed or failed.",
			Buckets: prometheus.ExponentialBuckets(0.5e-3, 2, 14), // 0.5ms .. 4s
		}, []string{"result"}),
		known: make(map[string]bool),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classroute_rate_limited_total",
			Help: "Calls and streams refused with RESOURCE_EXHAUSTED, and agent messages held back, by a per-caller limit: place, plan, list_audit, agent_report (reports and session starts), agent_ack (acknowledgements that write), streams (streams open at once), read (Get, List and the catalogue's reads) or verify_audit.",
		}, []string{"limit"}),
		connsRefd: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classroute_connections_refused_total",
			Help: "Connections closed as soon as accepted, by listener (grpc, health, metrics, debug) and the cap they were beyond (total or per_source).",
		}, []string{"listener", "reason"}),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram()),
	}
	v := version.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "classroute_build_info",
		Help:        "1, labelled with the running build: the module version, the VCS revision and the Go toolchain.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "go_version": v.GoVersion},
	})
	buildInfo.Set(1)
	for _, l := range limits {
		m.limited.WithLabelValues(l)
	}
	for _, l := range listeners {
		for _, r := range connRefusals {
			m.connsRefd.WithLabelValues(l, r)
		}
	}
	for _, o := range outcomes {
		m.placements.WithLabelValues(o)
	}
	for _, r := range refusalReasons {
		m.refusals.WithLabelValues(r)
	}
	for _, c := range reasonCodes {
		m.known[string(c)] = true
	}
	m.committed, m.failed = m.commit.WithLabelValues("committed"), m.commit.WithLabelValues("failed")
	m.reg.MustRegister(m.placements, m.refusals, m.refusedFor, m.decision, m.commit, m.limited, m.connsRefd, m.grpc, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Decided implements state.Observer.
func (m *Metrics) Decided(d time.Duration) { m.decision.Observe(d.Seconds()) }

// Committed implements state.Observer.
func (m *Metrics) Committed(d time.Duration, ok bool) {
	if ok {
		m.committed.Observe(d.Seconds())
	} else {
		m.failed.Observe(d.Seconds())
	}
}

// Limited counts a call or stream refused by the per-caller limit named
// limit (server.LimitObserver).
func (m *Metrics) Limited(limit string) {
	m.limited.WithLabelValues(oneOf(limit, limits)).Inc()
}

// ConnRefused returns what listener (grpc, health or metrics) calls for
// each connection it refuses, with the cap's name (server.LimitListener).
func (m *Metrics) ConnRefused(listener string) func(reason string) {
	listener = oneOf(listener, listeners)
	return func(reason string) { m.connsRefd.WithLabelValues(listener, oneOf(reason, connRefusals)).Inc() }
}

// AddListener exports the number of connections listener (grpc, health
// or metrics) holds open, read from open when scraped
// (server.LimitedListener.Open). Each listener is added once.
func (m *Metrics) AddListener(listener string, open func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "classroute_connections_open",
		Help:        "Connections a listener holds open (accepted and not yet closed), by listener: grpc, health, metrics, debug.",
		ConstLabels: prometheus.Labels{"listener": oneOf(listener, listeners)},
	}, func() float64 { return float64(open()) }))
}

// oneOf is v when it is one of known, else "other".
func oneOf(v string, known []string) string {
	if slices.Contains(known, v) {
		return v
	}
	return "other"
}

// Source is what the metrics read of the store when scraped (a *state.Store).
type Source interface {
	Stats() state.Stats
}

// AddStore exports the gauges of src, read on every scrape.
func (m *Metrics) AddStore(src Source) {
	m.reg.MustRegister(&storeCollector{src: src})
}

// ServerOptions are the interceptors that count a gRPC server's calls:
// gRPC's standard metrics of every call, then the outcome of every
// Place (UnaryInterceptor). Put them first, so that calls refused by
// the interceptors after them (authentication, the limits) are counted
// too; call InitializeMethods once the services are registered.
func (m *Metrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor(), m.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

// InitializeMethods exports gRPC's metrics of every method registered
// on g, at zero, before any call: a method never called shows up too.
func (m *Metrics) InitializeMethods(g *grpc.Server) { m.grpc.InitializeMetrics(g) }

// UnaryInterceptor counts the outcome of every Place call from the
// status it returns, with the reason codes of the Refusal detail.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		if info.FullMethod == pb.PlacementService_Place_FullMethodName {
			m.countPlace(err)
		}
		return resp, err
	}
}

func (m *Metrics) countPlace(err error) {
	st := status.Convert(err)
	outcome := "error"
	switch st.Code() {
	case codes.OK:
		outcome = "placed"
	case codes.InvalidArgument:
		outcome = "invalid"
	case codes.Unavailable:
		outcome = "unavailable"
	case codes.Aborted:
		outcome = "conflict"
	case codes.AlreadyExists:
		outcome = "reused"
	case codes.Canceled, codes.DeadlineExceeded:
		outcome = "canceled"
	case codes.ResourceExhausted:
		outcome = "limited"
		if m.countRefusal(st) { // the tenant's placement cap
			outcome = "refused"
		}
	case codes.FailedPrecondition, codes.PermissionDenied: // PermissionDenied: the tenant's ceiling
		if m.countRefusal(st) {
			outcome = "refused"
		}
	}
	m.placements.WithLabelValues(outcome).Inc()
}

// countRefusal counts a refusal's reason and region reason codes, and
// reports whether st is a refusal.
func (m *Metrics) countRefusal(st *status.Status) bool {
	var reason string
	seen := make(map[string]bool)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if r, ok := refusalReasons[d.GetReason()]; ok && d.GetDomain() == server.ErrorDomain {
				reason = r
			}
		case *pb.Refusal:
			for _, v := range d.GetRegions() {
				for _, r := range v.GetReasons() {
					c := r.GetCode()
					if !m.known[c] {
						c = "other"
					}
					seen[c] = true
				}
			}
		}
	}
	if reason == "" {
		return false
	}
	m.refusals.WithLabelValues(reason).Inc()
	for c := range seen {
		m.refusedFor.WithLabelValues(c).Inc()
	}
	return true
}

// Handler serves /metrics, and /healthz: 200 while ready() is nil, else
// 503 with the reason.
func (m *Metrics) Handler(ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// storeCollector exports a store's gauges, read when scraped.
type storeCollector struct{ src Source }

var (
	descReady     = prometheus.NewDesc("classroute_store_ready", "1 while the store vouches for its cache: reads and decisions are served.", nil, nil)
	descEtcd      = prometheus.NewDesc("classroute_etcd_reachable", "1 while the store's freshness reads of etcd have an answer within the stale bound.", nil, nil)
	descRevision  = prometheus.NewDesc("classroute_cache_revision", "The etcd revision the cache reflects.", nil, nil)
	descLag       = prometheus.NewDesc("classroute_cache_revision_lag", "etcd's revision at the store's last freshness read minus the cache's revision.", nil, nil)
	descAge       = prometheus.NewDesc("classroute_cache_freshness_age_seconds", "Seconds since etcd last vouched for the cache.", nil, nil)
	descAgents    = prometheus.NewDesc("classroute_agents_connected", "Regions with a connected agent (live records in the cache).", nil, nil)
	descStranded  = prometheus.NewDesc("classroute_placements_stranded", "Placements with a replica that must move and no region to move to.", nil, nil)
	descViolating = prometheus.NewDesc("classroute_placements_violating", "Placements with a replica whose region no longer covers the workload.", nil, nil)
	descLeader    = prometheus.NewDesc("classroute_reconciler_leader", "1 while this daemon's reconciler is the elected leader (exactly one daemon should be).", nil, nil)
	descExpiry    = prometheus.NewDesc("classroute_accreditation_expiry_seconds", "Seconds until the nearest expiry of a region's accreditation, among the catalogue's regions whose accreditation is not revoked; negative once one has expired (renew it, or revoke or remove the region). Absent when no region has an expiry.", nil, nil)
	descChainLag  = prometheus.NewDesc("classroute_audit_chain_lag_seconds", "How far the audit hash chain is behind the audit trail: seconds the oldest entry not yet chained has waited, counted from when the chainer's watch delivered it, or from when the chainer stopped following the trail (a term starting, an error and its retry); 0 once every entry delivered is chained. Exported only by the daemon that runs the chainer (the reconciler's leader): with no leader nothing chains, which classroute_reconciler_leader shows. The audit index (ListAudit's search) is written beside the chain and is not counted here.", nil, nil)
	descAlarm     = prometheus.NewDesc("classroute_etcd_alarm", "1 while etcd has raised the alarm of the type: nospace (the database reached its quota: every write fails; the daemon is NOT_SERVING) or corrupt.", []string{"type"}, nil)
)

// alarmTypes bound classroute_etcd_alarm's type label: etcd's alarms.
var alarmTypes = []string{"nospace", "corrupt"}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descEtcd, descRevision, descLag, descAge, descAgents, descStranded, descViolating, descLeader, descExpiry, descChainLag, descAlarm} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descReady, boolValue(st.Ready))
	gauge(descEtcd, boolValue(st.EtcdReachable))
	gauge(descRevision, float64(st.Revision))
	gauge(descLag, float64(max(st.EtcdRevision-st.Revision, 0)))
	gauge(descAge, st.FreshnessAge.Seconds())
	gauge(descAgents, float64(st.LiveAgents))
	gauge(descStranded, float64(st.Stranded))
	gauge(descViolating, float64(st.Violating))
	gauge(descLeader, boolValue(st.Leading))
	if st.HasAccreditationExpiry {
		gauge(descExpiry, st.AccreditationExpiry.Seconds())
	}
	if st.AuditChaining {
		gauge(descChainLag, st.AuditChainLag.Seconds())
	}
	for _, a := range alarmTypes {
		ch <- prometheus.MustNewConstMetric(descAlarm, prometheus.GaugeValue, boolValue(slices.Contains(st.EtcdAlarms, a)), a)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
