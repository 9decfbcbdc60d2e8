// Package authz is who a caller is and what it may do: principals taken
// from a SPIFFE-style identity, their roles, and the context that carries
// them. It is pure: no gRPC, etcd or TLS imports. The gRPC edge
// (router/server) authenticates and enforces; the store records the
// principal in the audit trail.
package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Role is what a principal may do. Deny by default: a principal with no
// role may do nothing.
type Role string

// Roles.
const (
	// RoleSubmitter places and plans for its tenant and sees its tenant.
	RoleSubmitter Role = "tenant-submitter"
	// RoleTenantAuditor reads its tenant's placements and audit entries.
	RoleTenantAuditor Role = "tenant-auditor"
	// RoleCatalogAdmin changes regions, providers, tenants, policies and
	// accreditations (the last with a second administrator's approval).
	RoleCatalogAdmin Role = "catalog-admin"
	// RoleAgent reports for its own region only.
	RoleAgent Role = "region-agent"
	// RoleSecurityAuditor reads the whole audit trail.
	RoleSecurityAuditor Role = "security-auditor"
)

// Roles lists every role.
var Roles = []Role{RoleSubmitter, RoleTenantAuditor, RoleCatalogAdmin, RoleAgent, RoleSecurityAuditor}

// Kinds of principal (Principal.Kind).
const (
	KindTenant  = "tenant"  // a tenant's user: sees and acts for its tenant only
	KindAgent   = "agent"   // a region's agent: its region only
	KindAdmin   = "admin"   // a catalogue administrator
	KindAuditor = "auditor" // a security auditor
	KindDev     = "dev"     // the loopback development mode: every role, every tenant
)

// Principal is an authenticated caller.
type Principal struct {
	// ID is the caller's SPIFFE ID in canonical form, rebuilt by ParseID
	// from the parts it read (never the string the caller presented):
	// what the audit trail records.
	ID string
	// Kind is the identity's kind: "tenant", "agent", "admin" or
	// "auditor" (see ParseID), or "dev" for the loopback development mode.
	Kind string
	// Tenant is the tenant of a tenant user.
	Tenant string
	// Name is the user's or operator's name.
	Name string
	// Region is the region key ("provider/id") an agent serves.
	Region string
	// Roles are the roles granted, resolved by the edge.
	Roles []Role
}

// Same reports whether p and q are one caller: the same kind, tenant,
// name and region. How their IDs are spelled, their trust domains and
// their roles do not count, so that no one is two people by holding two
// spellings of one identity. Two nil principals ("system") are the same.
func (p *Principal) Same(q *Principal) bool {
	if p == nil || q == nil {
		return p == q
	}
	return p.Kind == q.Kind && p.Tenant == q.Tenant && p.Name == q.Name && p.Region == q.Region
}

// Has reports whether p holds role r.
func (p *Principal) Has(r Role) bool { return p != nil && slices.Contains(p.Roles, r) }

// String is the principal's ID, for logs and the audit trail.
func (p *Principal) String() string {
	if p == nil {
		return "anonymous"
	}
	return p.ID
}

// LogValue logs the principal's kind, tenant and region, never the
// name: the ID names a person, and logs are read by operators who need
// to know what kind of caller did something, not who. The audit trail
// records the full ID. A nil principal logs as "anonymous".
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("anonymous")
	}
	attrs := []slog.Attr{slog.String("kind", p.Kind)}
	if p.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", p.Tenant))
	}
	if p.Region != "" {
		attrs = append(attrs, slog.String("region", p.Region))
	}
	if p.Name != "" {
		attrs = append(attrs, slog.String("name", "[redacted]"))
	}
	return slog.GroupValue(attrs...)
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal ctx carries, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Actor is the principal's ID for the audit trail: "system" when the
// context carries none (the reconciler, the seeding of the catalogue).
// ParseActor reads it back.
func Actor(ctx context.Context) string {
	if p := FromContext(ctx); p != nil {
		return p.ID
	}
	return "system"
}

