package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// daemonBinary builds classrouted once per test binary, into binDir.
var (
	binDir       string
	daemonBinary = sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "classroute-bench-test-bin-")
		if err != nil {
			return "", err
		}
		binDir = dir
		return buildDaemon(context.Background(), dir, io.Discard)
	})
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needDaemon skips a test in -short mode or without /proc, and returns
// the built daemon.
func needDaemon(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a daemon")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	bin, err := daemonBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: valid
	}{
		{"defaults", nil, ""},
		{"small", []string{"-n", "300", "-hot-n", "0", "-c", "8", "-phases", "place,rest", "-o", "json"}, ""},
		{"weights", []string{"-mix", "unclass=3, kenya=1,nld=0"}, ""},
		{"unknown shape", []string{"-mix", "unclass,mars"}, `unknown shape "mars"`},
		{"shape twice", []string{"-mix", "kenya,kenya=2"}, "kenya twice"},
		{"bad weight", []string{"-mix", "kenya=-1"}, "weight of kenya"},
		{"no weight left", []string{"-hot-mix", "kenya=0"}, "no shape with a positive weight"},
		{"unknown phase", []string{"-phases", "place,sleep"}, `unknown phase "sleep"`},
		{"negative n", []string{"-n", "-1"}, "-n -1"},
		{"no concurrency", []string{"-c", "0"}, "-c 0"},
		{"bad output", []string{"-o", "yaml"}, "want table or json"},
		{"keep a kept dir", []string{"-keep", "-data-dir", "d"}, "-data-dir is always kept"},
		{"no rest", []string{"-rest", "0s"}, "-rest"},
		{"bad scale", []string{"-capacity-scale", "0"}, "-capacity-scale 0"},
		{"stray argument", []string{"run"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v; want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got error %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHotNDefault(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{0, 0}, {300, 300}, {10000, 10000}, {100000, 10000}, {1000000, 100000}} {
		c, err := parseFlags([]string{"-n", itoa(tt.n)}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.HotN != tt.want {
			t.Errorf("-n %d: hot-n %d; want %d", tt.n, c.HotN, tt.want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A mix holds each shape in its proportion over any whole number of
// rounds, interleaved rather than in runs.
func TestMix(t *testing.T) {
	m, err := parseMix("unclass=3,kenya=1,nld=2")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var order []string
	for i := range 60 {
		s := m.shapes[m.at(i)].Name
		count[s]++
		if i < 6 {
			order = append(order, s)
		}
	}
	if count["unclass"] != 30 || count["kenya"] != 10 || count["nld"] != 20 {
		t.Errorf("60 placements: %v; want unclass 30, kenya 10, nld 20", count)
	}
	if got, want := strings.Join(order, ","), "unclass,kenya,nld,unclass,nld,unclass"; got != want {
		t.Errorf("first round %s; want %s", got, want)
	}
	for _, s := range shapes {
		if s.w.GetResources() != tiny || s.w.GetReplicas() < 1 || s.w.GetTenant() == "" {
			t.Errorf("shape %s: %v", s.Name, s.w)
		}
	}
}

// The benchmark at a small size, end to end: every figure is measured,
// and each is sane. Then a second run on the same data directory finds
// the placements of the first (its addresses reused, its cold start on
// a populated store).
func TestBenchSmall(t *testing.T) {
	started := time.Now()
	bin := needDaemon(t)
	built := time.Since(started)
	dataDir := t.TempDir()
	cfg, err := parseFlags([]string{"-n", "300", "-hot-n", "300", "-rest", "2s", "-settle", "1s", "-quiet-max", "30s", "-puts", "1000",
		"-data-dir", dataDir, "-classrouted", bin, "-start-timeout", "60s", "-drain-timeout", "60s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	rep, err := run(context.Background(), cfg, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	var table bytes.Buffer
	rep.table(&table)
	t.Logf("built in %v, ran in %v:\n%s", built.Round(time.Millisecond), (time.Since(started) - built).Round(time.Millisecond), table.String())

	for _, p := range []struct {
		name string
		r    *PlaceResult
	}{{"mix", rep.Mix}, {"hot", rep.Hot}} {
		r := p.r
		if r == nil {
			t.Fatalf("%s: no result", p.name)
		}
		if r.Placed != 300 || r.Failed != 0 || r.Rate <= 0 || r.Seconds <= 0 {
			t.Errorf("%s: placed %d, failed %d (%s), %.1f/s in %.2fs; want 300, 0, a positive rate", p.name, r.Placed, r.Failed, r.FirstError, r.Rate, r.Seconds)
		}
		if l := r.Latency; l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 || time.Duration(l.Max) > 30*time.Second {
			t.Errorf("%s: latency %+v; want 0 < p50 <= p99 <= max <= 30s", p.name, l)
		}
		if r.Put == nil || r.Put.Rate <= 0 || r.Put.Puts != 1000 || r.Put.ValueBytes < 100 || r.Put.DBGrowth <= 0 {
			t.Errorf("%s: etcd baseline %+v; want 1000 puts of a placement's size at a positive rate", p.name, r.Put)
		}
		if r.Ratio <= 0 || r.Ratio != r.Rate/r.Put.Rate {
			t.Errorf("%s: ratio %v; want placements/s over puts/s, positive", p.name, r.Ratio)
		}
		placed := 0
		for _, s := range r.Shapes {
			placed += s.Placed
			if s.Placed == 0 || s.Latency.P99 <= 0 || len(s.Regions) == 0 {
				t.Errorf("%s: shape %s: %+v", p.name, s.Shape, s)
			}
		}
		if placed != r.Placed {
			t.Errorf("%s: shapes placed %d; want %d", p.name, placed, r.Placed)
		}
	}
	if len(rep.Mix.Shapes) != len(shapes) {
		t.Errorf("mix of %d shapes; want all %d", len(rep.Mix.Shapes), len(shapes))
	}
	if h := rep.Hot.Shapes; len(h) != 1 || len(h[0].Regions) != 1 || h[0].Regions["ke-gov/konza-1"] != 300 {
		t.Errorf("hot region mix: %+v; want all 300 in ke-gov/konza-1", h)
	}
	if want := 300 + 300 + len(shapes) + 1; rep.Placed != want || rep.HeldBefore != 0 || rep.HeldAfter != want {
		t.Errorf("held %d before, placed %d, held %d after; want 0, %d, %d (warm-ups included)", rep.HeldBefore, rep.Placed, rep.HeldAfter, want, want)
	}
	if rep.CaughtUp < Duration(time.Second) && !rep.QuietTimedOut {
		t.Errorf("quiet %v after placing; want at least the 1s settle, or the wait given up", rep.CaughtUp)
	}
	if rep.RestWindow < Duration(2*time.Second) || rep.RestCPU < 0 || rep.RestCPU > float64(100*runtime.NumCPU()) {
		t.Errorf("CPU at rest %.2f%% over %v; want 0 to %d%% over at least 2s", rep.RestCPU, rep.RestWindow, 100*runtime.NumCPU())
	}
	if rep.RSSFileAfter <= 0 || rep.RSSFileAfter >= rep.RSSAfter {
		t.Errorf("RSS of mapped files %d of %d; want a part of it", rep.RSSFileAfter, rep.RSSAfter)
	}
	if rep.RSSBefore < 1<<20 || rep.RSSAfter < 1<<20 || rep.RSSAfterStart < 1<<20 || rep.RSSPerPlacement == 0 {
		t.Errorf("RSS %d before, %d after, %d after the cold start, %.0f per placement; want each measured", rep.RSSBefore, rep.RSSAfter, rep.RSSAfterStart, rep.RSSPerPlacement)
	}
	// A placement is at least its record in etcd: a few hundred bytes.
	if rep.DBInUseAfter <= rep.DBInUseBefore || rep.DBPerPlacement < 100 || rep.DBLivePerPlacement < 100 || rep.DBLiveAfter > rep.DBInUseAfter {
		t.Errorf("etcd in use %d → %d (%.0f per placement), live %d → %d (%.0f per placement); want growth of at least 100 bytes a placement, live within in use",
			rep.DBInUseBefore, rep.DBInUseAfter, rep.DBPerPlacement, rep.DBLiveBefore, rep.DBLiveAfter, rep.DBLivePerPlacement)
	}
	// Per placement held, over the empty daemon and store: the first
	// run started on an empty store, so its before is that.
	if rep.EmptyRSS != rep.RSSBefore || rep.EmptyDBLive != rep.DBLiveBefore || rep.RSSPerHeld == 0 || rep.RSSAfterStartPerHeld == 0 || rep.DBLivePerHeld < 100 {
		t.Errorf("empty RSS %d (before %d), empty etcd %d (before %d); per placement held: RSS %.0f, after the cold start %.0f, etcd live %.0f; want each measured",
			rep.EmptyRSS, rep.RSSBefore, rep.EmptyDBLive, rep.DBLiveBefore, rep.RSSPerHeld, rep.RSSAfterStartPerHeld, rep.DBLivePerHeld)
	}
	if rep.DBQuota <= 0 {
		t.Errorf("etcd quota %d", rep.DBQuota)
	}
	if rep.FirstStart <= 0 || rep.ColdStart <= 0 || rep.ColdStart > Duration(60*time.Second) {
		t.Errorf("first start %v, cold start %v; want both measured, the cold start under 60s", rep.FirstStart, rep.ColdStart)
	}
	d := rep.Drain
	if d == nil {
		t.Fatal("no drain result")
	}
	if d.Placements == 0 || d.Moved != d.Placements || d.Stranded != 0 || d.Left != 0 || !d.Usage0 || d.TimedOut || d.Seconds <= 0 || d.Rate <= 0 {
		t.Errorf("drain %+v; want every placement moved, the region's usage at 0", d)
	}
	if d.Region == "ke-gov/konza-1" {
		t.Errorf("drained %s: its placements can go nowhere else", d.Region)
	}
	for _, want := range []string{"mix (", "hot region (kenya=1)", "daemon CPU at rest", "daemon RSS", "etcd db in use", "etcd db live", "cold start", "drain " + d.Region} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %q", want)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mix", "hot", "rest_cpu_percent", "rss_bytes_per_placement", "etcd_bytes_per_placement", "etcd_live_bytes_per_placement", "cold_start_seconds", "drain"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON report has no %q: %s", k, b)
		}
	}

	// Again on the same data: nothing placed, a cold start of what the
	// first run left.
	cfg, err = parseFlags([]string{"-n", "0", "-phases", "restart", "-data-dir", dataDir, "-classrouted", bin, "-start-timeout", "60s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log.Reset()
	again, err := run(context.Background(), cfg, &log)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, log.String())
	}
	if again.HeldBefore != rep.HeldAfter || again.HeldAfter != rep.HeldAfter || again.Placed != 0 || again.ColdStart <= 0 || again.Mix != nil || again.Drain != nil {
		t.Errorf("second run: held %d before, %d after, placed %d, cold start %v; want %d held, nothing placed, a cold start",
			again.HeldBefore, again.HeldAfter, again.Placed, again.ColdStart, rep.HeldAfter)
	}
	if again.EmptyRSS != rep.EmptyRSS || again.RSSAfterStartPerHeld == 0 {
		t.Errorf("second run: empty RSS %d, %.0f per placement held after the cold start; want the first run's %d, and a figure", again.EmptyRSS, again.RSSAfterStartPerHeld, rep.EmptyRSS)
	}
	if _, err := os.Stat(dataDir + "/" + stateFile); err != nil {
		t.Error(err)
	}
}

// A new store's daemon that cannot bind an address picked free (taken
// meanwhile by another process) is started again on other addresses.
func TestStartPicksAgainWhenAPortIsTaken(t *testing.T) {
	bin := needDaemon(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	picks := 0
	pickDaemonAddrs = func() (addrs, error) {
		a, err := pickAddrs()
		if picks++; picks == 1 {
			a.Listen = taken.Addr().String()
		}
		return a, err
	}
	defer func() { pickDaemonAddrs = pickAddrs }()
	dataDir := t.TempDir()
	cfg, err := parseFlags([]string{"-n", "0", "-phases", "", "-data-dir", dataDir, "-classrouted", bin, "-start-timeout", "60s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	rep, err := run(context.Background(), cfg, &log)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	st, err := loadState(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if picks != 2 || rep.FirstStart <= 0 || st.Addrs.Listen == taken.Addr().String() || !strings.Contains(log.String(), "picking again") {
		t.Errorf("%d picks, first start %v, listening on %s (%s taken); want a second pick, and a start there\n%s", picks, rep.FirstStart, st.Addrs.Listen, taken.Addr(), log.String())
	}
}
