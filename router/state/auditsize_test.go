package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/label"
)

// long is s padded with fill to n bytes.
func long(s string, n int, fill string) string {
	return s + strings.Repeat(fill, n-len(s))
}

// worstBanner is a banner of at most router.MaxBannerLen bytes (the
// parser's input bound) whose canonical form is as long as legal input
// makes it (within the same bound): SAP programs with 60-character names (each a control a
// region can list), releasable to every country with the tetragraphs
// written short, and DISPLAY ONLY them too, expanded in the canonical
// form. It returns the banner, its controls, and a ceiling of the same
// controls that dominates it (NOFORN: fewer nations dominate more) and
// whose canonical form is within the bound, as a stored tenant's must be.
func worstBanner(tb testing.TB) (banner string, controls []string, ceiling string) {
	tb.Helper()
	inTetra := map[string]bool{}
	for _, t := range []string{"USA, NATO", "USA, FVEY"} {
		l, err := label.Parse("SECRET//REL TO " + t)
		if err != nil {
			tb.Fatal(err)
		}
		for _, n := range l.Nations {
			inTetra[n] = true
		}
	}
	rel := []string{"USA", "ACGU", "FVEY", "NATO", "TEYE"}
	for _, c := range allCountries() {
		if !inTetra[c] {
			rel = append(rel, c)
		}
	}
	dissem := "//REL TO " + strings.Join(rel, ", ") + "/DISPLAY ONLY ACGU, FVEY, NATO, TEYE"
	// The canonical form, which is what is stored, must be within the
	// bound too (router.ValidateWorkload): add programs while both are.
	var progs []string
	for i := 0; ; i++ {
		p := long(fmt.Sprintf("P%03d", i), 60, "X")
		b := "SECRET//SAR-" + strings.Join(append(progs, p), "/") + dissem
		if len(b) > router.MaxBannerLen {
			break
		}
		if l, err := label.Parse(b); err != nil || len(l.String()) > router.MaxBannerLen {
			break
		}
		progs = append(progs, p)
	}
	banner = "SECRET//SAR-" + strings.Join(progs, "/") + dissem
	l, err := label.Parse(banner)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("worst banner: %d bytes in, %d canonical, %d controls", len(banner), len(l.String()), len(l.Controls))
	return banner, l.Controls, "SECRET//SAR-" + strings.Join(progs, "/") + "//NOFORN"
}

