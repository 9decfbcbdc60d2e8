package main_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classroute/classroute/cmd/cmdtest"
	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// background runs the CLI until the test ends (or stop is called),
// interrupting it then, and returns what it wrote so far.
func (e *env) background(args ...string) (output func() string, stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, e.Ctl, append(args, "--server", e.Server)...)
	cmd.Dir = e.Root
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	output = func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-exited; err != nil && !errors.Is(err, context.Canceled) {
				e.t.Errorf("classroutectl %v: %v\n%s", args, err, output())
			}
			if e.t.Failed() {
				e.t.Logf("classroutectl %v:\n%s", args, output())
			}
		})
	}
	e.t.Cleanup(stop)
	return output, stop
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// until polls cond every 100ms until it holds, failing after d.
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// planned returns the region a plan of spec chooses first.
func (e *env) planned(spec string) string {
	e.t.Helper()
	var plan pb.PlanResponse
	e.OK(&plan, "plan", "-f", spec)
	if len(plan.GetChosen()) == 0 {
		e.t.Fatalf("plan of %s chose nothing: %s", spec, plan.GetRefusal())
	}
	return plan.GetChosen()[0]
}

func (e *env) get(id string) *pb.Placement {
	e.t.Helper()
	var resp pb.GetResponse
	e.OK(&resp, "get", id)
	return resp.GetPlacement()
}

