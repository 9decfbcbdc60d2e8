package marking_test

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// validCase is a marking Parse accepts in scheme, with the label wanted.
type validCase struct {
	scheme  marking.Scheme
	marking string
	want    string // canonical marking
	level   string
	axis    string
	rank    int
	caveats string // space-separated; "" for none
	nations string // "any", "NATO", "EU", "GBR+EU", or space-separated trigraphs
}

var validCases = []validCase{
	// US: router/label's grammar, wrapped.
	{marking.US, "TOP SECRET//SI/TK//NOFORN", "TOP SECRET//SI/TK//NOFORN", "TOP SECRET", "", 4, "SI TK", "USA"},
	{marking.US, "SECRET//REL TO USA, AUS, GBR", "SECRET//REL TO USA, AUS, GBR", "SECRET", "", 3, "", "AUS GBR USA"},
	{marking.US, "secret", "SECRET//NOFORN", "SECRET", "", 3, "", "USA"},
	{marking.US, "UNCLASSIFIED", "UNCLASSIFIED", "UNCLASSIFIED", "", 0, "", "any"},
	{marking.US, "CUI//SP-EXPT//NOFORN", "CUI//SP-EXPT//NOFORN", "CUI", "", 1, "SP-EXPT", "USA"},
	{marking.US, "CONFIDENTIAL", "CONFIDENTIAL//NOFORN", "CONFIDENTIAL", "", 2, "", "USA"},

	// GBR: the UK prefix is optional and always written.
	{marking.GBR, "OFFICIAL", "UK OFFICIAL", "OFFICIAL", "", 0, "", "any"},
	{marking.GBR, "UK OFFICIAL", "UK OFFICIAL", "OFFICIAL", "", 0, "", "any"},
	{marking.GBR, "OFFICIAL-SENSITIVE", "UK OFFICIAL-SENSITIVE", "OFFICIAL", "", 0, "SENSITIVE", "any"},
	{marking.GBR, "uk official-sensitive", "UK OFFICIAL-SENSITIVE", "OFFICIAL", "", 0, "SENSITIVE", "any"},
	{marking.GBR, "SECRET", "UK SECRET", "SECRET", "", 1, "", "any"},
	{marking.GBR, "TOP SECRET", "UK TOP SECRET", "TOP SECRET", "", 2, "", "any"},
	{marking.GBR, "SECRET UK EYES ONLY", "UK SECRET UK EYES ONLY", "SECRET", "", 1, "", "GBR"},
	{marking.GBR, "UK TOP SECRET UK EYES ONLY", "UK TOP SECRET UK EYES ONLY", "TOP SECRET", "", 2, "", "GBR"},
	{marking.GBR, "SECRET UK/US EYES ONLY", "UK SECRET UK/US EYES ONLY", "SECRET", "", 1, "", "GBR USA"},
	{marking.GBR, "TOP SECRET FIVE EYES ONLY", "UK TOP SECRET FIVE EYES ONLY", "TOP SECRET", "", 2, "", "AUS CAN GBR NZL USA"},
	{marking.GBR, "OFFICIAL REL EU", "UK OFFICIAL REL EU", "OFFICIAL", "", 0, "", "GBR+EU"},
	{marking.GBR, "OFFICIAL-SENSITIVE REL EU", "UK OFFICIAL-SENSITIVE REL EU", "OFFICIAL", "", 0, "SENSITIVE", "GBR+EU"},
	{marking.GBR, " UK SECRET REL EU ", "UK SECRET REL EU", "SECRET", "", 1, "", "GBR+EU"},

	// AUS: EPMS, and bare levels in text form when the scheme is given.
	{marking.AUS, "[SEC=UNOFFICIAL]", "[SEC=UNOFFICIAL]", "UNOFFICIAL", "", 0, "", "any"},
	{marking.AUS, "[SEC=OFFICIAL]", "[SEC=OFFICIAL]", "OFFICIAL", "", 1, "", "any"},
	{marking.AUS, "[SEC=OFFICIAL:Sensitive]", "[SEC=OFFICIAL:Sensitive]", "OFFICIAL:Sensitive", "", 2, "", "any"},
	{marking.AUS, "[SEC=OFFICIAL: Sensitive]", "[SEC=OFFICIAL:Sensitive]", "OFFICIAL:Sensitive", "", 2, "", "any"},
	{marking.AUS, "[SEC=OFFICIAL:Sensitive, CAVEAT=SH:NATIONAL-CABINET]", "[SEC=OFFICIAL:Sensitive, CAVEAT=SH:NATIONAL-CABINET]", "OFFICIAL:Sensitive", "", 2, "SH:NATIONAL-CABINET", "any"},
	{marking.AUS, "[SEC=PROTECTED]", "[SEC=PROTECTED]", "PROTECTED", "", 3, "", "any"},
	{marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:REL AUS/CAN/GBR]", "[SEC=PROTECTED, CAVEAT=RI:REL AUS/CAN/GBR]", "PROTECTED", "", 3, "", "AUS CAN GBR"},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", "SECRET", "", 4, "", "AUS GBR USA"},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL USA/GBR]", "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", "SECRET", "", 4, "", "AUS GBR USA"},
	{marking.AUS, "[SEC=SECRET, CAVEAT=SH:ACCOUNTABLE-MATERIAL, CAVEAT=RI:AUSTEO]", "[SEC=SECRET, CAVEAT=SH:ACCOUNTABLE-MATERIAL, CAVEAT=RI:AUSTEO]", "SECRET", "", 4, "SH:ACCOUNTABLE-MATERIAL", "AUS"},
	{marking.AUS, "[SEC=TOP-SECRET,CAVEAT=C:lobster, CAVEAT=FG:USA caveat, CAVEAT=SH:CABINET, CAVEAT=SH:EXCLUSIVE-FOR a person, CAVEAT=RI:AGAO]",
		"[SEC=TOP-SECRET, CAVEAT=C:LOBSTER, CAVEAT=FG:USA CAVEAT, CAVEAT=SH:CABINET, CAVEAT=SH:EXCLUSIVE-FOR A PERSON, CAVEAT=RI:AGAO]",
		"TOP-SECRET", "", 5, "C:LOBSTER FG:USA_CAVEAT RI:AGAO SH:CABINET SH:EXCLUSIVE-FOR_A_PERSON", "AUS"},
	{marking.AUS, "PROTECTED", "[SEC=PROTECTED]", "PROTECTED", "", 3, "", "any"},
	{marking.AUS, "top secret", "[SEC=TOP-SECRET]", "TOP-SECRET", "", 5, "", "any"},
	{marking.AUS, "OFFICIAL: Sensitive", "[SEC=OFFICIAL:Sensitive]", "OFFICIAL:Sensitive", "", 2, "", "any"},

	// NATO: its own form and CAPCO's.
	{marking.NATO, "NATO UNCLASSIFIED", "NATO UNCLASSIFIED", "NATO UNCLASSIFIED", "", 0, "", "NATO"},
	{marking.NATO, "//NATO RESTRICTED", "NATO RESTRICTED", "NATO RESTRICTED", "", 1, "", "NATO"},
	{marking.NATO, "NATO CONFIDENTIAL ATOMAL", "NATO CONFIDENTIAL ATOMAL", "NATO CONFIDENTIAL", "", 2, "ATOMAL", "NATO"},
	{marking.NATO, "//NATO SECRET", "NATO SECRET", "NATO SECRET", "", 3, "", "NATO"},
	{marking.NATO, "//NATO SECRET//ATOMAL", "NATO SECRET ATOMAL", "NATO SECRET", "", 3, "ATOMAL", "NATO"},
	{marking.NATO, "//COSMIC TOP SECRET", "COSMIC TOP SECRET", "COSMIC TOP SECRET", "", 4, "", "NATO"},
	{marking.NATO, "cosmic top secret atomal", "COSMIC TOP SECRET ATOMAL", "COSMIC TOP SECRET", "", 4, "ATOMAL", "NATO"},

	// CAN: two axes.
	{marking.CAN, "PROTECTED A", "PROTECTED A", "PROTECTED A", "PROTECTED", 0, "", "any"},
	{marking.CAN, "protected b", "PROTECTED B", "PROTECTED B", "PROTECTED", 1, "", "any"},
	{marking.CAN, "PROTECTED C", "PROTECTED C", "PROTECTED C", "PROTECTED", 2, "", "any"},
	{marking.CAN, "CONFIDENTIAL", "CONFIDENTIAL", "CONFIDENTIAL", "CLASSIFIED", 0, "", "any"},
	{marking.CAN, "SECRET", "SECRET", "SECRET", "CLASSIFIED", 1, "", "any"},
	{marking.CAN, "TOP SECRET", "TOP SECRET", "TOP SECRET", "CLASSIFIED", 2, "", "any"},

	// NZL: two axes.
	{marking.NZL, "IN-CONFIDENCE", "IN-CONFIDENCE", "IN-CONFIDENCE", "POLICY AND PRIVACY", 0, "", "any"},
	{marking.NZL, "SENSITIVE", "SENSITIVE", "SENSITIVE", "POLICY AND PRIVACY", 1, "", "any"},
	{marking.NZL, "RESTRICTED", "RESTRICTED", "RESTRICTED", "NATIONAL SECURITY", 0, "", "any"},
	{marking.NZL, "CONFIDENTIAL", "CONFIDENTIAL", "CONFIDENTIAL", "NATIONAL SECURITY", 1, "", "any"},
	{marking.NZL, "SECRET", "SECRET", "SECRET", "NATIONAL SECURITY", 2, "", "any"},
	{marking.NZL, "TOP SECRET", "TOP SECRET", "TOP SECRET", "NATIONAL SECURITY", 3, "", "any"},

	// EU: both halves, or either.
	{marking.EU, "RESTREINT UE/EU RESTRICTED", "RESTREINT UE/EU RESTRICTED", "RESTREINT UE/EU RESTRICTED", "", 0, "", "EU"},
	{marking.EU, "RESTREINT UE", "RESTREINT UE/EU RESTRICTED", "RESTREINT UE/EU RESTRICTED", "", 0, "", "EU"},
	{marking.EU, "EU CONFIDENTIAL", "CONFIDENTIEL UE/EU CONFIDENTIAL", "CONFIDENTIEL UE/EU CONFIDENTIAL", "", 1, "", "EU"},
	{marking.EU, "SECRET UE/EU SECRET", "SECRET UE/EU SECRET", "SECRET UE/EU SECRET", "", 2, "", "EU"},
	{marking.EU, "TRÈS SECRET UE/EU TOP SECRET", "TRÈS SECRET UE/EU TOP SECRET", "TRÈS SECRET UE/EU TOP SECRET", "", 3, "", "EU"},
	{marking.EU, "TRES SECRET UE/EU TOP SECRET", "TRÈS SECRET UE/EU TOP SECRET", "TRÈS SECRET UE/EU TOP SECRET", "", 3, "", "EU"},
	{marking.EU, "très secret ue", "TRÈS SECRET UE/EU TOP SECRET", "TRÈS SECRET UE/EU TOP SECRET", "", 3, "", "EU"},

	// KEN: the illustrative default levels.
	{marking.KEN, "UNCLASSIFIED", "UNCLASSIFIED", "UNCLASSIFIED", "", 0, "", "any"},
	{marking.KEN, "RESTRICTED", "RESTRICTED", "RESTRICTED", "", 1, "", "any"},
	{marking.KEN, "confidential", "CONFIDENTIAL", "CONFIDENTIAL", "", 2, "", "any"},
	{marking.KEN, "SECRET", "SECRET", "SECRET", "", 3, "", "any"},
	{marking.KEN, "TOP SECRET", "TOP SECRET", "TOP SECRET", "", 4, "", "any"},
}

