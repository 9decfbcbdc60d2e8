package flow

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// Code is why a flow is refused. The set is append-only.
type Code string

// Refusal codes.
const (
	// CodeWriteDown: the workload's data would land on a label that does
	// not dominate it (a write, or a call's requests), and no edge
	// covers it.
	CodeWriteDown Code = "write_down"
	// CodeReadUp: the workload would read data its label does not
	// dominate (a read, or a call's responses), and no edge covers it.
	CodeReadUp Code = "read_up"
	// CodeIncomparable: the labels are of different schemes, which are
	// never compared, and no edge covers the flow.
	CodeIncomparable Code = "incomparable"
	// CodeNoEdge: the labels allow the flow but the sides share no
	// network, and no edge carries it.
	CodeNoEdge Code = "no_edge"
	// CodeCDSExpired: an edge would cover the flow but is expired or
	// revoked.
	CodeCDSExpired Code = "cds_expired"
	// CodeOutOfRange: an edge carries the flow's direction between its
	// sides, but its range does not cover the labels.
	CodeOutOfRange Code = "out_of_range"
	// CodePersonnel: the target's operators do not meet the label's
	// releasability, export or clearance rules.
	CodePersonnel Code = "personnel"
	// CodeInvalid: the flow itself is malformed (a bug in the caller):
	// refused, never guessed.
	CodeInvalid Code = "invalid_flow"
)

// Flow is one dependency between one side of a workload and one side of
// its target.
type Flow struct {
	// Direction is the dependency's direction, seen from the workload.
	Direction Direction
	// Label is the workload's label.
	Label marking.Label
	// ExportControl is "ITAR" or "EAR" when the workload declares export
	// control beyond its label (router's ExportControl, "" for none); a
	// CUI//SP-EXPT label is export-controlled by itself.
	ExportControl string
	// From is where the workload (one replica) runs.
	From Side
	// Target names the target, for messages.
	Target Target
	// TargetLabel is the target's label: the placement's, or the
	// service's.
	TargetLabel marking.Label
	// To is where the target (one replica, or the service) runs, with
	// its operators.
	To Side
}

// Result is the decision on one flow.
type Result struct {
	OK bool
	// Code says why it was refused; empty when OK.
	Code Code
	// Edge is the ID of the edge the flow goes through when OK (empty:
	// the rule allows it without one), or of the edge that came closest
	// when refused (empty: none was a candidate).
	Edge string
	// From and To are the region keys of the workload's and the
	// target's sides.
	From, To string
	// Message says why, naming the labels, the direction, the sides and
	// the edge or its absence.
	Message string
}

// Results are the decisions on one dependency from every side of the
// workload to every side of the target.
type Results []Result

// OK reports whether there is at least one result and every one is OK.
func (rs Results) OK() bool {
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return true
}

// Refused returns the results that are not OK.
func (rs Results) Refused() []Result {
	var out []Result
	for _, r := range rs {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

// Check decides whether f is legal at now given edges (in any order;
// edges of any state: Check reads their Revoked and Expires). When
// several edges cover f, the one with the least ID is used, so a
// decision does not depend on the order the store lists them in. See
// the package documentation for the rule.
func Check(f Flow, edges []Edge, now time.Time) Result {
	return NewChecker(edges, now).check(f, true)
}

// CheckAll checks f from every workload side to every target side (the
// replicas of each); f's From and To are replaced by each pair. All must
// be OK: Results.OK. No sides on either part gives no results, which is
// not OK.
func CheckAll(f Flow, workload, target []Side, edges []Edge, now time.Time) Results {
	return NewChecker(edges, now).CheckAll(f, workload, target)
}

// Checker decides many flows against one set of edges at one time: what
// a decision does for every region and dependency. It orders the edges
// once. It does not modify them; they must not change while it is used.
type Checker struct {
	edges []Edge
	order []int // indexes of edges by ID
	// byEnd lists, for each endpoint (a domain name or a region key), the
	// positions in order of the edges that name it as From or To,
	// ascending. An edge carries a flow only if it names the workload's
	// side, by region or by domain (matches), so only those are tried.
	byEnd map[string][]int
	now   time.Time
}

// NewChecker returns a Checker of edges at now.
func NewChecker(edges []Edge, now time.Time) *Checker {
	c := &Checker{edges: edges, order: byID(edges), now: now}
	if len(edges) > 0 {
		c.byEnd = make(map[string][]int)
		for pos, i := range c.order {
			e := &edges[i]
			c.byEnd[e.From] = append(c.byEnd[e.From], pos)
			if e.To != e.From {
				c.byEnd[e.To] = append(c.byEnd[e.To], pos)
			}
		}
	}
	return c
}

// candidates calls try with the index of each edge that names side s as
// an endpoint, in ID order, until try returns true.
func (c *Checker) candidates(s Side, try func(i int) bool) {
	a := c.byEnd[s.Region]
	var b []int
	if s.Domain != DomainAirGapped && s.Domain != s.Region {
		b = c.byEnd[s.Domain]
	}
	for len(a) > 0 || len(b) > 0 {
		var pos int
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] < b[0]:
			pos, a = a[0], a[1:]
		case len(a) == 0 || b[0] < a[0]:
			pos, b = b[0], b[1:]
		default: // the same edge under both
			pos, a, b = a[0], a[1:], b[1:]
		}
		if try(c.order[pos]) {
			return
		}
	}
}

