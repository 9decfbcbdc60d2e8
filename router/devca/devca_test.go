package devca_test

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/devca"
)

// A CA written and loaded again signs certificates that verify against
// it, for what they are for; keys are 0600 and nothing is overwritten.
func TestIssueWriteLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := devca.New("classroute.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(dir); err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(dir); err == nil || !strings.Contains(err.Error(), "not overwriting") {
		t.Errorf("second Write: %v; want a refusal to overwrite", err)
	}
	ca, err = devca.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ca.TrustDomain(); got != "classroute.test" {
		t.Errorf("TrustDomain: got %q; want classroute.test", got)
	}

	srv, err := ca.Issue(devca.Request{Server: true, DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("server certificate: %v", err)
	}
	cli, err := ca.Issue(devca.Request{ID: "spiffe://classroute.test/tenant/ke-moh/user/amina"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if len(cli.Cert.URIs) != 1 || cli.Cert.URIs[0].String() != "spiffe://classroute.test/tenant/ke-moh/user/amina" {
		t.Errorf("client URIs: got %v; want the one SPIFFE ID", cli.Cert.URIs)
	}
	if _, err := cli.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Errorf("a client certificate verifies for server use")
	}

	if err := cli.Write(dir, "amina"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"ca-key.pem": 0o600, "amina-key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v; want %v", name, got, want)
		}
	}
	if err := cli.Write(dir, "amina"); err == nil {
		t.Errorf("second Write of amina: no error; want a refusal to overwrite")
	}
}

func TestIssueRefuses(t *testing.T) {
	ca, err := devca.New("classroute.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  devca.Request
		want string
	}{
		{"nothing", devca.Request{}, "want a client identity"},
		{"server without names", devca.Request{Server: true}, "at least one DNS name or IP"},
		{"not spiffe", devca.Request{ID: "https://classroute.test/admin/x"}, "want spiffe://"},
		{"another trust domain", devca.Request{ID: "spiffe://elsewhere.test/admin/x"}, `trust domain "classroute.test" only`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ca.Issue(tt.req); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// A CA and a certificate log what they are, never their keys.
func TestLogValueHasNoKey(t *testing.T) {
	ca, err := devca.New("classroute.test")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(devca.Request{ID: "spiffe://classroute.test/admin/root"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("made", "ca", ca, "cert", iss, "cert_value", *iss)
	out := buf.String()
	for _, k := range []*big.Int{ca.Key.D, iss.Key.D} {
		if strings.Contains(out, k.String()) || strings.Contains(out, k.Text(16)) {
			t.Errorf("log carries a private key:\n%s", out)
		}
	}
	if !strings.Contains(out, "spiffe://classroute.test/admin/root") {
		t.Errorf("log lacks the certificate's identity:\n%s", out)
	}
}

// A CA signs an identity in its canonical spelling only: a second
// spelling of alice would be a second identity the server reads as her.
// A CA's trust domain is canonical too.
func TestIssueRefusesNonCanonicalIDs(t *testing.T) {
	ca, err := devca.New("classroute.test")
	if err != nil {
		t.Fatal(err)
	}
	const base = "spiffe://classroute.test"
	for _, tt := range []struct{ name, id, want string }{
		{"percent-encoded letter", base + "/admin/al%69ce", "percent-encoding"},
		{"percent-encoded slash", base + "/tenant/ke-moh%2Fuser%2Famina", "percent-encoding"},
		{"percent-encoded slash, lower case", base + "/tenant/ke-moh%2fuser%2famina", "percent-encoding"},
		{"percent-encoded dot", base + "/admin/%2E%2E", "percent-encoding"},
		{"upper-case scheme", "SPIFFE://classroute.test/admin/alice", "lower case"},
		{"upper-case trust domain", "spiffe://Classroute.test/admin/alice", "lower case"},
		{"empty segment", base + "/admin//alice", "empty path segment"},
		{"trailing slash", base + "/admin/alice/", "trailing"},
		{"dot segment", base + "/admin/./alice", `"."`},
		{"dot-dot segment", base + "/x/../admin/alice", `".."`},
		{"userinfo", "spiffe://alice@classroute.test/admin/alice", "user info"},
		{"port", "spiffe://classroute.test:443/admin/alice", "port"},
		{"query", base + "/admin/alice?", "query"},
		{"fragment", base + "/admin/alice#", "fragment"},
		{"non-ASCII", base + "/admin/al\u00edce", "non-ASCII"},
		{"over-long", base + "/admin/" + strings.Repeat("a", 2048), "at most 2048"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := ca.Issue(devca.Request{ID: tt.id})
			if err == nil {
				t.Fatalf("Issue(%.80q): signed %v", tt.id, iss.Cert.URIs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Issue(%.80q): %v; want an error naming %s", tt.id, err, tt.want)
			}
		})
	}
	for _, td := range []string{"", "Classroute.test", "classroute%2Etest", "classroute.test:443", "a@classroute.test", "class route.test"} {
		if _, err := devca.New(td); err == nil {
			t.Errorf("New(%q): made a CA; want a refusal", td)
		}
	}
}
