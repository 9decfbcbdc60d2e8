package equiv_test

import (
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/marking"
)

var now = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

func mustLabel(t *testing.T, s marking.Scheme, m string) marking.Label {
	t.Helper()
	l, err := marking.Parse(s, m)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func defaultTable(t *testing.T) equiv.Table {
	t.Helper()
	tab, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestMapDefault(t *testing.T) {
	tab := defaultTable(t)
	for _, tc := range []struct {
		scheme  marking.Scheme
		marking string
		to      marking.Scheme
		kind    equiv.Kind
		level   string // when OK
		explain string // in the explanation
	}{
		{marking.GBR, "UK SECRET", marking.US, equiv.Mapped, "SECRET", "GBR→US v1"},
		{marking.GBR, "UK TOP SECRET", marking.US, equiv.Mapped, "TOP SECRET", "GBR→US v1"},
		{marking.GBR, "UK SECRET", marking.GBR, equiv.Same, "SECRET", "GBR label, GBR accreditation"},
		{marking.GBR, "OFFICIAL-SENSITIVE", marking.US, equiv.NoEquivalent, "", "never read as CUI"},
		{marking.GBR, "OFFICIAL", marking.US, equiv.Unlisted, "", "maps no GBR OFFICIAL"},
		{marking.NATO, "NATO RESTRICTED", marking.US, equiv.Mapped, "CONFIDENTIAL", "NATO→US v1"},
		{marking.NATO, "NATO SECRET", marking.US, equiv.Mapped, "SECRET", ""},
		{marking.AUS, "[SEC=PROTECTED]", marking.US, equiv.NoEquivalent, "", "PROTECTED"},
		{marking.AUS, "[SEC=SECRET]", marking.US, equiv.Mapped, "SECRET", "AUS→US v1"},
		{marking.KEN, "CONFIDENTIAL", marking.US, equiv.NoEquivalent, "", "never US CONFIDENTIAL"},
		{marking.CAN, "PROTECTED B", marking.US, equiv.NoEquivalent, "", "Protected B"},
		{marking.NZL, "SENSITIVE", marking.US, equiv.NoEquivalent, "", ""},
		// No entry: never a mapping by similar words.
		{marking.KEN, "CONFIDENTIAL", marking.GBR, equiv.NoEntry, "", "no equivalence entry KEN→GBR"},
		{marking.EU, "SECRET UE/EU SECRET", marking.US, equiv.NoEntry, "", "never read as US"},
		// Never inverted: GBR→US exists, US→GBR does not.
		{marking.US, "SECRET", marking.GBR, equiv.NoEntry, "", "no equivalence entry US→GBR"},
		// Never chained: NATO→US exists; GBR→NATO does not make GBR→US of NATO's.
		{marking.NATO, "NATO SECRET", marking.GBR, equiv.NoEntry, "", ""},
	} {
		l := mustLabel(t, tc.scheme, tc.marking)
		r := tab.Map(marking.Parser{}, l, tc.to, now)
		if r.Kind != tc.kind {
			t.Errorf("%s %q → %s: kind %v; want %v (%s)", tc.scheme, tc.marking, tc.to, r.Kind, tc.kind, r.Explain(l, tc.to, now))
			continue
		}
		if r.OK() != (tc.level != "") || r.OK() && r.Level.Name != tc.level {
			t.Errorf("%s %q → %s: level %q, ok %v; want %q", tc.scheme, tc.marking, tc.to, r.Level.Name, r.OK(), tc.level)
		}
		if !r.OK() && r.Code() != "no_equivalence" {
			t.Errorf("%s %q → %s: code %q; want no_equivalence", tc.scheme, tc.marking, tc.to, r.Code())
		}
		if got := r.Explain(l, tc.to, now); !strings.Contains(got, tc.explain) {
			t.Errorf("%s %q → %s: explanation %q; want it to say %q", tc.scheme, tc.marking, tc.to, got, tc.explain)
		}
	}
}

// An entry is in force only within its validity and until withdrawn.
func TestInForce(t *testing.T) {
	e := equiv.Entry{From: marking.GBR, To: marking.US, Version: 2, Agreement: "test",
		ValidFrom: now.AddDate(0, -1, 0), ValidUntil: now.AddDate(0, 1, 0),
		Levels: []equiv.Mapping{{From: "SECRET", To: "SECRET"}}}
	l := mustLabel(t, marking.GBR, "UK SECRET")
	for _, tc := range []struct {
		name    string
		mutate  func(*equiv.Entry)
		at      time.Time
		kind    equiv.Kind
		explain string
	}{
		{"in force", func(*equiv.Entry) {}, now, equiv.Mapped, "through GBR→US v2 (test)"},
		{"expired", func(*equiv.Entry) {}, now.AddDate(0, 2, 0), equiv.NotInForce, "expired on"},
		{"not yet valid", func(*equiv.Entry) {}, now.AddDate(0, -2, 0), equiv.NotInForce, "in force from"},
		{"withdrawn", func(e *equiv.Entry) { e.Withdrawn = true }, now, equiv.NotInForce, "withdrawn"},
	} {
		e := e
		tc.mutate(&e)
		tab, err := equiv.NewTable([]equiv.Entry{e})
		if err != nil {
			t.Fatal(err)
		}
		r := tab.Map(marking.Parser{}, l, marking.US, tc.at)
		if r.Kind != tc.kind || !strings.Contains(r.Explain(l, marking.US, tc.at), tc.explain) {
			t.Errorf("%s: %v %q; want %v saying %q", tc.name, r.Kind, r.Explain(l, marking.US, tc.at), tc.kind, tc.explain)
		}
	}
}

func TestValidate(t *testing.T) {
	good := func() equiv.Entry {
		return equiv.Entry{From: marking.GBR, To: marking.US, Version: 1, Agreement: "a",
			Levels: []equiv.Mapping{{From: "SECRET", To: "SECRET"}}}
	}
	if err := func() *equiv.Entry { e := good(); return &e }().Validate(marking.Parser{}); err != nil {
		t.Fatalf("a good entry: %v", err)
	}
	for _, tc := range []struct {
		mutate func(*equiv.Entry)
		want   string
	}{
		{func(e *equiv.Entry) { e.To = marking.GBR }, "a scheme needs no equivalence with itself"},
		{func(e *equiv.Entry) { e.From = "XYZ" }, `from: unknown scheme "XYZ"`},
		{func(e *equiv.Entry) { e.Agreement = "" }, "agreement: required"},
		{func(e *equiv.Entry) { e.Version = 0 }, "version: 0"},
		{func(e *equiv.Entry) { e.Levels[0].From = "CONFIDENTIAL" }, `levels[0].from: "CONFIDENTIAL" is not a level of GBR`},
		{func(e *equiv.Entry) { e.Levels[0].To = "RESTRICTED" }, `levels[0].to: "RESTRICTED" is not a level of US`},
		{func(e *equiv.Entry) { e.Levels[0].None = true }, "none and to"},
		{func(e *equiv.Entry) { e.Levels[0].To = "" }, "to is required"},
		{func(e *equiv.Entry) { e.Levels = append(e.Levels, e.Levels[0]) }, "SECRET is mapped twice"},
		{func(e *equiv.Entry) { e.ValidFrom, e.ValidUntil = now, now.AddDate(0, 0, -1) }, "is not after valid_from"},
		{func(e *equiv.Entry) { e.Levels = nil }, "levels: at least one row"},
	} {
		e := good()
		tc.mutate(&e)
		err := e.Validate(marking.Parser{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate: %v; want an error saying %q", err, tc.want)
		}
	}
	if _, err := equiv.NewTable([]equiv.Entry{good(), good()}); err == nil {
		t.Error("two entries for one pair were accepted")
	}
}

// Adding an entry never takes a mapping away from another pair, and a
// table answers only for the exact pair asked (no inversion, no chain):
// for every scheme pair and level, the default table maps only where an
// entry from that pair says so.
func TestOnlyTheExactPairAnswers(t *testing.T) {
	tab := defaultTable(t)
	for _, from := range marking.Schemes() {
		for _, to := range marking.Schemes() {
			_, has := tab.Entry(equiv.Key{From: from, To: to})
			for _, lv := range marking.Levels(from) {
				l := mustLabel(t, from, marking.Label{Scheme: from, Level: lv, AnyNation: true}.String())
				r := tab.Map(marking.Parser{}, l, to, now)
				if from != to && !has && r.Kind != equiv.NoEntry {
					t.Errorf("%s %s → %s: %v with no %s→%s entry", from, lv.Name, to, r.Kind, from, to)
				}
				if from == to && r.Kind != equiv.Same {
					t.Errorf("%s %s → itself: %v", from, lv.Name, r.Kind)
				}
			}
		}
	}
}

// Kenya's levels are configuration: the default entries keep only the
// rows from Kenyan levels in use, and drop the KEN entry left with none.
func TestDefaultFollowsKenyaLevels(t *testing.T) {
	t.Cleanup(func() {
		if err := marking.ConfigureKenya(marking.DefaultKenyaLevels()); err != nil {
			t.Fatal(err)
		}
	})
	kenUS := func() (equiv.Entry, bool) {
		for _, e := range equiv.Default() {
			if e.From == marking.KEN && e.To == marking.US {
				return e, true
			}
		}
		return equiv.Entry{}, false
	}
	if err := marking.ConfigureKenya(marking.KenyaLevels{Levels: []string{"CONFIDENTIAL", "SIRI"}}); err != nil {
		t.Fatal(err)
	}
	e, ok := kenUS()
	if !ok || len(e.Levels) != 1 || e.Levels[0].From != "CONFIDENTIAL" || !e.Levels[0].None {
		t.Errorf("KEN→US with levels CONFIDENTIAL, SIRI = %+v, %v; want the CONFIDENTIAL none row only", e, ok)
	}
	if err := marking.ConfigureKenya(marking.KenyaLevels{Levels: []string{"SIRI"}}); err != nil {
		t.Fatal(err)
	}
	if e, ok := kenUS(); ok {
		t.Errorf("KEN→US with levels SIRI = %+v; want no entry (no equivalence, as its rows said)", e)
	}
}
