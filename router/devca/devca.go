// Package devca is a development certificate authority: a CA and the
// server and SPIFFE-ID client certificates classroute's mutual TLS needs,
// for trying it and for tests. It owns no production trust: classrouted
// never imports it (router/deps_test.go enforces that), only the CLI's
// certs command and tests do.
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/classroute/classroute/router/authz"
)

// Validity of what a development CA makes. Short enough that a
// forgotten development certificate dies on its own, long enough not to
// get in the way of a month of work.
const (
	CAValidity   = 365 * 24 * time.Hour
	CertValidity = 90 * 24 * time.Hour
)

// File names in a CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// New makes a CA (ECDSA P-256) named for the trust domain td, which
// must be in canonical form (authz.ValidTrustDomain: lower case, no
// port, no percent-encoding).
func New(td string) (*CA, error) {
	if err := authz.ValidTrustDomain(td); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "classroute development CA (" + td + ")"},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          keyID(&key.PublicKey),
		// The CA may only vouch for identities in its trust domain.
		PermittedURIDomains: []string{td},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Request says what a certificate is for. A server certificate names
// DNS names and IP addresses; a client certificate names exactly one
// SPIFFE ID. A certificate may be both (a daemon that is also a client).
type Request struct {
	// ID is the client identity, e.g. spiffe://td/tenant/t/user/n.
	ID string
	// Server makes it a server certificate for DNS and IPs.
	Server bool
	DNS    []string
	IPs    []net.IP
}

// Issued is a certificate and its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issue signs a new key's certificate for r.
func (ca *CA) Issue(r Request) (*Issued, error) {
	if r.ID == "" && !r.Server {
		return nil, errors.New("want a client identity (an ID), a server certificate, or both")
	}
	if r.Server && len(r.DNS) == 0 && len(r.IPs) == 0 {
		return nil, errors.New("a server certificate needs at least one DNS name or IP address")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notAfter := now.Add(CertValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		SubjectKeyId: keyID(&key.PublicKey),
		DNSNames:     r.DNS,
		IPAddresses:  r.IPs,
	}
	if r.ID != "" {
		// One identity, one spelling: a CA that signed al%69ce beside
		// alice would give one person two identities.
		td, _, err := authz.SplitID(r.ID)
		if err != nil {
			return nil, err
		}
		if want := ca.TrustDomain(); td != want {
			return nil, fmt.Errorf("identity %s: this CA signs identities of trust domain %q only", r.ID, want)
		}
		u, err := url.Parse(r.ID)
		if err != nil || u.String() != r.ID {
			// A canonical ID is its own URL spelling; this cannot happen.
			return nil, fmt.Errorf("identity %s: does not survive net/url", r.ID)
		}
		tmpl.URIs = []*url.URL{u}
		tmpl.Subject.CommonName = u.Path
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if r.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		if tmpl.Subject.CommonName == "" {
			tmpl.Subject.CommonName = "classroute server"
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, Key: key}, nil
}

// TrustDomain is the trust domain the CA was made for: the one it may
// sign identities of.
func (ca *CA) TrustDomain() string {
	if len(ca.Cert.PermittedURIDomains) == 0 {
		return ""
	}
	return ca.Cert.PermittedURIDomains[0]
}

// LogValue logs the CA's subject and expiry: never its key.
func (ca CA) LogValue() slog.Value { return certValue(ca.Cert) }

// LogValue logs the certificate's serial, identities and expiry: never
// its key.
func (i Issued) LogValue() slog.Value { return certValue(i.Cert) }

func certValue(c *x509.Certificate) slog.Value {
	if c == nil {
		return slog.StringValue("no certificate")
	}
	var uris []string
	for _, u := range c.URIs {
		uris = append(uris, u.String())
	}
	return slog.GroupValue(
		slog.String("subject", c.Subject.CommonName),
		slog.String("serial", c.SerialNumber.Text(16)),
		slog.Any("uris", uris),
		slog.Time("not_after", c.NotAfter),
	)
}

// Pool is a pool holding the CA's certificate alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// TLS is the certificate as crypto/tls takes it.
func (i *Issued) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{i.Cert.Raw}, PrivateKey: i.Key, Leaf: i.Cert}
}

// Write writes the certificate to dir/name.pem and its key to
// dir/name-key.pem (mode 0600), refusing to overwrite either.
func (i *Issued) Write(dir, name string) error {
	return writePair(dir, name+".pem", name+"-key.pem", i.Cert, i.Key)
}

// Write writes the CA to dir (ca.pem, and ca-key.pem with mode 0600),
// creating dir (0700) and refusing to overwrite an existing CA.
func (ca *CA) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writePair(dir, CACertFile, CAKeyFile, ca.Cert, ca.Key)
}

// Load reads the CA that Write wrote to dir.
func Load(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: the CA key is not ECDSA", dir)
	}
	if !pair.Leaf.IsCA {
		return nil, fmt.Errorf("%s: %s is not a CA certificate", dir, CACertFile)
	}
	return &CA{Cert: pair.Leaf, Key: key}, nil
}

func writePair(dir, certName, keyName string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: not overwriting it", p)
		}
	}
	if err := writeNew(keyPath, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return err
	}
	return writeNew(certPath, 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
}

// writeNew creates path with mode perm (never loosening an existing
// file's) and writes data.
func writeNew(path string, perm os.FileMode, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return sum[:20]
}
