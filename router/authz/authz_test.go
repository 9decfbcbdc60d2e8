package authz

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	const td = "gov.example"
	tests := []struct {
		id      string
		kind    string
		tenant  string
		name    string
		region  string
		roles   []Role
		wantErr bool
	}{
		{id: "spiffe://gov.example/tenant/ke-moh/user/amina", kind: "tenant", tenant: "ke-moh", name: "amina"},
		{id: "spiffe://gov.example/agent/aws/us-gov-west-1", kind: "agent", region: "aws/us-gov-west-1", roles: []Role{RoleAgent}},
		{id: "spiffe://gov.example/admin/grace", kind: "admin", name: "grace", roles: []Role{RoleCatalogAdmin}},
		{id: "spiffe://gov.example/auditor/ida", kind: "auditor", name: "ida", roles: []Role{RoleSecurityAuditor}},
		{id: "spiffe://other.example/admin/grace", wantErr: true},
		{id: "https://gov.example/admin/grace", wantErr: true},
		{id: "spiffe://gov.example/admin/grace/extra", wantErr: true},
		{id: "spiffe://gov.example/tenant/ke-moh/admin/x", wantErr: true},
		{id: "spiffe://gov.example/admin/..", wantErr: true},
		{id: "spiffe://gov.example/admin/", wantErr: true},
		{id: "spiffe://gov.example/admin/a%2Fb", wantErr: true},
		{id: "spiffe://gov.example:443/admin/grace", wantErr: true},
		{id: "spiffe://gov.example/admin/grace?x=1", wantErr: true},
		{id: "spiffe://u@gov.example/admin/grace", wantErr: true},
	}
	for _, tt := range tests {
		p, err := ParseID(tt.id, td)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: accepted as %+v", tt.id, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.id, err)
			continue
		}
		if p.Kind != tt.kind || p.Tenant != tt.tenant || p.Name != tt.name || p.Region != tt.region || !slices.Equal(p.Roles, tt.roles) || p.ID != tt.id {
			t.Errorf("%s: got %+v", tt.id, p)
		}
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if FromContext(ctx) != nil || Actor(ctx) != "system" {
		t.Fatal("empty context carries a principal")
	}
	p := &Principal{ID: "spiffe://td/admin/a", Roles: []Role{RoleCatalogAdmin}}
	ctx = NewContext(ctx, p)
	if FromContext(ctx) != p || Actor(ctx) != p.ID || !p.Has(RoleCatalogAdmin) || p.Has(RoleAgent) {
		t.Fatal("context round trip")
	}
	var none *Principal
	if none.Has(RoleCatalogAdmin) {
		t.Fatal("nil principal has a role")
	}
}

