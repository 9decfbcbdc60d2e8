// Package deploy_test checks the deployment against the commands it
// runs: the unit files and manifests pass only flags the commands
// define; deploy/cluster.sh brings a cluster up and down; and the fault
// tests break real clusters of classroute-etcd and classrouted
// processes under load and check what must always hold.
package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/cmd/cmdtest"
)

// definedFlags are the flags a command defines, as its -h lists them:
// the flag package prints each as a line "  -name" (with its type after
// a space, unless it is a boolean).
func definedFlags(t *testing.T, cmd string) []string {
	t.Helper()
	bin, err := cmdtest.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	c := exec.Command(filepath.Join(bin, cmd), "-h")
	c.Stdout, c.Stderr = &help, &help
	if err := c.Run(); err != nil {
		t.Fatalf("%s -h: %v\n%s", cmd, err, help.String())
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: |$)`).FindAllStringSubmatch(help.String(), -1) {
		out = append(out, m[1])
	}
	if len(out) < 5 {
		t.Fatalf("found only %v in %s -h", out, cmd)
	}
	return out
}

// usedFlags are the --flags in s.
func usedFlags(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)(?:^|[\s"'])--([a-z0-9-]+)`).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// Every flag a unit file or manifest passes to a classroute command is
// one the command defines.
func TestFlagsExist(t *testing.T) {
	for _, tc := range []struct{ file, cmd string }{
		{"classrouted.service", "classrouted"},
		{"classroute-etcd@.service", "classroute-etcd"},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		exec := string(b[bytes.Index(b, []byte("ExecStart=")):])
		exec = exec[:strings.Index(exec, "\n[")+1]
		defined := definedFlags(t, tc.cmd)
		used := usedFlags(exec)
		if len(used) < 3 {
			t.Errorf("%s: found only %v", tc.file, used)
		}
		for _, f := range used {
			if !slices.Contains(defined, f) {
				t.Errorf("%s passes --%s, which %s does not define", tc.file, f, tc.cmd)
			}
		}
	}
	docs := manifests(t)
	d := find(t, docs, "Deployment", "classrouted")
	defined := definedFlags(t, "classrouted")
	for _, a := range d.path("spec", "template", "spec", "containers", "0", "args").strings() {
		f, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !slices.Contains(defined, f) {
			t.Errorf("classrouted.yaml passes %s, which classrouted does not define", a)
		}
	}
}

// node is a decoded YAML value, walked by path.
type node struct{ v any }

func (n node) path(keys ...string) node {
	for _, k := range keys {
		switch v := n.v.(type) {
		case map[string]any:
			n.v = v[k]
		case []any:
			i := int(k[0] - '0')
			if i < len(v) {
				n.v = v[i]
			} else {
				n.v = nil
			}
		default:
			return node{}
		}
	}
	return n
}

func (n node) str() string { s, _ := n.v.(string); return s }
func (n node) num() int    { i, _ := n.v.(int); return i }
func (n node) truth() bool { b, _ := n.v.(bool); return b }
func (n node) strings() []string {
	var out []string
	l, _ := n.v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func manifests(t *testing.T) []node {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	var docs []node
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var v map[string]any
			err := dec.Decode(&v)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			docs = append(docs, node{v})
		}
	}
	return docs
}

func find(t *testing.T, docs []node, kind, name string) node {
	t.Helper()
	for _, d := range docs {
		if d.path("kind").str() == kind && d.path("metadata", "name").str() == name {
			return d
		}
	}
	t.Fatalf("no %s %s in deploy/k8s", kind, name)
	return node{}
}

// The manifests keep what running classroute safely needs.
func TestKubernetesManifests(t *testing.T) {
	docs := manifests(t)
	kust := find(t, docs, "Kustomization", "")
	files, _ := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(kust.path("resources").strings(), base) {
			t.Errorf("kustomization.yaml does not list %s", base)
		}
	}

	d := find(t, docs, "Deployment", "classrouted")
	if r := d.path("spec", "replicas").num(); r < 2 {
		t.Errorf("classrouted replicas %d; want at least 2", r)
	}
	pod := d.path("spec", "template", "spec")
	c := pod.path("containers", "0")
	args := c.path("args").strings()
	for _, probe := range []string{"readinessProbe", "startupProbe"} {
		port := c.path(probe, "grpc", "port").num()
		if port == 0 || !slices.Contains(args, "--health-listen=0.0.0.0:"+strconv.Itoa(port)) {
			t.Errorf("classrouted %s: grpc probe on port %d; want the --health-listen port (args %v)", probe, port, args)
		}
	}
	checkSecure(t, "classrouted", pod, c)
	for _, flag := range []string{"--tls-cert=", "--tls-client-ca=", "--trust-domain="} {
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, flag) }) {
			t.Errorf("classrouted listens beyond loopback without %s (mutual TLS)", strings.TrimSuffix(flag, "="))
		}
	}
	if c.path("resources", "requests", "cpu").str() == "" || c.path("resources", "limits", "memory").str() == "" {
		t.Errorf("classrouted: no cpu request or memory limit")
	}
	find(t, docs, "Service", "classrouted")
	find(t, docs, "PodDisruptionBudget", "classrouted")

	s := find(t, docs, "StatefulSet", "classroute-etcd")
	if r := s.path("spec", "replicas").num(); r != 3 {
		t.Errorf("etcd replicas %d; want 3", r)
	}
	headless := find(t, docs, "Service", s.path("spec", "serviceName").str())
	if headless.path("spec", "clusterIP").str() != "None" {
		t.Errorf("etcd's Service is not headless")
	}
	epod := s.path("spec", "template", "spec")
	checkSecure(t, "etcd", epod, epod.path("containers", "0"))
	if pdb := find(t, docs, "PodDisruptionBudget", "classroute-etcd"); pdb.path("spec", "maxUnavailable").num() != 1 {
		t.Errorf("etcd PodDisruptionBudget must allow at most one member down")
	}
	var initial string
	for _, a := range epod.path("containers", "0", "args").strings() {
		if v, ok := strings.CutPrefix(a, "--initial-cluster="); ok {
			initial = v
		}
	}
	if n := strings.Count(initial, "=https://"); n != 3 {
		t.Errorf("etcd --initial-cluster lists %d TLS members: %q", n, initial)
	}
}

func checkSecure(t *testing.T, name string, pod, c node) {
	t.Helper()
	if !pod.path("securityContext", "runAsNonRoot").truth() {
		t.Errorf("%s: pod may run as root", name)
	}
	sc := c.path("securityContext")
	if !sc.path("readOnlyRootFilesystem").truth() || sc.path("allowPrivilegeEscalation").truth() || sc.path("allowPrivilegeEscalation").v == nil {
		t.Errorf("%s: root filesystem writable or privilege escalation allowed", name)
	}
	if !slices.Contains(sc.path("capabilities", "drop").strings(), "ALL") {
		t.Errorf("%s: capabilities not dropped", name)
	}
}
