package audit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// TestParseKeys reads back the keys `classroutectl audit keygen` writes
// and refuses what is not an ed25519 key in the expected block.
func TestParseKeys(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if k, err := ParseKey(keyPEM); err != nil || !k.Equal(key) {
		t.Errorf("ParseKey = %v; want the key", err)
	}
	if k, err := ParsePublicKey(pubPEM); err != nil || !k.Equal(pub) {
		t.Errorf("ParsePublicKey = %v; want the key", err)
	}

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPubDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for _, tc := range []struct {
		name string
		pem  []byte
		pub  bool
		want string
	}{
		{"public key as private", pubPEM, false, "want a PEM PRIVATE KEY block"},
		{"private key as public", keyPEM, true, "want a PEM PUBLIC KEY block"},
		{"not PEM", []byte("key"), false, "want a PEM PRIVATE KEY block"},
		{"garbled private", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), false, "audit key: "},
		{"garbled public", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), true, "audit public key: "},
		{"ecdsa private", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), false, "want ed25519"},
		{"ecdsa public", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPubDER}), true, "want ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.pub {
				_, err = ParsePublicKey(tc.pem)
			} else {
				_, err = ParseKey(tc.pem)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want ...%s...", err, tc.want)
			}
		})
	}
}
