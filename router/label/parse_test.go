package label_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/label"
)

var (
	usOnly = []string{"USA"}
	fvey   = []string{"AUS", "CAN", "GBR", "NZL", "USA"}
)

// validCases are banners that parse, with the label they give and its
// canonical banner. They come from DOMAIN.md §0 and §1.5 (the US ones)
// and the CAPCO register.
var validCases = []struct {
	name   string
	banner string
	want   label.Label
	canon  string // canonical banner; "" when it is banner itself
}{
	// Seed scenarios (DOMAIN.md §0).
	{"TS SI TK NOFORN", "TOP SECRET//SI/TK//NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"SI", "TK"}, Nations: usOnly}, ""},
	{"AUKUS", "SECRET//REL TO USA, AUS, GBR",
		label.Label{Level: label.Secret, Nations: []string{"AUS", "GBR", "USA"}}, ""},
	{"CUI export", "CUI//SP-EXPT//NOFORN",
		label.Label{Level: label.CUI, Controls: []string{"SP-EXPT"}, Nations: usOnly}, ""},
	{"unclassified", "UNCLASSIFIED", label.Label{Level: label.Unclassified, AnyNation: true}, ""},
	{"FVEY expands", "SECRET//REL TO USA, FVEY",
		label.Label{Level: label.Secret, Nations: fvey}, "SECRET//REL TO USA, AUS, CAN, GBR, NZL"},

	// DOMAIN.md §1.5, valid US banners.
	{"HCS-P SI TK ORCON NOFORN", "TOP SECRET//HCS-P/SI/TK//ORCON/NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"HCS-P", "SI", "TK"}, Nations: usOnly, Dissem: []string{"ORCON"}}, ""},
	{"SI-G", "TOP SECRET//SI-G//NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"SI", "SI-G"}, Nations: usOnly}, ""},
	{"REL TO FVEY spelt out", "SECRET//REL TO USA, AUS, CAN, GBR, NZL",
		label.Label{Level: label.Secret, Nations: fvey}, ""},
	{"SAP", "SECRET//SAR-BP//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"SAR-BP"}, Nations: usOnly}, ""},
	{"legacy FOUO", "UNCLASSIFIED//FOUO",
		label.Label{Level: label.Unclassified, AnyNation: true, Dissem: []string{"FOUO"}}, ""},

	// Releasability defaults.
	{"classified fails closed", "SECRET",
		label.Label{Level: label.Secret, Nations: usOnly}, "SECRET//NOFORN"},
	{"confidential fails closed", "CONFIDENTIAL//ORCON",
		label.Label{Level: label.Confidential, Nations: usOnly, Dissem: []string{"ORCON"}}, "CONFIDENTIAL//ORCON/NOFORN"},
	{"RELIDO alone", "SECRET//RELIDO",
		label.Label{Level: label.Secret, Nations: usOnly, Dissem: []string{"RELIDO"}}, ""},
	{"REL TO with RELIDO", "SECRET//REL TO USA, GBR/RELIDO",
		label.Label{Level: label.Secret, Nations: []string{"GBR", "USA"}, Dissem: []string{"RELIDO"}}, ""},
	{"CUI", "CUI", label.Label{Level: label.CUI, AnyNation: true}, ""},
	{"CONTROLLED", "CONTROLLED//SP-CTI", label.Label{Level: label.CUI, Controls: []string{"SP-CTI"}, AnyNation: true}, "CUI//SP-CTI"},
	{"CUI NOFORN", "CUI//NOFORN", label.Label{Level: label.CUI, Nations: usOnly}, ""},
	{"CUI LDCs", "CUI//SP-PRVCY/SP-EXPT//FED ONLY/NOFORN",
		label.Label{Level: label.CUI, Controls: []string{"SP-EXPT", "SP-PRVCY"}, Nations: usOnly, Dissem: []string{"FED ONLY"}},
		"CUI//SP-EXPT/SP-PRVCY//NOFORN/FED ONLY"},
	{"CUI REL TO", "CUI//REL TO USA, CAN",
		label.Label{Level: label.CUI, Nations: []string{"CAN", "USA"}}, ""},
	// RELIDO, DISPLAY ONLY and the CUI US-audience controls make even
	// unclassified data US-only: they are foreign-disclosure markings.
	{"unclassified RELIDO", "UNCLASSIFIED//RELIDO",
		label.Label{Level: label.Unclassified, Nations: usOnly, Dissem: []string{"RELIDO"}}, "UNCLASSIFIED//REL TO USA/RELIDO"},
	{"CUI FED ONLY", "CUI//FED ONLY",
		label.Label{Level: label.CUI, Nations: usOnly, Dissem: []string{"FED ONLY"}}, "CUI//NOFORN/FED ONLY"},
	{"CUI NOCON", "CUI//NOCON",
		label.Label{Level: label.CUI, Nations: usOnly, Dissem: []string{"NOCON"}}, "CUI//NOFORN/NOCON"},
	{"unclassified US-only RELIDO", "UNCLASSIFIED//REL TO USA/RELIDO",
		label.Label{Level: label.Unclassified, Nations: usOnly, Dissem: []string{"RELIDO"}}, ""},
	{"REL TO USA alone is NOFORN", "SECRET//REL TO USA",
		label.Label{Level: label.Secret, Nations: usOnly}, "SECRET//NOFORN"},
	{"REL TO sorted, tetragraph overlap", "SECRET//REL TO USA, TEYE, NZL, GBR",
		label.Label{Level: label.Secret, Nations: []string{"AUS", "GBR", "NZL", "USA"}}, "SECRET//REL TO USA, AUS, GBR, NZL"},
	{"NATO", "SECRET//REL TO USA, NATO",
		label.Label{Level: label.Secret, Nations: []string{
			"ALB", "BEL", "BGR", "CAN", "CZE", "DEU", "DNK", "ESP", "EST", "FIN", "FRA",
			"GBR", "GRC", "HRV", "HUN", "ISL", "ITA", "LTU", "LUX", "LVA", "MKD", "MNE",
			"NLD", "NOR", "POL", "PRT", "ROU", "SVK", "SVN", "SWE", "TUR", "USA"}},
		"SECRET//REL TO USA, ALB, BEL, BGR, CAN, CZE, DEU, DNK, ESP, EST, FIN, FRA, GBR, GRC, HRV, HUN, ISL, ITA, LTU, LUX, LVA, MKD, MNE, NLD, NOR, POL, PRT, ROU, SVK, SVN, SWE, TUR"},
	{"ACGU", "TOP SECRET//SI//REL TO USA, ACGU",
		label.Label{Level: label.TopSecret, Controls: []string{"SI"}, Nations: []string{"AUS", "CAN", "GBR", "USA"}},
		"TOP SECRET//SI//REL TO USA, AUS, CAN, GBR"},

	// Case and whitespace.
	{"lower case and spaces", "  top secret//si/tk//noforn \n",
		label.Label{Level: label.TopSecret, Controls: []string{"SI", "TK"}, Nations: usOnly}, "TOP SECRET//SI/TK//NOFORN"},

	// SCI.
	{"values in any order", "TOP SECRET//TK/SI/HCS-P//NOFORN/ORCON",
		label.Label{Level: label.TopSecret, Controls: []string{"HCS-P", "SI", "TK"}, Nations: usOnly, Dissem: []string{"ORCON"}},
		"TOP SECRET//HCS-P/SI/TK//ORCON/NOFORN"},
	{"compartments and subs", "TOP SECRET//SI-XYZ-G EFGH ABCD/TK-KAND K1-BLFH B2//RSEN/ORCON/NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{
			"SI", "SI-G", "SI-G ABCD", "SI-G EFGH", "SI-XYZ", "TK", "TK-BLFH", "TK-BLFH B2", "TK-KAND", "TK-KAND K1"},
			Nations: usOnly, Dissem: []string{"RSEN", "ORCON"}},
		"TOP SECRET//SI-G ABCD EFGH-XYZ/TK-BLFH B2-KAND K1//RSEN/ORCON/NOFORN"},
	{"ECRU and NONBOOK abbreviations", "TOP SECRET//SI-EU-NK//NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"SI", "SI-ECRU", "SI-NONBOOK"}, Nations: usOnly},
		"TOP SECRET//SI-ECRU-NONBOOK//NOFORN"},
	{"HCS compartments", "TOP SECRET//HCS-P ABC/HCS-O//NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"HCS-O", "HCS-P", "HCS-P ABC"}, Nations: usOnly},
		"TOP SECRET//HCS-O-P ABC//NOFORN"},
	{"RESERVE", "SECRET//RSV-XYZ//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"RSV-XYZ"}, Nations: usOnly}, ""},
	{"SI at CONFIDENTIAL", "CONFIDENTIAL//SI//NOFORN",
		label.Label{Level: label.Confidential, Controls: []string{"SI"}, Nations: usOnly}, ""},
	{"SI merged with its compartment", "TOP SECRET//SI/SI-G//NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"SI", "SI-G"}, Nations: usOnly}, "TOP SECRET//SI-G//NOFORN"},

	// SAP.
	{"SAP programs", "TOP SECRET//SAR-CD/BP-X1 Y//NOFORN",
		label.Label{Level: label.TopSecret, Controls: []string{"SAR-BP", "SAR-BP-X1", "SAR-BP-X1 Y", "SAR-CD"}, Nations: usOnly},
		"TOP SECRET//SAR-BP-X1 Y/CD//NOFORN"},
	{"legacy repeated SAR prefix", "SECRET//SAR-BP/SAR-CD//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"SAR-BP", "SAR-CD"}, Nations: usOnly}, "SECRET//SAR-BP/CD//NOFORN"},
	{"SAP named like an SCI system", "SECRET//SAR-SI/SAR-BP//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"SAR-BP", "SAR-SI"}, Nations: usOnly}, "SECRET//SAR-BP/SAR-SI//NOFORN"},
	{"SAP program of words", "SECRET//SAR-RED WAGON//RELIDO",
		label.Label{Level: label.Secret, Controls: []string{"SAR-RED WAGON"}, Nations: usOnly, Dissem: []string{"RELIDO"}}, ""},

	// AEA.
	{"RD CNWDI", "SECRET//RD-CNWDI//REL TO USA, GBR",
		label.Label{Level: label.Secret, Controls: []string{"CNWDI", "RD"}, Nations: []string{"GBR", "USA"}}, ""},
	{"SIGMA numbers sort", "SECRET//RD-SIGMA 20 2 14/FRD//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"FRD", "RD", "SIGMA 14", "SIGMA 2", "SIGMA 20"}, Nations: usOnly},
		"SECRET//RD-SIGMA 2 14 20/FRD//NOFORN"},
	{"FRD SIGMA", "SECRET//FRD-SIGMA 14//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"FRD", "SIGMA 14"}, Nations: usOnly}, ""},
	{"SIGMA alone", "SECRET//SIGMA 18//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"SIGMA 18"}, Nations: usOnly}, ""},
	{"AEA order", "SECRET//ATOMAL/TFNI/RD//NOFORN",
		label.Label{Level: label.Secret, Controls: []string{"ATOMAL", "RD", "TFNI"}, Nations: usOnly}, "SECRET//RD/TFNI/ATOMAL//NOFORN"},
	{"UCNI", "UNCLASSIFIED//DOD UCNI",
		label.Label{Level: label.Unclassified, Controls: []string{"DOD UCNI"}, AnyNation: true}, ""},

	// Every category.
	{"all categories", "TOP SECRET//SI//SAR-BP//RD//SP-EXPT//IMCON/REL TO USA, GBR/FISA//LES",
		label.Label{Level: label.TopSecret, Controls: []string{"RD", "SAR-BP", "SI", "SP-EXPT"},
			Nations: []string{"GBR", "USA"}, Dissem: []string{"IMCON", "FISA", "LES"}}, ""},

	// DISPLAY ONLY and the non-IC NOFORN forms.
	{"DISPLAY ONLY classified", "SECRET//DISPLAY ONLY KEN, FVEY",
		label.Label{Level: label.Secret, Nations: usOnly, Dissem: []string{"DISPLAY ONLY AUS, CAN, GBR, KEN, NZL"}},
		"SECRET//DISPLAY ONLY AUS, CAN, GBR, KEN, NZL"},
	{"DISPLAY ONLY with REL TO", "SECRET//REL TO USA, GBR/DISPLAY ONLY AUS",
		label.Label{Level: label.Secret, Nations: []string{"GBR", "USA"}, Dissem: []string{"DISPLAY ONLY AUS"}}, ""},
	{"DISPLAY ONLY unclassified", "UNCLASSIFIED//DISPLAY ONLY GBR",
		label.Label{Level: label.Unclassified, Nations: usOnly, Dissem: []string{"DISPLAY ONLY GBR"}}, "UNCLASSIFIED//REL TO USA/DISPLAY ONLY GBR"},
	{"SBU NOFORN", "UNCLASSIFIED//SBU NOFORN",
		label.Label{Level: label.Unclassified, Nations: usOnly, Dissem: []string{"SBU"}}, "UNCLASSIFIED//NOFORN//SBU"},
	{"LES NOFORN classified", "SECRET//NOFORN//LES NOFORN",
		label.Label{Level: label.Secret, Nations: usOnly, Dissem: []string{"LES"}}, "SECRET//NOFORN//LES"},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := label.Parse(tc.banner)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.banner, err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("Parse(%q) = %#v; want %#v", tc.banner, got, tc.want)
			}
			canon := tc.canon
			if canon == "" {
				canon = strings.ToUpper(strings.TrimSpace(tc.banner))
			}
			if s := got.String(); s != canon {
				t.Errorf("String() = %q; want %q", s, canon)
			}
			checkRoundTrip(t, got)
		})
	}
}

// invalidCases are banners Parse refuses, with the offending part and
// a substring of the reason.
var invalidCases = []struct {
	name, banner, part, reason string
}{
	// DOMAIN.md §1.5, invalid.
	{"NOFORN with REL TO", "SECRET//NOFORN/REL TO USA, CAN", "REL TO USA, CAN", "NOFORN cannot be combined with REL TO"},
	{"USA not first", "SECRET//REL TO GBR, USA", "REL TO GBR, USA", "REL TO must list USA first"},
	{"portion NF", "SECRET//NF", "NF", `"NF" is a portion marking; the banner form is NOFORN`},
	{"bare HCS", "TOP SECRET//HCS", "HCS", "HCS requires a compartment"},
	{"NOFORN with RELIDO", "SECRET//NOFORN/RELIDO", "RELIDO", "NOFORN cannot be combined with RELIDO"},

	// Levels.
	{"empty", "", "", "empty marking"},
	{"blank", " \t\n", "", "empty marking"},
	{"unknown level", "X", "X", `unknown classification level "X"`},
	{"unknown level with controls", "SECRETT//NOFORN", "SECRETT", `unknown classification level "SECRETT"`},
	{"portion TS", "TS//SI//NOFORN", "TS", `"TS" is a portion marking; the banner form is TOP SECRET`},
	{"portion S", "S", "S", `"S" is a portion marking; the banner form is SECRET`},
	{"portion C", "C//NOFORN", "C", "portion marking"},
	{"portion U", "U", "U", "portion marking"},
	{"single slash after level", "SECRET/NOFORN", "SECRET/NOFORN", `categories are separated by "//"`},
	{"space inside level", "TOP  SECRET", "TOP  SECRET", "unexpected space"},

	// Non-US.
	{"NATO", "//NATO SECRET", "//NATO SECRET", "non-US markings are not supported"},
	{"COSMIC", "//COSMIC TOP SECRET", "//COSMIC TOP SECRET", "non-US markings are not supported"},
	{"foreign", "//GBR SECRET", "//GBR SECRET", "non-US markings are not supported"},
	{"foreign without slashes", "GBR SECRET", "GBR SECRET", "non-US markings are not supported"},
	{"JOINT", "//JOINT SECRET GBR USA//REL TO USA, AUS, CAN, GBR, NZL", "//JOINT SECRET GBR USA", "non-US markings are not supported"},
	{"FGI", "TOP SECRET//FGI DEU GBR//NOFORN", "FGI DEU GBR", "non-US markings are not supported"},
	{"FGI NATO", "SECRET//RD/ATOMAL//FGI NATO//NOFORN", "FGI NATO", "non-US markings are not supported"},
	{"RESTRICTED", "RESTRICTED", "RESTRICTED", "non-US markings are not supported"},

	// Separators.
	{"empty category", "SECRET////NOFORN", "////", "empty category"},
	{"trailing //", "SECRET//", "//", `trailing "//"`},
	{"trailing /", "SECRET//NOFORN/", "NOFORN/", `trailing "/"`},
	{"triple slash", "SECRET///NOFORN", "/NOFORN", `leading "/"`},
	{"two dissemination categories", "TOP SECRET//SI//ORCON//NOFORN", "NOFORN", "a second dissemination control category"},
	{"two SCI categories", "TOP SECRET//SI//TK", "TK", "a second SCI category"},
	{"trailing slash after categories", "TOP SECRET//SI//ORCON//NOFORN/", "NOFORN/", `trailing "/"`},
	{"space after //", "SECRET// NOFORN", " NOFORN", "unexpected space"},
	{"bad character", "SECRET//NOFORN;", "NOFORN;", "unexpected character ';'"},
	{"non-ASCII letter", "SECRET//NOFORN\u00e9", "NOFORN\u00e9", "unexpected character"},
	{"invalid UTF-8", "SECRET//NOF\xffORN", "NOF\xffORN", "invalid UTF-8"},

	// Order and duplicates.
	{"category out of order", "SECRET//NOFORN//SI", "SI", "SCI markings must come before dissemination control markings"},
	{"SAP before SCI", "TOP SECRET//SAR-BP//SI//NOFORN", "SI", "SCI markings must come before SAP markings"},
	{"duplicate category", "SECRET//NOFORN//NOFORN", "NOFORN", "a second dissemination control category"},
	{"duplicate value", "SECRET//NOFORN/NOFORN", "NOFORN", `duplicate "NOFORN"`},
	{"duplicate control", "TOP SECRET//SI/SI//NOFORN", "SI", `duplicate "SI"`},
	{"duplicate compartment", "TOP SECRET//SI-G-G//NOFORN", "SI-G-G", `duplicate compartment "SI-G"`},
	{"duplicate country", "SECRET//REL TO USA, GBR, GBR", "REL TO USA, GBR, GBR", `duplicate country "GBR"`},
	{"duplicate USA", "SECRET//REL TO USA, USA", "REL TO USA, USA", `duplicate country "USA"`},
	{"dissem in SCI category", "SECRET//SI/NOFORN", "NOFORN", `"NOFORN" belongs to the dissemination control category, not SCI`},
	{"SCI in SAP category", "SECRET//SAR-BP/SI//NOFORN", "SI", "SAR-SI"},

	// Unknown values.
	{"unknown control", "SECRET//XYZ", "XYZ", `unknown control "XYZ"`},
	{"unknown dissemination control", "SECRET//NOFORN/XYZ", "XYZ", `unknown dissemination control "XYZ"`},
	{"unknown category after dissem", "SECRET//NOFORN//XYZ", "XYZ", `unknown dissemination control "XYZ"`},
	{"unknown country", "SECRET//REL TO USA, XYZ", "XYZ", `unknown country code "XYZ"`},
	{"unknown tetragraph", "SECRET//REL TO USA, ABCD", "ABCD", `unknown country code "ABCD"`},
	{"CUI basic category", "CUI//PRVCY", "PRVCY", `unknown control "PRVCY"`},
	{"unknown compartment", "TOP SECRET//TK-XYZ//NOFORN", "TK-XYZ", `unknown control "TK-XYZ"`},
	{"marking title", "TOP SECRET//SI-GAMMA//NOFORN", "SI-GAMMA", `unknown control "SI-GAMMA"`},
	{"sub-compartment not allowed", "TOP SECRET//SI-ECRU ABC//NOFORN", "SI-ECRU ABC", `unknown control "SI-ECRU ABC"`},
	{"GAMMA sub length", "TOP SECRET//SI-G ABC//NOFORN", "SI-G ABC", `invalid sub-compartment "ABC"`},
	{"bare RSV", "SECRET//RSV//NOFORN", "RSV", "RSV requires a compartment"},
	{"bare SAR", "SECRET//SAR//NOFORN", "SAR", "SAR requires a program identifier"},
	{"empty SAR", "SECRET//SAR-//NOFORN", "SAR-", "SAR requires a program identifier"},
	{"malformed CUI category", "CUI//SP-EX1", "SP-EX1", "malformed CUI specified category"},
	{"bare SP", "CUI//SP", "SP", "malformed CUI specified category"},
	{"REL TO without list", "SECRET//REL TO", "REL TO", "REL TO needs a country list"},
	{"REL TO without comma space", "SECRET//REL TO USA,GBR", "REL TO USA,GBR", `countries are separated by ", "`},
	{"REL TO tetragraph first", "SECRET//REL TO FVEY", "REL TO FVEY", "REL TO must list USA first"},
	{"DISPLAY ONLY with USA", "SECRET//DISPLAY ONLY USA, GBR", "DISPLAY ONLY USA, GBR", `remove "USA"`},
	{"EYES ONLY", "SECRET//USA/GBR EYES ONLY", "USA/GBR EYES ONLY", "EYES ONLY is retired"},

	// Levels of controls.
	{"SAP unclassified", "UNCLASSIFIED//SAR-BP", "SAR-BP", `"SAR-BP" needs CONFIDENTIAL or above; the banner is UNCLASSIFIED`},
	{"SAP on CUI", "CUI//SAR-BP", "SAR-BP", "needs CONFIDENTIAL or above"},
	{"SI-G below TS", "SECRET//SI-G//NOFORN", "SI-G", `"SI-G" needs TOP SECRET; the banner is SECRET`},
	{"SCI unclassified", "UNCLASSIFIED//SI", "SI", "needs CONFIDENTIAL or above"},
	{"SP category unclassified", "UNCLASSIFIED//SP-EXPT", "SP-EXPT", "needs CUI or above"},
	{"RD unclassified", "UNCLASSIFIED//RD", "RD", "needs CONFIDENTIAL or above"},
	{"ORCON unclassified", "UNCLASSIFIED//ORCON", "ORCON", "needs CONFIDENTIAL or above"},

	// AEA.
	{"CNWDI alone", "SECRET//CNWDI//NOFORN", "CNWDI", "the banner form is RD-CNWDI"},
	{"CNWDI under FRD", "SECRET//FRD-CNWDI//NOFORN", "FRD-CNWDI", "sub-marking of RD"},
	{"SIGMA portion", "SECRET//RD-SG 14//NOFORN", "RD-SG 14", "portion marking"},
	{"SIGMA without number", "SECRET//SIGMA//NOFORN", "SIGMA", "SIGMA needs a number"},
	{"SIGMA zero", "SECRET//SIGMA 0//NOFORN", "SIGMA 0", `invalid SIGMA number "0"`},

	// Portion marks of controls.
	{"portion OC", "SECRET//OC/NF", "OC", `"OC" is a portion marking; the banner form is ORCON`},
	{"portion REL", "SECRET//REL", "REL", "portion marking"},
	{"portion SBU-NF", "UNCLASSIFIED//SBU-NF", "SBU-NF", "the banner form is SBU NOFORN"},

	// Exclusions.
	{"NOFORN with DISPLAY ONLY", "SECRET//NOFORN/DISPLAY ONLY GBR", "DISPLAY ONLY GBR", "NOFORN cannot be combined with DISPLAY ONLY"},
	{"SBU NOFORN with REL TO", "UNCLASSIFIED//REL TO USA, GBR//SBU NOFORN", "REL TO USA, GBR", "SBU NOFORN cannot be combined with REL TO"},
	{"ORCON with ORCON-USGOV", "SECRET//ORCON/ORCON-USGOV/NOFORN", "ORCON-USGOV", "ORCON cannot be combined with ORCON-USGOV"},
	{"EXDIS with NODIS", "SECRET//NOFORN//EXDIS/NODIS", "NODIS", "EXDIS cannot be combined with NODIS"},
	{"two REL TO", "SECRET//REL TO USA, GBR/REL TO USA, AUS", "REL TO USA, AUS", "a second REL TO"},
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := label.Parse(tc.banner)
			if err == nil {
				t.Fatalf("Parse(%q) = %v; want an error", tc.banner, l)
			}
			pe, ok := err.(*label.ParseError)
			if !ok {
				t.Fatalf("Parse(%q) error is %T; want *label.ParseError", tc.banner, err)
			}
			if pe.Banner != tc.banner {
				t.Errorf("Banner = %q; want %q", pe.Banner, tc.banner)
			}
			if pe.Part != tc.part {
				t.Errorf("Part = %q; want %q (error: %v)", pe.Part, tc.part, err)
			}
			if !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("Reason = %q; want it to contain %q", pe.Reason, tc.reason)
			}
			if want := "invalid marking " + strconv.Quote(tc.banner) + ": " + pe.Reason; err.Error() != want {
				t.Errorf("Error() = %q; want %q", err.Error(), want)
			}
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := label.Parse("SECRET//NF")
	want := `invalid marking "SECRET//NF": "NF" is a portion marking; the banner form is NOFORN`
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %s", err, want)
	}
	var pe *label.ParseError
	if !errors.As(err, &pe) || pe.Part != "NF" {
		t.Errorf("errors.As: %#v", pe)
	}
}

func TestMustParse(t *testing.T) {
	if got := label.MustParse("SECRET"); got.Level != label.Secret {
		t.Errorf("MustParse(SECRET) = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParse of an invalid banner did not panic")
		}
	}()
	label.MustParse("SECRET//NF")
}

func TestIsCountry(t *testing.T) {
	for _, c := range []string{"USA", "GBR", "KEN", "ZAF", "AUS", "NZL", "SSD", "ALA"} {
		if !label.IsCountry(c) {
			t.Errorf("IsCountry(%q) = false", c)
		}
	}
	for _, c := range []string{"", "XYZ", "FVEY", "NATO", "usa", "UK", "GB", "ANT", "YUG"} {
		if label.IsCountry(c) {
			t.Errorf("IsCountry(%q) = true", c)
		}
	}
}

func TestPredicates(t *testing.T) {
	ts := label.MustParse("TOP SECRET//SI-G/TK//NOFORN")
	aukus := label.MustParse("SECRET//REL TO USA, AUS, GBR")
	expt := label.MustParse("CUI//SP-EXPT//NOFORN")
	sigma := label.MustParse("SECRET//RD-SIGMA 20//NOFORN")
	u := label.MustParse("UNCLASSIFIED")
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"TS classified", ts.Classified(), true},
		{"CUI not classified", expt.Classified(), false},
		{"TS has SI-G", ts.HasControl("SI-G"), true},
		{"TS has SI", ts.HasControl("SI"), true},
		{"TS lacks HCS-P", ts.HasControl("HCS-P"), false},
		{"TS requires SCI", ts.RequiresSCI(), true},
		{"SIGMA is not SCI", sigma.RequiresSCI(), false},
		{"SIGMA control", sigma.HasControl("SIGMA 20"), true},
		{"SP-EXPT export controlled", expt.ExportControlled(), true},
		{"TS not export controlled", ts.ExportControlled(), false},
		{"NOFORN to USA", ts.ReleasableTo("USA"), true},
		{"NOFORN not to GBR", ts.ReleasableTo("GBR"), false},
		{"AUKUS to AUS", aukus.ReleasableTo("AUS"), true},
		{"AUKUS not to CAN", aukus.ReleasableTo("CAN"), false},
		{"unclassified to anyone", u.ReleasableTo("KEN"), true},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	log.Info("placed", "label", label.MustParse("TOP SECRET//HCS-P/SI-G/TK-BLFH//REL TO USA, GBR"))
	log.Info("placed", "label", label.MustParse("UNCLASSIFIED"))
	got := buf.String()
	want := "level=INFO msg=placed label.level=\"TOP SECRET\" label.controls=5 label.nations=2\n" +
		"level=INFO msg=placed label.level=UNCLASSIFIED label.controls=0 label.nations=any\n"
	if got != want {
		t.Errorf("logged\n%s\nwant\n%s", got, want)
	}
	for _, secret := range []string{"HCS", "SI-G", "TK-", "BLFH", "GBR", "USA"} {
		if strings.Contains(got, secret) {
			t.Errorf("log carries %q: %s", secret, got)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range validCases {
		if err := tc.want.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", tc.name, err)
		}
	}
	bad := []struct {
		name string
		l    label.Label
	}{
		{"zero label", label.Label{}},
		{"invalid level", label.Label{Level: label.TopSecret + 1, Nations: usOnly}},
		{"classified for anyone", label.Label{Level: label.Secret, AnyNation: true}},
		{"classified without nations", label.Label{Level: label.Secret}},
		{"nations without USA", label.Label{Level: label.Secret, Nations: []string{"GBR"}}},
		{"unsorted controls", label.Label{Level: label.TopSecret, Controls: []string{"TK", "SI"}, Nations: usOnly}},
		{"compartment without its system", label.Label{Level: label.TopSecret, Controls: []string{"SI-G"}, Nations: usOnly}},
		{"bare HCS", label.Label{Level: label.TopSecret, Controls: []string{"HCS"}, Nations: usOnly}},
		{"unknown control", label.Label{Level: label.Secret, Controls: []string{"XYZ"}, Nations: usOnly}},
		{"NOFORN in Dissem", label.Label{Level: label.Secret, Nations: usOnly, Dissem: []string{"NOFORN"}}},
		{"dissem out of order", label.Label{Level: label.Secret, Nations: usOnly, Dissem: []string{"ORCON", "RSEN"}}},
		{"SAP unclassified", label.Label{Level: label.Unclassified, AnyNation: true, Controls: []string{"SAR-BP"}}},
	}
	for _, tc := range bad {
		if err := tc.l.Validate(); err == nil {
			t.Errorf("%s: Validate(%#v) = nil; want an error", tc.name, tc.l)
		}
	}
}

// checkRoundTrip checks that l's banner parses back to l and is a fixed
// point of String, and that l keeps the invariants of Label.
func checkRoundTrip(t testing.TB, l label.Label) {
	t.Helper()
	s := l.String()
	back, err := label.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q) of String() of %#v: %v", s, l, err)
	}
	if !back.Equal(l) {
		t.Fatalf("Parse(String()) = %#v; want %#v (banner %q)", back, l, s)
	}
	if s2 := back.String(); s2 != s {
		t.Fatalf("String() not a fixed point: %q then %q", s, s2)
	}
	checkInvariants(t, l)
}