// invalidCase is a marking Parse refuses, with the exact message.
type invalidCase struct {
	scheme  marking.Scheme
	marking string
	err     string
}

var invalidCases = []invalidCase{
	{"XX", "SECRET", `invalid marking "SECRET": unknown scheme "XX" (schemes: US, GBR, AUS, NATO, CAN, NZL, EU, KEN)`},
	{marking.GBR, "  ", `invalid GBR marking "  ": empty marking`},

	// US: router/label's reasons.
	{marking.US, "SECRET//NOFORN/REL TO USA, CAN", `invalid US marking "SECRET//NOFORN/REL TO USA, CAN": NOFORN cannot be combined with REL TO`},
	{marking.US, "//NATO SECRET", `invalid US marking "//NATO SECRET": non-US markings are not supported ("//NATO SECRET")`},
	{marking.US, "OFFICIAL", `invalid US marking "OFFICIAL": unknown classification level "OFFICIAL"`},

	// GBR (DOMAIN.md §6.1).
	{marking.GBR, "OFFICIAL UK EYES ONLY", `invalid GBR marking "OFFICIAL UK EYES ONLY": UK EYES ONLY requires SECRET or above`},
	{marking.GBR, "UK OFFICIAL-SENSITIVE UK EYES ONLY", `invalid GBR marking "UK OFFICIAL-SENSITIVE UK EYES ONLY": UK EYES ONLY requires SECRET or above`},
	{marking.GBR, "OFFICIAL UK/US EYES ONLY", `invalid GBR marking "OFFICIAL UK/US EYES ONLY": UK/US EYES ONLY requires SECRET or above`},
	{marking.GBR, "OFFICIAL-SENSITIVE FIVE EYES ONLY", `invalid GBR marking "OFFICIAL-SENSITIVE FIVE EYES ONLY": FIVE EYES ONLY requires SECRET or above`},
	{marking.GBR, "SECRET-SENSITIVE", `invalid GBR marking "SECRET-SENSITIVE": -SENSITIVE marks OFFICIAL only: it is not a tier`},
	{marking.GBR, "OFFICIAL SENSITIVE", `invalid GBR marking "OFFICIAL SENSITIVE": "OFFICIAL SENSITIVE" is written "OFFICIAL-SENSITIVE"`},
	{marking.GBR, "CONFIDENTIAL", `invalid GBR marking "CONFIDENTIAL": "CONFIDENTIAL" is not a GBR level since 2014 (levels: OFFICIAL, SECRET, TOP SECRET)`},
	{marking.GBR, "UK RESTRICTED", `invalid GBR marking "UK RESTRICTED": "RESTRICTED" is not a GBR level since 2014 (levels: OFFICIAL, SECRET, TOP SECRET)`},
	{marking.GBR, "SECRETS", `invalid GBR marking "SECRETS": unknown GBR level "SECRETS" (levels: OFFICIAL, OFFICIAL-SENSITIVE, SECRET, TOP SECRET)`},
	{marking.GBR, "UK UK SECRET", `invalid GBR marking "UK UK SECRET": unknown GBR level "UK" (levels: OFFICIAL, OFFICIAL-SENSITIVE, SECRET, TOP SECRET)`},
	{marking.GBR, "SECRET UK EYES ONLY REL EU", `invalid GBR marking "SECRET UK EYES ONLY REL EU": a second caveat "REL EU": a GBR marking carries one caveat at most`},
	{marking.GBR, "SECRET NOFORN", `invalid GBR marking "SECRET NOFORN": unknown GBR caveat "NOFORN" (caveats: UK EYES ONLY, UK/US EYES ONLY, FIVE EYES ONLY, REL EU)`},
	{marking.GBR, "SECRET  UK EYES ONLY", `invalid GBR marking "SECRET  UK EYES ONLY": unexpected double space in "SECRET  UK EYES ONLY"`},
	{marking.GBR, "SECRET//UK EYES ONLY", `invalid GBR marking "SECRET//UK EYES ONLY": unknown GBR level "SECRET//UK" (levels: OFFICIAL, OFFICIAL-SENSITIVE, SECRET, TOP SECRET)`},

	// AUS (DOMAIN.md §6.1).
	{marking.AUS, "[SEC=OFFICIAL:Sensitive, CAVEAT=RI:AUSTEO]", `invalid AUS marking "[SEC=OFFICIAL:Sensitive, CAVEAT=RI:AUSTEO]": CAVEAT=RI:AUSTEO requires PROTECTED or above`},
	{marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:REL AUS, GBR]", `invalid AUS marking "[SEC=PROTECTED, CAVEAT=RI:REL AUS, GBR]": EPMS REL lists are separated by "/"`},
	{marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:REL AUS,GBR]", `invalid AUS marking "[SEC=PROTECTED, CAVEAT=RI:REL AUS,GBR]": EPMS REL lists are separated by "/"`},
	{marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:REL AUS GBR]", `invalid AUS marking "[SEC=PROTECTED, CAVEAT=RI:REL AUS GBR]": EPMS REL lists are separated by "/"`},
	{marking.AUS, "[SEC=OFFICIAL, CAVEAT=SH:NATIONAL-CABINET]", `invalid AUS marking "[SEC=OFFICIAL, CAVEAT=SH:NATIONAL-CABINET]": CAVEAT=SH:NATIONAL-CABINET requires OFFICIAL:Sensitive or above`},
	{marking.AUS, "[SEC=OFFICIAL:Sensitive, CAVEAT=SH:CABINET]", `invalid AUS marking "[SEC=OFFICIAL:Sensitive, CAVEAT=SH:CABINET]": CAVEAT=SH:CABINET requires PROTECTED or above`},
	{marking.AUS, "[SEC=UNOFFICIAL, CAVEAT=C:LOBSTER]", `invalid AUS marking "[SEC=UNOFFICIAL, CAVEAT=C:LOBSTER]": CAVEAT=C:LOBSTER requires PROTECTED or above`},
	{marking.AUS, "[SEC=TOP SECRET]", `invalid AUS marking "[SEC=TOP SECRET]": EPMS writes "TOP-SECRET"`},
	{marking.AUS, "[SEC=CONFIDENTIAL]", `invalid AUS marking "[SEC=CONFIDENTIAL]": unknown AUS level "CONFIDENTIAL" (levels: UNOFFICIAL, OFFICIAL, OFFICIAL:Sensitive, PROTECTED, SECRET, TOP-SECRET)`},
	{marking.AUS, "[SEC=PROTECTED", `invalid AUS marking "[SEC=PROTECTED": an EPMS marking ends with "]"`},
	{marking.AUS, "[CAVEAT=RI:AUSTEO, SEC=SECRET]", `invalid AUS marking "[CAVEAT=RI:AUSTEO, SEC=SECRET]": the first EPMS field is SEC=, not "CAVEAT=RI:AUSTEO"`},
	{marking.AUS, "[SEC=SECRET, SEC=PROTECTED]", `invalid AUS marking "[SEC=SECRET, SEC=PROTECTED]": a second SEC= field "SEC=PROTECTED"`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:AUSTEO, CAVEAT=SH:CABINET]", `invalid AUS marking "[SEC=SECRET, CAVEAT=RI:AUSTEO, CAVEAT=SH:CABINET]": EPMS caveats come in the order C, FG, SH, RI: "CAVEAT=SH:CABINET" is out of order`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:AUSTEO, CAVEAT=RI:AGAO]", `invalid AUS marking "[SEC=SECRET, CAVEAT=RI:AUSTEO, CAVEAT=RI:AGAO]": a second RI caveat "CAVEAT=RI:AGAO": an EPMS marking carries one at most`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL AUS/XYZ]", `invalid AUS marking "[SEC=SECRET, CAVEAT=RI:REL AUS/XYZ]": unknown country code "XYZ" in REL AUS/XYZ`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL GBR/GBR]", `invalid AUS marking "[SEC=SECRET, CAVEAT=RI:REL GBR/GBR]": duplicate "GBR" in REL GBR/GBR`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL FVEY]", `invalid AUS marking "[SEC=SECRET, CAVEAT=RI:REL FVEY]": unknown country code "FVEY" in REL FVEY`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=RI:NOFORN]", `invalid AUS marking "[SEC=SECRET, CAVEAT=RI:NOFORN]": unknown EPMS releasability caveat "NOFORN" (RI: AGAO, AUSTEO, REL list)`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=SH:ORCON]", `invalid AUS marking "[SEC=SECRET, CAVEAT=SH:ORCON]": unknown EPMS special-handling caveat "ORCON" (SH: CABINET, NATIONAL-CABINET, ACCOUNTABLE-MATERIAL, EXCLUSIVE-FOR name)`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=X:Y]", `invalid AUS marking "[SEC=SECRET, CAVEAT=X:Y]": unknown EPMS caveat kind in "X:Y" (kinds: C, FG, SH, RI)`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=C:]", `invalid AUS marking "[SEC=SECRET, CAVEAT=C:]": empty caveat "CAVEAT=C:"`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=C:A, CAVEAT=C:A]", `invalid AUS marking "[SEC=SECRET, CAVEAT=C:A, CAVEAT=C:A]": duplicate "CAVEAT=C:A"`},
	{marking.AUS, "[SEC=SECRET, CAVEAT=C:A_B]", `invalid AUS marking "[SEC=SECRET, CAVEAT=C:A_B]": invalid character "_" in "A_B"`},
	{marking.AUS, "[SEC=SECRET, EXPIRES=2030-01-01]", `invalid AUS marking "[SEC=SECRET, EXPIRES=2030-01-01]": EPMS field EXPIRES= is not part of a label: give the SEC= and CAVEAT= fields only`},
	{marking.AUS, "[SEC=SECRET, ]", `invalid AUS marking "[SEC=SECRET, ]": empty EPMS field in "SEC=SECRET, "`},
	{marking.AUS, "[SEC=SECRET, AUSTEO]", `invalid AUS marking "[SEC=SECRET, AUSTEO]": EPMS field "AUSTEO" is not KEY=VALUE`},
	{marking.AUS, "SECRET AUSTEO", `invalid AUS marking "SECRET AUSTEO": unknown AUS level "SECRET AUSTEO" (levels: UNOFFICIAL, OFFICIAL, OFFICIAL:Sensitive, PROTECTED, SECRET, TOP-SECRET)`},
	{marking.AUS, "SECRET, CAVEAT=RI:AUSTEO", `invalid AUS marking "SECRET, CAVEAT=RI:AUSTEO": AUS markings with caveats are written in EPMS form "[SEC=..., CAVEAT=...]"`},
	{marking.AUS, "SEC=SECRET, CAVEAT=RI:AUSTEO", `invalid AUS marking "SEC=SECRET, CAVEAT=RI:AUSTEO": the X-Protective-Marking header form is not read: give the subject form "[SEC=...]"`},

	// NATO.
	{marking.NATO, "NATO RESTRICTED ATOMAL", `invalid NATO marking "NATO RESTRICTED ATOMAL": ATOMAL requires NATO CONFIDENTIAL or above`},
	{marking.NATO, "//NATO SECRET//NOFORN", `invalid NATO marking "//NATO SECRET//NOFORN": NOFORN is barred on NATO information`},
	{marking.NATO, "//NATO SECRET//REL TO USA, GBR", `invalid NATO marking "//NATO SECRET//REL TO USA, GBR": unknown NATO marking "REL TO USA, GBR" (NATO markings carry ATOMAL only)`},
	{marking.NATO, "NATO TOP SECRET", `invalid NATO marking "NATO TOP SECRET": NATO's top level is COSMIC TOP SECRET`},
	{marking.NATO, "NS", `invalid NATO marking "NS": "NS" is a portion marking; the banner form is NATO SECRET`},
	{marking.NATO, "SECRET", `invalid NATO marking "SECRET": unknown NATO level "SECRET" (levels: NATO UNCLASSIFIED, NATO RESTRICTED, NATO CONFIDENTIAL, NATO SECRET, COSMIC TOP SECRET)`},
	{marking.NATO, "NATO SECRET ATOMAL//ATOMAL", `invalid NATO marking "NATO SECRET ATOMAL//ATOMAL": duplicate "ATOMAL"`},
	{marking.NATO, "//NATO SECRET//", `invalid NATO marking "//NATO SECRET//": empty category between "//" separators`},

	// CAN, NZL.
	{marking.CAN, "PROTECTED", `invalid CAN marking "PROTECTED": "PROTECTED" needs its tier: PROTECTED A, PROTECTED B or PROTECTED C`},
	{marking.CAN, "PROTECTED D", `invalid CAN marking "PROTECTED D": unknown CAN level "PROTECTED D" (levels: PROTECTED A < PROTECTED B < PROTECTED C; CONFIDENTIAL < SECRET < TOP SECRET)`},
	{marking.CAN, "RESTRICTED", `invalid CAN marking "RESTRICTED": unknown CAN level "RESTRICTED" (levels: PROTECTED A < PROTECTED B < PROTECTED C; CONFIDENTIAL < SECRET < TOP SECRET)`},
	{marking.NZL, "IN CONFIDENCE", `invalid NZL marking "IN CONFIDENCE": "IN CONFIDENCE" is written "IN-CONFIDENCE"`},
	{marking.NZL, "OFFICIAL", `invalid NZL marking "OFFICIAL": unknown NZL level "OFFICIAL" (levels: IN-CONFIDENCE < SENSITIVE; RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET)`},

	// EU.
	{marking.EU, "SECRET UE/EU TOP SECRET", `invalid EU marking "SECRET UE/EU TOP SECRET": "SECRET UE" and "EU TOP SECRET" name different levels`},
	{marking.EU, "EU SECRET/SECRET UE", `invalid EU marking "EU SECRET/SECRET UE": unknown EU level "EU SECRET" (levels: RESTREINT UE/EU RESTRICTED, CONFIDENTIEL UE/EU CONFIDENTIAL, SECRET UE/EU SECRET, TRÈS SECRET UE/EU TOP SECRET)`},
	{marking.EU, "EU UNCLASSIFIED", `invalid EU marking "EU UNCLASSIFIED": unknown EU level "EU UNCLASSIFIED" (levels: RESTREINT UE/EU RESTRICTED, CONFIDENTIEL UE/EU CONFIDENTIAL, SECRET UE/EU SECRET, TRÈS SECRET UE/EU TOP SECRET)`},
	{marking.EU, "SECRET", `invalid EU marking "SECRET": unknown EU level "SECRET" (levels: RESTREINT UE/EU RESTRICTED, CONFIDENTIEL UE/EU CONFIDENTIAL, SECRET UE/EU SECRET, TRÈS SECRET UE/EU TOP SECRET)`},

	// KEN.
	{marking.KEN, "OFFICIAL", `invalid KEN marking "OFFICIAL": unknown KEN level "OFFICIAL" (levels: UNCLASSIFIED < RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET)`},
	{marking.KEN, "SECRET UK EYES ONLY", `invalid KEN marking "SECRET UK EYES ONLY": unknown KEN level "SECRET UK EYES ONLY" (levels: UNCLASSIFIED < RESTRICTED < CONFIDENTIAL < SECRET < TOP SECRET)`},

	// No scheme: a bare level word is never guessed (DOMAIN.md §6).
	{"", "CONFIDENTIAL", `invalid marking "CONFIDENTIAL": "CONFIDENTIAL" is a level in schemes US, CAN, NZL, KEN: say which scheme`},
	{"", "secret", `invalid marking "secret": "SECRET" is a level in schemes US, GBR, AUS, CAN, NZL, KEN: say which scheme`},
	{"", "TOP SECRET", `invalid marking "TOP SECRET": "TOP SECRET" is a level in schemes US, GBR, AUS, CAN, NZL, KEN: say which scheme`},
	{"", "RESTRICTED", `invalid marking "RESTRICTED": "RESTRICTED" is a level in schemes NZL, KEN: say which scheme`},
	{"", "OFFICIAL", `invalid marking "OFFICIAL": "OFFICIAL" is a level in schemes GBR, AUS: say which scheme`},
	{"", "PROTECTED", `invalid marking "PROTECTED": "PROTECTED" is a level in schemes AUS, CAN: say which scheme`},
	{"", "UNCLASSIFIED", `invalid marking "UNCLASSIFIED": "UNCLASSIFIED" is a level in schemes US, KEN: say which scheme`},
	{"", "PROTECTED B", `invalid marking "PROTECTED B": "PROTECTED B" is a level in scheme CAN: say which scheme`},
	{"", "OFFICIAL-SENSITIVE", `invalid marking "OFFICIAL-SENSITIVE": "OFFICIAL-SENSITIVE" is a level in scheme GBR: say which scheme`},
	{"", "SENSITIVE", `invalid marking "SENSITIVE": "SENSITIVE" is a level in scheme NZL: say which scheme`},
	{"", "", `invalid marking "": empty marking`},
	{"", "BANANA", `invalid marking "BANANA": no scheme reads "BANANA": say which scheme`},
	// ... and a marking whose syntax names a scheme is read in it alone.
	{"", "OFFICIAL UK EYES ONLY", `invalid marking "OFFICIAL UK EYES ONLY": no scheme reads "OFFICIAL UK EYES ONLY": say which scheme`},
	{"", "UK OFFICIAL UK EYES ONLY", `invalid GBR marking "UK OFFICIAL UK EYES ONLY": UK EYES ONLY requires SECRET or above`},
	{"", "[SEC=PROTECTED, CAVEAT=RI:REL AUS, GBR]", `invalid AUS marking "[SEC=PROTECTED, CAVEAT=RI:REL AUS, GBR]": EPMS REL lists are separated by "/"`},
	{"", "//NATO SECRET//NOFORN", `invalid NATO marking "//NATO SECRET//NOFORN": NOFORN is barred on NATO information`},
	{"", "SECRET UE/EU TOP SECRET", `invalid EU marking "SECRET UE/EU TOP SECRET": "SECRET UE" and "EU TOP SECRET" name different levels`},
	{"", "VER=2024.1, NS=gov.au, SEC=PROTECTED", `invalid AUS marking "VER=2024.1, NS=gov.au, SEC=PROTECTED": the X-Protective-Marking header form is not read: give the subject form "[SEC=...]"`},
	{"", "SECRET//NF", `invalid US marking "SECRET//NF": "NF" is a portion marking; the banner form is NOFORN`},
	{"", "//GBR SECRET", `invalid US marking "//GBR SECRET": non-US markings are not supported ("//GBR SECRET")`},
}

