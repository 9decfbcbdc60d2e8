package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// allCountries are every ISO 3166 trigraph the label parser knows.
func allCountries() []string {
	var out []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				if code := string([]rune{a, b, c}); label.IsCountry(code) {
					out = append(out, code)
				}
			}
		}
	}
	return out
}

// relToAll is "LEVEL//REL TO USA, ..." releasable to every country.
func relToAll(level string) string {
	var others []string
	for _, c := range allCountries() {
		if c != "USA" {
			others = append(others, c)
		}
	}
	return level + "//REL TO USA, " + strings.Join(others, ", ")
}

// tenantUser is ctx carrying a tenant user.
func tenantUser(tenant, name string) context.Context {
	return authz.NewContext(context.Background(), &authz.Principal{
		ID: "spiffe://td/tenant/" + tenant + "/user/" + name, Kind: authz.KindTenant, Tenant: tenant, Name: name})
}

// allAudit reads the whole trail.
func allAudit(tb testing.TB, s *state.Store) []audit.Record {
	tb.Helper()
	var out []audit.Record
	f := state.AuditFilter{Limit: 1000}
	for {
		page, next, err := s.FindAudit(context.Background(), f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		f.After = next
	}
}

// TestRefusalAuditFlood floods Place with refusals at the caller's
// ceiling from one tenant user, at about a thousand a second for three
// seconds, as the reproduction did: every one is refused, the
// trail grows by the caller's rate and not by the flood, and the
// refusals not audited one by one are counted, exactly, in summaries.
func TestRefusalAuditFlood(t *testing.T) {
	m := etcdtest.Member(t)
	limit := state.RefusalAuditLimit{PerSecond: 10, Burst: 50, SummaryAfter: time.Second}
	e := newEnv(t, m, state.WithRefusalAuditLimit(limit))
	tn := army()
	tn.Ceiling = "SECRET//NOFORN"
	tn.Members = []router.TenantMember{{Name: "flood", Roles: []authz.Role{authz.RoleSubmitter}}}
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{tn})
	ctx := context.Background()
	user := tenantUser("us-army", "flood")
	w := secretWorkload(t, strings.Repeat("n", 128))
	w.Banner = relToAll("TOP SECRET") // above the ceiling; long
	if err := router.ValidateWorkload(w, "US"); err != nil {
		t.Fatal(err)
	}
	before, err := e.cli.Status(ctx, m.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}

	const workers, perWorker, length = 8, 125, 3 * time.Second // 1000 a second
	var refused, wrong atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := range workers {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / perWorker)
			defer tick.Stop()
			for i := 0; time.Since(start) < length; i++ {
				_, err := e.store.Place(user, fmt.Sprintf("flood-%d-%d", g, i), w)
				if errors.Is(err, router.ErrPermissionDenied) {
					refused.Add(1)
				} else {
					wrong.Add(1)
					t.Errorf("Place: %v; want refused at the ceiling", err)
					return
				}
				<-tick.C
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := refused.Load()
	t.Logf("%d refusals in %v (%.0f/s)", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if n < 1000 || wrong.Load() > 0 {
		t.Fatalf("%d refusals, %d other answers: the flood did not flood", n, wrong.Load())
	}

	// Every refusal is on the trail: on its own, or counted in a summary
	// once its window closes.
	var one, counted, summaries int64
	var recs []audit.Record
	for deadline := time.Now().Add(10 * time.Second); ; {
		recs = allAudit(t, e.store)
		one, counted, summaries = 0, 0, 0
		for _, r := range recs {
			switch a := r.Entry; a.Op {
			case audit.OpRefuse:
				one++
			case audit.OpRefuseSummary:
				summaries++
				counted += a.Count
				if a.Actor != authz.Actor(user) || a.Tenant != "us-army" || a.From.After(a.To) || a.To.After(a.Time) ||
					!slices.Contains(a.Reasons, fmt.Sprintf("permission_denied: %d", a.Count)) ||
					!strings.HasPrefix(a.Reasons[0], fmt.Sprintf("%d further refusals by %s for tenant us-army between ", a.Count, authz.Actor(user))) {
					t.Errorf("summary %+v", a)
				}
			}
		}
		if one+counted >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("audited: %d refusals one by one, %d in %d summaries; %d entries in all", one, counted, summaries, len(recs))
	if one+counted != n {
		t.Errorf("%d refusals audited one by one and %d counted in summaries; want %d in all", one, counted, n)
	}
	if dropped := n - one; counted != dropped {
		t.Errorf("summaries count %d refusals; %d were not audited one by one", counted, dropped)
	}
	// The caller's rate bounds the trail: a token per entry (summaries
	// written with a refusal included), and a summary per window closed.
	bound := int64(limit.Burst) + int64(limit.PerSecond*elapsed.Seconds()) + int64(elapsed/limit.SummaryAfter) + 3
	if int64(len(recs)) > bound {
		t.Errorf("%d audit entries after %d refusals; want at most %d", len(recs), n, bound)
	}
	after, err := e.cli.Status(ctx, m.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	grew := after.DbSize - before.DbSize
	t.Logf("etcd database: %d bytes before, %d after (%+d)", before.DbSize, after.DbSize, grew)
	if grew > 2<<20 {
		t.Errorf("etcd's database grew by %d bytes; want at most 2 MiB", grew)
	}
	if page, err := e.store.ListPlacements(state.PlacementFilter{}, 10, ""); err != nil || len(page.Placements) != 0 {
		t.Errorf("%d placements, %v: a refusal placed", len(page.Placements), err)
	}
}

// TestRefusalSummary follows one caller's bucket on a clock the test
// moves: the burst is audited one by one, the rest counted; the next
// refusal the bucket admits (a token for it and one for the summary)
// carries the summary before it; a summary waits at most SummaryAfter;
// and another caller, or the same one spelt differently in its ID, is
// bounded as its identity says.
func TestRefusalSummary(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	limit := state.RefusalAuditLimit{PerSecond: 1, Burst: 2, SummaryAfter: time.Hour}
	e := newEnv(t, nil, state.WithRefusalAuditLimit(limit), state.WithClock(clock), state.WithProgressEvery(20*time.Millisecond))
	tn := army()
	tn.Ceiling = "SECRET//NOFORN"
	tn.Members = []router.TenantMember{{Name: "a", Roles: []authz.Role{authz.RoleSubmitter}}, {Name: "b", Roles: []authz.Role{authz.RoleSubmitter}}}
	e.seed([]router.Provider{provider("aws")}, []router.Region{secretRegion("aws", "s1", big)}, []router.Tenant{tn})
	ts := secretWorkload(t, "ts")
	ts.Banner = "TOP SECRET//NOFORN"
	if err := router.ValidateWorkload(ts, "US"); err != nil {
		t.Fatal(err)
	}
	n := 0
	refuse := func(ctx context.Context) {
		t.Helper()
		n++
		if _, err := e.store.Place(ctx, fmt.Sprintf("r%d", n), ts); !errors.Is(err, router.ErrPermissionDenied) {
			t.Fatalf("Place: %v; want refused", err)
		}
	}
	a := tenantUser("us-army", "a")
	// The same identity, its ID spelt otherwise (percent-encoded): the
	// bucket is the principal's kind, tenant and name.
	a2 := authz.NewContext(context.Background(), &authz.Principal{
		ID: "spiffe://td/tenant/us-army/user/%61", Kind: authz.KindTenant, Tenant: "us-army", Name: "a"})
	trail := func() []string {
		t.Helper()
		var out []string
		for _, r := range allAudit(t, e.store) {
			if a := r.Entry; a.Op == audit.OpRefuse || a.Op == audit.OpRefuseSummary {
				out = append(out, fmt.Sprintf("%s %s %d", a.Op, a.RequestID, a.Count))
			}
		}
		return out
	}
	for range 3 {
		refuse(a)
	}
	for range 2 {
		refuse(a2)
	}
	b := tenantUser("us-army", "b")
	refuse(b) // another caller: a bucket of its own
	want := []string{"refuse r1 0", "refuse r2 0", "refuse r6 0"}
	if got := trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q; want %q", got, want)
	}
	offset.Add(int64(time.Second)) // one token: not enough for a refusal and its summary
	refuse(a)
	offset.Add(int64(time.Second)) // two
	refuse(a)
	want = append(want, "refuse-summary  4", "refuse r8 0")
	if got := trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q; want %q", got, want)
	}
	// Counted, then nothing more from the caller: the summary comes
	// SummaryAfter later without waiting for another refusal.
	refuse(a)
	offset.Add(int64(time.Hour))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := trail()
		if slices.Equal(got, append(want, "refuse-summary  1")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trail %q; want the last refusal's summary", got)
		}
	}
	want = append(want, "refuse-summary  1")

	// A store closing writes what it counted.
	s2 := e.open(e.other, state.WithRefusalAuditLimit(limit), state.WithClock(clock))
	for i := range 3 {
		if _, err := s2.Place(b, fmt.Sprintf("s2-%d", i), ts); !errors.Is(err, router.ErrPermissionDenied) {
			t.Fatalf("Place: %v; want refused", err)
		}
	}
	s2.Close()
	want = append(want, "refuse s2-0 0", "refuse s2-1 0", "refuse-summary  1")
	if got := trail(); !slices.Equal(got, want) {
		t.Fatalf("trail %q; want %q", got, want)
	}
}
