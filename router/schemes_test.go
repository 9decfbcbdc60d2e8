package router

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

// The rule that reads a label through the equivalence table into a
// region's per-scheme accreditations, on DOMAIN.md §6.5's scenarios.
func TestCover(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	tab, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	exp := now.AddDate(1, 0, 0)
	acc := func(s marking.Scheme, max, authority string, caveats ...string) SchemeAccreditation {
		return SchemeAccreditation{Scheme: s, MaxLevel: max, Authority: authority, Expires: exp, Caveats: caveats}
	}
	usSecret := acc(marking.US, "SECRET", "DISA")
	usCUI := acc(marking.US, "CUI", "DISA")
	usConf := acc(marking.US, "CONFIDENTIAL", "DISA")
	gbrSecret := acc(marking.GBR, "SECRET", "UK MOD")
	gbrOfficial := acc(marking.GBR, "OFFICIAL", "UK Cabinet Office", "SENSITIVE")
	ausProtected := acc(marking.AUS, "PROTECTED", "Department of Defence")
	kenConf := acc(marking.KEN, "CONFIDENTIAL", "ICT Authority")
	natoSecret := acc(marking.NATO, "NATO SECRET", "NATO Office of Security")
	for _, tc := range []struct {
		name    string
		scheme  marking.Scheme
		marking string
		accs    []SchemeAccreditation
		ok      bool
		want    string // in Via when ok, else in a reason
		code    ReasonCode
	}{
		{"1: UK SECRET on a GBR SECRET region", marking.GBR, "UK SECRET", []SchemeAccreditation{gbrSecret}, true, "GBR SECRET accreditation (UK MOD)", ""},
		{"1: UK SECRET on a US SECRET region, through GBR→US", marking.GBR, "UK SECRET", []SchemeAccreditation{usSecret}, true, "through GBR→US v1", ""},
		{"1: UK TOP SECRET on a US SECRET region", marking.GBR, "UK TOP SECRET", []SchemeAccreditation{usSecret}, false, "holds at most SECRET", ReasonLevel},
		{"3: AUS PROTECTED on an AUS PROTECTED region", marking.AUS, "[SEC=PROTECTED]", []SchemeAccreditation{ausProtected}, true, "AUS PROTECTED accreditation (Department of Defence)", ""},
		{"3: AUS PROTECTED on uksouth (GBR OFFICIAL)", marking.AUS, "[SEC=PROTECTED]", []SchemeAccreditation{gbrOfficial}, false, "no equivalence entry AUS→GBR", ReasonNoEquivalence},
		{"3: AUS PROTECTED on a US region", marking.AUS, "[SEC=PROTECTED]", []SchemeAccreditation{usSecret}, false, "no US equivalent", ReasonNoEquivalence},
		{"5: Kenyan CONFIDENTIAL on a Kenyan region", marking.KEN, "CONFIDENTIAL", []SchemeAccreditation{kenConf}, true, "KEN CONFIDENTIAL accreditation", ""},
		{"5: Kenyan CONFIDENTIAL is never US CONFIDENTIAL", marking.KEN, "CONFIDENTIAL", []SchemeAccreditation{usConf}, false, "never US CONFIDENTIAL", ReasonNoEquivalence},
		{"6: NATO RESTRICTED on a NATO region", marking.NATO, "NATO RESTRICTED", []SchemeAccreditation{natoSecret}, true, "NATO SECRET accreditation", ""},
		{"6: NATO RESTRICTED on a US CONFIDENTIAL region", marking.NATO, "NATO RESTRICTED", []SchemeAccreditation{usConf}, true, "through NATO→US v1", ""},
		{"6: NATO RESTRICTED never on a CUI region", marking.NATO, "NATO RESTRICTED", []SchemeAccreditation{usCUI}, false, "held as US CONFIDENTIAL", ReasonLevel},
		{"7: OFFICIAL-SENSITIVE on a UK OFFICIAL region listing SENSITIVE", marking.GBR, "OFFICIAL-SENSITIVE", []SchemeAccreditation{gbrOfficial}, true, "GBR OFFICIAL accreditation", ""},
		{"7: OFFICIAL-SENSITIVE on a UK OFFICIAL region without SENSITIVE", marking.GBR, "OFFICIAL-SENSITIVE", []SchemeAccreditation{acc(marking.GBR, "OFFICIAL", "x")}, false, "not accredited for SENSITIVE", ReasonControls},
		{"7: OFFICIAL-SENSITIVE is never guessed as US CUI", marking.GBR, "OFFICIAL-SENSITIVE", []SchemeAccreditation{usSecret}, false, "never read as CUI", ReasonNoEquivalence},
		{"a US label is read as US", marking.US, "SECRET//NOFORN", []SchemeAccreditation{gbrSecret, usSecret}, true, "US SECRET accreditation", ""},
		{"no accreditation at all", marking.GBR, "UK SECRET", nil, false, "holds no accreditation", ReasonNoEquivalence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := marking.Parse(tc.scheme, tc.marking)
			if err != nil {
				t.Fatal(err)
			}
			c := Cover(l, tc.accs, tab, marking.Parser{}, now)
			if c.OK != tc.ok {
				t.Fatalf("Cover = %+v; want ok %v", c, tc.ok)
			}
			if tc.ok {
				if !strings.Contains(c.Via, tc.want) {
					t.Errorf("via %q; want it to say %q", c.Via, tc.want)
				}
				return
			}
			for _, r := range c.Reasons {
				if r.Code == tc.code && strings.Contains(r.Message, tc.want) {
					return
				}
			}
			t.Errorf("reasons %+v; want %s saying %q", c.Reasons, tc.code, tc.want)
		})
	}
}

