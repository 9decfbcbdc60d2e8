package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/classroute/classroute/cmd/cmdtest"
	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/etcdtest"
)

// The end-to-end test builds both binaries, starts the daemon with its
// embedded etcd and the default catalogue on loopback, and drives the CLI
// through the seed scenarios of shared/DOMAIN.md §0. Every check compares a
// placement with the catalogue's facts about the chosen regions, so it
// fails if classroute misroutes, whatever the catalogue holds.

type env struct {
	t *testing.T
	*cmdtest.CLI
	// kill ends the daemon with SIGKILL: no shutdown of any kind.
	kill func()
}

func TestMain(m *testing.M) { cmdtest.Main(m) }

// start starts a daemon with its embedded etcd (or the extra flags'
// --etcd) and waits until it serves.
func start(t *testing.T, extra ...string) *env {
	t.Helper()
	e, _ := startDaemon(t, extra...)
	return e
}

// startDaemon also returns the embedded etcd's client address.
func startDaemon(t *testing.T, extra ...string) (*env, string) {
	t.Helper()
	d := newDaemon(t, extra...)
	d.start()
	t.Cleanup(d.stop)
	return d.env, d.etcdAddr
}

// daemon is one classrouted, which a test may stop and start again on
// the same data directory and addresses.
type daemon struct {
	t        *testing.T
	env      *env
	etcdAddr string
	metrics  string // address of /metrics
	args     []string
	extra    []string     // the test's own flags
	started  bool         // it has served once: its addresses are fixed
	logs     bytes.Buffer // of every run
	cancel   context.CancelFunc
	exited   chan error // nil when not running
}

func newDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, extra: extra}
	d.env = &env{t: t, CLI: &cmdtest.CLI{T: t, Ctl: filepath.Join(bin, "classroutectl"), Root: cmdtest.RepoRoot()}}
	d.pickAddrs(t.TempDir())
	return d
}

// pickAddrs gives the daemon free loopback addresses. A port found free
// may be taken by another process before the daemon binds it (the
// packages' tests run side by side): start picks again then.
func (d *daemon) pickAddrs(dataDir string) {
	listen := etcdtest.FreeAddr(d.t)
	d.etcdAddr, d.metrics = etcdtest.FreeAddr(d.t), etcdtest.FreeAddr(d.t)
	d.args = append([]string{
		"--listen", listen,
		"--data-dir", dataDir,
		"--embedded-etcd-client", d.etcdAddr,
		"--embedded-etcd-peer", etcdtest.FreeAddr(d.t),
		"--metrics-listen", d.metrics,
		"--log-level", "debug"}, d.extra...)
	d.env.Server = listen
}

// start starts the daemon and waits until it serves. On its first start,
// a port taken meanwhile by another process is picked again, twice at
// most.
func (d *daemon) start() {
	d.t.Helper()
	for try := 0; ; try++ {
		err := d.startOnce()
		if err == nil {
			d.started = true
			return
		}
		if d.started || try == 2 || !strings.Contains(d.logs.String(), "address already in use") {
			d.t.Fatal(err)
		}
		d.t.Logf("daemon could not bind a port picked free (taken meanwhile); picking again")
		d.logs.Reset()
		d.pickAddrs(d.t.TempDir())
	}
}

