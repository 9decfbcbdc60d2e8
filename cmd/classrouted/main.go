// Command classrouted is the classroute daemon: the gRPC control plane that places workloads on accredited regions.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/marking"
	"github.com/classroute/classroute/router/metrics"
	"github.com/classroute/classroute/router/server"
	"github.com/classroute/classroute/router/state"
	"github.com/classroute/classroute/router/tlsfiles"
	"github.com/classroute/classroute/router/version"
)

// Config is everything the daemon is told, parsed once and validated once.
type Config struct {
	Listen     string
	DataDir    string
	Etcd       []string
	EtcdPrefix string
	// EtcdClientAddr and EtcdPeerAddr are the embedded member's loopback addresses.
	EtcdClientAddr, EtcdPeerAddr string
	// EtcdQuotaBytes is the embedded member's backend quota (0: etcd's 2 GiB).
	EtcdQuotaBytes int64
	Catalog        string
	// KenyaLevels is a JSON file of scheme KEN's levels
	// (marking.KenyaLevels), in place of the illustrative default.
	KenyaLevels     string
	TLSCert, TLSKey string
	// TLSClientCA verifies client certificates (mutual TLS): required
	// with TLSCert. TrustDomain is the SPIFFE trust domain whose IDs
	// the certificates must carry.
	TLSClientCA, TrustDomain string
	// HealthListen, when set, serves grpc.health.v1 alone in plaintext:
	// for probes that cannot speak TLS (the kubelet's gRPC probes). Only
	// on loopback unless HealthAllowRemote.
	HealthListen      string
	HealthAllowRemote bool
	// EtcdCA, EtcdCert and EtcdKey make the etcd client speak TLS: the
	// CA that signs the members' certificates, and this daemon's client
	// certificate when the members require one.
	EtcdCA, EtcdCert, EtcdKey string
	Reflection                bool
	StaleAfter                time.Duration
	AgentTTL                  time.Duration
	ShutdownTimeout           time.Duration
	LogLevel                  slog.Level
	LogFormat                 string
	// MetricsListen serves /metrics and /healthz over HTTP; empty: off.
	// Only on loopback unless MetricsAllowRemote.
	MetricsListen      string
	MetricsAllowRemote bool
	// DebugListen serves Go's net/http/pprof at /debug/pprof/ over
	// HTTP; empty: off. Loopback only, always: a profile shows the
	// daemon's code and data paths, a trace or a long CPU profile slows
	// it, and nothing authenticates the caller.
	DebugListen string
	// FDLimit is the process's descriptor limit (RLIMIT_NOFILE, raised
	// to the hard limit by main); 0: unknown. The connection caps are
	// held within the budget it leaves (connBudget).
	FDLimit uint64
	// MaxConns and MaxConnsPerIP cap the gRPC listener's connections
	// (server.ConnLimits); the health and metrics listeners have
	// auxConns. HandshakeTimeout closes a connection that has not
	// finished its TLS handshake (or, in plaintext, its HTTP/2 preface;
	// on the metrics listener, its request headers) in time.
	MaxConns, MaxConnsPerIP int
	HandshakeTimeout        time.Duration
	// Limits bound each caller (server.IdentityLimits).
	Limits server.IdentityLimits
	// Reconciler: see state.ReconcilerConfig.
	Reconcile     bool
	Name          string
	AgentGrace    time.Duration
	RequireAgents bool
	MoveEvery     time.Duration
	// ReleasedRetention: how long a released placement's record is
	// kept before the reconciler deletes it (0: no time bound);
	// ReleasedKeep: the most released records kept per tenant (0: no
	// count bound).
	ReleasedRetention time.Duration
	ReleasedKeep      int
	// AuditKey signs the audit chain's checkpoints (PKCS #8 PEM ed25519);
	// AuditPubKey is what VerifyAudit checks them against by default.
	AuditKey, AuditPubKey string
	AuditCheckpoint       time.Duration
	// AuditRefusals bounds the refusals of one caller audited one by
	// one; the rest are counted in summary entries.
	AuditRefusals state.RefusalAuditLimit
	// AuditCheckpointDir anchors each signed checkpoint outside etcd;
	// AuditMaxSkew is the clock-skew allowance entries are judged with.
	AuditCheckpointDir string
	AuditMaxSkew       time.Duration
	// OTLPEndpoint, when set, exports traces there over OTLP/gRPC (see
	// tracing); empty: only if OTEL_EXPORTER_OTLP_ENDPOINT (or
	// _TRACES_ENDPOINT) says where.
	OTLPEndpoint string
}

// errVersion is parseFlags' answer to -version, --version or the
// argument version: print the version (printVersion) and exit 0, as
// flag.ErrHelp is to -help.
var errVersion = errors.New("version asked for")

// printVersion prints the line -version answers: the command and its build.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, "classrouted "+version.Get().String())
}

