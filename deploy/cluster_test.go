package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/classroute/classroute/cmd/cmdtest"
	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// freePortRange finds a base port whose next n ports are all free on
// loopback. (Another process may take one before it is used; the
// script then fails loudly, and the test says so.)
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		// Below Linux's ephemeral range (32768-60999 by default): a
		// port free now may otherwise be taken by any process's
		// outgoing connection before the script binds it.
		base := 10000 + rand.IntN(220)*100
		ok := true
		for p := base; p <= base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range on loopback")
	return 0
}

// clusterScript runs deploy/cluster.sh with a run directory and ports of
// the test's own.
type clusterScript struct {
	t     *testing.T
	root  string
	env   []string
	dir   string
	base  int
	upOut string // what the first `up` printed
}

// upCluster runs cluster.sh up on a run directory and ports of the
// test's own, and down when the test ends (then, if it failed, logs the
// tail of every process's log).
func upCluster(t *testing.T) *clusterScript {
	t.Helper()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("deploy/cluster.sh needs setsid")
	}
	c := &clusterScript{t: t, root: cmdtest.RepoRoot(), dir: t.TempDir(), base: freePortRange(t, 30)}
	c.env = []string{
		"CLASSROUTE_CLUSTER_DIR=" + c.dir,
		fmt.Sprintf("CLASSROUTE_CLUSTER_PORT=%d", c.base),
		"CLASSROUTE_CLUSTER_NOFSYNC=1",
	}
	out, err := c.run(3*time.Minute, "up")
	t.Cleanup(func() {
		if out, err := c.run(time.Minute, "down"); err != nil {
			t.Errorf("cluster.sh down: %v\n%s", err, out)
		}
		if t.Failed() {
			for _, name := range []string{"m1", "m2", "m3", "d1", "d2", "agent1", "agent2", "agent3"} {
				b, _ := os.ReadFile(filepath.Join(c.dir, "logs", name+".log"))
				t.Logf("%s.log:\n%s", name, cmdtest.Tail(string(b), 30))
			}
		}
	})
	if err != nil {
		t.Fatalf("cluster.sh up: %v\n%s", err, out)
	}
	c.upOut = out
	return c
}

// pids are the processes the run directory's PID files name, by name.
func (c *clusterScript) pids() map[string]int {
	c.t.Helper()
	files, _ := filepath.Glob(filepath.Join(c.dir, "run", "*.pid"))
	out := make(map[string]int)
	for _, f := range files {
		var pid int
		b, _ := os.ReadFile(f)
		fmt.Sscan(string(b), &pid)
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return out
}

func (c *clusterScript) run(timeout time.Duration, args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(c.root, "deploy", "cluster.sh")}, args...)...)
	cmd.Dir = c.root
	cmd.Env = append(os.Environ(), c.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// deploy/cluster.sh up builds the binaries, starts a three-member etcd
// cluster and two daemons on it; a workload placed through one daemon is
// seen, and answered for the same request id, by the other; down stops
// every process it started.
func TestClusterScript(t *testing.T) {
	c := upCluster(t)
	out := c.upOut
	d1 := fmt.Sprintf("127.0.0.1:%d", c.base+11)
	d2 := fmt.Sprintf("127.0.0.1:%d", c.base+12)
	for _, want := range []string{d1, d2, "place -f", "regions --server " + d1} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.sh up output lacks %q:\n%s", want, out)
		}
	}

	ctl := filepath.Join(c.dir, "bin", "classroutectl")
	a := &cmdtest.CLI{T: t, Ctl: ctl, Server: d1, Root: c.root}
	b := &cmdtest.CLI{T: t, Ctl: ctl, Server: d2, Root: c.root}
	first := a.Place("examples/aukus-secret.yaml", "--request-id", "cluster-1")
	var got pb.GetResponse
	b.OK(&got, "get", "cluster-1")
	if !proto.Equal(got.GetPlacement(), first) {
		t.Errorf("placement through d1 read through d2 differs:\n%v\n%v", first, got.GetPlacement())
	}
	if again := b.Place("examples/aukus-secret.yaml", "--request-id", "cluster-1"); !proto.Equal(again, first) {
		t.Errorf("the same request id through d2 gave another placement:\n%v\n%v", first, again)
	}
	second := b.Place("examples/jedi-multivendor.yaml", "--request-id", "cluster-2")
	if got := a.Regions()[second.GetAssignments()[0].GetRegion()].GetUsed().GetMilliCpu(); got < second.GetWorkload().GetResources().GetMilliCpu() {
		t.Errorf("d1 sees %dm used in %s after d2 placed %dm there", got, second.GetAssignments()[0].GetRegion(), second.GetWorkload().GetResources().GetMilliCpu())
	}

	// The script starts a simulated agent for each of three regions,
	// each talking to one of the daemons; both daemons see them live.
	for _, key := range []string{"aws/us-gov-west-1", "azure/usgovvirginia", "ke-gov/konza-1"} {
		deadline := time.Now().Add(10 * time.Second)
		for !a.Regions()[key].GetHealth().GetAgentLive() || !b.Regions()[key].GetHealth().GetAgentLive() {
			if time.Now().After(deadline) {
				t.Fatalf("no live agent for %s after 10s: %v", key, a.Regions()[key].GetHealth())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	pids, _ := filepath.Glob(filepath.Join(c.dir, "run", "*.pid"))
	// Three members, two daemons and three simulated agents.
	const want = 8
	if out, err := c.run(time.Minute, "status"); err != nil || strings.Count(out, "running") != want || strings.Count(out, "serving,") != 2 {
		t.Errorf("cluster.sh status (want %d processes running, 2 daemons serving): %v\n%s", want, err, out)
	}

	var procs []int
	for _, f := range pids {
		var pid int
		b, _ := os.ReadFile(f)
		fmt.Sscan(string(b), &pid)
		procs = append(procs, pid)
	}
	if len(procs) != want {
		t.Errorf("%d PID files; want %d: %v", len(procs), want, pids)
	}
	if out, err := c.run(time.Minute, "down"); err != nil {
		t.Fatalf("cluster.sh down: %v\n%s", err, out)
	}
	for _, pid := range procs {
		if processRuns(pid) {
			t.Errorf("process %d still runs after down", pid)
		}
	}
	for _, addr := range []string{d1, d2, fmt.Sprintf("127.0.0.1:%d", c.base+1)} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after down", addr)
		}
	}
}

