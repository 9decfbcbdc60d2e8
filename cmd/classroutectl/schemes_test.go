package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Every scenario of DOMAIN.md §6.5, end to end: the built daemon with its
// default catalogue and equivalence table, driven by the built CLI with
// the example specs. Each is planned (which regions are eligible, through
// what, and why the others are refused) and placed (where it lands).
func TestSchemeScenarios(t *testing.T) {
	e := start(t)
	type refusal struct{ region, code string }
	for _, tc := range []struct {
		spec     string
		scheme   string
		eligible []string
		via      map[string]string // region → what its via says
		refused  []refusal
	}{
		{"scheme-uk-secret.yaml", "GBR", []string{"aws/uk-classified-1"},
			map[string]string{"aws/uk-classified-1": "GBR SECRET accreditation"},
			[]refusal{{"azure/uksouth", "level"}, {"azure/usseceast", "customer"}, {"aws/ap-tsc-au-1", "releasability"}}},
		{"scheme-uk-eyes-only.yaml", "GBR", []string{"aws/uk-classified-1"}, nil,
			[]refusal{{"aws/ap-tsc-au-1", "releasability"}, {"azure/usseceast", "customer"}}},
		{"scheme-aus-protected.yaml", "AUS", []string{"aws/ap-tsc-au-1", "azure/australiacentral", "azure/australiacentral2"},
			map[string]string{"azure/australiacentral": "AUS PROTECTED accreditation (Australian Department of Defence"},
			[]refusal{{"azure/uksouth", "no_equivalence"}, {"aws/ap-southeast-2", "no_equivalence"}}},

		{"scheme-aus-rel.yaml", "AUS", []string{"aws/ap-tsc-au-1", "aws/uk-classified-1"},
			map[string]string{"aws/uk-classified-1": "through AUS→US v1"},
			[]refusal{{"azure/usseceast", "customer"}}},
		{"scheme-kenya-confidential.yaml", "KEN", []string{"ke-gov/konza-1"}, nil,
			[]refusal{{"azure/southafricanorth", "no_equivalence"}, {"azure/southafricanorth", "residency"}, {"aws/us-east-1", "no_equivalence"}}},
		{"scheme-nato-restricted.yaml", "NATO", []string{"aws/eusc-de-east-1", "aws/uk-classified-1"},
			map[string]string{"aws/eusc-de-east-1": "NATO RESTRICTED accreditation"},
			[]refusal{{"aws/ap-tsc-au-1", "releasability"}, {"azure/uksouth", "level"}}},
		{"scheme-uk-official-sensitive.yaml", "GBR",
			[]string{"aws/eu-west-2", "azure/uksouth", "azure/ukwest", "google/europe-west2", "oracle/uk-gov-london-1"}, nil,
			[]refusal{{"aws/us-east-1", "no_equivalence"}, {"aws/eusc-de-east-1", "no_equivalence"}}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			spec := "examples/" + tc.spec
			var plan pb.PlanResponse
			e.OK(&plan, "plan", "-f", spec)
			if got := plan.GetLabel().GetScheme(); got != tc.scheme {
				t.Errorf("label %v; want scheme %s", plan.GetLabel(), tc.scheme)
			}
			verdicts := map[string]*pb.RegionVerdict{}
			var eligible []string
			for _, v := range plan.GetRegions() {
				verdicts[v.GetRegion()] = v
				if v.GetEligible() {
					eligible = append(eligible, v.GetRegion())
				}
			}
			slices.Sort(eligible)
			if !slices.Equal(eligible, tc.eligible) {
				t.Errorf("eligible %v; want %v", eligible, tc.eligible)
			}
			for region, via := range tc.via {
				if got := verdicts[region].GetVia(); !strings.Contains(got, via) {
					t.Errorf("%s via %q; want it to say %q", region, got, via)
				}
			}
			for _, r := range tc.refused {
				v := verdicts[r.region]
				if v == nil || v.GetEligible() || !slices.ContainsFunc(v.GetReasons(), func(x *pb.Reason) bool { return x.GetCode() == r.code }) {
					t.Errorf("%s = %v; want refused for %s", r.region, v, r.code)
				}
			}
			// A reason read through schemes names the label's scheme and
			// the pairs it was read through.
			for _, r := range tc.refused {
				for _, x := range verdicts[r.region].GetReasons() {
					if x.GetCode() == "no_equivalence" && (x.GetScheme() != tc.scheme || len(x.GetEquivalence()) == 0) {
						t.Errorf("%s: reason %v; want scheme %s and the equivalence pairs", r.region, x, tc.scheme)
					}
				}
			}
			p := e.Place(spec, "--request-id", strings.TrimSuffix(tc.spec, ".yaml"))
			if got := p.GetLabel().GetScheme(); got != tc.scheme {
				t.Errorf("placement label %v; want scheme %s", p.GetLabel(), tc.scheme)
			}
			for _, a := range p.GetAssignments() {
				if !slices.Contains(tc.eligible, a.GetRegion()) {
					t.Errorf("placed on %s; want one of %v", a.GetRegion(), tc.eligible)
				}
			}
			// The text plan names the entry too.
			if r := e.Run("plan", "-f", spec); r.Code != 0 || !strings.Contains(r.Stdout, "(scheme "+tc.scheme+")") {
				t.Errorf("plan: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
			}
		})
	}
}