// The simulator, run as "classroutectl agent sim" against the built
// daemon, serves four regions with faults: it runs what it is assigned
// and stops what is released, refuses in one region, flaps in another,
// and crashes in the last; interrupted, it leaves at once. (The
// reconciler is off, so that a refused replica stays where it failed.)
func TestAgentSimulator(t *testing.T) {
	e := start(t, "--agent-ttl", "2s", "--reconcile=false")
	runs := e.planned("examples/kenya-health-records.yaml")
	refuses := e.planned("examples/itar-export.yaml")
	flaps := e.planned("examples/nearline-storage.yaml")
	var crashes string
	for key := range e.Regions() {
		if !slices.Contains([]string{runs, refuses, flaps}, key) && (crashes == "" || key < crashes) {
			crashes = key
		}
	}
	if runs == refuses || runs == flaps || refuses == flaps {
		t.Fatalf("the examples share regions (%s, %s, %s): the test needs three", runs, refuses, flaps)
	}
	output, stop := e.background("agent", "sim", "--region", runs, "--region", refuses, "--region", flaps, "--region", crashes,
		"--fault", refuses+":refuse", "--fault", flaps+":flap=3s", "--fault", crashes+":crash-after=5s")
	health := func(key string) *pb.RegionHealth { return e.Regions()[key].GetHealth() }
	until(t, 3*time.Second, "every simulated agent live", func() bool {
		rs := e.Regions()
		for _, key := range []string{runs, refuses, flaps, crashes} {
			if !rs[key].GetHealth().GetAgentLive() || rs[key].GetHealth().GetLastReport() == nil {
				return false
			}
		}
		return true
	})
	capacity := e.Regions()[runs].GetCapacity()
	if free := health(runs).GetReportedFree(); free.GetMilliCpu() != capacity.GetMilliCpu() {
		t.Errorf("%s reports %dm free; want its catalogue capacity %dm", runs, free.GetMilliCpu(), capacity.GetMilliCpu())
	}

	t.Run("runs what it is assigned, stops what is released", func(t *testing.T) {
		p := e.Place("examples/kenya-health-records.yaml", "--request-id", "sim-run")
		if got := p.GetAssignments()[0].GetRegion(); got != runs {
			t.Fatalf("placed in %s; want %s", got, runs)
		}
		until(t, 5*time.Second, "the replica running", func() bool {
			return e.get("sim-run").GetAssignments()[0].GetState() == pb.ReplicaState_REPLICA_STATE_RUNNING
		})
		need := p.GetWorkload().GetResources().GetMilliCpu()
		until(t, 3*time.Second, "the agent reporting the replica's capacity taken", func() bool {
			return health(runs).GetReportedFree().GetMilliCpu() == capacity.GetMilliCpu()-need
		})
		if r := e.Run("get", "sim-run"); !strings.Contains(lineWith(r.Stdout, "replica 1:"), "running") {
			t.Errorf("get prints %q; want the replica running", lineWith(r.Stdout, "replica 1:"))
		}
		var rel pb.ReleaseResponse
		e.OK(&rel, "release", "sim-run")
		until(t, 3*time.Second, "the agent reporting the capacity back", func() bool {
			return health(runs).GetReportedFree().GetMilliCpu() == capacity.GetMilliCpu()
		})
	})

	t.Run("a refusing region acknowledges FAILED", func(t *testing.T) {
		p := e.Place("examples/itar-export.yaml", "--request-id", "sim-refused")
		if got := p.GetAssignments()[0].GetRegion(); got != refuses {
			t.Fatalf("placed in %s; want %s", got, refuses)
		}
		until(t, 5*time.Second, "the replica failed", func() bool {
			a := e.get("sim-refused").GetAssignments()[0]
			return a.GetState() == pb.ReplicaState_REPLICA_STATE_FAILED && strings.Contains(a.GetStateDetail(), "refused")
		})
	})

	t.Run("a flapping region is refused for health while unhealthy", func(t *testing.T) {
		refused := false
		until(t, 10*time.Second, "a plan refusing the flapping region for health", func() bool {
			var plan pb.PlanResponse
			e.OK(&plan, "plan", "-f", "examples/nearline-storage.yaml")
			for _, v := range plan.GetRegions() {
				if v.GetRegion() != flaps {
					continue
				}
				refused = !v.GetEligible() && slices.ContainsFunc(v.GetReasons(), func(r *pb.Reason) bool {
					return r.GetCode() == "health" && strings.Contains(r.GetMessage(), "flapping")
				})
				if refused && slices.Contains(plan.GetChosen(), flaps) {
					t.Errorf("plan chose the unhealthy region %s", flaps)
				}
			}
			return refused
		})
		if r := e.Run("regions"); !strings.Contains(lineWith(r.Stdout, flaps), "healthy") {
			t.Errorf("regions row %q shows no health", lineWith(r.Stdout, flaps))
		}
		until(t, 10*time.Second, "the flapping region healthy again", func() bool { return health(flaps).GetHealthy() })
	})

	t.Run("a crashed agent's region keeps its health record", func(t *testing.T) {
		until(t, 8*time.Second, "the crashed agent gone", func() bool { return !health(crashes).GetAgentLive() })
		h := health(crashes)
		if h == nil || !h.GetHealthy() || !strings.Contains(h.GetAgent(), "sim@") {
			t.Errorf("health of %s after the crash %v; want its record kept, healthy", crashes, h)
		}
		if row := lineWith(e.Run("regions").Stdout, crashes); !strings.Contains(row, "(gone)") {
			t.Errorf("regions row %q; want the agent shown gone", row)
		}
		if !strings.Contains(output(), "crashing (simulated)") {
			t.Errorf("the simulator did not say it crashed:\n%s", output())
		}
	})

	// Interrupted, the simulator says goodbye: the live records go at
	// once (well within the 10s lease TTL; the daemon revokes the lease
	// when the stream ends, which it may see a moment after the exit).
	stop()
	deadline := time.Now().Add(3 * time.Second)
	for {
		rs := e.Regions()
		var live []string
		for _, key := range []string{runs, refuses, flaps} {
			if rs[key].GetHealth().GetAgentLive() {
				live = append(live, key)
			}
		}
		if len(live) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%v: agent still live 3s after the simulator exited", live)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAgentSimUsage(t *testing.T) {
	e := &env{t: t, CLI: &cmdtest.CLI{T: t, Server: "127.0.0.1:1", Root: cmdtest.RepoRoot()}}
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	e.Ctl = bin + "/classroutectl"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "sim"}, "at least one --region"},
		{[]string{"agent", "run", "--region", "a/b"}, `unknown command "run" for "classroutectl agent"`},
		{[]string{"agent", "sim", "--region", "konza"}, "want provider/id"},
		{[]string{"agent", "sim", "--region", "a/b", "--region", "a/b"}, "given twice"},
		{[]string{"agent", "sim", "--region", "a/b", "--capacity", "8 cores"}, "capacity"},
		{[]string{"agent", "sim", "--region", "a/b", "--fault", "explode"}, "unknown"},
		{[]string{"agent", "sim", "--region", "a/b", "--fault", "c/d:refuse"}, "not among the --region flags"},
	} {
		r := e.Run(tc.args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, r.Code, firstLine(r.Stderr), tc.want)
		}
	}
}
