package flow_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

// FuzzParseDependency: whatever ParseDependency accepts is valid and
// reads back from its text form to the same dependency.
func FuzzParseDependency(f *testing.F) {
	for _, s := range []string{"read placement:dod-analytics/ingest-1", "call service:azure-openai-usgov", "WRITE placement:t/a:b.c_d",
		"read placement:t/a/b", "read  service:x", "call service:", "read service:x ", "read placement:/x", "reaſ service:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := flow.ParseDependency(s)
		if err != nil {
			// Inputs are clipped to 80 bytes in messages, quoted at most
			// twice: an error never grows with the input.
			if len(err.Error()) > 1024 {
				t.Errorf("error of %d bytes echoes the input: %.80s...", len(err.Error()), err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("ParseDependency(%q) = %v, which is invalid: %v", s, d, err)
		}
		back, err := flow.ParseDependency(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDependency(%q) = %v; its text %q reads back as %v, %v", s, d, d.String(), back, err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var j flow.Dependency
		if err := json.Unmarshal(b, &j); err != nil || j != d {
			t.Fatalf("json round trip of %v: %s gave %v, %v", d, b, j, err)
		}
	})
}

// FuzzEdgeJSON: an edge record that validates encodes to a canonical
// record that decodes and validates to the same encoding, and Check on
// any decoded edge, valid or not, neither panics nor allows with an edge
// that does not validate.
func FuzzEdgeJSON(f *testing.F) {
	golden, err := os.ReadFile("testdata/edge.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(bytes.ReplaceAll(golden, []byte(`"connected-service"`), []byte(`"diode"`)))
	f.Add(bytes.ReplaceAll(golden, []byte(`"call"`), []byte(`"read"`)))
	f.Add([]byte(`{"id":"d","kind":"diode","from":"internet","to":"siprnet","direction":"write","range":{"low":"UK OFFICIAL","high":"UK SECRET"},"authority":"x","expires":"2030-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"kind":"guard","from":"air-gapped","range":{"scheme":"KEN","low":"RESTRICTED","high":"SECRET"}}`))
	S := marking.MustParse(marking.US, "SECRET")
	U := marking.MustParse(marking.US, "UNCLASSIFIED")
	flows := []flow.Flow{
		{Direction: flow.Write, Label: S, From: siprA, Target: flow.ServiceNamed("s"), TargetLabel: U, To: inet},
		{Direction: flow.Call, Label: us(f, "CUI"), From: govVA, Target: flow.ServiceNamed("s"), TargetLabel: U, To: comEU},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e flow.Edge
		if json.Unmarshal(b, &e) != nil {
			return
		}
		raw := e
		valid := e.Validate(marking.Parser{}) == nil
		for _, fl := range flows {
			if r := flow.Check(fl, []flow.Edge{raw}, now); r.OK && r.Edge != "" && !valid {
				t.Fatalf("an invalid edge %+v allowed %s", raw, r.Edge)
			}
		}
		if !valid {
			return
		}
		one, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var again flow.Edge
		if err := json.Unmarshal(one, &again); err != nil {
			t.Fatalf("re-decoding %s: %v", one, err)
		}
		if err := again.Validate(marking.Parser{}); err != nil {
			t.Fatalf("re-validating %s: %v", one, err)
		}
		two, _ := json.Marshal(again)
		if !bytes.Equal(one, two) {
			t.Fatalf("not canonical:\n%s\n%s", one, two)
		}
	})
}

// The package sits below router, so it restates router's identifier
// shapes and enum names; these pin them to router's.

func TestDomainsAreRouters(t *testing.T) {
	var names []string
	for i := 0; ; i++ {
		b, err := router.NetworkDomain(i).MarshalText()
		if err != nil {
			break
		}
		names = append(names, string(b))
	}
	if got := flow.Domains(); strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("flow.Domains() = %v; router's are %v", got, names)
	}
}

func TestPersonnelIsRouters(t *testing.T) {
	for i := 0; i < 256; i++ {
		rb, rerr := router.Personnel(i).MarshalText()
		fb, ferr := flow.Personnel(i).MarshalText()
		if (rerr == nil) != (ferr == nil) || string(rb) != string(fb) {
			t.Errorf("Personnel(%d): router %q, %v; flow %q, %v", i, rb, rerr, fb, ferr)
		}
	}
}

func TestExportControlIsRouters(t *testing.T) {
	for i := 0; i < 256; i++ {
		b, err := router.ExportControl(i).MarshalText()
		if err != nil {
			break
		}
		name := string(b)
		if name == "none" {
			name = ""
		}
		f := flow.Flow{Direction: flow.Read, Label: us(t, "CUI"), ExportControl: name, From: govVA, Target: flow.ServiceNamed("s"), TargetLabel: us(t, "CUI"), To: govVA}
		if r := flow.Check(f, nil, now); r.Code == flow.CodeInvalid {
			t.Errorf("router's export control %q: %s", b, r.Message)
		}
	}
}

// shapesAgree reports where flow's reading of s as an identifier
// disagrees with router's.
func shapesAgree(t *testing.T, s string) {
	t.Helper()
	_, err := flow.ParseTarget("service:" + s)
	if (err == nil) != router.ValidID(s) {
		t.Errorf("service name %q: flow %v, router.ValidID %v", s, err, router.ValidID(s))
	}
	if !strings.Contains(s, "/") {
		_, err = flow.ParseTarget("placement:" + s + "/" + s)
		if want := router.ValidID(s) && router.ValidRequestID(s); (err == nil) != want {
			t.Errorf("placement %q/%q: flow %v, router %v", s, s, err, want)
		}
		_, err = flow.ParseTarget("placement:t/" + s)
		if (err == nil) != router.ValidRequestID(s) {
			t.Errorf("placement id %q: flow %v, router.ValidRequestID %v", s, err, router.ValidRequestID(s))
		}
	}
	err = flow.Side{Region: s, Domain: flow.DomainInternet}.Validate()
	if (err == nil) != router.ValidRegionKey(s) {
		t.Errorf("region key %q: flow %v, router.ValidRegionKey %v", s, err, router.ValidRegionKey(s))
	}
}

func TestShapesAreRouters(t *testing.T) {
	for _, s := range []string{"", "a", "aws", "AWS", "a-b", "a_b", "a.b", "a:b", "aws/us-east-1", "aws/", "/x", "a/b/c",
		"é", "a b", strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("A", 128), strings.Repeat("A", 129),
		strings.Repeat("a", 63) + "/" + strings.Repeat("b", 63), "aws/US-EAST-1", "a\n"} {
		shapesAgree(t, s)
	}
}

func FuzzShapesAreRouters(f *testing.F) {
	for _, s := range []string{"aws/us-east-1", "req:1.2_3", "a/b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(shapesAgree)
}
