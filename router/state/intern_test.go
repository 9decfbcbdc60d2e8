package state

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/label"
)

// internBanners are banners of the benchmark's shapes and more.
var internBanners = []string{
	"UNCLASSIFIED",
	"CUI",
	"SECRET//NOFORN",
	"TOP SECRET//SI/TK//NOFORN",
	"SECRET//REL TO USA, AUS, GBR",
	"SECRET//REL TO USA, FVEY",
	"TOP SECRET//HCS-P/SI-G ABCD//ORCON/NOFORN",
}

func internRecord(tb testing.TB, i int) []byte {
	tb.Helper()
	banner := internBanners[i%len(internBanners)]
	p := router.Placement{
		ID:     fmt.Sprintf("req-%d", i),
		Tenant: "us-army",
		Workload: router.Workload{
			Name: "analytics", Tenant: "us-army", Banner: banner,
			AllowedCountries: []string{"USA", "GBR"}, Capabilities: []string{"gpu"},
			Resources: router.Resources{MilliCPU: 10, MemoryMiB: 16}, Replicas: 2,
			Preferences: router.Preferences{Providers: []string{"aws"}},
		},
		Regions:   []string{"aws/us-east-1", "azure/usgovvirginia"},
		Scores:    []float64{0.9, 0.5},
		Retiring:  []router.Retiring{{Region: "aws/us-west-2", MovedTo: "aws/us-east-1", Since: time.Unix(1, 0).UTC()}},
		Issues:    []router.Issue{{Region: "azure/usgovvirginia", Since: time.Unix(2, 0).UTC()}},
		DecidedAt: 42,
		CreatedAt: time.Unix(3, 0).UTC(),
	}
	b, err := json.Marshal(&p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestInternSameDecisions decodes records with interning and without
// (a plain decode and a parse of each banner) and checks that the
// placements are equal, so that every decision on them is the same, and
// that the interned ones share their strings, lists and labels.
func TestInternSameDecisions(t *testing.T) {
	var got []*router.Placement
	for i := range 2 * len(internBanners) {
		val := internRecord(t, i)
		p, err := decodePlacement(val)
		if err != nil {
			t.Fatal(err)
		}
		var want router.Placement
		if err := json.Unmarshal(val, &want); err != nil {
			t.Fatal(err)
		}
		if want.Workload.Label, err = label.Parse(want.Workload.Banner); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, &want) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, p, &want)
		}
		got = append(got, p)
	}
	a, b := got[0], got[len(internBanners)] // same banner, decoded apart
	for _, c := range []struct {
		what string
		x, y string
	}{
		{"tenant", a.Tenant, b.Tenant},
		{"workload tenant", a.Tenant, b.Workload.Tenant},
		{"region", a.Regions[0], b.Regions[0]},
		{"retiring region", a.Retiring[0].MovedTo, b.Regions[0]},
		{"issue region", a.Issues[0].Region, b.Regions[1]},
		{"workload name", a.Workload.Name, b.Workload.Name},
		{"banner", a.Workload.Banner, b.Workload.Banner},
	} {
		if unsafe.StringData(c.x) != unsafe.StringData(c.y) {
			t.Errorf("%s %q is not shared", c.what, c.x)
		}
	}
	if &a.Workload.AllowedCountries[0] != &b.Workload.AllowedCountries[0] {
		t.Error("allowed countries are not shared")
	}
	if &a.Regions[0] == &b.Regions[0] {
		t.Error("regions slices are shared; each placement must own its own")
	}
	x, y := got[1].Workload.Label, got[1+len(internBanners)].Workload.Label // CUI: controls
	if len(x.Nations) == 0 && len(x.Controls) == 0 {
		x, y = got[2].Workload.Label, got[2+len(internBanners)].Workload.Label
	}
	if len(x.Nations) > 0 && &x.Nations[0] != &y.Nations[0] {
		t.Error("the label is parsed again for the same banner")
	}
}

// TestInternedCopy checks that a placement this store wrote is cached as
// an equal copy with shared strings and the banner's label, and is left
// as it was.
func TestInternedCopy(t *testing.T) {
	p, err := decodePlacement(internRecord(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	orig := *p
	orig.Regions = []string{string([]byte(p.Regions[0])), string([]byte(p.Regions[1]))}
	p.Regions = orig.Regions
	c := internedCopy(p)
	if !reflect.DeepEqual(c, p) {
		t.Fatalf("copy differs:\n got %+v\nwant %+v", c, p)
	}
	if unsafe.StringData(p.Regions[0]) != unsafe.StringData(orig.Regions[0]) {
		t.Error("the original was changed")
	}
	if unsafe.StringData(c.Regions[0]) != unsafe.StringData(intern.str(c.Regions[0])) {
		t.Error("the copy's region is not interned")
	}
}

// TestInternBounded checks that a table past its bound starts again
// instead of growing.
func TestInternBounded(t *testing.T) {
	tab := newInterned[string](4)
	for i := range 100 {
		tab.get(fmt.Sprint(i), func(s string) string { return s })
	}
	n := 0
	tab.cur.Load().m.Range(func(any, any) bool { n++; return true })
	if n >= 4 {
		t.Errorf("table holds %d values; want fewer than its bound 4", n)
	}
	if got := tab.get("x", func(s string) string { return s + "!" }); got != "x!" {
		t.Errorf("get = %q", got)
	}
}
