package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/cmd/cmdtest"
	"github.com/classroute/classroute/router/devca"
)

// certsCLI runs "classroutectl certs ARGS": no daemon is involved.
func certsCLI(t *testing.T, args ...string) cmdtest.Result {
	t.Helper()
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "classroutectl"), append([]string{"certs"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmdtest.Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}
}

// certs issue makes certificates for canonical SPIFFE IDs only: every
// other spelling of an identity is refused with exit 2 and a reason, and
// no file is written. certs init likewise wants a canonical trust domain.
func TestCertsIssueRefusesNonCanonicalIDs(t *testing.T) {
	pki := t.TempDir()
	const td = "classroute.test"
	if r := certsCLI(t, "init", "--dir", pki, "--trust-domain", td); r.Code != 0 {
		t.Fatalf("certs init: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := certsCLI(t, "issue", "--dir", pki, "--id", "spiffe://"+td+"/admin/alice", "--out", "alice"); r.Code != 0 {
		t.Fatalf("certs issue for the canonical ID: exit %d\n%s", r.Code, r.Stderr)
	}
	for i, tt := range []struct{ name, id, why string }{
		{"percent-encoded letter", "spiffe://" + td + "/admin/al%69ce", "percent-encoding"},
		{"percent-encoded slash", "spiffe://" + td + "/tenant/ke-moh%2Fuser%2Famina", "percent-encoding"},
		{"percent-encoded slash, lower case", "spiffe://" + td + "/tenant/ke-moh%2fuser%2famina", "percent-encoding"},
		{"percent-encoded dot", "spiffe://" + td + "/admin/%2E", "percent-encoding"},
		{"upper-case scheme", "SPIFFE://" + td + "/admin/alice", "lower case"},
		{"upper-case trust domain", "spiffe://CLASSROUTE.TEST/admin/alice", "lower case"},
		{"empty segment", "spiffe://" + td + "/admin//alice", "empty path segment"},
		{"trailing slash", "spiffe://" + td + "/admin/alice/", "trailing"},
		{"dot segment", "spiffe://" + td + "/admin/./alice", `"."`},
		{"dot-dot segment", "spiffe://" + td + "/admin/../admin/alice", `".."`},
		{"userinfo", "spiffe://alice@" + td + "/admin/alice", "user info"},
		{"port", "spiffe://" + td + ":443/admin/alice", "port"},
		{"query", "spiffe://" + td + "/admin/alice?x=1", "query"},
		{"empty query", "spiffe://" + td + "/admin/alice?", "query"},
		{"fragment", "spiffe://" + td + "/admin/alice#x", "fragment"},
		{"empty fragment", "spiffe://" + td + "/admin/alice#", "fragment"},
		{"non-ASCII", "spiffe://" + td + "/admin/al\u00edce", "non-ASCII"},
		{"over-long", "spiffe://" + td + "/admin/" + strings.Repeat("a", 3000), "bytes"},
	} {
		out := fmt.Sprintf("x%d", i)
		t.Run(tt.name, func(t *testing.T) {
			r := certsCLI(t, "issue", "--dir", pki, "--id", tt.id, "--out", out)
			if r.Code != 2 || !strings.Contains(r.Stderr, "certs issue: --id") || !strings.Contains(r.Stderr, tt.why) {
				t.Errorf("certs issue --id %.80q: exit %d %q; want 2 and a refusal naming %s", tt.id, r.Code, firstLine(r.Stderr), tt.why)
			}
			if _, err := os.Stat(filepath.Join(pki, out+".pem")); err == nil {
				t.Errorf("certs issue --id %.80q wrote %s.pem", tt.id, out)
			}
		})
	}
	for i, bad := range []string{"CLASSROUTE.TEST", "classroute%2Etest", "class route.test", "user@classroute.test", "classroute.test:443"} {
		dir := filepath.Join(pki, fmt.Sprintf("other%d", i))
		if r := certsCLI(t, "init", "--dir", dir, "--trust-domain", bad); r.Code != 2 || !strings.Contains(r.Stderr, "--trust-domain") {
			t.Errorf("certs init --trust-domain %q: exit %d %q; want 2", bad, r.Code, firstLine(r.Stderr))
		}
		if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
			t.Errorf("certs init --trust-domain %q made a CA", bad)
		}
	}
}

// The finding of issue 8, through the CLI and a daemon over mutual TLS:
// alice proposes a revocation; a second certificate of hers for
// spiffe://TD/admin/al%69ce (signed straight with the CA's key, as certs
// issue refuses it) is refused at the door, and the proposal stays
// pending until another administrator approves it.
func TestMutualTLSOtherSpellingCannotApprove(t *testing.T) {
	pki := t.TempDir()
	f := func(name string) string { return filepath.Join(pki, name) }
	const td = "classroute.test"
	for _, args := range [][]string{
		{"init", "--dir", pki, "--trust-domain", td},
		{"issue", "--dir", pki, "--server", "--ip", "127.0.0.1", "--out", "server"},
		{"issue", "--dir", pki, "--id", "spiffe://" + td + "/admin/alice", "--out", "alice"},
		{"issue", "--dir", pki, "--id", "spiffe://" + td + "/admin/bob", "--out", "bob"},
	} {
		if r := certsCLI(t, args...); r.Code != 0 {
			t.Fatalf("classroutectl certs %v: exit %d\n%s", args, r.Code, r.Stderr)
		}
	}
	ca, err := devca.Load(pki)
	if err != nil {
		t.Fatal(err)
	}
	writeCert(t, ca, "spiffe://"+td+"/admin/al%69ce", f("alice2.pem"), f("alice2-key.pem"))

	t.Setenv("CLASSROUTE_TLS_CA", f("ca.pem"))
	t.Setenv("CLASSROUTE_TLS_CERT", f("alice.pem"))
	t.Setenv("CLASSROUTE_TLS_KEY", f("alice-key.pem"))
	e := start(t, "--tls-cert", f("server.pem"), "--tls-key", f("server-key.pem"),
		"--tls-client-ca", f("ca.pem"), "--trust-domain", td, "--reconcile=false")

	ch := e.Change("region", "revoke", "aws/us-gov-west-1", "--reason", "ATO lapsed")
	if ch.GetState() != "pending" || ch.GetProposedBy() != "spiffe://"+td+"/admin/alice" {
		t.Fatalf("proposal %v", ch)
	}
	r := e.Run("change", "approve", ch.GetId(), "--tls-cert", f("alice2.pem"), "--tls-key", f("alice2-key.pem"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "Unauthenticated") || !strings.Contains(r.Stderr, "percent-encoding") {
		t.Errorf("approval as al%%69ce: exit %d %q; want 1 Unauthenticated naming the percent-encoding", r.Code, firstLine(r.Stderr))
	}
	got := e.Change("change", "get", ch.GetId())
	if got.GetState() != "pending" {
		t.Fatalf("after approval as al%%69ce the change is %s (decided by %s); want pending", got.GetState(), got.GetDecidedBy())
	}
	done := e.Change("change", "approve", ch.GetId(), "--tls-cert", f("bob.pem"), "--tls-key", f("bob-key.pem"))
	if done.GetState() != "applied" || done.GetDecidedBy() != "spiffe://"+td+"/admin/bob" {
		t.Errorf("approval by bob: %s by %q", done.GetState(), done.GetDecidedBy())
	}
}

// writeCert writes a client certificate of ca for id, spelled as given,
// and its key: what a careless or hostile CA operator could make.
func writeCert(t *testing.T, ca *devca.CA, id, certPath, keyPath string) {
	t.Helper()
	u, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}
