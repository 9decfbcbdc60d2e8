package router

import (
	"math"
	"strings"
)

// earthRadiusKm is the mean radius of the Earth (IUGG).
const earthRadiusKm = 6371.0088

// halfCircumferenceKm is the longest great-circle distance: half the circumference.
const halfCircumferenceKm = math.Pi * earthRadiusKm

// defaultCostWeight is the weight of cost when Preferences.CostWeight is 0.
const defaultCostWeight = 0.5

// Distance is the great-circle distance between a and b in kilometres,
// by the haversine formula on a sphere of the Earth's mean radius.
func Distance(a, b Location) float64 {
	const rad = math.Pi / 180
	return haversine(a.Lat*rad, a.Lon*rad, b.Lat*rad, b.Lon*rad)
}

// haversine is Distance on coordinates in radians.
func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	sLat := math.Sin((lat2 - lat1) / 2)
	sLon := math.Sin((lon2 - lon1) / 2)
	h := sLat*sLat + math.Cos(lat1)*math.Cos(lat2)*sLon*sLon
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}

// scorer ranks eligible regions. Every score is in [0, 1], higher is better:
//
//	score = c·cost + (1−c)·(headroom + preference + proximity) / k
//
// where
//
//	c          = Preferences.CostWeight clamped to [0, 1]; 0.5 when unset (0).
//	cost       = (maxCost − cost) / (maxCost − minCost) over the eligible
//	             regions of this decision; 1 for all when they cost the same.
//	headroom   = the mean, over cpu and memory (and gpu when the workload
//	             asks for gpus), of (free − need) / capacity: the fraction
//	             of the region left free after placing one replica.
//	preference = 1 − i/n for the provider at position i of the n
//	             Preferences.Providers, 0 for a provider not listed; a
//	             term only when Providers is set.
//	proximity  = 1 − Distance(region, Near) / (π·R), R the Earth's mean
//	             radius; a term only when Preferences.Near is set.
//	k          = the number of terms in the parentheses (1 to 3).
//
// The arithmetic is the same for the same input, so scores are
// reproducible; ties are broken by region key, ascending.
type scorer struct {
	costW, restW      float64
	maxCost, costSpan float64
	providers         []string
	near              Location
	hasNear           bool
	need              Resources
}

func newScorer(w *Workload) scorer {
	c := w.Preferences.CostWeight
	switch {
	case c == 0 || math.IsNaN(c):
		c = defaultCostWeight
	case c < 0:
		c = 0
	case c > 1:
		c = 1
	}
	s := scorer{providers: w.Preferences.Providers, need: w.Resources}
	k := 1.0
	if len(s.providers) > 0 {
		k++
	}
	if w.Preferences.Near != nil {
		s.near, s.hasNear = *w.Preferences.Near, true
		k++
	}
	s.costW, s.restW = c, (1-c)/k
	return s
}

// setCosts records the range of cost among the eligible regions. A NaN
// cost is left out of the range (its region scores -1).
func (s *scorer) setCosts(cands []cand) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cands {
		if x := c.r.Cost; !math.IsNaN(x) {
			lo, hi = min(lo, x), max(hi, x)
		}
	}
	s.maxCost, s.costSpan = hi, hi-lo
	if hi < lo || math.IsInf(s.costSpan, 0) || math.IsNaN(s.costSpan) {
		s.maxCost, s.costSpan = 0, 0
	}
}

// score scores one eligible region. It does not allocate.
func (s *scorer) score(r *RegionState) float64 {
	reg := r.Region
	if math.IsNaN(reg.Cost) {
		return -1 // ranks last among the eligible, and keeps the ordering total
	}
	cost := 1.0
	if s.costSpan > 0 {
		cost = (s.maxCost - reg.Cost) / s.costSpan
	}
	rest := s.headroom(r)
	if len(s.providers) > 0 {
		for i, p := range s.providers {
			if p == reg.Provider {
				rest += 1 - float64(i)/float64(len(s.providers))
				break
			}
		}
	}
	if s.hasNear {
		rest += 1 - Distance(reg.Location, s.near)/halfCircumferenceKm
	}
	v := s.costW*cost + s.restW*rest
	if math.IsNaN(v) {
		// A NaN location or capacity must not break the ordering either.
		return -1
	}
	return v
}

// headroom is the mean free fraction left after placing one replica.
func (s *scorer) headroom(r *RegionState) float64 {
	free, capa := r.Free(), r.Region.Capacity
	sum := fraction(free.MilliCPU-s.need.MilliCPU, capa.MilliCPU) + fraction(free.MemoryMiB-s.need.MemoryMiB, capa.MemoryMiB)
	if s.need.GPU > 0 {
		return (sum + fraction(free.GPU-s.need.GPU, capa.GPU)) / 3
	}
	return sum / 2
}

func fraction(left, total int64) float64 {
	if total <= 0 || left <= 0 {
		return 0
	}
	return min(float64(left)/float64(total), 1)
}

// compareKeys orders regions by Key ("provider/id") without building the keys.
func compareKeys(a, b *Region) int {
	ap, bp := a.Provider, b.Provider
	if ap == bp {
		return strings.Compare(a.ID, b.ID)
	}
	n := min(len(ap), len(bp))
	if c := strings.Compare(ap[:n], bp[:n]); c != 0 {
		return c
	}
	// One provider is a prefix of the other: the shorter key continues
	// with its '/' separator.
	x, y := byte('/'), byte('/')
	if len(ap) < len(bp) {
		y = bp[n]
	} else {
		x = ap[n]
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	// Provider ids containing '/' (validation refuses them): compare the keys.
	return strings.Compare(a.Key(), b.Key())
}