// nationSet decodes validCase.nations.
func nationSet(s string) (any bool, nations []string) {
	switch s {
	case "any":
		return true, nil
	case "NATO":
		return false, marking.NATOMembers()
	case "EU":
		return false, marking.EUMembers()
	case "GBR+EU":
		n := append(marking.EUMembers(), "GBR")
		slices.Sort(n)
		return false, n
	}
	return false, strings.Fields(s)
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(string(tc.scheme)+"/"+tc.marking, func(t *testing.T) {
			l, err := marking.Parse(tc.scheme, tc.marking)
			if err != nil {
				t.Fatalf("Parse(%s, %q): %v", tc.scheme, tc.marking, err)
			}
			if got := l.String(); got != tc.want {
				t.Errorf("String() = %q; want %q", got, tc.want)
			}
			want := marking.Level{Name: tc.level, Axis: tc.axis, Rank: tc.rank}
			if l.Scheme != tc.scheme || l.Level != want {
				t.Errorf("scheme, level = %s, %+v; want %s, %+v", l.Scheme, l.Level, tc.scheme, want)
			}
			var caveats []string
			for _, c := range strings.Fields(tc.caveats) {
				caveats = append(caveats, strings.ReplaceAll(c, "_", " "))
			}
			if !slices.Equal(l.Caveats, caveats) {
				t.Errorf("Caveats = %q; want %q", l.Caveats, caveats)
			}
			anyN, nations := nationSet(tc.nations)
			if l.AnyNation != anyN || !slices.Equal(l.Nations, nations) {
				t.Errorf("AnyNation, Nations = %v, %q; want %v, %q", l.AnyNation, l.Nations, anyN, nations)
			}
			if (l.US != nil) != (tc.scheme == marking.US) {
				t.Errorf("US = %v for scheme %s", l.US, tc.scheme)
			}
			checkRoundTrip(t, marking.Parser{}, l)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range invalidCases {
		t.Run(string(tc.scheme)+"/"+tc.marking, func(t *testing.T) {
			l, err := marking.Parse(tc.scheme, tc.marking)
			if err == nil {
				t.Fatalf("Parse(%s, %q) = %q; want error %s", tc.scheme, tc.marking, l, tc.err)
			}
			if err.Error() != tc.err {
				t.Errorf("Parse(%s, %q) error:\n got  %s\n want %s", tc.scheme, tc.marking, err, tc.err)
			}
			pe, ok := marking.AsParseError(err)
			switch {
			case !ok:
				t.Fatalf("error is %T, not *ParseError", err)
			case pe.Marking != tc.marking || pe.Reason == "":
				t.Errorf("incomplete error %#v", pe)
			case pe.Part != "" && !strings.Contains(upper(pe.Reason), upper(pe.Part)) && !strings.Contains(upper(pe.Marking), upper(pe.Part)):
				t.Errorf("Part %q is neither in the reason nor in the marking: %#v", pe.Part, pe)
			}
		})
	}
}

// TestReasonsExact pins the reasons the issue quotes (DOMAIN.md §6.1).
func TestReasonsExact(t *testing.T) {
	for _, tc := range []struct {
		scheme        marking.Scheme
		marking, part string
		reason        string
	}{
		{marking.GBR, "OFFICIAL UK EYES ONLY", "UK EYES ONLY", "UK EYES ONLY requires SECRET or above"},
		{marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:REL AUS, GBR]", "GBR", `EPMS REL lists are separated by "/"`},
		{marking.AUS, "[SEC=OFFICIAL:Sensitive, CAVEAT=RI:AUSTEO]", "CAVEAT=RI:AUSTEO", "CAVEAT=RI:AUSTEO requires PROTECTED or above"},
	} {
		_, err := marking.Parse(tc.scheme, tc.marking)
		pe, ok := marking.AsParseError(err)
		if !ok || pe.Reason != tc.reason || pe.Part != tc.part || pe.Scheme != tc.scheme {
			t.Errorf("Parse(%s, %q) = %#v; want part %q, reason %q", tc.scheme, tc.marking, pe, tc.part, tc.reason)
		}
	}
}

func upper(s string) string { return strings.ToUpper(s) }

// TestParseNoScheme checks the markings read with no scheme: those whose
// syntax names it, and those only one scheme reads that are more than a
// level word.
func TestParseNoScheme(t *testing.T) {
	for _, tc := range []struct {
		marking string
		scheme  marking.Scheme
		want    string
	}{
		{"[SEC=PROTECTED]", marking.AUS, "[SEC=PROTECTED]"},
		{"[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]"},
		{"UK SECRET", marking.GBR, "UK SECRET"},
		{"uk official-sensitive", marking.GBR, "UK OFFICIAL-SENSITIVE"},
		{"SECRET UK EYES ONLY", marking.GBR, "UK SECRET UK EYES ONLY"},
		{"TOP SECRET FIVE EYES ONLY", marking.GBR, "UK TOP SECRET FIVE EYES ONLY"},
		{"OFFICIAL REL EU", marking.GBR, "UK OFFICIAL REL EU"},
		{"NATO RESTRICTED", marking.NATO, "NATO RESTRICTED"},
		{"//NATO RESTRICTED", marking.NATO, "NATO RESTRICTED"},
		{"//COSMIC TOP SECRET//ATOMAL", marking.NATO, "COSMIC TOP SECRET ATOMAL"},
		{"COSMIC TOP SECRET", marking.NATO, "COSMIC TOP SECRET"},
		{"SECRET UE/EU SECRET", marking.EU, "SECRET UE/EU SECRET"},
		{"RESTREINT UE", marking.EU, "RESTREINT UE/EU RESTRICTED"},
		{"EU TOP SECRET", marking.EU, "TRÈS SECRET UE/EU TOP SECRET"},
		{"SECRET//NOFORN", marking.US, "SECRET//NOFORN"},
		{"TOP SECRET//SI/TK//NOFORN", marking.US, "TOP SECRET//SI/TK//NOFORN"},
		{"UNCLASSIFIED//FOUO", marking.US, "UNCLASSIFIED//FOUO"},
	} {
		l, err := marking.Parse("", tc.marking)
		if err != nil {
			t.Errorf("Parse(\"\", %q): %v", tc.marking, err)
			continue
		}
		if l.Scheme != tc.scheme || l.String() != tc.want {
			t.Errorf("Parse(\"\", %q) = %s %q; want %s %q", tc.marking, l.Scheme, l, tc.scheme, tc.want)
		}
	}
}

// TestCanonicalNamesScheme checks that the canonical markings of GBR,
// AUS, NATO and EU labels read back with no scheme given.
func TestCanonicalNamesScheme(t *testing.T) {
	for _, tc := range validCases {
		switch tc.scheme {
		case marking.GBR, marking.AUS, marking.NATO, marking.EU:
		default:
			continue
		}
		want := marking.MustParse(tc.scheme, tc.marking)
		got, err := marking.Parse("", want.String())
		if err != nil || !got.Equal(want) {
			t.Errorf("Parse(\"\", %q) = %#v, %v; want %#v", want.String(), got, err, want)
		}
	}
}

func TestParseDefault(t *testing.T) {
	for _, tc := range []struct {
		marking  string
		def      marking.Scheme
		scheme   marking.Scheme
		want     string
		wantErr  string
		describe string
	}{
		{marking: "CONFIDENTIAL", def: marking.KEN, scheme: marking.KEN, want: "CONFIDENTIAL", describe: "a Kenyan tenant's CONFIDENTIAL is Kenyan, never US"},
		{marking: "CONFIDENTIAL", def: marking.US, scheme: marking.US, want: "CONFIDENTIAL//NOFORN"},
		{marking: "SECRET", def: marking.GBR, scheme: marking.GBR, want: "UK SECRET"},
		{marking: "OFFICIAL", def: marking.AUS, scheme: marking.AUS, want: "[SEC=OFFICIAL]"},
		{marking: "PROTECTED B", def: marking.CAN, scheme: marking.CAN, want: "PROTECTED B"},
		{marking: "[SEC=PROTECTED]", def: marking.US, scheme: marking.AUS, want: "[SEC=PROTECTED]", describe: "syntax beats the default"},
		{marking: "SECRET//NOFORN", def: marking.GBR, scheme: marking.US, want: "SECRET//NOFORN"},
		{marking: "NATO SECRET", def: marking.KEN, scheme: marking.NATO, want: "NATO SECRET"},
		{marking: "SECRET UK EYES ONLY", def: marking.US, scheme: marking.GBR, want: "UK SECRET UK EYES ONLY"},
		{marking: "PROTECTED B", def: marking.GBR, wantErr: `invalid GBR marking "PROTECTED B": unknown GBR level "PROTECTED" (levels: OFFICIAL, OFFICIAL-SENSITIVE, SECRET, TOP SECRET)`},
		{marking: "[SEC=OFFICIAL, CAVEAT=RI:AUSTEO]", def: marking.AUS, wantErr: `invalid AUS marking "[SEC=OFFICIAL, CAVEAT=RI:AUSTEO]": CAVEAT=RI:AUSTEO requires PROTECTED or above`},
		{marking: "CONFIDENTIAL", def: "", wantErr: `invalid marking "CONFIDENTIAL": "CONFIDENTIAL" is a level in schemes US, CAN, NZL, KEN: say which scheme`},
	} {
		l, err := marking.ParseDefault(tc.marking, tc.def)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseDefault(%q, %s) = %q, %v; want error %s", tc.marking, tc.def, l, err, tc.wantErr)
			}
			continue
		}
		if err != nil || l.Scheme != tc.scheme || l.String() != tc.want {
			t.Errorf("ParseDefault(%q, %s) = %s %q, %v; want %s %q (%s)", tc.marking, tc.def, l.Scheme, l, err, tc.scheme, tc.want, tc.describe)
		}
	}
}

