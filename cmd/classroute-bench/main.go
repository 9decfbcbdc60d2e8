// Command classroute-bench measures a classrouted daemon at scale: it
// starts one with its embedded etcd as a process of its own, places N
// placements over gRPC, and reports throughput beside etcd's own put
// rate, CPU at rest, memory and etcd bytes per placement, cold-start
// time and the time to move every placement off a drained region.
//
//	go run ./cmd/classroute-bench                      # 10,000 placements, every phase
//	go run ./cmd/classroute-bench -n 100000 -o json
//	go run ./cmd/classroute-bench -n 0 -data-dir big -phases rest,restart,drain   # reuse a populated store
//
// It talks to the daemon over gRPC (the loopback development mode, whose
// principal no per-caller rate limit holds), to its etcd member over
// the etcd client API, and reads /proc/<pid>: nothing of the daemon's
// internals, so it measures any version of it. Linux only (/proc).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Config is what the bench is told.
type Config struct {
	N, HotN, Conc int
	Mix, HotMix   *mix
	Phases        []string
	DataDir       string // empty: a temporary directory, removed after
	Keep          bool
	Classrouted   string // a built daemon; empty: go build it
	Catalog       string
	DaemonArgs    []string
	CapacityScale int64
	Puts          int
	Settle, Rest  time.Duration
	// Quiet is the CPU (percent of one core) under which the daemon
	// counts as caught up; QuietMax bounds the wait for it.
	Quiet        float64
	QuietMax     time.Duration
	DrainRegion  string
	DrainTimeout time.Duration
	StartTimeout time.Duration
	Compact      bool
	ProfileDir   string
	Output       string
	JSONFile     string
}

// pickDaemonAddrs picks the addresses of a new store's daemon (a
// variable, for a test).
var pickDaemonAddrs = pickAddrs

// allPhases, in the order they run.
var allPhases = []string{"place", "hot", "rest", "restart", "drain"}

func (c *Config) has(phase string) bool { return slices.Contains(c.Phases, phase) }

