package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// tiny is every shape's resources per replica: small enough that the
// bench's raised capacities never run out.
var tiny = &pb.Resources{MilliCpu: 10, MemoryMib: 16}

// shape is one kind of workload of the mix, after examples/*.yaml and
// the tenants of the default catalogue.
type shape struct {
	Name string // as -mix names it
	Desc string
	w    *pb.Workload
}

// shapes are the seven of issue 9, in the order -mix lists them.
var shapes = []shape{
	{"unclass", "UNCLASSIFIED (US scheme), anywhere (UK MoD)", &pb.Workload{
		Name: "web-frontend", Tenant: "gbr-mod", Label: "UNCLASSIFIED", Scheme: "US", AllowedStorageCountries: []string{"*"}, Replicas: 1}},
	{"cui", "CUI, USA, nearline, prefers Oracle (examples/nearline-storage.yaml)", &pb.Workload{
		Name: "dod-records-archive", Tenant: "us-dod", Label: "CUI", AllowedStorageCountries: []string{"USA"}, StorageTier: "nearline", Replicas: 1,
		Preferences: &pb.Preferences{Providers: []string{"oracle"}, CostWeight: 0.6}}},
	{"secret", "SECRET//NOFORN, 3 replicas on 3 providers (examples/jedi-multivendor.yaml)", &pb.Workload{
		Name: "jedi-mission-data", Tenant: "us-dod", Label: "SECRET//NOFORN", AllowedStorageCountries: []string{"USA"}, StorageTier: "nearline", Replicas: 3,
		Spread: &pb.Spread{DistinctProviders: true}}},
	{"ts", "TOP SECRET//SI/TK//NOFORN, 2 replicas 1,000 km apart (examples/ts-si-tk-noforn.yaml)", &pb.Workload{
		Name: "sigint-analytics", Tenant: "us-ic", Label: "TOP SECRET//SI/TK//NOFORN", AllowedStorageCountries: []string{"USA"}, Replicas: 2,
		Spread: &pb.Spread{MinDistanceKm: 1000}}},
	{"aukus", "SECRET//REL TO USA, AUS, GBR, 2 replicas (examples/aukus-secret.yaml)", &pb.Workload{
		Name: "aukus-pillar2-models", Tenant: "aus-defence", Label: "SECRET//REL TO USA, AUS, GBR", AllowedStorageCountries: []string{"USA", "AUS", "GBR"}, Replicas: 2,
		Spread: &pb.Spread{MinDistanceKm: 1000}}},
	{"kenya", "Kenyan ministry, data in Kenya: ke-gov/konza-1 only (examples/kenya-health-records.yaml)", &pb.Workload{
		Name: "kenya-health-records", Tenant: "ke-moh", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"KEN"}, AllowedJurisdictions: []string{"KEN"},
		StorageTier: "nearline", Replicas: 1}},
	{"nld", "Dutch MoD, data in DEU or NLD (examples/foreign-military-nld.yaml)", &pb.Workload{
		Name: "logistics-planning", Tenant: "nld-mod", Label: "UNCLASSIFIED", AllowedStorageCountries: []string{"DEU", "NLD"}, Replicas: 1,
		Preferences: &pb.Preferences{Near: &pb.Location{Lat: 52.1, Lon: 5.1}}}},
}

func init() {
	for _, s := range shapes {
		s.w.Resources = tiny
	}
}

func shapeNamed(name string) (shape, bool) {
	i := slices.IndexFunc(shapes, func(s shape) bool { return s.Name == name })
	if i < 0 {
		return shape{}, false
	}
	return shapes[i], true
}

// mix is a weighted list of shapes; placement i gets the shape at
// i modulo the total weight, so a run of any length holds each in its
// proportion.
type mix struct {
	shapes  []shape
	weights []int
	seq     []int // index into shapes, one per unit of weight, interleaved
}

// parseMix reads "unclass=1,cui=2" or "kenya" (weight 1).
func parseMix(v string) (*mix, error) {
	m := &mix{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, hasWeight := strings.Cut(part, "=")
		s, ok := shapeNamed(name)
		if !ok {
			return nil, fmt.Errorf("%q: unknown shape %q; the shapes are %s", v, name, shapeNames())
		}
		weight := 1
		if hasWeight {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 || n > 1000 {
				return nil, fmt.Errorf("%q: weight of %s: want 0 to 1000", v, name)
			}
			weight = n
		}
		if slices.ContainsFunc(m.shapes, func(x shape) bool { return x.Name == name }) {
			return nil, fmt.Errorf("%q: %s twice", v, name)
		}
		if weight > 0 {
			m.shapes, m.weights = append(m.shapes, s), append(m.weights, weight)
		}
	}
	if len(m.shapes) == 0 {
		return nil, fmt.Errorf("%q: no shape with a positive weight", v)
	}
	// Interleave: each round takes one of every shape with weight left.
	left := slices.Clone(m.weights)
	for more := true; more; {
		more = false
		for i := range left {
			if left[i] > 0 {
				m.seq = append(m.seq, i)
				left[i]--
				more = true
			}
		}
	}
	return m, nil
}

