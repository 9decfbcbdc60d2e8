package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/state"
)

// auditKeys reads -audit-key (signs checkpoints) and -audit-pubkey (the
// default for VerifyAudit; without it, the signing key's public half).
func auditKeys(cfg *Config) (ed25519.PrivateKey, ed25519.PublicKey, error) {
	var key ed25519.PrivateKey
	var pub ed25519.PublicKey
	if cfg.AuditKey != "" {
		data, err := os.ReadFile(cfg.AuditKey)
		if err != nil {
			return nil, nil, fmt.Errorf("-audit-key: %w", err)
		}
		if key, err = audit.ParseKey(data); err != nil {
			return nil, nil, fmt.Errorf("-audit-key %s: %w", cfg.AuditKey, err)
		}
		pub = key.Public().(ed25519.PublicKey)
	}
	if cfg.AuditPubKey != "" {
		data, err := os.ReadFile(cfg.AuditPubKey)
		if err != nil {
			return nil, nil, fmt.Errorf("-audit-pubkey: %w", err)
		}
		p, err := audit.ParsePublicKey(data)
		if err != nil {
			return nil, nil, fmt.Errorf("-audit-pubkey %s: %w", cfg.AuditPubKey, err)
		}
		if pub != nil && !pub.Equal(p) {
			return nil, nil, fmt.Errorf("-audit-pubkey %s is not the public half of -audit-key", cfg.AuditPubKey)
		}
		pub = p
	}
	return key, pub, nil
}

// validateAudit checks the audit chain's flags.
func (c *Config) validateAudit() []error {
	var errs []error
	if c.AuditCheckpoint <= 0 || c.AuditMaxSkew <= 0 {
		errs = append(errs, errors.New("-audit-checkpoint-interval and -audit-max-skew must be positive"))
	}
	if c.AuditCheckpointDir != "" && c.AuditKey == "" {
		errs = append(errs, errors.New("-audit-checkpoint-dir keeps signed checkpoints: it needs -audit-key"))
	}
	return errs
}

// auditChain configures the audit chainer: key signs its checkpoints,
// -audit-checkpoint-dir anchors them outside etcd, and what it finds is
// counted in reg.
func auditChain(cfg *Config, key ed25519.PrivateKey, reg prometheus.Registerer) (state.AuditChainConfig, error) {
	c := state.AuditChainConfig{Key: key, CheckpointInterval: cfg.AuditCheckpoint, MaxSkew: cfg.AuditMaxSkew,
		Observer: newAuditMetrics(reg)}
	if dir := cfg.AuditCheckpointDir; dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return c, fmt.Errorf("-audit-checkpoint-dir: %w", err)
		}
		// Refuse a directory the daemon cannot write now, rather than
		// find out at the first checkpoint.
		f, err := os.CreateTemp(dir, ".probe-*")
		if err != nil {
			return c, fmt.Errorf("-audit-checkpoint-dir: %w", err)
		}
		err = errors.Join(f.Close(), os.Remove(f.Name()))
		if err != nil {
			return c, fmt.Errorf("-audit-checkpoint-dir: %w", err)
		}
		if _, err := audit.AnchorDir(dir).Read(); err != nil {
			return c, fmt.Errorf("-audit-checkpoint-dir: %w", err)
		}
		c.Anchor = audit.AnchorDir(dir)
	}
	return c, nil
}

// auditMetrics counts what the audit chainer reports.
type auditMetrics struct {
	tampered       prometheus.Counter
	anchored       prometheus.Counter
	anchorFailures prometheus.Counter
}

func newAuditMetrics(reg prometheus.Registerer) *auditMetrics {
	m := &auditMetrics{
		tampered: prometheus.NewCounter(prometheus.CounterOpts{Name: "classroute_audit_tampered_total",
			Help: "Audit entries this daemon's chainer found forged, rewritten or deleted, and audit logs found cut short of or rewritten past the checkpoint anchored outside etcd; each is also in a tamper entry of the log."}),
		anchored: prometheus.NewCounter(prometheus.CounterOpts{Name: "classroute_audit_checkpoints_anchored_total",
			Help: "Signed audit checkpoints written to -audit-checkpoint-dir."}),
		anchorFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "classroute_audit_anchor_failures_total",
			Help: "Signed audit checkpoints that could not be written to -audit-checkpoint-dir, or that it holds another head for."}),
	}
	reg.MustRegister(m.tampered, m.anchored, m.anchorFailures)
	return m
}

// Tampered implements state.AuditObserver.
func (m *auditMetrics) Tampered(n int) { m.tampered.Add(float64(n)) }

// Anchored implements state.AuditObserver.
func (m *auditMetrics) Anchored(err error) {
	if err != nil {
		m.anchorFailures.Inc()
		return
	}
	m.anchored.Inc()
}
