package main_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/cmd/cmdtest"
)

// The README's mutual TLS walk-through: a development CA and
// certificates from the CLI, a daemon requiring client certificates, and
// the CLI and a simulated agent calling it as their certificates say.
func TestMutualTLSWalkthrough(t *testing.T) {
	pki := t.TempDir()
	f := func(name string) string { return filepath.Join(pki, name) }
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	certs := func(args ...string) cmdtest.Result { // no --server: certs dials nothing
		cmd := exec.Command(filepath.Join(bin, "classroutectl"), append([]string{"certs"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmdtest.Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}
	}
	const td = "classroute.test"
	for _, args := range [][]string{
		{"init", "--dir", pki, "--trust-domain", td},
		{"issue", "--dir", pki, "--server", "--dns", "localhost", "--ip", "127.0.0.1", "--out", "server"},
		{"issue", "--dir", pki, "--id", "spiffe://" + td + "/admin/root", "--out", "admin"},
		{"issue", "--dir", pki, "--id", "spiffe://" + td + "/tenant/ke-moh/user/amina", "--out", "amina"},
		{"issue", "--dir", pki, "--id", "spiffe://" + td + "/agent/ke-gov/konza-1", "--out", "konza"},
	} {
		if r := certs(args...); r.Code != 0 {
			t.Fatalf("classroutectl %v: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	if r := certs("issue", "--dir", pki, "--id", "spiffe://elsewhere.test/admin/root", "--out", "x"); r.Code != 2 || !strings.Contains(r.Stderr, `want "classroute.test"`) {
		t.Errorf("issuing for another trust domain: exit %d %q; want 2 naming the trust domain", r.Code, firstLine(r.Stderr))
	}

	// The CLI calls as the administrator unless told otherwise.
	t.Setenv("CLASSROUTE_TLS_CA", f("ca.pem"))
	t.Setenv("CLASSROUTE_TLS_CERT", f("admin.pem"))
	t.Setenv("CLASSROUTE_TLS_KEY", f("admin-key.pem"))
	e := start(t, "--tls-cert", f("server.pem"), "--tls-key", f("server-key.pem"),
		"--tls-client-ca", f("ca.pem"), "--trust-domain", td, "--agent-ttl", "2s", "--reconcile=false")

	// amina is who her certificate says; ke-moh's record does not list
	// her among its members, so she has no role yet.
	if r := e.Run("tenants", "--tls-cert", f("amina.pem"), "--tls-key", f("amina-key.pem")); r.Code != 1 ||
		!strings.Contains(r.Stderr, "PermissionDenied: spiffe://"+td+"/tenant/ke-moh/user/amina may not call") {
		t.Errorf("tenants as amina: exit %d %q; want PermissionDenied naming her", r.Code, firstLine(r.Stderr))
	}
	if r := e.Run("tenants", "--tls-cert=", "--tls-key="); r.Code != 1 || !strings.Contains(r.Stderr, "give --tls-cert and --tls-key") {
		t.Errorf("tenants with no client certificate: exit %d %q; want 1 and a hint", r.Code, firstLine(r.Stderr))
	}
	if r := e.Run("tenants", "--tls-ca=", "--tls-cert=", "--tls-key="); r.Code != 1 || !strings.Contains(r.Stderr, "give --tls-ca") {
		t.Errorf("tenants in plaintext: exit %d %q; want 1 and a hint", r.Code, firstLine(r.Stderr))
	}

	const konza = "ke-gov/konza-1"
	// --capacity: an agent identity may not read the catalogue
	// (GetRegion), where the simulator otherwise finds it.
	output, _ := e.background("agent", "sim", "--region", konza, "--region", "aws/us-gov-west-1",
		"--capacity", "64000m,262144Mi,0gpu", "--tls-cert", f("konza.pem"), "--tls-key", f("konza-key.pem"))
	until(t, 5*time.Second, "the konza agent live", func() bool { return e.Regions()[konza].GetHealth().GetAgentLive() })
	until(t, 5*time.Second, "the other region refused", func() bool {
		return strings.Contains(output(), "may serve region ke-gov/konza-1 only")
	})
	if e.Regions()["aws/us-gov-west-1"].GetHealth().GetAgentLive() {
		t.Errorf("the konza agent serves aws/us-gov-west-1")
	}
}
