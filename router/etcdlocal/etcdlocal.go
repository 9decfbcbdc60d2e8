// Package etcdlocal runs one embedded etcd member inside the process: the
// daemon's default store, the tests' real etcd, and each member of a
// cluster run by classroute-etcd. It owns the member's configuration
// (loopback-only plaintext, TLS, quota); it knows nothing of classroute's
// records and imports nothing of this module (router/deps_test.go).
package etcdlocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Cluster states: a member either bootstraps a new cluster with its
// peers, or joins one that runs (after `etcdctl member add`, or
// MemberAdd through the client API).
const (
	StateNew      = embed.ClusterStateFlagNew
	StateExisting = embed.ClusterStateFlagExisting
)

// Config says who the member is, where it keeps its data and listens,
// and which cluster it belongs to. The zero values of the cluster fields
// make a single-member cluster of its own.
type Config struct {
	// Dir is the data directory. Required. A member restarted on the
	// same directory rejoins its cluster; the cluster fields are then
	// ignored by etcd.
	Dir string
	// Name is the member's name in the cluster (default "classroute").
	Name string
	// ClientAddr and PeerAddr are host:port addresses the member listens
	// on and advertises; empty picks a free loopback port. Without TLS
	// they must be loopback addresses: plaintext etcd traffic never
	// leaves the machine.
	ClientAddr, PeerAddr string
	// InitialCluster lists every member of the cluster being bootstrapped
	// (or, for StateExisting, of the cluster after this member joins), as
	// etcd's --initial-cluster: "name=http://host:port,...", peer URLs.
	// Empty: this member alone.
	InitialCluster string
	// ClusterState is StateNew (default) or StateExisting.
	ClusterState string
	// ClusterToken tells clusters bootstrapped from the same member
	// list apart (default "classroute").
	ClusterToken string
	// ClientTLS and PeerTLS, when their CertFile is set, serve the client
	// and peer URLs over TLS (https). A TrustedCAFile then also requires
	// every client or peer to present a certificate signed by it.
	ClientTLS, PeerTLS TLS
	// HeartbeatInterval and ElectionTimeout are raft's timing (default
	// etcd's: 100ms and 1s).
	HeartbeatInterval, ElectionTimeout time.Duration
	// StartTimeout bounds the wait for the member to become ready, which
	// for a member of a new cluster includes waiting for a quorum of its
	// peers (default 30s; negative: wait until ctx ends).
	StartTimeout time.Duration
	// LogLevel is etcd's own log level (default "error"): with Logger,
	// the least level of etcd's messages passed on to it.
	LogLevel string
	// Logger, when set, takes etcd's logs (ZapLogger): in its format,
	// at its level, etcd's messages below LogLevel dropped. Nil: etcd
	// logs JSON to stderr itself.
	Logger *slog.Logger
	// UnsafeNoFsync disables fsync: for throwaway test members only.
	UnsafeNoFsync bool
	// QuotaBytes is the member's backend quota (etcd's
	// --quota-backend-bytes): 0 for etcd's default, 2 GiB; at most
	// MaxQuotaBytes. A full store raises etcd's NOSPACE alarm and refuses
	// writes, so an estate of a million placements needs more than 2 GiB.
	QuotaBytes int64
}

// TLS names the PEM files of one listener.
type TLS struct {
	CertFile, KeyFile string
	// TrustedCAFile, when set, is the CA that signs the certificates the
	// other side must present.
	TrustedCAFile string
}

func (t TLS) enabled() bool { return t.CertFile != "" }

func (t TLS) info() transport.TLSInfo {
	return transport.TLSInfo{
		CertFile:       t.CertFile,
		KeyFile:        t.KeyFile,
		TrustedCAFile:  t.TrustedCAFile,
		ClientCertAuth: t.TrustedCAFile != "",
	}
}

func (t TLS) validate(what string) error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("%s TLS: certificate and key go together", what)
	}
	if t.TrustedCAFile != "" && t.CertFile == "" {
		return fmt.Errorf("%s TLS: a trusted CA needs a certificate and key", what)
	}
	return nil
}

// The bounds of Config.QuotaBytes: etcd warns above 8 GiB, and a quota
// below 64 MiB would fill with the catalogue and a day's audit.
const (
	MinQuotaBytes = 64 << 20
	MaxQuotaBytes = 8 << 30
)

// Member is a running embedded etcd member.
type Member struct {
	etcd      *embed.Etcd
	endpoints []string
	peerURL   string
	name      string
	closeOnce sync.Once
	closing   atomic.Bool // see shutdownNoise
}

