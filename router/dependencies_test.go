package router

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/classroute/classroute/router/equiv"
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
	// Where the commercial endpoint runs: in the catalogue, or the data
	// sent there would rest nowhere known (residency).
	eastus := baseRegion()
	eastus.Provider, eastus.ID, eastus.Country, eastus.NetworkDomain = "azure", "eastus", "USA", DomainInternet
	eastus.Accreditation = Accreditation{MaxLevel: label.Unclassified, Expires: testNow.AddDate(1, 0, 0)}

	expt := label.MustParse("CUI//SP-EXPT")
	service := func(name, region string, l label.Label, personnel flow.Personnel) *flow.Service {
		return &flow.Service{Name: name, Label: marking.FromUS(l), Region: region, NetworkDomain: "internet",
			OperatorNationalities: []string{"USA"}, Personnel: personnel}
	}
	uksouth := baseRegion()
	uksouth.Provider, uksouth.ID, uksouth.Country, uksouth.NetworkDomain = "azure", "uksouth", "GBR", DomainInternet
	uksouth.Accreditation = Accreditation{MaxLevel: label.Unclassified, Expires: testNow.AddDate(1, 0, 0)}
	services := map[string]*flow.Service{
		"uk-api":          service("uk-api", "azure/uksouth", expt, flow.Personnel(PersonnelScreenedUSPersons)),
		"uk-open":         service("uk-open", "azure/uksouth", label.MustParse("UNCLASSIFIED"), flow.Personnel(PersonnelNone)),
		"lost":            service("lost", "azure/atlantis", expt, flow.Personnel(PersonnelScreenedUSPersons)),
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
		// The workload's data goes where the service runs: its own
		// residency rules hold there (DOMAIN.md §7.5 scenario 5).
		{"export-controlled prompts to a service in GBR", analytic(expt, "call service:uk-api"), gov, nil, nil, ReasonResidency,
			"azure/uksouth in GBR; allowed: USA; CUI//SP-EXPT data must rest in USA"},
		// A service in a region the caller may not know of is no
		// service to it: the same words as for none.
		{"a service in no catalogued region", analytic(expt, "write service:lost"), gov, nil, nil, ReasonNoTarget, "service:lost: no such service in the catalogue"},
		// Reading brings nothing of the workload's there.
		{"reading a service in GBR is no residency matter", analytic(label.MustParse("UNCLASSIFIED"), "read service:uk-open"), gov, nil, nil, "",
			"read service:uk-open by the rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.w.Tenant = "us-army"
			in := Input{Workload: tc.w, Tenant: baseTenant(), Regions: []RegionState{{Region: tc.region}, {Region: eastus}, {Region: uksouth}}, Now: testNow,
				Edges: tc.edges, Services: services, Targets: tc.targets}
			in.Tenant.ID = "us-army"
			ceiling := label.MustParse("SECRET//SP-EXPT//NOFORN") // it may know of these services and regions
			in.Tenant.Ceiling, in.Tenant.CeilingLabel = ceiling.String(), ceiling
			d := NewEngine().Plan(in)
			ex := d.Explain(&in)
			i := slices.IndexFunc(ex, func(v Explained) bool { return v.Key == tc.region.Key() })
			if i < 0 {
				t.Fatalf("no verdict for %s in %+v", tc.region.Key(), ex)
			}
			v := ex[i]
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

// DOMAIN.md §7.5 scenario 5: an AUS PROTECTED workload calling a service
// in uksouth is refused no_equivalence (no AUS→GBR entry: its requests
// have no level in the service's scheme) and residency (they would leave
// Australia), not incomparable; wherever it runs. Recheck calls both a
// violation: a placement whose dependency is no legal flow any more is
// flagged, not only moved.
func TestDependencyAcrossSchemes(t *testing.T) {
	tab, err := equiv.NewTable(equiv.Default())
	if err != nil {
		t.Fatal(err)
	}
	au := baseRegion()
	au.Provider, au.ID, au.Country, au.OperatorJurisdiction, au.NetworkDomain = "azure", "australiacentral", "AUS", "AUS", DomainInternet
	au.OperatorNationalities, au.Personnel = []string{"AUS"}, PersonnelClearedSecret
	au.Accreditation = Accreditation{MaxLevel: label.Unclassified, Expires: testNow.AddDate(1, 0, 0)}
	au.Accreditations = []SchemeAccreditation{{Scheme: marking.AUS, MaxLevel: "PROTECTED", Authority: "ASD", Expires: testNow.AddDate(1, 0, 0)}}
	au.Customers, au.Capabilities, au.StorageTiers = []string{"*"}, nil, nil
	uk := baseRegion()
	uk.Provider, uk.ID, uk.Country, uk.NetworkDomain = "azure", "uksouth", "GBR", DomainInternet
	uk.Accreditation = Accreditation{MaxLevel: label.Unclassified, Expires: testNow.AddDate(1, 0, 0)}
	uk.Accreditations = []SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "OFFICIAL", Caveats: []string{"SENSITIVE"}, Authority: "UK department",
		Expires: testNow.AddDate(1, 0, 0)}} // it holds the service's label
	uk.Customers = []string{"*"}
	svc := &flow.Service{Name: "uk-records", Label: marking.MustParse(marking.GBR, "OFFICIAL-SENSITIVE"), Region: "azure/uksouth",
		NetworkDomain: "internet", OperatorNationalities: []string{"GBR"}, Personnel: flow.Personnel(PersonnelClearedSecret)}

	w := baseWorkload()
	w.Tenant, w.Marking = "au-dod", marking.MustParse(marking.AUS, "PROTECTED")
	w.Scheme, w.Label, w.Banner = w.Marking.Scheme, label.Label{}, "PROTECTED"
	w.AllowedCountries, w.AllowedJurisdictions, w.Capabilities, w.StorageTier = []string{"AUS"}, nil, nil, ""
	w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed("uk-records"), Direction: flow.Call}}
	top, err := marking.Parser{}.ParseLevel(marking.AUS, "SECRET")
	if err != nil {
		t.Fatal(err)
	}
	ukSecret, err := marking.Parser{}.ParseLevel(marking.GBR, "SECRET")
	if err != nil {
		t.Fatal(err)
	}
	// Cleared for UK SECRET (AUKUS): it may know of the UK service.
	tenant := &Tenant{ID: "au-dod", Nation: "AUS", Sector: "defense",
		Ceilings: []SchemeCeiling{{Scheme: marking.AUS, Level: "SECRET", Parsed: top}, {Scheme: marking.GBR, Level: "SECRET", Parsed: ukSecret}}}
	in := Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: au}, {Region: uk}}, Now: testNow,
		Equivalence: tab, Services: map[string]*flow.Service{"uk-records": svc}}
	d := NewEngine().Plan(in)
	if d.Err == nil {
		t.Fatalf("chosen %v; want refused", d.Chosen)
	}
	for _, v := range d.Explain(&in) {
		if v.Key != "azure/australiacentral" {
			continue
		}
		codes := map[ReasonCode]string{}
		for _, r := range v.Reasons {
			codes[r.Code] += r.Message
		}
		if len(v.Reasons) != 2 || !strings.Contains(codes[ReasonNoEquivalence], "no equivalence entry AUS→GBR") ||
			!strings.Contains(codes[ReasonResidency], "azure/uksouth in GBR; allowed: AUS") {
			t.Errorf("australiacentral refused for %+v; want no_equivalence and residency only", v.Reasons)
		}
	}

	// Placed there yesterday, when the service ran in Australia.
	reasons, violation := NewEngine().Recheck(in, 0)
	if !violation || len(reasons) != 2 {
		t.Errorf("recheck: %+v violation %v; want both reasons, a violation", reasons, violation)
	}
}

