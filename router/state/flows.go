package state

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/marking"
)

// Cross-domain edges and catalogue services (router/flow) are two-person
// data, like equivalence entries. Each edge is the record edges/<id> and
// each service services/<name>, cached; the cache builds the slices
// Edges and Services return whenever one changes (never per decision).
// A change is a proposal under changes/ (changes.go) carrying the whole
// edge or service (or, with Withdraw, the one it removes) and the mod
// revision of the record it replaces; approval by a second
// administrator writes (or deletes) the record in the transaction that
// marks the proposal applied, comparing that the record is still the
// one proposed against, so a proposal never overwrites a change made
// after it. A revocation is an edge proposed with revoked set. Any
// change of an edge or a service, and an edge's expiry, has the leading
// reconciler re-check every live placement (reconcile.go).

const (
	edgesDir        = "edges/"
	servicesDir     = "services/"
	flowsSeededKey  = "seeded-edges"
	tableEdges      = "edges"
	tableServices   = "services"
	maxReasonLength = 1024
)

func (k keys) edge(id string) string      { return k.prefix + edgesDir + id }
func (k keys) service(name string) string { return k.prefix + servicesDir + name }
func (k keys) flowsSeeded() string        { return k.prefix + flowsSeededKey }

// AppliedBy says which change made a stored edge or service: none for
// the seeded defaults. Its json tags are part of the stored format of
// edges/ and services/.
type AppliedBy struct {
	Change     string    `json:"change,omitempty"`
	ProposedBy string    `json:"proposed_by,omitempty"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	AppliedAt  time.Time `json:"applied_at,omitzero"`
}

// EdgeVersion is an edge as stored (edges/<id>) with the change that
// made it.
type EdgeVersion struct {
	flow.Edge
	AppliedBy
	// Revision is the record's mod revision (not stored).
	Revision int64 `json:"-"`
}

// ServiceVersion is a catalogue service as stored (services/<name>)
// with the change that made it.
type ServiceVersion struct {
	flow.Service
	AppliedBy
	// Revision is the record's mod revision (not stored).
	Revision int64 `json:"-"`
}

type edgeRecord struct {
	ID string
	V  *EdgeVersion
}

type serviceRecord struct {
	Name string
	V    *ServiceVersion
}

func edgesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableEdges,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: oneIndex[*edgeRecord](func(r *edgeRecord) string { return r.ID })},
		},
	}
}

func servicesTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableServices,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: oneIndex[*serviceRecord](func(r *serviceRecord) string { return r.Name })},
		},
	}
}

func edgeTxn(tx *memdb.Txn, id string) *edgeRecord {
	raw, err := tx.First(tableEdges, indexID, id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*edgeRecord)
}

func serviceTxn(tx *memdb.Txn, name string) *serviceRecord {
	raw, err := tx.First(tableServices, indexID, name)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*serviceRecord)
}

// flowData is what Edges and Services return, built from one cache
// transaction.
type flowData struct {
	edges    []flow.Edge
	services []flow.Service
	byName   map[string]*flow.Service // into services
}

// buildFlowsTxn builds the edges and services of the cache, by id and
// name.
func buildFlowsTxn(tx *memdb.Txn) *flowData {
	d := &flowData{}
	if it, err := tx.Get(tableEdges, indexID); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			d.edges = append(d.edges, raw.(*edgeRecord).V.Edge)
		}
	}
	if it, err := tx.Get(tableServices, indexID); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			d.services = append(d.services, raw.(*serviceRecord).V.Service)
		}
	}
	d.byName = make(map[string]*flow.Service, len(d.services))
	for i := range d.services {
		d.byName[d.services[i].Name] = &d.services[i]
	}
	return d
}

// decodeEdge reads an edges/ record; id is its key's.
func decodeEdge(id string, val []byte, rev int64) (*edgeRecord, error) {
	var v EdgeVersion
	if err := json.Unmarshal(val, &v); err != nil {
		return nil, err
	}
	if v.ID != id {
		return nil, fmt.Errorf("record names edge %q", v.ID)
	}
	// A record the API would refuse is never decided on; Validate also
	// sets the range's parsed bounds.
	if err := v.Edge.Validate(marking.Parser{}); err != nil {
		return nil, err
	}
	v.Revision = rev
	return &edgeRecord{ID: id, V: &v}, nil
}

// decodeService reads a services/ record; name is its key's.
func decodeService(name string, val []byte, rev int64) (*serviceRecord, error) {
	var v ServiceVersion
	if err := json.Unmarshal(val, &v); err != nil {
		return nil, err
	}
	if v.Name != name {
		return nil, fmt.Errorf("record names service %q", v.Name)
	}
	if err := v.Service.Validate(marking.Parser{}); err != nil {
		return nil, err
	}
	v.Revision = rev
	return &serviceRecord{Name: name, V: &v}, nil
}

// Edges returns the cross-domain and connected-service edges stored,
// revoked and expired ones too (flow.Check tells them apart), ordered by
// id. It is built when the cached edges change, not per call: callers
// must not modify it.
func (s *Store) Edges() []flow.Edge {
	if d := s.flows.Load(); d != nil {
		return d.edges
	}
	return nil
}

// Services returns the catalogue services stored, ordered by name. It
// is built when the cached services change, not per call: callers must
// not modify it.
func (s *Store) Services() []flow.Service {
	if d := s.flows.Load(); d != nil {
		return d.services
	}
	return nil
}

// ServicesByName returns the services Services returns, by name (as
// router.Input takes them). It is built with them: callers must not
// modify it.
func (s *Store) ServicesByName() map[string]*flow.Service {
	if d := s.flows.Load(); d != nil {
		return d.byName
	}
	return nil
}

// ListEdges returns every stored edge with the change that made it,
// from the cache, ordered by id.
func (s *Store) ListEdges() []*EdgeVersion {
	tx := s.db.Txn(false)
	defer tx.Abort()
	var out []*EdgeVersion
	if it, err := tx.Get(tableEdges, indexID); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, raw.(*edgeRecord).V)
		}
	}
	return out
}

// GetEdge returns the stored edge id, from the cache.
func (s *Store) GetEdge(id string) (*EdgeVersion, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	if rec := edgeTxn(tx, id); rec != nil {
		return rec.V, nil
	}
	return nil, fmt.Errorf("edge %q: %w", id, router.ErrNotFound)
}

// ListServices returns every stored service with the change that made
// it, from the cache, ordered by name.
func (s *Store) ListServices() []*ServiceVersion {
	tx := s.db.Txn(false)
	defer tx.Abort()
	var out []*ServiceVersion
	if it, err := tx.Get(tableServices, indexID); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, raw.(*serviceRecord).V)
		}
	}
	return out
}

// GetService returns the stored service name, from the cache.
func (s *Store) GetService(name string) (*ServiceVersion, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	if rec := serviceTxn(tx, name); rec != nil {
		return rec.V, nil
	}
	return nil, fmt.Errorf("service %q: %w", name, router.ErrNotFound)
}

// ProposeEdgeChange records a proposal to add e, to replace the stored
// edge of e's id with it (a revocation: e.Revoked set), or, with
// withdraw, to remove the stored edge of e's id (only the id is read).
// e is validated (flow.Edge.Validate) and must change something.
func (s *Store) ProposeEdgeChange(ctx context.Context, e *flow.Edge, withdraw bool, reason string) (*router.Change, error) {
	if e == nil {
		return nil, router.Violations{{Field: "edge", Description: "required"}}.Err()
	}
	if len(reason) > maxReasonLength {
		return nil, router.Violations{{Field: "reason", Description: "at most 1024 bytes"}}.Err()
	}
	ne := *e
	if !withdraw {
		if err := ne.Validate(marking.Parser{}); err != nil {
			return nil, router.Violations{{Field: "edge", Description: err.Error()}}.Err()
		}
	} else if !validKeyPart(ne.ID) {
		return nil, router.Violations{{Field: "edge.id", Description: fmt.Sprintf("%q is not an edge id", ne.ID)}}.Err()
	}
	if err := s.Ready(); err != nil {
		return nil, err
	}
	var old *flow.Edge
	var base int64
	tx := s.db.Txn(false)
	if rec := edgeTxn(tx, ne.ID); rec != nil {
		old, base = &rec.V.Edge, rec.V.Revision
	}
	tx.Abort()
	var proposed *flow.Edge
	if withdraw {
		if old == nil {
			return nil, router.Violations{{Field: "edge.id", Description: fmt.Sprintf("there is no edge %s to withdraw", ne.ID)}}.Err()
		}
		ne = *old
	} else {
		proposed = &ne
	}
	fields := router.EdgeChanges(old, proposed)
	if len(fields) == 0 {
		return nil, router.Violations{{Field: "edge", Description: fmt.Sprintf("changes nothing of edge %s", ne.ID)}}.Err()
	}
	c := s.newChange(ctx, router.ClassifyEdgeChange(old, proposed), fields, reason, base)
	c.Edge, c.Withdraw = &ne, withdraw
	return s.putProposal(ctx, c)
}

// ProposeServiceChange records a proposal to add sv, to replace the
// stored service of sv's name with it, or, with withdraw, to remove the
// stored service of sv's name (only the name is read). sv is validated
// (flow.Service.Validate) and must change something.
func (s *Store) ProposeServiceChange(ctx context.Context, sv *flow.Service, withdraw bool, reason string) (*router.Change, error) {
	if sv == nil {
		return nil, router.Violations{{Field: "service", Description: "required"}}.Err()
	}
	if len(reason) > maxReasonLength {
		return nil, router.Violations{{Field: "reason", Description: "at most 1024 bytes"}}.Err()
	}
	ns := *sv
	if !withdraw {
		if err := ns.Validate(marking.Parser{}); err != nil {
			return nil, router.Violations{{Field: "service", Description: err.Error()}}.Err()
		}
	} else if !validKeyPart(ns.Name) {
		return nil, router.Violations{{Field: "service.name", Description: fmt.Sprintf("%q is not a service name", ns.Name)}}.Err()
	}
	if err := s.Ready(); err != nil {
		return nil, err
	}
	var old *flow.Service
	var base int64
	tx := s.db.Txn(false)
	if rec := serviceTxn(tx, ns.Name); rec != nil {
		old, base = &rec.V.Service, rec.V.Revision
	}
	_, view := revisionTxn(tx)
	tx.Abort()
	if !withdraw {
		// Where it runs must be a catalogue region, on the network the
		// record says (decisions read the region's network regardless).
		st, ok := view.state(ns.Region)
		switch {
		case !ok || st.Region == nil:
			return nil, router.Violations{{Field: "service.region", Description: fmt.Sprintf("%s is not a region of the catalogue", ns.Region)}}.Err()
		case st.Region.NetworkDomain.String() != ns.NetworkDomain:
			return nil, router.Violations{{Field: "service.network_domain", Description: fmt.Sprintf("%s is on %s, not %s", ns.Region, st.Region.NetworkDomain, ns.NetworkDomain)}}.Err()
		}
		if c := router.CoverRegion(ns.Label, st.Region, nil, s.Equivalence(), s.clock()); !c.OK {
			msgs := make([]string, len(c.Reasons))
			for i, x := range c.Reasons {
				msgs[i] = x.Message
			}
			return nil, router.Violations{{Field: "service.label", Description: fmt.Sprintf("%s does not hold %s: %s", ns.Region, ns.Label, strings.Join(msgs, "; "))}}.Err()
		}
	}
	var proposed *flow.Service
	kind := router.ChangeOther
	switch {
	case withdraw && old == nil:
		return nil, router.Violations{{Field: "service.name", Description: fmt.Sprintf("there is no service %s to withdraw", ns.Name)}}.Err()
	case withdraw:
		ns, kind = *old, router.ChangeWithdraw
	case old == nil:
		proposed, kind = &ns, router.ChangeAdd
	default:
		proposed = &ns
	}
	fields := router.ServiceChanges(old, proposed)
	if len(fields) == 0 {
		return nil, router.Violations{{Field: "service", Description: fmt.Sprintf("changes nothing of service %s", ns.Name)}}.Err()
	}
	c := s.newChange(ctx, kind, fields, reason, base)
	c.Service, c.Withdraw = &ns, withdraw
	return s.putProposal(ctx, c)
}

// newChange returns a pending proposal by the caller, with a new id.
func (s *Store) newChange(ctx context.Context, kind router.ChangeKind, fields []string, reason string, base int64) *router.Change {
	var id [8]byte
	_, _ = crand.Read(id[:])
	now := s.clock().UTC()
	return &router.Change{
		ID:           fmt.Sprintf("%s-%s", now.Format("20060102T150405"), hex.EncodeToString(id[:])),
		Kind:         kind,
		Fields:       fields,
		Reason:       reason,
		BaseRevision: base,
		ProposedBy:   authz.Actor(ctx),
		ProposedAt:   now,
		State:        router.ChangePending,
	}
}

// approveFlow applies a pending edge or service proposal c as done (see
// ApproveChange): the record is written, or deleted for a withdrawal, in
// the transaction that marks the proposal applied, if it is still the
// one proposed against.
func (s *Store) approveFlow(ctx context.Context, c, done *router.Change) (*router.Change, error) {
	id := c.ID
	applied := AppliedBy{Change: c.ID, ProposedBy: c.ProposedBy, ApprovedBy: done.DecidedBy, AppliedAt: done.DecidedAt}
	var key string
	var val []byte
	var err error
	if c.Edge != nil {
		key = s.keys.edge(c.Edge.ID)
		val, err = json.Marshal(&EdgeVersion{Edge: *c.Edge, AppliedBy: applied})
	} else {
		key = s.keys.service(c.Service.Name)
		val, err = json.Marshal(&ServiceVersion{Service: *c.Service, AppliedBy: applied})
	}
	if err != nil {
		return nil, err
	}
	write := clientv3.OpPut(key, string(val))
	if c.Withdraw {
		write = clientv3.OpDelete(key)
	}
	cval, err := json.Marshal(done)
	if err != nil {
		return nil, err
	}
	aop, err := s.auditOp(changeAudit(done, audit.OpChangeApproved, done.DecidedBy, done.DecidedAt, s.Revision()))
	if err != nil {
		return nil, err
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).
			If(
				clientv3.Compare(clientv3.ModRevision(s.keys.change(id)), "=", c.Revision),
				clientv3.Compare(clientv3.ModRevision(key), "=", c.BaseRevision),
			).
			Then(write, clientv3.OpPut(s.keys.change(id), string(cval)), aop).
			Else(clientv3.OpGet(s.keys.change(id)), clientv3.OpGet(key, clientv3.WithKeysOnly())).
			Commit()
	})
	if err != nil {
		return nil, fmt.Errorf("approve change %s: %w", id, err)
	}
	if resp.Succeeded {
		done.Revision = resp.Header.Revision
		return done, s.waitCommitted(ctx, resp.Header.Revision)
	}
	return nil, s.refusedApproval(ctx, c, resp, c.Subject(), nil)
}

// flowAudit is what the audit entry of an edge or service change says
// of it.
func flowAudit(c *router.Change) string {
	var s string
	if e := c.Edge; e != nil {
		s = fmt.Sprintf("edge: %s %s %s→%s %s, range %s to %s (%s), %s, expires %s",
			e.ID, e.Kind, e.From, e.To, e.Direction, e.Range.LowMarking, e.Range.HighMarking, e.Range.Scheme,
			e.Authority, e.Expires.UTC().Format(time.DateOnly))
		if e.Revoked {
			s += ", revoked"
		}
	} else {
		sv := c.Service
		s = fmt.Sprintf("service: %s %s in %s (%s), operators %s, personnel %s",
			sv.Name, sv.Marking, sv.Region, sv.NetworkDomain, strings.Join(sv.OperatorNationalities, ","), sv.Personnel)
	}
	if c.Withdraw {
		s += ", withdrawn"
	}
	return s
}

// nextEdgeExpiry is the first expiry after now of an edge not revoked;
// zero if none.
func nextEdgeExpiry(edges []flow.Edge, now time.Time) time.Time {
	var next time.Time
	for i := range edges {
		if x := edges[i].Expires; !edges[i].Revoked && x.After(now) && (next.IsZero() || x.Before(next)) {
			next = x
		}
	}
	return next
}

// seedFlows writes the default edges and services unless they were
// seeded before: the marker seeded-edges is created in the same
// transaction (create revision 0), so a later start never overwrites
// what operators changed. A record that exists already is kept.
func (s *Store) seedFlows(ctx context.Context, edges []flow.Edge, services []flow.Service) (int64, error) {
	mval, err := json.Marshal(seedMarker{State: "complete"})
	if err != nil {
		return 0, err
	}
	ops := []clientv3.Op{clientv3.OpPut(s.keys.flowsSeeded(), string(mval))}
	put := func(key string, v any) error {
		val, err := json.Marshal(v)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(key, string(val))}, nil))
		return nil
	}
	for i := range edges {
		e := edges[i]
		if err := e.Validate(marking.Parser{}); err != nil {
			return 0, fmt.Errorf("seed edges: %w", err)
		}
		if err := put(s.keys.edge(e.ID), &EdgeVersion{Edge: e}); err != nil {
			return 0, err
		}
	}
	for i := range services {
		sv := services[i]
		if err := sv.Validate(marking.Parser{}); err != nil {
			return 0, fmt.Errorf("seed services: %w", err)
		}
		if err := put(s.keys.service(sv.Name), &ServiceVersion{Service: sv}); err != nil {
			return 0, err
		}
	}
	if len(ops) > seedChunkOps {
		return 0, fmt.Errorf("seed edges: %d records; at most %d", len(ops)-1, seedChunkOps-1)
	}
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(s.keys.flowsSeeded()), "=", 0)).Then(ops...).Commit()
	})
	if err != nil {
		return 0, fmt.Errorf("seed edges: %w", err)
	}
	if !resp.Succeeded {
		return 0, nil
	}
	return resp.Header.Revision, nil
}
