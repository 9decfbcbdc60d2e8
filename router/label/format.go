package label

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// String returns the canonical banner of l, which Parse reads back to a
// label equal to l. The canonical form is:
//
//   - the level word ("TOP SECRET", "CUI");
//   - SCI: control systems ascending ("HCS-P/SI/TK"), each with its
//     compartments ascending after "-" and their sub-compartments
//     ascending after " " ("SI-G ABCD EFGH-XYZ"); a compartment implies
//     its system, so {SI, SI-G} is written "SI-G"; ECRU and NONBOOK are
//     spelt out ("SI-ECRU"), not abbreviated ("SI-EU");
//   - SAP: programs ascending, the first as "SAR-BP" and the others bare
//     ("SAR-BP/CD"), unless a bare program would read as another marking;
//   - AEA in register order: RD[-CNWDI][-SIGMA n...], FRD, DOD UCNI,
//     DOE UCNI, TFNI, ATOMAL; SIGMA numbers ascending, written under RD
//     when RD is present, else under FRD, else alone ("SIGMA 14 20");
//   - CUI specified categories ascending ("SP-CTI/SP-EXPT");
//   - IC dissemination and CUI limited dissemination controls in the
//     order of dissemOrder: RSEN, FOUO, ORCON, ORCON-USGOV, IMCON,
//     NOFORN, FED ONLY, FEDCON, NOCON, DL ONLY, PROPIN, REL TO, RELIDO,
//     DEA SENSITIVE, FISA, DISPLAY ONLY;
//   - non-IC dissemination controls: LIMDIS, EXDIS, NODIS, SBU, LES, SSI.
//
// Categories are separated by "//" and values by "/". Releasability is
// written as follows. AnyNation: nothing. Nations {USA}: NOFORN, so that
// the fail-closed default of a classified banner is explicit ("SECRET"
// becomes "SECRET//NOFORN"); but NOFORN excludes RELIDO and DISPLAY
// ONLY, so with either of them a classified label writes nothing (US-only
// is its default) and an UNCLASSIFIED or CUI label writes "REL TO USA".
// Otherwise "REL TO USA, " and the other nations ascending, tetragraphs
// expanded ("REL TO USA, AUS, GBR"). Country lists of DISPLAY ONLY are
// ascending too. "SBU NOFORN" and "LES NOFORN" are written as NOFORN
// plus SBU or LES.
func (l Label) String() string {
	var b strings.Builder
	b.WriteString(l.Level.String())
	var sci, sap, aea, cui []string
	for _, c := range l.Controls {
		switch controlCategory(c) {
		case catSAP:
			sap = append(sap, strings.TrimPrefix(c, sapPrefix))
		case catAEA:
			aea = append(aea, c)
		case catCUI:
			cui = append(cui, c)
		default: // SCI, or not a control: then l is not valid.
			sci = append(sci, c)
		}
	}
	if len(sci) > 0 {
		b.WriteString("//")
		for i, g := range hierarchy(sci) {
			if i > 0 {
				b.WriteByte('/')
			}
			b.WriteString(g)
		}
	}
	if len(sap) > 0 {
		b.WriteString("//")
		for i, g := range hierarchy(sap) {
			if i > 0 {
				b.WriteByte('/')
			}
			// A further program may drop "SAR-" unless it would then
			// read as another marking ("SAR-BP/SAR-SI", not "SAR-BP/SI").
			if cat, why := classify(g); i == 0 || cat != catUnknown || why != "" {
				b.WriteString(sapPrefix)
			}
			b.WriteString(g)
		}
	}
	if len(aea) > 0 {
		b.WriteString("//")
		writeAEA(&b, aea)
	}
	if len(cui) > 0 {
		b.WriteString("//")
		b.WriteString(strings.Join(cui, "/"))
	}
	ic, nonIC := l.dissemValues()
	if len(ic) > 0 {
		b.WriteString("//")
		b.WriteString(strings.Join(ic, "/"))
	}
	if len(nonIC) > 0 {
		b.WriteString("//")
		b.WriteString(strings.Join(nonIC, "/"))
	}
	return b.String()
}

