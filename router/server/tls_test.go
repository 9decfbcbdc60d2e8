package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/devca"
	"github.com/classroute/classroute/router/server"
)

const trustDomain = "classroute.test"

// mtls is a server over an env's store as the daemon wires it in TLS
// mode: client certificates required and verified against ca, callers
// authenticated by TLSAuthenticator. seen holds the principal of the
// last unary call that got through.
type mtls struct {
	addr string
	ca   *devca.CA
	mu   sync.Mutex
	seen *authz.Principal
}

func newMTLS(tb testing.TB, e *env) *mtls {
	tb.Helper()
	return newMTLSDomain(tb, e, trustDomain)
}

// newMTLSDomain authenticates callers of trust domain td, whatever the
// CA (made for trustDomain) signs.
func newMTLSDomain(tb testing.TB, e *env, td string) *mtls {
	tb.Helper()
	ca, err := devca.New(trustDomain)
	if err != nil {
		tb.Fatal(err)
	}
	srvCert, err := ca.Issue(devca.Request{Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		tb.Fatal(err)
	}
	m := &mtls{ca: ca}
	log := slog.New(slog.DiscardHandler)
	s := server.New(e.store, log, server.WithAgentTTL(agentTTL), server.WithAuthenticator(server.TLSAuthenticator(td)))
	opts := append(server.ServerOptions(log), grpc.Creds(credentials.NewTLS(server.ServerTLSConfig(srvCert.TLS(), ca.Pool()))))
	opts = append(opts, s.AuthOptions()...)
	opts = append(opts, grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		m.mu.Lock()
		m.seen = authz.FromContext(ctx)
		m.mu.Unlock()
		return h(ctx, req)
	}))
	g := grpc.NewServer(opts...)
	s.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	tb.Cleanup(func() { g.Stop(); <-done })
	m.addr = lis.Addr().String()
	return m
}

// dial connects presenting cert (none when nil), trusting the server's CA.
func (m *mtls) dial(tb testing.TB, cert *tls.Certificate) *grpc.ClientConn {
	tb.Helper()
	tc := &tls.Config{RootCAs: m.ca.Pool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(m.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// clientCert is a client certificate of ca naming uris, however many:
// devca refuses to make the bad ones.
func clientCert(tb testing.TB, ca *devca.CA, uris ...string) *tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Callers are who their verified certificate's one URI SAN says; a
// certificate with none or several, another trust domain's or another
// CA's, or none at all, gets nowhere.
func TestMutualTLSIdentities(t *testing.T) {
	e := newEnv(t)
	m := newMTLS(t, e)
	other, err := devca.New(trustDomain)
	if err != nil {
		t.Fatal(err)
	}
	td := "spiffe://" + trustDomain
	tests := []struct {
		name     string
		cert     *tls.Certificate
		code     codes.Code
		msg      string          // prefix of the status message when code is not OK
		want     authz.Principal // ID, Kind, Tenant, Name, Region when OK
		wantRole authz.Role
	}{
		{name: "tenant user", cert: clientCert(t, m.ca, td+"/tenant/ke-moh/user/amina"),
			want: authz.Principal{ID: td + "/tenant/ke-moh/user/amina", Kind: "tenant", Tenant: "ke-moh", Name: "amina"}},
		{name: "admin", cert: clientCert(t, m.ca, td+"/admin/root"),
			want: authz.Principal{ID: td + "/admin/root", Kind: "admin", Name: "root"}, wantRole: authz.RoleCatalogAdmin},
		{name: "agent", cert: clientCert(t, m.ca, td+"/agent/ke-gov/konza-1"),
			want: authz.Principal{ID: td + "/agent/ke-gov/konza-1", Kind: "agent", Region: "ke-gov/konza-1"}, wantRole: authz.RoleAgent},
		{name: "no URI SAN", cert: clientCert(t, m.ca), code: codes.Unauthenticated,
			msg: "client certificate has no URI SAN: want exactly one SPIFFE ID"},
		{name: "two URI SANs", cert: clientCert(t, m.ca, td+"/admin/a", td+"/tenant/ke-moh/user/b"), code: codes.Unauthenticated,
			msg: "client certificate has 2 URI SANs: want exactly one SPIFFE ID"},
		{name: "unknown path", cert: clientCert(t, m.ca, td+"/root"), code: codes.Unauthenticated,
			msg: "client certificate: identity " + td + "/root: unknown path"},
		{name: "another CA", cert: clientCert(t, other, td+"/admin/root"), code: codes.Unavailable},
		{name: "no certificate", code: codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.mu.Lock()
			m.seen = nil
			m.mu.Unlock()
			conn := m.dial(t, tt.cert)
			// Health is open to anyone authenticated: what is tested
			// here is who the caller is, not what it may do.
			_, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
			st := status.Convert(err)
			if st.Code() != tt.code || !strings.HasPrefix(st.Message(), tt.msg) {
				t.Fatalf("Health.Check: got %v %q; want %v %q...", st.Code(), st.Message(), tt.code, tt.msg)
			}
			m.mu.Lock()
			p := m.seen
			m.mu.Unlock()
			if tt.code != codes.OK {
				if p != nil {
					t.Errorf("a handler ran as %v", p)
				}
				return
			}
			if p == nil {
				t.Fatal("no principal reached the handler")
			}
			got := authz.Principal{ID: p.ID, Kind: p.Kind, Tenant: p.Tenant, Name: p.Name, Region: p.Region}
			if got.ID != tt.want.ID || got.Kind != tt.want.Kind || got.Tenant != tt.want.Tenant || got.Name != tt.want.Name || got.Region != tt.want.Region {
				t.Errorf("principal: got %+v; want %+v", got, tt.want)
			}
			if tt.wantRole != "" && !p.Has(tt.wantRole) {
				t.Errorf("principal roles %v; want %s", p.Roles, tt.wantRole)
			}
		})
	}
	// The CA vouches only for its own trust domain; the server checks
	// the domain as well, whatever the CA signs.
	t.Run("another trust domain", func(t *testing.T) {
		m := newMTLSDomain(t, e, "elsewhere.test")
		conn := m.dial(t, clientCert(t, m.ca, td+"/admin/root"))
		_, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), `trust domain "classroute.test", want "elsewhere.test"`) {
			t.Errorf("got %v %q; want Unauthenticated naming the trust domain", st.Code(), st.Message())
		}
	})
}

// An agent's certificate names its region: it may serve that one, and a
// hello for another is PERMISSION_DENIED before any session starts.
func TestAgentIdentityServesOwnRegionOnly(t *testing.T) {
	e := newEnv(t)
	m := newMTLS(t, e)
	conn := m.dial(t, clientCert(t, m.ca, "spiffe://"+trustDomain+"/agent/"+konza))
	agents := pb.NewAgentServiceClient(conn)

	stream, err := agents.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(hello("aws/us-gov-west-1", "impostor")); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if st := status.Convert(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "may serve region "+konza+" only") {
		t.Fatalf("hello for another region: got %v %q; want PermissionDenied", st.Code(), st.Message())
	}
	if n := e.countUnder(t, "live/"); n != 0 {
		t.Errorf("%d live records after a refused hello; want 0", n)
	}

	stream, err = agents.Connect(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(hello(konza, "konza-agent")); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetWelcome().GetRegion() != konza {
		t.Fatalf("hello for its own region: got %v, %v; want a welcome for %s", first, err, konza)
	}
	_ = stream.CloseSend()
}
