package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/classroute/classroute/proto/classroute/v1"
)

// watcher is a `classroutectl watch` running in the background.
type watcher struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string // stdout, closed at exit
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan error
}

func (e *env) watch(args ...string) *watcher {
	e.t.Helper()
	w := &watcher{t: e.t, lines: make(chan string, 1000), exited: make(chan error, 1)}
	w.cmd = exec.Command(e.Ctl, append(append([]string{"watch"}, args...), "--server", e.Server)...)
	w.cmd.Dir = e.Root
	w.cmd.Stderr = w
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		w.exited <- w.cmd.Wait()
	}()
	e.t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		for range w.lines {
		}
	})
	return w
}

// Write collects stderr.
func (w *watcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stderr.Write(b)
}

func (w *watcher) errs() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stderr.String()
}

// next returns the next line printed, within d.
func (w *watcher) next(d time.Duration) string {
	w.t.Helper()
	select {
	case l, ok := <-w.lines:
		if !ok {
			w.t.Fatalf("watch exited: %v\n%s", <-w.exited, w.errs())
		}
		return l
	case <-time.After(d):
		w.t.Fatalf("watch printed nothing for %v; stderr:\n%s", d, w.errs())
	}
	return ""
}

// interrupt stops the watch as a person would, and checks it exits 0.
func (w *watcher) interrupt() {
	w.t.Helper()
	if err := w.cmd.Process.Signal(os.Interrupt); err != nil {
		w.t.Fatal(err)
	}
	for range w.lines {
	}
	if err := <-w.exited; err != nil {
		w.t.Errorf("watch exit after interrupt: %v\n%s", err, w.errs())
	}
}

// `classroutectl watch` prints the placements `classroutectl place`
// makes, and when the daemon restarts it resumes by itself from the
// last revision it printed: nothing is missed, nothing repeated.
func TestWatchAcrossRestart(t *testing.T) {
	d := newDaemon(t)
	d.start()
	t.Cleanup(d.stop)
	e := d.env
	// List, then watch from the list's revision: no gap in between.
	var list pb.ListResponse
	e.OK(&list, "list")
	from := list.GetRevision()
	if from == 0 {
		t.Fatal("list -o json has no revision")
	}
	after := fmt.Sprintf("--after=%d", from)
	js := e.watch("-o", "json", after)
	table := e.watch(after, "--tenant", "us-dod")

	type seen struct {
		rev int64
		typ pb.PlacementEventType
		id  string
	}
	var all []seen
	expect := func(typ pb.PlacementEventType, id string) {
		t.Helper()
		line := js.next(30 * time.Second)
		var resp pb.WatchResponse
		if err := protojson.Unmarshal([]byte(line), &resp); err != nil || len(resp.GetEvents()) != 1 {
			t.Fatalf("watch -o json printed %q (%v); want one WatchResponse with one event", line, err)
		}
		ev := resp.GetEvents()[0]
		got := seen{resp.GetRevision(), ev.GetType(), ev.GetPlacement().GetId()}
		if got.typ != typ || got.id != id {
			t.Fatalf("watch printed %v %s; want %v %s", got.typ, got.id, typ, id)
		}
		if n := len(all); n > 0 && got.rev <= all[n-1].rev {
			t.Errorf("revision %d printed after %d", got.rev, all[n-1].rev)
		}
		all = append(all, got)
	}
	const (
		placed   = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_PLACED
		released = pb.PlacementEventType_PLACEMENT_EVENT_TYPE_RELEASED
	)
	const spec = "examples/nearline-storage.yaml"
	p := e.Place(spec, "--request-id", "w-1")
	expect(placed, "w-1")
	row := regexp.MustCompile(`^\d+ placed +w-1 placed ` + regexp.QuoteMeta(p.GetAssignments()[0].GetRegion()) + `$`)
	if l := table.next(30 * time.Second); !row.MatchString(l) {
		t.Errorf("watch printed %q; want a row like %q", l, row)
	}

	d.stop()
	d.start()
	e.Place(spec, "--request-id", "w-2")
	var rel pb.ReleaseResponse
	e.OK(&rel, "release", "w-1")
	expect(placed, "w-2")
	expect(released, "w-1")
	// A sentinel: the next line is its, so nothing came in between.
	e.Place(spec, "--request-id", "w-3")
	expect(placed, "w-3")
	if !strings.Contains(js.errs(), "watch interrupted") || !strings.Contains(js.errs(), "; resuming in ") {
		t.Errorf("watch stderr %q; want it to say it resumed", js.errs())
	}
	for _, want := range []string{"w-2", "w-1", "w-3"} {
		if l := table.next(30 * time.Second); !strings.Contains(l, " "+want+" ") {
			t.Errorf("table watch printed %q; want %s", l, want)
		}
	}
	js.interrupt()
	table.interrupt()
}

// The daemon serves its metrics on --metrics-listen: a placement and a
// refusal made with the CLI are counted, and /healthz says it serves.
func TestDaemonMetrics(t *testing.T) {
	d := newDaemon(t)
	d.start()
	t.Cleanup(d.stop)
	e := d.env
	e.Place("examples/nearline-storage.yaml")
	if r := e.Run("place", "-f", "cmd/classroutectl/testdata/kenya-gpu.yaml"); r.Code != 1 {
		t.Fatalf("kenya-gpu: exit %d; want a refusal", r.Code)
	}
	body := httpGet(t, "http://"+d.metrics+"/metrics")
	for _, want := range []string{
		`classroute_placements_total{outcome="placed"} 1`,
		`classroute_placements_total{outcome="refused"} 1`,
		`classroute_refusal_region_reasons_total{code="capability"} 1`,
		`classroute_commit_duration_seconds_count{result="committed"} 1`,
		`classroute_store_ready 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := httpGet(t, "http://"+d.metrics+"/healthz"); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}
