package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/classroute/classroute/router/authz"
)

// TLSAuthenticator authenticates callers by the client certificate that
// the transport verified (see ServerTLSConfig): its one URI SAN is a
// SPIFFE ID of trust domain td, read by authz.ParseID. A connection
// without a verified certificate, or whose certificate has no URI SAN
// or several, is refused: which of several identities would be meant
// is not the server's to guess.
func TLSAuthenticator(td string) Authenticator {
	return func(ctx context.Context) (*authz.Principal, error) {
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
	switch n := len(leaf.URIs); n {
	case 1:
	case 0:
		return nil, errors.New("client certificate has no URI SAN: want exactly one SPIFFE ID")
	default:
		return nil, fmt.Errorf("client certificate has %d URI SANs: want exactly one SPIFFE ID", n)
	}
	p, err := authz.ParseID(leaf.URIs[0], td)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return p, nil
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