// CheckAll is the package's CheckAll with c's edges and time.
func (c *Checker) CheckAll(f Flow, workload, target []Side) Results {
	rs := make(Results, 0, len(workload)*len(target))
	for _, w := range workload {
		for _, t := range target {
			g := f
			g.From, g.To = w, t
			rs = append(rs, c.check(g, true))
		}
	}
	return rs
}

// Legal reports whether CheckAll would be OK, without its words: it
// formats nothing and allocates nothing, for the many regions of a
// Place. The decision is CheckAll's (the tests compare them).
func (c *Checker) Legal(f Flow, workload, target []Side) bool {
	if len(workload) == 0 || len(target) == 0 {
		return false
	}
	for _, w := range workload {
		for _, t := range target {
			g := f
			g.From, g.To = w, t
			if !c.check(g, false).OK {
				return false
			}
		}
	}
	return true
}

// byID returns the indexes of edges ordered by ID.
func byID(edges []Edge) []int {
	order := make([]int, len(edges))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(edges[a].ID, edges[b].ID) })
	return order
}

// stage is how far an attempt to allow a flow got before it failed; the
// attempt that got farthest explains a refusal.
type stage int

const (
	failedRule      stage = iota // the rule without an edge: labels or networks
	failedKind                   // an edge's kind cannot carry the flow's labels
	failedRange                  // an edge's range does not cover them
	failedPersonnel              // the target's operators do not meet the label
	failedInForce                // an edge would cover it, but is not in force
	passed
)

// attempt is one way of allowing a flow: the rule, or one edge.
type attempt struct {
	stage  stage
	code   Code
	edge   *Edge
	detail string
}

// transfer is data moving from one side to the other.
type transfer struct {
	src, dst           Side
	srcLabel, dstLabel marking.Label
	toTarget           bool // the workload's data going to the target
	call               bool // part of a call, for messages
}

// transfers are the data movements of f: a write's, then a read's, in
// buf (no allocation).
func (f *Flow) transfers(buf *[2]transfer) []transfer {
	w := transfer{src: f.From, dst: f.To, srcLabel: f.Label, dstLabel: f.TargetLabel, toTarget: true, call: f.Direction == Call}
	r := transfer{src: f.To, dst: f.From, srcLabel: f.TargetLabel, dstLabel: f.Label, call: f.Direction == Call}
	switch f.Direction {
	case Read:
		buf[0] = r
		return buf[:1]
	case Write:
		buf[0] = w
		return buf[:1]
	case Call:
		buf[0], buf[1] = w, r
		return buf[:2]
	}
	return nil
}

// check decides f. With explain false it decides the same, but says
// nothing: no message, no code, no edge (Legal).
func (c *Checker) check(f Flow, explain bool) Result {
	res := Result{From: f.From.Region, To: f.To.Region}
	if err := f.validate(); err != nil {
		res.Code = CodeInvalid
		if explain {
			res.Message = "invalid flow: " + err.Error()
		}
		return res
	}
	var buf [2]transfer
	ts := f.transfers(&buf)
	best := f.byRule(ts, explain)
	if best.stage == passed {
		res.OK = true
		return res
	}
	c.candidates(f.From, func(i int) bool {
		e := &c.edges[i]
		a, candidate := f.through(e, ts, c.now, explain)
		switch {
		case !candidate:
		case a.stage == passed:
			res.OK, res.Edge = true, e.ID
			return true
		case a.stage > best.stage:
			best = a
		}
		return false
	})
	if res.OK || !explain {
		return res
	}
	res.Code = best.code
	if best.edge != nil {
		res.Edge = best.edge.ID
	}
	res.Message = f.head() + ": " + best.detail
	return res
}

