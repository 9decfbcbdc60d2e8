package state_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/etcdlocal"
	"github.com/classroute/classroute/router/etcdtest"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/state"
)

// shared is the etcd member of the tests that do not stop or compact
// theirs; each test keeps its records under its own prefix.
var shared *etcdlocal.Member

func TestMain(m *testing.M) {
	var stop func()
	var err error
	shared, stop, err = etcdtest.Shared("state-test-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stopBenchEtcd()
	stop()
	os.Exit(code)
}

// env is one daemon's store on an etcd member, and a second client for
// writing to etcd behind the store's back.
type env struct {
	tb     testing.TB
	member *etcdlocal.Member
	cli    *clientv3.Client
	other  *clientv3.Client
	prefix string
	store  *state.Store
	logs   *logBuffer
}

// newEnv opens a store with the test catalogue on m (the shared member
// when nil), under a prefix of the test's own, and checks at cleanup
// that closing it left no goroutine behind.
func newEnv(tb testing.TB, m *etcdlocal.Member, opts ...state.Option) *env {
	tb.Helper()
	if m == nil {
		m = shared
	}
	e := &env{tb: tb, member: m, prefix: "/test/" + tb.Name() + "/", logs: &logBuffer{}}
	e.cli = etcdtest.Client(tb, m.Endpoints()...)
	e.other = etcdtest.Client(tb, m.Endpoints()...)
	ctx := context.Background()
	if _, err := e.other.Delete(ctx, e.prefix, clientv3.WithPrefix()); err != nil {
		tb.Fatal(err)
	}
	e.store = e.open(e.cli, opts...)
	return e
}

// open opens a store on cli under the env's prefix, closed (and checked
// for leaked goroutines) at cleanup.
func (e *env) open(cli *clientv3.Client, opts ...state.Option) *state.Store {
	e.tb.Helper()
	// The check runs after the store's Close, registered later.
	etcdtest.LeakCheck(e.tb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]state.Option{state.WithPrefix(e.prefix), state.WithLogger(slog.New(e.logs))}, opts...)
	s, err := state.Open(ctx, cli, router.NewEngine(), opts...)
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { s.Close() })
	return s
}

// seed loads the catalogue into the env's store.
func (e *env) seed(providers []router.Provider, regions []router.Region, tenants []router.Tenant) {
	e.tb.Helper()
	ok, err := e.store.Seed(context.Background(), providers, regions, tenants)
	if err != nil || !ok {
		e.tb.Fatalf("Seed: %v, %v", ok, err)
	}
}

// usage reads a region's usage record straight from etcd.
func (e *env) usage(key string) (router.Resources, int64) {
	e.tb.Helper()
	resp, err := e.other.Get(context.Background(), e.prefix+"usage/"+key)
	if err != nil || len(resp.Kvs) != 1 {
		e.tb.Fatalf("usage %s: %v, %d records", key, err, len(resp.Kvs))
	}
	var u struct {
		Used       router.Resources `json:"used"`
		Placements int64            `json:"placements"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &u); err != nil {
		e.tb.Fatal(err)
	}
	return u.Used, u.Placements
}

// putJSON writes a record straight to etcd and returns the revision.
func (e *env) putJSON(key string, v any) int64 {
	e.tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.tb.Fatal(err)
	}
	resp, err := e.other.Put(context.Background(), e.prefix+key, string(b))
	if err != nil {
		e.tb.Fatal(err)
	}
	return resp.Header.Revision
}

// waitFor waits for the store's cache to reach rev.
func waitFor(tb testing.TB, s *state.Store, rev int64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, rev); err != nil {
		tb.Fatalf("WaitFor(%d): %v (cache at %d)", rev, err, s.Revision())
	}
}

// The test catalogue: SECRET regions of two providers in the USA, a
// commercial region, and a US Army tenant. Accreditations run for a year
// from the real clock, which the stores use.

func provider(id string) router.Provider {
	return router.Provider{ID: id, Name: strings.ToUpper(id), Jurisdiction: "USA"}
}

func army() router.Tenant {
	return router.Tenant{ID: "us-army", Name: "US Army", Nation: "USA", Sector: "defense", Ceiling: "TOP SECRET//SI/TK//NOFORN"}
}

// secretRegion is a known-good region for secretWorkload.
func secretRegion(prov, id string, capacity router.Resources) router.Region {
	return router.Region{
		Provider:              prov,
		ID:                    id,
		Country:               "USA",
		OperatorJurisdiction:  "USA",
		OperatorNationalities: []string{"USA"},
		Personnel:             router.PersonnelClearedSecret,
		NetworkDomain:         router.DomainSIPRNet,
		Accreditation: router.Accreditation{
			MaxLevel:    label.Secret,
			ImpactLevel: 6,
			Expires:     time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second),
		},
		Customers:    []string{"USA"},
		StorageTiers: []string{"online"},
		Capacity:     capacity,
		Location:     router.Location{Lat: 38.9, Lon: -77.4},
		Cost:         1,
		Status:       router.StatusActive,
	}
}

func commercialRegion(prov, id string) router.Region {
	r := secretRegion(prov, id, big)
	r.Personnel = router.PersonnelNone
	r.NetworkDomain = router.DomainInternet
	r.Accreditation = router.Accreditation{MaxLevel: label.Unclassified, Expires: r.Accreditation.Expires}
	r.Customers = []string{"*"}
	r.Cost = 0.1
	return r
}

var (
	big  = router.Resources{MilliCPU: 1 << 40, MemoryMiB: 1 << 40}
	unit = router.Resources{MilliCPU: 1000, MemoryMiB: 1024}
)

// secretWorkload is a valid SECRET//NOFORN workload of one replica of
// unit resources, validated (its label parsed, its banner canonical).
func secretWorkload(tb testing.TB, name string) *router.Workload {
	tb.Helper()
	w := &router.Workload{
		Name:             name,
		Tenant:           "us-army",
		Banner:           "SECRET//NOFORN",
		AllowedCountries: []string{"USA"},
		Resources:        unit,
		Replicas:         1,
	}
	if err := router.ValidateWorkload(w, "US"); err != nil {
		tb.Fatal(err)
	}
	return w
}

// logBuffer is a slog handler that keeps the messages, for tests that
// check what the store reported.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Enabled(context.Context, slog.Level) bool { return true }
func (l *logBuffer) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s %s\n", r.Level, r.Message)
	return nil
}
func (l *logBuffer) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logBuffer) WithGroup(string) slog.Handler      { return l }

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
