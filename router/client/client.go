// Package client is the Go client library of classrouted: what a service
// that requests placements, a platform team's tooling, or classroutectl
// itself links to talk to the daemon. It connects (plaintext on
// loopback, or mutual TLS from files or the environment), places with a
// request id it returns and reuses on every retry, and wraps the rest of
// the API: plans, reads, pages, releases, watches that resume, the
// catalogue and two-person changes.
//
// It links the API and gRPC only: no etcd, no cache, no store
// (router/deps_test.go holds it to that).
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/authz"
)

// DefaultServer is the daemon's address when none is configured: its
// default loopback listener.
const DefaultServer = "127.0.0.1:7400"

// Environment variables FromEnv reads; classroutectl's flags default to them.
const (
	EnvServer  = "CLASSROUTE_SERVER"
	EnvTLSCA   = "CLASSROUTE_TLS_CA"
	EnvTLSCert = "CLASSROUTE_TLS_CERT"
	EnvTLSKey  = "CLASSROUTE_TLS_KEY"
	EnvAs      = "CLASSROUTE_AS"
)

// Config says how to reach a daemon.
type Config struct {
	// Server is the daemon's host:port (default DefaultServer).
	Server string
	// TLSCA is the CA certificate file (PEM) the daemon's certificate
	// must chain to. Set, the connection is TLS 1.3; empty, plaintext,
	// which a daemon accepts on loopback only.
	TLSCA string
	// TLSCert and TLSKey are the caller's certificate and key (PEM): its
	// identity, one SPIFFE ID. They go together, and need TLSCA.
	TLSCert, TLSKey string
	// As names the caller to a daemon in its loopback development mode
	// (no TLS), e.g. to propose as one administrator and approve as
	// another. A daemon with TLS ignores it: identity is the certificate.
	As string
	// Retry bounds Place's retries (zero: DefaultRetry).
	Retry Retry
	// DialOptions are added to the connection's (tests, tracing).
	DialOptions []grpc.DialOption
}

// FromEnv is the configuration the environment gives: CLASSROUTE_SERVER,
// CLASSROUTE_TLS_CA, CLASSROUTE_TLS_CERT, CLASSROUTE_TLS_KEY and
// CLASSROUTE_AS.
func FromEnv() Config {
	return Config{
		Server:  os.Getenv(EnvServer),
		TLSCA:   os.Getenv(EnvTLSCA),
		TLSCert: os.Getenv(EnvTLSCert),
		TLSKey:  os.Getenv(EnvTLSKey),
		As:      os.Getenv(EnvAs),
	}
}

// Validate says what is inconsistent in c, naming the setting.
func (c Config) Validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key go together")
	}
	if c.TLSCert != "" && c.TLSCA == "" {
		return errors.New("tls-cert needs tls-ca: the CA that signed the server's certificate")
	}
	return c.Retry.validate()
}

// Client is a connection to one daemon. It is safe for concurrent use;
// Close it when done.
type Client struct {
	cc    *grpc.ClientConn
	cfg   Config
	retry Retry

	placement pb.PlacementServiceClient
	catalog   pb.CatalogServiceClient
	changes   pb.ChangeServiceClient
	audit     pb.AuditServiceClient
}

// New connects to the daemon cfg names. Like grpc.NewClient it does not
// wait for the connection: the first call does.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		cfg.Server = DefaultServer
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds, err := cfg.creds()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}
	if cfg.As != "" {
		as := cfg.As
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
				return invoker(metadata.AppendToOutgoingContext(ctx, authz.DevAsHeader, as), method, req, reply, cc, o...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.AppendToOutgoingContext(ctx, authz.DevAsHeader, as), desc, cc, method, o...)
			}))
	}
	opts = append(opts, cfg.DialOptions...)
	cc, err := grpc.NewClient(cfg.Server, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{
		cc: cc, cfg: cfg, retry: cfg.Retry.orDefault(),
		placement: pb.NewPlacementServiceClient(cc),
		catalog:   pb.NewCatalogServiceClient(cc),
		changes:   pb.NewChangeServiceClient(cc),
		audit:     pb.NewAuditServiceClient(cc),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.cc.Close() }

// Conn is the underlying connection, for services this package does not
// wrap (agents, health, reflection).
func (c *Client) Conn() *grpc.ClientConn { return c.cc }

// Config is the configuration c was made with.
func (c *Client) Config() Config { return c.cfg }

// Placements, Catalog, Changes and Audit are the generated service
// clients, for calls and fields the methods below do not cover.
func (c *Client) Placements() pb.PlacementServiceClient { return c.placement }
func (c *Client) Catalog() pb.CatalogServiceClient      { return c.catalog }
func (c *Client) Changes() pb.ChangeServiceClient       { return c.changes }
func (c *Client) Audit() pb.AuditServiceClient          { return c.audit }

// creds are the transport credentials: plaintext without TLSCA, else TLS
// 1.3 verifying the daemon against TLSCA and presenting TLSCert.
func (c Config) creds() (credentials.TransportCredentials, error) {
	if c.TLSCA == "" {
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(c.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls-ca %s: no PEM certificate", c.TLSCA)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(tc), nil
}

// NewRequestID returns a fresh request id: "req-" and 24 random hex
// digits. Place makes one when given none; a caller that must know the
// id before the call (to print it, or to store it for a retry after a
// crash) makes it here and passes WithRequestID.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req-" + hex.EncodeToString(b[:])
}

// Ping checks the daemon answers an authenticated call within ctx.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.catalog.ListProviders(ctx, &pb.ListProvidersRequest{})
	return err
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
