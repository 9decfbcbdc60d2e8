package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/devca"
	"github.com/classroute/classroute/router/server"
)

// rawSANCert is a client certificate of ca whose subjectAltName holds
// uris as URI names byte for byte: not through url.URL, which would
// re-spell some of them, and not through devca, which refuses them.
func rawSANCert(tb testing.TB, ca *devca.CA, uris ...string) *tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	var names []byte
	for _, u := range uris {
		b, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, b...)
	}
	san, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: names})
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		NotBefore:       time.Now().Add(-time.Minute),
		NotAfter:        time.Now().Add(time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// spellings are other spellings of spiffe://classroute.test/admin/alice
// (and of a tenant user) that a lenient URI parser reads as the same
// name: each is refused, so that no one holds two identities that
// compare different but act as one.
var spellings = []struct {
	name, id string
	// x509 marks a spelling crypto/x509 will not read at all (not
	// IA5, or a host url.Parse refuses): no handshake completes.
	x509 bool
}{
	{"percent-encoded letter", "/admin/al%69ce", false},
	{"percent-encoded slash", "/tenant/ke-moh%2Fuser%2Famina", false},
	{"percent-encoded slash, lower case", "/tenant/ke-moh%2fuser%2famina", false},
	{"percent-encoded dots", "/admin/%2E%2E/admin/alice", false},
	{"upper-case scheme", "SPIFFE://classroute.test/admin/alice", false},
	{"mixed-case scheme", "Spiffe://classroute.test/admin/alice", false},
	{"upper-case trust domain", "spiffe://CLASSROUTE.test/admin/alice", false},
	{"percent-encoded trust domain", "spiffe://classroute%2Etest/admin/alice", true},
	{"empty segment", "spiffe://classroute.test/admin//alice", false},
	{"leading empty segment", "spiffe://classroute.test//admin/alice", false},
	{"trailing slash", "/admin/alice/", false},
	{"dot segment", "spiffe://classroute.test/./admin/alice", false},
	{"dot-dot segment", "spiffe://classroute.test/admin/x/../alice", false},
	{"userinfo", "spiffe://alice@classroute.test/admin/alice", false},
	{"port", "spiffe://classroute.test:443/admin/alice", false},
	{"empty port", "spiffe://classroute.test:/admin/alice", false},
	{"query", "/admin/alice?x=1", false},
	{"empty query", "/admin/alice?", false},
	{"fragment", "/admin/alice#x", false},
	{"empty fragment", "/admin/alice#", false},
	{"non-ASCII letter", "/admin/al\u00edce", true},
	{"Cyrillic look-alike", "/admin/\u0430lice", true},
	{"space", "/admin/alice%20", false},
	{"over-long", "/admin/" + strings.Repeat("a", 3000), false},
}

// spelling is the full ID of spellings[i]: a path is under the test
// trust domain.
func spelling(id string) string {
	if strings.HasPrefix(id, "/") {
		return "spiffe://" + trustDomain + id
	}
	return id
}

// A certificate spelling a SPIFFE ID any way but the canonical one gets
// nowhere: UNAUTHENTICATED (or no handshake at all, where crypto/x509
// itself will not read the certificate), and no handler runs.
func TestMutualTLSRefusesNonCanonicalIDs(t *testing.T) {
	e := newEnv(t)
	m := newMTLS(t, e)
	for _, tt := range spellings {
		t.Run(tt.name, func(t *testing.T) {
			m.mu.Lock()
			m.seen = nil
			m.mu.Unlock()
			conn := m.dial(t, rawSANCert(t, m.ca, spelling(tt.id)))
			_, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{})
			st := status.Convert(err)
			switch {
			case tt.x509:
				if st.Code() != codes.Unavailable {
					t.Errorf("Health.Check: got %v %q; want no handshake", st.Code(), st.Message())
				}
			case st.Code() != codes.Unauthenticated || !strings.HasPrefix(st.Message(), "client certificate: identity "):
				t.Errorf("Health.Check: got %v %q; want Unauthenticated refusing the identity", st.Code(), st.Message())
			}
			m.mu.Lock()
			p := m.seen
			m.mu.Unlock()
			if p != nil {
				t.Errorf("a handler ran as %v (kind %s, tenant %q, name %q)", p, p.Kind, p.Tenant, p.Name)
			}
		})
	}
}

