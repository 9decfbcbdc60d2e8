package label

import "strings"

// This file holds the vocabulary of the banner grammar (DOMAIN.md §1.2,
// §1.3, §2; CAPCO-2016 Register, Table 4).

// category is a marking category of a banner. The constants are in
// banner order: categories must appear in this order, each at most once.
type category uint8

const (
	catLevel   category = iota // the classification
	catSCI                     // SCI control systems
	catSAP                     // special access programs
	catAEA                     // Atomic Energy Act markings
	catCUI                     // CUI specified categories (SP-...)
	catDissem                  // IC dissemination controls and CUI limited dissemination controls
	catNonIC                   // non-IC dissemination controls
	catUnknown                 // not a known marking
)

var categoryNames = [...]string{
	catLevel:   "classification",
	catSCI:     "SCI",
	catSAP:     "SAP",
	catAEA:     "AEA",
	catCUI:     "CUI",
	catDissem:  "dissemination control",
	catNonIC:   "non-IC dissemination control",
	catUnknown: "unknown",
}

func (c category) String() string { return categoryNames[c] }

// Dissemination controls in the order a banner lists them. The IC
// register order (RSEN ... DISPLAY ONLY, then the non-IC controls LIMDIS
// ... SSI) is merged with the CUI registry order of the limited
// dissemination controls (NOFORN, FED ONLY, FEDCON, NOCON, DL ONLY,
// REL TO, DISPLAY ONLY) so that both orders hold: the CUI controls sit
// between NOFORN and REL TO. NOFORN and REL TO are placeholders here:
// Label keeps them in Nations, not in Dissem.
var dissemOrder = [...]string{
	"RSEN",
	"FOUO",
	"ORCON",
	"ORCON-USGOV",
	"IMCON",
	"NOFORN",
	"FED ONLY",
	"FEDCON",
	"NOCON",
	"DL ONLY",
	"PROPIN",
	"REL TO",
	"RELIDO",
	"DEA SENSITIVE",
	"FISA",
	"DISPLAY ONLY",
	// Non-IC dissemination controls: their own category, after the IC ones.
	"LIMDIS",
	"EXDIS",
	"NODIS",
	"SBU",
	"LES",
	"SSI",
}

// Ranks of the dissemination controls the code refers to by name.
const (
	rankORCON       = 2
	rankORCONUSGOV  = 3
	rankNOFORN      = 5
	rankFEDONLY     = 6
	rankFEDCON      = 7
	rankNOCON       = 8
	rankDLONLY      = 9
	rankRELTO       = 11
	rankRELIDO      = 12
	rankDisplayOnly = 15
	rankFirstNonIC  = 16
	rankEXDIS       = 17
	rankNODIS       = 18
	rankUnknown     = len(dissemOrder)
)

const (
	relTo       = "REL TO"
	relido      = "RELIDO"
	noforn      = "NOFORN"
	displayOnly = "DISPLAY ONLY"
)

// dissemMinLevel holds the levels below which an IC dissemination
// control may not be used (CAPCO-2016 §H.8: RSEN and IMCON TS/S only,
// ORCON and ORCON-USGOV TS/S/C only). Only minimums are enforced: they
// survive Join and Meet, where a maximum (FOUO is U only) would not.
var dissemMinLevel = map[string]Level{
	"RSEN":        Secret,
	"ORCON":       Confidential,
	"ORCON-USGOV": Confidential,
	"IMCON":       Secret,
}

// dissemRank returns the banner position of a Dissem entry; entries of
// the form "DISPLAY ONLY AUS, GBR" rank as DISPLAY ONLY. Unknown entries
// rank last.
func dissemRank(d string) int {
	if strings.HasPrefix(d, displayOnly+" ") {
		return rankDisplayOnly
	}
	for i, n := range dissemOrder {
		if n == d {
			return i
		}
	}
	return rankUnknown
}

// noforNonIC are the non-IC controls that carry NOFORN in their name;
// they parse as the control plus NOFORN.
var noforNonIC = map[string]string{
	"SBU NOFORN": "SBU",
	"LES NOFORN": "LES",
}