func (m *mix) String() string {
	var parts []string
	for i, s := range m.shapes {
		parts = append(parts, fmt.Sprintf("%s=%d", s.Name, m.weights[i]))
	}
	return strings.Join(parts, ",")
}

func (m *mix) at(i int) int { return m.seq[i%len(m.seq)] }

func shapeNames() string {
	var n []string
	for _, s := range shapes {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// Latency summarises the time of calls.
type Latency struct {
	P50 Duration `json:"p50"`
	P99 Duration `json:"p99"`
	Max Duration `json:"max"`
}

func summarise(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	q := func(p float64) Duration { return Duration(d[min(len(d)-1, int(p*float64(len(d))))]) }
	return Latency{P50: q(0.50), P99: q(0.99), Max: Duration(d[len(d)-1])}
}

// ShapeResult is one shape's share of a Place run.
type ShapeResult struct {
	Shape   string         `json:"shape"`
	Placed  int            `json:"placed"`
	Latency Latency        `json:"latency"`
	Regions map[string]int `json:"regions"` // replicas placed per region
}

// PlaceResult is a Place run.
type PlaceResult struct {
	Mix        string        `json:"mix"`
	Requested  int           `json:"requested"`
	Placed     int           `json:"placed"`
	Failed     int           `json:"failed"`
	FirstError string        `json:"first_error,omitempty"`
	Retries    int64         `json:"retries"` // ABORTED or UNAVAILABLE answers, retried
	Seconds    float64       `json:"seconds"`
	Rate       float64       `json:"placements_per_second"`
	Latency    Latency       `json:"latency"`
	Shapes     []ShapeResult `json:"shapes"`
	// PutRate is etcd's own put rate measured just before, on the same
	// member at the same concurrency; Ratio is Rate over it.
	Put   *PutResult `json:"etcd_put"`
	Ratio float64    `json:"ratio_to_put"`
}

// placer places workloads over a few client connections.
type placer struct {
	conns []pb.PlacementServiceClient
	runID string
	conc  int
	log   io.Writer
}

// place places n workloads of mix m at the placer's concurrency, named
// runID-phase-i, and reports rate and latency. A call answered ABORTED
// (a decision that lost its bounded retries to concurrent writers) or
// UNAVAILABLE is retried, as the API asks, and its latency counts from
// the first attempt.
func (pl *placer) place(ctx context.Context, phase string, m *mix, n int) *PlaceResult {
	res := &PlaceResult{Mix: m.String(), Requested: n}
	type workerOut struct {
		lat     [][]time.Duration // per shape
		regions []map[string]int
		placed  []int
	}
	outs := make([]workerOut, pl.conc)
	var retries atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var done atomic.Int64
	next := atomic.Int64{}
	start := time.Now()
	stopProgress := progress(pl.log, phase, n, &done, start)
	var wg sync.WaitGroup
	for w := range pl.conc {
		out := &outs[w]
		out.lat = make([][]time.Duration, len(m.shapes))
		out.regions = make([]map[string]int, len(m.shapes))
		out.placed = make([]int, len(m.shapes))
		for i := range out.regions {
			out.regions[i] = map[string]int{}
		}
		cli := pl.conns[w%len(pl.conns)]
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				si := m.at(i)
				req := &pb.PlaceRequest{RequestId: fmt.Sprintf("%s-%s-%d", pl.runID, phase, i), Workload: m.shapes[si].w}
				t0 := time.Now()
				p, err := placeOne(ctx, cli, req, &retries)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				out.lat[si] = append(out.lat[si], time.Since(t0))
				out.placed[si]++
				for _, a := range p.GetAssignments() {
					out.regions[si][a.GetRegion()]++
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	var all []time.Duration
	for si, s := range m.shapes {
		sr := ShapeResult{Shape: s.Name, Regions: map[string]int{}}
		var lat []time.Duration
		for _, o := range outs {
			lat = append(lat, o.lat[si]...)
			sr.Placed += o.placed[si]
			for r, k := range o.regions[si] {
				sr.Regions[r] += k
			}
		}
		all = append(all, lat...)
		sr.Latency = summarise(lat)
		res.Shapes = append(res.Shapes, sr)
	}
	res.Placed = len(all)
	res.Failed = int(failed.Load())
	if e := firstErr.Load(); e != nil {
		res.FirstError = (*e).Error()
	}
	res.Retries = retries.Load()
	res.Seconds = elapsed.Seconds()
	res.Rate = float64(res.Placed) / elapsed.Seconds()
	res.Latency = summarise(all)
	return res
}

func placeOne(ctx context.Context, cli pb.PlacementServiceClient, req *pb.PlaceRequest, retries *atomic.Int64) (*pb.Placement, error) {
	var err error
	for try := range 20 {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		var resp *pb.PlaceResponse
		resp, err = cli.Place(c, req)
		cancel()
		switch status.Code(err) {
		case codes.OK:
			if st := resp.GetPlacement().GetState(); st != pb.PlacementState_PLACEMENT_STATE_PLACED {
				return nil, fmt.Errorf("place %s: state %v; want PLACED", req.GetRequestId(), st)
			}
			return resp.GetPlacement(), nil
		case codes.Aborted, codes.Unavailable:
			retries.Add(1)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(try+1) * 5 * time.Millisecond):
			}
		default:
			return nil, fmt.Errorf("place %s (%s): %w", req.GetRequestId(), req.GetWorkload().GetTenant(), err)
		}
	}
	return nil, fmt.Errorf("place %s: still refused after 20 tries: %w", req.GetRequestId(), err)
}

// progress prints how far a phase has come every 10 seconds until stop.
func progress(w io.Writer, phase string, n int, done *atomic.Int64, start time.Time) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(w, "  %s: %d/%d (%.0f/s)\n", phase, d, n, float64(d)/time.Since(start).Seconds())
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

// warmUp places one workload of each shape of m and returns the mean
// size of their records as the API returns them (protojson): the size of
// the put baseline's values.
func (pl *placer) warmUp(ctx context.Context, phase string, m *mix) (int, error) {
	total := 0
	for i, s := range m.shapes {
		var retries atomic.Int64
		req := &pb.PlaceRequest{RequestId: fmt.Sprintf("%s-%s-warmup-%d", pl.runID, phase, i), Workload: s.w}
		p, err := placeOne(ctx, pl.conns[0], req, &retries)
		if err != nil {
			return 0, fmt.Errorf("warm-up placement of shape %s: %w", s.Name, err)
		}
		b, err := protojson.Marshal(p)
		if err != nil {
			return 0, err
		}
		total += len(b)
	}
	return total / len(m.shapes), nil
}

// PutResult is etcd's own put rate: a plain Put loop against the
// daemon's member, at the same concurrency, of values the size of a
// placement record, under a prefix of the bench's own (deleted after).
type PutResult struct {
	Puts       int     `json:"puts"`
	ValueBytes int     `json:"value_bytes"`
	Seconds    float64 `json:"seconds"`
	Rate       float64 `json:"puts_per_second"`
	Latency    Latency `json:"latency"`
	DBGrowth   int64   `json:"db_growth_bytes"` // in use, before the delete; subtracted from the placements' growth
	Prefix     string  `json:"prefix"`
	Errors     int     `json:"errors"`
}

func putRate(ctx context.Context, cli *clientv3.Client, prefix string, n, conc, size int) (*PutResult, error) {
	before, err := dbStatus(ctx, cli)
	if err != nil {
		return nil, err
	}
	val := strings.Repeat("x", size)
	res := &PutResult{Puts: n, ValueBytes: size, Prefix: prefix}
	lat := make([][]time.Duration, conc)
	var next, errs atomic.Int64
	var firstErr atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				c, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := cli.Put(c, prefix+strconv.FormatInt(i, 10), val)
				cancel()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res.Seconds = elapsed.Seconds()
	res.Rate = float64(len(all)) / elapsed.Seconds()
	res.Latency = summarise(all)
	res.Errors = int(errs.Load())
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("etcd put: %w", *e)
	}
	// etcd updates the size in use when its backend commits a batch
	// (every 100ms by default), not on each put: a status read at once
	// may not hold the puts yet.
	after, err := dbStatus(ctx, cli)
	for deadline := time.Now().Add(2 * time.Second); err == nil && after.DbSizeInUse == before.DbSizeInUse && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		after, err = dbStatus(ctx, cli)
	}
	if err != nil {
		return nil, err
	}
	res.DBGrowth = after.DbSizeInUse - before.DbSizeInUse
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := cli.Delete(c, prefix, clientv3.WithPrefix()); err != nil {
		return nil, fmt.Errorf("etcd delete %s: %w", prefix, err)
	}
	return res, nil
}

func dbStatus(ctx context.Context, cli *clientv3.Client) (*clientv3.StatusResponse, error) {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eps := cli.Endpoints()
	if len(eps) == 0 {
		return nil, errors.New("etcd: no endpoint")
	}
	st, err := cli.Status(c, eps[0])
	if err != nil {
		return nil, fmt.Errorf("etcd status: %w", err)
	}
	return st, nil
}

// compact compacts etcd's history up to rev and waits until the member
// has applied it, so that DbSizeInUse counts live data only.
func compact(ctx context.Context, cli *clientv3.Client, rev int64) error {
	c, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	_, err := cli.Compact(c, rev, clientv3.WithCompactPhysical())
	if err != nil && !strings.Contains(err.Error(), "compacted") {
		return fmt.Errorf("etcd compact: %w", err)
	}
	return nil
}

// conns opens k client connections to addr.
func conns(addr string, k int) ([]*grpc.ClientConn, error) {
	var out []*grpc.ClientConn
	for range k {
		cc, err := dial(addr)
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, err
		}
		out = append(out, cc)
	}
	return out, nil
}

// sortedKeys is m's keys by descending value, then name.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