// ParseID reads id, a SPIFFE ID of trust domain td in canonical form
// (see SplitID), as one of:
//
//	spiffe://<td>/tenant/<tenant>/user/<name>   a tenant user (roles from the tenant's policy)
//	spiffe://<td>/agent/<provider>/<region>     the agent of one region (RoleAgent)
//	spiffe://<td>/admin/<name>                  a catalogue administrator (RoleCatalogAdmin)
//	spiffe://<td>/auditor/<name>                a security auditor (RoleSecurityAuditor)
//
// Anything else is refused: another spelling of an identity never
// parses, so one identity has one ID and principals compare by it. A
// tenant user's roles are not in the ID: the edge resolves them from
// the tenant's policy. id is the string as presented (for a
// certificate, its URI SAN as the certificate spells it), not a
// url.URL, which decodes and re-spells.
func ParseID(id, td string) (*Principal, error) {
	if err := ValidTrustDomain(td); err != nil {
		return nil, fmt.Errorf("the server's trust domain: %w", err)
	}
	got, segs, err := SplitID(id)
	if err != nil {
		return nil, err
	}
	if got != td {
		return nil, fmt.Errorf("identity %s: trust domain %q, want %q", id, got, td)
	}
	p := principalOf(segs, false)
	if p == nil {
		return nil, fmt.Errorf("identity %s: unknown path; want /tenant/T/user/N, /agent/P/R, /admin/N or /auditor/N", id)
	}
	p.ID = JoinID(td, segs...)
	return p, nil
}

// ParseActor reads back an actor that Actor recorded: nil for "system",
// else the principal (kind, tenant, name and region; no roles) of a
// canonical SPIFFE ID of any trust domain, including the development
// mode's (see DevID). It is for comparing recorded callers with Same,
// never for authenticating one. A recorded actor in any other form is
// an error: it cannot be compared, so it must not be trusted to differ.
func ParseActor(actor string) (*Principal, error) {
	if actor == "system" {
		return nil, nil
	}
	_, segs, err := SplitID(actor)
	if err != nil {
		return nil, err
	}
	p := principalOf(segs, true)
	if p == nil {
		return nil, fmt.Errorf("actor %s: unknown path", actor)
	}
	p.ID = actor
	return p, nil
}

// principalOf is the principal a canonical path names, or nil. dev
// admits the development mode's paths (DevID), which no certificate may
// claim.
func principalOf(segs []string, dev bool) *Principal {
	switch {
	case len(segs) == 4 && segs[0] == "tenant" && segs[2] == "user":
		return &Principal{Kind: KindTenant, Tenant: segs[1], Name: segs[3]}
	case len(segs) == 3 && segs[0] == "agent":
		return &Principal{Kind: KindAgent, Region: segs[1] + "/" + segs[2], Roles: []Role{RoleAgent}}
	case len(segs) == 2 && segs[0] == "admin":
		return &Principal{Kind: KindAdmin, Name: segs[1], Roles: []Role{RoleCatalogAdmin}}
	case len(segs) == 2 && segs[0] == "auditor":
		return &Principal{Kind: KindAuditor, Name: segs[1], Roles: []Role{RoleSecurityAuditor}}
	case dev && len(segs) == 1 && segs[0] == KindDev:
		return &Principal{Kind: KindDev, Name: KindDev}
	case dev && len(segs) == 2 && segs[0] == KindDev:
		return &Principal{Kind: KindDev, Name: segs[1]}
	}
	return nil
}

// DevAsHeader is the gRPC metadata key by which a development-mode
// caller names itself (classroutectl --as NAME), so that one person can
// try a two-person change on a laptop; the daemon reads it into DevID.
// It means nothing outside that mode.
const DevAsHeader = "classroute-dev-as"

// DevTrustDomain is the trust domain of the loopback development mode's
// principals.
const DevTrustDomain = "classroute.dev"

// DevID is the ID of the development mode's principal called name:
// spiffe://classroute.dev/dev for the default one ("dev"), else
// spiffe://classroute.dev/dev/<name>. name must be one path segment
// (ValidSegment); the error says why it is not.
func DevID(name string) (string, error) {
	if err := ValidSegment(name); err != nil {
		return "", err
	}
	if name == KindDev {
		return JoinID(DevTrustDomain, KindDev), nil
	}
	return JoinID(DevTrustDomain, KindDev, name), nil
}

// Limits of a SPIFFE ID. The SPIFFE ID specification caps an ID at 2048
// bytes and a trust domain at 255; a path segment here names a tenant,
// user, provider or region, which classroute caps at 128 bytes.
const (
	MaxIDBytes          = 2048
	MaxTrustDomainBytes = 255
	MaxSegmentBytes     = 128
)

// JoinID is the SPIFFE ID of trust domain td and path segments segs,
// which must be valid (ValidTrustDomain, ValidSegment).
func JoinID(td string, segs ...string) string {
	return "spiffe://" + td + "/" + strings.Join(segs, "/")
}

