package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"gopkg.in/yaml.v3"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router"
)

// Documents are the catalogue's records as people read and write them:
// what classroutectl prints with -o yaml or -o json, and what put -f and
// propose -f read back unchanged. There is one schema: the catalogue
// file's field names (router's model, e.g. `personnel: cleared-secret`),
// in YAML or JSON alike, plus the etag of the record as read and, for a
// region, what is used of it and its agent's health. Those are output
// only: a write ignores them, except the etag, which makes it
// conditional (AIP-154).

// RegionDoc is a region as classroutectl prints and reads it.
type RegionDoc struct {
	router.Region `yaml:",inline"`
	// Etag is the version of the record read; put -f and propose -f send
	// it back, so the write fails (ABORTED) if the record changed since.
	Etag string `json:"etag,omitempty" yaml:"etag,omitempty"`
	// Used is the capacity placements hold (output only).
	Used *router.Resources `json:"used,omitempty" yaml:"used,omitempty"`
	// Health is what the region's agent says (output only).
	Health *HealthDoc `json:"health,omitempty" yaml:"health,omitempty"`
}

// HealthDoc is a region agent's report (output only).
type HealthDoc struct {
	Healthy      bool              `json:"healthy" yaml:"healthy"`
	Reason       string            `json:"reason,omitempty" yaml:"reason,omitempty"`
	Since        *time.Time        `json:"since,omitempty" yaml:"since,omitempty"`
	Agent        string            `json:"agent,omitempty" yaml:"agent,omitempty"`
	AgentLive    bool              `json:"agent_live" yaml:"agent_live"`
	LastReport   *time.Time        `json:"last_report,omitempty" yaml:"last_report,omitempty"`
	ReportedFree *router.Resources `json:"reported_free,omitempty" yaml:"reported_free,omitempty"`
}

// ProviderDoc is a provider as classroutectl prints and reads it.
type ProviderDoc struct {
	router.Provider `yaml:",inline"`
	Etag            string `json:"etag,omitempty" yaml:"etag,omitempty"`
}

// TenantDoc is a tenant as classroutectl prints and reads it.
type TenantDoc struct {
	router.Tenant `yaml:",inline"`
	Etag          string `json:"etag,omitempty" yaml:"etag,omitempty"`
}

// RegionDocFromProto is the document of an API region.
func RegionDocFromProto(r *pb.Region) (RegionDoc, error) {
	var v router.Violations
	rr := RegionFromProto(r, &v)
	if err := v.Err(); err != nil {
		return RegionDoc{}, err
	}
	d := RegionDoc{Region: *rr, Etag: r.GetEtag()}
	if u := r.GetUsed(); u != nil {
		res := ResourcesFromProto(u)
		d.Used = &res
	}
	if h := r.GetHealth(); h != nil {
		d.Health = &HealthDoc{Healthy: h.GetHealthy(), Reason: h.GetReason(), Agent: h.GetAgent(), AgentLive: h.GetAgentLive()}
		if h.GetSince() != nil {
			t := h.GetSince().AsTime().UTC()
			d.Health.Since = &t
		}
		if h.GetLastReport() != nil {
			t := h.GetLastReport().AsTime().UTC()
			d.Health.LastReport = &t
		}
		if f := h.GetReportedFree(); f != nil {
			res := ResourcesFromProto(f)
			d.Health.ReportedFree = &res
		}
	}
	return d, nil
}

// Proto is the API region of d: the record and its etag, with the
// output-only parts (key, usage, health) as read.
func (d RegionDoc) Proto() *pb.Region {
	st := router.RegionState{Region: &d.Region}
	if d.Used != nil {
		st.Used = *d.Used
	}
	r := RegionToProto(st)
	r.Etag = d.Etag
	if h := d.Health; h != nil {
		r.Health = &pb.RegionHealth{Healthy: h.Healthy, Reason: h.Reason, Agent: h.Agent, AgentLive: h.AgentLive}
		if h.Since != nil {
			r.Health.Since = timeToProto(*h.Since)
		}
		if h.LastReport != nil {
			r.Health.LastReport = timeToProto(*h.LastReport)
		}
		if h.ReportedFree != nil {
			r.Health.ReportedFree = resourcesToProto(*h.ReportedFree)
		}
	}
	return r
}

// WriteProto is the API region a put or proposal of d sends: the record
// and its etag; output-only parts left out.
func (d RegionDoc) WriteProto() *pb.Region {
	r := RegionToProto(router.RegionState{Region: &d.Region})
	r.Key, r.Used, r.Health = "", nil, nil
	r.Etag = d.Etag
	return r
}

// ProviderDocFromProto is the document of an API provider.
func ProviderDocFromProto(p *pb.Provider) (ProviderDoc, error) {
	var v router.Violations
	pp := ProviderFromProto(p, &v)
	if err := v.Err(); err != nil {
		return ProviderDoc{}, err
	}
	return ProviderDoc{Provider: *pp, Etag: p.GetEtag()}, nil
}

// Proto is the API provider of d, with its etag.
func (d ProviderDoc) Proto() *pb.Provider {
	p := ProviderToProto(&d.Provider)
	p.Etag = d.Etag
	return p
}

// TenantDocFromProto is the document of an API tenant.
func TenantDocFromProto(t *pb.Tenant) (TenantDoc, error) {
	var v router.Violations
	tt := TenantFromProto(t, &v)
	if err := v.Err(); err != nil {
		return TenantDoc{}, err
	}
	return TenantDoc{Tenant: *tt, Etag: t.GetEtag()}, nil
}

