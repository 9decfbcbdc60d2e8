package server_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// Callers of the leak test: a Dutch defence user (UNCLASSIFIED ceiling)
// and Kenyan health users (CUI ceiling), who may know of no TOP SECRET
// region, of no region of the hidden provider, and of no hidden tenant.
const (
	asDutch  = "/tenant/nld-mod/user/anouk"
	hidProv  = "hidprov"
	hidOther = "fra-mod"
)

// withHidden adds to a catalogue what the callers of the leak test may
// not know of: a provider whose regions serve another nation only (one
// of them CUI, one TOP SECRET), and a tenant of that nation.
func withHidden(c *providers.Catalog) {
	c.Providers = append(c.Providers, router.Provider{ID: hidProv, Name: "Hidden Cloud", Jurisdiction: "FRA"})
	var base router.Region
	for _, r := range c.Regions {
		if r.Key() == "aws/us-east-1" {
			base = r
		}
	}
	for i, lvl := range []label.Level{label.CUI, label.TopSecret, label.Unclassified} {
		r := base
		r.Provider, r.ID, r.Name = hidProv, fmt.Sprintf("fr-%d", i), "Hidden "+lvl.String()
		r.Country, r.OperatorJurisdiction, r.OperatorNationalities = "FRA", "FRA", []string{"FRA"}
		r.Accreditation.MaxLevel = lvl
		if lvl == label.TopSecret {
			r.NetworkDomain, r.Personnel = router.DomainAirGapped, router.PersonnelClearedTopSecret
		}
		r.Customers = []string{"FRA/defense"}
		c.Regions = append(c.Regions, r)
	}
	c.Tenants = append(c.Tenants, router.Tenant{ID: hidOther, Name: "French defence", Nation: "FRA", Sector: "defense", Ceiling: "UNCLASSIFIED"})
}

