package flow_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

func goodEdge() flow.Edge {
	return flow.Edge{
		ID: "guard-sipr-inet", Kind: flow.Guard, From: flow.DomainSIPRNet, To: flow.DomainInternet, Direction: flow.Write,
		Range:     flow.Range{Scheme: marking.US, LowMarking: "UNCLASSIFIED", HighMarking: "SECRET"},
		Authority: "NCDSMO", Expires: now.AddDate(1, 0, 0),
	}
}

func TestEdgeValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*flow.Edge)
		want   string // a part of the error; "" for none
	}{
		{"good", func(*flow.Edge) {}, ""},
		{"region keys", func(e *flow.Edge) { e.From, e.To = "aws/us-isob-east-1", "aws/us-east-1" }, ""},
		{"range scheme from the syntax", func(e *flow.Edge) {
			e.Range = flow.Range{LowMarking: "UK OFFICIAL", HighMarking: "UK SECRET"}
		}, ""},
		{"id", func(e *flow.Edge) { e.ID = "Guard 1" }, `id: "Guard 1" is not an edge id`},
		{"kind", func(e *flow.Edge) { e.Kind = 0 }, "kind: Kind(0)"},
		{"from", func(e *flow.Edge) { e.From = "sipr" }, `from: "sipr" is neither a network domain`},
		{"to air-gapped", func(e *flow.Edge) { e.To = flow.DomainAirGapped }, "to: air-gapped names no one network"},
		{"from is to", func(e *flow.Edge) { e.To = e.From }, "from and to are both siprnet"},
		{"connected service to a domain", func(e *flow.Edge) { e.Kind = flow.ConnectedService }, "to: internet is a network domain: a connected service's to is the service's region key"},
		{"direction", func(e *flow.Edge) { e.Direction = 0 }, "direction: Direction(0)"},
		{"a diode that calls", func(e *flow.Edge) { e.Kind, e.Direction = flow.Diode, flow.Call }, "a diode carries data one way only"},
		{"range low", func(e *flow.Edge) { e.Range.LowMarking = "SEKRET" }, "range.low: invalid US marking"},
		{"range inverted", func(e *flow.Edge) { e.Range.LowMarking, e.Range.HighMarking = "SECRET", "UNCLASSIFIED" },
			"range: high UNCLASSIFIED does not dominate low SECRET//NOFORN"},
		{"range across schemes", func(e *flow.Edge) {
			e.Range = flow.Range{LowMarking: "UK OFFICIAL", HighMarking: "SECRET//NOFORN"}
		}, "range: low is GBR and high is US: a range is in one scheme"},
		{"range bare word", func(e *flow.Edge) { e.Range.Scheme = "" }, `range.low: invalid marking "UNCLASSIFIED"`},
		{"authority", func(e *flow.Edge) { e.Authority = " " }, "authority: required"},
		{"expires", func(e *flow.Edge) { e.Expires = time.Time{} }, "expires: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := goodEdge()
			tt.mutate(&e)
			err := e.Validate(marking.Parser{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
	e := goodEdge()
	e.Range.HighMarking = "secret"
	if err := e.Validate(marking.Parser{}); err != nil || e.Range.HighMarking != "SECRET//NOFORN" || e.Range.High.Level.Name != "SECRET" {
		t.Errorf("Validate: got %v, high %q; want the canonical SECRET//NOFORN parsed", err, e.Range.HighMarking)
	}
}

func goodService() flow.Service {
	return flow.Service{
		Name: "azure-openai-usgov", Scheme: marking.US, Marking: "CUI//SP-EXPT", Region: "azure/usgovvirginia",
		NetworkDomain: flow.DomainInternet, OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelScreenedUSPersons,
	}
}

func TestServiceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*flow.Service)
		want   string
	}{
		{"good", func(*flow.Service) {}, ""},
		{"name", func(s *flow.Service) { s.Name = "" }, `name: "" is not a service name`},
		{"scheme", func(s *flow.Service) { s.Scheme = "XX" }, `scheme: unknown scheme "XX"`},
		{"label", func(s *flow.Service) { s.Marking = "SECRET//NOFORN//REL TO USA, GBR" }, "label: invalid US marking"},
		{"bare word without scheme", func(s *flow.Service) { s.Scheme, s.Marking = "", "SECRET" }, "say which scheme"},
		{"region", func(s *flow.Service) { s.Region = "usgovvirginia" }, `region: "usgovvirginia" is not a region key`},
		{"domain", func(s *flow.Service) { s.NetworkDomain = "intranet" }, `network_domain: unknown network domain "intranet"`},
		{"no operators", func(s *flow.Service) { s.OperatorNationalities = nil }, "operator_nationalities: required"},
		{"operator", func(s *flow.Service) { s.OperatorNationalities = []string{"USA", "UK"} }, `operator_nationalities[1]: "UK" is not an ISO 3166 country trigraph`},
		{"personnel", func(s *flow.Service) { s.Personnel = 9 }, "personnel: Personnel(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := goodService()
			tt.mutate(&s)
			err := s.Validate(marking.Parser{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDependencyText(t *testing.T) {
	good := []struct {
		in   string
		want flow.Dependency
	}{
		{"read placement:dod-analytics/ingest-1", flow.Dependency{Target: flow.Placement("dod-analytics", "ingest-1"), Direction: flow.Read}},
		{"CALL service:azure-openai-usgov", flow.Dependency{Target: flow.ServiceNamed("azure-openai-usgov"), Direction: flow.Call}},
		{"write placement:t/req:2026.12_a-b", flow.Dependency{Target: flow.Placement("t", "req:2026.12_a-b"), Direction: flow.Write}},
	}
	for _, tt := range good {
		got, err := flow.ParseDependency(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDependency(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []struct{ in, want string }{
		{"read", "want \"<read|write|call> <target>\""},
		{"fetch service:x", `unknown direction "fetch"`},
		{"read service:X", `service name "X" is not a service name`},
		{"read placement:t", "want placement:<tenant>/<id>"},
		{"read placement:t/a/b", `placement id "a/b" is not a placement id`},
		{"read region:aws/x", `unknown kind "region"`},
		{"read  service:x", "target \" service:x\""},
		{"reaſ service:x", "unknown direction"},
	}
	for _, tt := range bad {
		if _, err := flow.ParseDependency(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDependency(%q): got %v; want an error containing %q", tt.in, err, tt.want)
		}
	}
	// JSON: the target and direction as text.
	d := flow.Dependency{Target: flow.Placement("dod-ops", "bucket-1"), Direction: flow.Write}
	b, err := json.Marshal(d)
	if err != nil || string(b) != `{"target":"placement:dod-ops/bucket-1","direction":"write"}` {
		t.Errorf("json: got %s, %v", b, err)
	}
	var back flow.Dependency
	if err := json.Unmarshal(b, &back); err != nil || back != d {
		t.Errorf("json round trip: got %v, %v; want %v", back, err, d)
	}
	if err := json.Unmarshal([]byte(`{"target":"service:x","direction":"up"}`), &back); err == nil {
		t.Errorf("json: an unknown direction was accepted")
	}
	if _, err := json.Marshal(flow.Dependency{}); err == nil {
		t.Errorf("json: the zero dependency was written")
	}
}

// TestGolden pins the stored form of edges and services: the records in
// testdata decode, validate, and encode back byte for byte.
func TestGolden(t *testing.T) {
	for _, name := range []string{"edge.json", "service.json"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			var v interface{ Validate(marking.Parser) error }
			switch name {
			case "edge.json":
				v = new(flow.Edge)
			default:
				v = new(flow.Service)
			}
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(marking.Parser{}); err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, '\n'); !bytes.Equal(got, want) {
				t.Errorf("re-encoded:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestDefaultsAreIllustrativeAndValid(t *testing.T) {
	edges, services := flow.Defaults()
	if len(edges) == 0 || len(services) < 2 {
		t.Fatalf("%d edges, %d services; want the §7.2 model endpoints", len(edges), len(services))
	}
	for _, e := range edges {
		if !e.Illustrative {
			t.Errorf("edge %s is not marked illustrative", e.ID)
		}
	}
	for _, s := range services {
		if !s.Illustrative {
			t.Errorf("service %s is not marked illustrative", s.Name)
		}
	}
}
