package main

import (
	"crypto/ed25519"
	"fmt"
	"os"

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
		if key, err = state.ParseAuditKey(data); err != nil {
			return nil, nil, fmt.Errorf("-audit-key %s: %w", cfg.AuditKey, err)
		}
		pub = key.Public().(ed25519.PublicKey)
	}
	if cfg.AuditPubKey != "" {
		data, err := os.ReadFile(cfg.AuditPubKey)
		if err != nil {
			return nil, nil, fmt.Errorf("-audit-pubkey: %w", err)
		}
		p, err := state.ParseAuditPublicKey(data)
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
