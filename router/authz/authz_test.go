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
		u, err := url.Parse(tt.id)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseID(u, td)
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
	u, _ := url.Parse("spiffe://classroute.test/tenant/ke-moh/user/amina")
	p, err := ParseID(u, "classroute.test")
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