// Start starts a member and waits until it serves: for a member of a
// new cluster, until a quorum of the cluster has started and elected a
// leader.
func Start(ctx context.Context, c Config) (*Member, error) {
	cfg, err := c.embed()
	if err != nil {
		return nil, err
	}
	m := &Member{}
	if c.Logger != nil {
		floor, err := zapcore.ParseLevel(cfg.LogLevel)
		if err != nil {
			return nil, fmt.Errorf("etcdlocal: log level: %w", err)
		}
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(newSlogCore(c.Logger, floor, &m.closing)))
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: start: %w", err)
	}
	var timeout <-chan time.Time
	if c.StartTimeout >= 0 {
		d := c.StartTimeout
		if d == 0 {
			d = 30 * time.Second
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		m.closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcdlocal: %w", err)
	case <-timeout:
		m.closing.Store(true)
		e.Close()
		return nil, errors.New("etcdlocal: not ready in time (a member of a new cluster waits for a quorum of its peers)")
	case <-ctx.Done():
		m.closing.Store(true)
		e.Close()
		return nil, ctx.Err()
	}
	m.etcd = e
	m.endpoints = []string{cfg.AdvertiseClientUrls[0].Host}
	m.peerURL = cfg.AdvertisePeerUrls[0].String()
	m.name = cfg.Name
	return m, nil
}

// embed checks c and turns it into etcd's configuration.
func (c Config) embed() (*embed.Config, error) {
	if c.Dir == "" {
		return nil, errors.New("etcdlocal: data dir required")
	}
	if c.Name == "" {
		c.Name = "classroute"
	}
	if c.ClusterState == "" {
		c.ClusterState = StateNew
	}
	if c.ClusterState != StateNew && c.ClusterState != StateExisting {
		return nil, fmt.Errorf("etcdlocal: cluster state %q: want %q or %q", c.ClusterState, StateNew, StateExisting)
	}
	if c.ClusterToken == "" {
		c.ClusterToken = "classroute"
	}
	if c.LogLevel == "" {
		c.LogLevel = "error"
	}
	if c.QuotaBytes != 0 && (c.QuotaBytes < MinQuotaBytes || c.QuotaBytes > MaxQuotaBytes) {
		return nil, fmt.Errorf("etcdlocal: quota %d bytes: want 0 (etcd's default, 2 GiB) or %d to %d", c.QuotaBytes, int64(MinQuotaBytes), int64(MaxQuotaBytes))
	}
	if err := errors.Join(c.ClientTLS.validate("client"), c.PeerTLS.validate("peer")); err != nil {
		return nil, fmt.Errorf("etcdlocal: %w", err)
	}
	cu, err := listenURL(c.ClientAddr, c.ClientTLS.enabled())
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: client address: %w", err)
	}
	pu, err := listenURL(c.PeerAddr, c.PeerTLS.enabled())
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: peer address: %w", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.Dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = c.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	} else if !listsPeer(cfg.InitialCluster, c.Name, pu.String()) {
		return nil, fmt.Errorf("etcdlocal: initial cluster %q does not list this member as %s=%s", c.InitialCluster, c.Name, pu.String())
	}
	cfg.ClusterState = c.ClusterState
	cfg.InitialClusterToken = c.ClusterToken
	cfg.ClientTLSInfo = c.ClientTLS.info()
	cfg.PeerTLSInfo = c.PeerTLS.info()
	if c.HeartbeatInterval > 0 {
		cfg.TickMs = uint(c.HeartbeatInterval / time.Millisecond)
	}
	if c.ElectionTimeout > 0 {
		cfg.ElectionMs = uint(c.ElectionTimeout / time.Millisecond)
	}
	cfg.Logger = "zap"
	cfg.LogLevel = c.LogLevel
	cfg.LogOutputs = []string{"stderr"}
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	cfg.QuotaBackendBytes = c.QuotaBytes
	// Keep an hour of history so watchers can resume; compaction past
	// that is handled by re-listing.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	return cfg, nil
}

// listsPeer reports whether an initial-cluster list names this member
// with this peer URL.
func listsPeer(initial, name, peer string) bool {
	for _, m := range strings.Split(initial, ",") {
		n, u, _ := strings.Cut(strings.TrimSpace(m), "=")
		if n == name && strings.TrimSuffix(u, "/") == peer {
			return true
		}
	}
	return false
}

// Endpoints are the client endpoints ("host:port").
func (m *Member) Endpoints() []string { return m.endpoints }

// Name is the member's name.
func (m *Member) Name() string { return m.name }

// PeerURL is the member's advertised peer URL.
func (m *Member) PeerURL() string { return m.peerURL }

// Err reports fatal errors of the running member.
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// Close stops the member and waits for it. etcd hands leadership to a
// peer first when it leads a cluster of several. It is safe to call
// more than once.
func (m *Member) Close() {
	m.closeOnce.Do(func() {
		m.closing.Store(true)
		m.etcd.Close()
	})
}

// listenURL checks addr and makes the member's URL of it. Without TLS
// addr must be loopback; empty picks a free loopback port.
func listenURL(addr string, tls bool) (url.URL, error) {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return url.URL{}, err
		}
		defer l.Close()
		return url.URL{Scheme: scheme, Host: l.Addr().String()}, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return url.URL{}, err
	}
	if port == "" || port == "0" {
		return url.URL{}, fmt.Errorf("%q: a member's address needs a fixed port", addr)
	}
	if !tls && !IsLoopback(host) {
		return url.URL{}, fmt.Errorf("%q is not a loopback address: plaintext etcd serves only this machine; give a TLS certificate and key to listen on %s", addr, host)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return url.URL{}, fmt.Errorf("%q: a member advertises the address it listens on, so give the host's own address, not %s", addr, host)
	}
	return url.URL{Scheme: scheme, Host: addr}, nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
