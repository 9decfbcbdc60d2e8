package state_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// A scenario is an end-to-end reconciler test that reads as Given /
// When / Then, after the harness of Nomad's scheduler tests: given a
// catalogue, placements and a running reconciler, when an operator
// changes a region, then the records in etcd (placements, usage, audit)
// end as they must. Givens and whens write through the store, as the
// API would; thens read etcd itself, not the store's cache.
//
//	s := given(t).
//		regions(cheaper(secretRegion("aws", "s1", big)), secretRegion("azure", "s2", big)).
//		placed("w").
//		reconciling(state.ReconcilerConfig{Name: "a"})
//	s.whenDrained("aws/s1")
//	s.thenPlacement("w", 10*time.Second, func(p router.Placement) (bool, string) { ... })
type scenario struct {
	*env
	t       testing.TB
	catalog map[string]router.Region // each region as it stands now, by key

	extraTenants []router.Tenant // seeded beside the US Army
	rev          int64           // the revision of the scenario's last write
	stop         func()          // stops the scenario's reconciler
	counter      *countingEngine // counts rechecks, after countingRechecks
}

// given starts a scenario on the shared member, with an empty catalogue.
func given(t testing.TB) *scenario {
	t.Helper()
	return &scenario{env: newEnv(t, nil), t: t, catalog: make(map[string]router.Region)}
}

// givenOwnMember starts a scenario on an etcd member of the test's own,
// for a scenario that compacts or stops it.
func givenOwnMember(t testing.TB) *scenario {
	t.Helper()
	return &scenario{env: newEnv(t, etcdtest.Member(t)), t: t, catalog: make(map[string]router.Region)}
}

// regions seeds the catalogue: the regions, their providers, the US
// Army tenant and any given by tenants.
func (s *scenario) regions(regions ...router.Region) *scenario {
	s.t.Helper()
	var provs []router.Provider
	for _, r := range regions {
		if !slices.ContainsFunc(provs, func(p router.Provider) bool { return p.ID == r.Provider }) {
			provs = append(provs, provider(r.Provider))
		}
		s.catalog[r.Key()] = r
	}
	s.seed(provs, regions, append([]router.Tenant{army()}, s.extraTenants...))
	return s
}

// cheaper makes r the first choice of the placements: the cheapest.
func cheaper(r router.Region) router.Region {
	r.Cost = 0.5
	return r
}

// placed places secretWorkload under each id (one replica each).
func (s *scenario) placed(ids ...string) *scenario {
	s.t.Helper()
	for _, id := range ids {
		s.place(id, secretWorkload(s.t, id))
	}
	return s
}

// placedIn is placed, requiring every placement in region.
func (s *scenario) placedIn(region string, ids ...string) *scenario {
	s.t.Helper()
	for _, id := range ids {
		if p := s.place(id, secretWorkload(s.t, id)); p.Regions[0] != region {
			s.t.Fatalf("%s placed in %v, want %s", id, p.Regions, region)
		}
	}
	return s
}

// agentIn gives the region an agent that reports it healthy: a new
// replica there then runs only once the agent says so.
func (s *scenario) agentIn(region string) *scenario {
	s.t.Helper()
	waitFor(s.t, s.store, s.putJSON("health/"+region, router.Health{Healthy: true, Since: time.Now().UTC(), Agent: "agent-" + s.catalog[region].ID}))
	return s
}

// reconciling runs the store's reconciler until the test ends.
func (s *scenario) reconciling(cfg state.ReconcilerConfig) *scenario {
	s.t.Helper()
	s.stop = reconcile(s.t, s.store, cfg)
	return s
}

// whenRegion puts the region, changed by change, as an operator would.
func (s *scenario) whenRegion(key string, change func(*router.Region)) {
	s.t.Helper()
	r, ok := s.catalog[key]
	if !ok {
		s.t.Fatalf("no region %s in the scenario", key)
	}
	change(&r)
	s.catalog[key] = r
	s.rev = s.putRegion(r)
}

// whenDrained drains the region: its placements must leave, though none
// is a violation.
func (s *scenario) whenDrained(key string) {
	s.t.Helper()
	s.whenRegion(key, func(r *router.Region) { r.Status = router.StatusDraining })
}

// whenDowngradedToCUI lowers the region's accreditation to CUI on the
// internet: every SECRET replica there is a violation.
func (s *scenario) whenDowngradedToCUI(key string) {
	s.t.Helper()
	s.whenRegion(key, func(r *router.Region) {
		r.Accreditation.MaxLevel = label.CUI
		r.NetworkDomain = router.DomainInternet
		r.Personnel = router.PersonnelNone
	})
}

// whenRevoked revokes the region's accreditation.
func (s *scenario) whenRevoked(key string) {
	s.t.Helper()
	s.whenRegion(key, func(r *router.Region) { r.Accreditation.Revoked = true })
}

