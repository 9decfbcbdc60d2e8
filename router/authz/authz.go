// Package authz is who a caller is and what it may do: principals taken
// from a SPIFFE-style identity, their roles, and the context that carries
// them. It is pure: no gRPC, etcd or TLS imports. The gRPC edge
// (router/server) authenticates and enforces; the store records the
// principal in the audit trail.
package authz

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
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
	// ID is the SPIFFE ID the caller presented.
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
func Actor(ctx context.Context) string {
	if p := FromContext(ctx); p != nil {
		return p.ID
	}
	return "system"
}

// ParseID reads a SPIFFE ID of trust domain td:
//
//	spiffe://<td>/tenant/<tenant>/user/<name>   a tenant user (roles from the tenant's policy)
//	spiffe://<td>/agent/<provider>/<region>     the agent of one region (RoleAgent)
//	spiffe://<td>/admin/<name>                  a catalogue administrator (RoleCatalogAdmin)
//	spiffe://<td>/auditor/<name>                a security auditor (RoleSecurityAuditor)
//
// Anything else is refused. A tenant user's roles are not in the ID: the
// edge resolves them from the tenant's policy.
func ParseID(u *url.URL, td string) (*Principal, error) {
	if u == nil || u.Scheme != "spiffe" {
		return nil, fmt.Errorf("identity %v: want a spiffe:// URI", u)
	}
	if u.Host != td {
		return nil, fmt.Errorf("identity %s: trust domain %q, want %q", u, u.Host, td)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return nil, fmt.Errorf("identity %s: a SPIFFE ID has no user, port, query or fragment", u)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	for _, s := range parts {
		if !validSegment(s) {
			return nil, fmt.Errorf("identity %s: bad path segment %q", u, s)
		}
	}
	p := &Principal{ID: u.String()}
	switch {
	case len(parts) == 4 && parts[0] == "tenant" && parts[2] == "user":
		p.Kind, p.Tenant, p.Name = "tenant", parts[1], parts[3]
	case len(parts) == 3 && parts[0] == "agent":
		p.Kind, p.Region, p.Roles = "agent", parts[1]+"/"+parts[2], []Role{RoleAgent}
	case len(parts) == 2 && parts[0] == "admin":
		p.Kind, p.Name, p.Roles = "admin", parts[1], []Role{RoleCatalogAdmin}
	case len(parts) == 2 && parts[0] == "auditor":
		p.Kind, p.Name, p.Roles = "auditor", parts[1], []Role{RoleSecurityAuditor}
	default:
		return nil, fmt.Errorf("identity %s: unknown path; want /tenant/T/user/N, /agent/P/R, /admin/N or /auditor/N", u)
	}
	return p, nil
}

// validSegment: non-empty, at most 128 bytes of [A-Za-z0-9._-].
func validSegment(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