// TestNeverReadInAnotherScheme checks the rule: a label is read
// in the scheme it was written in, whichever other schemes share its
// words. Every valid marking read in its scheme keeps that scheme, and
// read in any other scheme is either refused or a label of that other
// scheme.
func TestNeverReadInAnotherScheme(t *testing.T) {
	for _, tc := range validCases {
		for _, s := range marking.Schemes() {
			l, err := marking.Parse(s, tc.marking)
			if err == nil && l.Scheme != s {
				t.Errorf("Parse(%s, %q) gave a %s label", s, tc.marking, l.Scheme)
			}
		}
	}
}

func TestParseScheme(t *testing.T) {
	for _, s := range marking.Schemes() {
		if got, err := marking.ParseScheme(strings.ToLower(string(s))); err != nil || got != s {
			t.Errorf("ParseScheme(%q) = %q, %v", strings.ToLower(string(s)), got, err)
		}
	}
	for _, s := range []string{"", "UK", "USA", "NZ"} {
		if _, err := marking.ParseScheme(s); err == nil {
			t.Errorf("ParseScheme(%q) succeeded", s)
		}
	}
	_, err := marking.ParseScheme("UK")
	if want := `unknown scheme "UK" (schemes: US, GBR, AUS, NATO, CAN, NZL, EU, KEN)`; err.Error() != want {
		t.Errorf("ParseScheme(UK) = %v; want %s", err, want)
	}
}

