package marking

import "strings"

// euGrammar reads EU classified information markings (Council Decision
// 2013/488/EU; DOMAIN.md §6.1): the French and English forms together,
// as the Council writes them, or either alone:
//
//	RESTREINT UE/EU RESTRICTED       RESTREINT UE       EU RESTRICTED
//	CONFIDENTIEL UE/EU CONFIDENTIAL  CONFIDENTIEL UE    EU CONFIDENTIAL
//	SECRET UE/EU SECRET              SECRET UE          EU SECRET
//	TRÈS SECRET UE/EU TOP SECRET     TRÈS SECRET UE     EU TOP SECRET
//
// in that order, low to high; TRES is read for TRÈS. An EU label is
// releasable to the EU member states (EUMembers); national equivalents
// are equivalence entries, not this package's. String writes the full
// form.
type euGrammar struct{}

var euLevels = []struct{ fr, en string }{
	{"RESTREINT UE", "EU RESTRICTED"},
	{"CONFIDENTIEL UE", "EU CONFIDENTIAL"},
	{"SECRET UE", "EU SECRET"},
	{"TRÈS SECRET UE", "EU TOP SECRET"},
}

const euLevelList = "RESTREINT UE/EU RESTRICTED, CONFIDENTIEL UE/EU CONFIDENTIAL, SECRET UE/EU SECRET, TRÈS SECRET UE/EU TOP SECRET"

// euRank returns the rank of one half of an EU marking, upper-cased with
// È read as E, and whether it is the French half.
func euRank(h string) (rank int, fr bool) {
	for i, l := range euLevels {
		switch h {
		case strings.ReplaceAll(l.fr, "È", "E"):
			return i, true
		case l.en:
			return i, false
		}
	}
	return -1, false
}

func (euGrammar) parse(m string) (Label, error) {
	s := upperASCII(strings.TrimSpace(m))
	fail := func(part, format string, args ...any) (Label, error) {
		return Label{}, errorf(EU, m, part, format, args...)
	}
	n := strings.NewReplacer("È", "E", "è", "E").Replace(s)
	var rank int
	if fr, en, ok := strings.Cut(n, "/"); ok {
		rf, frIsFr := euRank(fr)
		re, enIsFr := euRank(en)
		switch {
		case rf < 0 || !frIsFr:
			return fail(fr, "unknown EU level %q (levels: %s)", fr, euLevelList)
		case re < 0 || enIsFr:
			return fail(en, "unknown EU level %q (levels: %s)", en, euLevelList)
		case rf != re:
			return fail(s, "%q and %q name different levels", fr, en)
		}
		rank = rf
	} else {
		r, _ := euRank(n)
		if r < 0 {
			return fail(s, "unknown EU level %q (levels: %s)", s, euLevelList)
		}
		rank = r
	}
	return Label{
		Scheme:     EU,
		Level:      Level{Name: euLevels[rank].fr + "/" + euLevels[rank].en, Rank: rank},
		Nations:    euMembers,
		Originator: originators[EU],
	}, nil
}

func (euGrammar) format(l Label) string { return l.Level.Name }

func (euGrammar) levels() []Level {
	var ls []Level
	for i, l := range euLevels {
		ls = append(ls, Level{Name: l.fr + "/" + l.en, Rank: i})
	}
	return ls
}

// words is empty: every EU level word names the EU.
func (euGrammar) words() []string { return nil }