// Proto is the API tenant of d, with its etag.
func (d TenantDoc) Proto() *pb.Tenant {
	t := TenantToProto(&d.Tenant)
	t.Etag = d.Etag
	return t
}

// MaxDocSize is the largest document DecodeDoc reads.
const MaxDocSize = 1 << 20

// DecodeDoc reads one document of type T from data, YAML or JSON (JSON
// is YAML): unknown fields, a second document and more than MaxDocSize
// bytes are errors naming source.
func DecodeDoc[T any](data []byte, source string) (T, error) {
	var doc T
	if len(data) > MaxDocSize {
		return doc, fmt.Errorf("%s: %d bytes; a document is at most %d", source, len(data), MaxDocSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, fmt.Errorf("%s: empty document", source)
		}
		return doc, fmt.Errorf("%s: %w", source, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return doc, fmt.Errorf("%s: one document per file: a second follows", source)
	}
	return doc, nil
}

// EncodeDoc writes v (a document, or a slice of them) as format "yaml"
// or "json" (indented, one trailing newline).
func EncodeDoc(w io.Writer, format string, v any) error {
	switch format {
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	return fmt.Errorf("document format %q: want yaml or json", format)
}

// ChangeDoc is a two-person region change as classroutectl prints it:
// the proposed region in the region document's schema (region put -f and
// propose -f read it), and the proposal's own facts (output only).
type ChangeDoc struct {
	ID           string     `json:"id" yaml:"id"`
	Region       RegionDoc  `json:"region,omitzero" yaml:"region,omitempty"`
	Kind         string     `json:"kind" yaml:"kind"`
	Fields       []string   `json:"fields,omitempty" yaml:"fields,omitempty"`
	Reason       string     `json:"reason,omitempty" yaml:"reason,omitempty"`
	BaseRevision int64      `json:"base_revision,omitempty" yaml:"base_revision,omitempty"`
	State        string     `json:"state" yaml:"state"`
	ProposedBy   string     `json:"proposed_by" yaml:"proposed_by"`
	ProposedAt   *time.Time `json:"proposed_at,omitempty" yaml:"proposed_at,omitempty"`
	DecidedBy    string     `json:"decided_by,omitempty" yaml:"decided_by,omitempty"`
	DecidedAt    *time.Time `json:"decided_at,omitempty" yaml:"decided_at,omitempty"`
	Note         string     `json:"note,omitempty" yaml:"note,omitempty"`

	// Equivalence is the proposed entry of an equivalence change (then
	// Region is empty).
	Equivalence *EquivalenceDoc `json:"equivalence,omitempty" yaml:"equivalence,omitempty"`
	// Edge and Service are the proposed edge or catalogue service of an
	// edge or service change (then Region is empty); Withdraw says the
	// proposal removes it.
	Edge     *EdgeDoc    `json:"edge,omitempty" yaml:"edge,omitempty"`
	Service  *ServiceDoc `json:"service,omitempty" yaml:"service,omitempty"`
	Withdraw bool        `json:"withdraw,omitempty" yaml:"withdraw,omitempty"`
}

// ChangeDocFromProto is the document of an API region change.
func ChangeDocFromProto(c *pb.RegionChange) (ChangeDoc, error) {
	var r RegionDoc
	if c.GetEquivalence() == nil && c.GetEdge() == nil && c.GetService() == nil {
		var err error
		if r, err = RegionDocFromProto(c.GetRegion()); err != nil {
			return ChangeDoc{}, err
		}
	}
	d := ChangeDoc{ID: c.GetId(), Equivalence: EquivalenceDocFromProto(c.GetEquivalence()), Region: r,
		Edge: EdgeDocFromProto(c.GetEdge()), Service: ServiceDocFromProto(c.GetService()), Withdraw: c.GetWithdraw(), Kind: c.GetKind(), Fields: c.GetFields(), Reason: c.GetReason(),
		BaseRevision: c.GetBaseRevision(), State: c.GetState(), ProposedBy: c.GetProposedBy(), DecidedBy: c.GetDecidedBy(), Note: c.GetNote()}
	if t := c.GetProposeTime(); t != nil {
		at := t.AsTime().UTC()
		d.ProposedAt = &at
	}
	if t := c.GetDecideTime(); t != nil {
		at := t.AsTime().UTC()
		d.DecidedAt = &at
	}
	return d, nil
}

// Proto is the API region change of d.
func (d ChangeDoc) Proto() *pb.RegionChange {
	c := &pb.RegionChange{Id: d.ID, Region: d.Region.Proto(), Kind: d.Kind, Fields: d.Fields, Reason: d.Reason,
		BaseRevision: d.BaseRevision, State: d.State, ProposedBy: d.ProposedBy, DecidedBy: d.DecidedBy, Note: d.Note}
	if d.Equivalence != nil {
		c.Region, c.Equivalence = nil, d.Equivalence.Proto()
	}
	if d.Edge != nil {
		c.Region, c.Edge = nil, EdgeToProto(&d.Edge.Edge)
	}
	if d.Service != nil {
		c.Region, c.Service = nil, ServiceToProto(&d.Service.Service)
	}
	c.Withdraw = d.Withdraw
	if d.ProposedAt != nil {
		c.ProposeTime = timeToProto(*d.ProposedAt)
	}
	if d.DecidedAt != nil {
		c.DecideTime = timeToProto(*d.DecidedAt)
	}
	return c
}