// TestNationSets checks the member lists against router/label's country
// table and tetragraphs.
func TestNationSets(t *testing.T) {
	for name, set := range map[string][]string{
		"NATO": marking.NATOMembers(), "EU": marking.EUMembers(), "FVEY": marking.FiveEyes(),
	} {
		if !slices.IsSorted(set) || len(slices.Compact(slices.Clone(set))) != len(set) {
			t.Errorf("%s is not a sorted set: %q", name, set)
		}
		for _, c := range set {
			if !label.IsCountry(c) {
				t.Errorf("%s member %q is not an ISO 3166 trigraph", name, c)
			}
		}
	}
	if n := len(marking.EUMembers()); n != 27 {
		t.Errorf("%d EU members; want 27", n)
	}
	if slices.Contains(marking.EUMembers(), "GBR") {
		t.Error("GBR is an EU member")
	}
	for tetra, set := range map[string][]string{"NATO": marking.NATOMembers(), "FVEY": marking.FiveEyes()} {
		want := label.MustParse("UNCLASSIFIED//REL TO USA, " + tetra).Nations
		if !slices.Equal(set, want) {
			t.Errorf("%s members %q; router/label expands %s to %q", tetra, set, tetra, want)
		}
	}
}

// TestUSWrapsLabel checks that US labels are router/label's, and that
// Dominates agrees with label.Dominates on them.
func TestUSWrapsLabel(t *testing.T) {
	banners := []string{
		"UNCLASSIFIED", "CUI", "CUI//SP-EXPT", "CONFIDENTIAL", "SECRET", "SECRET//SI", "SECRET//REL TO USA, GBR",
		"SECRET//REL TO USA, FVEY", "TOP SECRET//SI/TK//NOFORN", "TOP SECRET//SI//REL TO USA, GBR", "SECRET//ORCON/NOFORN",
		"UNCLASSIFIED//REL TO USA, NATO", "SECRET//RD//NOFORN",
	}
	for _, a := range banners {
		ua := label.MustParse(a)
		ma := marking.MustParse(marking.US, a)
		if ma.US == nil || !ma.US.Equal(ua) {
			t.Fatalf("Parse(US, %q).US = %v; want %v", a, ma.US, ua)
		}
		if got := marking.FromUS(ua); !got.Equal(ma) {
			t.Errorf("FromUS(%q) = %#v; want %#v", a, got, ma)
		}
		for _, b := range banners {
			ub, mb := label.MustParse(b), marking.MustParse(marking.US, b)
			if got, want := ma.Dominates(mb), ua.Dominates(ub); got != want {
				t.Errorf("%q.Dominates(%q) = %v; label says %v", a, b, got, want)
			}
		}
	}
}