// A caller learns nothing, by naming services, of those it may not know
// of: a service above its ceiling, or in a region above its ceiling or
// serving other tenants, is refused in the very words of one that does
// not exist (no_target), and the plan says nothing more of it.
func TestDependencyHiddenServices(t *testing.T) {
	open := baseRegion()
	open.Provider, open.ID, open.NetworkDomain = "aws", "us-gov-west-1", DomainInternet
	open.Accreditation = Accreditation{MaxLevel: label.CUI, ImpactLevel: 5, FedRAMP: FedRAMPHigh, Expires: testNow.AddDate(1, 0, 0)}
	open.OperatorNationalities, open.Personnel, open.Customers = []string{"USA"}, PersonnelScreenedUSPersons, []string{"*"}
	open.Capabilities, open.StorageTiers = nil, nil
	secret := baseRegion() // SIPRNet, SECRET
	secret.Customers = []string{"*"}
	ukOnly := baseRegion()
	ukOnly.Provider, ukOnly.ID, ukOnly.Customers = "aws", "uk-only", []string{"GBR/*"}
	ukOnly.Accreditation.MaxLevel = label.CUI
	svc := func(name string, r *Region, l string) *flow.Service {
		return &flow.Service{Name: name, Label: marking.FromUS(label.MustParse(l)), Region: r.Key(), NetworkDomain: r.NetworkDomain.String(),
			OperatorNationalities: []string{"USA"}, Personnel: flow.Personnel(PersonnelClearedSecret)}
	}
	services := map[string]*flow.Service{
		"cui-store":    svc("cui-store", open, "CUI"),
		"secret-store": svc("secret-store", secret, "SECRET"), // in a region above the ceiling
		"ts-on-open":   svc("ts-on-open", open, "TOP SECRET"), // a label above the ceiling
		"uk-store":     svc("uk-store", ukOnly, "CUI"),        // in a region serving others
	}
	tenant := baseTenant()
	tenant.Ceiling, tenant.CeilingLabel = "CUI", label.MustParse("CUI")
	for _, name := range []string{"secret-store", "ts-on-open", "uk-store", "nowhere"} {
		w := baseWorkload()
		w.Label, w.Banner, w.Capabilities, w.StorageTier, w.AllowedJurisdictions = label.MustParse("CUI"), "CUI", nil, "", nil
		w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed(name), Direction: flow.Read}}
		in := Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: open}, {Region: secret}, {Region: ukOnly}}, Now: testNow,
			Services: services}
		d := NewEngine().Plan(in)
		var v *Explained
		for _, x := range d.Explain(&in) {
			if x.Key == open.Key() {
				v = &x
			}
		}
		want := []Reason{{Code: ReasonNoTarget, Message: "service:" + name + ": no such service in the catalogue"}}
		if v == nil || v.Eligible || !reflect.DeepEqual(v.Reasons, want) {
			t.Errorf("%s: %+v; want only %v", name, v, want)
		}
	}
	// The one it may know of is read.
	w := baseWorkload()
	w.Label, w.Banner, w.Capabilities, w.StorageTier, w.AllowedJurisdictions = label.MustParse("CUI"), "CUI", nil, "", nil
	w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed("cui-store"), Direction: flow.Read}}
	in := Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: open}}, Now: testNow, Services: services}
	if d := NewEngine().Plan(in); d.Err != nil {
		t.Errorf("reading the CUI store: %v", d.Err)
	}
}