func parseFlags(args []string, stderr io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("classroute-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: classroute-bench [flags]\n\n"+
			"Starts classrouted with its embedded etcd, places workloads over gRPC, and reports\n"+
			"placements/s beside etcd's own put rate, CPU at rest, RSS and etcd bytes per placement,\n"+
			"cold-start time and the time to drain a region. Shapes: %s.\n\n", shapeNames())
		fs.PrintDefaults()
	}
	var mixFlag, hotFlag, phases, daemonArgs string
	fs.IntVar(&c.N, "n", 10000, "placements of the mix")
	fs.IntVar(&c.HotN, "hot-n", -1, "placements of the hot-region mix (default: n, at most max(10000, n/10))")
	fs.IntVar(&c.Conc, "c", 64, "concurrent Place calls (and concurrent puts of the etcd baseline)")
	fs.StringVar(&mixFlag, "mix", "unclass=1,cui=1,secret=1,ts=1,aukus=1,kenya=1,nld=1", "the mix: shape=weight,...")
	fs.StringVar(&hotFlag, "hot-mix", "kenya", "the hot-region mix: shapes that all go to one region")
	fs.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run, of "+strings.Join(allPhases, ","))
	fs.StringVar(&c.DataDir, "data-dir", "", "the bench's data directory (the daemon's data, its log and the bench's state), kept and reused by later runs (placements add up); empty: a temporary one, removed after")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary data directory (and the daemon's log)")
	fs.StringVar(&c.Classrouted, "classrouted", "", "a classrouted binary to run (default: go build this checkout's)")
	fs.StringVar(&c.Catalog, "catalog", "", "catalogue for a new store (classrouted --catalog; default the built-in one)")
	fs.StringVar(&daemonArgs, "daemon-args", "", "more flags for classrouted, space-separated (e.g. \"--move-every 10ms\")")
	fs.Int64Var(&c.CapacityScale, "capacity-scale", 100000, "multiply the cpu and memory capacity of every region under a billion by this, over the Catalog API, so capacity never runs out (1: leave the catalogue alone)")
	fs.IntVar(&c.Puts, "puts", 0, "puts of the etcd baseline before each Place phase (default: that phase's placements, at least 2000, at most 20000)")
	fs.DurationVar(&c.Settle, "settle", 3*time.Second, "wait this long after placing before measuring at rest")
	fs.DurationVar(&c.Rest, "rest", 10*time.Second, "CPU-at-rest window")
	fs.Float64Var(&c.Quiet, "quiet", 5, "after -settle, wait until the daemon's CPU stays under this percent of one core for two 1s windows (its audit chainer and indexer have caught up) before measuring at rest; 0: do not wait")
	fs.DurationVar(&c.QuietMax, "quiet-max", 5*time.Minute, "give up waiting for -quiet after this, and measure anyway (the report says so)")
	fs.StringVar(&c.DrainRegion, "drain-region", "", "region to drain (default: the most used one every shape can leave)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 10*time.Minute, "give up waiting for a drain after this")
	fs.DurationVar(&c.StartTimeout, "start-timeout", 10*time.Minute, "give up waiting for the daemon to serve after this")
	fs.BoolVar(&c.Compact, "compact", true, "also report etcd's live bytes per placement: compact etcd's history (to the revision before the rest window) and read its size in use")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "write the daemon's CPU profile over the rest window and its heap after it here (classrouted --debug-listen)")
	fs.StringVar(&c.Output, "o", "table", "table or json")
	fs.StringVar(&c.JSONFile, "json", "", "also write the report, as JSON, to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	var err error
	if c.Mix, err = parseMix(mixFlag); err != nil {
		errs = append(errs, fmt.Errorf("-mix %w", err))
	}
	if c.HotMix, err = parseMix(hotFlag); err != nil {
		errs = append(errs, fmt.Errorf("-hot-mix %w", err))
	}
	for _, p := range strings.Split(phases, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(allPhases, p) {
			errs = append(errs, fmt.Errorf("-phases: unknown phase %q; want some of %s", p, strings.Join(allPhases, ",")))
			continue
		}
		if !slices.Contains(c.Phases, p) {
			c.Phases = append(c.Phases, p)
		}
	}
	c.DaemonArgs = strings.Fields(daemonArgs)
	if c.HotN < 0 {
		c.HotN = min(c.N, max(10000, c.N/10))
	}
	if c.N < 0 {
		errs = append(errs, fmt.Errorf("-n %d: must not be negative", c.N))
	}
	if c.Conc < 1 || c.Conc > 4096 {
		errs = append(errs, fmt.Errorf("-c %d: want 1 to 4096", c.Conc))
	}
	if c.CapacityScale < 1 {
		errs = append(errs, fmt.Errorf("-capacity-scale %d: want at least 1", c.CapacityScale))
	}
	if c.Puts < 0 {
		errs = append(errs, fmt.Errorf("-puts %d: must not be negative", c.Puts))
	}
	if c.Quiet < 0 || c.QuietMax <= 0 {
		errs = append(errs, errors.New("-quiet must not be negative, -quiet-max must be positive"))
	}
	if c.Rest <= 0 || c.Settle < 0 || c.DrainTimeout <= 0 || c.StartTimeout <= 0 {
		errs = append(errs, errors.New("-rest, -drain-timeout and -start-timeout must be positive, -settle not negative"))
	}
	if c.Output != "table" && c.Output != "json" {
		errs = append(errs, fmt.Errorf("-o %q: want table or json", c.Output))
	}
	if c.Keep && c.DataDir != "" {
		errs = append(errs, errors.New("-keep is for the temporary data directory: -data-dir is always kept"))
	}
	return c, errors.Join(errs...)
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "classroute-bench: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	if rep != nil {
		b, _ := json.MarshalIndent(rep, "", "  ")
		b = append(b, '\n')
		if cfg.Output == "json" {
			os.Stdout.Write(b)
		} else {
			rep.table(os.Stdout)
		}
		if cfg.JSONFile != "" {
			if werr := os.WriteFile(cfg.JSONFile, b, 0o644); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "classroute-bench: %v\n", err)
		os.Exit(1)
	}
}