// A bare level word is never guessed: a tenant whose nation has no scheme
// classroute reads, and that names none, is refused naming the schemes.
func TestBareWordNeedsAScheme(t *testing.T) {
	e := start(t)
	spec := writeSpec(t, "name: fr-1\ntenant: fra-def\nlabel: CONFIDENTIAL\nallowed_storage_countries: [\"*\"]\nresources: {milli_cpu: 100, memory_mib: 128}\nreplicas: 1\n")
	tenant := writeSpec(t, "id: fra-def\nname: French defence\nnation: FRA\nsector: defense\nceiling: UNCLASSIFIED\n")
	if r := e.Run("tenant", "put", "-f", tenant); r.Code != 0 {
		t.Fatalf("tenant put: exit %d\n%s", r.Code, r.Stderr)
	}
	r := e.Run("plan", "-f", spec)
	if r.Code == 0 || !strings.Contains(r.Stderr, `"CONFIDENTIAL" is a level in schemes US, CAN, NZL, KEN: say which scheme`) ||
		!strings.Contains(r.Stderr, "workload.label") {
		t.Fatalf("plan of a bare word with no scheme: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// label check reads a marking in the scheme it names or --scheme gives,
// and prints the structured label; a bare word without --scheme is refused.
func TestLabelCheckSchemes(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"SECRET UK EYES ONLY", "--scheme", "GBR"}, 0, []string{"canonical: UK SECRET UK EYES ONLY", "scheme:    GBR", "releasable to: GBR"}},
		{[]string{"[SEC=SECRET, CAVEAT=RI:REL AUS/GBR/USA]"}, 0, []string{"scheme:    AUS", "releasable to: USA, AUS, GBR"}},
		{[]string{"CONFIDENTIAL", "--scheme", "KEN"}, 0, []string{"canonical: CONFIDENTIAL", "scheme:    KEN", "level:     CONFIDENTIAL"}},
		{[]string{"//NATO RESTRICTED"}, 0, []string{"scheme:    NATO", "level:     NATO RESTRICTED"}},
		{[]string{"PROTECTED B", "--scheme", "CAN"}, 0, []string{"level:     PROTECTED B (PROTECTED)"}},
		{[]string{"CONFIDENTIAL"}, 1, []string{"say which scheme"}},
		{[]string{"OFFICIAL UK EYES ONLY", "--scheme", "GBR"}, 1, []string{"UK EYES ONLY requires SECRET or above"}},
		{[]string{"[SEC=PROTECTED, CAVEAT=RI:REL AUS, GBR]"}, 1, []string{`EPMS REL lists are separated by "/"`}},
		{[]string{"SECRET", "--scheme", "XYZ"}, 2, []string{"unknown scheme"}},
	} {
		r := e.Run(append([]string{"label", "check"}, tc.args...)...)
		out := r.Stdout + r.Stderr
		if r.Code != tc.code {
			t.Errorf("label check %q: exit %d; want %d\n%s", tc.args, r.Code, tc.code, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("label check %q printed\n%s\nwant it to say %q", tc.args, out, w)
			}
		}
	}
}

// writeSpec writes a document to a temporary file and returns its path.
func writeSpec(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "doc.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Kenya's levels are configuration: a daemon given other levels reads
// Kenyan markings in them (and label check with the same file does too);
// with the default levels those markings are refused.
func TestKenyaLevelsConfigured(t *testing.T) {
	levels := writeSpec(t, `{"levels": ["UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SIRI", "SIRI KUU"], "illustrative": false, "source": "test"}`)
	e := start(t, "--kenya-levels", levels)
	spec := writeSpec(t, "name: memo\ntenant: ke-moh\nlabel: SIRI KUU\nallowed_storage_countries: [KEN]\nresources: {milli_cpu: 100, memory_mib: 128}\nreplicas: 1\n")
	// Read as KEN SIRI KUU: above ke-moh's KEN ceiling (CONFIDENTIAL).
	if r := e.Run("plan", "-f", spec); r.Code == 0 || !strings.Contains(r.Stderr, "above tenant ke-moh's KEN ceiling") {
		t.Fatalf("plan of SIRI KUU with the configured levels: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := e.Run("label", "check", "SIRI KUU", "--scheme", "KEN", "--kenya-levels", levels); r.Code != 0 || !strings.Contains(r.Stdout, "level:     SIRI KUU") {
		t.Fatalf("label check with the configured levels: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := e.Run("label", "check", "SIRI KUU", "--scheme", "KEN"); r.Code != 1 || !strings.Contains(r.Stderr, `unknown KEN level "SIRI KUU"`) {
		t.Fatalf("label check with the default levels: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// A Kenyan CONFIDENTIAL still goes to Konza only.
	var plan pb.PlanResponse
	e.OK(&plan, "plan", "-f", "examples/scheme-kenya-confidential.yaml")
	if !slices.Equal(plan.GetChosen(), []string{"ke-gov/konza-1"}) {
		t.Fatalf("chosen %v; want ke-gov/konza-1", plan.GetChosen())
	}
}