// Each side's own rules go with its data (review of issue 13): a reader
// of an ITAR placement brings ITAR data to its region, so that region
// must be in the USA, run by screened US persons only, within the
// target's countries and jurisdictions; a writer's data reaches the
// target's operators, so their jurisdiction must be one the writer
// allows; and a service's network is its region's, whatever its record
// says. Each case is one region and one dependency.
func TestDependencyRulesGoWithTheData(t *testing.T) {
	unclass := label.MustParse("UNCLASSIFIED")
	region := func(key, country, jur string, ops []string, p Personnel, dom NetworkDomain, lvl label.Level) *Region {
		r := baseRegion()
		prov, id, _ := strings.Cut(key, "/")
		r.Provider, r.ID, r.Country, r.OperatorJurisdiction, r.OperatorNationalities, r.Personnel, r.NetworkDomain = prov, id, country, jur, ops, p, dom
		r.Accreditation = Accreditation{MaxLevel: lvl, ImpactLevel: 5, Expires: testNow.AddDate(1, 0, 0)}
		r.Customers, r.Capabilities, r.StorageTiers = []string{"*"}, nil, nil
		return r
	}
	usGov := region("aws/us-gov", "USA", "USA", []string{"USA"}, PersonnelScreenedUSPersons, DomainInternet, label.CUI)
	ukCloud := region("aws/uk-cloud", "GBR", "GBR", []string{"GBR"}, PersonnelNone, DomainInternet, label.Unclassified)
	usOpen := region("aws/us-open", "USA", "USA", []string{"USA", "IND"}, PersonnelNone, DomainInternet, label.Unclassified)
	chnRun := region("aws/us-chn", "USA", "CHN", []string{"USA"}, PersonnelNone, DomainInternet, label.Unclassified)
	sipr := region("aws/sipr", "USA", "USA", []string{"USA"}, PersonnelClearedSecret, DomainSIPRNet, label.Secret)
	inet := region("azure/eastus", "USA", "USA", []string{"USA"}, PersonnelNone, DomainInternet, label.Unclassified)

	itar := &Workload{Name: "itar-store", Tenant: "us-army", Label: unclass, Banner: "UNCLASSIFIED", AllowedCountries: []string{"USA"}, ExportControl: ExportITAR}
	usOnlyStore := &Workload{Name: "us-store", Tenant: "us-army", Label: unclass, Banner: "UNCLASSIFIED", AllowedCountries: []string{"USA"}}
	targets := map[flow.Target]DependencyTarget{
		flow.Placement("us-army", "itar-store"): DependencyTargetOf(itar, []*Region{usGov}),
		flow.Placement("us-army", "us-store"):   DependencyTargetOf(usOnlyStore, []*Region{chnRun}),
	}
	lapsed := region("aws/lapsed", "USA", "USA", []string{"USA"}, PersonnelClearedSecret, DomainSIPRNet, label.Secret)
	lapsed.Accreditation.Expires = testNow.AddDate(0, 0, -1)
	mixed := region("aws/mixed", "USA", "USA", []string{"USA", "IND"}, PersonnelNone, DomainInternet, label.CUI)
	mixed.Accreditation.Controls = []string{"SP-EXPT"}
	expt := marking.FromUS(label.MustParse("CUI//SP-EXPT"))
	services := map[string]*flow.Service{
		// Its record says SIPRNet; its region is on the internet.
		"mislabelled": {Name: "mislabelled", Label: marking.FromUS(label.MustParse("SECRET//NOFORN")), Region: "azure/eastus", NetworkDomain: "siprnet",
			OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelClearedSecret},
		// Its record says screened US staff; its region is run by others too.
		"staffed": {Name: "staffed", Label: marking.FromUS(unclass), Region: "aws/us-open", NetworkDomain: "internet",
			OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelScreenedUSPersons},
		// In a region whose accreditation lapsed yesterday.
		"unheld": {Name: "unheld", Label: marking.FromUS(label.MustParse("SECRET//NOFORN")), Region: "aws/lapsed", NetworkDomain: "siprnet",
			OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelClearedSecret},
		// Export-controlled, read through a guard into an open region.
		"expt": {Name: "expt", Label: expt, Region: "aws/us-gov", NetworkDomain: "internet",
			OperatorNationalities: []string{"USA"}, Personnel: flow.PersonnelScreenedUSPersons},
	}
	guard := flow.Edge{ID: "g1", Kind: flow.Guard, From: "aws/us-gov", To: "aws/mixed", Direction: flow.Write,
		Range: flow.NewRange(marking.FromUS(unclass), expt), Authority: "test", Expires: testNow.AddDate(1, 0, 0)}
	for _, tc := range []struct {
		name   string
		label  string
		allow  []string
		jur    []string
		dep    string
		region *Region
		code   ReasonCode // "" eligible
		want   string
		exp    ExportControl
	}{
		{"an ITAR store read from a UK region", "UNCLASSIFIED", []string{"GBR", "USA"}, nil, "read placement:us-army/itar-store", ukCloud,
			ReasonResidency, "the target's ITAR data would come to GBR; it must rest in USA", 0},
		{"an ITAR store read from a US region with foreign staff", "UNCLASSIFIED", []string{"USA"}, nil, "read placement:us-army/itar-store", usOpen,
			ReasonPersonnel, "requires screened US persons only", 0},
		{"an ITAR store read from Azure Government", "UNCLASSIFIED", []string{"USA"}, nil, "read placement:us-army/itar-store", usGov, "", "", 0},
		{"a USA-only store read from GBR", "UNCLASSIFIED", []string{"GBR"}, nil, "read placement:us-army/us-store", ukCloud,
			ReasonResidency, "it may rest in USA only", 0},
		{"writing to a store run under CHN jurisdiction", "UNCLASSIFIED", []string{"USA"}, []string{"USA"}, "write placement:us-army/us-store", usOpen,
			ReasonJurisdiction, "operated under CHN jurisdiction; allowed: USA", 0},
		{"a service on the internet, whatever its record says", "SECRET//NOFORN", []string{"USA"}, nil, "write service:mislabelled", sipr,
			"no_edge", "on azure/eastus (internet)", 0},
		{"ITAR prompts to a service whose region's staff are not all US", "UNCLASSIFIED", []string{"USA"}, nil, "call service:staffed", usGov,
			"personnel", "operated by USA, IND nationals", ExportITAR},
		{"a SECRET service in a region whose accreditation lapsed", "SECRET//NOFORN", []string{"USA"}, nil, "write service:unheld", sipr,
			ReasonAccreditation, "its region aws/lapsed does not hold its label", 0},
		{"an export-controlled service read through a guard into an open region", "UNCLASSIFIED", []string{"USA"}, nil, "read service:expt", mixed,
			ReasonPersonnel, "the target's CUI//SP-EXPT data would come to operators USA, IND", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &Workload{Name: "dependant", Tenant: "us-army", Label: label.MustParse(tc.label), Banner: tc.label, AllowedCountries: tc.allow,
				AllowedJurisdictions: tc.jur, ExportControl: tc.exp, Resources: Resources{MilliCPU: 1}, Replicas: 1}
			dep, err := flow.ParseDependency(tc.dep)
			if err != nil {
				t.Fatal(err)
			}
			w.Dependencies = []flow.Dependency{dep}
			tenant := baseTenant()
			tenant.Ceiling, tenant.CeilingLabel = "SECRET//SP-EXPT//NOFORN", label.MustParse("SECRET//SP-EXPT//NOFORN")
			in := Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: tc.region}, {Region: inet}, {Region: usOpen}, {Region: lapsed}, {Region: usGov}}, Now: testNow,
				Services: services, Targets: targets, Edges: []flow.Edge{guard}}
			var v *Explained
			d := NewEngine().Plan(in)
			for _, x := range d.Explain(&in) {
				if x.Key == tc.region.Key() {
					v = &x
				}
			}
			if v == nil {
				t.Fatal("no verdict")
			}
			if tc.code == "" {
				if !v.Eligible {
					t.Fatalf("refused %+v; want eligible", v.Reasons)
				}
				return
			}
			if v.Eligible || !slices.ContainsFunc(v.Reasons, func(r Reason) bool { return r.Code == tc.code && strings.Contains(r.Message, tc.want) }) {
				t.Fatalf("%+v; want refused %s saying %q", v, tc.code, tc.want)
			}
			// The same on Place's path, which says nothing.
			if d := NewEngine().Place(Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: tc.region}}, Now: testNow,
				Services: services, Targets: targets, Edges: []flow.Edge{guard}}); d.Err == nil {
				t.Errorf("Place chose %v", d.Chosen)
			}
		})
	}
}

