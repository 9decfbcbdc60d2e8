package router

import (
	"errors"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/label"
)

func policyTenant(ceiling string) *Tenant {
	t := &Tenant{ID: "ke-moh", Name: "Kenya Ministry of Health", Nation: "KEN", Sector: "civil", Ceiling: ceiling}
	if err := ValidateTenant(t); err != nil {
		panic(err)
	}
	return t
}

func TestWithinCeiling(t *testing.T) {
	tests := []struct {
		ceiling, label string
		ok             bool
	}{
		{"CUI", "UNCLASSIFIED", true},
		{"CUI", "CUI", true},
		{"CUI", "CUI//SP-EXPT", false}, // a control the ceiling lacks
		{"CUI", "SECRET//REL TO USA, KEN", false},
		{"SECRET//REL TO USA, KEN", "SECRET//REL TO USA, GBR, KEN", true},
		{"SECRET//REL TO USA, KEN", "CONFIDENTIAL//REL TO USA, GBR", false}, // not releasable to Kenya
		{"SECRET//REL TO USA, KEN", "TOP SECRET//REL TO USA, KEN", false},
	}
	for _, tt := range tests {
		err := policyTenant(tt.ceiling).WithinCeiling(label.MustParse(tt.label))
		if (err == nil) != tt.ok {
			t.Errorf("ceiling %s, label %s: got %v; want ok %v", tt.ceiling, tt.label, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "ceiling "+tt.ceiling)) {
			t.Errorf("ceiling %s, label %s: got %v; want permission denied naming the ceiling", tt.ceiling, tt.label, err)
		}
		if err != nil && (!errors.Is(err, ErrAboveCeiling) || !strings.HasPrefix(err.Error(), "permission denied: label ")) {
			t.Errorf("ceiling %s, label %s: got %v; want ErrAboveCeiling, worded as a permission denied", tt.ceiling, tt.label, err)
		}
	}
	if err := (&Tenant{ID: "x"}).WithinCeiling(label.MustParse("UNCLASSIFIED")); !errors.Is(err, ErrPermissionDenied) || !errors.Is(err, ErrAboveCeiling) {
		t.Errorf("no ceiling: got %v; want permission denied, above the ceiling", err)
	}
}

func TestMayKnowAndUse(t *testing.T) {
	ke := policyTenant("CUI")
	region := func(level label.Level, customers ...string) *Region {
		return &Region{Provider: "aws", ID: "r1", Accreditation: Accreditation{MaxLevel: level}, Customers: customers}
	}
	tests := []struct {
		name string
		r    *Region
		want bool
	}{
		{"unclassified, serves all", region(label.Unclassified, "*"), true},
		{"CUI, serves Kenya", region(label.CUI, "KEN"), true},
		{"CUI, serves Kenyan civil", region(label.CUI, "USA", "KEN/civil"), true},
		{"SECRET, serves all", region(label.Secret, "*"), false},
		{"TOP SECRET", region(label.TopSecret, "KEN"), false},
		{"serves the USA only", region(label.Unclassified, "USA"), false},
		{"serves Kenyan defence only", region(label.Unclassified, "KEN/defense"), false},
		{"serves no one", region(label.Unclassified), false},
	}
	for _, tt := range tests {
		if got := ke.MayKnow(tt.r); got != tt.want {
			t.Errorf("%s: MayKnow = %v; want %v", tt.name, got, tt.want)
		}
	}
	if (&Tenant{ID: "x", Nation: "KEN", Sector: "civil"}).MayKnow(region(label.Unclassified, "*")) {
		t.Error("a tenant without a ceiling may know of a region")
	}

	r := region(label.Unclassified, "*")
	for _, tt := range []struct {
		name string
		f    func(*Tenant)
		want bool
	}{
		{"no restriction", func(*Tenant) {}, true},
		{"allowed provider", func(t *Tenant) { t.AllowedProviders = []string{"azure", "aws"} }, true},
		{"allowed region", func(t *Tenant) { t.AllowedRegions = []string{"aws/r1"} }, true},
		{"other provider allowed", func(t *Tenant) { t.AllowedProviders = []string{"azure"} }, false},
		{"other region allowed", func(t *Tenant) { t.AllowedRegions = []string{"aws/r2", "aws/r"} }, false},
		{"provider denied", func(t *Tenant) { t.DeniedProviders = []string{"aws"} }, false},
		{"region denied", func(t *Tenant) { t.DeniedRegions = []string{"aws/r1"} }, false},
		{"denied beats allowed", func(t *Tenant) { t.AllowedRegions, t.DeniedProviders = []string{"aws/r1"}, []string{"aws"} }, false},
	} {
		tn := *ke
		tt.f(&tn)
		if got := tn.MayUse(r); got != tt.want {
			t.Errorf("%s: MayUse = %v; want %v", tt.name, got, tt.want)
		}
	}
}
