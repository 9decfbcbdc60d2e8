package marking_test

import (
	"testing"

	"github.com/classroute/classroute/router/marking"
)

// addSeeds adds the table markings of scheme, and a few of every other
// scheme, to f's corpus.
func addSeeds(f *testing.F, scheme marking.Scheme) {
	for _, tc := range validCases {
		if tc.scheme == scheme || len(tc.marking)%3 == 0 {
			f.Add(tc.marking)
		}
	}
	for _, tc := range invalidCases {
		if tc.scheme == scheme {
			f.Add(tc.marking)
		}
	}
	ms := genMarkings(scheme)
	for i := 0; i < len(ms); i += 1 + len(ms)/40 {
		f.Add(ms[i])
	}
}

// fuzzParse checks that Parse(scheme, m) never panics, that every error
// is a complete *ParseError, and that every label it returns is of
// scheme and canonical: its marking reads back to it, String is a fixed
// point, and it dominates itself.
func fuzzParse(t *testing.T, scheme marking.Scheme, m string) {
	l, err := marking.Parse(scheme, m)
	if err != nil {
		pe, ok := marking.AsParseError(err)
		switch {
		case !ok:
			t.Fatalf("Parse(%s, %q) error is %T", scheme, m, err)
		case pe.Reason == "" || pe.Marking != m:
			t.Fatalf("Parse(%s, %q): incomplete error %#v", scheme, m, pe)
		case scheme != "" && pe.Scheme != scheme:
			t.Fatalf("Parse(%s, %q): error of scheme %s", scheme, m, pe.Scheme)
		}
		return
	}
	if scheme != "" && l.Scheme != scheme {
		t.Fatalf("Parse(%s, %q) gave a %s label", scheme, m, l.Scheme)
	}
	checkRoundTrip(t, marking.Parser{}, l)
}

func FuzzParseUS(f *testing.F) {
	addSeeds(f, marking.US)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.US, m) })
}

func FuzzParseGBR(f *testing.F) {
	addSeeds(f, marking.GBR)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.GBR, m) })
}

func FuzzParseAUS(f *testing.F) {
	addSeeds(f, marking.AUS)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.AUS, m) })
}

func FuzzParseNATO(f *testing.F) {
	addSeeds(f, marking.NATO)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.NATO, m) })
}

func FuzzParseCAN(f *testing.F) {
	addSeeds(f, marking.CAN)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.CAN, m) })
}

func FuzzParseNZL(f *testing.F) {
	addSeeds(f, marking.NZL)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.NZL, m) })
}

func FuzzParseEU(f *testing.F) {
	addSeeds(f, marking.EU)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.EU, m) })
}

func FuzzParseKEN(f *testing.F) {
	addSeeds(f, marking.KEN)
	f.Fuzz(func(t *testing.T, m string) { fuzzParse(t, marking.KEN, m) })
}

// FuzzParseNoScheme checks the reading of markings given without a
// scheme: a label it returns is what its own scheme reads from the same
// marking, no bare level word is accepted, and ParseDefault agrees with
// it whenever it accepts.
func FuzzParseNoScheme(f *testing.F) {
	for _, s := range marking.Schemes() {
		addSeeds(f, s)
	}
	addSeeds(f, "")
	bare := map[string]bool{}
	for _, s := range marking.Schemes() {
		for _, m := range genMarkings(s) {
			if l, err := marking.Parse(s, m); err == nil && (s == marking.CAN || s == marking.NZL || s == marking.KEN) {
				bare[l.Level.Name] = true
			}
		}
	}
	for _, w := range []string{"UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET", "TOP SECRET", "OFFICIAL", "OFFICIAL-SENSITIVE", "PROTECTED", "UNOFFICIAL", "TOP-SECRET", "OFFICIAL:SENSITIVE", "CONTROLLED"} {
		bare[w] = true
	}
	f.Fuzz(func(t *testing.T, m string) {
		fuzzParse(t, "", m)
		l, err := marking.Parse("", m)
		if err != nil {
			return
		}
		own, err := marking.Parse(l.Scheme, m)
		if err != nil || !own.Equal(l) {
			t.Fatalf("Parse(\"\", %q) = %#v; Parse(%s) = %#v, %v", m, l, l.Scheme, own, err)
		}
		if bare[upperTrim(m)] {
			t.Fatalf("Parse(\"\", %q) read a bare level word as %s", m, l.Scheme)
		}
		for _, def := range marking.Schemes() {
			d, err := marking.ParseDefault(m, def)
			if err != nil || !d.Equal(l) {
				t.Fatalf("ParseDefault(%q, %s) = %#v, %v; Parse gave %#v", m, def, d, err, l)
			}
		}
	})
}
