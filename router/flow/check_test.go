package flow_test

import (
	"strings"
	"testing"
	"time"

	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// us reads a CAPCO marking.
func us(tb testing.TB, m string) marking.Label {
	tb.Helper()
	l, err := marking.Parse(marking.US, m)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Sides from the default catalogue's regions.
var (
	siprA = flow.Side{Region: "aws/us-isob-east-1", Domain: flow.DomainSIPRNet, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedSecret}
	siprB = flow.Side{Region: "azure/usseceast", Domain: flow.DomainSIPRNet, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedSecret}
	jwics = flow.Side{Region: "aws/us-iso-east-1", Domain: flow.DomainJWICS, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedTopSecret}
	jwicB = flow.Side{Region: "azure/usnateast", Domain: flow.DomainJWICS, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedTopSecret}
	inet  = flow.Side{Region: "aws/us-east-1", Domain: flow.DomainInternet, Operators: []string{"USA"}, Personnel: flow.PersonnelNone}
	govVA = flow.Side{Region: "azure/usgovvirginia", Domain: flow.DomainInternet, Operators: []string{"USA"}, Personnel: flow.PersonnelScreenedUSPersons}
	comEU = flow.Side{Region: "azure/eastus", Domain: flow.DomainInternet, Operators: []string{"USA"}, Personnel: flow.PersonnelNone}
	gapUS = flow.Side{Region: "oracle/us-nsr-east-1", Domain: flow.DomainAirGapped, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedSecret}
	gapG  = flow.Side{Region: "google/gdc-airgapped-us", Domain: flow.DomainAirGapped, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedTopSecret}
	ukGap = flow.Side{Region: "aws/uk-classified-1", Domain: flow.DomainAirGapped, Operators: []string{"GBR"}, Personnel: flow.PersonnelClearedSecret}
)

// edge returns a valid edge; the cases mutate it.
func edge(tb testing.TB, id string, kind flow.Kind, from, to string, dir flow.Direction, low, high marking.Label) flow.Edge {
	tb.Helper()
	e := flow.Edge{
		ID: id, Kind: kind, From: from, To: to, Direction: dir,
		Range:     flow.NewRange(low, high),
		Authority: "NCDSMO", Expires: now.AddDate(1, 0, 0),
	}
	if err := e.Validate(marking.Parser{}); err != nil {
		tb.Fatal(err)
	}
	return e
}

func expired(e flow.Edge) flow.Edge { e.Expires = now.AddDate(0, -1, 0); return e }
func revoked(e flow.Edge) flow.Edge { e.Revoked = true; return e }

// TestRuleTable is the flow rule over every direction × dominance ×
// edge, once across networks (SIPRNet to JWICS: only an edge carries
// anything) and once within one (SIPRNet: the rule carries what BLP
// allows). The edge is a guard between the sides, in the flow's
// direction, approved for UNCLASSIFIED to TOP SECRET; out of range is
// one approved for UNCLASSIFIED to CONFIDENTIAL only; wrong direction
// carries the opposite way.
func TestRuleTable(t *testing.T) {
	type labels struct{ w, t marking.Label }
	dominance := map[string]labels{
		"dominates":    {us(t, "SECRET"), us(t, "UNCLASSIFIED")},
		"dominated":    {us(t, "CONFIDENTIAL"), us(t, "SECRET")},
		"equal":        {us(t, "SECRET"), us(t, "SECRET")},
		"incomparable": {us(t, "SECRET"), marking.MustParse(marking.GBR, "UK SECRET")},
	}
	edgeStates := []string{"none", "in force", "expired", "revoked", "out of range", "wrong direction"}
	// want[network][direction][dominance] lists the codes for edgeStates
	// in order; "ok" is allowed.
	want := map[string]map[flow.Direction]map[string][6]string{
		"across": {
			flow.Read: {
				"dominates":    {"no_edge", "ok", "cds_expired", "cds_expired", "out_of_range", "no_edge"},
				"dominated":    {"read_up", "ok", "cds_expired", "cds_expired", "out_of_range", "read_up"},
				"equal":        {"no_edge", "ok", "cds_expired", "cds_expired", "out_of_range", "no_edge"},
				"incomparable": {"incomparable", "out_of_range", "out_of_range", "out_of_range", "out_of_range", "incomparable"},
			},
			flow.Write: {
				"dominates":    {"write_down", "ok", "cds_expired", "cds_expired", "out_of_range", "write_down"},
				"dominated":    {"no_edge", "ok", "cds_expired", "cds_expired", "out_of_range", "no_edge"},
				"equal":        {"no_edge", "ok", "cds_expired", "cds_expired", "out_of_range", "no_edge"},
				"incomparable": {"incomparable", "out_of_range", "out_of_range", "out_of_range", "out_of_range", "incomparable"},
			},
			flow.Call: {
				"dominates":    {"write_down", "ok", "cds_expired", "cds_expired", "out_of_range", "write_down"},
				"dominated":    {"read_up", "ok", "cds_expired", "cds_expired", "out_of_range", "read_up"},
				"equal":        {"no_edge", "ok", "cds_expired", "cds_expired", "out_of_range", "no_edge"},
				"incomparable": {"incomparable", "out_of_range", "out_of_range", "out_of_range", "out_of_range", "incomparable"},
			},
		},
		"within": {
			flow.Read: {
				"dominates":    {"ok", "ok", "ok", "ok", "ok", "ok"},
				"dominated":    {"read_up", "ok", "cds_expired", "cds_expired", "out_of_range", "read_up"},
				"equal":        {"ok", "ok", "ok", "ok", "ok", "ok"},
				"incomparable": {"incomparable", "out_of_range", "out_of_range", "out_of_range", "out_of_range", "incomparable"},
			},
			flow.Write: {
				"dominates":    {"write_down", "ok", "cds_expired", "cds_expired", "out_of_range", "write_down"},
				"dominated":    {"ok", "ok", "ok", "ok", "ok", "ok"},
				"equal":        {"ok", "ok", "ok", "ok", "ok", "ok"},
				"incomparable": {"incomparable", "out_of_range", "out_of_range", "out_of_range", "out_of_range", "incomparable"},
			},
			flow.Call: {
				"dominates":    {"write_down", "ok", "cds_expired", "cds_expired", "out_of_range", "write_down"},
				"dominated":    {"read_up", "ok", "cds_expired", "cds_expired", "out_of_range", "read_up"},
				"equal":        {"ok", "ok", "ok", "ok", "ok", "ok"},
				"incomparable": {"incomparable", "out_of_range", "out_of_range", "out_of_range", "out_of_range", "incomparable"},
			},
		},
	}
	networks := map[string][2]flow.Side{"across": {siprA, jwics}, "within": {siprA, siprB}}
	opposite := map[flow.Direction]flow.Direction{flow.Read: flow.Write, flow.Write: flow.Read, flow.Call: flow.Read}
	for netName, sides := range networks {
		for dir, byDom := range want[netName] {
			for domName, codes := range byDom {
				ls := dominance[domName]
				guard := edge(t, "guard-1", flow.Guard, sides[0].Region, sides[1].Region, dir, us(t, "UNCLASSIFIED"), us(t, "TOP SECRET"))
				narrow := edge(t, "guard-1", flow.Guard, sides[0].Region, sides[1].Region, dir, us(t, "UNCLASSIFIED"), us(t, "CONFIDENTIAL"))
				wrong := guard
				wrong.Direction = opposite[dir]
				edges := map[string][]flow.Edge{
					"none": nil, "in force": {guard}, "expired": {expired(guard)}, "revoked": {revoked(guard)},
					"out of range": {narrow}, "wrong direction": {wrong},
				}
				for i, st := range edgeStates {
					name := netName + "/" + dir.String() + "/" + domName + "/" + st
					t.Run(name, func(t *testing.T) {
						f := flow.Flow{Direction: dir, Label: ls.w, From: sides[0],
							Target: flow.ServiceNamed("store"), TargetLabel: ls.t, To: sides[1]}
						got := flow.Check(f, edges[st], now)
						if g := codeOf(got); g != codes[i] {
							t.Errorf("got %s (%s); want %s", g, got.Message, codes[i])
						}
						if got.OK && st == "in force" && !ruleAllows(netName, dir, domName) && got.Edge != "guard-1" {
							t.Errorf("edge used: got %q; want guard-1", got.Edge)
						}
						if verb := map[flow.Direction]string{flow.Read: " reads ", flow.Write: " writes to ", flow.Call: " calls "}[dir]; !got.OK && !strings.Contains(got.Message, verb) {
							t.Errorf("message %q does not name the direction", got.Message)
						}
					})
				}
			}
		}
	}
}

// ruleAllows is whether the rule alone allows the case of TestRuleTable.
func ruleAllows(network string, dir flow.Direction, dom string) bool {
	if network != "within" {
		return false
	}
	return dom == "equal" || (dir == flow.Read && dom == "dominates") || (dir == flow.Write && dom == "dominated")
}

func codeOf(r flow.Result) string {
	if r.OK {
		if r.Code != "" {
			return "ok with code " + string(r.Code)
		}
		return "ok"
	}
	return string(r.Code)
}

// TestKinds pins what each edge kind permits beyond the guard of
// TestRuleTable.
func TestKinds(t *testing.T) {
	U, C, S, TS := us(t, "UNCLASSIFIED"), us(t, "CONFIDENTIAL"), us(t, "SECRET"), us(t, "TOP SECRET")
	cuiX := us(t, "CUI//SP-EXPT")
	ukOff := marking.MustParse(marking.GBR, "UK OFFICIAL")
	f := func(dir flow.Direction, w marking.Label, from flow.Side, tl marking.Label, to flow.Side) flow.Flow {
		return flow.Flow{Direction: dir, Label: w, From: from, Target: flow.ServiceNamed("svc"), TargetLabel: tl, To: to}
	}
	tests := []struct {
		name     string
		flow     flow.Flow
		edges    []flow.Edge
		want     string
		wantEdge string
	}{
		{"diode up, described from the high side", f(flow.Read, S, siprA, U, inet),
			[]flow.Edge{edge(t, "d", flow.Diode, "siprnet", "internet", flow.Read, U, U)}, "ok", "d"},
		{"diode up, described from the low side", f(flow.Read, S, siprA, U, inet),
			[]flow.Edge{edge(t, "d", flow.Diode, "internet", "siprnet", flow.Write, U, U)}, "ok", "d"},
		{"low writes up a diode", f(flow.Write, U, inet, S, siprA),
			[]flow.Edge{edge(t, "d", flow.Diode, "internet", "siprnet", flow.Write, U, U)}, "ok", "d"},
		{"a diode never carries a write down", f(flow.Write, S, siprA, U, inet),
			[]flow.Edge{edge(t, "d", flow.Diode, "siprnet", "internet", flow.Write, U, S)}, "write_down", "d"},
		{"a diode never carries a read up", f(flow.Read, U, inet, S, siprA),
			[]flow.Edge{edge(t, "d", flow.Diode, "internet", "siprnet", flow.Read, U, S)}, "read_up", "d"},
		{"a diode carries the data's label only: out of range", f(flow.Read, S, siprA, C, inet),
			[]flow.Edge{edge(t, "d", flow.Diode, "siprnet", "internet", flow.Read, U, U)}, "out_of_range", "d"},
		{"a one-way diode carries no call", f(flow.Call, S, siprA, S, inet),
			[]flow.Edge{edge(t, "d", flow.Diode, "siprnet", "internet", flow.Read, U, S)}, "no_edge", ""},
		{"access: an equal call across networks", f(flow.Call, S, siprA, S, jwics),
			[]flow.Edge{edge(t, "a", flow.Access, "siprnet", "jwics", flow.Call, U, TS)}, "ok", "a"},
		{"access changes no label: write down", f(flow.Call, TS, jwics, S, siprA),
			[]flow.Edge{edge(t, "a", flow.Access, "siprnet", "jwics", flow.Call, U, TS)}, "write_down", "a"},
		{"access one way does not carry a call", f(flow.Call, S, siprA, S, jwics),
			[]flow.Edge{edge(t, "a", flow.Access, "siprnet", "jwics", flow.Write, U, TS)}, "no_edge", ""},
		{"guard downgrade within one network, by region keys", f(flow.Write, S, siprA, U, siprB),
			[]flow.Edge{edge(t, "g", flow.Guard, siprA.Region, siprB.Region, flow.Write, U, S)}, "ok", "g"},
		{"a guard between other regions does not apply", f(flow.Write, S, siprA, U, siprB),
			[]flow.Edge{edge(t, "g", flow.Guard, jwics.Region, siprB.Region, flow.Write, U, S)}, "write_down", ""},
		{"guard range must hold the label reached too", f(flow.Write, U, siprA, TS, jwics),
			[]flow.Edge{edge(t, "g", flow.Guard, "siprnet", "jwics", flow.Write, U, S)}, "out_of_range", "g"},
		{"connected service holds data up to its ceiling", f(flow.Call, us(t, "CUI"), govVA, U, comEU),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, govVA.Region, comEU.Region, flow.Call, U, cuiX)}, "ok", "cs"},
		{"connected service: above its ceiling", f(flow.Call, S, govVA, U, comEU),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, govVA.Region, comEU.Region, flow.Call, U, cuiX)}, "out_of_range", "cs"},
		{"connected service returns only dominated data", f(flow.Call, U, govVA, us(t, "CUI"), comEU),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, govVA.Region, comEU.Region, flow.Call, U, cuiX)}, "read_up", "cs"},
		{"connected service reached from the wrong side", f(flow.Call, us(t, "CUI"), comEU, U, govVA),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, govVA.Region, comEU.Region, flow.Call, U, cuiX)}, "write_down", "cs"},
		{"connected service covers a write of another scheme in its range's", f(flow.Write, ukOff, ukGap, U, comEU),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, ukGap.Region, comEU.Region, flow.Write, ukOff, ukOff)}, "ok", "cs"},
		{"a range in another scheme never covers", f(flow.Write, ukOff, ukGap, U, comEU),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, ukGap.Region, comEU.Region, flow.Write, U, S)}, "out_of_range", "cs"},
		{"connected service reaches a service, not a placement in its region",
			flow.Flow{Direction: flow.Call, Label: us(t, "CUI"), From: govVA, Target: flow.Placement("t", "p"), TargetLabel: U, To: comEU},
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, govVA.Region, comEU.Region, flow.Call, U, cuiX)}, "write_down", ""},
		{"connected service: no read up by a workload in the service's region", f(flow.Read, U, comEU, us(t, "CUI"), govVA),
			[]flow.Edge{edge(t, "cs", flow.ConnectedService, govVA.Region, comEU.Region, flow.Write, U, cuiX)}, "read_up", "cs"},
		{"each air-gapped region is its own network", f(flow.Read, S, gapUS, S, gapG), nil, "no_edge", ""},
		{"one air-gapped region is one network", f(flow.Read, S, gapUS, S, gapUS), nil, "ok", ""},
		{"air-gapped networks are joined by region keys", f(flow.Read, S, gapUS, S, gapG),
			[]flow.Edge{edge(t, "a", flow.Access, gapUS.Region, gapG.Region, flow.Read, U, S)}, "ok", "a"},
		{"the least ID is used", f(flow.Read, S, siprA, U, inet),
			[]flow.Edge{edge(t, "z", flow.Diode, "siprnet", "internet", flow.Read, U, U), edge(t, "b", flow.Diode, "siprnet", "internet", flow.Read, U, S)}, "ok", "b"},
		{"closest refusal: expired beats out of range", f(flow.Write, S, siprA, U, inet),
			[]flow.Edge{edge(t, "a", flow.Guard, "siprnet", "internet", flow.Write, U, C), expired(edge(t, "b", flow.Guard, "siprnet", "internet", flow.Write, U, S))}, "cds_expired", "b"},
		{"closest refusal: out of range beats a kind that cannot", f(flow.Write, S, siprA, U, inet),
			[]flow.Edge{edge(t, "a", flow.Diode, "siprnet", "internet", flow.Write, U, S), edge(t, "b", flow.Guard, "siprnet", "internet", flow.Write, U, C)}, "out_of_range", "b"},
		{"an expired edge does not hide one in force", f(flow.Write, S, siprA, U, inet),
			[]flow.Edge{expired(edge(t, "a", flow.Guard, "siprnet", "internet", flow.Write, U, S)), edge(t, "b", flow.Guard, "siprnet", "internet", flow.Write, U, S)}, "ok", "b"},
		{"same-scheme labels that neither dominates: write down", f(flow.Write, us(t, "SECRET//REL TO USA, GBR"), siprA, us(t, "SECRET//REL TO USA, AUS"), siprB), nil, "write_down", ""},
		{"releasability: write to a service operated by others", f(flow.Write, us(t, "SECRET//REL TO USA, GBR"), siprA, us(t, "SECRET//REL TO USA, GBR"),
			flow.Side{Region: "aws/ap-tsc-au-1", Domain: flow.DomainSIPRNet, Operators: []string{"AUS"}, Personnel: flow.PersonnelClearedTopSecret}), nil, "personnel", ""},
		{"releasability: a read sends nothing", f(flow.Read, us(t, "SECRET//REL TO USA, GBR"), siprA, us(t, "SECRET//REL TO USA, GBR"),
			flow.Side{Region: "aws/ap-tsc-au-1", Domain: flow.DomainSIPRNet, Operators: []string{"AUS"}, Personnel: flow.PersonnelClearedTopSecret}), nil, "ok", ""},
		{"a foreign classified label naming no nations is its originator's",
			f(flow.Write, marking.MustParse(marking.GBR, "UK SECRET"), ukGap, marking.MustParse(marking.GBR, "UK SECRET"),
				flow.Side{Region: "aws/ap-tsc-au-1", Domain: flow.DomainAirGapped, Operators: []string{"AUS"}, Personnel: flow.PersonnelClearedTopSecret}),
			[]flow.Edge{edge(t, "a", flow.Access, ukGap.Region, "aws/ap-tsc-au-1", flow.Write, marking.MustParse(marking.GBR, "UK OFFICIAL"), marking.MustParse(marking.GBR, "UK SECRET"))},
			"personnel", "a"},
		{"clearance: SECRET to uncleared operators", f(flow.Write, S, siprA, S, flow.Side{Region: "aws/us-isob-west-1", Domain: flow.DomainSIPRNet, Operators: []string{"USA"}, Personnel: flow.PersonnelUSPersonsADP}), nil, "personnel", ""},
		{"operators unknown", f(flow.Write, S, siprA, S, flow.Side{Region: "aws/us-isob-west-1", Domain: flow.DomainSIPRNet, Personnel: flow.PersonnelClearedTopSecret}), nil, "personnel", ""},
		{"a guard's release is reviewed: no personnel rule", f(flow.Write, S, siprA, U, inet),
			[]flow.Edge{edge(t, "g", flow.Guard, "siprnet", "internet", flow.Write, U, S)}, "ok", "g"},
		{"declared ITAR needs US persons", flow.Flow{Direction: flow.Write, Label: U, ExportControl: "ITAR", From: govVA, Target: flow.ServiceNamed("svc"), TargetLabel: U, To: comEU}, nil, "personnel", ""},
		{"invalid: no direction", f(0, S, siprA, S, siprB), nil, "invalid_flow", ""},
		{"invalid: a zero label", f(flow.Read, marking.Label{}, siprA, marking.Label{}, siprB), nil, "invalid_flow", ""},
		{"invalid: no domain", f(flow.Read, S, flow.Side{Region: "aws/x"}, S, flow.Side{Region: "aws/y"}), nil, "invalid_flow", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flow.Check(tt.flow, tt.edges, now)
			if g := codeOf(got); g != tt.want || got.Edge != tt.wantEdge {
				t.Errorf("got %s edge %q (%s); want %s edge %q", g, got.Edge, got.Message, tt.want, tt.wantEdge)
			}
		})
	}
}

