package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// The end-to-end test builds both binaries, starts the daemon with its
// embedded etcd and the default catalogue on loopback, and drives the CLI
// through the seed scenarios of shared/DOMAIN.md §0. Every check compares a
// placement with the catalogue's facts about the chosen regions, so it
// fails if classroute misroutes, whatever the catalogue holds.

type result struct {
	code           int
	stdout, stderr string
}

type env struct {
	t      *testing.T
	ctl    string
	server string
	root   string // repository root
	// kill ends the daemon with SIGKILL: no shutdown of any kind.
	kill func()
}

func repoRoot(t *testing.T) string {
	t.Helper()
	return repoRootDir()
}

func repoRootDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// binaries builds the daemon, the CLI and the etcd member once per test
// binary.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "classroute-e2e-bin")
	if err != nil {
		return "", err
	}
	root := repoRootDir()
	for _, pkg := range []string{"./cmd/classrouted", "./cmd/classroutectl", "./cmd/classroute-etcd"} {
		cmd := exec.Command("go", "build", "-o", dir, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	return dir, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := binaries(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

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
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, extra: extra}
	d.env = &env{t: t, ctl: filepath.Join(bin, "classroutectl"), root: repoRoot(t)}
	d.pickAddrs(t.TempDir())
	return d
}

// pickAddrs gives the daemon free loopback addresses. A port found free
// may be taken by another process before the daemon binds it (the
// packages' tests run side by side): start picks again then.
func (d *daemon) pickAddrs(dataDir string) {
	listen := freeAddr(d.t)
	d.etcdAddr, d.metrics = freeAddr(d.t), freeAddr(d.t)
	d.args = append([]string{
		"--listen", listen,
		"--data-dir", dataDir,
		"--embedded-etcd-client", d.etcdAddr,
		"--embedded-etcd-peer", freeAddr(d.t),
		"--metrics-listen", d.metrics,
		"--log-level", "debug"}, d.extra...)
	d.env.server = listen
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
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "classrouted"), d.args...)
	cmd.Dir = d.env.root
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
		r := d.env.run("regions", "-o", "json", "--timeout", "2s")
		if r.code == 0 {
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
			t.Fatalf("daemon not serving after 60s: %s\nlogs:\n%s", r.stderr, d.logs.String())
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

func (e *env) run(args ...string) result {
	e.t.Helper()
	args = append(args, "--server", e.server)
	cmd := exec.Command(e.ctl, args...)
	cmd.Dir = e.root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run classroutectl %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// ok runs the CLI, requires exit 0, and decodes -o json output into m.
func (e *env) ok(m proto.Message, args ...string) {
	e.t.Helper()
	r := e.run(append(args, "-o", "json")...)
	if r.code != 0 {
		e.t.Fatalf("classroutectl %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	if err := protojson.Unmarshal([]byte(r.stdout), m); err != nil {
		e.t.Fatalf("classroutectl %v: decoding output: %v\n%s", args, err, r.stdout)
	}
}

func (e *env) regions() map[string]*pb.Region {
	var resp pb.ListRegionsResponse
	e.ok(&resp, "regions")
	m := make(map[string]*pb.Region)
	for _, r := range resp.GetRegions() {
		m[r.GetKey()] = r
	}
	if len(m) == 0 {
		e.t.Fatal("catalogue is empty")
	}
	return m
}

func (e *env) place(spec string, extra ...string) *pb.Placement {
	e.t.Helper()
	var resp pb.PlaceResponse
	e.ok(&resp, append([]string{"place", "-f", spec}, extra...)...)
	p := resp.GetPlacement()
	if p.GetState() != pb.PlacementState_PLACEMENT_STATE_PLACED {
		e.t.Fatalf("placement state %v; want PLACED", p.GetState())
	}
	return p
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
	regions := e.regions()

	t.Run("kenya health records stay in Kenya", func(t *testing.T) {
		p := e.place("examples/kenya-health-records.yaml")
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
		e.ok(&plan, "plan", "-f", "examples/kenya-wants-south-africa.yaml")
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
		r := e.run("plan", "-f", "examples/kenya-wants-south-africa.yaml")
		line := lineWith(r.stdout, "azure/southafricanorth")
		if r.code != 0 || !strings.Contains(line, "refused") || !strings.Contains(line, "residency") {
			t.Errorf("plan table row for azure/southafricanorth = %q (exit %d); want refused with residency", line, r.code)
		}
	})

	t.Run("top secret SI/TK NOFORN on US-operated TS regions far apart", func(t *testing.T) {
		p := e.place("examples/ts-si-tk-noforn.yaml")
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
		p := e.place("examples/aukus-secret.yaml")
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
		p := e.place("examples/jedi-multivendor.yaml")
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
		p := e.place("examples/itar-export.yaml")
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
		p := e.place("examples/nearline-storage.yaml")
		for _, r := range chosen(t, p, regions, 1) {
			if !slices.Contains(r.GetStorageTiers(), "nearline") {
				t.Errorf("%s lacks nearline", r.GetKey())
			}
		}
	})

	t.Run("foreign militaries are separate tenants", func(t *testing.T) {
		nld := e.place("examples/foreign-military-nld.yaml")
		pol := e.place("examples/foreign-military-pol.yaml")
		var list pb.ListResponse
		e.ok(&list, "list", "--tenant", "nld-mod")
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
		e.ok(&before, "list", "--tenant", "ke-moh")
		r := e.run("place", "-f", "cmd/classroutectl/testdata/kenya-gpu.yaml")
		if r.code != 1 {
			t.Fatalf("exit %d; want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "FailedPrecondition") || !strings.Contains(r.stderr, "no eligible region") {
			t.Errorf("stderr %q; want FailedPrecondition: no eligible region", firstLine(r.stderr))
		}
		if row := lineWith(r.stderr, "azure/southafricanorth"); !strings.Contains(row, "residency") {
			t.Errorf("refusal row for azure/southafricanorth = %q; want residency", row)
		}
		if row := lineWith(r.stderr, "ke-gov/konza-1"); !strings.Contains(row, "capability") {
			t.Errorf("refusal row for ke-gov/konza-1 = %q; want capability", row)
		}
		var after pb.ListResponse
		e.ok(&after, "list", "--tenant", "ke-moh")
		if len(after.GetPlacements()) != len(before.GetPlacements()) {
			t.Errorf("a refused placement was stored: %d placements before, %d after", len(before.GetPlacements()), len(after.GetPlacements()))
		}

		// NOFORN data is above the Australian tenant's ceiling (REL TO
		// USA, AUS, GBR): refused before any region is considered.
		r = e.run("place", "-f", "cmd/classroutectl/testdata/aus-noforn.yaml")
		if r.code != 1 || !strings.Contains(r.stderr, "PermissionDenied") || !strings.Contains(r.stderr, "ceiling TOP SECRET//REL TO USA, AUS, GBR") {
			t.Errorf("NOFORN for the Australian tenant: exit %d, %q; want PermissionDenied naming the ceiling", r.code, firstLine(r.stderr))
		}
	})

	t.Run("bad input names the field and stores nothing", func(t *testing.T) {
		r := e.run("label", "check", "SECRET//NOFORN/REL TO USA, CAN")
		if r.code != 1 || !strings.Contains(r.stderr, "InvalidArgument") || !strings.Contains(r.stderr, "NOFORN cannot be combined with REL TO") {
			t.Errorf("label check: exit %d, stderr %q", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "field banner") {
			t.Errorf("label check stderr %q does not name the field", r.stderr)
		}
		r = e.run("label", "check", "SECRET//REL TO USA, XYZ")
		if r.code != 1 || !strings.Contains(r.stderr, `unknown country code "XYZ"`) {
			t.Errorf("unknown country: exit %d, stderr %q", r.code, r.stderr)
		}
		var all pb.ListResponse
		e.ok(&all, "list", "--page-size", "1000")
		r = e.run("place", "-f", "cmd/classroutectl/testdata/no-residency.yaml")
		if r.code != 1 || !strings.Contains(r.stderr, "InvalidArgument") || !strings.Contains(r.stderr, "field workload.allowed_storage_countries") {
			t.Errorf("missing residency: exit %d, stderr %q", r.code, r.stderr)
		}
		var after pb.ListResponse
		e.ok(&after, "list", "--page-size", "1000")
		if len(after.GetPlacements()) != len(all.GetPlacements()) {
			t.Errorf("an invalid request stored a placement")
		}
	})

	t.Run("label check prints the canonical form", func(t *testing.T) {
		var resp pb.CheckLabelResponse
		e.ok(&resp, "label", "check", "SECRET//REL TO USA, FVEY")
		if got, want := resp.GetLabel().GetBanner(), "SECRET//REL TO USA, AUS, CAN, GBR, NZL"; got != want {
			t.Errorf("canonical %q; want %q", got, want)
		}
	})

	t.Run("place is idempotent on the request id; release returns capacity", func(t *testing.T) {
		first := e.place("examples/nearline-storage.yaml", "--request-id", "e2e-idem-1")
		key := first.GetAssignments()[0].GetRegion()
		used := e.regions()[key].GetUsed().GetMemoryMib()
		again := e.place("examples/nearline-storage.yaml", "--request-id", "e2e-idem-1")
		if !proto.Equal(first, again) {
			t.Errorf("same request id gave a different placement:\n%v\n%v", first, again)
		}
		if got := e.regions()[key].GetUsed().GetMemoryMib(); got != used {
			t.Errorf("repeat request changed usage of %s: %d -> %d", key, used, got)
		}
		r := e.run("place", "-f", "examples/itar-export.yaml", "--request-id", "e2e-idem-1")
		if r.code != 1 || !strings.Contains(r.stderr, "AlreadyExists") {
			t.Errorf("reusing a request id for another workload: exit %d, %q; want AlreadyExists", r.code, firstLine(r.stderr))
		}
		var rel pb.ReleaseResponse
		e.ok(&rel, "release", "e2e-idem-1")
		if rel.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
			t.Errorf("released placement state %v", rel.GetPlacement().GetState())
		}
		if got, want := e.regions()[key].GetUsed().GetMemoryMib(), used-first.GetWorkload().GetResources().GetMemoryMib(); got != want {
			t.Errorf("after release %s uses %d MiB; want %d", key, got, want)
		}
		var got pb.GetResponse
		e.ok(&got, "get", "e2e-idem-1")
		if got.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
			t.Errorf("get after release: state %v", got.GetPlacement().GetState())
		}
		if r := e.run("get", "no-such-placement"); r.code != 1 || !strings.Contains(r.stderr, "NotFound") {
			t.Errorf("get unknown id: exit %d, %q; want NotFound", r.code, firstLine(r.stderr))
		}
	})

	t.Run("request ids are the tenant's; get and release take --tenant", func(t *testing.T) {
		dutch := e.place("examples/foreign-military-nld.yaml", "--request-id", "e2e-shared-1")
		polish := e.place("examples/foreign-military-pol.yaml", "--request-id", "e2e-shared-1")
		if dutch.GetTenant() != "nld-mod" || polish.GetTenant() != "pol-mod" {
			t.Fatalf("placements of e2e-shared-1: %s's and %s's; want nld-mod's and pol-mod's", dutch.GetTenant(), polish.GetTenant())
		}
		if r := e.run("get", "e2e-shared-1"); r.code != 1 || !strings.Contains(r.stderr, "InvalidArgument") || !strings.Contains(r.stderr, "field tenant") {
			t.Errorf("get of an id two tenants used: exit %d, stderr %q; want InvalidArgument on field tenant", r.code, r.stderr)
		}
		var got pb.GetResponse
		e.ok(&got, "get", "e2e-shared-1", "--tenant", "pol-mod")
		if !proto.Equal(got.GetPlacement(), polish) {
			t.Errorf("get --tenant pol-mod: %v; want %v", got.GetPlacement(), polish)
		}
		var rel pb.ReleaseResponse
		e.ok(&rel, "release", "--tenant", "nld-mod", "e2e-shared-1")
		if rel.GetPlacement().GetTenant() != "nld-mod" || rel.GetPlacement().GetState() != pb.PlacementState_PLACEMENT_STATE_RELEASED {
			t.Errorf("release --tenant nld-mod: %v", rel.GetPlacement())
		}
		e.ok(&got, "get", "e2e-shared-1", "--tenant", "pol-mod")
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
		res result
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
			results <- outcome{id, d.run("place", "-f", "cmd/classroutectl/testdata/race-workload.yaml", "--request-id", id, "-o", "json")}
		}()
	}
	// The same request id at both daemons at once.
	for _, d := range []*env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- outcome{"race-shared", d.run("place", "-f", "cmd/classroutectl/testdata/race-workload.yaml", "--request-id", "race-shared", "-o", "json")}
		}()
	}
	wg.Wait()
	close(results)

	placed := map[string]bool{}
	var shared []*pb.Placement
	for o := range results {
		switch {
		case o.res.code == 0:
			var resp pb.PlaceResponse
			if err := protojson.Unmarshal([]byte(o.res.stdout), &resp); err != nil {
				t.Fatalf("%s: %v", o.id, err)
			}
			placed[resp.GetPlacement().GetId()] = true
			if o.id == "race-shared" {
				shared = append(shared, resp.GetPlacement())
			}
		case strings.Contains(o.res.stderr, "FailedPrecondition") && strings.Contains(o.res.stderr, "capacity"):
			// refused: the region is full
		default:
			t.Errorf("%s: exit %d: %s", o.id, o.res.code, o.res.stderr)
		}
	}
	if len(placed) != slots {
		t.Errorf("%d distinct placements committed; want exactly %d (the region's capacity)", len(placed), slots)
	}
	if len(shared) == 2 && !proto.Equal(shared[0], shared[1]) {
		t.Errorf("one request id at two daemons made two different placements:\n%v\n%v", shared[0], shared[1])
	}
	for _, d := range []*env{a, b} {
		r := d.regions()["natgov/secret-small-1"]
		if got := r.GetUsed().GetMilliCpu(); got != int64(len(placed))*1000 || got > r.GetCapacity().GetMilliCpu() {
			t.Errorf("daemon %s sees %dm used of %dm for %d placements", d.server, got, r.GetCapacity().GetMilliCpu(), len(placed))
		}
		var list pb.ListResponse
		d.ok(&list, "list", "--region", "natgov/secret-small-1", "--state", "placed")
		if len(list.GetPlacements()) != len(placed) {
			t.Errorf("daemon %s lists %d placements; want %d", d.server, len(list.GetPlacements()), len(placed))
		}
	}
}