// After one etcd member and one daemon are killed, as README.md
// suggests to break the cluster by hand, deploy/cluster.sh up starts
// exactly those two again and leaves the rest running; then both
// daemons serve, the agents are live again, and what was placed before
// is still there.
func TestClusterScriptUpRestartsWhatIsDown(t *testing.T) {
	c := upCluster(t)
	d1 := fmt.Sprintf("127.0.0.1:%d", c.base+11)
	d2 := fmt.Sprintf("127.0.0.1:%d", c.base+12)
	ctl := filepath.Join(c.dir, "bin", "classroutectl")
	a := &cmdtest.CLI{T: t, Ctl: ctl, Server: d1, Root: c.root}
	b := &cmdtest.CLI{T: t, Ctl: ctl, Server: d2, Root: c.root}
	first := a.Place("examples/aukus-secret.yaml", "--request-id", "restart-1")

	before := c.pids()
	killed := []string{"m3", "d1"}
	for _, name := range killed {
		p, err := os.FindProcess(before[name])
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Kill(); err != nil {
			t.Fatalf("kill %s: %v", name, err)
		}
	}
	for _, name := range killed {
		for deadline := time.Now().Add(10 * time.Second); processRuns(before[name]); {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) still runs 10s after SIGKILL", name, before[name])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	out, err := c.run(3*time.Minute, "up")
	if err != nil {
		t.Fatalf("cluster.sh up after killing %v: %v\n%s", killed, err, out)
	}
	after := c.pids()
	if len(after) != len(before) {
		t.Errorf("after up, PID files of %v; before, %v", after, before)
	}
	for name, pid := range before {
		switch {
		case slices.Contains(killed, name) && (after[name] == pid || !processRuns(after[name])):
			t.Errorf("%s: pid %d before, %d after up (running %t); want a new running process", name, pid, after[name], processRuns(after[name]))
		case !slices.Contains(killed, name) && after[name] != pid:
			t.Errorf("%s: pid %d before, %d after up; want it left running", name, pid, after[name])
		case !processRuns(after[name]):
			t.Errorf("%s (pid %d) does not run after up", name, after[name])
		}
	}
	if !strings.Contains(out, "started m3 d1\n") {
		t.Errorf("cluster.sh up does not say it started m3 and d1 only:\n%s", out)
	}
	if out, err := c.run(time.Minute, "status"); err != nil || strings.Count(out, "serving,") != 2 {
		t.Errorf("cluster.sh status (want both daemons serving): %v\n%s", err, out)
	}
	// The agents of d1 reconnect by themselves (backing off up to 5s):
	// both daemons see every agent live again.
	for _, key := range []string{"aws/us-gov-west-1", "azure/usgovvirginia", "ke-gov/konza-1"} {
		deadline := time.Now().Add(20 * time.Second)
		for !a.Regions()[key].GetHealth().GetAgentLive() || !b.Regions()[key].GetHealth().GetAgentLive() {
			if time.Now().After(deadline) {
				t.Fatalf("no live agent for %s 20s after up: %v", key, a.Regions()[key].GetHealth())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, cli := range []*cmdtest.CLI{a, b} {
		var got pb.GetResponse
		cli.OK(&got, "get", "restart-1")
		if !proto.Equal(got.GetPlacement(), first) {
			t.Errorf("placement read through %s after the restart differs:\n%v\n%v", cli.Server, first, got.GetPlacement())
		}
	}
	b.Place("examples/jedi-multivendor.yaml", "--request-id", "restart-2")
	a.Place("examples/jedi-multivendor.yaml", "--request-id", "restart-3")
}

// processRuns reports whether pid runs (and is not an unreaped zombie).
func processRuns(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndex(s, ") "); i >= 0 {
		return !strings.HasPrefix(s[i+2:], "Z")
	}
	return true
}