// A tenant knows of no service in a scheme, or on an axis, where it has
// no ceiling (review of issue 13): naming one is naming nothing.
func TestDependencyNoCeilingNoService(t *testing.T) {
	open := baseRegion()
	open.Provider, open.ID, open.NetworkDomain, open.Customers = "aws", "open", DomainInternet, []string{"*"}
	open.Accreditation = Accreditation{MaxLevel: label.Unclassified, ImpactLevel: 2, Expires: testNow.AddDate(1, 0, 0)}
	open.Capabilities, open.StorageTiers = nil, nil
	svc := func(name string, l marking.Label) *flow.Service {
		return &flow.Service{Name: name, Label: l, Region: open.Key(), NetworkDomain: "internet", OperatorNationalities: []string{"USA"}}
	}
	services := map[string]*flow.Service{
		"au-ts":    svc("au-ts", marking.MustParse(marking.AUS, "[SEC=TOP-SECRET]")),
		"us-ts":    svc("us-ts", marking.FromUS(label.MustParse("TOP SECRET//SI//NOFORN"))),
		"can-prot": svc("can-prot", marking.MustParse(marking.CAN, "PROTECTED B")),
	}
	canSecret, err := marking.Parser{}.ParseLevel(marking.CAN, "SECRET")
	if err != nil {
		t.Fatal(err)
	}
	usCUI := baseTenant()
	usCUI.Ceiling, usCUI.CeilingLabel = "CUI", label.MustParse("CUI")
	noUS := &Tenant{ID: "us-army", Nation: "AUS", Sector: "defense"} // no US ceiling
	canOther := baseTenant()
	canOther.Ceiling, canOther.CeilingLabel = "CUI", label.MustParse("CUI")
	canOther.Ceilings = []SchemeCeiling{{Scheme: marking.CAN, Level: "SECRET", Parsed: canSecret}} // the other axis
	for _, tc := range []struct {
		name   string
		tenant *Tenant
		svc    string
	}{
		{"an AUS service, no AUS ceiling", usCUI, "au-ts"},
		{"a US service, no US ceiling", noUS, "us-ts"},
		{"a CAN PROTECTED service, a ceiling on the other axis", canOther, "can-prot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := baseWorkload()
			w.Label, w.Banner, w.Capabilities, w.StorageTier, w.AllowedJurisdictions = label.MustParse("UNCLASSIFIED"), "UNCLASSIFIED", nil, "", nil
			w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed(tc.svc), Direction: flow.Read}}
			in := Input{Workload: w, Tenant: tc.tenant, Regions: []RegionState{{Region: open}}, Now: testNow, Services: services}
			d := NewEngine().Plan(in)
			ex := d.Explain(&in)
			want := []Reason{{Code: ReasonNoTarget, Message: "service:" + tc.svc + ": no such service in the catalogue"}}
			if len(ex) != 1 || !reflect.DeepEqual(ex[0].Reasons, want) {
				t.Errorf("%+v; want only %v", ex, want)
			}
		})
	}
}

