package router

import (
	"slices"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// The dependency rule in the chain (issue 13, DOMAIN.md §7.2): an
// export-controlled analytic in Azure Government calls a model endpoint.
// The in-boundary deployment is a legal call by the rule; the commercial
// endpoint is a write down without an edge, and refused for its staff
// through the connected-service edge; an unknown service or placement
// refuses every region; a placement dependency reads up.
func TestDependencyChecker(t *testing.T) {
	gov := baseRegion()
	gov.Provider, gov.ID, gov.Country, gov.OperatorJurisdiction = "azure", "usgovvirginia", "USA", "USA"
	gov.OperatorNationalities, gov.Personnel, gov.NetworkDomain = []string{"USA"}, PersonnelScreenedUSPersons, DomainInternet
	gov.Accreditation = Accreditation{MaxLevel: label.CUI, Controls: []string{"SP-EXPT"}, ImpactLevel: 5, FedRAMP: FedRAMPHigh, Expires: testNow.AddDate(1, 0, 0)}
	gov.Customers, gov.Capabilities, gov.StorageTiers = []string{"*"}, nil, nil
	secret := baseRegion() // a US SECRET region on SIPRNet

	expt := label.MustParse("CUI//SP-EXPT")
	service := func(name, region string, l label.Label, personnel flow.Personnel) *flow.Service {
		return &flow.Service{Name: name, Label: marking.FromUS(l), Region: region, NetworkDomain: "internet",
			OperatorNationalities: []string{"USA"}, Personnel: personnel}
	}
	services := map[string]*flow.Service{
		"aoai-gov":        service("aoai-gov", "azure/usgovvirginia", expt, flow.Personnel(PersonnelScreenedUSPersons)),
		"aoai-commercial": service("aoai-commercial", "azure/eastus", label.MustParse("UNCLASSIFIED"), flow.Personnel(PersonnelNone)),
	}
	connected := flow.Edge{ID: "aoai-gov-to-commercial", Kind: flow.ConnectedService, From: "azure/usgovvirginia", To: "azure/eastus",
		Direction: flow.Call, Range: flow.NewRange(marking.FromUS(label.MustParse("UNCLASSIFIED")), marking.FromUS(expt)),
		Authority: "Microsoft", Expires: testNow.AddDate(1, 0, 0)}
	analytic := func(l label.Label, deps ...string) *Workload {
		w := baseWorkload()
		w.Label, w.Banner = l, l.String()
		w.Replicas, w.Capabilities, w.StorageTier, w.Spread = 1, nil, "", Spread{}
		for _, d := range deps {
			dep, err := flow.ParseDependency(d)
			if err != nil {
				t.Fatal(err)
			}
			w.Dependencies = append(w.Dependencies, dep)
		}
		return w
	}
	for _, tc := range []struct {
		name    string
		w       *Workload
		region  *Region
		edges   []flow.Edge
		targets map[flow.Target]DependencyTarget
		code    ReasonCode // "" eligible
		want    string     // in the reason, or in the eligible region's flows
	}{
		{"in-boundary endpoint: a call by the rule", analytic(expt, "call service:aoai-gov"), gov, nil, nil, "", "call service:aoai-gov by the rule"},
		{"commercial endpoint, no edge", analytic(expt, "call service:aoai-commercial"), gov, nil, nil, "write_down", "call service:aoai-commercial"},
		{"commercial endpoint through the connected service: its staff", analytic(expt, "call service:aoai-commercial"), gov,
			[]flow.Edge{connected}, nil, "personnel", "aoai-gov-to-commercial"},
		// Unclassified data to an unclassified service on the same
		// network is a call by the rule: no edge is needed.
		{"unclassified to the commercial endpoint", analytic(label.MustParse("UNCLASSIFIED"), "call service:aoai-commercial"), gov,
			[]flow.Edge{connected}, nil, "", "call service:aoai-commercial by the rule"},
		{"no such service", analytic(expt, "read service:nowhere"), gov, nil, nil, ReasonNoTarget, "no such service"},
		{"no such placement", analytic(expt, "read placement:us-army/gone"), gov, nil, nil, ReasonNoTarget, "no live placement"},
		{"reading a SECRET placement from CUI", analytic(expt, "read placement:us-army/p1"), gov, nil,
			map[flow.Target]DependencyTarget{flow.Placement("us-army", "p1"): {Label: marking.FromUS(label.MustParse("SECRET//NOFORN")), Regions: []*Region{secret}}},
			"read_up", "placement:us-army/p1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.w.Tenant = "us-army"
			in := Input{Workload: tc.w, Tenant: baseTenant(), Regions: []RegionState{{Region: tc.region}}, Now: testNow,
				Edges: tc.edges, Services: services, Targets: tc.targets}
			in.Tenant.ID = "us-army"
			d := NewEngine().Plan(in)
			ex := d.Explain(&in)
			if len(ex) != 1 {
				t.Fatalf("explained %d regions", len(ex))
			}
			v := ex[0]
			if tc.code == "" {
				if !v.Eligible || !slices.ContainsFunc(v.Flows, func(s string) bool { return strings.Contains(s, tc.want) }) {
					t.Fatalf("verdict %+v; want eligible with flows saying %q", v, tc.want)
				}
				return
			}
			if v.Eligible || !slices.ContainsFunc(v.Reasons, func(r Reason) bool { return r.Code == tc.code && strings.Contains(r.Message, tc.want) }) {
				t.Fatalf("verdict %+v; want refused %s saying %q", v, tc.code, tc.want)
			}
		})
	}
}
