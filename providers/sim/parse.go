package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/classroute/classroute/router"
)

// ParseResources reads a capacity such as "64000m,262144Mi,8gpu": a
// comma-separated list of amounts, each a whole number and a unit:
//
//	m    milli-CPUs         cpu  CPUs (1000m)
//	Mi   MiB of memory      Gi   GiB (1024Mi)   Ti  TiB (1048576Mi)
//	gpu  GPUs
//
// Each resource at most once; one left out is zero.
func ParseResources(s string) (router.Resources, error) {
	var r router.Resources
	if strings.TrimSpace(s) == "" {
		return r, fmt.Errorf("capacity: empty; want e.g. 64000m,262144Mi,8gpu")
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		i := strings.IndexFunc(part, func(c rune) bool { return c < '0' || c > '9' })
		if i <= 0 {
			return router.Resources{}, fmt.Errorf("capacity %q: want a whole number and a unit (m, cpu, Mi, Gi, Ti, gpu)", part)
		}
		n, err := strconv.ParseInt(part[:i], 10, 64)
		if err != nil {
			return router.Resources{}, fmt.Errorf("capacity %q: %w", part, err)
		}
		var mult int64
		var what string
		switch unit := part[i:]; unit {
		case "m":
			mult, what = 1, "cpu"
		case "cpu":
			mult, what = 1000, "cpu"
		case "Mi":
			mult, what = 1, "memory"
		case "Gi":
			mult, what = 1024, "memory"
		case "Ti":
			mult, what = 1024*1024, "memory"
		case "gpu":
			mult, what = 1, "gpu"
		default:
			return router.Resources{}, fmt.Errorf("capacity %q: unknown unit %q (want m, cpu, Mi, Gi, Ti or gpu)", part, unit)
		}
		if n > math.MaxInt64/mult {
			return router.Resources{}, fmt.Errorf("capacity %q: too large", part)
		}
		if seen[what] {
			return router.Resources{}, fmt.Errorf("capacity %q: %s given twice", s, what)
		}
		seen[what] = true
		switch what {
		case "cpu":
			r.MilliCPU = n * mult
		case "memory":
			r.MemoryMiB = n * mult
		case "gpu":
			r.GPU = n
		}
	}
	return r, nil
}

// ParseFault adds one fault to f. The faults:
//
//	crash-after=30s     drop the connection with no goodbye 30s after start, and stay down
//	crash-after=3       the same at the first report after 3 placements were assigned and acknowledged
//	hang-after=30s      stop reporting and acknowledging 30s after start; stay down once the daemon gives up
//	refuse              acknowledge every assignment FAILED
//	flap=5s             report healthy and unhealthy by turns, 5s each
//	wrong-region=P/ID   name another region in reports and acks (the daemon must refuse)
func ParseFault(spec string, f *Faults) error {
	name, val, hasVal := strings.Cut(strings.TrimSpace(spec), "=")
	duration := func() (time.Duration, error) {
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("fault %q: want a positive duration such as 30s", spec)
		}
		return d, nil
	}
	var err error
	switch name {
	case "crash-after":
		if n, cerr := strconv.Atoi(val); cerr == nil {
			if n <= 0 {
				return fmt.Errorf("fault %q: want a positive count of assignments or a duration", spec)
			}
			f.CrashAfterRuns = n
			return nil
		}
		f.CrashAfter, err = duration()
	case "hang-after":
		f.HangAfter, err = duration()
	case "flap":
		f.Flap, err = duration()
	case "refuse":
		if hasVal {
			return fmt.Errorf("fault %q: refuse takes no value", spec)
		}
		f.Refuse = true
	case "wrong-region":
		if p, id, ok := strings.Cut(val, "/"); !ok || p == "" || id == "" {
			return fmt.Errorf("fault %q: want wrong-region=provider/id", spec)
		}
		f.WrongRegion = val
	default:
		return fmt.Errorf("fault %q: unknown; want crash-after=D|N, hang-after=D, refuse, flap=D or wrong-region=P/ID", spec)
	}
	return err
}