// TestScenarios are DOMAIN.md §7.5's scenarios 1–4 and 6. Scenario 5 (an
// AUS PROTECTED caller of a uksouth service) is the workload's own
// residency and equivalence, which router's dependency rule applies
// (router.TestDependencyAcrossSchemes); here its labels are only
// incomparable.
func TestScenarios(t *testing.T) {
	U, S := us(t, "UNCLASSIFIED"), us(t, "SECRET")
	diode := edge(t, "diode-inet-sipr", flow.Diode, flow.DomainSIPRNet, flow.DomainInternet, flow.Read, U, U)
	guard := edge(t, "guard-sipr-inet", flow.Guard, flow.DomainSIPRNet, flow.DomainInternet, flow.Write, U, S)
	commercial := flow.Service{
		Name: "azure-openai-commercial", Scheme: marking.US, Marking: "UNCLASSIFIED", Region: "azure/eastus", NetworkDomain: flow.DomainInternet,
		OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelNone, Illustrative: true,
	}
	inBoundary := flow.Service{
		Name: "azure-openai-usgov", Scheme: marking.US, Marking: "CUI//SP-EXPT", Region: "azure/usgovvirginia", NetworkDomain: flow.DomainInternet,
		OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelScreenedUSPersons, Illustrative: true,
	}
	for _, s := range []*flow.Service{&commercial, &inBoundary} {
		if err := s.Validate(marking.Parser{}); err != nil {
			t.Fatal(err)
		}
	}
	cuiX := us(t, "CUI//SP-EXPT")
	govPath := edge(t, "aoai-gov-to-commercial", flow.ConnectedService, govVA.Region, commercial.Region, flow.Call, U, cuiX)
	tsSI := us(t, "TOP SECRET//SI")
	secretAPI := flow.Side{Region: "aws/us-isob-east-1", Domain: flow.DomainSIPRNet, Operators: []string{"USA"}, Personnel: flow.PersonnelClearedSecret}
	svc := func(s flow.Service) (flow.Target, marking.Label, flow.Side) { return s.Target(), s.Label, s.Side() }
	tests := []struct {
		name     string
		flow     flow.Flow
		edges    []flow.Edge
		want     string
		wantEdge string
		wantMsg  string // exact, when set
	}{
		{"1: SECRET reads an UNCLASSIFIED store over a diode",
			flow.Flow{Direction: flow.Read, Label: S, From: siprA, Target: flow.ServiceNamed("weather-store"), TargetLabel: U, To: inet},
			[]flow.Edge{diode}, "ok", "diode-inet-sipr", ""},
		{"1: without the diode",
			flow.Flow{Direction: flow.Read, Label: S, From: siprA, Target: flow.ServiceNamed("weather-store"), TargetLabel: U, To: inet},
			nil, "no_edge", "",
			"SECRET//NOFORN on aws/us-isob-east-1 (siprnet) reads service:weather-store (UNCLASSIFIED) on aws/us-east-1 (internet): " +
				"no edge: the sides share no network, and no edge carries the flow between them"},
		{"2: SECRET writes an UNCLASSIFIED bucket",
			flow.Flow{Direction: flow.Write, Label: S, From: siprA, Target: flow.Placement("dod-ops", "bucket-1"), TargetLabel: U, To: inet},
			[]flow.Edge{diode}, "write_down", "",
			"SECRET//NOFORN on aws/us-isob-east-1 (siprnet) writes to placement:dod-ops/bucket-1 (UNCLASSIFIED) on aws/us-east-1 (internet): " +
				"write down: SECRET//NOFORN goes to UNCLASSIFIED, which does not dominate it; no edge covers it"},
		{"2: then allowed by a guard",
			flow.Flow{Direction: flow.Write, Label: S, From: siprA, Target: flow.Placement("dod-ops", "bucket-1"), TargetLabel: U, To: inet},
			[]flow.Edge{diode, guard}, "ok", "guard-sipr-inet", ""},
		{"3: CUI//SP-EXPT on the commercial endpoint",
			func() flow.Flow {
				tg, tl, to := svc(commercial)
				return flow.Flow{Direction: flow.Call, Label: cuiX, From: govVA, Target: tg, TargetLabel: tl, To: to}
			}(),
			[]flow.Edge{govPath}, "personnel", "aoai-gov-to-commercial",
			"CUI//SP-EXPT on azure/usgovvirginia (internet) calls service:azure-openai-commercial (UNCLASSIFIED) on azure/eastus (internet): " +
				"through connected-service aoai-gov-to-commercial: personnel: personnel none; CUI//SP-EXPT data requires screened-us-persons"},
		{"3: the commercial endpoint with no path declared",
			func() flow.Flow {
				tg, tl, to := svc(commercial)
				return flow.Flow{Direction: flow.Call, Label: cuiX, From: govVA, Target: tg, TargetLabel: tl, To: to}
			}(),
			nil, "write_down", "", ""},
		{"3: the in-boundary deployment",
			func() flow.Flow {
				tg, tl, to := svc(inBoundary)
				return flow.Flow{Direction: flow.Call, Label: cuiX, From: govVA, Target: tg, TargetLabel: tl, To: to}
			}(),
			[]flow.Edge{govPath}, "ok", "", ""},
		{"4: TS//SI calls a SECRET API",
			flow.Flow{Direction: flow.Call, Label: tsSI, From: jwics, Target: flow.ServiceNamed("secret-api"), TargetLabel: S, To: secretAPI},
			[]flow.Edge{diode, guard}, "write_down", "",
			"TOP SECRET//SI//NOFORN on aws/us-iso-east-1 (jwics) calls service:secret-api (SECRET//NOFORN) on aws/us-isob-east-1 (siprnet): " +
				"write down: requests carry TOP SECRET//SI//NOFORN to SECRET//NOFORN, which does not dominate it; no edge covers it"},
		{"6: an expired edge refuses its dependants",
			flow.Flow{Direction: flow.Write, Label: S, From: siprA, Target: flow.Placement("dod-ops", "bucket-1"), TargetLabel: U, To: inet},
			[]flow.Edge{expired(guard)}, "cds_expired", "guard-sipr-inet",
			"SECRET//NOFORN on aws/us-isob-east-1 (siprnet) writes to placement:dod-ops/bucket-1 (UNCLASSIFIED) on aws/us-east-1 (internet): " +
				"guard guard-sipr-inet would carry it but its accreditation has expired, and no other edge covers it"},
		{"6: a revoked edge too",
			flow.Flow{Direction: flow.Write, Label: S, From: siprA, Target: flow.Placement("dod-ops", "bucket-1"), TargetLabel: U, To: inet},
			[]flow.Edge{revoked(guard)}, "cds_expired", "guard-sipr-inet", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flow.Check(tt.flow, tt.edges, now)
			if g := codeOf(got); g != tt.want || got.Edge != tt.wantEdge {
				t.Errorf("got %s edge %q (%s); want %s edge %q", g, got.Edge, got.Message, tt.want, tt.wantEdge)
			}
			if tt.wantMsg != "" && got.Message != tt.wantMsg {
				t.Errorf("message:\ngot  %s\nwant %s", got.Message, tt.wantMsg)
			}
		})
	}
}