// benchState is kept in the data directory: its addresses (the embedded
// member's peer address is in its data) and how many placements the
// bench has made there.
type benchState struct {
	Addrs  addrs `json:"addrs"`
	Placed int   `json:"placed"`
	// EmptyRSS and EmptyDBLive are the daemon's resident memory and
	// etcd's live size when the store held none of the bench's
	// placements: what a placement held costs is measured over them.
	EmptyRSS    int64 `json:"empty_rss_bytes,omitempty"`
	EmptyDBLive int64 `json:"empty_etcd_live_bytes,omitempty"`
}

const stateFile = "classroute-bench.json"

func loadState(dir string) (*benchState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		a, err := pickDaemonAddrs()
		return &benchState{Addrs: a}, err
	}
	if err != nil {
		return nil, err
	}
	var s benchState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	return &s, nil
}

func (s *benchState) save(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, stateFile), append(b, '\n'), 0o644)
}

// run runs the phases cfg asks for and reports what it measured; the
// report holds what was measured before an error too.
func run(ctx context.Context, cfg *Config, log io.Writer) (rep *Report, err error) {
	rep = &Report{Machine: machine(), Commit: commit(), Concurrency: cfg.Conc, Phases: cfg.Phases, Started: time.Now().UTC()}
	dataDir := cfg.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "classroute-bench-"); err != nil {
			return rep, err
		}
		if cfg.Keep {
			fmt.Fprintf(log, "data directory (kept): %s\n", dataDir)
		} else {
			defer os.RemoveAll(dataDir)
		}
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return rep, err
	}
	_, statErr := os.Stat(filepath.Join(dataDir, stateFile))
	fresh := errors.Is(statErr, os.ErrNotExist) // a new store: its addresses are not fixed yet
	st, err := loadState(dataDir)
	if err != nil {
		return rep, err
	}
	if cfg.ProfileDir == "" {
		st.Addrs.Debug = "" // only when asked: any daemon version runs
	} else if st.Addrs.Debug == "" {
		a, err := pickDaemonAddrs()
		if err != nil {
			return rep, err
		}
		st.Addrs.Debug = a.Debug
	}
	rep.HeldBefore, rep.HeldAfter = st.Placed, st.Placed
	bin := cfg.Classrouted
	if bin == "" {
		binDir, err := os.MkdirTemp("", "classroute-bench-bin-")
		if err != nil {
			return rep, err
		}
		defer os.RemoveAll(binDir)
		if bin, err = buildDaemon(ctx, binDir, log); err != nil {
			return rep, err
		}
	}
	extra := slices.Clone(cfg.DaemonArgs)
	if cfg.Catalog != "" {
		extra = append(extra, "--catalog", cfg.Catalog)
	}
	d := &daemon{bin: bin, dataDir: filepath.Join(dataDir, "classrouted"), addrs: st.Addrs, extra: extra, logPath: filepath.Join(dataDir, "classrouted.log")}
	defer func() {
		if serr := d.stop(); serr != nil && err == nil {
			err = fmt.Errorf("stopping classrouted: %w", serr)
		}
		if serr := st.save(dataDir); serr != nil && err == nil {
			err = serr
		}
	}()
	fmt.Fprintf(log, "starting classrouted (data %s, log %s)\n", dataDir, d.logPath)
	took, err := d.start(ctx, cfg.StartTimeout)
	for try := 1; fresh && errors.Is(err, errAddrInUse) && try < 3; try++ {
		// A port found free was taken before the daemon bound it (tests
		// run side by side): a new store may start again elsewhere.
		fmt.Fprintf(log, "an address picked free was taken meanwhile; picking again\n")
		if err := os.RemoveAll(d.dataDir); err != nil {
			return rep, err
		}
		debug := st.Addrs.Debug
		if st.Addrs, err = pickDaemonAddrs(); err != nil {
			return rep, err
		}
		if debug == "" {
			st.Addrs.Debug = ""
		}
		d.addrs = st.Addrs
		took, err = d.start(ctx, cfg.StartTimeout)
	}
	if err != nil {
		return rep, err
	}
	rep.FirstStart = Duration(took)
	if err := st.save(dataDir); err != nil {
		return rep, err
	}

	ccs, err := conns(st.Addrs.Listen, min(8, max(1, cfg.Conc/16)))
	if err != nil {
		return rep, err
	}
	defer func() {
		for _, cc := range ccs {
			cc.Close()
		}
	}()
	etcd, err := clientv3.New(clientv3.Config{Endpoints: []string{st.Addrs.EtcdClient}, DialTimeout: 5 * time.Second, Logger: nil})
	if err != nil {
		return rep, err
	}
	defer etcd.Close()
	cat := pb.NewCatalogServiceClient(ccs[0])
	if err := raiseCapacity(ctx, cat, cfg.CapacityScale, log); err != nil {
		return rep, err
	}

	b := &bench{cfg: cfg, rep: rep, d: d, etcd: etcd, cat: cat, ccs: ccs, st: st, dir: dataDir, log: log}
	return rep, b.run(ctx)
}

