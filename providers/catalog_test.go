package providers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/classroute/classroute/router"
)

func mustDefault(tb testing.TB) *Catalog {
	tb.Helper()
	c, err := Default()
	if err != nil {
		tb.Fatalf("Default: %v", err)
	}
	return c
}

func regionByKey(tb testing.TB, c *Catalog, key string) *router.Region {
	tb.Helper()
	for i := range c.Regions {
		if c.Regions[i].Key() == key {
			return &c.Regions[i]
		}
	}
	tb.Fatalf("region %s not in the catalogue", key)
	return nil
}

func TestDefault(t *testing.T) {
	c := mustDefault(t)
	perProvider := map[string]int{}
	for _, r := range c.Regions {
		perProvider[r.Provider]++
	}
	for _, p := range c.Providers {
		if perProvider[p.ID] == 0 {
			t.Errorf("provider %s has no region", p.ID)
		}
	}
	for _, id := range []string{"aws", "azure", "google", "oracle", "huawei", "ke-gov"} {
		if perProvider[id] == 0 {
			t.Errorf("no region of provider %s", id)
		}
	}
	tenants := map[string]router.Tenant{}
	for _, tn := range c.Tenants {
		tenants[tn.ID] = tn
	}
	for _, id := range []string{"ke-moh", "us-dod", "us-ic", "aus-defence", "gbr-mod", "nld-mod", "pol-mod"} {
		if _, ok := tenants[id]; !ok {
			t.Errorf("tenant %s missing", id)
		}
	}
}

// TestDefaultKenya: the in-country national data centre is the only
// region in Kenya, and it is Kenyan through and through.
func TestDefaultKenya(t *testing.T) {
	c := mustDefault(t)
	r := regionByKey(t, c, "ke-gov/konza-1")
	if r.Country != "KEN" || r.OperatorJurisdiction != "KEN" || strings.Join(r.OperatorNationalities, ",") != "KEN" ||
		strings.Join(r.Customers, ",") != "KEN" || !r.Illustrative {
		t.Errorf("konza-1 = %+v; want a Kenyan, Kenyan-operated, Kenya-only, illustrative region", r)
	}
	for _, tier := range []string{"online", "nearline"} {
		if !contains(r.StorageTiers, tier) {
			t.Errorf("konza-1 lacks storage tier %s", tier)
		}
	}
	for _, o := range c.Regions {
		if o.Country == "KEN" && o.Key() != r.Key() {
			t.Errorf("%s is in Kenya; no hyperscale region exists there today", o.Key())
		}
	}
}

// TestDefaultIllustrative: nothing that rests on an uncertain ([U]) fact
// is shipped as if it were true.
func TestDefaultIllustrative(t *testing.T) {
	c := mustDefault(t)
	for _, r := range c.Regions {
		if r.Notes == "" {
			t.Errorf("%s: no notes citing where its facts come from", r.Key())
		}
		if strings.Contains(r.Notes, "[U]") && !r.Illustrative {
			t.Errorf("%s: notes cite a [U] fact but the entry is not illustrative", r.Key())
		}
	}
	for _, key := range []string{
		"aws/us-isob-east-1", "aws/us-isob-west-1", "aws/us-iso-east-1", "aws/us-iso-west-1",
		"aws/ap-tsc-au-1", "aws/uk-classified-1",
		"azure/usseceast", "azure/ussecwest", "azure/usnateast", "azure/usnatwest",
		"google/gdc-airgapped-us", "oracle/us-nsr-east-1", "oracle/uk-gov-london-1",
		"huawei/af-south-1", "ke-gov/konza-1",
	} {
		if !regionByKey(t, c, key).Illustrative {
			t.Errorf("%s rests on a [U] or invented fact and must be illustrative", key)
		}
	}
}