func parseFlags(args []string, stderr io.Writer) (*Config, error) {
	c := &Config{AuditRefusals: state.DefaultRefusalAuditLimit}
	fs := flag.NewFlagSet("classrouted", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var etcd, reflect, level string
	var showVersion bool
	c.FDLimit, _ = fdLimit()
	maxConns := maxConnsDefault
	if c.FDLimit > 0 {
		maxConns = min(connBudget(c.FDLimit), maxConnsDefault)
	}
	c.Limits = server.DefaultIdentityLimits
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:7400", "gRPC listen address; plaintext only on loopback")
	fs.StringVar(&c.DataDir, "data-dir", "classroute-data", "data directory of the embedded etcd member")
	fs.StringVar(&etcd, "etcd", "", "comma-separated external etcd endpoints (host:port,...); empty runs an embedded single member")
	fs.StringVar(&c.EtcdPrefix, "etcd-prefix", "/classroute/v1/", "key prefix in etcd")
	fs.StringVar(&c.EtcdClientAddr, "embedded-etcd-client", "127.0.0.1:2379", "client address of the embedded etcd member (loopback)")
	fs.StringVar(&c.EtcdPeerAddr, "embedded-etcd-peer", "127.0.0.1:2380", "peer address of the embedded etcd member (loopback)")
	fs.Int64Var(&c.EtcdQuotaBytes, "embedded-etcd-quota-bytes", 0, "backend quota of the embedded etcd member, as etcd's --quota-backend-bytes (0: etcd's default, 2 GiB, about 700,000 placements with their audit; at most 8 GiB)")
	fs.StringVar(&c.Catalog, "catalog", "", "catalogue YAML loaded into an empty store (default: the built-in catalogue)")
	fs.StringVar(&c.KenyaLevels, "kenya-levels", "", `JSON file of the Kenyan scheme's levels, low to high ({"levels": [...], "illustrative": false, "source": "..."}), in place of the illustrative default; every daemon of a cluster must be given the same`)
	fs.StringVar(&c.TLSCert, "tls-cert", "", "server certificate (PEM); required to listen beyond loopback")
	fs.StringVar(&c.TLSKey, "tls-key", "", "server private key (PEM)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "CA certificate(s) (PEM) that sign client certificates; required with -tls-cert (mutual TLS)")
	fs.StringVar(&c.TrustDomain, "trust-domain", "", "SPIFFE trust domain of client identities (spiffe://TD/...); required with -tls-cert")
	fs.StringVar(&c.HealthListen, "health-listen", "", "also serve grpc.health.v1 alone, in plaintext, here (for probes that cannot speak TLS); loopback only unless -health-allow-remote")
	fs.BoolVar(&c.HealthAllowRemote, "health-allow-remote", false, "let -health-listen listen beyond loopback: anyone who can reach it learns, in plaintext, whether the daemon serves")
	fs.StringVar(&c.EtcdCA, "etcd-ca", "", "CA certificate (PEM) of an external etcd cluster's TLS; set, the client speaks TLS")
	fs.StringVar(&c.EtcdCert, "etcd-cert", "", "client certificate (PEM) presented to etcd")
	fs.StringVar(&c.EtcdKey, "etcd-key", "", "client private key (PEM)")
	fs.StringVar(&reflect, "reflection", "auto", "gRPC server reflection: auto (on for loopback plaintext), on, off")
	fs.DurationVar(&c.StaleAfter, "stale-after", 5*time.Second, "refuse placements when the cache has not been confirmed current for this long")
	fs.DurationVar(&c.AgentTTL, "agent-ttl", server.DefaultAgentTTL, "lease TTL of a region agent's session: an agent silent this long, or whose daemon died this long ago, is no longer live")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "graceful shutdown deadline before in-flight calls are cut")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "127.0.0.1:9400", "HTTP address serving Prometheus /metrics and /healthz (plaintext; the metrics name no tenant, workload or region); loopback only unless -metrics-allow-remote; empty disables")
	fs.StringVar(&c.DebugListen, "debug-listen", "", "HTTP address serving Go's pprof at /debug/pprof/ (plaintext, unauthenticated), as etcd and Nomad do; loopback only; empty (default) disables")
	fs.BoolVar(&c.MetricsAllowRemote, "metrics-allow-remote", false, "let -metrics-listen listen beyond loopback: anyone who can reach it reads the metrics, in plaintext, unauthenticated")
	fs.IntVar(&c.MaxConns, "max-conns", maxConns, fmt.Sprintf("connections the gRPC listener holds at most; more are closed at accept. The default follows the descriptor limit (RLIMIT_NOFILE): what it leaves after a quarter is kept for the embedded etcd, at most %d", maxConnsDefault))
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", perIPDefault(maxConns), "connections the gRPC listener holds at most from one IPv4 address or IPv6 /64")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", server.DefaultLimits.HandshakeTimeout, "close a connection that has not finished its TLS handshake (gRPC) or sent its request headers (metrics) within this")
	fs.Var(rateFlag{&c.Limits.Place}, "rate-place", "Place calls one caller may make: N/s or N/m, with ,burst=B (default burst: 2 seconds' worth), or off")
	fs.Var(rateFlag{&c.Limits.Plan}, "rate-plan", "Plan calls one caller may make (as -rate-place)")
	fs.Var(rateFlag{&c.Limits.ListAudit}, "rate-list-audit", "ListAudit calls one caller may make (as -rate-place)")
	fs.Var(rateFlag{&c.Limits.Reads}, "rate-reads", "read tokens one caller may spend (as -rate-place): a Get, catalogue or change read costs one, a List one more per 100 placements its page may hold")
	fs.Var(rateFlag{&c.Limits.VerifyAudit}, "rate-verify-audit", "whole-log audit verifications one caller may run (as -rate-place)")
	fs.DurationVar(&c.Limits.MaxWait, "rate-max-wait", server.DefaultIdentityLimits.MaxWait, "a Place, Plan or ListAudit call beyond its caller's rate waits this long at most for its turn; longer, it is refused (0: refused at once)")
	fs.IntVar(&c.Limits.MaxWaiting, "rate-max-waiting", server.DefaultIdentityLimits.MaxWaiting, "calls of one caller, per method, that may wait for their turn at once; more are refused")
	fs.Var(rateFlag{&c.Limits.AgentMessages}, "rate-agent-messages", "messages (reports and acknowledgements) one agent session is read at; beyond it the daemon stops reading and flow control holds the agent")
	fs.Var(rateFlag{&c.Limits.AgentReports}, "rate-agent-reports", "reports and session starts one region agent may make (as -rate-place); reports beyond it are held back and the latest written when the rate allows")
	fs.Var(rateFlag{&c.Limits.AgentAcks}, "rate-agent-acks", "acknowledgements that write (a placement record's rewrite; for FAILED an audit entry) one region agent may make (as -rate-place; an ack saying what the record says is free); beyond it the latest per placement is held back and written when the rate allows")
	fs.IntVar(&c.Limits.Streams, "max-streams", server.DefaultIdentityLimits.Streams, "streams one caller may hold open at once: Watch, health Watch, agent sessions, reflection (0: no cap)")
	fs.BoolVar(&c.Limits.LimitDev, "limit-dev", false, "hold the loopback development principal to the per-caller limits too (it is exempt by default)")
	fs.BoolVar(&c.Reconcile, "reconcile", true, "campaign to run the reconciler that re-routes placements when regions change (one daemon leads at a time)")
	fs.StringVar(&c.Name, "name", "", "this daemon's name in the reconciler election (default: host name and listen address)")
	fs.DurationVar(&c.AgentGrace, "agent-grace", 30*time.Second, "a region whose agent has not been live for this long is unhealthy")
	fs.BoolVar(&c.RequireAgents, "require-agents", false, "hold every region to -agent-grace, even one no agent has served yet")
	fs.DurationVar(&c.MoveEvery, "move-every", 0, "space replica moves at least this far apart (0: no limit)")
	fs.DurationVar(&c.ReleasedRetention, "released-retention", 24*time.Hour, "delete a released placement's record this long after its release; its audit entries stay, and its request id may be used again (0: no time bound)")
	fs.IntVar(&c.ReleasedKeep, "released-keep", 10000, "keep at most this many released placement records per tenant, deleting the oldest beyond it (0: no count bound)")
	fs.StringVar(&c.AuditKey, "audit-key", "", "ed25519 key (PKCS #8 PEM; classroutectl audit keygen) signing the audit chain's checkpoints; without one the chain has no checkpoints")
	fs.StringVar(&c.AuditPubKey, "audit-pubkey", "", "ed25519 public key (PEM) audit verification checks checkpoints against when the caller gives none")
	fs.DurationVar(&c.AuditCheckpoint, "audit-checkpoint-interval", 10*time.Second, "sign a checkpoint of the audit chain at least this often while entries arrive")
	fs.Func("audit-refusals-per-identity", "refused Place calls of one caller, and a region agent's acknowledgements of a failed replica, audited one by one, per daemon: RATE/s|m|h[,burst=N], or off (every one on its own); "+
		"the rest are counted in refuse-summary (replica-failed-summary) entries written within 10s (default "+c.AuditRefusals.String()+")", func(v string) (err error) {
		c.AuditRefusals, err = state.ParseRefusalAuditLimit(v)
		return err
	})
	fs.StringVar(&c.AuditCheckpointDir, "audit-checkpoint-dir", "", "also write each signed audit checkpoint this daemon makes to this directory, one file each, never rewritten (put it on another volume and ship it to write-once storage; classroutectl audit verify --anchor checks etcd against it)")
	fs.DurationVar(&c.AuditMaxSkew, "audit-max-skew", audit.DefaultMaxSkew, "clock-skew allowance between daemons: an audit entry dated further behind the entries chained before it, or ahead of the chainer's clock, is reported as tampering")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "export OpenTelemetry traces (a span per gRPC call, with decide, commit and reconcile spans) to this OTLP/gRPC collector: http://HOST:PORT (plaintext) or https://HOST:PORT; empty: only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else no tracing")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit (as does the argument version)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if showVersion || (fs.NArg() == 1 && fs.Arg(0) == "version") {
		return nil, errVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, e := range strings.Split(etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.Etcd = append(c.Etcd, e)
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	switch reflect {
	case "auto":
		c.Reflection = c.TLSCert == "" // loopback development mode
	case "on":
		c.Reflection = true
	case "off":
	default:
		return nil, fmt.Errorf("-reflection %q: want auto, on or off", reflect)
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("-listen %q: %w", c.Listen, err))
	} else if c.TLSCert == "" && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("-listen %q: plaintext is allowed only on loopback; give -tls-cert and -tls-key to listen on %s", c.Listen, host))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key go together"))
	}
	if c.TLSCert != "" && (c.TLSClientCA == "" || c.TrustDomain == "") {
		errs = append(errs, errors.New("-tls-cert needs -tls-client-ca and -trust-domain: every TLS listener requires client certificates"))
	}
	if c.TLSCert == "" && (c.TLSClientCA != "" || c.TrustDomain != "") {
		errs = append(errs, errors.New("-tls-client-ca and -trust-domain go with -tls-cert and -tls-key"))
	}
	if c.HealthListen != "" {
		errs = append(errs, plaintextListen("-health-listen", c.HealthListen, c.HealthAllowRemote, "-health-allow-remote"))
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		errs = append(errs, errors.New("-etcd-cert and -etcd-key go together"))
	}
	if (c.EtcdCA != "" || c.EtcdCert != "") && len(c.Etcd) == 0 {
		errs = append(errs, errors.New("-etcd-ca, -etcd-cert and -etcd-key are for an external cluster: give -etcd"))
	}
	if len(c.Etcd) == 0 && c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir is required for the embedded etcd member"))
	}
	if q := c.EtcdQuotaBytes; q != 0 && (len(c.Etcd) > 0 || q < etcdlocal.MinQuotaBytes || q > etcdlocal.MaxQuotaBytes) {
		errs = append(errs, fmt.Errorf("-embedded-etcd-quota-bytes %d: for the embedded member only (not with -etcd), 0 or %d to %d", q, int64(etcdlocal.MinQuotaBytes), int64(etcdlocal.MaxQuotaBytes)))
	}
	if !strings.HasPrefix(c.EtcdPrefix, "/") || !strings.HasSuffix(c.EtcdPrefix, "/") {
		errs = append(errs, fmt.Errorf("-etcd-prefix %q: must start and end with /", c.EtcdPrefix))
	}
	if c.StaleAfter <= 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("-stale-after and -shutdown-timeout must be positive"))
	}
	if c.AgentGrace <= 0 || c.MoveEvery < 0 {
		errs = append(errs, errors.New("-agent-grace must be positive and -move-every not negative"))
	}
	if c.ReleasedRetention < 0 {
		errs = append(errs, fmt.Errorf("-released-retention %v: must not be negative (0: no time bound)", c.ReleasedRetention))
	}
	if c.ReleasedKeep < 0 {
		errs = append(errs, fmt.Errorf("-released-keep %d: must not be negative (0: no count bound)", c.ReleasedKeep))
	}
	if c.AgentTTL < state.MinAgentTTL {
		errs = append(errs, fmt.Errorf("-agent-ttl %v: want at least %v", c.AgentTTL, state.MinAgentTTL))
	}
	if c.MetricsListen != "" {
		errs = append(errs, plaintextListen("-metrics-listen", c.MetricsListen, c.MetricsAllowRemote, "-metrics-allow-remote"))
	}
	if c.DebugListen != "" {
		errs = append(errs, plaintextListen("-debug-listen", c.DebugListen, false, ""))
	}
	errs = append(errs, c.validateAudit()...)
	errs = append(errs, c.validateLimits())
	if c.OTLPEndpoint != "" {
		errs = append(errs, checkOTLPEndpoint(c.OTLPEndpoint))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("-log-format %q: want text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}

// plaintextListen checks the address of a plaintext listener: loopback
// only, unless allowed beyond by the flag named allow (remote set); with
// no such flag (allow empty), loopback only, always.
func plaintextListen(name, addr string, remote bool, allow string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", name, addr, err)
	}
	if !remote && !isLoopback(host) {
		if allow == "" {
			return fmt.Errorf("%s %q: serves plaintext, unauthenticated, so only on loopback (127.0.0.1, [::1] or localhost)", name, addr)
		}
		where := fmt.Sprintf("%q", host)
		if host == "" {
			where = "every interface"
		}
		return fmt.Errorf("%s %q: serves plaintext, so only on loopback; give %s to serve it on %s anyway", name, addr, allow, where)
	}
	return nil
}

// The descriptor budget. The process's descriptors (RLIMIT_NOFILE) are
// shared by every listener's connections, the embedded etcd (its WAL,
// snapshots and database, its listeners, both ends of each loopback
// connection to it, ours included), the etcd client and the logs. The
// connection caps must leave a reserve for all but the connections, or
// enough idle connections starve etcd ("too many open files") and the
// daemon with it: the reserve is a quarter of the limit, at least
// minFDReserve, and the health and metrics listeners hold auxConns each.
const (
	minFDReserve = 256
	// maxConnsDefault bounds -max-conns's default whatever the budget:
	// each connection costs memory too (buffers, goroutines).
	maxConnsDefault = 8192
)

// openTimeout bounds opening the store, its first load of the cache
// included.
const openTimeout = 5 * time.Minute

// auxConns caps the health and metrics listeners: a prober or a
// scraper holds one connection, or opens one per probe.
var auxConns = server.ConnLimits{Max: 64, PerSource: 16}

// debugConns caps the -debug-listen listener: an operator's go tool
// pprof or curl holds one or two. They come out of the reserve (at
// least minFDReserve) rather than the gRPC listener's budget: the
// listener is off unless asked for, and a handful of descriptors is
// nothing beside the embedded etcd's.
var debugConns = server.ConnLimits{Max: 8, PerSource: 4}

// connBudget is how many connections the gRPC listener may hold with
// descriptor limit nofile; 0 when nofile leaves none, or is unknown (0).
func connBudget(nofile uint64) int {
	if nofile == 0 {
		return 0
	}
	reserve := max(minFDReserve, nofile/4)
	aux := uint64(2 * auxConns.Max)
	if nofile <= reserve+aux {
		return 0
	}
	return int(min(nofile-reserve-aux, 1<<30))
}

// perIPDefault is -max-conns-per-ip's default: an eighth of the cap, at
// most 128 (a NAT or proxy fronting many clients), at least 1.
func perIPDefault(maxConns int) int { return max(1, min(128, maxConns/8)) }

func (c *Config) validateLimits() error {
	var errs []error
	budget := connBudget(c.FDLimit)
	switch {
	case c.FDLimit > 0 && budget == 0:
		errs = append(errs, fmt.Errorf("the descriptor limit (RLIMIT_NOFILE) is %d: it leaves none for connections after the %d kept for the embedded etcd, the daemon and the health and metrics listeners; raise it (ulimit -n)",
			c.FDLimit, max(minFDReserve, c.FDLimit/4)+uint64(2*auxConns.Max)))
	case c.MaxConns < 1:
		errs = append(errs, fmt.Errorf("-max-conns %d: want at least 1", c.MaxConns))
	case c.FDLimit > 0 && c.MaxConns > budget:
		errs = append(errs, fmt.Errorf("-max-conns %d: the descriptor limit (RLIMIT_NOFILE) is %d, of which %d are kept for the embedded etcd and the daemon and %d for the health and metrics listeners: at most %d (raise the hard limit, ulimit -Hn, for more)",
			c.MaxConns, c.FDLimit, max(minFDReserve, c.FDLimit/4), 2*auxConns.Max, budget))
	}
	if c.MaxConnsPerIP < 1 || c.MaxConnsPerIP > c.MaxConns {
		errs = append(errs, fmt.Errorf("-max-conns-per-ip %d: want 1 to -max-conns (%d)", c.MaxConnsPerIP, c.MaxConns))
	}
	if c.HandshakeTimeout <= 0 || c.HandshakeTimeout > 2*time.Minute {
		errs = append(errs, fmt.Errorf("-handshake-timeout %v: want more than 0 and at most 2m", c.HandshakeTimeout))
	}
	if c.Limits.MaxWait < 0 || c.Limits.MaxWait > 10*time.Second {
		errs = append(errs, fmt.Errorf("-rate-max-wait %v: want 0 to 10s", c.Limits.MaxWait))
	}
	if c.Limits.MaxWaiting < 0 {
		errs = append(errs, fmt.Errorf("-rate-max-waiting %d: must not be negative", c.Limits.MaxWaiting))
	}
	if c.Limits.Streams < 0 {
		errs = append(errs, fmt.Errorf("-max-streams %d: must not be negative", c.Limits.Streams))
	}
	// An agent reports every -agent-ttl/3 to keep its session, and once
	// more on connecting: the limit must allow both.
	if r := c.Limits.AgentReports; r.PerSecond > 0 && c.AgentTTL > 0 {
		if need := 3 / c.AgentTTL.Seconds(); r.PerSecond < need || r.Burst < 2 {
			errs = append(errs, fmt.Errorf("-rate-agent-reports %s: an agent reports every -agent-ttl/3 (%v) and on connecting: want at least %.3g/s, burst 2", rateFlag{&r}, c.AgentTTL/3, need))
		}
	}
	return errors.Join(errs...)
}

// rateFlag is a server.Rate as a flag: "N/s" or "N/m", optionally with
// ",burst=B" (default: two seconds' worth, at least 1), or "off".
type rateFlag struct{ r *server.Rate }

func (f rateFlag) String() string {
	if f.r == nil {
		return ""
	}
	if f.r.PerSecond <= 0 {
		return "off"
	}
	return fmt.Sprintf("%s/s,burst=%d", strconv.FormatFloat(f.r.PerSecond, 'g', -1, 64), f.r.Burst)
}

func (f rateFlag) Set(v string) error {
	if v == "off" || v == "0" {
		*f.r = server.Rate{}
		return nil
	}
	spec, burst, hasBurst := strings.Cut(v, ",")
	num, unit, ok := strings.Cut(spec, "/")
	n, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || n <= 0 || math.IsInf(n, 0) || (unit != "s" && unit != "m") {
		return fmt.Errorf("%q: want N/s or N/m (N > 0), optionally with ,burst=B, or off", v)
	}
	r := server.Rate{PerSecond: n}
	if unit == "m" {
		r.PerSecond = n / 60
	}
	r.Burst = max(1, int(math.Ceil(2*r.PerSecond)))
	if hasBurst {
		b, ok := strings.CutPrefix(burst, "burst=")
		if r.Burst, err = strconv.Atoi(b); !ok || err != nil || r.Burst < 1 {
			return fmt.Errorf("%q: want ,burst=B with B at least 1", v)
		}
	}
	*f.r = r
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func main() {
	// Before the flags: their defaults and checks follow the limit.
	_, rlimitErr := raiseFDLimit()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		printVersion(os.Stdout)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "classrouted: %v\n", err)
		os.Exit(2)
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})
	}
	log := slog.New(h)
	if rlimitErr != nil {
		log.Warn("could not raise the descriptor limit to the hard limit", "err", rlimitErr, "limit", cfg.FDLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("classrouted stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg *Config, log *slog.Logger) error {
	// Kenya's levels are configuration: set before any marking is read.
	if cfg.KenyaLevels != "" {
		data, err := os.ReadFile(cfg.KenyaLevels)
		if err != nil {
			return fmt.Errorf("-kenya-levels: %w", err)
		}
		k, err := marking.ParseKenyaLevels(data)
		if err == nil {
			err = marking.ConfigureKenya(k)
		}
		if err != nil {
			return fmt.Errorf("-kenya-levels %s: %w", cfg.KenyaLevels, err)
		}
		log.Info("Kenyan scheme levels configured", "levels", strings.Join(k.Levels, " < "), "illustrative", k.Illustrative)
	}
	// The catalogue is checked before anything starts: a bad one is
	// refused with the entry and field at fault.
	cat, err := loadCatalog(cfg.Catalog)
	if err != nil {
		return err
	}

	endpoints := cfg.Etcd
	if len(endpoints) == 0 {
		dir := filepath.Join(cfg.DataDir, "etcd")
		m, err := etcdlocal.Start(ctx, etcdlocal.Config{Dir: dir, ClientAddr: cfg.EtcdClientAddr, PeerAddr: cfg.EtcdPeerAddr, QuotaBytes: cfg.EtcdQuotaBytes,
			Logger: log, LogLevel: embeddedEtcdLogLevel(cfg.LogLevel)})
		if err != nil {
			return err
		}
		defer m.Close()
		endpoints = m.Endpoints()
		log.Info("embedded etcd started", "dir", dir, "endpoints", endpoints)
	}
	etcdTLS, err := etcdClientTLS(cfg, log)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		TLS:                  etcdTLS,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               etcdlocal.ZapLogger(log, zapcore.WarnLevel),
	})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()

	tp, stopTracing, err := tracing(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		// Flush the spans left, within a bound: a collector that is
		// gone must not hold the exit.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("tracing: spans not flushed at exit", "err", err)
		}
	}()
	m := metrics.New()
	if cfg.DebugListen != "" {
		// Before the store opens: a slow start (loading a large cache)
		// can be profiled too.
		stop, err := serveDebug(cfg, m, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Opening loads every placement into the cache: a million take tens
	// of seconds on a small machine. An etcd that stops answering fails
	// the load sooner (each read has the op timeout).
	openCtx, cancel := context.WithTimeout(ctx, openTimeout)
	store, err := state.Open(openCtx, cli, router.NewEngine(),
		state.WithPrefix(cfg.EtcdPrefix), state.WithLogger(log), state.WithStaleAfter(cfg.StaleAfter), state.WithObserver(m), state.WithTracerProvider(tp),
		state.WithRefusalAuditLimit(cfg.AuditRefusals))
	cancel()
	if err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	defer store.Close()
	m.AddStore(store)
	if cfg.MetricsListen != "" {
		stop, err := serveMetrics(cfg, m, m.Handler(store.Ready), log)
		if err != nil {
			return err
		}
		defer stop()
	}

	seedCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	seeded, err := store.Seed(seedCtx, cat.Providers, cat.Regions, cat.Tenants)
	cancel()
	if err != nil {
		return fmt.Errorf("load catalogue: %w", err)
	}
	if seeded {
		log.Info("catalogue loaded into empty store", "regions", len(cat.Regions), "providers", len(cat.Providers), "tenants", len(cat.Tenants))
	} else if cfg.Catalog != "" {
		log.Warn("store already holds a catalogue; -catalog was checked but not applied: change regions through the Catalog API", "catalog", cfg.Catalog)
	}

	limits := server.DefaultLimits
	limits.HandshakeTimeout = cfg.HandshakeTimeout
	// The metrics' interceptors first: every call is counted, those the
	// others refuse too.
	opts := append(append(server.TraceOptions(tp), m.ServerOptions()...), limits.ServerOptions(log)...)
	authn := server.DevAuthenticator
	if cfg.TLSCert != "" {
		tc, err := serverTLS(cfg, log)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
		authn = server.TLSAuthenticator(cfg.TrustDomain)
		log.Info("mutual TLS: callers are the SPIFFE IDs of their client certificates", "trust_domain", cfg.TrustDomain, "client_ca", cfg.TLSClientCA)
	} else {
		log.Warn("development mode: plaintext on loopback, every caller has every role; use -tls-cert, -tls-key, -tls-client-ca and -trust-domain for mutual TLS")
	}
	auditKey, auditPub, err := auditKeys(cfg)
	if err != nil {
		return err
	}
	chain, err := auditChain(cfg, auditKey, m.Registry())
	if err != nil {
		return err
	}
	// Every call is authenticated and authorized: by the client
	// certificate with mutual TLS, else as the loopback development
	// mode's principal (classroutectl --as NAME names one).
	srv := server.New(store, log, server.WithAgentTTL(cfg.AgentTTL), server.WithAuthenticator(authn), server.WithAuditPublicKey(auditPub),
		server.WithAuditMaxSkew(cfg.AuditMaxSkew), server.WithIdentityLimits(cfg.Limits), server.WithLimitObserver(m))
	g := grpc.NewServer(append(opts, srv.AuthOptions()...)...)
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	if cfg.Reflection {
		reflection.Register(g)
	}
	m.InitializeMethods(g)
	go server.WatchHealth(ctx, hs, store, time.Second)
	if cfg.Reconcile {
		name := cfg.Name
		if name == "" {
			host, _ := os.Hostname()
			name = host + "/" + cfg.Listen
		}
		rctx, rcancel := context.WithCancel(ctx)
		rdone := make(chan struct{})
		defer func() { rcancel(); <-rdone }()
		go func() {
			defer close(rdone)
			_ = store.Reconcile(rctx, state.ReconcilerConfig{
				Name: name, AgentGrace: cfg.AgentGrace, RequireAgents: cfg.RequireAgents, MoveEvery: cfg.MoveEvery,
				ReleasedRetention: cfg.ReleasedRetention, ReleasedKeep: cfg.ReleasedKeep, Audit: chain,
			})
		}()
	}

	lis, err := listen("grpc", cfg.Listen, server.ConnLimits{Max: cfg.MaxConns, PerSource: cfg.MaxConnsPerIP}, m)
	if err != nil {
		return err
	}
	if cfg.HealthListen != "" {
		// Health alone: it tells whether this daemon can vouch for its
		// state, and nothing of what the state holds. No caller is
		// authenticated here, so no per-caller cap holds its streams:
		// a few per connection (a probe needs one), within auxConns.
		hl := limits
		hl.MaxConcurrentStreams = 8
		hg := grpc.NewServer(hl.Options()...)
		healthpb.RegisterHealthServer(hg, hs)
		hlis, err := listen("health", cfg.HealthListen, auxConns, m)
		if err != nil {
			return fmt.Errorf("-health-listen: %w", err)
		}
		go func() { _ = hg.Serve(hlis) }()
		defer hg.Stop()
		log.Info("health serving", "listen", hlis.Addr().String())
	}
	log.Info("classrouted serving", "listen", lis.Addr().String(), "etcd", endpoints, "tls", cfg.TLSCert != "", "reflection", cfg.Reflection,
		"max_conns", cfg.MaxConns, "max_conns_per_ip", cfg.MaxConnsPerIP, "fd_limit", cfg.FDLimit)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "deadline", cfg.ShutdownTimeout)
	hs.Shutdown()
	srv.StopWatches() // watchers resume elsewhere or after the restart
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("graceful stop timed out; cutting in-flight calls")
		g.Stop()
	}
	return nil
}

