package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/classroute/classroute/router/authz"
)

// TLSAuthenticator authenticates callers by the client certificate that
// the transport verified (see ServerTLSConfig): its one URI SAN is a
// SPIFFE ID of trust domain td in canonical form, read by
// authz.ParseID as the certificate spells it. A connection without a
// verified certificate, or whose certificate has no URI SAN or several,
// is refused: which of several identities would be meant is not the
// server's to guess.
func TLSAuthenticator(td string) Authenticator {
	tdErr := authz.ValidTrustDomain(td)
	return func(ctx context.Context) (*authz.Principal, error) {
		if tdErr != nil {
			return nil, fmt.Errorf("the server's trust domain is misconfigured: %w", tdErr)
		}
		pr, ok := peer.FromContext(ctx)
		if !ok {
			return nil, errors.New("no peer")
		}
		info, ok := pr.AuthInfo.(credentials.TLSInfo)
		if !ok {
			return nil, errors.New("not a TLS connection: mutual TLS is required")
		}
		if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
			return nil, errors.New("no verified client certificate")
		}
		return principalOf(info.State.VerifiedChains[0][0], td)
	}
}

// principalOf reads the identity of a verified client certificate.
func principalOf(leaf *x509.Certificate, td string) (*authz.Principal, error) {
	uris, err := uriSANs(leaf)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	switch n := len(uris); n {
	case 1:
	case 0:
		return nil, errors.New("client certificate has no URI SAN: want exactly one SPIFFE ID")
	default:
		return nil, fmt.Errorf("client certificate has %d URI SANs: want exactly one SPIFFE ID", n)
	}
	p, err := authz.ParseID(uris[0], td)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return p, nil
}

// oidSubjectAltName is the subjectAltName extension (RFC 5280 4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// uriSANs returns the URI names of c's subjectAltName exactly as the
// certificate spells them. crypto/x509 offers them only as url.URL
// values (c.URIs), which url.Parse has decoded and normalised: the
// scheme is lower-cased, "al%69ce" is read as "alice", an empty query
// or fragment vanishes. The identity must be judged as written.
func uriSANs(c *x509.Certificate) ([]string, error) {
	var uris []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		// GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName;
		// uniformResourceIdentifier [6] IA5String.
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) > 0 ||
			seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
			return nil, errors.New("malformed subjectAltName")
		}
		for b := seq.Bytes; len(b) > 0; {
			var name asn1.RawValue
			var err error
			if b, err = asn1.Unmarshal(b, &name); err != nil {
				return nil, errors.New("malformed subjectAltName")
			}
			if name.Class == asn1.ClassContextSpecific && name.Tag == 6 {
				uris = append(uris, string(name.Bytes))
			}
		}
	}
	// What crypto/x509 read and verified (name constraints included)
	// must be what is judged here: the same number of URIs.
	if len(uris) != len(c.URIs) {
		return nil, errors.New("subjectAltName URIs do not match the parsed certificate")
	}
	return uris, nil
}

// ServerTLSConfig is the listener's TLS: TLS 1.3 only, cert as the
// server's certificate, and a client certificate required and verified
// against clientCAs.
func ServerTLSConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS13,
	}
}