// bench holds a run's connections and figures.
type bench struct {
	cfg  *Config
	rep  *Report
	d    *daemon
	etcd *clientv3.Client
	cat  pb.CatalogServiceClient
	ccs  []*grpc.ClientConn
	st   *benchState
	dir  string // the bench's data directory (the daemon's is in it)
	log  io.Writer
}

func (b *bench) placer() *placer {
	var cs []pb.PlacementServiceClient
	for _, cc := range b.ccs {
		cs = append(cs, pb.NewPlacementServiceClient(cc))
	}
	// Request ids unique to the run: a reused store keeps earlier runs'.
	return &placer{conns: cs, runID: "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36), conc: b.cfg.Conc, log: b.log}
}

func (b *bench) run(ctx context.Context) error {
	cfg, rep := b.cfg, b.rep
	// Before: the daemon's memory and etcd's size, with the store as
	// it was found.
	var err error
	if rep.RSSBefore, err = rss(b.d.pid()); err != nil {
		return err
	}
	before, err := dbStatus(ctx, b.etcd)
	if err != nil {
		return err
	}
	rep.DBQuota = before.DbSizeQuota
	rep.DBInUseBefore = before.DbSizeInUse
	if cfg.Compact {
		// Compacted, the pages of the history are free, and placing
		// reuses them: the growth in use counts from here.
		if err := compact(ctx, b.etcd, before.Header.Revision); err != nil {
			return err
		}
		st, err := dbStatus(ctx, b.etcd)
		if err != nil {
			return err
		}
		rep.DBLiveBefore, rep.DBInUseBefore = st.DbSizeInUse, st.DbSizeInUse
	}
	if b.st.Placed == 0 && b.st.EmptyRSS == 0 {
		b.st.EmptyRSS, b.st.EmptyDBLive = rep.RSSBefore, rep.DBLiveBefore
	}
	rep.EmptyRSS, rep.EmptyDBLive = b.st.EmptyRSS, b.st.EmptyDBLive

	pl := b.placer()
	var putGrowth int64
	var failed error
	for _, ph := range []struct {
		name string
		m    *mix
		n    int
		out  **PlaceResult
	}{{"place", cfg.Mix, cfg.N, &rep.Mix}, {"hot", cfg.HotMix, cfg.HotN, &rep.Hot}} {
		if !cfg.has(ph.name) || ph.n == 0 {
			continue
		}
		size, err := pl.warmUp(ctx, ph.name, ph.m)
		if err != nil {
			return err
		}
		b.placed(len(ph.m.shapes))
		puts := cfg.Puts
		if puts == 0 {
			puts = min(20000, max(2000, ph.n))
		}
		fmt.Fprintf(b.log, "%s: etcd baseline, %d puts of %d bytes at c=%d\n", ph.name, puts, size, cfg.Conc)
		put, err := putRate(ctx, b.etcd, fmt.Sprintf("/classroute-bench/%s-%s/", pl.runID, ph.name), puts, cfg.Conc, size)
		if err != nil {
			return err
		}
		putGrowth += put.DBGrowth
		fmt.Fprintf(b.log, "%s: %d placements of %s at c=%d\n", ph.name, ph.n, ph.m, cfg.Conc)
		res := pl.place(ctx, ph.name, ph.m, ph.n)
		res.Put = put
		if put.Rate > 0 {
			res.Ratio = res.Rate / put.Rate
		}
		*ph.out = res
		b.placed(res.Placed)
		if err := b.st.save(b.dir); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// A failed call (one past its 30s deadline, say) is a figure:
		// the run goes on, and fails at its end.
		if res.Failed > 0 {
			failed = errors.Join(failed, fmt.Errorf("%s: %d placements failed; the first: %s", ph.name, res.Failed, res.FirstError))
		}
	}

	if cfg.has("rest") {
		if err := b.rest(ctx, rep.Placed, putGrowth); err != nil {
			return err
		}
	}
	if cfg.has("restart") {
		fmt.Fprintf(b.log, "restart: stopping classrouted\n")
		if err := b.d.stop(); err != nil {
			return fmt.Errorf("stopping classrouted: %w", err)
		}
		took, err := b.d.start(ctx, cfg.StartTimeout)
		if err != nil {
			return err
		}
		rep.ColdStart = Duration(took)
		if rep.RSSAfterStart, err = rss(b.d.pid()); err != nil {
			return err
		}
		if rep.EmptyRSS > 0 && rep.HeldAfter > 0 {
			rep.RSSAfterStartPerHeld = float64(rep.RSSAfterStart-rep.EmptyRSS) / float64(rep.HeldAfter)
		}
		fmt.Fprintf(b.log, "restart: serving after %v\n", took.Round(time.Millisecond))
	}
	if cfg.has("drain") {
		place := pb.NewPlacementServiceClient(b.ccs[0])
		region := cfg.DrainRegion
		if region == "" {
			run := slices.Concat(cfg.Mix.shapes, cfg.HotMix.shapes)
			if region, err = chooseDrainRegion(ctx, b.cat, place, run); err != nil {
				return err
			}
		}
		if rep.Drain, err = drain(ctx, b.cat, place, region, cfg.DrainTimeout, b.log); err != nil {
			return err
		}
	}
	return failed
}

// placed counts n placements made (a call past its deadline may have
// made one too: it is not counted).
func (b *bench) placed(n int) {
	b.rep.Placed += n
	b.st.Placed += n
	b.rep.HeldAfter = b.st.Placed
}

// cpuOver is the daemon's CPU (user and system, in percent of one core)
// over the next d, and the window it was measured over.
func (b *bench) cpuOver(ctx context.Context, d time.Duration) (float64, time.Duration, error) {
	cpu0, err := cpuTime(b.d.pid())
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	case <-time.After(d):
	}
	cpu1, err := cpuTime(b.d.pid())
	if err != nil {
		return 0, 0, err
	}
	window := time.Since(t0)
	return 100 * float64(cpu1-cpu0) / float64(window), window, nil
}