// SplitID returns the trust domain and path segments of id, which must
// be a SPIFFE ID in canonical form, as the SPIFFE ID specification
// (section 2) requires and nothing more lenient:
//
//   - the scheme "spiffe", in lower case, then "://";
//   - a trust domain of lower-case letters, digits, '.', '-' and '_'
//     only: no user info, no port, no percent-encoding;
//   - a path of one or more segments of letters, digits, '.', '-' and
//     '_' only: no percent-encoding of anything (not even of a letter
//     or a '/'), no empty segment (no "//", no trailing '/'), no "." or
//     ".." segment, no query, no fragment, nothing but ASCII.
//
// It checks the string byte by byte and decodes nothing: what it
// accepts is spelled exactly as JoinID(td, segs...) spells it, so two
// IDs that differ as strings differ in their parts. The error says what
// is wrong, in words a caller may read.
func SplitID(id string) (td string, segs []string, err error) {
	if len(id) > MaxIDBytes {
		return "", nil, fmt.Errorf("identity of %d bytes: a SPIFFE ID has at most %d", len(id), MaxIDBytes)
	}
	td, segs, err = splitID(id)
	if err != nil {
		return "", nil, fmt.Errorf("identity %q is not a canonical SPIFFE ID: %w", id, err)
	}
	return td, segs, nil
}

func splitID(id string) (td string, segs []string, err error) {
	const scheme = "spiffe://"
	rest, ok := strings.CutPrefix(id, scheme)
	if !ok {
		if len(id) >= len(scheme) && strings.EqualFold(id[:len(scheme)], scheme) {
			return "", nil, errors.New("the scheme must be spelled spiffe, in lower case")
		}
		return "", nil, errors.New("want spiffe://<trust domain>/<path>")
	}
	td, path, _ := strings.Cut(rest, "/")
	if err := ValidTrustDomain(td); err != nil {
		return "", nil, err
	}
	if path == "" {
		return "", nil, errors.New("no path")
	}
	segs = strings.Split(path, "/")
	for i, s := range segs {
		if s == "" {
			if i == len(segs)-1 {
				return "", nil, errors.New("a trailing '/'")
			}
			return "", nil, errors.New(`an empty path segment ("//")`)
		}
		if err := ValidSegment(s); err != nil {
			return "", nil, err
		}
	}
	return td, segs, nil
}

// ValidTrustDomain reports why td is not a trust domain in canonical
// form (1-255 bytes of [a-z0-9._-]), or nil.
func ValidTrustDomain(td string) error {
	switch {
	case td == "":
		return errors.New("no trust domain")
	case len(td) > MaxTrustDomainBytes:
		return fmt.Errorf("trust domain of %d bytes: at most %d", len(td), MaxTrustDomainBytes)
	}
	for i := 0; i < len(td); i++ {
		switch c := td[i]; {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_':
		case 'A' <= c && c <= 'Z':
			return fmt.Errorf("trust domain %q: must be lower case", td)
		case c == ':':
			return fmt.Errorf("trust domain %q: a SPIFFE ID has no port", td)
		default:
			return fmt.Errorf("trust domain %q: %s", td, badByte(c))
		}
	}
	return nil
}

// ValidSegment reports why s is not one path segment in canonical form
// (1-128 bytes of [A-Za-z0-9._-], not "." or ".."), or nil.
func ValidSegment(s string) error {
	switch {
	case s == "":
		return errors.New("an empty path segment")
	case s == "." || s == "..":
		return fmt.Errorf("a relative path segment %q", s)
	case len(s) > MaxSegmentBytes:
		return fmt.Errorf("a path segment of %d bytes: at most %d", len(s), MaxSegmentBytes)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_':
		default:
			return fmt.Errorf("path segment %q: %s", s, badByte(c))
		}
	}
	return nil
}

// badByte says why c has no place in a SPIFFE ID.
func badByte(c byte) string {
	switch {
	case c == '%':
		return "percent-encoding is not allowed: spell the ID in canonical form"
	case c == '?':
		return "a SPIFFE ID has no query"
	case c == '#':
		return "a SPIFFE ID has no fragment"
	case c == '@':
		return "a SPIFFE ID has no user info"
	case c == '/':
		return "'/' is not allowed"
	case c >= 0x80:
		return "non-ASCII characters are not allowed"
	case c < 0x20 || c == 0x7f:
		return "control characters are not allowed"
	}
	return fmt.Sprintf("%q is not allowed: only letters, digits, '.', '-' and '_'", c)
}
