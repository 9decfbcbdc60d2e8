package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// Duration is a time.Duration that JSON writes as seconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(d).Seconds(), 'f', -1, 64)), nil
}

func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t >= 10*time.Second:
		return t.Round(100 * time.Millisecond).String()
	case t >= time.Second:
		return t.Round(10 * time.Millisecond).String()
	case t >= time.Millisecond:
		return t.Round(100 * time.Microsecond).String()
	}
	return t.Round(time.Microsecond).String()
}

// Report is every figure of a run; a phase not run leaves its figures
// zero (or nil).
type Report struct {
	Machine     string    `json:"machine"`
	Commit      string    `json:"commit,omitempty"`
	Started     time.Time `json:"started"`
	Concurrency int       `json:"concurrency"`
	Phases      []string  `json:"phases"`

	// HeldBefore and HeldAfter count the placements the bench has made
	// in this data directory; Placed those of this run (warm-ups
	// included).
	HeldBefore int      `json:"held_before"`
	Placed     int      `json:"placed"`
	HeldAfter  int      `json:"held_after"`
	FirstStart Duration `json:"first_start_seconds"`

	Mix *PlaceResult `json:"mix,omitempty"`
	Hot *PlaceResult `json:"hot,omitempty"`

	// RestCPU is the daemon's CPU (user and system) over RestWindow
	// after placing, in % of one core.
	RestCPU    float64  `json:"rest_cpu_percent"`
	RestWindow Duration `json:"rest_window_seconds"`
	// CaughtUp is how long after the last placement the daemon's CPU
	// fell quiet (-quiet): the chainer's and indexer's backlog.
	CaughtUp      Duration `json:"caught_up_seconds,omitempty"`
	QuietTimedOut bool     `json:"quiet_timed_out,omitempty"`
	// Resident memory of the daemon process (its embedded etcd
	// included): before placing, after placing and settling, and once
	// serving again after the cold start.
	RSSBefore int64 `json:"rss_before_bytes"`
	RSSAfter  int64 `json:"rss_after_bytes"`
	// RSSFileAfter is the part of RSSAfter that maps files: etcd's
	// database (bbolt maps it) and the binary; the rest is the heap.
	RSSFileAfter    int64   `json:"rss_file_after_bytes"`
	RSSPerPlacement float64 `json:"rss_bytes_per_placement"`
	RSSAfterStart   int64   `json:"rss_after_cold_start_bytes"`
	// Per placement held (every one the bench has made in the data
	// directory), over the empty daemon's RSS: after placing, and once
	// serving after the cold start (no garbage of placing left).
	EmptyRSS             int64   `json:"rss_empty_bytes,omitempty"`
	RSSPerHeld           float64 `json:"rss_bytes_per_placement_held,omitempty"`
	RSSAfterStartPerHeld float64 `json:"rss_after_cold_start_bytes_per_placement_held,omitempty"`
	// etcd's database size in use, before and after placing (history
	// included; the growth of the put baselines is subtracted), and
	// live: after compacting the history.
	DBQuota            int64   `json:"etcd_quota_bytes"`
	DBInUseBefore      int64   `json:"etcd_in_use_before_bytes"`
	DBInUseAfter       int64   `json:"etcd_in_use_after_bytes"`
	PutGrowth          int64   `json:"etcd_put_baseline_growth_bytes"`
	DBPerPlacement     float64 `json:"etcd_bytes_per_placement"`
	DBLiveBefore       int64   `json:"etcd_live_before_bytes,omitempty"`
	DBLiveAfter        int64   `json:"etcd_live_after_bytes,omitempty"`
	DBLivePerPlacement float64 `json:"etcd_live_bytes_per_placement,omitempty"`
	EmptyDBLive        int64   `json:"etcd_live_empty_bytes,omitempty"`
	DBLivePerHeld      float64 `json:"etcd_live_bytes_per_placement_held,omitempty"`

	ColdStart Duration     `json:"cold_start_seconds"`
	Drain     *DrainResult `json:"drain,omitempty"`
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func kib(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }

func (r *Report) table(w io.Writer) {
	fmt.Fprintf(w, "classroute-bench  %s", r.Started.Format("2006-01-02 15:04 MST"))
	if r.Commit != "" {
		fmt.Fprintf(w, "  commit %s", r.Commit)
	}
	fmt.Fprintf(w, "\nmachine: %s\n", r.Machine)
	fmt.Fprintf(w, "placements held: %d before, %d placed by this run, %d after; concurrency %d\n\n", r.HeldBefore, r.Placed, r.HeldAfter, r.Concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.Mix != nil || r.Hot != nil {
		fmt.Fprintln(tw, "PLACE\tPLACED\tFAILED\tPLACEMENTS/S\tP50\tP99\tMAX\tETCD PUTS/S\tRATIO\tRETRIES")
		for _, p := range []struct {
			name string
			r    *PlaceResult
		}{{"mix", r.Mix}, {"hot region", r.Hot}} {
			if p.r == nil {
				continue
			}
			fmt.Fprintf(tw, "%s (%s)\t%d\t%d\t%.0f\t%v\t%v\t%v\t%.0f\t%.2f\t%d\n", p.name, p.r.Mix, p.r.Placed, p.r.Failed, p.r.Rate,
				p.r.Latency.P50, p.r.Latency.P99, p.r.Latency.Max, p.r.Put.Rate, p.r.Ratio, p.r.Retries)
			if len(p.r.Shapes) > 1 || p.name == "hot region" {
				for _, s := range p.r.Shapes {
					var where []string
					for i, k := range sortedKeys(s.Regions) {
						if i == 3 {
							where = append(where, "...")
							break
						}
						where = append(where, fmt.Sprintf("%s %d", k, s.Regions[k]))
					}
					fmt.Fprintf(tw, "  %s\t%d\t\t\t%v\t%v\t%v\t\t\t%s\n", s.Shape, s.Placed, s.Latency.P50, s.Latency.P99, s.Latency.Max, strings.Join(where, ", "))
				}
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	}
	fmt.Fprintln(tw, "FIGURE\tVALUE\t")
	if r.RestWindow > 0 {
		fmt.Fprintf(tw, "daemon CPU at rest\t%.1f%% of one core (over %v)\t\n", r.RestCPU, r.RestWindow)
		switch {
		case r.QuietTimedOut:
			fmt.Fprintf(tw, "quiet after placing\tnever within -quiet-max: the CPU at rest above is the backlog's\t\n")
		case r.CaughtUp > 0:
			fmt.Fprintf(tw, "quiet after placing\t%v (the audit chainer and indexer catching up)\t\n", r.CaughtUp)
		}
		fmt.Fprintf(tw, "daemon RSS\t%s before, %s after: %s per placement placed\t\n", mib(r.RSSBefore), mib(r.RSSAfter), kib(r.RSSPerPlacement))
		if r.RSSFileAfter > 0 {
			fmt.Fprintf(tw, "  of which mapped files\t%s (etcd's database as bbolt maps it, and the binary)\t\n", mib(r.RSSFileAfter))
		}
		if r.RSSPerHeld != 0 {
			fmt.Fprintf(tw, "daemon RSS per placement held\t%s (over the empty daemon's %s)\t\n", kib(r.RSSPerHeld), mib(r.EmptyRSS))
		}
		fmt.Fprintf(tw, "etcd db in use (with history)\t%s before, %s after: %s per placement placed\t\n", mib(r.DBInUseBefore), mib(r.DBInUseAfter), kib(r.DBPerPlacement))
		if r.DBLiveAfter > 0 {
			fmt.Fprintf(tw, "etcd db live (compacted)\t%s before, %s after: %s per placement placed\t\n", mib(r.DBLiveBefore), mib(r.DBLiveAfter), kib(r.DBLivePerPlacement))
			if r.DBLivePerHeld != 0 {
				fmt.Fprintf(tw, "etcd db live per placement held\t%s (over the empty store's %s)\t\n", kib(r.DBLivePerHeld), mib(r.EmptyDBLive))
			}
			if r.DBQuota > 0 && r.DBLivePerPlacement > 0 {
				fmt.Fprintf(tw, "etcd quota\t%s: room for %.2g placements at that rate\t\n", mib(r.DBQuota), float64(r.DBQuota)/r.DBLivePerPlacement)
			}
		}
	}
	fmt.Fprintf(tw, "first start\t%v (%d held)\t\n", r.FirstStart, r.HeldBefore)
	if r.ColdStart > 0 {
		fmt.Fprintf(tw, "cold start (health SERVING, List answers)\t%v (%d held); RSS %s once serving", r.ColdStart, r.HeldAfter, mib(r.RSSAfterStart))
		if r.RSSAfterStartPerHeld != 0 {
			fmt.Fprintf(tw, ": %s per placement held", kib(r.RSSAfterStartPerHeld))
		}
		fmt.Fprintln(tw, "\t")
	}
	if d := r.Drain; d != nil {
		out := fmt.Sprintf("%d placements: %d moved, %d stranded, %d left, in %.2fs (%.0f moves/s)", d.Placements, d.Moved, d.Stranded, d.Left, d.Seconds, d.Rate)
		if d.TimedOut {
			out += "; timed out"
		}
		if d.Unavailable > 0 {
			out += fmt.Sprintf("; %d polls refused UNAVAILABLE (cache catching up) and asked again", d.Unavailable)
		}
		fmt.Fprintf(tw, "drain %s\t%s\t\n", d.Region, out)
	}
	tw.Flush()
	for _, p := range []*PlaceResult{r.Mix, r.Hot} {
		if p != nil && p.Failed > 0 {
			fmt.Fprintf(w, "\n%d placements of %s failed; the first: %s\n", p.Failed, p.Mix, p.FirstError)
		}
	}
}

// capacityFloor: a region whose cpu or memory capacity is below it is
// raised by -capacity-scale; once raised, it is above it, so a reused
// store is raised once.
const capacityFloor = 1_000_000_000

// raiseCapacity multiplies the cpu and memory capacity of every region
// below capacityFloor by scale, through PutRegion (an operational
// change), so the bench's placements never run out of room and the
// regions keep their relative sizes.
func raiseCapacity(ctx context.Context, cat pb.CatalogServiceClient, scale int64, log io.Writer) error {
	if scale <= 1 {
		return nil
	}
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	regions, err := cat.ListRegions(c, &pb.ListRegionsRequest{})
	if err != nil {
		return fmt.Errorf("list regions: %w", err)
	}
	raised := 0
	for _, r := range regions.GetRegions() {
		capa := r.GetCapacity()
		if capa.GetMilliCpu() >= capacityFloor && capa.GetMemoryMib() >= capacityFloor {
			continue
		}
		r.Capacity = &pb.Resources{MilliCpu: capa.GetMilliCpu() * scale, MemoryMib: capa.GetMemoryMib() * scale, Gpu: capa.GetGpu()}
		if _, err := cat.PutRegion(c, &pb.PutRegionRequest{Region: r}); err != nil {
			return fmt.Errorf("raise capacity of %s: %w", r.GetKey(), err)
		}
		raised++
	}
	if raised > 0 {
		fmt.Fprintf(log, "raised the capacity of %d regions %dx\n", raised, scale)
	}
	return nil
}

// fetchProfile writes the daemon's pprof profile path (under
// /debug/pprof/) to file.
func fetchProfile(ctx context.Context, addr, path, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("pprof %s: %s: %s", path, resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