// The finding of issue 8: an administrator holding a second certificate
// for spiffe://TD/admin/al%69ce approved her own proposal, as the two
// spellings compared different. Over real mutual TLS, every other
// spelling of alice is refused at the door, the proposal stays pending,
// and a second administrator can still approve it.
func TestOtherSpellingCannotApproveOwnChange(t *testing.T) {
	e := newEnv(t)
	m := newMTLS(t, e)
	td := "spiffe://" + trustDomain
	changes := func(cert *tls.Certificate) pb.ChangeServiceClient {
		return pb.NewChangeServiceClient(m.dial(t, cert))
	}
	alice := changes(clientCert(t, m.ca, td+"/admin/alice"))
	bob := changes(clientCert(t, m.ca, td+"/admin/bob"))

	r := e.region(t, "aws/eu-west-2")
	r.Id = "eu-west-9"
	c, err := alice.ProposeRegionChange(ctx(t), &pb.ProposeRegionChangeRequest{Region: r, Reason: "a new region"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.GetChange().GetProposedBy(); got != td+"/admin/alice" {
		t.Fatalf("proposed by %q; want %s", got, td+"/admin/alice")
	}
	id := c.GetChange().GetId()
	if _, err := alice.ApproveChange(ctx(t), &pb.ApproveChangeRequest{Id: id}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("alice approving her own change: %v; want PermissionDenied", err)
	}
	for _, tt := range []struct{ name, id string }{
		{"percent-encoded letter", td + "/admin/al%69ce"},
		{"percent-encoded upper case", td + "/admin/%61lice"},
		{"upper-case scheme", "SPIFFE://" + trustDomain + "/admin/alice"},
		{"empty query", td + "/admin/alice?"},
		{"empty fragment", td + "/admin/alice#"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := changes(rawSANCert(t, m.ca, tt.id)).ApproveChange(ctx(t), &pb.ApproveChangeRequest{Id: id})
			if st := status.Convert(err); st.Code() != codes.Unauthenticated {
				t.Errorf("approval as %s: got %v %q; want Unauthenticated", tt.id, st.Code(), st.Message())
			}
			got, err := bob.GetChange(ctx(t), &pb.GetChangeRequest{Id: id})
			if err != nil {
				t.Fatal(err)
			}
			if s := got.GetChange().GetState(); s != "pending" {
				t.Fatalf("change %s after approval as %s: %s (decided by %s); want pending", id, tt.id, s, got.GetChange().GetDecidedBy())
			}
		})
	}
	done, err := bob.ApproveChange(ctx(t), &pb.ApproveChangeRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := done.GetChange(); got.GetState() != "applied" || got.GetDecidedBy() != td+"/admin/bob" {
		t.Errorf("approved by bob: %s by %q", got.GetState(), got.GetDecidedBy())
	}
}

// newDevServer serves e's store as the daemon's loopback development
// mode does: DevAuthenticator, no TLS. It returns a connection to it.
func newDevServer(tb testing.TB, e *env) *grpc.ClientConn {
	tb.Helper()
	log := slog.New(slog.DiscardHandler)
	s := server.New(e.store, log, server.WithAgentTTL(agentTTL), server.WithAuthenticator(server.DevAuthenticator))
	g := grpc.NewServer(append(server.ServerOptions(log), s.AuthOptions()...)...)
	s.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Serve(lis) }()
	tb.Cleanup(func() { g.Stop(); <-done })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// The development mode's --as NAME is one path segment, spelled one
// way: it is no way around the two-person rule either.
func TestDevAsNameIsOneCanonicalSegment(t *testing.T) {
	e := newEnv(t)
	changes := pb.NewChangeServiceClient(newDevServer(t, e))
	asName := func(name string) context.Context {
		return metadata.AppendToOutgoingContext(ctx(t), authz.DevAsHeader, name)
	}
	r := e.region(t, "aws/eu-west-2")
	r.Id = "eu-west-9"
	c, err := changes.ProposeRegionChange(asName("alice"), &pb.ProposeRegionChangeRequest{Region: r, Reason: "a new region"})
	if err != nil {
		t.Fatal(err)
	}
	id := c.GetChange().GetId()
	for _, name := range []string{"al%69ce", "alice?", "alice#", "alice/", "./alice", "x/../alice", "%2E%2E", "a%2Fb", "", ".", "..", strings.Repeat("a", 129)} {
		_, err := changes.ApproveChange(asName(name), &pb.ApproveChangeRequest{Id: id})
		if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.HasPrefix(st.Message(), authz.DevAsHeader+": ") {
			t.Errorf("approval as %.40q: got %v %q; want Unauthenticated", name, st.Code(), st.Message())
		}
	}
	if _, err := changes.ApproveChange(asName("alice"), &pb.ApproveChangeRequest{Id: id}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("alice approving her own change: %v; want PermissionDenied", err)
	}
	done, err := changes.ApproveChange(asName("bob"), &pb.ApproveChangeRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if got := done.GetChange(); got.GetState() != "applied" || !strings.HasSuffix(got.GetDecidedBy(), "/bob") {
		t.Errorf("approved by bob: %s by %q", got.GetState(), got.GetDecidedBy())
	}
}