// hiddenActivity is what others do that the callers may not see: a
// TOP SECRET placement of us-ic, a placement of the hidden tenant on
// the hidden provider, and their releases.
func hiddenActivity(t *testing.T, e *env, round int) {
	t.Helper()
	ic := tsSITK()
	ic.Resources = &pb.Resources{MilliCpu: 4000, MemoryMib: 1024}
	if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("ic-%d", round), Workload: ic}); err != nil {
		t.Fatal(err)
	}
	fr := &pb.Workload{Name: "fr", Tenant: hidOther, Label: "UNCLASSIFIED", Scheme: "US", AllowedStorageCountries: []string{"FRA"},
		Resources: &pb.Resources{MilliCpu: 100000, MemoryMib: 1024}, Replicas: 1}
	if _, err := e.place.Place(ctx(t), &pb.PlaceRequest{RequestId: fmt.Sprintf("fr-%d", round), Workload: fr}); err != nil {
		t.Fatal(err)
	}
	if round%2 == 1 {
		for _, id := range []string{"ic", "fr"} {
			if _, err := e.place.Release(ctx(t), &pb.ReleaseRequest{Id: fmt.Sprintf("%s-%d", id, round-1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// transcript records what a caller receives, as text.
type transcript struct {
	t     *testing.T
	lines []string
}

var (
	tokenField = regexp.MustCompile(`resume_token:\s*"[^"]*"`)
	// Audit entry ids and page tokens: sealed (see sealID), so opaque,
	// but made of each daemon's random node id: comparable only for
	// presence too.
	sealedField = regexp.MustCompile(`(\bid|next_page_token):\s*"[A-Za-z0-9_-]{40,}"`)
)

func (tr *transcript) record(call string, m proto.Message, err error) {
	tr.t.Helper()
	var text string
	if err != nil {
		st, _ := status.FromError(err)
		text = "ERROR " + prototext.Format(st.Proto())
		// Details are Any-packed; unpack them so each field is compared.
		for _, d := range st.Proto().GetDetails() {
			if dm, derr := d.UnmarshalNew(); derr == nil {
				text += "\n  detail " + prototext.Format(dm)
			}
		}
	} else {
		text = prototext.Format(m)
	}
	// A token is sealed with a fresh nonce each time: only its presence
	// is comparable. That it reveals nothing is TestResumeTokens'.
	text = tokenField.ReplaceAllStringFunc(text, func(s string) string {
		if strings.HasSuffix(s, `""`) {
			return "resume_token: <none>"
		}
		return "resume_token: <token>"
	})
	text = sealedField.ReplaceAllString(text, "$1: <sealed>")
	tr.lines = append(tr.lines, call+" -> "+text)
}

// TestTenantViewUnmovedByHidden checks part 1 of issue 8: nothing a
// tenant's user may not see moves anything it can see. The same calls,
// made by a Dutch (UNCLASSIFIED) and Kenyan (CUI) users, every method
// they may call and every response field they can reach, get the same
// answers, byte for byte, from two daemons: one with the default
// catalogue, the other with a hidden provider (regions above and at
// their ceilings serving another nation only), a hidden tenant, and
// TOP SECRET and hidden-tenant placements made and released between
// every call. Only resume tokens differ (sealed with fresh nonces), and
// are compared for presence. Timestamps come from one fixed clock.
func TestTenantViewUnmovedByHidden(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	run := func(t *testing.T, hidden bool) []string {
		var mutate func(*providers.Catalog)
		if hidden {
			mutate = withHidden
		}
		e := startEnvCatalog(t, shared, false, mutate, state.WithClock(clock))
		grantMembers(t, e)
		tn, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
		if err != nil {
			t.Fatal(err)
		}
		tn.GetTenant().Members = []*pb.TenantMember{{Name: "anouk", Roles: []string{"tenant-submitter", "tenant-auditor"}}}
		// Named among its denied regions: a region it may not know of.
		tn.GetTenant().DeniedRegions = []string{"aws/us-iso-east-1", "azure/westeurope"}
		tn.GetTenant().DeniedProviders = []string{"oracle"}
		if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn.GetTenant()}); err != nil {
			t.Fatal(err)
		}
		round := 0
		other := func() {
			if hidden {
				hiddenActivity(t, e, round)
				round++
			}
		}
		tr := &transcript{t: t}
		rec := func(call string, m proto.Message, err error) {
			tr.record(call, m, err)
			other()
		}
		other()

		// The probe: a plan that fails on capacity, by country.
		for _, countries := range [][]string{{"USA"}, {"AUS"}, {"GBR"}, {"KEN"}, {"FRA"}, {"*"}} {
			w := &pb.Workload{Name: "probe", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: countries,
				Resources: &pb.Resources{MilliCpu: 800000}, Replicas: 16}
			resp, err := e.place.Plan(as(t, asDutch), &pb.PlanRequest{Workload: w})
			rec("Plan probe "+strings.Join(countries, ","), resp, err)
			_, err = e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: "probe-" + countries[0], Workload: w})
			rec("Place probe "+strings.Join(countries, ","), nil, err)
		}
		for _, cpu := range []int64{1000, 400000, 2000000, 20000000} {
			w := &pb.Workload{Name: "bisect", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
				Resources: &pb.Resources{MilliCpu: cpu}, Replicas: 1}
			resp, err := e.place.Plan(as(t, asDutch), &pb.PlanRequest{Workload: w})
			rec(fmt.Sprintf("Plan cpu %d", cpu), resp, err)
		}
		kw := kenya()
		resp1, err := e.place.Plan(as(t, asSubmitter), &pb.PlanRequest{Workload: kw})
		rec("Plan kenya", resp1, err)
		resp2, err := e.place.Plan(as(t, asSubmitter), &pb.PlanRequest{Workload: kenyaGPU()})
		rec("Plan kenya-gpu", resp2, err)
		_, err = e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "gpu-1", Workload: kenyaGPU()})
		rec("Place kenya-gpu", nil, err)
		above := kenya()
		above.Label = "SECRET//REL TO USA, KEN"
		_, err = e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "above-1", Workload: above})
		rec("Place above ceiling", nil, err)
		pr, err := e.place.Place(as(t, asSubmitter), &pb.PlaceRequest{RequestId: "k-1", Workload: kw})
		rec("Place kenya", pr, err)
		nl := &pb.Workload{Name: "nl", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
			Resources: &pb.Resources{MilliCpu: 1000}, Replicas: 2}
		pn, err := e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: "nl-1", Workload: nl})
		rec("Place nl", pn, err)
		pn, err = e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: "nl-1", Workload: nl})
		rec("Place nl again", pn, err)
		// Request ids others used (ic-0, fr-0 in the hidden world).
		for _, id := range []string{"ic-0", "fr-0", "never-used"} {
			g, err := e.place.Get(as(t, asDutch), &pb.GetRequest{Id: id})
			rec("Get "+id, g, err)
			r, err := e.place.Release(as(t, asDutch), &pb.ReleaseRequest{Id: id})
			rec("Release "+id, r, err)
		}
		g, err := e.place.Get(as(t, asDutch), &pb.GetRequest{Id: "nl-1"})
		rec("Get nl-1", g, err)
		l, err := e.place.List(as(t, asDutch), &pb.ListRequest{})
		rec("List", l, err)
		l, err = e.place.List(as(t, asDutch), &pb.ListRequest{PageSize: 1})
		rec("List page 1", l, err)
		if l.GetNextPageToken() != "" {
			l, err = e.place.List(as(t, asDutch), &pb.ListRequest{PageSize: 1, PageToken: l.GetNextPageToken()})
			rec("List page 2", l, err)
		}

		// Watch from a List's token: an own change arrives; nothing
		// else, and the first notice, arrive the same way.
		wctx, cancel := context.WithTimeout(as(t, asDutch), 10*time.Second)
		defer cancel()
		list, err := e.place.List(as(t, asDutch), &pb.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ws, err := e.place.Watch(wctx, &pb.WatchRequest{ResumeToken: list.GetResumeToken()})
		if err != nil {
			t.Fatal(err)
		}
		first, err := ws.Recv()
		rec("Watch first", first, err)
		r, err := e.place.Release(as(t, asDutch), &pb.ReleaseRequest{Id: "nl-1"})
		rec("Release nl-1", r, err)
		for {
			ev, err := ws.Recv()
			if err != nil || len(ev.GetEvents()) > 0 {
				rec("Watch event", ev, err)
				break
			}
		}
		cancel()

		for _, f := range []string{"", hidProv, "nosuchprov", "oracle", "aws"} {
			lr, err := e.catalog.ListRegions(as(t, asDutch), &pb.ListRegionsRequest{Provider: f})
			rec("ListRegions "+f, lr, err)
		}
		for _, key := range []string{hidProv + "/fr-0", "nosuchprov/fr-0", "aws/us-iso-east-1", "aws/us-iso-nowhere-1", "aws/us-east-1"} {
			gr, err := e.catalog.GetRegion(as(t, asDutch), &pb.GetRegionRequest{Key: key})
			rec("GetRegion "+key, gr, err)
		}
		lp, err := e.catalog.ListProviders(as(t, asDutch), &pb.ListProvidersRequest{})
		rec("ListProviders", lp, err)
		for _, id := range []string{hidProv, "nosuchprov", "oracle", "aws"} {
			gp, err := e.catalog.GetProvider(as(t, asDutch), &pb.GetProviderRequest{Id: id})
			rec("GetProvider "+id, gp, err)
		}
		for _, caller := range []string{asDutch, asSubmitter, asTenantAud} {
			lt, err := e.catalog.ListTenants(as(t, caller), &pb.ListTenantsRequest{})
			rec("ListTenants "+caller, lt, err)
		}
		for _, id := range []string{"nld-mod", hidOther, "no-such-tenant", "us-ic"} {
			gt, err := e.catalog.GetTenant(as(t, asDutch), &pb.GetTenantRequest{Id: id})
			rec("GetTenant "+id, gt, err)
		}
		cl, err := e.catalog.CheckLabel(as(t, asDutch), &pb.CheckLabelRequest{Banner: "SECRET//REL TO USA, FRA"})
		rec("CheckLabel", cl, err)

		// The tenant's audit trail, whole and a page at a time.
		audit := pb.NewAuditServiceClient(e.conn)
		all, err := audit.ListAudit(as(t, asDutch), &pb.ListAuditRequest{PageSize: 1000})
		rec("ListAudit", all, err)
		var paged []string
		for tok, n := "", 0; n < 100; n++ {
			page, err := audit.ListAudit(as(t, asDutch), &pb.ListAuditRequest{PageSize: 2, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range page.GetEntries() {
				paged = append(paged, en.GetId())
			}
			if tok = page.GetNextPageToken(); tok == "" {
				break
			}
		}
		var whole []string
		for _, en := range all.GetEntries() {
			whole = append(whole, en.GetId())
		}
		if strings.Join(paged, ",") != strings.Join(whole, ",") || len(whole) < 5 {
			t.Errorf("ListAudit a page at a time: %q; want %q", paged, whole)
		}
		for _, op := range []string{"place", "refuse", "release"} {
			l, err := audit.ListAudit(as(t, asDutch), &pb.ListAuditRequest{Op: op, Region: "aws/us-east-1"})
			rec("ListAudit "+op, l, err)
		}
		_, err = audit.ListAudit(as(t, asDutch), &pb.ListAuditRequest{Tenant: hidOther})
		rec("ListAudit other tenant", nil, err)
		return tr.lines
	}
	var plain, hidden []string
	t.Run("plain", func(t *testing.T) { plain = run(t, false) })
	t.Run("hidden", func(t *testing.T) { hidden = run(t, true) })
	if len(plain) == 0 || len(plain) != len(hidden) {
		t.Fatalf("transcripts of %d and %d calls", len(plain), len(hidden))
	}
	moved := 0
	for i := range plain {
		if plain[i] != hidden[i] {
			moved++
			t.Errorf("moved by what the caller may not see:\n without: %s\n with:    %s", plain[i], hidden[i])
		}
	}
	t.Logf("%d responses compared, %d moved", len(plain), moved)
}

// TestReasonsOfARegionTurnedHidden checks that when a region a tenant's
// placement uses stops serving the tenant (so the tenant may no longer
// know of it), what the reconciler finds there reaches the tenant's
// users as "no longer available", never as whom the region serves now
// or what it is accredited for: in Get, and in its audit trail. Found
// by the adversarial review of issue 8.
func TestReasonsOfARegionTurnedHidden(t *testing.T) {
	e := startEnvCatalog(t, shared, false, nil)
	tn, err := e.catalog.GetTenant(ctx(t), &pb.GetTenantRequest{Id: "nld-mod"})
	if err != nil {
		t.Fatal(err)
	}
	tn.GetTenant().Members = []*pb.TenantMember{{Name: "anouk", Roles: []string{"tenant-submitter", "tenant-auditor"}}}
	if _, err := e.catalog.PutTenant(as(t, asAdmin), &pb.PutTenantRequest{Tenant: tn.GetTenant()}); err != nil {
		t.Fatal(err)
	}
	nl := &pb.Workload{Name: "nl", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"*"},
		Resources: &pb.Resources{MilliCpu: 1}, Replicas: 1}
	p, err := e.place.Place(as(t, asDutch), &pb.PlaceRequest{RequestId: "nl-1", Workload: nl})
	if err != nil {
		t.Fatal(err)
	}
	key := p.GetPlacement().GetAssignments()[0].GetRegion()
	st, err := e.store.GetRegion(key)
	if err != nil {
		t.Fatal(err)
	}
	r := *st.Region
	r.Customers = []string{"USA/intelligence"} // it serves others only now
	if _, err := e.store.PutRegion(ctx(t), &r); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.store.Reconcile(rctx, state.ReconcilerConfig{Interval: 50 * time.Millisecond})
	}()
	defer func() { cancel(); <-done }()
	var text string
	eventually(t, "the reconciler notes the issue", func() bool {
		g, err := e.place.Get(as(t, asDutch), &pb.GetRequest{Id: "nl-1"})
		if err != nil {
			t.Fatal(err)
		}
		text = prototext.Format(g)
		if strings.Contains(text, "USA/intelligence") {
			t.Errorf("the Dutch user's Get describes region %s, which it may no longer know of:\n%s", key, text)
		}
		return g.GetPlacement().GetMoves() > 0
	})
	// The violation and the move are on the record: the security
	// auditor's entries say why, the Dutch auditor's do not.
	audit := pb.NewAuditServiceClient(e.conn)
	all, err := audit.ListAudit(as(t, asSecAud), &pb.ListAuditRequest{Tenant: "nld-mod"})
	if err != nil || !strings.Contains(prototext.Format(all), "USA/intelligence") {
		t.Fatalf("the security auditor's ListAudit: %v; want the reasons (the test would prove nothing)", err)
	}
	l, err := audit.ListAudit(as(t, asDutch), &pb.ListAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	said := false
	for _, en := range l.GetEntries() {
		s := prototext.Format(en)
		if strings.Contains(s, "USA/intelligence") {
			t.Errorf("the Dutch auditor's ListAudit describes region %s: %s", key, s)
		}
		said = said || strings.Contains(s, "no longer available to tenant nld-mod")
	}
	if !said {
		t.Errorf("the Dutch auditor's ListAudit: no entry says the region is no longer available")
	}
}