// waitQuiet waits until the daemon's CPU has stayed under cfg.Quiet for
// two one-second windows: until the work that follows placing (the audit
// chainer and indexer reading the trail behind it) has caught up. It
// reports how long that took, or that it gave up after cfg.QuietMax.
func (b *bench) waitQuiet(ctx context.Context) error {
	cfg, rep := b.cfg, b.rep
	if cfg.Quiet <= 0 {
		return nil
	}
	start, quiet := time.Now(), 0
	for quiet < 2 {
		if time.Since(start) > cfg.QuietMax {
			rep.QuietTimedOut = true
			fmt.Fprintf(b.log, "rest: still above %.0f%% of a core after %v; measuring anyway\n", cfg.Quiet, cfg.QuietMax)
			break
		}
		pct, _, err := b.cpuOver(ctx, time.Second)
		if err != nil {
			return err
		}
		if pct < cfg.Quiet {
			quiet++
		} else {
			quiet = 0
		}
	}
	rep.CaughtUp = Duration(cfg.Settle + time.Since(start))
	fmt.Fprintf(b.log, "rest: quiet %v after placing\n", time.Duration(rep.CaughtUp).Round(100*time.Millisecond))
	return nil
}

// rest measures the daemon at rest after placing: its CPU over the rest
// window, its memory, and etcd's size, per placement made.
func (b *bench) rest(ctx context.Context, placed int, putGrowth int64) error {
	cfg, rep := b.cfg, b.rep
	fmt.Fprintf(b.log, "rest: settling %v, then measuring CPU for %v\n", cfg.Settle, cfg.Rest)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cfg.Settle):
	}
	if err := b.waitQuiet(ctx); err != nil {
		return err
	}
	head, err := dbStatus(ctx, b.etcd)
	if err != nil {
		return err
	}
	var profile chan error
	if cfg.ProfileDir != "" {
		profile = make(chan error, 1)
		go func() {
			profile <- fetchProfile(ctx, b.d.addrs.Debug, fmt.Sprintf("profile?seconds=%d", max(1, int(cfg.Rest.Seconds()))), filepath.Join(cfg.ProfileDir, "cpu-rest.pprof"))
		}()
	}
	pct, window, err := b.cpuOver(ctx, cfg.Rest)
	if err != nil {
		return err
	}
	rep.RestCPU, rep.RestWindow = pct, Duration(window)
	if rep.RSSAfter, err = rss(b.d.pid()); err != nil {
		return err
	}
	if rep.RSSFileAfter, err = procStatus(b.d.pid(), "RssFile"); err != nil {
		return err
	}
	if profile != nil {
		if err := <-profile; err != nil {
			return err
		}
		if err := fetchProfile(ctx, b.d.addrs.Debug, "heap", filepath.Join(cfg.ProfileDir, "heap-rest.pprof")); err != nil {
			return err
		}
	}
	after, err := dbStatus(ctx, b.etcd)
	if err != nil {
		return err
	}
	rep.DBInUseAfter = after.DbSizeInUse
	rep.PutGrowth = putGrowth
	if cfg.Compact {
		// To the revision read before the window: the daemon has had
		// the window to read (and chain) what it wrote before.
		if err := compact(ctx, b.etcd, head.Header.Revision); err != nil {
			return err
		}
		st, err := dbStatus(ctx, b.etcd)
		if err != nil {
			return err
		}
		rep.DBLiveAfter = st.DbSizeInUse
	}
	if held := rep.HeldAfter; held > 0 {
		if rep.EmptyRSS > 0 {
			rep.RSSPerHeld = float64(rep.RSSAfter-rep.EmptyRSS) / float64(held)
		}
		if rep.EmptyDBLive > 0 && rep.DBLiveAfter > 0 {
			rep.DBLivePerHeld = float64(rep.DBLiveAfter-rep.EmptyDBLive) / float64(held)
		}
	}
	if placed > 0 {
		rep.RSSPerPlacement = float64(rep.RSSAfter-rep.RSSBefore) / float64(placed)
		rep.DBPerPlacement = float64(rep.DBInUseAfter-rep.DBInUseBefore-putGrowth) / float64(placed)
		if cfg.Compact {
			rep.DBLivePerPlacement = float64(rep.DBLiveAfter-rep.DBLiveBefore) / float64(placed)
		}
	}
	return nil
}