// embeddedEtcdLogLevel is the least level of the embedded member's
// messages the daemon logs (through its own logger, at its level):
// etcd's warnings and errors; with -log-level debug, its info too (some
// sixty lines at start). etcd's own debug, raft's every step, never.
func embeddedEtcdLogLevel(l slog.Level) string {
	if l <= slog.LevelDebug {
		return "info"
	}
	return "warn"
}

// tlsCheckEvery is how often, at most, the certificate files are looked
// at for a change (a variable for the tests' sake).
var tlsCheckEvery = tlsfiles.DefaultCheckEvery

// serverTLS is the listener's TLS: the server certificate, and client
// certificates required and verified against -tls-client-ca; the files
// are re-read when they change (tlsfiles), so a renewed certificate or
// a rotated CA bundle is the next handshake's, with no restart.
func serverTLS(cfg *Config, log *slog.Logger) (*tls.Config, error) {
	r, err := tlsfiles.New(tlsfiles.Files{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, CAFile: cfg.TLSClientCA}, log.With("listener", "grpc"),
		tlsfiles.WithCheckEvery(tlsCheckEvery))
	if err != nil {
		return nil, fmt.Errorf("-tls-cert, -tls-key, -tls-client-ca: %w", err)
	}
	// ServerTLSConfig's versions and client authentication; its
	// certificate and CAs are the Reloader's at each handshake.
	return r.ServerConfig(server.ServerTLSConfig(tls.Certificate{}, nil)), nil
}