// validate checks what Check relies on; a malformed flow is refused.
func (f *Flow) validate() error {
	if !f.Direction.Valid() {
		return fmt.Errorf("direction: %s", f.Direction)
	}
	if err := f.Target.Validate(); err != nil {
		return err
	}
	if !f.Label.Scheme.Valid() || f.Label.Level.Name == "" {
		return fmt.Errorf("label: not a parsed label (scheme %q)", clip(string(f.Label.Scheme)))
	}
	if !f.TargetLabel.Scheme.Valid() || f.TargetLabel.Level.Name == "" {
		return fmt.Errorf("target label: not a parsed label (scheme %q)", clip(string(f.TargetLabel.Scheme)))
	}
	if err := f.From.Validate(); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := f.To.Validate(); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	switch f.ExportControl {
	case "", "ITAR", "EAR":
	default:
		return fmt.Errorf("export control: %q: want ITAR, EAR or none", clip(f.ExportControl))
	}
	return nil
}

// byRule is the attempt without an edge: one network, every transfer
// landing on a label that dominates its data, and the personnel rule.
func (f *Flow) byRule(ts []transfer, explain bool) attempt {
	for _, t := range ts {
		if code, why := dominance(t, explain); code != "" {
			return attempt{stage: failedRule, code: code, detail: why + "; no edge covers it"}
		}
	}
	if !sameNetwork(f.From, f.To) {
		return attempt{stage: failedRule, code: CodeNoEdge,
			detail: "no edge: the sides share no network, and no edge carries the flow between them"}
	}
	if f.sends() && !f.staffOK() {
		a := attempt{stage: failedPersonnel, code: CodePersonnel}
		if explain {
			a.detail = f.staff()
		}
		return a
	}
	return attempt{stage: passed}
}

// through is the attempt through edge e. It is no candidate unless e
// carries every transfer between the sides in its direction.
func (f *Flow) through(e *Edge, ts []transfer, now time.Time, explain bool) (attempt, bool) {
	switch {
	case !e.Kind.Valid(), e.Kind == Diode && e.Direction == Call:
		return attempt{}, false // malformed: never covers (Validate refuses it)
	case e.Kind == ConnectedService && f.Target.Kind != ServiceTarget:
		return attempt{}, false // it reaches a service, not what else runs in its region
	}
	var into [2]bool // the transfer takes the workload's data From → To, into a connected service
	for i, t := range ts {
		fwd := (e.Direction == Write || e.Direction == Call) && matches(e.From, t.src) && matches(e.To, t.dst)
		back := (e.Direction == Read || e.Direction == Call) && matches(e.To, t.src) && matches(e.From, t.dst)
		if !fwd && !back {
			return attempt{}, false
		}
		into[i] = fwd && t.toTarget
	}
	fail := func(s stage, code Code) attempt { return attempt{stage: s, code: code, edge: e} }
	// The kind's label rule.
	for i, t := range ts {
		if e.Kind == Guard || (e.Kind == ConnectedService && into[i]) {
			continue
		}
		if code, why := dominance(t, explain); code != "" {
			a := fail(failedKind, code)
			if explain {
				a.detail = fmt.Sprintf("%s; %s %s, and no other edge covers it", why, e.Name(), kindLimit(e.Kind))
			}
			return a, true
		}
	}
	// The range: the data of each transfer, and for a guard the label it
	// reaches too.
	for _, t := range ts {
		for j, l := range [2]*marking.Label{&t.srcLabel, &t.dstLabel} {
			if j == 1 && e.Kind != Guard {
				break
			}
			if !e.Range.Covers(*l) {
				a := fail(failedRange, CodeOutOfRange)
				if explain {
					a.detail = fmt.Sprintf("%s is not approved for %s", e.Name(), labelText(*l))
				}
				return a, true
			}
		}
	}
	// The personnel rule, where the workload's data reaches the target
	// undowngraded.
	if e.Kind != Guard && f.sends() && !f.staffOK() {
		a := fail(failedPersonnel, CodePersonnel)
		if explain {
			a.detail = "through " + e.Name() + ": " + f.staff()
		}
		return a, true
	}
	if !e.InForce(now) {
		a := fail(failedInForce, CodeCDSExpired)
		if explain {
			state := "its accreditation has expired"
			if e.Revoked {
				state = "it was revoked"
			}
			a.detail = fmt.Sprintf("%s would carry it but %s, and no other edge covers it", e.Name(), state)
		}
		return a, true
	}
	return attempt{stage: passed, edge: e}, true
}

// kindLimit says what an edge of kind k cannot do, for messages.
func kindLimit(k Kind) string {
	switch k {
	case Diode, Access:
		return "changes no label"
	case ConnectedService:
		return "returns data only to labels that dominate it"
	}
	return "cannot carry it"
}

