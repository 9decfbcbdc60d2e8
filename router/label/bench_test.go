package label_test

import (
	"testing"

	"github.com/classroute/classroute/router/label"
)

var benchBanners = []string{
	"TOP SECRET//SI/TK//NOFORN",
	"SECRET//REL TO USA, AUS, GBR",
	"CUI//SP-EXPT//NOFORN",
	"TOP SECRET//HCS-P/SI-G ABCD/TK-BLFH//SAR-BP//RD-CNWDI//ORCON/REL TO USA, FVEY",
}

func BenchmarkParse(b *testing.B) {
	for _, s := range benchBanners {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := label.Parse(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	l := label.MustParse(benchBanners[3])
	b.ReportAllocs()
	for b.Loop() {
		_ = l.String()
	}
}

func BenchmarkDominates(b *testing.B) {
	cases := []struct{ name, a, o string }{
		{"NOFORN over REL TO", "TOP SECRET//SI/TK//NOFORN", "SECRET//SI//REL TO USA, AUS, GBR"},
		{"wide labels", "TOP SECRET//HCS-P/SI-G/TK-BLFH//SAR-BP/CD//RD-CNWDI-SIGMA 14 20//REL TO USA, GBR",
			"TOP SECRET//HCS-P/SI-G/TK//SAR-BP//RD//REL TO USA, NATO"},
		{"refused on level", "SECRET//NOFORN", "TOP SECRET//NOFORN"},
	}
	for _, tc := range cases {
		a, o := label.MustParse(tc.a), label.MustParse(tc.o)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Dominates(o)
			}
		})
	}
}

func BenchmarkReleasableTo(b *testing.B) {
	l := label.MustParse("SECRET//REL TO USA, NATO")
	b.ReportAllocs()
	for b.Loop() {
		l.ReleasableTo("GBR")
	}
}

func BenchmarkJoin(b *testing.B) {
	x := label.MustParse("TOP SECRET//SI/TK//ORCON/REL TO USA, FVEY")
	y := label.MustParse("SECRET//SAR-BP//REL TO USA, GBR, DEU/RELIDO")
	b.ReportAllocs()
	for b.Loop() {
		label.Join(x, y)
	}
}