// etcdClientTLS is the etcd client's TLS configuration, or nil for
// plaintext. Its files are re-read when they change, as serverTLS's.
func etcdClientTLS(cfg *Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.EtcdCA == "" && cfg.EtcdCert == "" {
		return nil, nil
	}
	r, err := tlsfiles.New(tlsfiles.Files{CertFile: cfg.EtcdCert, KeyFile: cfg.EtcdKey, CAFile: cfg.EtcdCA}, log.With("client", "etcd"),
		tlsfiles.WithCheckEvery(tlsCheckEvery))
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	return r.ClientConfig(etcdHosts(cfg.Etcd)...), nil
}

// etcdHosts are the host names and addresses of endpoints
// ("host:port", or URLs): those the etcd client dials, for which a
// member's certificate is verified when no name was sent (see
// tlsfiles.Reloader.ClientConfig).
func etcdHosts(endpoints []string) []string {
	var hosts []string
	for _, e := range endpoints {
		if u, err := url.Parse(e); err == nil && u.Host != "" {
			e = u.Host
		}
		if h, _, err := net.SplitHostPort(e); err == nil {
			e = h
		}
		hosts = append(hosts, e)
	}
	return hosts
}

// listen listens on addr, holding the connections to c (counted in m as
// listener name).
func listen(name, addr string, c server.ConnLimits, m *metrics.Metrics) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ll := server.LimitListener(l, c, m.ConnRefused(name))
	m.AddListener(name, ll.Open)
	return ll, nil
}