// A dependant whose target placement now runs in a region the tenant may
// not know of (raised above its ceiling) is refused, and told nothing of
// that region: not its key, country, operators or network.
func TestDependencyTargetInHiddenRegion(t *testing.T) {
	raised := baseRegion()
	raised.ID, raised.Country, raised.OperatorJurisdiction, raised.NetworkDomain = "raised", "GBR", "GBR", DomainJWICS
	raised.Accreditation.MaxLevel = label.TopSecret
	here := baseRegion()
	here.Capabilities, here.StorageTiers = nil, nil
	w := baseWorkload()
	w.Label, w.Banner, w.Capabilities, w.StorageTier = label.MustParse("SECRET//NOFORN"), "SECRET//NOFORN", nil, ""
	w.Dependencies = []flow.Dependency{{Target: flow.Placement("us-army", "store"), Direction: flow.Write}}
	store := &Workload{Name: "store", Tenant: "us-army", Label: w.Label, Banner: w.Banner, AllowedCountries: []string{"*"}}
	tenant := baseTenant()
	tenant.Ceiling, tenant.CeilingLabel = "SECRET//NOFORN", label.MustParse("SECRET//NOFORN")
	in := Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: here}, {Region: raised}}, Now: testNow,
		Targets: map[flow.Target]DependencyTarget{flow.Placement("us-army", "store"): DependencyTargetOf(store, []*Region{raised})}}
	d := NewEngine().Plan(in)
	for _, v := range d.Explain(&in) {
		if v.Key != here.Key() {
			continue
		}
		want := []Reason{{Code: ReasonNoTarget, Message: "placement:us-army/store: runs in a region no longer available to the tenant"}}
		if !reflect.DeepEqual(v.Reasons, want) {
			t.Errorf("%+v; want only %v", v.Reasons, want)
		}
		return
	}
	t.Fatal("no verdict")
}