// startOnce starts the daemon and waits until it serves, or says why not.
func (d *daemon) startOnce() error {
	t := d.t
	t.Helper()
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "classrouted"), d.args...)
	cmd.Dir = d.env.Root
	cmd.Stdout, cmd.Stderr = &d.logs, &d.logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	d.cancel, d.exited = cancel, make(chan error, 1)
	go func() { d.exited <- cmd.Wait() }()
	d.env.kill = func() { _ = cmd.Process.Kill() }
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := d.env.Run("regions", "-o", "json", "--timeout", "2s")
		if r.Code == 0 {
			return nil
		}
		select {
		case err := <-d.exited:
			d.exited = nil
			cancel()
			return fmt.Errorf("daemon exited before serving: %v\n%s", err, d.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not serving after 60s: %s\nlogs:\n%s", r.Stderr, d.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop interrupts the daemon (unless it was killed) and waits for it to
// exit.
func (d *daemon) stop() {
	t := d.t
	if d.exited == nil {
		return
	}
	d.cancel()
	err := <-d.exited
	d.exited = nil
	if t.Failed() {
		t.Logf("daemon logs:\n%s", d.logs.String())
	}
	// A clean exit after the interrupt is reported as ctx's error.
	var ee *exec.ExitError
	killed := errors.As(err, &ee) && ee.ProcessState.String() == "signal: killed"
	if err != nil && !errors.Is(err, context.Canceled) && !killed {
		t.Errorf("daemon exit: %v", err)
	}
}

func chosen(t *testing.T, p *pb.Placement, regions map[string]*pb.Region, want int) []*pb.Region {
	t.Helper()
	if got := len(p.GetAssignments()); got != want {
		t.Fatalf("got %d replicas; want %d", got, want)
	}
	var out []*pb.Region
	seen := map[string]bool{}
	for _, a := range p.GetAssignments() {
		r, ok := regions[a.GetRegion()]
		if !ok {
			t.Fatalf("placed in unknown region %q", a.GetRegion())
		}
		if seen[a.GetRegion()] {
			t.Fatalf("two replicas in %s", a.GetRegion())
		}
		seen[a.GetRegion()] = true
		out = append(out, r)
	}
	return out
}

func km(a, b *pb.Location) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dlat, dlon := (b.GetLat()-a.GetLat())*rad, (b.GetLon()-a.GetLon())*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a.GetLat()*rad)*math.Cos(b.GetLat()*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Asin(math.Sqrt(h))
}

func subset(xs, of []string) bool {
	for _, x := range xs {
		if !slices.Contains(of, x) {
			return false
		}
	}
	return true
}

func TestEndToEnd(t *testing.T) {
	e := start(t)
	regions := e.Regions()

	t.Run("kenya health records stay in Kenya", func(t *testing.T) {
		p := e.Place("examples/kenya-health-records.yaml")
		for _, r := range chosen(t, p, regions, 1) {
			if r.GetCountry() != "KEN" {
				t.Errorf("placed in %s (%s); want a region in KEN", r.GetKey(), r.GetCountry())
			}
			if !slices.Contains(r.GetStorageTiers(), "nearline") {
				t.Errorf("placed in %s without nearline storage", r.GetKey())
			}
		}
	})

	t.Run("azure south africa refused for residency", func(t *testing.T) {
		var plan pb.PlanResponse
		e.OK(&plan, "plan", "-f", "examples/kenya-wants-south-africa.yaml")
		var found bool
		for _, v := range plan.GetRegions() {
			if v.GetRegion() != "azure/southafricanorth" {
				continue
			}
			found = true
			if v.GetEligible() {
				t.Fatalf("azure/southafricanorth eligible for Kenyan-resident data")
			}
			if !slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool { return r.GetCode() == "residency" }) {
				t.Errorf("azure/southafricanorth refused for %v; want residency among the reasons", v.GetReasons())
			}
		}
		if !found {
			t.Fatal("plan has no verdict for azure/southafricanorth")
		}
		for _, key := range plan.GetChosen() {
			if regions[key].GetCountry() != "KEN" {
				t.Errorf("plan chose %s outside Kenya", key)
			}
		}
		// The table form a person reads says the same.
		r := e.Run("plan", "-f", "examples/kenya-wants-south-africa.yaml")
		line := lineWith(r.Stdout, "azure/southafricanorth")
		if r.Code != 0 || !strings.Contains(line, "refused") || !strings.Contains(line, "residency") {
			t.Errorf("plan table row for azure/southafricanorth = %q (exit %d); want refused with residency", line, r.Code)
		}
	})

	t.Run("top secret SI/TK NOFORN on US-operated TS regions far apart", func(t *testing.T) {
		p := e.Place("examples/ts-si-tk-noforn.yaml")
		rs := chosen(t, p, regions, 2)
		for _, r := range rs {
			a := r.GetAccreditation()
			if a.GetMaxLevel() != pb.Level_LEVEL_TOP_SECRET {
				t.Errorf("%s accredited %v; want TOP SECRET", r.GetKey(), a.GetMaxLevel())
			}
			if !subset([]string{"SI", "TK"}, a.GetControls()) {
				t.Errorf("%s controls %v lack SI or TK", r.GetKey(), a.GetControls())
			}
			if !subset(r.GetOperatorNationalities(), []string{"USA"}) || r.GetCountry() != "USA" {
				t.Errorf("%s operated by %v in %s; NOFORN needs US-operated US regions", r.GetKey(), r.GetOperatorNationalities(), r.GetCountry())
			}
		}
		if d := km(rs[0].GetLocation(), rs[1].GetLocation()); d < 1000 {
			t.Errorf("replicas %s and %s are %.0f km apart; want >= 1000", rs[0].GetKey(), rs[1].GetKey(), d)
		}
		if p.GetLabel().GetBanner() != "TOP SECRET//SI/TK//NOFORN" {
			t.Errorf("canonical label %q", p.GetLabel().GetBanner())
		}
	})

	t.Run("AUKUS secret on regions operated by the three nations", func(t *testing.T) {
		p := e.Place("examples/aukus-secret.yaml")
		for _, r := range chosen(t, p, regions, 2) {
			if r.GetAccreditation().GetMaxLevel() < pb.Level_LEVEL_SECRET {
				t.Errorf("%s accredited only to %v", r.GetKey(), r.GetAccreditation().GetMaxLevel())
			}
			if !subset(r.GetOperatorNationalities(), []string{"USA", "AUS", "GBR"}) {
				t.Errorf("%s operated by %v; label releasable to USA, AUS, GBR", r.GetKey(), r.GetOperatorNationalities())
			}
		}
	})

	t.Run("JEDI multi-vendor replicas on distinct providers with nearline", func(t *testing.T) {
		p := e.Place("examples/jedi-multivendor.yaml")
		providers := map[string]bool{}
		for _, r := range chosen(t, p, regions, 3) {
			providers[r.GetProvider()] = true
			if !slices.Contains(r.GetStorageTiers(), "nearline") {
				t.Errorf("%s lacks the nearline tier the workload needs", r.GetKey())
			}
			if r.GetAccreditation().GetMaxLevel() < pb.Level_LEVEL_SECRET || !subset(r.GetOperatorNationalities(), []string{"USA"}) {
				t.Errorf("%s cannot hold SECRET//NOFORN", r.GetKey())
			}
		}
		if len(providers) != 3 {
			t.Errorf("replicas on %d providers; want 3 distinct", len(providers))
		}
	})

	t.Run("ITAR data only in US-located US-person regions", func(t *testing.T) {
		p := e.Place("examples/itar-export.yaml")
		for _, r := range chosen(t, p, regions, 1) {
			if r.GetCountry() != "USA" || !subset(r.GetOperatorNationalities(), []string{"USA"}) {
				t.Errorf("%s in %s operated by %v", r.GetKey(), r.GetCountry(), r.GetOperatorNationalities())
			}
			if r.GetPersonnel() < pb.Personnel_PERSONNEL_SCREENED_US_PERSONS {
				t.Errorf("%s personnel %v; ITAR needs US persons", r.GetKey(), r.GetPersonnel())
			}
		}
	})

	t.Run("nearline storage tier is honoured", func(t *testing.T) {
		p := e.Place("examples/nearline-storage.yaml")
		for _, r := range chosen(t, p, regions, 1) {
			if !slices.Contains(r.GetStorageTiers(), "nearline") {
				t.Errorf("%s lacks nearline", r.GetKey())
			}
		}
	})

	t.Run("foreign militaries are separate tenants", func(t *testing.T) {
		nld := e.Place("examples/foreign-military-nld.yaml")
		pol := e.Place("examples/foreign-military-pol.yaml")
		var list pb.ListResponse
		e.OK(&list, "list", "--tenant", "nld-mod")
		var ids []string
		for _, p := range list.GetPlacements() {
			ids = append(ids, p.GetId())
			if p.GetTenant() != "nld-mod" {
				t.Errorf("list --tenant nld-mod returned %s of tenant %s", p.GetId(), p.GetTenant())
			}
		}
		if !slices.Contains(ids, nld.GetId()) || slices.Contains(ids, pol.GetId()) {
			t.Errorf("list --tenant nld-mod = %v; want %s and not %s", ids, nld.GetId(), pol.GetId())
		}
	})

	t.Run("refusal with every reason, nothing stored", func(t *testing.T) {
		var before pb.ListResponse
		e.OK(&before, "list", "--tenant", "ke-moh")
		r := e.Run("place", "-f", "cmd/classroutectl/testdata/kenya-gpu.yaml")
		if r.Code != 1 {
			t.Fatalf("exit %d; want 1\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stderr, "FailedPrecondition") || !strings.Contains(r.Stderr, "no eligible region") {
			t.Errorf("stderr %q; want FailedPrecondition: no eligible region", firstLine(r.Stderr))
		}
		if row := lineWith(r.Stderr, "azure/southafricanorth"); !strings.Contains(row, "residency") {
			t.Errorf("refusal row for azure/southafricanorth = %q; want residency", row)
		}
		if row := lineWith(r.Stderr, "ke-gov/konza-1"); !strings.Contains(row, "capability") {
			t.Errorf("refusal row for ke-gov/konza-1 = %q; want capability", row)
		}
		var after pb.ListResponse
		e.OK(&after, "list", "--tenant", "ke-moh")
		if len(after.GetPlacements()) != len(before.GetPlacements()) {
			t.Errorf("a refused placement was stored: %d placements before, %d after", len(before.GetPlacements()), len(after.GetPlacements()))
		}

		// NOFORN data is above the Australian tenant's ceiling (REL TO
		// USA, AUS, GBR): refused before any region is considered.
		r = e.Run("place", "-f", "cmd/classroutectl/testdata/aus-noforn.yaml")
		if r.Code != 1 || !strings.Contains(r.Stderr, "PermissionDenied") || !strings.Contains(r.Stderr, "ceiling TOP SECRET//REL TO USA, AUS, GBR") {
			t.Errorf("NOFORN for the Australian tenant: exit %d, %q; want PermissionDenied naming the ceiling", r.Code, firstLine(r.Stderr))
		}
	})

	t.Run("bad input names the field and stores nothing", func(t *testing.T) {
		r := e.Run("label", "check", "SECRET//NOFORN/REL TO USA, CAN")
		if r.Code != 1 || !strings.Contains(r.Stderr, "InvalidArgument") || !strings.Contains(r.Stderr, "NOFORN cannot be combined with REL TO") {
			t.Errorf("label check: exit %d, stderr %q", r.Code, r.Stderr)
		}
		if !strings.Contains(r.Stderr, "field banner") {
			t.Errorf("label check stderr %q does not name the field", r.Stderr)
		}
		r = e.Run("label", "check", "SECRET//REL TO USA, XYZ")
		if r.Code != 1 || !strings.Contains(r.Stderr, `unknown country code "XYZ"`) {
			t.Errorf("unknown country: exit %d, stderr %q", r.Code, r.Stderr)
		}
		var all pb.ListResponse
		e.OK(&all, "list", "--page-size", "1000")
		r = e.Run("place", "-f", "cmd/classroutectl/testdata/no-residency.yaml")
		if r.Code != 1 || !strings.Contains(r.Stderr, "InvalidArgument") || !strings.Contains(r.Stderr, "field workload.allowed_storage_countries") {
			t.Errorf("missing residency: exit %d, stderr %q", r.Code, r.Stderr)
		}
		var after pb.ListResponse
		e.OK(&after, "list", "--page-size", "1000")
		if len(after.GetPlacements()) != len(all.GetPlacements()) {
			t.Errorf("an invalid request stored a placement")
		}
	})

	t.Run("label check prints the canonical form", func(t *testing.T) {
		var resp pb.CheckLabelResponse
		e.OK(&resp, "label", "check", "SECRET//REL TO USA, FVEY")
		if got, want := resp.GetLabel().GetBanner(), "SECRET//REL TO USA, AUS, CAN, GBR, NZL"; got != want {
			t.Errorf("canonical %q; want %q", got, want)
		}
	})

	t.Run("place is idempotent on the request id; release returns capacity", func(t *testing.T) {
		first := e.Place("examples/nearline-storage.yaml", "--request-id", "e2e-idem-1")
		key := first.GetAssignments()[0].GetRegion()
		used := e.Regions()[key].GetUsed().GetMemoryMib()
		again := e.Place("examples/nearline-storage.yaml", "--request-id", "e2e-idem-1")
		if !proto.Equal(first, again) {
			t.Errorf("same request id gave a different placement:\n%v\n%v", first, again)
		}
		if got := e.Regions()[key].GetUsed().GetMemoryMib(); got != used {
			t.Errorf("repeat request changed usage of %s: %d -> %d", key, used, got)
		}
		r := e.Run("place", "-f", "examples/itar-export.yaml", "--request-id", "e2e-idem-1")
		if r.Code != 1 || !strings.Contains(r.Stderr, "AlreadyExists") {
			t.Errorf("reusing a request id for another workload: exit %d, %q; want AlreadyExists", r.Code, firstLine(r.Stderr))
		}
		var rel pb.ReleaseResponse
		e.OK(&rel, "release", "e2e-idem-1")
		if rel.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
			t.Errorf("released placement state %v", rel.GetPlacement().GetState())
		}
		if got, want := e.Regions()[key].GetUsed().GetMemoryMib(), used-first.GetWorkload().GetResources().GetMemoryMib(); got != want {
			t.Errorf("after release %s uses %d MiB; want %d", key, got, want)
		}
		var got pb.GetResponse
		e.OK(&got, "get", "e2e-idem-1")
		if got.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
			t.Errorf("get after release: state %v", got.GetPlacement().GetState())
		}
		if r := e.Run("get", "no-such-placement"); r.Code != 1 || !strings.Contains(r.Stderr, "NotFound") {
			t.Errorf("get unknown id: exit %d, %q; want NotFound", r.Code, firstLine(r.Stderr))
		}
	})

	t.Run("request ids are the tenant's; get and release take --tenant", func(t *testing.T) {
		dutch := e.Place("examples/foreign-military-nld.yaml", "--request-id", "e2e-shared-1")
		polish := e.Place("examples/foreign-military-pol.yaml", "--request-id", "e2e-shared-1")
		if dutch.GetTenant() != "nld-mod" || polish.GetTenant() != "pol-mod" {
			t.Fatalf("placements of e2e-shared-1: %s's and %s's; want nld-mod's and pol-mod's", dutch.GetTenant(), polish.GetTenant())
		}
		if r := e.Run("get", "e2e-shared-1"); r.Code != 1 || !strings.Contains(r.Stderr, "InvalidArgument") || !strings.Contains(r.Stderr, "field tenant") {
			t.Errorf("get of an id two tenants used: exit %d, stderr %q; want InvalidArgument on field tenant", r.Code, r.Stderr)
		}
		var got pb.GetResponse
		e.OK(&got, "get", "e2e-shared-1", "--tenant", "pol-mod")
		if !proto.Equal(got.GetPlacement(), polish) {
			t.Errorf("get --tenant pol-mod: %v; want %v", got.GetPlacement(), polish)
		}
		var rel pb.ReleaseResponse
		e.OK(&rel, "release", "--tenant", "nld-mod", "e2e-shared-1")
		if rel.GetPlacement().GetTenant() != "nld-mod" || rel.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
			t.Errorf("release --tenant nld-mod: %v", rel.GetPlacement())
		}
		e.OK(&got, "get", "e2e-shared-1", "--tenant", "pol-mod")
		if got.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED {
			t.Errorf("pol-mod's e2e-shared-1 after nld-mod's release: %v; want placed", got.GetPlacement().GetState())
		}
	})
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Two daemons on one etcd race for the last capacity of one region: the
// region never overcommits, and a request id sent to both at once makes
// one placement.
func TestTwoDaemonsRaceForLastCapacity(t *testing.T) {
	a, etcdAddr := startDaemon(t, "--catalog", "cmd/classroutectl/testdata/race-catalog.yaml")
	b := start(t, "--etcd", etcdAddr)
	const slots, attempts = 5, 12 // the region holds five 1-CPU replicas

	type outcome struct {
		id  string
		res cmdtest.Result
	}
	results := make(chan outcome, attempts+2)
	var wg sync.WaitGroup
	for i := range attempts {
		d := a
		if i%2 == 1 {
			d = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("race-%d", i)
			results <- outcome{id, d.Run("place", "-f", "cmd/classroutectl/testdata/race-workload.yaml", "--request-id", id, "-o", "json")}
		}()
	}
	// The same request id at both daemons at once.
	for _, d := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- outcome{"race-shared", d.Run("place", "-f", "cmd/classroutectl/testdata/race-workload.yaml", "--request-id", "race-shared", "-o", "json")}
		}()
	}
	wg.Wait()
	close(results)

	placed := map[string]bool{}
	var shared []*pb.Placement
	for o := range results {
		switch {
		case o.res.Code == 0:
			var resp pb.PlaceResponse
			if err := protojson.Unmarshal([]byte(o.res.Stdout), &resp); err != nil {
				t.Fatalf("%s: %v", o.id, err)
			}
			placed[resp.GetPlacement().GetId()] = true
			if o.id == "race-shared" {
				shared = append(shared, resp.GetPlacement())
			}
		case strings.Contains(o.res.Stderr, "FailedPrecondition") && strings.Contains(o.res.Stderr, "capacity"):
			// refused: the region is full
		default:
			t.Errorf("%s: exit %d: %s", o.id, o.res.Code, o.res.Stderr)
		}
	}
	if len(placed) != slots {
		t.Errorf("%d distinct placements committed; want exactly %d (the region's capacity)", len(placed), slots)
	}
	if len(shared) == 2 && !proto.Equal(shared[0], shared[1]) {
		t.Errorf("one request id at two daemons made two different placements:\n%v\n%v", shared[0], shared[1])
	}
	for _, d := range []*env{a, b} {
		r := d.Regions()["natgov/secret-small-1"]
		if got := r.GetUsed().GetMilliCpu(); got != int64(len(placed))*1000 || got > r.GetCapacity().GetMilliCpu() {
			t.Errorf("daemon %s sees %dm used of %dm for %d placements", d.Server, got, r.GetCapacity().GetMilliCpu(), len(placed))
		}
		var list pb.ListResponse
		d.OK(&list, "list", "--region", "natgov/secret-small-1", "--state", "placed")
		if len(list.GetPlacements()) != len(placed) {
			t.Errorf("daemon %s lists %d placements; want %d", d.Server, len(list.GetPlacements()), len(placed))
		}
	}
}