// hierarchy groups controls written HEAD, HEAD-COMP and HEAD-COMP SUB
// into banner values "HEAD-COMP SUB SUB-COMP", heads, compartments and
// sub-compartments each ascending.
func hierarchy(controls []string) []string {
	type comp struct {
		name string
		subs []string
	}
	type group struct {
		head  string
		comps []comp
	}
	var groups []group
	for _, c := range controls {
		head, rest, hasComp := strings.Cut(c, "-")
		gi := slices.IndexFunc(groups, func(g group) bool { return g.head == head })
		if gi < 0 {
			groups = append(groups, group{head: head})
			gi = len(groups) - 1
		}
		if !hasComp {
			continue
		}
		name, sub, hasSub := strings.Cut(rest, " ")
		g := &groups[gi]
		ci := slices.IndexFunc(g.comps, func(c comp) bool { return c.name == name })
		if ci < 0 {
			g.comps = append(g.comps, comp{name: name})
			ci = len(g.comps) - 1
		}
		if hasSub {
			g.comps[ci].subs = append(g.comps[ci].subs, sub)
		}
	}
	slices.SortFunc(groups, func(a, b group) int { return cmp.Compare(a.head, b.head) })
	out := make([]string, len(groups))
	for i, g := range groups {
		var b strings.Builder
		b.WriteString(g.head)
		slices.SortFunc(g.comps, func(a, b comp) int { return cmp.Compare(a.name, b.name) })
		for _, c := range g.comps {
			b.WriteByte('-')
			b.WriteString(c.name)
			slices.Sort(c.subs)
			for _, s := range c.subs {
				b.WriteByte(' ')
				b.WriteString(s)
			}
		}
		out[i] = b.String()
	}
	return out
}

// writeAEA writes the AEA category in register order.
func writeAEA(b *strings.Builder, aea []string) {
	var sigmas []int
	for _, c := range aea {
		if n, ok := strings.CutPrefix(c, sigmaSpace); ok {
			v, _ := strconv.Atoi(n)
			sigmas = append(sigmas, v)
		}
	}
	slices.Sort(sigmas)
	sig := ""
	if len(sigmas) > 0 {
		sig = sigma
		for _, n := range sigmas {
			sig += " " + strconv.Itoa(n)
		}
	}
	hasRD, hasFRD := slices.Contains(aea, "RD"), slices.Contains(aea, "FRD")
	var vals []string
	if hasRD {
		v := "RD"
		if slices.Contains(aea, cnwdi) {
			v += "-" + cnwdi
		}
		if sig != "" {
			v += "-" + sig
		}
		vals = append(vals, v)
	} else if slices.Contains(aea, cnwdi) {
		vals = append(vals, cnwdi) // not valid without RD
	}
	if sig != "" && !hasRD && !hasFRD {
		vals = append(vals, sig)
	}
	for _, m := range aeaOrder[1:] { // RD is written above
		if !slices.Contains(aea, m) {
			continue
		}
		if m == "FRD" && sig != "" && !hasRD {
			m += "-" + sig
		}
		vals = append(vals, m)
	}
	b.WriteString(strings.Join(vals, "/"))
}

// dissemValues returns the values of the dissemination category and of
// the non-IC dissemination category, in banner order, with NOFORN or
// REL TO written from Nations.
func (l Label) dissemValues() (ic, nonIC []string) {
	type entry struct {
		rank int
		text string
	}
	var es []entry
	hasRelido, hasDisplay := false, false
	for _, d := range l.Dissem {
		r := dissemRank(d)
		hasRelido = hasRelido || r == rankRELIDO
		hasDisplay = hasDisplay || r == rankDisplayOnly
		es = append(es, entry{r, d})
	}
	switch {
	case l.AnyNation:
	case l.usOnly():
		switch {
		case !hasRelido && !hasDisplay:
			es = append(es, entry{rankNOFORN, noforn})
		case !l.Classified():
			es = append(es, entry{rankRELTO, relTo + " " + USA})
		}
	default:
		var b strings.Builder
		b.WriteString(relTo + " " + USA)
		for _, n := range l.Nations {
			if n != USA {
				b.WriteString(", ")
				b.WriteString(n)
			}
		}
		es = append(es, entry{rankRELTO, b.String()})
	}
	slices.SortStableFunc(es, func(a, b entry) int { return cmp.Compare(a.rank, b.rank) })
	for _, e := range es {
		if e.rank >= rankFirstNonIC {
			nonIC = append(nonIC, e.text)
		} else {
			ic = append(ic, e.text)
		}
	}
	return ic, nonIC
}

// usOnly reports whether l is releasable to the USA alone. Nations empty
// without AnyNation is not valid; it is treated as {USA}, failing closed.
func (l Label) usOnly() bool {
	return !l.AnyNation && (len(l.Nations) == 0 || len(l.Nations) == 1 && l.Nations[0] == USA)
}
