package audit

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseKey reads an ed25519 private key in PEM PKCS #8 (what
// `classroutectl audit keygen` and `openssl genpkey -algorithm ed25519`
// write).
func ParseKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("audit key: want a PEM PRIVATE KEY block (PKCS #8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit key: %T, want ed25519", k)
	}
	return ek, nil
}

// ParsePublicKey reads an ed25519 public key in PEM PKIX ("PUBLIC KEY",
// as `openssl pkey -pubout` writes).
func ParsePublicKey(pemBytes []byte) (ed25519.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("audit public key: want a PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit public key: %T, want ed25519", k)
	}
	return ek, nil
}