func TestKenyaLevels(t *testing.T) {
	d := marking.DefaultKenyaLevels()
	if !d.Illustrative || !slices.Equal(d.Levels, []string{"UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}) || d.Source == "" {
		t.Errorf("DefaultKenyaLevels = %+v", d)
	}
	k, err := marking.ParseKenyaLevels([]byte(`{"levels": ["OFFICIAL", "SIRI", "SIRI KUU"], "source": "the authority's circular"}`))
	if err != nil {
		t.Fatal(err)
	}
	p := marking.Parser{Kenya: k}
	l, err := p.Parse(marking.KEN, "siri kuu")
	if err != nil || l.Level != (marking.Level{Name: "SIRI KUU", Rank: 2}) {
		t.Errorf("Parse(KEN, siri kuu) = %+v, %v", l, err)
	}
	if err := p.Validate(l); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if _, err := p.Parse(marking.KEN, "CONFIDENTIAL"); err == nil {
		t.Error("configured levels still read the default CONFIDENTIAL")
	}
	// The configured levels take part in the refusal of bare words.
	if _, err := p.Parse("", "SIRI"); err == nil || err.Error() != `invalid marking "SIRI": "SIRI" is a level in scheme KEN: say which scheme` {
		t.Errorf("Parse(\"\", SIRI) = %v", err)
	}
	if l, err := p.ParseDefault("SIRI", marking.KEN); err != nil || l.Level.Name != "SIRI" {
		t.Errorf("ParseDefault(SIRI, KEN) = %v, %v", l, err)
	}
	for _, tc := range []struct{ json, err string }{
		{`{"levels": []}`, "kenya levels: no levels"},
		{`{"levels": ["secret"]}`, `kenya levels: level "secret": use upper-case letters, digits and "-", words separated by single spaces`},
		{`{"levels": ["TOP  SECRET"]}`, `kenya levels: level "TOP  SECRET": use upper-case letters, digits and "-", words separated by single spaces`},
		{`{"levels": ["SECRET", "SECRET"]}`, `kenya levels: level "SECRET" twice`},
		{`{"levels": ["UK SECRET"]}`, `kenya levels: level "UK SECRET" reads as a GBR marking`},
		{`{"levels": ["SECRET UE"]}`, `kenya levels: level "SECRET UE" reads as a EU marking`},
		{`{"levels": ["SECRET"], "ladder": 1}`, `kenya levels: json: unknown field "ladder"`},
		{`{"levels": ["SECRET"]} {}`, `kenya levels: data after the object`},
	} {
		_, err := marking.ParseKenyaLevels([]byte(tc.json))
		if err == nil || err.Error() != tc.err {
			t.Errorf("ParseKenyaLevels(%s) = %v; want %s", tc.json, err, tc.err)
		}
	}
}

func TestValidate(t *testing.T) {
	gbrSecret := marking.MustParse(marking.GBR, "SECRET")
	bad := []struct {
		name string
		l    marking.Label
	}{
		{"zero", marking.Label{}},
		{"unknown scheme", marking.Label{Scheme: "XX", Level: marking.Level{Name: "SECRET"}}},
		{"level name of another rank", marking.Label{Scheme: marking.GBR, Level: marking.Level{Name: "SECRET", Rank: 2}, AnyNation: true, Originator: "GBR"}},
		{"nations no caveat writes", func() marking.Label { l := gbrSecret; l.AnyNation, l.Nations = false, []string{"FRA"}; return l }()},
		{"unsorted caveats", func() marking.Label {
			l := marking.MustParse(marking.AUS, "[SEC=SECRET, CAVEAT=SH:CABINET]")
			l.Caveats = []string{"SH:CABINET", "C:A"}
			return l
		}()},
		{"another originator", func() marking.Label { l := gbrSecret; l.Originator = "USA"; return l }()},
		{"axis missing", func() marking.Label { l := marking.MustParse(marking.CAN, "SECRET"); l.Level.Axis = ""; return l }()},
	}
	for _, tc := range bad {
		if err := tc.l.Validate(); err == nil {
			t.Errorf("%s: Validate(%#v) = nil; want an error", tc.name, tc.l)
		}
	}
}

func TestReleasableTo(t *testing.T) {
	for _, tc := range []struct {
		scheme  marking.Scheme
		marking string
		yes, no []string
	}{
		{marking.GBR, "SECRET UK EYES ONLY", []string{"GBR"}, []string{"USA", "AUS"}},
		{marking.GBR, "SECRET UK/US EYES ONLY", []string{"GBR", "USA"}, []string{"AUS"}},
		{marking.GBR, "SECRET", []string{"GBR", "USA", "KEN"}, nil},
		{marking.AUS, "[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]", []string{"AUS", "GBR", "USA"}, []string{"CAN", "NZL"}},
		{marking.AUS, "[SEC=PROTECTED, CAVEAT=RI:AGAO]", []string{"AUS"}, []string{"NZL"}},
		{marking.NATO, "NATO RESTRICTED", []string{"USA", "TUR", "SWE"}, []string{"AUS", "IRL"}},
		{marking.EU, "RESTREINT UE", []string{"IRL", "AUT"}, []string{"GBR", "USA"}},
		{marking.US, "SECRET", []string{"USA"}, []string{"GBR"}},
	} {
		l := marking.MustParse(tc.scheme, tc.marking)
		for _, n := range tc.yes {
			if !l.ReleasableTo(n) {
				t.Errorf("%q not releasable to %s", tc.marking, n)
			}
		}
		for _, n := range tc.no {
			if l.ReleasableTo(n) {
				t.Errorf("%q releasable to %s", tc.marking, n)
			}
		}
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		r := recover()
		if err, ok := r.(error); !ok || !errors.As(err, new(*marking.ParseError)) {
			t.Errorf("MustParse panicked with %v; want a *ParseError", r)
		}
	}()
	marking.MustParse("", "SECRET")
}

// checkRoundTrip checks that l's canonical marking reads back, in l's
// scheme, to l, that it is a fixed point of String, and that l keeps the
// invariants of Label.
func checkRoundTrip(t testing.TB, p marking.Parser, l marking.Label) {
	t.Helper()
	s := l.String()
	back, err := p.Parse(l.Scheme, s)
	if err != nil {
		t.Fatalf("Parse(%s, %q) of String() of %#v: %v", l.Scheme, s, l, err)
	}
	if !back.Equal(l) {
		t.Fatalf("Parse(%s, String()) = %#v; want %#v (marking %q)", l.Scheme, back, l, s)
	}
	if s2 := back.String(); s2 != s {
		t.Fatalf("String() not a fixed point: %q then %q", s, s2)
	}
	if err := p.Validate(l); err != nil {
		t.Fatalf("Validate(%q): %v", s, err)
	}
	switch {
	case !slices.IsSorted(l.Caveats) || len(slices.Compact(slices.Clone(l.Caveats))) != len(l.Caveats):
		t.Fatalf("caveats not a sorted set: %q", l.Caveats)
	case !slices.IsSorted(l.Nations) || len(slices.Compact(slices.Clone(l.Nations))) != len(l.Nations):
		t.Fatalf("nations not a sorted set: %q", l.Nations)
	case l.AnyNation == (len(l.Nations) > 0):
		t.Fatalf("AnyNation %v with nations %q", l.AnyNation, l.Nations)
	case l.Originator == "":
		t.Fatalf("no originator: %#v", l)
	case !l.Dominates(l):
		t.Fatalf("%q does not dominate itself", s)
	}
}

// upperTrim is the marking as the parsers see it.
func upperTrim(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(s))
}

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		scheme marking.Scheme
		want   string
	}{
		{marking.US, "UNCLASSIFIED/0 CUI/1 CONFIDENTIAL/2 SECRET/3 TOP SECRET/4"},
		{marking.GBR, "OFFICIAL/0 SECRET/1 TOP SECRET/2"},
		{marking.AUS, "UNOFFICIAL/0 OFFICIAL/1 OFFICIAL:Sensitive/2 PROTECTED/3 SECRET/4 TOP-SECRET/5"},
		{marking.NATO, "NATO UNCLASSIFIED/0 NATO RESTRICTED/1 NATO CONFIDENTIAL/2 NATO SECRET/3 COSMIC TOP SECRET/4"},
		{marking.CAN, "PROTECTED A/PROTECTED/0 PROTECTED B/PROTECTED/1 PROTECTED C/PROTECTED/2 CONFIDENTIAL/CLASSIFIED/0 SECRET/CLASSIFIED/1 TOP SECRET/CLASSIFIED/2"},
		{marking.NZL, "IN-CONFIDENCE/POLICY AND PRIVACY/0 SENSITIVE/POLICY AND PRIVACY/1 RESTRICTED/NATIONAL SECURITY/0 CONFIDENTIAL/NATIONAL SECURITY/1 SECRET/NATIONAL SECURITY/2 TOP SECRET/NATIONAL SECURITY/3"},
		{marking.EU, "RESTREINT UE/EU RESTRICTED/0 CONFIDENTIEL UE/EU CONFIDENTIAL/1 SECRET UE/EU SECRET/2 TRÈS SECRET UE/EU TOP SECRET/3"},
		{marking.KEN, "UNCLASSIFIED/0 RESTRICTED/1 CONFIDENTIAL/2 SECRET/3 TOP SECRET/4"},
	} {
		var got []string
		for _, l := range marking.Levels(tc.scheme) {
			s := l.Name
			if l.Axis != "" {
				s += "/" + l.Axis
			}
			got = append(got, fmt.Sprintf("%s/%d", s, l.Rank))
			// Every level reads back alone.
			if back, err := marking.ParseLevel(tc.scheme, l.Name); err != nil || back != l {
				t.Errorf("ParseLevel(%s, %q) = %+v, %v; want %+v", tc.scheme, l.Name, back, err, l)
			}
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("Levels(%s) = %s\nwant %s", tc.scheme, g, tc.want)
		}
	}
	if marking.Levels("XX") != nil {
		t.Error("Levels of an unknown scheme")
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		scheme marking.Scheme
		name   string
		want   string
		err    string
	}{
		{scheme: marking.US, name: "secret", want: "SECRET"},
		{scheme: marking.GBR, name: "UK SECRET", want: "SECRET"},
		{scheme: marking.AUS, name: "PROTECTED", want: "PROTECTED"},
		{scheme: marking.AUS, name: "[SEC=PROTECTED]", want: "PROTECTED"},
		{scheme: marking.EU, name: "SECRET UE", want: "SECRET UE/EU SECRET"},
		{scheme: marking.NATO, name: "//NATO SECRET", want: "NATO SECRET"},
		{scheme: marking.GBR, name: "OFFICIAL-SENSITIVE", err: `invalid GBR marking "OFFICIAL-SENSITIVE": "UK OFFICIAL-SENSITIVE" is more than a level: write "OFFICIAL"`},
		{scheme: marking.GBR, name: "SECRET UK EYES ONLY", err: `invalid GBR marking "SECRET UK EYES ONLY": "UK SECRET UK EYES ONLY" is more than a level: write "SECRET"`},
		{scheme: marking.US, name: "TOP SECRET//SI", err: `invalid US marking "TOP SECRET//SI": "TOP SECRET//SI//NOFORN" is more than a level: write "TOP SECRET"`},
		{scheme: marking.US, name: "UNCLASSIFIED//REL TO USA, GBR", err: `invalid US marking "UNCLASSIFIED//REL TO USA, GBR": "UNCLASSIFIED//REL TO USA, GBR" is more than a level: write "UNCLASSIFIED"`},
		{scheme: marking.NATO, name: "NATO SECRET ATOMAL", err: `invalid NATO marking "NATO SECRET ATOMAL": "NATO SECRET ATOMAL" is more than a level: write "NATO SECRET"`},
		{scheme: marking.CAN, name: "PROTECTED", err: `invalid CAN marking "PROTECTED": "PROTECTED" needs its tier: PROTECTED A, PROTECTED B or PROTECTED C`},
	} {
		l, err := marking.ParseLevel(tc.scheme, tc.name)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("ParseLevel(%s, %q) = %+v, %v; want error %s", tc.scheme, tc.name, l, err, tc.err)
		case tc.err == "" && (err != nil || l.Name != tc.want):
			t.Errorf("ParseLevel(%s, %q) = %+v, %v; want %s", tc.scheme, tc.name, l, err, tc.want)
		}
	}
}