// TestDefaultScenarioData checks the properties of the default data that
// the seed scenarios rely on.
func TestDefaultScenarioData(t *testing.T) {
	c := mustDefault(t)
	for _, key := range []string{"aws/us-isob-west-1", "oracle/us-gov-chicago-1"} {
		if contains(regionByKey(t, c, key).StorageTiers, "nearline") {
			t.Errorf("%s offers nearline; the storage-tier scenario needs it not to", key)
		}
	}
	if r := regionByKey(t, c, "azure/southafricanorth"); r.Country != "ZAF" || !contains(r.Customers, "*") {
		t.Errorf("southafricanorth = %+v; want a commercial region in ZAF serving anyone", r)
	}
	if r := regionByKey(t, c, "huawei/af-south-1"); r.OperatorJurisdiction != "CHN" || r.Country != "ZAF" {
		t.Errorf("huawei/af-south-1 jurisdiction %s, country %s; want CHN, ZAF", r.OperatorJurisdiction, r.Country)
	}
	// US TS//SI/TK: at least two US-operated TS regions accredited for SI
	// and TK per provider that has them.
	ts := map[string]int{}
	for _, r := range c.Regions {
		if r.Accreditation.MaxLevel.String() == "TOP SECRET" && contains(r.Accreditation.Controls, "SI") &&
			contains(r.Accreditation.Controls, "TK") && strings.Join(r.OperatorNationalities, ",") == "USA" {
			ts[r.Provider]++
		}
	}
	if ts["aws"] < 2 || ts["azure"] < 2 {
		t.Errorf("US TS regions accredited for SI and TK per provider: %v; want two each for aws and azure", ts)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLoadGood(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) != 1 || len(c.Regions) != 1 || len(c.Tenants) != 1 {
		t.Errorf("got %d providers, %d regions, %d tenants; want 1 each", len(c.Providers), len(c.Regions), len(c.Tenants))
	}
	if got := c.Regions[0].Accreditation.Expires.Format("2006-01-02T15:04:05Z07:00"); got != "2028-01-01T00:00:00Z" {
		t.Errorf("expires = %s; want 2028-01-01T00:00:00Z", got)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "no-such-file.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v; want an error wrapping os.ErrNotExist", err)
	}
}