// TestAuditEntrySize builds the largest legal Place, refusal and
// release and checks what etcd stores for each: the audit entries within
// MaxAuditEntryBytes (a refusal's region verdicts past the reasons'
// bound counted, not stored), the placement record within 64 KiB.
func TestAuditEntrySize(t *testing.T) {
	banner, controls, ceiling := worstBanner(t)
	prov := long("p", 63, "x")
	tn := army()
	tn.ID = long("t", 63, "x")
	tn.Ceiling = ceiling
	name := long("u", 128, "x")
	tn.Members = []router.TenantMember{{Name: name, Roles: []authz.Role{authz.RoleSubmitter}}}
	var caps, provs []string
	for i := range router.MaxShortListLen {
		caps = append(caps, long(fmt.Sprintf("c%03d", i), 63, "x"))
		provs = append(provs, long(fmt.Sprintf("p%03d", i), 63, "x"))
	}
	var regions []router.Region
	for i := range router.MaxReplicas {
		r := secretRegion(prov, long(fmt.Sprintf("r%02d", i), 63, "x"), unit)
		r.Accreditation.Controls = controls
		r.Capabilities = caps
		regions = append(regions, r)
	}
	// Many more regions that refuse: a refusal names each.
	const refusing = 150
	for i := range refusing {
		regions = append(regions, secretRegion(prov, long(fmt.Sprintf("z%03d", i), 63, "x"), unit))
	}
	e := newEnv(t, nil)
	e.seed([]router.Provider{provider(prov)}, regions, []router.Tenant{tn})

	td := long("td", 255, "x")
	user := authz.NewContext(context.Background(), &authz.Principal{
		ID: "spiffe://" + td + "/tenant/" + tn.ID + "/user/" + name, Kind: authz.KindTenant, Tenant: tn.ID, Name: name})
	all := allCountries()
	// Within router.MaxWorkloadBytes: the longest banner and every
	// country leave room for a few capabilities and providers.
	w := &router.Workload{
		Name: long("w", 128, "x"), Tenant: tn.ID, Banner: banner,
		AllowedCountries: all, AllowedJurisdictions: all, Capabilities: caps[:4],
		Resources: unit, Replicas: router.MaxReplicas,
		Preferences: router.Preferences{Providers: provs[:4]},
	}
	if err := router.ValidateWorkload(w, "US"); err != nil {
		t.Fatal(err)
	}
	reqID := long("req-", 128, "x")
	if _, err := e.store.Place(user, reqID, w); err != nil {
		t.Fatal(err)
	}
	// The regions are full now: the same workload again is refused by
	// every region.
	_, refusal := e.store.Place(user, long("again-", 128, "x"), w)
	var re *router.RefusalError
	if !errors.As(refusal, &re) {
		t.Fatalf("second Place: %v; want a refusal", refusal)
	}
	if _, err := e.store.Release(context.Background(), tn.ID, reqID); err != nil {
		t.Fatal(err)
	}

	resp, err := e.other.Get(context.Background(), e.prefix+"placements/"+tn.ID+"/"+reqID)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("placement record: %v, %d", err, len(resp.Kvs))
	}
	t.Logf("placement record: %d bytes", len(resp.Kvs[0].Value))
	if n := len(resp.Kvs[0].Value); n > 64<<10 {
		t.Errorf("placement record of %d bytes; want at most 64 KiB", n)
	}
	resp, err = e.other.Get(context.Background(), e.prefix+"audit/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		var a audit.Entry
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.RequestID == "" {
			continue // the catalogue's
		}
		seen[a.Op] = true
		t.Logf("%s entry: %d bytes, %d reasons stored, %d omitted", a.Op, len(kv.Value), len(a.Reasons), a.ReasonsOmitted)
		if len(kv.Value) > audit.MaxEntryBytes {
			t.Errorf("%s entry of %d bytes; want at most %d", a.Op, len(kv.Value), audit.MaxEntryBytes)
		}
		if a.Label != w.Banner {
			t.Errorf("%s entry's label %q; want the canonical banner", a.Op, a.Label)
		}
		if a.Op != audit.OpRefuse {
			continue
		}
		var verdicts []string
		for _, v := range re.Regions {
			if len(v.Reasons) > 0 {
				verdicts = append(verdicts, v.Key)
			}
		}
		if len(verdicts) != refusing+router.MaxReplicas || a.ReasonsOmitted == 0 ||
			len(a.Reasons)-1+a.ReasonsOmitted != len(verdicts) || a.Reasons[0] != re.Err.Error() {
			t.Errorf("refusal: %d reasons stored, %d omitted, for %d region verdicts; want the summary, then the verdicts up to the bound, the rest counted",
				len(a.Reasons), a.ReasonsOmitted, len(verdicts))
		}
		for i, r := range a.Reasons[1:] {
			if !strings.HasPrefix(r, verdicts[i]+": ") {
				t.Errorf("reason %d %q; want region %s's verdict", i+1, r, verdicts[i])
				break
			}
		}
	}
	if !seen[audit.OpPlace] || !seen[audit.OpRefuse] || !seen[audit.OpRelease] {
		t.Errorf("entries %v; want a place, a refusal and a release", seen)
	}
}

// TestAuditEntryBound checks the bound on entries Place does not make
// here: a release while every replica moves names twice MaxReplicas
// regions, and fits; an entry over the bound is refused, not written.
func TestAuditEntryBound(t *testing.T) {
	banner, _, _ := worstBanner(t)
	l, err := label.Parse(banner)
	if err != nil {
		t.Fatal(err)
	}
	var regions []string
	for i := range 2 * router.MaxReplicas {
		regions = append(regions, long(fmt.Sprintf("%02d", i), 63, "p")+"/"+long("r", 63, "x"))
	}
	release := audit.Entry{
		Time: time.Now(), Op: audit.OpRelease, Actor: "spiffe://" + long("td", 255, "x") + "/tenant/" + long("t", 63, "x") + "/user/" + long("u", 128, "x"),
		RequestID: long("r", 128, "x"), Tenant: long("t", 63, "x"), Workload: long("w", 128, "x"), Label: l.String(),
		Regions: regions, Revision: 1 << 40,
	}
	b, err := audit.Encode(release)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release of %d regions: %d bytes", len(regions), len(b))
	if len(b) > audit.MaxEntryBytes {
		t.Errorf("%d bytes", len(b))
	}

	over := release
	over.Label = strings.Repeat("X", audit.MaxEntryBytes)
	if _, err := audit.Encode(over); err == nil || !strings.Contains(err.Error(), "over the bound") {
		t.Errorf("an entry over the bound: %v; want refused", err)
	}
	// A reason too long is clipped, and says so.
	one := audit.Entry{Op: audit.OpRefuse, Reasons: []string{strings.Repeat("y", 10000)}}
	if b, err := audit.Encode(one); err != nil || len(b) > 1024 || !strings.Contains(string(b), "bytes clipped") {
		t.Errorf("a long reason: %d bytes, %v; want it clipped", len(b), err)
	}
}
