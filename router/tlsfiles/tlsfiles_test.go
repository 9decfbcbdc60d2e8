package tlsfiles_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/classroute/classroute/router/devca"
	"github.com/classroute/classroute/router/tlsfiles"
)

const td = "test.example"

func newCA(t *testing.T) *devca.CA {
	t.Helper()
	ca, err := devca.New(td)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *devca.CA, r devca.Request) *devca.Issued {
	t.Helper()
	i, err := ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func server(t *testing.T, ca *devca.CA) *devca.Issued {
	return issue(t, ca, devca.Request{Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

func client(t *testing.T, ca *devca.CA, name string) *devca.Issued {
	return issue(t, ca, devca.Request{ID: "spiffe://" + td + "/admin/" + name})
}

// replace writes data to path as a rotation does: a new file renamed
// over the old.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writePair(t *testing.T, dir, name string, i *devca.Issued) (cert, key string) {
	t.Helper()
	kder, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	replace(t, key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	replace(t, cert, certPEM(i.Cert))
	return cert, key
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve accepts TLS connections on l until it is closed: each that
// completes its handshake is sent "ok", and the serial of the client
// certificate it presented (if any) goes to clients.
func serve(l net.Listener, clients chan<- *big.Int) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			tc := c.(*tls.Conn)
			if tc.Handshake() != nil {
				return
			}
			if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 && clients != nil {
				clients <- pc[0].SerialNumber
			}
			_, _ = tc.Write([]byte("ok"))
		}()
	}
}

// dial connects with cfg and returns the server's certificate, or the
// error of the handshake or of the first read (TLS 1.3 servers refuse
// a client certificate after the client's handshake is done).
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// A listener's certificate and client CA bundle rotated on disk are the
// next handshake's; a bad file leaves the last good one, with a warning.
func TestServerRotation(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA1, clientCA2 := newCA(t), newCA(t), newCA(t)
	srv1, srv2 := server(t, serverCA), server(t, serverCA)
	alice, bob := client(t, clientCA1, "alice"), client(t, clientCA2, "bob")
	certFile, keyFile := writePair(t, dir, "server", srv1)
	caFile := filepath.Join(dir, "client-ca.pem")
	replace(t, caFile, certPEM(clientCA1.Cert))

	var logs syncBuffer
	r, err := tlsfiles.New(tlsfiles.Files{CertFile: certFile, KeyFile: keyFile, CAFile: caFile},
		slog.New(slog.NewTextHandler(&logs, nil)), tlsfiles.WithCheckEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", r.ServerConfig(&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serve(l, nil)
	as := func(who *devca.Issued) *tls.Config {
		return &tls.Config{RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{who.TLS()}, MinVersion: tls.VersionTLS13}
	}
	addr := l.Addr().String()

	if got, err := dial(addr, as(alice)); err != nil || got.SerialNumber.Cmp(srv1.Cert.SerialNumber) != 0 {
		t.Fatalf("first handshake: %v; want the first certificate", err)
	}
	writePair(t, dir, "server", srv2)
	if got, err := dial(addr, as(alice)); err != nil || got.SerialNumber.Cmp(srv2.Cert.SerialNumber) != 0 {
		t.Fatalf("after the rotation: %v; want the new certificate", err)
	}
	replace(t, certFile, []byte("not a certificate"))
	if got, err := dial(addr, as(alice)); err != nil || got.SerialNumber.Cmp(srv2.Cert.SerialNumber) != 0 {
		t.Fatalf("after a bad certificate file: %v; want the last good certificate", err)
	}
	if n := strings.Count(logs.String(), "could not be loaded"); n != 1 {
		t.Errorf("the bad file was warned of %d times; want once:\n%s", n, logs.String())
	}

	if _, err := dial(addr, as(bob)); err == nil {
		t.Fatal("bob, of the second client CA, accepted before it is trusted")
	}
	replace(t, caFile, certPEM(clientCA2.Cert))
	if _, err := dial(addr, as(bob)); err != nil {
		t.Fatalf("bob after the client CA rotated to his: %v", err)
	}
	if _, err := dial(addr, as(alice)); err == nil {
		t.Error("alice accepted after her CA left the bundle")
	}
	replace(t, caFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	if _, err := dial(addr, as(bob)); err != nil {
		t.Errorf("bob after a bad CA file: %v; want the last good bundle", err)
	}
}

// A client's certificate and CA bundle rotated on disk are the next
// handshake's: the server sees the new certificate, and the server's
// certificate is verified against the bundle as it is now, for the
// server's name.
func TestClientRotation(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2, clientCA := newCA(t), newCA(t), newCA(t)
	c1, c2 := client(t, clientCA, "d1"), client(t, clientCA, "d2")
	certFile, keyFile := writePair(t, dir, "client", c1)
	caFile := filepath.Join(dir, "ca.pem")
	replace(t, caFile, certPEM(ca1.Cert))
	r, err := tlsfiles.New(tlsfiles.Files{CertFile: certFile, KeyFile: keyFile, CAFile: caFile}, slog.New(slog.DiscardHandler), tlsfiles.WithCheckEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan *big.Int, 10)
	listen := func(ca *devca.CA) string {
		s := server(t, ca)
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{s.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go serve(l, seen)
		return l.Addr().String()
	}
	of1, of2 := listen(ca1), listen(ca2)
	// The client dials an IP address: TLS sends no name for it, and the
	// certificate is verified for the hosts given.
	cfg := func() *tls.Config { return r.ClientConfig("127.0.0.1") }

	if _, err := dial(of1, cfg()); err != nil {
		t.Fatalf("server of the trusted CA: %v", err)
	}
	if got := <-seen; got.Cmp(c1.Cert.SerialNumber) != 0 {
		t.Errorf("the server saw client certificate %v; want the first", got)
	}
	if _, err := dial(of2, cfg()); err == nil {
		t.Fatal("server of an untrusted CA accepted")
	}
	wrongName := r.ClientConfig("127.0.0.1")
	wrongName.ServerName = "etcd.example" // sent: the name verified
	if _, err := dial(of1, wrongName); err == nil || !strings.Contains(err.Error(), "etcd.example") {
		t.Errorf("server certificate for another name: %v; want refused", err)
	}
	if _, err := dial(of1, r.ClientConfig("10.0.0.1")); err == nil {
		t.Error("server certificate for none of the hosts accepted")
	}
	if _, err := dial(of1, r.ClientConfig()); err == nil {
		t.Error("no name to verify for, and accepted")
	}

	writePair(t, dir, "client", c2)
	replace(t, caFile, certPEM(ca2.Cert))
	if _, err := dial(of2, cfg()); err != nil {
		t.Fatalf("after the CA bundle rotated: %v", err)
	}
	if got := <-seen; got.Cmp(c2.Cert.SerialNumber) != 0 {
		t.Errorf("after the rotation the server saw client certificate %v; want the second", got)
	}
	if _, err := dial(of1, cfg()); err == nil {
		t.Error("server of the CA rotated out accepted")
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	replace(t, bad, []byte("nothing"))
	for _, f := range []tlsfiles.Files{
		{CertFile: bad},
		{CertFile: bad, KeyFile: bad},
		{CAFile: bad},
		{CAFile: filepath.Join(dir, "missing.pem")},
	} {
		if _, err := tlsfiles.New(f, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("%+v: accepted", f)
		}
	}
}
