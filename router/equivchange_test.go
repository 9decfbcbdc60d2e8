package router

import (
	"slices"
	"testing"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

func TestClassifyEquivalenceChange(t *testing.T) {
	base := equiv.Entry{
		From: marking.GBR, To: marking.US, Version: 1, Agreement: "GSA",
		Levels: []equiv.Mapping{
			{From: "SECRET", To: "SECRET"},
			{From: "TOP SECRET", To: "TOP SECRET"},
			{From: "OFFICIAL", WithCaveats: []string{"SENSITIVE"}, None: true},
		},
	}
	day := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		mutate func(*equiv.Entry)
		kind   ChangeKind
		fields []string
	}{
		{"withdrawn", func(e *equiv.Entry) { e.Withdrawn = true }, ChangeWithdraw, []string{"equivalence.withdrawn"}},
		{"row mapped lower", func(e *equiv.Entry) { e.Levels[1].To = "SECRET" }, ChangeLower, []string{"equivalence.levels"}},
		{"row now none", func(e *equiv.Entry) { e.Levels[0] = equiv.Mapping{From: "SECRET", None: true} }, ChangeLower, []string{"equivalence.levels"}},
		{"row removed", func(e *equiv.Entry) { e.Levels = e.Levels[1:] }, ChangeLower, []string{"equivalence.levels"}},
		{"validity ends", func(e *equiv.Entry) { e.ValidUntil = day }, ChangeLower, []string{"equivalence.valid_until"}},
		{"row mapped higher", func(e *equiv.Entry) { e.Levels[0].To = "TOP SECRET" }, ChangeRaise, []string{"equivalence.levels"}},
		{"none now mapped", func(e *equiv.Entry) {
			e.Levels[2] = equiv.Mapping{From: "OFFICIAL", WithCaveats: []string{"SENSITIVE"}, To: "CONFIDENTIAL"}
		},
			ChangeRaise, []string{"equivalence.levels"}},
		{"row added", func(e *equiv.Entry) { e.Levels = append(e.Levels, equiv.Mapping{From: "OFFICIAL", To: "CUI"}) }, ChangeRaise, []string{"equivalence.levels"}},
		{"agreement renamed", func(e *equiv.Entry) { e.Agreement = "GSA 2026" }, ChangeOther, []string{"equivalence.agreement"}},
		{"a row lowered and one added", func(e *equiv.Entry) {
			e.Levels[1].To = "SECRET"
			e.Levels = append(e.Levels, equiv.Mapping{From: "OFFICIAL", To: "CUI"})
		}, ChangeLower, []string{"equivalence.levels"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			n.Levels = slices.Clone(base.Levels)
			n.Version = 2
			tc.mutate(&n)
			if got := ClassifyEquivalenceChange(marking.Parser{}, &base, &n); got != tc.kind {
				t.Errorf("kind %s; want %s", got, tc.kind)
			}
			if got := EquivalenceChanges(&base, &n); !slices.Equal(got, tc.fields) {
				t.Errorf("fields %v; want %v", got, tc.fields)
			}
		})
	}
	if got := ClassifyEquivalenceChange(marking.Parser{}, nil, &base); got != ChangeAdd {
		t.Errorf("new pair: %s; want add", got)
	}
	w := base
	w.Withdrawn = true
	if got := ClassifyEquivalenceChange(marking.Parser{}, &w, &base); got != ChangeRaise {
		t.Errorf("reinstated: %s; want raise", got)
	}
	if got := EquivalenceChanges(&base, &base); len(got) != 0 {
		t.Errorf("no change: %v", got)
	}
}
