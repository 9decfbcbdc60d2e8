// Package etcdlocal runs a single-member etcd inside the process: the daemon's default store and the tests' real etcd.
package etcdlocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config says where the member keeps its data and listens.
type Config struct {
	// Dir is the data directory. Required.
	Dir string
	// ClientAddr and PeerAddr are loopback host:port addresses; empty
	// picks a free port.
	ClientAddr, PeerAddr string
	// StartTimeout bounds the wait for the member to become ready (default 30s).
	StartTimeout time.Duration
	// LogLevel is etcd's own log level (default "error"; etcd logs to stderr).
	LogLevel string
	// UnsafeNoFsync disables fsync: for throwaway test members only.
	UnsafeNoFsync bool
}

// Member is a running embedded etcd member.
type Member struct {
	etcd      *embed.Etcd
	endpoints []string
}

// Start starts a member and waits until it serves.
func Start(ctx context.Context, c Config) (*Member, error) {
	if c.Dir == "" {
		return nil, errors.New("etcdlocal: data dir required")
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.LogLevel == "" {
		c.LogLevel = "error"
	}
	var err error
	if c.ClientAddr, err = loopbackAddr(c.ClientAddr); err != nil {
		return nil, fmt.Errorf("etcdlocal: client address: %w", err)
	}
	if c.PeerAddr, err = loopbackAddr(c.PeerAddr); err != nil {
		return nil, fmt.Errorf("etcdlocal: peer address: %w", err)
	}
	cu := url.URL{Scheme: "http", Host: c.ClientAddr}
	pu := url.URL{Scheme: "http", Host: c.PeerAddr}

	cfg := embed.NewConfig()
	cfg.Name = "classroute"
	cfg.Dir = c.Dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger = "zap"
	cfg.LogLevel = c.LogLevel
	cfg.LogOutputs = []string{"stderr"}
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	// Keep an hour of history so watchers can resume; compaction past
	// that is handled by re-listing.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdlocal: start: %w", err)
	}
	timer := time.NewTimer(c.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdlocal: %w", err)
	case <-timer.C:
		e.Close()
		return nil, fmt.Errorf("etcdlocal: not ready after %v", c.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	return &Member{etcd: e, endpoints: []string{cu.Host}}, nil
}

// Endpoints are the client endpoints ("127.0.0.1:port").
func (m *Member) Endpoints() []string { return m.endpoints }

// Err reports fatal errors of the running member.
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// Close stops the member and waits for it.
func (m *Member) Close() { m.etcd.Close() }

// loopbackAddr checks that addr is a loopback host:port, or picks a free
// loopback port when addr is empty.
func loopbackAddr(addr string) (string, error) {
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer l.Close()
		return l.Addr().String(), nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("%q is not a loopback address: the embedded member serves only this machine", addr)
	}
	return addr, nil
}