// TestLoadBad loads each bad catalogue in testdata and checks that the
// error names the entry and the field at fault.
func TestLoadBad(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // each a line of the error, without its "(line N)"
	}{
		{"unknown-field.yaml", []string{"regions[1] (aws/us-iso-east-1): region.colour: unknown field"}},
		{"unknown-section.yaml", []string{"zones: unknown field (want providers, regions, tenants)"}},
		{"duplicate-region.yaml", []string{"regions[2] (aws/us-isob-east-1): region.id: duplicate region aws/us-isob-east-1 (first at regions[0])"}},
		{"unknown-provider.yaml", []string{`regions[1] (oracle/us-nsr-east-1): region.provider: unknown provider "oracle"`}},
		{"missing-expiry.yaml", []string{"regions[1] (aws/us-iso-east-1): region.accreditation.expires: required"}},
		{"bad-expiry.yaml", []string{`regions[0] (aws/us-isob-east-1): region.accreditation.expires: want an RFC 3339 date-time`}},
		{"bad-country.yaml", []string{`regions[1] (aws/us-iso-east-1): region.country: "Kenya" is not an ISO 3166 alpha-3 country code`}},
		{"bad-enum.yaml", []string{`regions[0] (aws/us-isob-east-1): region.personnel: unknown personnel "cleared-cosmic"`}},
		{"many-problems.yaml", []string{
			"regions[0] (aws/us-isob-east-1): region.accreditation.max_level: SECRET exceeds what network domain internet may carry",
			"regions[0] (aws/us-isob-east-1): region.location.lat: must be between -90 and 90",
			`regions[1] (aws/bad_id): region.id: "bad_id"`,
			"regions[1] (aws/bad_id): region.cost: must be a finite number >= 0",
			"regions[2] (aws/us-iso-east-1): region.customers: required",
			`regions[3] (aws/us-iso-west-1): region.status: unknown status "asleep"`,
			`tenants[0] (us-dod): tenant.sector: unknown sector "navy"`,
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("got a catalogue of %d regions; want an error", len(c.Regions))
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %T %v; want *Error", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("got %d problems; want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, want := range tc.want {
				want = path + ": " + want
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, want)
				}
				if !found {
					t.Errorf("no line starts %q in:\n%v", want, err)
				}
			}
			for _, p := range ce.Problems {
				if p.Line == 0 {
					t.Errorf("problem %+v has no line", p)
				}
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	const region = `
providers: [{id: aws, name: AWS, jurisdiction: USA}]
regions:
  - provider: aws
    id: r1
    country: USA
    operator_jurisdiction: USA
    operator_nationalities: [USA]
    accreditation: {max_level: UNCLASSIFIED, expires: 2028-01-01T00:00:00Z}
    customers: ["*"]
    location: {lat: 1, lon: 1}
`
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "src: empty; want a mapping"},
		{"syntax", "providers: [", "src: yaml: line 1"},
		{"not a mapping", "- a\n- b\n", "src: want a mapping with providers, regions and tenants"},
		{"two documents", region + "---\nregions: []\n", "src: want one YAML document"},
		{"section not a list", "regions: {a: 1}\n", "src: regions: want a list"},
		{"repeated section", "tenants: []\ntenants: []\n", "src: tenants: repeated key"},
		{"repeated key", region + "    cost: 1\n    cost: 2\n", "src: regions[0] (aws/r1): region.cost: repeated key"},
		{"alias", strings.Replace(region, "[USA]\n", "&ops [USA]\n", 1) + "    capabilities: *ops\n",
			"src: regions[0] (aws/r1): region.capabilities: YAML aliases are not allowed"},
		{"merge key", region + "    <<: {cost: 1}\n", "src: regions[0] (aws/r1): region.<<: unknown field"},
		{"fractional integer", region + "    capacity: {gpu: 1.5}\n", "src: regions[0] (aws/r1): region.capacity.gpu: want a whole number"},
		{"string for integer", region + "    capacity: {gpu: lots}\n", "src: regions[0] (aws/r1): region.capacity.gpu: cannot unmarshal !!str `lots` into int64"},
		{"list for scalar", region + "    cost: [1]\n", "src: regions[0] (aws/r1): region.cost: want a single value"},
		{"scalar for list", region + "    capabilities: gpu\n", "src: regions[0] (aws/r1): region.capabilities: want a list"},
		{"scalar for mapping", region + "    capacity: 7\n", "src: regions[0] (aws/r1): region.capacity: want a mapping"},
		{"level", strings.Replace(region, "UNCLASSIFIED", "COSMIC", 1), `src: regions[0] (aws/r1): region.accreditation.max_level: unknown level "COSMIC"`},
		{"bad status", region + "    status: sleeping\n", `src: regions[0] (aws/r1): region.status: unknown status "sleeping"`},
		{"unknown section", region + "zones: []\n", "src: zones: unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), "src")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestParseKeepsGoing: a broken entry does not hide the problems of the others.
func TestParseKeepsGoing(t *testing.T) {
	data := `
providers:
  - {id: aws, name: AWS, jurisdiction: USA, colour: red}
  - {id: Bad, name: B, jurisdiction: USA}
tenants:
  - {id: t1, name: T, nation: usa, sector: civil, ceiling: "TOP SECRET//SI/TK//SP-CTI/SP-EXPT//NOFORN"}
  - {id: t1, name: T, nation: USA, sector: civil, ceiling: "TOP SECRET//SI/TK//SP-CTI/SP-EXPT//NOFORN"}
  - {id: t1, name: T, nation: USA, sector: civil, ceiling: "TOP SECRET//SI/TK//SP-CTI/SP-EXPT//NOFORN"}
`
	_, err := Parse([]byte(data), "src")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v; want *Error", err)
	}
	want := []string{
		"src: providers[0] (aws): provider.colour: unknown field (line 3)",
		`src: providers[1] (Bad): provider.id: "Bad": only lowercase letters, digits and '-' are allowed (line 4)`,
		`src: tenants[0] (t1): tenant.nation: "usa" is not an ISO 3166 alpha-3 country code (line 6)`,
		"src: tenants[2] (t1): tenant.id: duplicate tenant t1 (first at tenants[1]) (line 8)",
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add(defaultCatalog)
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("regions: [{provider: a, id: b, accreditation: &x {max_level: SECRET}, location: *x}]"))
	f.Add([]byte("providers: [~, [], {}, {id: *a}]\ntenants: ~\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz")
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("got %T %v; want *Error with problems", err, err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil catalogue and nil error")
		}
		for i := range c.Regions {
			if err := router.ValidateRegion(&c.Regions[i]); err != nil {
				t.Fatalf("accepted an invalid region: %v", err)
			}
		}
	})
}