// whenReaccredited lifts a revocation.
func (s *scenario) whenReaccredited(key string) {
	s.t.Helper()
	s.whenRegion(key, func(r *router.Region) { r.Accreditation.Revoked = false })
}

// thenEventually waits until cond holds over the placements in etcd, or
// fails the test after timeout saying why not.
func (s *scenario) thenEventually(timeout time.Duration, cond func(map[string]storedPlacement) (bool, string)) {
	s.t.Helper()
	eventually(s.t, timeout, func() (bool, string) { return cond(s.placements()) })
}

// thenPlacement waits until cond holds for placement id in etcd.
func (s *scenario) thenPlacement(id string, timeout time.Duration, cond func(router.Placement) (bool, string)) {
	s.t.Helper()
	eventually(s.t, timeout, func() (bool, string) { return cond(s.placements()[id].P) })
}

// thenAudit checks the number of audit entries of each op in want;
// why says what the counts mean.
func (s *scenario) thenAudit(why string, want map[string]int) {
	s.t.Helper()
	ops := s.countAudit()
	for _, op := range slices.Sorted(maps.Keys(want)) {
		if ops[op] != want[op] {
			s.t.Errorf("audit %v: want %v (%s)", ops, want, why)
			return
		}
	}
}

// thenUsageExact checks that each region's usage record equals what the
// live placements hold there.
func (s *scenario) thenUsageExact(regions ...string) {
	s.t.Helper()
	s.checkUsage(regions...)
}

// placementIn is a then-condition: the placement is placed in region
// alone, with no copy left retiring.
func placementIn(region string) func(router.Placement) (bool, string) {
	return func(p router.Placement) (bool, string) {
		return slices.Equal(p.Regions, []string{region}) && len(p.Retiring) == 0, fmt.Sprintf("%+v", p)
	}
}

// rawPlacements writes live placements straight to etcd, behind the
// store's back, as writePlacements does: counts says how many for each
// "tenant region". The store's cache holds them when it returns.
func (s *scenario) rawPlacements(counts map[string]int) *scenario {
	s.t.Helper()
	s.writePlacements(counts)
	return s
}

// leading waits until the scenario's store leads the reconcilers.
func (s *scenario) leading() *scenario {
	s.t.Helper()
	eventually(s.t, 5*time.Second, func() (bool, string) { return s.store.Leading(), "not leading" })
	return s
}

// whenActive puts the region back in service, as it was seeded.
func (s *scenario) whenActive(key string) {
	s.t.Helper()
	s.whenRegion(key, func(r *router.Region) { r.Status = router.StatusActive })
}

// thenAllIn waits until every placement holds exactly region, placed,
// with no copy left retiring.
func (s *scenario) thenAllIn(region string, timeout time.Duration) {
	s.t.Helper()
	eventually(s.t, timeout, func() (bool, string) { return s.allIn(region) })
}

// thenRevisionsSince checks that what was done since revision rev (to
// n placements) took at most limit revisions: batches, not a
// transaction for each.
func (s *scenario) thenRevisionsSince(rev int64, limit int64, what string, n int) {
	s.t.Helper()
	if revs := s.store.Revision() - rev; revs > limit {
		s.t.Errorf("%s took %d revisions for %d placements; want at most %d (batches)", what, revs, n, limit)
	}
}

// thenEachMovedOnce checks that every placement moved exactly once.
func (s *scenario) thenEachMovedOnce() {
	s.t.Helper()
	for id, sp := range s.placements() {
		if sp.P.Moves != 1 {
			s.t.Errorf("%s moved %d times", id, sp.P.Moves)
		}
	}
}