func checkInvariants(t testing.TB, l label.Label) {
	t.Helper()
	switch {
	case !slices.IsSorted(l.Controls) || len(slices.Compact(slices.Clone(l.Controls))) != len(l.Controls):
		t.Fatalf("controls not a sorted set: %q", l.Controls)
	case l.AnyNation && len(l.Nations) > 0:
		t.Fatalf("AnyNation with nations %q", l.Nations)
	case l.AnyNation && l.Classified():
		t.Fatalf("classified label %v for any nation", l)
	case !l.AnyNation && !slices.Contains(l.Nations, "USA"):
		t.Fatalf("nations %q lack USA", l.Nations)
	case !slices.IsSorted(l.Nations) || len(slices.Compact(slices.Clone(l.Nations))) != len(l.Nations):
		t.Fatalf("nations not a sorted set: %q", l.Nations)
	}
	for _, d := range l.Dissem {
		if d == "NOFORN" || strings.HasPrefix(d, "REL TO") {
			t.Fatalf("Dissem holds %q", d)
		}
	}
}

func TestParseLevelFoldsASCIIOnly(t *testing.T) {
	for _, s := range []string{"top secret", "TOP-SECRET", "Top_Secret"} {
		if l, err := label.ParseLevel(s); err != nil || l != label.TopSecret {
			t.Errorf("ParseLevel(%q) = %v, %v; want TOP SECRET", s, l, err)
		}
	}
	if l, err := label.ParseLevel("top \u017fecret"); err == nil {
		t.Errorf("ParseLevel with a long s = %v; want an error", l)
	}
}
