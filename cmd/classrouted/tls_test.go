package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/classroute/classroute/router/devca"
	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/tlsfiles"
)

// tlsFixture makes CAs and certificates and writes them where a daemon
// reads them, replacing files as a rotation does.
type tlsFixture struct {
	t   *testing.T
	dir string
}

func (f tlsFixture) ca() *devca.CA {
	ca, err := devca.New("test.example")
	if err != nil {
		f.t.Fatal(err)
	}
	return ca
}

func (f tlsFixture) issue(ca *devca.CA, r devca.Request) *devca.Issued {
	i, err := ca.Issue(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return i
}

func (f tlsFixture) server(ca *devca.CA) *devca.Issued {
	return f.issue(ca, devca.Request{Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

func (f tlsFixture) client(ca *devca.CA, name string) *devca.Issued {
	return f.issue(ca, devca.Request{ID: "spiffe://test.example/admin/" + name})
}

// write replaces dir/name with data: a new file renamed over the old.
func (f tlsFixture) write(name string, data []byte) string {
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		f.t.Fatal(err)
	}
	return path
}

func (f tlsFixture) writeCert(name string, c *x509.Certificate) string {
	return f.write(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func (f tlsFixture) writePair(name string, i *devca.Issued) (cert, key string) {
	der, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil {
		f.t.Fatal(err)
	}
	key = f.write(name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return f.writeCert(name+".pem", i.Cert), key
}

// The gRPC listener's certificate and client CA bundle, rotated on
// disk under a running server, are what the next connection's handshake
// presents and trusts.
func TestListenerCertificatesRotate(t *testing.T) {
	tlsCheckEvery = 0
	t.Cleanup(func() { tlsCheckEvery = tlsfiles.DefaultCheckEvery })
	f := tlsFixture{t, t.TempDir()}
	serverCA, clientCA1, clientCA2 := f.ca(), f.ca(), f.ca()
	srv1, srv2 := f.server(serverCA), f.server(serverCA)
	alice, bob := f.client(clientCA1, "alice"), f.client(clientCA2, "bob")
	cfg := &Config{TLSClientCA: f.writeCert("client-ca.pem", clientCA1.Cert)}
	cfg.TLSCert, cfg.TLSKey = f.writePair("server", srv1)

	tc, err := serverTLS(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	healthpb.RegisterHealthServer(g, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	// check connects anew as who and returns the serial of the server's
	// certificate, or the call's error.
	check := func(who *devca.Issued) (*big.Int, error) {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{who.TLS()}, MinVersion: tls.VersionTLS13})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var p peer.Peer
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
			return nil, err
		}
		return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber, nil
	}

	if got, err := check(alice); err != nil || got.Cmp(srv1.Cert.SerialNumber) != 0 {
		t.Fatalf("before the rotation: %v, %v; want the first certificate", got, err)
	}
	f.writePair("server", srv2)
	if got, err := check(alice); err != nil || got.Cmp(srv2.Cert.SerialNumber) != 0 {
		t.Fatalf("after the certificate's rotation: %v, %v; want the new certificate", got, err)
	}
	if _, err := check(bob); err == nil {
		t.Fatal("a client of the second CA served before its CA is trusted")
	}
	f.writeCert("client-ca.pem", clientCA2.Cert)
	if _, err := check(bob); err != nil {
		t.Fatalf("after the client CA's rotation: %v", err)
	}
	if _, err := check(alice); err == nil {
		t.Error("a client of the CA rotated out still served")
	}
}

// The etcd client's certificate and CA bundle are re-read too: a client
// made after the CA file changed trusts what it now says.
func TestEtcdClientCertificatesRotate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd member")
	}
	tlsCheckEvery = 0
	t.Cleanup(func() { tlsCheckEvery = tlsfiles.DefaultCheckEvery })
	f := tlsFixture{t, t.TempDir()}
	etcdCA, otherCA, clientCA := f.ca(), f.ca(), f.ca()
	mcert, mkey := f.writePair("member", f.server(etcdCA))
	member, err := etcdlocal.Start(context.Background(), etcdlocal.Config{
		Dir: t.TempDir(), UnsafeNoFsync: true, Logger: slog.New(slog.DiscardHandler),
		ClientTLS: etcdlocal.TLS{CertFile: mcert, KeyFile: mkey, TrustedCAFile: f.writeCert("client-ca.pem", clientCA.Cert)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	cfg := &Config{Etcd: member.Endpoints(), EtcdCA: f.writeCert("etcd-ca.pem", etcdCA.Cert)}
	cfg.EtcdCert, cfg.EtcdKey = f.writePair("daemon", f.client(clientCA, "daemon"))
	tc, err := etcdClientTLS(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	put := func() error {
		cli, err := clientv3.New(clientv3.Config{Endpoints: member.Endpoints(), TLS: tc, DialTimeout: 2 * time.Second,
			Logger: etcdlocal.ZapLogger(slog.New(slog.DiscardHandler), 0)})
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = cli.Put(ctx, "k", "v")
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("over TLS: %v", err)
	}
	f.writeCert("etcd-ca.pem", otherCA.Cert)
	if err := put(); err == nil {
		t.Fatal("the member's certificate still trusted after its CA left the bundle")
	}
	f.writeCert("etcd-ca.pem", etcdCA.Cert)
	f.writePair("daemon", f.client(clientCA, "daemon-renewed"))
	if err := put(); err != nil {
		t.Fatalf("after the bundle and the client certificate rotated: %v", err)
	}
}

func TestEtcdHosts(t *testing.T) {
	got := etcdHosts([]string{"10.0.0.1:2379", "https://etcd-0.etcd:2379", "[::1]:2379", "etcd-1"})
	want := []string{"10.0.0.1", "etcd-0.etcd", "::1", "etcd-1"}
	if !slices.Equal(got, want) {
		t.Errorf("etcdHosts: %q; want %q", got, want)
	}
}