// TestMessages pins a few more messages exactly.
func TestMessages(t *testing.T) {
	U, C, S := us(t, "UNCLASSIFIED"), us(t, "CONFIDENTIAL"), us(t, "SECRET")
	uk := marking.MustParse(marking.GBR, "UK SECRET")
	tests := []struct {
		name  string
		flow  flow.Flow
		edges []flow.Edge
		want  string
	}{
		{"read up",
			flow.Flow{Direction: flow.Read, Label: C, From: siprA, Target: flow.ServiceNamed("s"), TargetLabel: S, To: siprB}, nil,
			"CONFIDENTIAL//NOFORN on aws/us-isob-east-1 (siprnet) reads service:s (SECRET//NOFORN) on azure/usseceast (siprnet): " +
				"read up: CONFIDENTIAL//NOFORN does not dominate SECRET//NOFORN; no edge covers it"},
		{"incomparable",
			flow.Flow{Direction: flow.Read, Label: S, From: siprA, Target: flow.ServiceNamed("s"), TargetLabel: uk, To: siprB}, nil,
			"SECRET//NOFORN on aws/us-isob-east-1 (siprnet) reads service:s ((GBR) UK SECRET) on azure/usseceast (siprnet): " +
				"incomparable: labels of schemes US and GBR are never compared; no edge covers it"},
		{"out of range",
			flow.Flow{Direction: flow.Write, Label: S, From: siprA, Target: flow.ServiceNamed("s"), TargetLabel: U, To: inet},
			[]flow.Edge{edge(t, "g", flow.Guard, "siprnet", "internet", flow.Write, U, C)},
			"SECRET//NOFORN on aws/us-isob-east-1 (siprnet) writes to service:s (UNCLASSIFIED) on aws/us-east-1 (internet): " +
				"guard g is not approved for SECRET//NOFORN"},
		{"a diode asked to write down",
			flow.Flow{Direction: flow.Write, Label: S, From: siprA, Target: flow.ServiceNamed("s"), TargetLabel: U, To: inet},
			[]flow.Edge{edge(t, "d", flow.Diode, "siprnet", "internet", flow.Write, U, S)},
			"SECRET//NOFORN on aws/us-isob-east-1 (siprnet) writes to service:s (UNCLASSIFIED) on aws/us-east-1 (internet): " +
				"write down: SECRET//NOFORN goes to UNCLASSIFIED, which does not dominate it; diode d changes no label, and no other edge covers it"},
		{"releasability",
			flow.Flow{Direction: flow.Write, Label: us(t, "SECRET//REL TO USA, GBR"), From: siprA, Target: flow.ServiceNamed("s"), TargetLabel: us(t, "SECRET//REL TO USA, GBR"),
				To: flow.Side{Region: "aws/ap-tsc-au-1", Domain: flow.DomainSIPRNet, Operators: []string{"AUS", "USA"}, Personnel: flow.PersonnelClearedTopSecret}}, nil,
			"SECRET//REL TO USA, GBR on aws/us-isob-east-1 (siprnet) writes to service:s (SECRET//REL TO USA, GBR) on aws/ap-tsc-au-1 (siprnet): " +
				"personnel: operated by AUS nationals; SECRET//REL TO USA, GBR is releasable to GBR, USA only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := flow.Check(tt.flow, tt.edges, now)
			if got.Message != tt.want {
				t.Errorf("message:\ngot  %s\nwant %s", got.Message, tt.want)
			}
		})
	}
}