// dominance is the Bell–LaPadula check of one transfer: the label it
// reaches must dominate the label it leaves. It returns the code and the
// reason when not.
func dominance(t transfer, explain bool) (Code, string) {
	src, dst := t.srcLabel, t.dstLabel
	if !explain {
		switch {
		case src.Scheme != dst.Scheme:
			return CodeIncomparable, ""
		case dst.Dominates(src):
			return "", ""
		case t.toTarget:
			return CodeWriteDown, ""
		}
		return CodeReadUp, ""
	}
	switch {
	case src.Scheme != dst.Scheme:
		return CodeIncomparable, fmt.Sprintf("incomparable: labels of schemes %s and %s are never compared", dst.Scheme, src.Scheme)
	case dst.Dominates(src):
		return "", ""
	case t.toTarget && t.call:
		return CodeWriteDown, fmt.Sprintf("write down: requests carry %s to %s, which does not dominate it", labelText(src), labelText(dst))
	case t.toTarget:
		return CodeWriteDown, fmt.Sprintf("write down: %s goes to %s, which does not dominate it", labelText(src), labelText(dst))
	case t.call:
		return CodeReadUp, fmt.Sprintf("read up: responses carry %s to %s, which does not dominate it", labelText(src), labelText(dst))
	}
	return CodeReadUp, fmt.Sprintf("read up: %s does not dominate %s", labelText(dst), labelText(src))
}

// sends reports whether the workload's data goes to the target.
func (f *Flow) sends() bool { return f.Direction == Write || f.Direction == Call }

// staffOK reports whether staff finds nothing, cheaply: most flows meet
// the personnel rule, and their words are needed only when not.
func (f *Flow) staffOK() bool { return f.staff() == "" }

// staff is the personnel rule for the workload's data reaching the
// target's operators: "" when they meet it, else why not.
func (f *Flow) staff() string {
	l, to := f.Label, f.To
	var parts []string
	anyNation, nations := releasability(l)
	restricted := !anyNation
	if restricted {
		var out []string
		for _, n := range to.Operators {
			if !slices.Contains(nations, n) {
				out = append(out, n)
			}
		}
		if len(out) > 0 {
			parts = append(parts, fmt.Sprintf("operated by %s nationals; %s is releasable to %s only",
				strings.Join(out, ", "), labelText(l), strings.Join(nations, ", ")))
		}
	}
	export := f.ExportControl
	if export == "" && l.US != nil && l.US.ExportControlled() {
		export = "CUI//" + label.ExportCategory
	}
	need := PersonnelNone
	needWhy := ""
	if export != "" {
		restricted = true
		need, needWhy = PersonnelScreenedUSPersons, export+" data"
		if !usOnly(to.Operators) && len(to.Operators) > 0 {
			parts = append(parts, fmt.Sprintf("operated by %s nationals; %s data requires US persons only",
				strings.Join(to.Operators, ", "), export))
		}
	}
	if l.US != nil {
		if l.US.Classified() {
			restricted = true
			need, needWhy = max(need, PersonnelClearedSecret), l.US.Level.String()
		}
		if l.US.Level >= label.TopSecret || l.US.RequiresSCI() {
			need, needWhy = PersonnelClearedTopSecret, l.US.Level.String()
			if l.US.Level < label.TopSecret {
				needWhy = "SCI"
			}
		}
	}
	if to.Personnel < need {
		parts = append(parts, fmt.Sprintf("personnel %s; %s requires %s", to.Personnel, needWhy, need))
	}
	if restricted && len(to.Operators) == 0 {
		parts = append(parts, fmt.Sprintf("operators unknown; %s restricts who may hold it", labelText(l)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "personnel: " + strings.Join(parts, "; ")
}

// releasability is who may see data labelled l: any nation, or nations.
// A classified label of another scheme naming no releasability is its
// originator's nationals' only, as router decides for regions.
func releasability(l marking.Label) (bool, []string) {
	if l.AnyNation && l.Scheme != marking.US && l.NationalSecurity() {
		return false, []string{l.Originator}
	}
	return l.AnyNation, l.Nations
}

// usOnly reports whether nats is exactly US nationals (and not empty).
func usOnly(nats []string) bool {
	if len(nats) == 0 {
		return false
	}
	for _, n := range nats {
		if n != label.USA {
			return false
		}
	}
	return true
}

// head is how a message names the flow: "SECRET on aws/a (siprnet)
// reads service:store (UNCLASSIFIED) on aws/b (internet)".
func (f *Flow) head() string {
	return fmt.Sprintf("%s on %s %s %s (%s) on %s", labelText(f.Label), f.From, f.Direction.verb(),
		f.Target, labelText(f.TargetLabel), f.To)
}

// labelText writes a label for a message: its marking, prefixed with its
// scheme when that is not the US ("(KEN) CONFIDENTIAL").
func labelText(l marking.Label) string {
	if l.Scheme == marking.US {
		return l.String()
	}
	return "(" + string(l.Scheme) + ") " + l.String()
}