// portionForms maps the portion marks that are not also banner forms to
// the banner form, so that a banner using one is refused with the fix.
var portionForms = map[string]string{
	"TS":       "TOP SECRET",
	"S":        "SECRET",
	"C":        "CONFIDENTIAL",
	"U":        "UNCLASSIFIED",
	"NF":       "NOFORN",
	"OC":       "ORCON",
	"OC-USGOV": "ORCON-USGOV",
	"RS":       "RSEN",
	"IMC":      "IMCON",
	"PR":       "PROPIN",
	"REL":      "REL TO [USA, LIST]",
	"DSEN":     "DEA SENSITIVE",
	"DS":       "LIMDIS",
	"XD":       "EXDIS",
	"ND":       "NODIS",
	"SBU-NF":   "SBU NOFORN",
	"LES-NF":   "LES NOFORN",
	"DCNI":     "DOD UCNI",
	"UCNI":     "DOE UCNI",
	"SG":       "SIGMA [#]",
}

// nonUSLevels are non-US classification words and NATO portion marks.
var nonUSLevels = map[string]bool{
	"RESTRICTED": true, "COSMIC TOP SECRET": true,
	"CTS": true, "NS": true, "NC": true, "NR": true, "NU": true,
}

// nonUSControls are non-US control markings that may follow a level.
var nonUSControls = map[string]bool{"BOHEMIA": true, "BALK": true, "NATO": true}

// Tetragraphs expand to their members before use (DOMAIN.md §1.3).
// NATO holds the 32 members as of Sweden's accession in March 2024.
var tetragraphs = map[string][]string{
	"FVEY": {"AUS", "CAN", "GBR", "NZL", "USA"},
	"ACGU": {"AUS", "CAN", "GBR", "USA"},
	"TEYE": {"AUS", "GBR", "USA"},
	"NATO": {
		"ALB", "BEL", "BGR", "CAN", "CZE", "DEU", "DNK", "ESP", "EST", "FIN", "FRA",
		"GBR", "GRC", "HRV", "HUN", "ISL", "ITA", "LTU", "LUX", "LVA", "MKD", "MNE",
		"NLD", "NOR", "POL", "PRT", "ROU", "SVK", "SVN", "SWE", "TUR", "USA",
	},
}

// SCI control systems. HCS and RSV exist only with a compartment.
var sciSystems = [...]string{"HCS", "RSV", "SI", "TK"}

// aeaMarkings are the AEA markings that stand alone; RD and FRD also
// take sub-markings ("RD-CNWDI", "FRD-SIGMA 14") and SIGMA takes numbers.
var aeaMarkings = map[string]Level{
	"RD":       Confidential,
	"FRD":      Confidential,
	"DOD UCNI": Unclassified,
	"DOE UCNI": Unclassified,
	"TFNI":     Confidential,
	"ATOMAL":   Confidential,
}

// Banner order of the AEA markings other than CNWDI and SIGMA, which are
// written as sub-markings of RD or FRD.
var aeaOrder = [...]string{"RD", "FRD", "DOD UCNI", "DOE UCNI", "TFNI", "ATOMAL"}

const (
	cnwdi      = "CNWDI"
	sigma      = "SIGMA"
	sigmaSpace = "SIGMA "
	sapPrefix  = "SAR-"
	cuiPrefix  = "SP-"
)

// controlCategory says which banner category a control of Label.Controls
// belongs to.
func controlCategory(c string) category {
	switch {
	case strings.HasPrefix(c, sapPrefix):
		return catSAP
	case strings.HasPrefix(c, cuiPrefix):
		return catCUI
	case strings.HasPrefix(c, sigmaSpace) || c == cnwdi:
		return catAEA
	case isSCI(c):
		return catSCI
	}
	if _, ok := aeaMarkings[c]; ok {
		return catAEA
	}
	return catUnknown
}

// isSCI reports whether control c is an SCI control system or one of
// its compartments or sub-compartments.
func isSCI(c string) bool {
	for _, s := range sciSystems {
		if len(c) >= len(s) && c[:len(s)] == s && (len(c) == len(s) || c[len(s)] == '-') {
			return true
		}
	}
	return false
}