// TestCheckAll: every replica pair must pass; one failing pair fails
// the dependency; no sides is not OK.
func TestCheckAll(t *testing.T) {
	U, S := us(t, "UNCLASSIFIED"), us(t, "SECRET")
	diode := edge(t, "d", flow.Diode, flow.DomainSIPRNet, flow.DomainInternet, flow.Read, U, U)
	f := flow.Flow{Direction: flow.Read, Label: S, Target: flow.ServiceNamed("store"), TargetLabel: U}
	rs := flow.CheckAll(f, []flow.Side{siprA, siprB}, []flow.Side{inet}, []flow.Edge{diode}, now)
	if !rs.OK() || len(rs) != 2 || rs[0].Edge != "d" || rs[1].From != siprB.Region {
		t.Errorf("two SIPRNet replicas over the diode: got %+v; want both OK through d", rs)
	}
	rs = flow.CheckAll(f, []flow.Side{siprA, jwics}, []flow.Side{inet}, []flow.Edge{diode}, now)
	if rs.OK() {
		t.Errorf("a JWICS replica has no diode: got OK; want refused")
	}
	if r := rs.Refused(); len(r) != 1 || r[0].From != jwics.Region || r[0].Code != flow.CodeNoEdge {
		t.Errorf("refused: got %+v; want the JWICS replica, no_edge", r)
	}
	if rs := flow.CheckAll(f, nil, []flow.Side{inet}, []flow.Edge{diode}, now); rs.OK() {
		t.Errorf("no workload sides: got OK; want not OK")
	}
	// A replicated target: each of its sides too.
	rs = flow.CheckAll(f, []flow.Side{siprA}, []flow.Side{inet, jwicB}, []flow.Edge{diode}, now)
	if rs.OK() || len(rs.Refused()) != 1 || rs.Refused()[0].To != jwicB.Region {
		t.Errorf("a target replica on JWICS: got %+v; want it refused", rs)
	}
}
