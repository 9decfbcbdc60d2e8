package label_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/label"
)

// FuzzParse checks that Parse never panics, that every error is a
// *ParseError, and that every label it returns is canonical: its banner
// parses back to the same label and is a fixed point of String.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.banner)
	}
	for _, tc := range invalidCases {
		f.Add(tc.banner)
	}
	f.Fuzz(func(t *testing.T, banner string) {
		l, err := label.Parse(banner)
		if err != nil {
			pe, ok := err.(*label.ParseError)
			if !ok {
				t.Fatalf("Parse(%q) error is %T", banner, err)
			}
			if pe.Reason == "" || pe.Banner != banner {
				t.Fatalf("Parse(%q): incomplete error %#v", banner, pe)
			}
			return
		}
		checkRoundTrip(t, l)
		if err := l.Validate(); err != nil {
			t.Fatalf("Parse(%q) gave a label Validate refuses: %v", banner, err)
		}
	})
}

// TestRandomBannersRoundTrip assembles banners from valid pieces in
// random order and count, so that many are valid (about a quarter), and
// checks the round trip of each one Parse accepts. It reaches deeper
// into the grammar than FuzzParse does in a short run.
func TestRandomBannersRoundTrip(t *testing.T) {
	levels := []string{"UNCLASSIFIED", "CUI", "CONTROLLED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}
	values := []string{
		"SI", "SI-G", "SI-G ABCD", "SI-EU", "SI-ECRU", "SI-NK", "SI-ABC", "TK", "TK-BLFH", "TK-IDIT X", "TK-KAND",
		"HCS-O", "HCS-P", "HCS-P AB", "HCS-O-P", "RSV-A1",
		"SAR-BP", "CD", "SAR-CD-X Y", "SAR-SI", "RED WAGON", "SAR-RED WAGON-Q",
		"RD", "RD-CNWDI", "RD-SIGMA 14", "FRD", "FRD-SIGMA 2 14", "SIGMA 20", "DOD UCNI", "DOE UCNI", "TFNI", "ATOMAL",
		"SP-EXPT", "SP-CTI",
		"NOFORN", "REL TO USA", "REL TO USA, GBR", "REL TO USA, FVEY", "REL TO USA, NATO, KEN", "RELIDO",
		"ORCON", "ORCON-USGOV", "IMCON", "RSEN", "FOUO", "PROPIN", "FED ONLY", "FEDCON", "NOCON", "DL ONLY",
		"DEA SENSITIVE", "FISA", "DISPLAY ONLY GBR", "DISPLAY ONLY FVEY, KEN",
		"LIMDIS", "EXDIS", "NODIS", "SBU", "SBU NOFORN", "LES", "LES NOFORN", "SSI",
	}
	r := rand.New(rand.NewPCG(9, 9))
	accepted := 0
	for range 100000 {
		var b strings.Builder
		b.WriteString(levels[r.IntN(len(levels))])
		for range r.IntN(5) {
			b.WriteString("//")
			for k := range 1 + r.IntN(3) {
				if k > 0 {
					b.WriteByte('/')
				}
				b.WriteString(values[r.IntN(len(values))])
			}
		}
		l, err := label.Parse(b.String())
		if err != nil {
			continue
		}
		accepted++
		checkRoundTrip(t, l)
	}
	if accepted < 10000 {
		t.Errorf("only %d random banners were valid; the test no longer exercises the formatter", accepted)
	}
}