func TestLogValue(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("placed", "label", marking.MustParse(marking.AUS, "[SEC=TOP-SECRET, CAVEAT=C:LOBSTER, CAVEAT=RI:REL AUS/GBR]"))
	log.Info("placed", "label", marking.MustParse(marking.GBR, "OFFICIAL"))
	want := "level=INFO msg=placed label.scheme=AUS label.level=TOP-SECRET label.caveats=1 label.nations=2\n" +
		"level=INFO msg=placed label.scheme=GBR label.level=OFFICIAL label.caveats=0 label.nations=any\n"
	if b.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "LOBSTER") {
		t.Error("the log names a codeword")
	}
}

func TestNationalSecurity(t *testing.T) {
	for _, tc := range []struct {
		scheme  marking.Scheme
		marking string
		want    bool
	}{
		{marking.US, "CUI", false}, {marking.US, "CONFIDENTIAL", true},
		{marking.GBR, "OFFICIAL-SENSITIVE", false}, {marking.GBR, "SECRET", true},
		{marking.AUS, "[SEC=OFFICIAL:Sensitive]", false}, {marking.AUS, "[SEC=PROTECTED]", true},
		{marking.CAN, "PROTECTED B", false}, {marking.CAN, "CONFIDENTIAL", true},
		{marking.NZL, "SENSITIVE", false}, {marking.NZL, "RESTRICTED", true},
		{marking.NATO, "NATO UNCLASSIFIED", false}, {marking.NATO, "NATO RESTRICTED", true},
		{marking.EU, "RESTREINT UE/EU RESTRICTED", true},
		{marking.KEN, "UNCLASSIFIED", false}, {marking.KEN, "RESTRICTED", true},
	} {
		if got := marking.MustParse(tc.scheme, tc.marking).NationalSecurity(); got != tc.want {
			t.Errorf("%s %q: NationalSecurity = %v; want %v", tc.scheme, tc.marking, got, tc.want)
		}
	}
}