// serveMetrics serves h on -metrics-listen until stop is called: within
// auxConns, and with deadlines for every part of a request, so that a
// slow or silent client holds a connection for seconds at most.
func serveMetrics(cfg *Config, m *metrics.Metrics, h http.Handler, log *slog.Logger) (stop func(), err error) {
	lis, err := listen("metrics", cfg.MetricsListen, auxConns, m)
	if err != nil {
		return nil, fmt.Errorf("-metrics-listen: %w", err)
	}
	log.Info("serving metrics", "listen", lis.Addr().String())
	return serveHTTP(cfg, lis, h, "metrics", log), nil
}

// serveHTTP serves h on lis, with the deadlines every loopback HTTP
// listener of the daemon shares, until the returned stop is called.
func serveHTTP(cfg *Config, lis net.Listener, h http.Handler, name string, log *slog.Logger) (stop func()) {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.HandshakeTimeout,
		ReadTimeout:       cfg.HandshakeTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" server stopped", "err", err)
		}
	}()
	return func() { _ = hs.Close(); <-done }
}

// serveDebug serves Go's pprof on -debug-listen until stop is called:
// within debugConns, and with the metrics listener's deadlines
// (net/http/pprof extends the write deadline of a CPU profile or an
// execution trace by the time it is asked to run). The handlers are
// mounted on a mux of its own, never on http.DefaultServeMux (which
// importing net/http/pprof also fills, and which nothing here serves).
func serveDebug(cfg *Config, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	lis, err := listen("debug", cfg.DebugListen, debugConns, m)
	if err != nil {
		return nil, fmt.Errorf("-debug-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile: heap, goroutine, allocs, block, mutex, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("serving pprof: anyone who can connect to this loopback address can profile the daemon", "listen", lis.Addr().String())
	return serveHTTP(cfg, lis, mux, "debug", log), nil
}

func loadCatalog(path string) (*providers.Catalog, error) {
	if path == "" {
		return providers.Default()
	}
	return providers.Load(path)
}
