package router

import (
	"slices"
	"testing"
	"time"

	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

func TestSecurityChanges(t *testing.T) {
	base := baseRegion()
	tests := []struct {
		name   string
		mutate func(r *Region)
		fields []string
		kind   ChangeKind
	}{
		{"status", func(r *Region) { r.Status = StatusDraining }, nil, ChangeOther},
		{"capacity and cost", func(r *Region) { r.Capacity.GPU = 0; r.Cost = 9 }, nil, ChangeOther},
		{"controls reordered", func(r *Region) { r.Accreditation.Controls = []string{"SI", "TK", "SAR-BP"} }, nil, ChangeOther},
		{"raised", func(r *Region) { r.Accreditation.MaxLevel = label.TopSecret }, []string{"accreditation.max_level"}, ChangeRaise},
		{"lowered", func(r *Region) { r.Accreditation.MaxLevel = label.CUI }, []string{"accreditation.max_level"}, ChangeLower},
		{"revoked", func(r *Region) { r.Accreditation.Revoked = true }, []string{"accreditation.revoked"}, ChangeRevoke},
		{"control added", func(r *Region) { r.Accreditation.Controls = append(r.Accreditation.Controls, "HCS") }, []string{"accreditation.controls"}, ChangeRaise},
		{"control withdrawn", func(r *Region) { r.Accreditation.Controls = []string{"SI"} }, []string{"accreditation.controls"}, ChangeLower},
		{"expiry", func(r *Region) { r.Accreditation.Expires = r.Accreditation.Expires.AddDate(1, 0, 0) }, []string{"accreditation.expires"}, ChangeOther},
		{"operators", func(r *Region) { r.OperatorNationalities = []string{"USA", "GBR"} }, []string{"operator_nationalities"}, ChangeOther},
		{"customers", func(r *Region) { r.Customers = []string{"*"} }, []string{"customers"}, ChangeOther},
		{"country and personnel", func(r *Region) { r.Country = "GBR"; r.Personnel = PersonnelNone }, []string{"country", "personnel"}, ChangeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRegion()
			tt.mutate(r)
			if got := SecurityChanges(base, r); !slices.Equal(got, tt.fields) {
				t.Errorf("fields %v, want %v", got, tt.fields)
			}
			if got := ClassifyChange(base, r); got != tt.kind {
				t.Errorf("kind %s, want %s", got, tt.kind)
			}
		})
	}
	if got := SecurityChanges(nil, base); len(got) != 1 || ClassifyChange(nil, base) != ChangeAdd {
		t.Errorf("a new region: %v %s", got, ClassifyChange(nil, base))
	}
}

// What a region is accredited for in other schemes changes with two
// people too, and taking any of it away is a lowering.
func TestSchemeAccreditationChanges(t *testing.T) {
	exp := time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	base := Region{Provider: "aws", ID: "uk-1", Accreditations: []SchemeAccreditation{
		{Scheme: "GBR", MaxLevel: "SECRET", Level: marking.Level{Name: "SECRET", Rank: 1}, Authority: "UK MOD", Expires: exp},
	}}
	withAcc := func(a ...SchemeAccreditation) *Region { r := base; r.Accreditations = a; return &r }
	gbr := base.Accreditations[0]
	official := SchemeAccreditation{Scheme: "GBR", MaxLevel: "OFFICIAL", Level: marking.Level{Name: "OFFICIAL"}, Authority: "UK MOD", Expires: exp}
	nato := SchemeAccreditation{Scheme: "NATO", MaxLevel: "NATO SECRET", Level: marking.Level{Name: "NATO SECRET", Rank: 3}, Authority: "NATO", Expires: exp}
	revoked := gbr
	revoked.Revoked = true
	noted := gbr
	noted.Notes, noted.Illustrative = "see the accreditation letter", true
	for _, tc := range []struct {
		name   string
		new    *Region
		fields []string
		kind   ChangeKind
	}{
		{"added", withAcc(gbr, nato), []string{"accreditations"}, ChangeRaise},
		{"removed", withAcc(), []string{"accreditations"}, ChangeLower},
		{"lowered", withAcc(official), []string{"accreditations"}, ChangeLower},
		{"revoked", withAcc(revoked), []string{"accreditations"}, ChangeLower},
		{"notes only", withAcc(noted), nil, ChangeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SecurityChanges(&base, tc.new); !slices.Equal(got, tc.fields) {
				t.Errorf("SecurityChanges = %v; want %v", got, tc.fields)
			}
			if got := ClassifyChange(&base, tc.new); got != tc.kind {
				t.Errorf("ClassifyChange = %s; want %s", got, tc.kind)
			}
		})
	}
}