// A refusal for a service whose region no longer holds its label names
// only the accreditations the tenant may know of: not a GBR TOP SECRET
// one above a tenant with no GBR ceiling (third review of issue 13).
func TestDependencyServiceRegionReasonRedacted(t *testing.T) {
	lapsed := baseRegion()
	lapsed.ID, lapsed.NetworkDomain, lapsed.Customers = "lapsed", DomainInternet, []string{"*"}
	lapsed.Accreditation = Accreditation{MaxLevel: label.CUI, Expires: testNow.AddDate(0, 0, -1)}
	lapsed.Accreditations = []SchemeAccreditation{{Scheme: marking.GBR, MaxLevel: "TOP SECRET", Authority: "UK MOD", Expires: testNow.AddDate(1, 0, 0)}}
	here := baseRegion()
	here.NetworkDomain, here.Customers, here.Capabilities, here.StorageTiers = DomainInternet, []string{"*"}, nil, nil
	here.Accreditation = Accreditation{MaxLevel: label.CUI, ImpactLevel: 5, Expires: testNow.AddDate(1, 0, 0)}
	w := baseWorkload()
	w.Label, w.Banner, w.Capabilities, w.StorageTier = label.MustParse("CUI"), "CUI", nil, ""
	w.Dependencies = []flow.Dependency{{Target: flow.ServiceNamed("store"), Direction: flow.Read}}
	tenant := baseTenant()
	tenant.Ceiling, tenant.CeilingLabel = "CUI", label.MustParse("CUI")
	in := Input{Workload: w, Tenant: tenant, Regions: []RegionState{{Region: here}, {Region: lapsed}}, Now: testNow,
		Services: map[string]*flow.Service{"store": {Name: "store", Label: marking.FromUS(label.MustParse("CUI")), Region: lapsed.Key(),
			NetworkDomain: "internet", OperatorNationalities: []string{"USA"}}}}
	d := NewEngine().Plan(in)
	for _, v := range d.Explain(&in) {
		if v.Key != here.Key() {
			continue
		}
		i := slices.IndexFunc(v.Reasons, func(r Reason) bool { return r.Code == ReasonAccreditation })
		if i < 0 {
			t.Fatalf("%+v; want refused for the service's region's accreditation", v.Reasons)
		}
		if msg := v.Reasons[i].Message; strings.Contains(msg, "GBR") || strings.Contains(msg, "UK MOD") {
			t.Errorf("reason %q names an accreditation the tenant may not know of", msg)
		}
		return
	}
	t.Fatal("no verdict")
}