// An accreditation out of force holds nothing, whatever the table says.
func TestCoverAccreditationInForce(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	tab, _ := equiv.NewTable(nil)
	l, _ := marking.Parse(marking.GBR, "UK SECRET")
	a := SchemeAccreditation{Scheme: marking.GBR, MaxLevel: "SECRET", Authority: "UK MOD", Expires: now}
	if c := Cover(l, []SchemeAccreditation{a}, tab, marking.Parser{}, now); c.OK || c.Reasons[0].Code != ReasonAccreditation || !strings.Contains(c.Reasons[0].Message, "expired on 2026-12-03") {
		t.Errorf("expired: %+v", c)
	}
	a.Expires, a.Revoked = now.AddDate(1, 0, 0), true
	if c := Cover(l, []SchemeAccreditation{a}, tab, marking.Parser{}, now); c.OK || !strings.Contains(c.Reasons[0].Message, "revoked") {
		t.Errorf("revoked: %+v", c)
	}
	if err := (SchemeAccreditation{Scheme: marking.AUS, MaxLevel: "SECRET UE/EU SECRET"}).Validate(marking.Parser{}); err == nil ||
		!strings.Contains(err.Error(), "not a level of AUS") || !strings.Contains(err.Error(), "authority: required") {
		t.Errorf("Validate: %v", err)
	}
}

// A refusal read through schemes names the label's scheme and every pair
// it tried, with the version of the entries it found.
func TestCoverRegionNamesPairs(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	tab, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	reg := &Region{Accreditation: Accreditation{MaxLevel: 0, Expires: now.AddDate(1, 0, 0)},
		Accreditations: []SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "OFFICIAL", Level: marking.Level{Name: "OFFICIAL"}, Authority: "x", Expires: now.AddDate(1, 0, 0)}}}
	c := CoverRegion(marking.MustParse(marking.AUS, "[SEC=PROTECTED]"), reg, nil, tab, now)
	if c.OK || len(c.Reasons) != 2 {
		t.Fatalf("CoverRegion = %+v; want two refusals", c)
	}
	for i, want := range []string{"AUS→GBR", "AUS→US v1"} {
		r := c.Reasons[i]
		if r.Code != ReasonNoEquivalence || r.Scheme != marking.AUS || !slices.Equal(r.Equivalence, []string{want}) {
			t.Errorf("reason %d = %+v; want no_equivalence, AUS, %s", i, r, want)
		}
	}
}
