// Package tlsfiles makes TLS configurations from PEM files that are
// re-read when they change: a certificate renewed or a CA bundle
// rotated on disk (by cert-manager, SPIRE, an operator) takes effect at
// the next handshake, with no restart.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// DefaultCheckEvery is how often, at most, a Reloader looks at its
// files: a handshake after that long since the last look stats them,
// and reads them again if any changed.
const DefaultCheckEvery = 2 * time.Second

// Files names the PEM files of one side of TLS. CertFile and KeyFile go
// together; either pair or CAFile may be empty.
type Files struct {
	// CertFile and KeyFile are this side's certificate (chain) and key.
	CertFile, KeyFile string
	// CAFile is the bundle of CA certificates the other side's
	// certificate must chain to.
	CAFile string
}

// Reloader holds the certificate and CA pool read from its Files, and
// reads them again when a file's modification time, size or identity
// (a symbolic link switched to another file, as Kubernetes' projected
// volumes do) has changed since: checked at a handshake, once per
// CheckEvery at most. A file that cannot be read, or does not parse,
// leaves the last good certificate or pool in use and is logged at
// warn, once per change. It is safe for concurrent use.
type Reloader struct {
	files      Files
	log        *slog.Logger
	checkEvery time.Duration
	now        func() time.Time

	mu      sync.Mutex
	checked time.Time
	seen    [3]os.FileInfo // cert, key, CA as last looked at
	cert    *tls.Certificate
	pool    *x509.CertPool
}

// Option configures a Reloader.
type Option func(*Reloader)

// WithCheckEvery sets how often, at most, the files are looked at
// (default DefaultCheckEvery; 0: at every handshake).
func WithCheckEvery(d time.Duration) Option { return func(r *Reloader) { r.checkEvery = d } }

// New reads f, which must all be readable and valid now, and returns a
// Reloader of them that logs to log.
func New(f Files, log *slog.Logger, opts ...Option) (*Reloader, error) {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("tlsfiles: a certificate and its key go together")
	}
	r := &Reloader{files: f, log: log, checkEvery: DefaultCheckEvery, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	r.seen = r.stat()
	var err error
	if f.CertFile != "" {
		if r.cert, err = r.readPair(); err != nil {
			return nil, err
		}
	}
	if f.CAFile != "" {
		if r.pool, err = r.readPool(); err != nil {
			return nil, err
		}
	}
	r.checked = r.now()
	return r, nil
}

func (r *Reloader) readPair() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: %s, %s: %w", r.files.CertFile, r.files.KeyFile, err)
	}
	return &c, nil
}

func (r *Reloader) readPool() (*x509.CertPool, error) {
	b, err := os.ReadFile(r.files.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tlsfiles: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tlsfiles: %s: no PEM certificate", r.files.CAFile)
	}
	return p, nil
}

// stat looks at the files (nil for one absent, unnamed or unreadable).
func (r *Reloader) stat() [3]os.FileInfo {
	var out [3]os.FileInfo
	for i, name := range []string{r.files.CertFile, r.files.KeyFile, r.files.CAFile} {
		if name != "" {
			out[i], _ = os.Stat(name)
		}
	}
	return out
}

func same(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// current returns the certificate and pool, read again first if it is
// time to look and a file changed.
func (r *Reloader) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.checkEvery {
		return r.cert, r.pool
	}
	r.checked = now
	seen := r.stat()
	pairChanged := !same(seen[0], r.seen[0]) || !same(seen[1], r.seen[1])
	caChanged := !same(seen[2], r.seen[2])
	r.seen = seen
	if pairChanged && r.files.CertFile != "" {
		if c, err := r.readPair(); err != nil {
			r.log.Warn("TLS certificate changed on disk but could not be loaded; the previous one stays in use", "err", err)
		} else {
			r.cert = c
			r.log.Info("TLS certificate reloaded", "cert", r.files.CertFile, "not_after", c.Leaf.NotAfter)
		}
	}
	if caChanged && r.files.CAFile != "" {
		if p, err := r.readPool(); err != nil {
			r.log.Warn("CA bundle changed on disk but could not be loaded; the previous one stays in use", "err", err)
		} else {
			r.pool = p
			r.log.Info("CA bundle reloaded", "ca", r.files.CAFile)
		}
	}
	return r.cert, r.pool
}

// ServerConfig is base (its client authentication, versions, ...) with
// the Reloader's certificate as the server's and its pool as the CAs
// that verify client certificates, as they are at each handshake:
// base's own Certificates and ClientCAs are not used.
func (r *Reloader) ServerConfig(base *tls.Config) *tls.Config {
	base = base.Clone()
	base.Certificates, base.ClientCAs, base.GetCertificate = nil, nil, nil
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := r.current()
		c := base.Clone()
		if cert != nil {
			c.Certificates = []tls.Certificate{*cert}
		}
		c.ClientCAs = pool
		return c, nil
	}
	return cfg
}

// ClientConfig is a client's TLS (1.2 at least) that presents the
// Reloader's certificate, when it has one, and verifies the server's
// certificate against its pool (the system's roots without one), as
// they are at each handshake: for the server name the client sent
// (SNI), or, when it sent none (it dialed an IP address, for which TLS
// sends no name), for one of hosts, the names and addresses the client
// dials.
func (r *Reloader) ClientConfig(hosts ...string) *tls.Config {
	hosts = slices.Clone(hosts)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert, _ := r.current(); cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
		// The standard verification reads a fixed RootCAs; the pool
		// changes, so VerifyConnection verifies instead, in full: the
		// chain to the pool as it is now, and the server's name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := r.current()
			return verifyServer(cs, pool, hosts)
		},
	}
}

// verifyServer verifies the server's certificate chain in cs against
// roots (nil: the system's), for the server name the client sent, or
// else for one of hosts.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, hosts []string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsfiles: the server presented no certificate")
	}
	names := hosts
	if cs.ServerName != "" {
		names = []string{cs.ServerName}
	}
	if len(names) == 0 {
		return errors.New("tlsfiles: no server name to verify the server's certificate for")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("tlsfiles: server certificate: %w", err)
	}
	var errs []error
	for _, n := range names {
		err := leaf.VerifyHostname(n)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("tlsfiles: server certificate: %w", errors.Join(errs...))
}
