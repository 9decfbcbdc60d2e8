package router

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultSearchLimit bounds the spread search: the number of candidate
// regions it may test against a partial set before it gives up and
// refuses with ErrSpreadUnsatisfiable.
const DefaultSearchLimit = 100_000

// cand is an eligible region during one decision.
type cand struct {
	idx   int // index in Input.Regions
	r     *Region
	score float64
}

// compareCands orders candidates best first: score descending, then key ascending.
func compareCands(a, b cand) int {
	switch {
	case a.score > b.score:
		return -1
	case a.score < b.score:
		return 1
	}
	return compareKeys(a.r, b.r)
}

// ranking hands out the eligible regions best first. Place needs only
// the first few of them as a rule, so it ranks lazily: the candidates
// form a heap and at pops them into order on demand (heapify is linear,
// each pop logarithmic). Plan sorts them all up front.
type ranking struct {
	heap   []cand // a heap by compareCands, best at the root
	sorted []cand // the best len(sorted) candidates, in order
}

// lazy ranks cands lazily; buf is reused for the sorted prefix.
func (k *ranking) lazy(cands, buf []cand) {
	k.heap, k.sorted = cands, buf[:0]
	for i := len(cands)/2 - 1; i >= 0; i-- {
		k.down(i)
	}
}

// full ranks cands by sorting them in place.
func (k *ranking) full(cands []cand) {
	slices.SortFunc(cands, compareCands)
	k.heap, k.sorted = nil, cands
}

// len is the number of candidates.
func (k *ranking) len() int { return len(k.heap) + len(k.sorted) }

// at returns the candidate of rank i (0 is the best).
func (k *ranking) at(i int) *cand {
	for len(k.sorted) <= i {
		h := k.heap
		k.sorted = append(k.sorted, h[0])
		n := len(h) - 1
		h[0] = h[n]
		k.heap = h[:n]
		k.down(0)
	}
	return &k.sorted[i]
}

func (k *ranking) down(i int) {
	h := k.heap
	for {
		best, l := i, 2*i+1
		if l < len(h) && compareCands(h[l], h[best]) < 0 {
			best = l
		}
		if r := l + 1; r < len(h) && compareCands(h[r], h[best]) < 0 {
			best = r
		}
		if best == i {
			return
		}
		h[i], h[best] = h[best], h[i]
		i = best
	}
}

// spreadSearch picks need distinct regions from the ranked candidates
// such that every pair is at least minDist km apart and, when distinct is
// set, on different providers.
//
// It is a depth-first search over the candidates in rank order: the first
// branch is the greedy pick (the best region that fits with those
// already picked), and it backtracks when a partial set cannot be
// completed. The first complete set found is therefore the
// lexicographically best by rank. A branch is pruned when too few
// candidates remain to complete it. Every candidate tested against a
// partial set counts one step; after limit steps the search stops.
type spreadSearch struct {
	rank     *ranking
	need     int
	minDist  float64
	distinct bool
	limit    int

	steps   int
	bounded bool  // the search stopped at limit
	pick    []int // ranks of the picked candidates, in replica order
}

// run reports whether a set was found; it is in s.pick.
func (s *spreadSearch) run() bool {
	s.pick = s.pick[:0]
	if s.need <= 0 {
		return true
	}
	if !s.distinct && s.minDist <= 0 {
		// No pairwise rule: the best need candidates.
		if s.rank.len() < s.need {
			return false
		}
		for i := range s.need {
			s.pick = append(s.pick, i)
		}
		return true
	}
	return s.dfs(0)
}

func (s *spreadSearch) dfs(from int) bool {
	depth := len(s.pick)
	if depth == s.need {
		return true
	}
	for i := from; i <= s.rank.len()-(s.need-depth); i++ {
		if s.steps >= s.limit {
			s.bounded = true
			return false
		}
		s.steps++
		if !s.fits(i) {
			continue
		}
		s.pick = append(s.pick, i)
		if s.dfs(i + 1) {
			return true
		}
		s.pick = s.pick[:depth]
		if s.bounded {
			return false
		}
	}
	return false
}

// fits reports whether the candidate of rank i may join the picked set.
func (s *spreadSearch) fits(i int) bool {
	c := s.rank.at(i).r
	for _, p := range s.pick {
		o := s.rank.at(p).r
		if s.distinct && o.Provider == c.Provider {
			return false
		}
		if s.minDist > 0 && Distance(o.Location, c.Location) < s.minDist {
			return false
		}
	}
	return true
}

// providers appends to buf the distinct providers of cands, stopping
// once it has max of them.
func providers(buf []string, cands []cand, max int) []string {
	for _, c := range cands {
		if len(buf) >= max {
			break
		}
		if !contains(buf, c.r.Provider) {
			buf = append(buf, c.r.Provider)
		}
	}
	return buf
}

// spreadError explains why no set satisfies the spread rules. provs holds
// the distinct providers of the eligible regions when there are fewer than
// need of them and the spread asks for distinct providers.
func (s *spreadSearch) spreadError(provs []string) error {
	if s.distinct && len(provs) < s.need {
		sorted := slices.Sorted(slices.Values(provs))
		return fmt.Errorf("%w: %d replicas need distinct providers; eligible regions span %s (%s)",
			ErrSpreadUnsatisfiable, s.need, plural(len(provs), "provider"), strings.Join(sorted, ", "))
	}
	var rules []string
	if s.minDist > 0 {
		rules = append(rules, "pairwise at least "+strconv.FormatFloat(s.minDist, 'f', -1, 64)+" km apart")
	}
	if s.distinct {
		rules = append(rules, "on distinct providers")
	}
	what := strings.Join(rules, " and ")
	if s.bounded {
		return fmt.Errorf("%w: search bound of %d candidate checks hit before finding %d of the %d eligible regions %s",
			ErrSpreadUnsatisfiable, s.limit, s.need, s.rank.len(), what)
	}
	return fmt.Errorf("%w: no %d of the %d eligible regions are %s",
		ErrSpreadUnsatisfiable, s.need, s.rank.len(), what)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