// A principal logs its kind, tenant and region: never its name or ID.
func TestPrincipalLogValue(t *testing.T) {
	p, err := ParseID("spiffe://classroute.test/tenant/ke-moh/user/amina", "classroute.test")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("call", "caller", p)
	log.Info("call", "caller", (*Principal)(nil))
	out := buf.String()
	if strings.Contains(out, "amina") {
		t.Errorf("log carries the user's name:\n%s", out)
	}
	for _, want := range []string{`"kind":"tenant"`, `"tenant":"ke-moh"`, `"name":"[redacted]"`, `"caller":"anonymous"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// Every other spelling of an identity is refused, with a reason, before
// anything is decoded: a percent-encoded letter or '/', a case-folded
// scheme or trust domain, an empty, dot or encoded-dot segment, user
// info, a port, a query or fragment (even empty), anything not ASCII,
// anything over-long. Each would otherwise read as a name another
// spelling also reads as.
func TestParseIDRefusesSpellings(t *testing.T) {
	const td = "gov.example"
	const base = "spiffe://gov.example"
	tests := []struct {
		name, id, why string
	}{
		{"percent-encoded letter", base + "/admin/al%69ce", "percent-encoding"},
		{"percent-encoded letter, upper-case hex", base + "/admin/al%6Fce", "percent-encoding"},
		{"percent-encoded slash", base + "/tenant/ke-moh%2Fuser%2Famina", "percent-encoding"},
		{"percent-encoded slash, lower case", base + "/tenant/ke-moh%2fuser%2famina", "percent-encoding"},
		{"percent-encoded dot", base + "/admin/%2E", "percent-encoding"},
		{"percent-encoded dot-dot", base + "/admin/%2e%2e/admin/alice", "percent-encoding"},
		{"percent-encoded space", base + "/admin/alice%20", "percent-encoding"},
		{"percent-encoded trust domain", "spiffe://gov%2Eexample/admin/alice", "percent-encoding"},
		{"lone percent", base + "/admin/100%", "percent-encoding"},
		{"upper-case scheme", "SPIFFE://gov.example/admin/alice", "lower case"},
		{"mixed-case scheme", "Spiffe://gov.example/admin/alice", "lower case"},
		{"upper-case trust domain", "spiffe://GOV.EXAMPLE/admin/alice", "lower case"},
		{"mixed-case trust domain", "spiffe://Gov.example/admin/alice", "lower case"},
		{"other scheme", "https://gov.example/admin/alice", "want spiffe://"},
		{"opaque", "spiffe:gov.example/admin/alice", "want spiffe://"},
		{"one slash", "spiffe:/gov.example/admin/alice", "want spiffe://"},
		{"no trust domain", "spiffe:///admin/alice", "no trust domain"},
		{"no path", base, "no path"},
		{"root path", base + "/", "no path"},
		{"empty segment", base + "/admin//alice", "empty path segment"},
		{"leading empty segment", base + "//admin/alice", "empty path segment"},
		{"trailing slash", base + "/admin/alice/", "trailing"},
		{"dot segment", base + "/./admin/alice", `"."`},
		{"dot segment at the end", base + "/admin/alice/.", `"."`},
		{"dot-dot segment", base + "/admin/x/../alice", `".."`},
		{"dot-dot as name", base + "/admin/..", `".."`},
		{"userinfo", "spiffe://alice@gov.example/admin/alice", "user info"},
		{"empty userinfo", "spiffe://@gov.example/admin/alice", "user info"},
		{"port", "spiffe://gov.example:443/admin/alice", "port"},
		{"empty port", "spiffe://gov.example:/admin/alice", "port"},
		{"query", base + "/admin/alice?x=1", "query"},
		{"empty query", base + "/admin/alice?", "query"},
		{"query on the trust domain", "spiffe://gov.example?x/admin/alice", "query"},
		{"fragment", base + "/admin/alice#x", "fragment"},
		{"empty fragment", base + "/admin/alice#", "fragment"},
		{"non-ASCII letter", base + "/admin/al\u00edce", "non-ASCII"},
		{"Cyrillic look-alike", base + "/admin/\u0430lice", "non-ASCII"},
		{"non-ASCII trust domain", "spiffe://g\u00f6v.example/admin/alice", "non-ASCII"},
		{"space", base + "/admin/al ice", `' '`},
		{"backslash", base + "/admin\\alice", `'\\'`},
		{"NUL", base + "/admin/alice\x00", "control"},
		{"newline", base + "/admin/alice\n", "control"},
		{"leading space", " " + base + "/admin/alice", "want spiffe://"},
		{"over-long", base + "/admin/" + strings.Repeat("a", MaxIDBytes), "at most 2048"},
		{"over-long segment", base + "/admin/" + strings.Repeat("a", MaxSegmentBytes+1), "at most 128"},
		{"over-long trust domain", "spiffe://" + strings.Repeat("a", MaxTrustDomainBytes+1) + "/admin/alice", "at most 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseID(tt.id, td)
			if err == nil {
				t.Fatalf("%q: accepted as %+v", tt.id, p)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("%q: %v; want a reason naming %s", tt.id, err, tt.why)
			}
			if _, _, err := SplitID(tt.id); err == nil {
				t.Errorf("%q: SplitID accepts it", tt.id)
			}
		})
	}
}

// SplitID and JoinID are inverses on canonical IDs, which is what makes
// comparing IDs as strings and as parts the same thing.
func TestSplitJoin(t *testing.T) {
	for _, id := range []string{
		"spiffe://gov.example/tenant/ke-moh/user/amina",
		"spiffe://a/b",
		"spiffe://1.2.3.4/x_y/Z-9/a.b",
		"spiffe://td/..a/a..",
	} {
		td, segs, err := SplitID(id)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if got := JoinID(td, segs...); got != id {
			t.Errorf("JoinID(SplitID(%s)) = %s", id, got)
		}
	}
}

// Principals are the same by kind, tenant, name and region, whatever
// their IDs' spelling, trust domain or roles.
func TestSame(t *testing.T) {
	alice := &Principal{ID: "spiffe://td/admin/alice", Kind: KindAdmin, Name: "alice", Roles: []Role{RoleCatalogAdmin}}
	tests := []struct {
		name string
		p, q *Principal
		same bool
	}{
		{"itself", alice, alice, true},
		{"another spelling", alice, &Principal{ID: "spiffe://td/admin/al%69ce", Kind: KindAdmin, Name: "alice"}, true},
		{"another trust domain", alice, &Principal{ID: "spiffe://other/admin/alice", Kind: KindAdmin, Name: "alice"}, true},
		{"another name", alice, &Principal{ID: "spiffe://td/admin/bob", Kind: KindAdmin, Name: "bob"}, false},
		{"another case", alice, &Principal{ID: "spiffe://td/admin/Alice", Kind: KindAdmin, Name: "Alice"}, false},
		{"another kind", alice, &Principal{ID: "spiffe://td/auditor/alice", Kind: KindAuditor, Name: "alice"}, false},
		{"a tenant user", &Principal{Kind: KindTenant, Tenant: "a", Name: "x"}, &Principal{Kind: KindTenant, Tenant: "b", Name: "x"}, false},
		{"an agent", &Principal{Kind: KindAgent, Region: "p/r1"}, &Principal{Kind: KindAgent, Region: "p/r2"}, false},
		{"system and system", nil, nil, true},
		{"system and alice", nil, alice, false},
		{"alice and system", alice, nil, false},
	}
	for _, tt := range tests {
		if got := tt.p.Same(tt.q); got != tt.same {
			t.Errorf("%s: Same = %v; want %v", tt.name, got, tt.same)
		}
	}
}

// A recorded actor reads back as the principal that recorded it, the
// development mode's too; what is not canonical is an error, never a
// principal that might compare different.
func TestParseActor(t *testing.T) {
	for _, tt := range []struct {
		actor string
		want  *Principal
	}{
		{"system", nil},
		{"spiffe://td/admin/alice", &Principal{Kind: KindAdmin, Name: "alice"}},
		{"spiffe://td/tenant/ke-moh/user/amina", &Principal{Kind: KindTenant, Tenant: "ke-moh", Name: "amina"}},
		{"spiffe://td/agent/aws/r1", &Principal{Kind: KindAgent, Region: "aws/r1"}},
		{"spiffe://classroute.dev/dev", &Principal{Kind: KindDev, Name: "dev"}},
		{"spiffe://classroute.dev/dev/alice", &Principal{Kind: KindDev, Name: "alice"}},
	} {
		got, err := ParseActor(tt.actor)
		if err != nil {
			t.Errorf("%s: %v", tt.actor, err)
			continue
		}
		if !got.Same(tt.want) || (got != nil && got.ID != tt.actor) {
			t.Errorf("%s: got %+v; want %+v", tt.actor, got, tt.want)
		}
	}
	for _, bad := range []string{"", "anonymous", "spiffe://td/admin/al%69ce", "spiffe://td/admin/alice?", "SPIFFE://td/admin/alice", "spiffe://td/root"} {
		if p, err := ParseActor(bad); err == nil {
			t.Errorf("%q: read as %+v; want an error", bad, p)
		}
	}
	// No certificate may claim a development identity.
	for _, id := range []string{"spiffe://classroute.dev/dev", "spiffe://classroute.dev/dev/alice"} {
		if p, err := ParseID(id, DevTrustDomain); err == nil {
			t.Errorf("ParseID(%s) = %+v; want unknown path", id, p)
		}
	}
}

// A development-mode name is one canonical segment.
func TestDevID(t *testing.T) {
	for name, want := range map[string]string{"dev": "spiffe://classroute.dev/dev", "alice": "spiffe://classroute.dev/dev/alice"} {
		if got, err := DevID(name); err != nil || got != want {
			t.Errorf("DevID(%s) = %s, %v; want %s", name, got, err, want)
		}
	}
	for _, name := range []string{"", ".", "..", "al%69ce", "a/b", "alice?", "alice#", "al ice", "al\u00edce", strings.Repeat("a", MaxSegmentBytes+1)} {
		if got, err := DevID(name); err == nil {
			t.Errorf("DevID(%q) = %s; want an error", name, got)
		}
	}
}

// FuzzParseID: whatever ParseID accepts is spelled exactly as the ID it
// records, decodes to nothing else, and reads the same through
// net/url, so that the string a certificate carries, the principal, and
// the audit trail's actor are one.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"spiffe://gov.example/tenant/ke-moh/user/amina", "spiffe://gov.example/admin/al%69ce",
		"spiffe://gov.example/agent/aws/us-gov-west-1", "SPIFFE://gov.example/admin/a", "spiffe://gov.example/admin/a?",
		"spiffe://gov.example/tenant/ke-moh%2Fuser%2Famina", "spiffe://gov.example/auditor/ida#",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		p, err := ParseID(id, "gov.example")
		if err != nil {
			return
		}
		if p.ID != id {
			t.Fatalf("%q: recorded as %q", id, p.ID)
		}
		if rest := id[len("spiffe://"):]; strings.ContainsAny(rest, "%?#@:\\ ") || strings.Contains(rest, "//") {
			t.Fatalf("%q: accepted", id)
		}
		u, err := url.Parse(id)
		if err != nil || u.String() != id || u.RawPath != "" || u.Path != id[len("spiffe://gov.example"):] {
			t.Fatalf("%q: net/url reads it otherwise: %v %v", id, u, err)
		}
		q, err := ParseActor(p.ID)
		if err != nil || !q.Same(p) {
			t.Fatalf("%q: reads back as %+v, %v", id, q, err)
		}
	})
}