// auditTimes returns the times of the audit entries of op among the
// limit most recent, earliest first.
func (s *scenario) auditTimes(op string, limit int) []time.Time {
	s.t.Helper()
	entries, err := s.store.ListAudit(context.Background(), limit)
	if err != nil {
		s.t.Fatal(err)
	}
	var at []time.Time
	for _, a := range entries {
		if a.Op == op {
			at = append(at, a.Time)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	return at
}

// tenants adds tenants to be seeded beside the US Army; it comes before
// regions, which seeds.
func (s *scenario) tenants(ts ...router.Tenant) *scenario {
	s.extraTenants = append(s.extraTenants, ts...)
	return s
}

// placedAs places w under id.
func (s *scenario) placedAs(id string, w *router.Workload) *scenario {
	s.t.Helper()
	s.place(id, w)
	return s
}

// rawRecord writes v as the record at key (under the store's prefix)
// straight to etcd, behind the store's back, as a daemon of another
// version might; cached waits for the store's cache to hold it.
func (s *scenario) rawRecord(key string, v any) *scenario {
	s.t.Helper()
	s.rev = s.putJSON(key, v)
	return s
}

// cached waits until the store's cache holds the scenario's last write.
func (s *scenario) cached() *scenario {
	s.t.Helper()
	waitFor(s.t, s.store, s.rev)
	return s
}

// drained drains the region before the scenario's whens, and waits for
// the store's cache to hold it.
func (s *scenario) drained(key string) *scenario {
	s.t.Helper()
	s.whenDrained(key)
	return s.cached()
}

// countingRechecks reopens the scenario's store on an engine that
// counts its rechecks (the replicas the reconciler looked at), read by
// rechecked.
func (s *scenario) countingRechecks() *scenario {
	s.t.Helper()
	s.counter = s.openCounting()
	return s
}

// rechecked is how many replicas the reconciler has rechecked.
func (s *scenario) rechecked() int64 { return s.counter.rechecks.Load() }

// whenTenant puts the tenant, as an operator would.
func (s *scenario) whenTenant(tn router.Tenant) {
	s.t.Helper()
	if err := s.store.PutTenant(context.Background(), &tn); err != nil {
		s.t.Fatal(err)
	}
}

// whileWatchDown runs do with the store's cache watch down, and then
// lets it watch again.
func (s *scenario) whileWatchDown(do func()) {
	s.t.Helper()
	resume := s.store.InterruptWatch()
	do()
	resume()
}

// compacted compacts etcd, physically, up to the scenario's last write.
func (s *scenario) compacted() {
	s.t.Helper()
	if _, err := s.other.Compact(context.Background(), s.rev, clientv3.WithCompactPhysical()); err != nil {
		s.t.Fatal(err)
	}
}

// firstAudit waits until an audit entry of op is written, and returns
// it (of the 100 most recent).
func (s *scenario) firstAudit(op string, timeout time.Duration) audit.Entry {
	s.t.Helper()
	var found audit.Entry
	eventually(s.t, timeout, func() (bool, string) {
		entries, err := s.store.ListAudit(context.Background(), 100)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, a := range entries {
			if a.Op == op {
				found = a
				return true, ""
			}
		}
		return false, "no " + op + " entry"
	})
	return found
}

// stopReconciling stops the scenario's reconciler, as a daemon shut down.
func (s *scenario) stopReconciling() {
	s.t.Helper()
	s.stop()
}

// newLeader campaigns, as the test, for the reconcilers' election and
// returns it once won: a leader that does not act.
func (s *scenario) newLeader() *concurrency.Election {
	s.t.Helper()
	sess, err := concurrency.NewSession(etcdtest.Client(s.t, s.member.Endpoints()...), concurrency.WithTTL(5))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { sess.Close() })
	el := concurrency.NewElection(sess, s.prefix+"election/reconciler")
	if err := el.Campaign(context.Background(), "test"); err != nil {
		s.t.Fatal(err)
	}
	return el
}

// agentConnected connects an agent for the region, closed when the
// test ends; it has not reported (no health record).
func (s *scenario) agentConnected(region, agentID string) *state.AgentSession {
	s.t.Helper()
	a, err := s.store.ConnectAgent(context.Background(), region, agentID, 30*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { a.Close() })
	return a
}

// whenReleased releases the tenant's placement id.
func (s *scenario) whenReleased(tenant, id string) {
	s.t.Helper()
	if _, err := s.store.Release(context.Background(), tenant, id); err != nil {
		s.t.Fatal(err)
	}
}

// thenRechecksOnly runs the when do, and checks that the reconciler
// rechecked want replicas for it, counting from a settled count to a
// settled count.
func (s *scenario) thenRechecksOnly(want int64, what string, do func()) {
	s.t.Helper()
	before := settled(s.t, &s.counter.rechecks)
	do()
	if got := settled(s.t, &s.counter.rechecks) - before; got != want {
		s.t.Errorf("%s: %d replicas rechecked, want %d", what, got, want)
	}
}

// killableLeader opens a second daemon's store on an etcd client of its
// own, runs its reconciler with cfg and waits until it leads. kill
// closes that client: the daemon dies without resigning, and its
// session lease expires.
func (s *scenario) killableLeader(cfg state.ReconcilerConfig) (kill func()) {
	s.t.Helper()
	cli := etcdtest.Client(s.t, s.member.Endpoints()...)
	a := s.open(cli)
	reconcile(s.t, a, cfg)
	eventually(s.t, 5*time.Second, func() (bool, string) { return a.Leading(), cfg.Name + " not leading" })
	return func() { cli.Close() }
}

// standby opens another daemon's store and runs its reconciler with
// cfg: it leads once the leader is gone.
func (s *scenario) standby(cfg state.ReconcilerConfig) *state.Store {
	s.t.Helper()
	b := s.open(s.other)
	reconcile(s.t, b, cfg)
	return b
}

// moved counts the placements that have moved at least once.
func (s *scenario) moved() int {
	s.t.Helper()
	k := 0
	for _, sp := range s.placements() {
		if sp.P.Moves > 0 {
			k++
		}
	}
	return k
}
