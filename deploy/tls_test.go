package deploy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/classroute/classroute/cmd/cmdtest"
	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
)

// pki writes a CA and two certificates it signs, for 127.0.0.1: a
// member's (server and client use) and a daemon's (client use). It
// returns the directory; files are ca.pem, member.pem, member-key.pem,
// daemon.pem, daemon-key.pem.
func pki(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "classroute test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, name := range []string{"member", "daemon"} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		c := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, c, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	return dir
}

// A member serving clients over TLS that requires client certificates,
// and a daemon that speaks TLS to it with -etcd-ca/-etcd-cert/-etcd-key;
// -health-listen serves grpc.health.v1 alone, in plaintext.
func TestEtcdTLSAndHealthListener(t *testing.T) {
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	certs := pki(t)
	f := func(name string) string { return filepath.Join(certs, name) }
	dir := t.TempDir()
	client := etcdtest.FreeAddr(t)
	m := &member{proc: newProc(t, dir, "m1", filepath.Join(bin, "classroute-etcd"),
		"--name", "m1", "--data-dir", filepath.Join(dir, "m1"), "--client-addr", client, "--peer-addr", etcdtest.FreeAddr(t),
		"--client-cert", f("member.pem"), "--client-key", f("member-key.pem"), "--client-ca", f("ca.pem"),
		"--unsafe-no-fsync"), client: client}
	m.start()
	m.waitLog(0, "member serving", 60*time.Second)

	// Plaintext is refused: the member really speaks TLS.
	plain := etcdtest.Dial(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = plain.Get(ctx, "k")
	cancel()
	plain.Close()
	if err == nil {
		t.Fatal("a plaintext client read from the TLS member")
	}

	healthAddr := etcdtest.FreeAddr(t)
	d := startDaemons(t, 1, []string{client},
		"--etcd-ca", f("ca.pem"), "--etcd-cert", f("daemon.pem"), "--etcd-key", f("daemon-key.pem"),
		"--health-listen", healthAddr)[0]
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.place.List(ctx, &pb.ListRequest{}); err != nil {
		t.Fatalf("list through a daemon on the TLS member: %v", err)
	}

	conn, err := grpc.NewClient(healthAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health on -health-listen: %v, %v; want SERVING", r, err)
	}
	if _, err := pb.NewPlacementServiceClient(conn).List(ctx, &pb.ListRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("placement service on -health-listen: %v; want Unimplemented (health alone)", err)
	}
}
