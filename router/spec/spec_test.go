package spec_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/spec"
)

// seeds are every example and test spec in the repository.
func seeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, glob := range []string{"../../examples/*.yaml", "../../cmd/classroutectl/testdata/*.yaml", "testdata/*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			out[f] = b
		}
	}
	if len(out) < 9 {
		tb.Fatalf("found %d seed specs; want the examples at least", len(out))
	}
	return out
}

func TestParse(t *testing.T) {
	good, err := os.ReadFile("../../examples/kenya-health-records.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w, err := spec.Parse(good, "k.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := router.ValidateWorkload(w, "US"); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	tests := []struct {
		name string
		data string
		want string
	}{
		{"unknown field", string(good) + "colour: blue\n", "field colour not found"},
		{"second document", string(good) + "---\nname: x\n", "a second document follows"},
		{"empty", "", "empty spec"},
		{"not a mapping", "- a\n- b\n", "cannot unmarshal"},
		{"too large", "name: " + strings.Repeat("x", spec.MaxSize) + "\n", "a workload spec is at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := spec.Parse([]byte(tt.data), "k.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "k.yaml: ") {
				t.Errorf("got %v; want an error naming k.yaml and containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParse checks that Parse and ValidateWorkload never panic on any
// input, and that a spec they accept says the same after a round trip
// through YAML.
func FuzzParse(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Add([]byte("name: &a x\ntenant: *a\n"))
	f.Add([]byte("label: !!binary AAAA\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := spec.Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error %q does not name the source", err)
			}
			return
		}
		if router.ValidateWorkload(w, "US") != nil {
			return
		}
		out, err := yaml.Marshal(w)
		if err != nil {
			t.Fatalf("marshalling a valid spec: %v", err)
		}
		again, err := spec.Parse(out, "again.yaml")
		if err != nil {
			t.Fatalf("a valid spec, marshalled, does not parse: %v\n%s", err, out)
		}
		if err := router.ValidateWorkload(again, "US"); err != nil {
			t.Fatalf("a valid spec, marshalled, does not validate: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(w, again) {
			t.Fatalf("round trip changed the spec:\n%#v\n%#v", w, again)
		}
	})
}
