package state

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
	"github.com/classroute/classroute/router/equiv"
	"github.com/classroute/classroute/router/flow"
	"github.com/classroute/classroute/router/label"
	"github.com/classroute/classroute/router/marking"
)

// The stored format. Every kind of record the store writes into etcd has
// a golden record in testdata/stored/, in the exact bytes the store
// writes. TestStoredFormat decodes each with the decoder the store reads
// it with, compares the result with the fully populated value below
// (every stored field set, so a field renamed or dropped shows), encodes
// that value with the store's encoder and requires the golden bytes
// back. A field renamed in router/model.go, or in a record type of this
// package, without a migration fails it: records already in etcd would
// no longer decode to what was written.
//
// When a change to the format is deliberate (a field added, with its
// old records still decoding), regenerate the files and review the diff:
//
//	go test ./router/state -run TestStoredFormat -update
//
// -update refuses to drop a key a golden record holds: a stored key
// that disappears is a rename or removal, which orphans the records
// that hold it. Delete the golden file by hand once a migration covers
// it.
var update = flag.Bool("update", false, "rewrite the golden records of testdata/stored (TestStoredFormat)")

const storedDir = "testdata/stored"

// Revisions the golden records are read at: goldenCreateRev wrote them,
// and an audit entry's decision read goldenDecidedRev, before it.
const (
	goldenCreateRev  = 4711
	goldenDecidedRev = 4707
)

// The clock of the golden records: nanoseconds set, so that a time
// truncated on its way through shows.
var goldenTime = time.Date(2026, 11, 30, 14, 5, 9, 123456789, time.UTC)

func goldenAt(d time.Duration) time.Time { return goldenTime.Add(d) }

// goldenAuditID is the id of the golden audit entry, as a daemon of
// node c1a55e00 makes its first one at goldenTime.
func goldenAuditID() string {
	ids := audit.IDs{Node: "c1a55e00"}
	return ids.Next(goldenTime)
}

// The fully populated records. Every stored field is set to a value
// other than its zero value, so that a renamed or dropped field decodes
// differently; not every combination is one the store would write (a
// healthy region's health with a reason, a placement with both an issue
// and a release time).

func goldenRegion() router.Region {
	return router.Region{
		Provider:              "aws",
		ID:                    "us-iso-east-1",
		Name:                  "US ISO East",
		Country:               "USA",
		OperatorJurisdiction:  "USA",
		OperatorNationalities: []string{"USA"},
		Personnel:             router.PersonnelClearedTopSecret,
		NetworkDomain:         router.DomainJWICS,
		Accreditation: router.Accreditation{
			MaxLevel:    label.TopSecret,
			Controls:    []string{"HCS-P", "SI", "TK"},
			ImpactLevel: 6,
			FedRAMP:     router.FedRAMPHigh,
			Frameworks:  []string{"ICD 503"},
			Expires:     time.Date(2027, 9, 30, 23, 59, 59, 0, time.UTC),
			Revoked:     true,
		},
		Customers:    []string{"USA/intelligence", "USA/defense"},
		Capabilities: []string{"gpu", "ai-agents"},
		StorageTiers: []string{"online", "archive"},
		Capacity:     router.Resources{MilliCPU: 512000, MemoryMiB: 2097152, GPU: 64},
		Location:     router.Location{Lat: 38.9586, Lon: -77.357},
		Cost:         3.25,
		Status:       router.StatusDraining,
		Illustrative: true,
		Notes:        "C2S; location approximate [U]",
		Accreditations: []router.SchemeAccreditation{{
			Scheme: "NATO", MaxLevel: "NATO SECRET", Caveats: []string{"ATOMAL"}, Authority: "NATO Office of Security",
			Expires: time.Date(2027, 9, 30, 23, 59, 59, 0, time.UTC), Revoked: true, Illustrative: true, Notes: "illustrative",
			Level: marking.Level{Name: "NATO SECRET", Rank: 3}, // set when the cache validates the record
		}},
	}
}

func goldenProvider() router.Provider {
	return router.Provider{ID: "aws", Name: "Amazon Web Services", Jurisdiction: "USA", Notes: "GovCloud and the ISO regions"}
}

// goldenTenant is validated, as PutTenant validates before it writes:
// its ceiling canonical and parsed.
func goldenTenant(tb testing.TB) router.Tenant {
	tb.Helper()
	t := router.Tenant{
		ID:               "us-army",
		Name:             "US Army",
		Nation:           "USA",
		Sector:           "defense",
		Ceiling:          "TOP SECRET//SI/TK//NOFORN",
		AllowedRegions:   []string{"aws/us-iso-east-1"},
		DeniedRegions:    []string{"azure/usgov-virginia"},
		AllowedProviders: []string{"aws", "azure"},
		DeniedProviders:  []string{"huawei"},
		Members: []router.TenantMember{
			{Name: "alice", Roles: []authz.Role{authz.RoleSubmitter, authz.RoleTenantAuditor}},
		},
		MaxPlacements: 500,
		Scheme:        "US",
		Ceilings:      []router.SchemeCeiling{{Scheme: "NATO", Level: "NATO SECRET"}},
	}
	if err := router.ValidateTenant(&t); err != nil {
		tb.Fatalf("golden tenant: %v", err)
	}
	return t
}

func goldenUsage() usageValue {
	return usageValue{Used: router.Resources{MilliCPU: 68000, MemoryMiB: 278528, GPU: 17}, Placements: 17}
}

// goldenPlacement is validated, as Place validates its workload: its
// banner canonical and its label parsed (the decoder parses it again).
func goldenPlacement(tb testing.TB) router.Placement {
	tb.Helper()
	w := router.Workload{
		Name:                 "sigint-ingest",
		Tenant:               "us-army",
		Banner:               "SECRET//REL TO USA, GBR",
		Dependencies:         []flow.Dependency{{Target: flow.Placement("us-army", "req-0000"), Direction: flow.Read}, {Target: flow.ServiceNamed("aoai-gov"), Direction: flow.Call}},
		AllowedCountries:     []string{"USA", "GBR"},
		AllowedJurisdictions: []string{"USA"},
		ExportControl:        router.ExportITAR,
		MinImpactLevel:       5,
		MinFedRAMP:           router.FedRAMPHigh,
		Capabilities:         []string{"gpu"},
		StorageTier:          "online",
		Resources:            router.Resources{MilliCPU: 4000, MemoryMiB: 16384, GPU: 1},
		Replicas:             2,
		Spread:               router.Spread{MinDistanceKm: 150, DistinctProviders: true},
		Preferences: router.Preferences{
			Providers:  []string{"aws", "azure"},
			CostWeight: 0.25,
			Near:       &router.Location{Lat: 38.8977, Lon: -77.0365},
		},
	}
	if err := router.ValidateWorkload(&w, "US"); err != nil {
		tb.Fatalf("golden workload: %v", err)
	}
	w.Scheme = "US" // a stored record may name the US scheme; most leave it empty
	return router.Placement{
		ID:       "req-0001",
		Tenant:   "us-army",
		Workload: w,
		Regions:  []string{"aws/us-iso-east-1", "azure/usgov-secret-east"},
		Scores:   []float64{0.8125, 0.5},
		State:    router.PlacementViolation,
		Replicas: []router.ReplicaStatus{
			{State: router.ReplicaRunning, Detail: "3 pods ready", At: goldenAt(time.Minute)},
			{State: router.ReplicaFailed, Detail: "image pull failed", At: goldenAt(2 * time.Minute)},
		},
		Issues: []router.Issue{{
			Region:    "azure/usgov-secret-east",
			Violation: true,
			Stranded:  true,
			Reasons:   []router.Reason{{Code: router.ReasonReleasability, Message: "operator nationality CAN outside REL TO USA, GBR", Scheme: "GBR", Equivalence: []string{"GBR→US v1"}}},
			Since:     goldenAt(3 * time.Minute),
		}},
		Retiring: []router.Retiring{{
			Region:  "aws/us-gov-west-1",
			MovedTo: "aws/us-iso-east-1",
			Reasons: []router.Reason{{Code: router.ReasonHealth, Message: "region draining", Scheme: "NATO", Equivalence: []string{"NATO→US v1"}}},
			Since:   goldenAt(4 * time.Minute),
		}},
		Moves:      2,
		DecidedAt:  goldenDecidedRev,
		CreatedAt:  goldenTime,
		ReleasedAt: goldenAt(time.Hour),
		UpdatedAt:  goldenAt(5 * time.Minute),
	}
}

func goldenLive() liveValue {
	return liveValue{
		Agent:       "agent-us-iso-east-1-a",
		Daemon:      "classrouted-2",
		Lease:       7587883263843205123, // beyond float64's exact integers: a number decoded as one would show
		ConnectedAt: goldenTime,
		ReportedAt:  goldenAt(10 * time.Second),
		Healthy:     true,
		Detail:      "42 hosts schedulable",
		Free:        router.Resources{MilliCPU: 444000, MemoryMiB: 1818624, GPU: 47},
	}
}

func goldenHealth() router.Health {
	return router.Health{Healthy: true, Reason: "agent reports healthy again", Since: goldenTime, Agent: "agent-us-iso-east-1-a"}
}

// goldenEquivalence is an entry with every field set, GBR→US.
func goldenEquivalence() equiv.Entry {
	return equiv.Entry{
		From:         marking.GBR,
		To:           marking.US,
		Version:      3,
		Agreement:    "US–UK General Security Agreement",
		ValidFrom:    goldenAt(-24 * time.Hour),
		ValidUntil:   time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Withdrawn:    true,
		Illustrative: true,
		Source:       "https://www.gov.uk/government/publications/government-security-classifications",
		Levels: []equiv.Mapping{
			{From: "SECRET", To: "SECRET", Note: "by agreement"},
			{From: "OFFICIAL", WithCaveats: []string{"SENSITIVE"}, None: true, Note: "not a tier"},
		},
	}
}

func goldenEquivalenceVersion() EquivalenceVersion {
	return EquivalenceVersion{
		Entry:      goldenEquivalence(),
		Change:     "20261130T140509-0123456789abcdef",
		ProposedBy: "spiffe://classroute.example/admin/alice",
		ApprovedBy: "spiffe://classroute.example/admin/bob",
		AppliedAt:  goldenAt(time.Hour),
		Revision:   goldenCreateRev, // not stored: the decoder sets it from the record's mod revision
	}
}

// goldenEdge is an edge with every stored field set, as proposed (its
// range's parsed bounds unset).
func goldenEdge() flow.Edge {
	return flow.Edge{
		ID:        "sipr-guard-1",
		Kind:      flow.Guard,
		From:      "siprnet",
		To:        "internet",
		Direction: flow.Write,
		Range:     flow.Range{Scheme: marking.US, LowMarking: "UNCLASSIFIED", HighMarking: "SECRET"},
		Authority: "NCDSMO",
		Expires:   time.Date(2028, 6, 30, 0, 0, 0, 0, time.UTC),
		Revoked:   true, Illustrative: true,
		Notes: "DOMAIN.md §7.5: a guard for write-downs",
	}
}

// goldenService is a service with every stored field set, as proposed.
func goldenService() flow.Service {
	return flow.Service{
		Name:                  "azure-openai-gov",
		Scheme:                marking.US,
		Marking:               "UNCLASSIFIED", // its scheme is not in its syntax: the scheme key is read
		Region:                "azure/usgovvirginia",
		NetworkDomain:         "internet",
		OperatorNationalities: []string{"USA"},
		Personnel:             flow.PersonnelScreenedUSPersons,
		Illustrative:          true,
		Notes:                 "DOMAIN.md §7.2",
	}
}

func goldenApplied() AppliedBy {
	return AppliedBy{
		Change:     "20261130T140509-0123456789abcdef",
		ProposedBy: "spiffe://classroute.example/admin/alice",
		ApprovedBy: "spiffe://classroute.example/admin/bob",
		AppliedAt:  goldenAt(time.Hour),
	}
}

// goldenEdgeVersion is as the cache decodes it: validated, the range's
// bounds parsed.
func goldenEdgeVersion(tb testing.TB) EdgeVersion {
	e := goldenEdge()
	if err := e.Validate(marking.Parser{}); err != nil {
		tb.Fatal(err)
	}
	return EdgeVersion{Edge: e, AppliedBy: goldenApplied(), Revision: goldenCreateRev}
}

func goldenServiceVersion(tb testing.TB) ServiceVersion {
	sv := goldenService()
	if err := sv.Validate(marking.Parser{}); err != nil {
		tb.Fatal(err)
	}
	return ServiceVersion{Service: sv, AppliedBy: goldenApplied(), Revision: goldenCreateRev}
}

// goldenChange carries a region, an equivalence entry, an edge and a
// service, so that every stored field is set; the store writes one of
// them.
func goldenChange() router.Change {
	r := goldenRegion()
	r.Accreditations = []router.SchemeAccreditation{r.Accreditations[0]}
	r.Accreditations[0].Level = marking.Level{} // a proposal's region is validated when approved, not when read
	eq, edge, sv := goldenEquivalence(), goldenEdge(), goldenService()
	return router.Change{
		ID:           "20261130T140509-0123456789abcdef",
		Region:       r,
		Equivalence:  &eq,
		Edge:         &edge,
		Service:      &sv,
		Withdraw:     true,
		Kind:         router.ChangeLower,
		Fields:       []string{"accreditation.max_level", "accreditation.controls"},
		Reason:       "ATO reduced after the annual review",
		BaseRevision: 4100,
		ProposedBy:   "spiffe://classroute.example/admin/alice",
		ProposedAt:   goldenTime,
		State:        router.ChangeApplied,
		DecidedBy:    "spiffe://classroute.example/admin/bob",
		DecidedAt:    goldenAt(time.Hour),
		Note:         "approved at CCB 2026-47",
		Revision:     goldenCreateRev, // not stored: the decoder sets it from the record's mod revision
	}
}

func goldenAuditEntry() audit.Entry {
	return audit.Entry{
		Time:           goldenTime,
		Op:             audit.OpRefuseSummary,
		Actor:          "spiffe://classroute.example/tenant/us-army/user/alice",
		RequestID:      "req-0001",
		Tenant:         "us-army",
		Workload:       "sigint-ingest",
		Label:          "SECRET//REL TO USA, GBR",
		Regions:        []string{"aws/us-iso-east-1", "azure/usgov-secret-east"},
		Scores:         []float64{0.8125, 0.5},
		Reasons:        []string{"no eligible region", "azure/usgov-secret-east: releasability, capacity"},
		ReasonsOmitted: 3,
		Revision:       goldenDecidedRev,
		Provider:       "aws",
		Before:         "TOP SECRET, IL6, revoked false",
		After:          "SECRET, IL6, revoked false",
		Count:          12,
		From:           goldenAt(-time.Minute),
		To:             goldenAt(-time.Second),
	}
}

// goldenEntryBytes is the golden audit entry as stored.
func goldenEntryBytes(tb testing.TB) []byte {
	tb.Helper()
	b, err := audit.Encode(goldenAuditEntry())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// goldenChainRecord chains the golden audit entry, flagged, after a
// previous record, with its hash computed as the chainer computes it.
func goldenChainRecord(tb testing.TB) audit.ChainRecord {
	tb.Helper()
	entry := sha256.Sum256(goldenEntryBytes(tb))
	prev := sha256.Sum256([]byte("the previous record"))
	r := audit.ChainRecord{
		Seq:         42,
		Key:         goldenAuditID(),
		Rev:         goldenCreateRev,
		EntrySHA256: hex.EncodeToString(entry[:]),
		Prev:        hex.EncodeToString(prev[:]),
		Time:        goldenTime,
		Tamper:      "rewritten after it was written (created at revision 4711, version 2 written at revision 4712)",
	}
	r.Hash = hex.EncodeToString(audit.RecordHash(&r, entry[:], prev[:]))
	return r
}

// goldenCheckpoint signs the golden chain record's head with a fixed
// key (ed25519 signatures are deterministic).
func goldenCheckpoint(tb testing.TB) audit.Checkpoint {
	tb.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5e}, ed25519.SeedSize))
	head := goldenChainRecord(tb)
	if _, err := hex.DecodeString(head.Hash); err != nil {
		tb.Fatal(err)
	}
	cp := audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: goldenAt(time.Second)}
	cp.Sign(key)
	return cp
}

func goldenWatermark() auditWatermark {
	return auditWatermark{
		Through: goldenCreateRev,
		Clock:   goldenTime,
		Floor:   goldenTime.Add(-audit.DefaultMaxSkew),
		Newest:  goldenAuditID(),
		Time:    goldenAt(2 * time.Second),
		wrote:   goldenCreateRev + 1, // not stored: the decoder sets it from the record's mod revision
	}
}

func goldenSeedMarker() seedMarker { return seedMarker{State: "complete", Chunk: 3} }

func goldenResumeKey() []byte {
	k := make([]byte, ResumeKeySize)
	for i := range k {
		k[i] = byte(0xa0 + i)
	}
	return k
}

// storedKind is one kind of etcd record: its golden file, a key it is
// stored under, its fully populated value, and the store's encoder and
// decoder for it.
type storedKind struct {
	file string // under testdata/stored
	key  string
	// value is the record as the store holds it once decoded.
	value any
	// encode is what the store writes for value.
	encode func() ([]byte, error)
	// decode is how the store reads the bytes at key back.
	decode func(val []byte) (any, error)
	// notJSON: the value is not a JSON document (no key renaming).
	notJSON bool
}

// marshal is the encoder of every record but audit entries and the
// resume key: the store writes json.Marshal of the record.
func marshal(v any) func() ([]byte, error) { return func() ([]byte, error) { return json.Marshal(v) } }

// decodeCached reads a cached kind as the cache's watch and load do:
// the key parsed into its table and id, then decodeRecord.
func decodeCached(key string, val []byte) (any, error) {
	k, id := keys{DefaultPrefix}.parse(key)
	rec, err := decodeRecord(k, id, val, goldenCreateRev, goldenCreateRev)
	if err != nil {
		return nil, err
	}
	switch r := rec.(type) {
	case *regionRecord:
		return *r.Region, nil
	case *providerRecord:
		return *r.Provider, nil
	case *tenantRecord:
		return *r.Tenant, nil
	case *usageRecord:
		return usageValue{Used: r.Used, Placements: r.Placements}, nil
	case *placementRecord:
		return *r.P, nil
	case *liveRecord:
		return r.V, nil
	case *healthRecord:
		return *r.H, nil
	case *equivRecord:
		return *r.V, nil
	case *edgeRecord:
		return *r.V, nil
	case *serviceRecord:
		return *r.V, nil
	}
	return nil, fmt.Errorf("decodeRecord returned a %T", rec)
}

// storedKinds lists every kind of record the store writes into etcd
// (grep clientv3.OpPut in this package), but the audit index's keys,
// whose values are empty (TestStoredFormatKeys pins them), and the
// reconciler's election, whose records are etcd's own.
func storedKinds(tb testing.TB) []storedKind {
	tb.Helper()
	k := keys{DefaultPrefix}
	cached := func(key string) func([]byte) (any, error) {
		return func(val []byte) (any, error) { return decodeCached(key, val) }
	}
	region, tenant, placement := goldenRegion(), goldenTenant(tb), goldenPlacement(tb)
	entry, chain, cp, wm := goldenAuditEntry(), goldenChainRecord(tb), goldenCheckpoint(tb), goldenWatermark()
	change, usage, live, health := goldenChange(), goldenUsage(), goldenLive(), goldenHealth()
	provider, marker, resume := goldenProvider(), goldenSeedMarker(), goldenResumeKey()
	auditID := goldenAuditID()
	eqv := goldenEquivalenceVersion()
	eqKey := eqv.Key()
	edge, service := goldenEdgeVersion(tb), goldenServiceVersion(tb)
	return []storedKind{
		// flows.go (approval, seed)
		{file: "edge.json", key: k.edge(edge.ID), value: edge, encode: marshal(edge), decode: cached(k.edge(edge.ID))},
		{file: "service.json", key: k.service(service.Name), value: service, encode: marshal(service), decode: cached(k.service(service.Name))},
		// equivalence.go (approval, seed)
		{file: "equivalence.json", key: k.equivalence(eqKey), value: eqv, encode: marshal(eqv), decode: cached(k.equivalence(eqKey))},
		// equivalence.go (approval, seed); read by GetEquivalence, not cached
		{file: "equivalence-history.json", key: k.equivHistory(eqKey, eqv.Version), value: eqv, encode: marshal(eqv),
			decode: func(val []byte) (any, error) {
				var v EquivalenceVersion
				if err := json.Unmarshal(val, &v); err != nil {
					return nil, err
				}
				v.Revision = goldenCreateRev
				return v, nil
			}},
		// regions.go, seed.go, changes.go
		{file: "region.json", key: k.region(region.Key()), value: region, encode: marshal(region), decode: cached(k.region(region.Key()))},
		// providers.go, seed.go
		{file: "provider.json", key: k.provider(provider.ID), value: provider, encode: marshal(provider), decode: cached(k.provider(provider.ID))},
		// tenants.go, seed.go
		{file: "tenant.json", key: k.tenant(tenant.ID), value: tenant, encode: marshal(tenant), decode: cached(k.tenant(tenant.ID))},
		// batch.go, place.go, reconcilebatch.go, regions.go, seed.go, changes.go
		{file: "usage.json", key: k.usage(region.Key()), value: usage, encode: marshal(usage), decode: cached(k.usage(region.Key()))},
		// place.go, agents.go (Ack), reconcilebatch.go; moved unchanged by migrate.go
		{file: "placement.json", key: k.placement(keyOf(&placement)), value: placement, encode: marshal(placement),
			decode: cached(k.placement(keyOf(&placement)))},
		// agents.go, on the agent's lease
		{file: "live.json", key: k.live(region.Key()), value: live, encode: marshal(live), decode: cached(k.live(region.Key()))},
		// agents.go, reconcile.go
		{file: "health.json", key: k.health(region.Key()), value: health, encode: marshal(health), decode: cached(k.health(region.Key()))},
		// changes.go: read by ListChanges and the approval, not cached
		{file: "change.json", key: k.change(change.ID), value: change, encode: marshal(change),
			decode: func(val []byte) (any, error) {
				c, err := decodeChange(val, goldenCreateRev)
				if err != nil {
					return nil, err
				}
				return *c, nil
			}},
		// audit.go; read by ListAudit, FindAudit and the chainer, which
		// judges it (the strictest reader: its id must match its time).
		{file: "audit.json", key: k.audit(auditID), value: entry,
			encode: func() ([]byte, error) { return audit.Encode(entry) },
			decode: func(val []byte) (any, error) {
				kv := &mvccpb.KeyValue{Key: []byte(k.audit(auditID)), Value: val,
					CreateRevision: goldenCreateRev, ModRevision: goldenCreateRev, Version: 1}
				se := storedEntry(auditID, kv)
				e, fault := audit.Judge(&se, time.Time{}, goldenTime, audit.DefaultMaxSkew)
				if fault != "" {
					return nil, errors.New(fault)
				}
				return e, nil
			}},
		// auditchain.go (the chainer); read by VerifyAudit, which checks
		// its hash against its contents.
		{file: "audit-chain.json", key: k.chain(chain.Seq), value: chain, encode: marshal(chain),
			decode: func(val []byte) (any, error) {
				var r audit.ChainRecord
				if err := json.Unmarshal(val, &r); err != nil {
					return nil, err
				}
				h, herr := hex.DecodeString(r.Hash)
				es, eerr := hex.DecodeString(r.EntrySHA256)
				prev, _ := hex.DecodeString(r.Prev)
				if herr != nil || eerr != nil || !bytes.Equal(audit.RecordHash(&r, es, prev), h) {
					return nil, errors.New("its hash does not match its contents")
				}
				return r, nil
			}},
		// auditchain.go (the chainer); read by VerifyAudit, which
		// verifies its signature.
		{file: "audit-checkpoint.json", key: k.checkpoint(cp.Seq), value: cp, encode: marshal(cp),
			decode: func(val []byte) (any, error) {
				var c audit.Checkpoint
				if err := json.Unmarshal(val, &c); err != nil {
					return nil, err
				}
				if ok, why := audit.VerifyCheckpoint(&c, nil); !ok {
					return nil, errors.New("checkpoint" + why)
				}
				return c, nil
			}},
		// auditindex.go, auditindexer.go
		{file: "audit-index-watermark.json", key: k.auditWatermark(), value: wm, encode: marshal(wm),
			decode: func(val []byte) (any, error) {
				s := &Store{options: options{log: slog.New(slog.DiscardHandler)}}
				w := s.readWatermark([]*mvccpb.KeyValue{{Key: []byte(k.auditWatermark()), Value: val, ModRevision: wm.wrote}})
				if w == nil {
					return nil, errors.New("watermark unreadable")
				}
				return *w, nil
			}},
		// seed.go. The store reads the marker's existence and revision
		// only, never its value: decoded here as its type says.
		{file: "seeded.json", key: k.seeded(), value: marker, encode: marshal(marker),
			decode: func(val []byte) (any, error) {
				var m seedMarker
				err := json.Unmarshal(val, &m)
				return m, err
			}},
		// resumekey.go: the key, hex-encoded, not JSON.
		{file: "resume-token-key.hex", key: k.prefix + resumeKeyName, value: resume, notJSON: true,
			encode: func() ([]byte, error) { return []byte(hex.EncodeToString(resume)), nil },
			decode: func(val []byte) (any, error) { return decodeResumeKey(k.prefix+resumeKeyName, val) }},
	}
}

// TestStoredFormat decodes each golden record with the store's decoder,
// requires the fully populated value back, and requires the store's
// encoder to write the golden bytes, exactly (encoding/json writes
// struct fields in declaration order and no maps are stored: the
// encoders are deterministic).
func TestStoredFormat(t *testing.T) {
	for _, sk := range storedKinds(t) {
		t.Run(sk.file, func(t *testing.T) {
			if missing := unsetFields("", reflect.ValueOf(sk.value)); len(missing) > 0 {
				t.Fatalf("the golden %s leaves %s unset: set every stored field, so that a rename of it shows", sk.file, strings.Join(missing, ", "))
			}
			path := filepath.Join(storedDir, sk.file)
			enc, err := sk.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if *update {
				writeGolden(t, path, enc, !sk.notJSON)
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (generate it with -update)", err)
			}

			got, err := sk.decode(golden)
			if err != nil {
				t.Fatalf("the store no longer reads the golden %s: %v\n%s", sk.file, err, golden)
			}
			if !reflect.DeepEqual(got, sk.value) {
				t.Errorf("the golden %s decodes with fields lost or changed (renamed or dropped? the records in etcd would lose them: add a migration):\n\t%s",
					sk.file, strings.Join(fieldDiff(reflect.TypeOf(sk.value).Name(), reflect.ValueOf(got), reflect.ValueOf(sk.value)), "\n\t"))
			}
			if !bytes.Equal(enc, golden) {
				t.Errorf("the store now writes %s otherwise than it is stored%s\n\twrites: %s\n\tstored: %s\n"+
					"(a renamed or removed field orphans stored records: add a migration; a deliberate, compatible change: -update)",
					sk.file, keyDiff(t, enc, golden, sk.notJSON), enc, golden)
			}
			reenc, err := sk.encodeDecoded(got)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if !bytes.Equal(reenc, golden) {
				t.Errorf("the golden %s decoded and encoded again differs%s\n\tgot:  %s\n\twant: %s", sk.file, keyDiff(t, reenc, golden, sk.notJSON), reenc, golden)
			}
			if !sk.notJSON {
				// Every key the record holds is one its type knows:
				// the strict form of what DeepEqual found.
				dec := json.NewDecoder(bytes.NewReader(golden))
				dec.DisallowUnknownFields()
				v := reflect.New(reflect.TypeOf(sk.value))
				if err := dec.Decode(v.Interface()); err != nil {
					t.Errorf("the golden %s holds a key %T does not know: %v (renamed without a migration?)", sk.file, sk.value, err)
				}
			}
		})
	}
}

// encodeDecoded encodes got, a decoded record, with the kind's encoder.
func (sk storedKind) encodeDecoded(got any) ([]byte, error) {
	switch v := got.(type) {
	case audit.Entry:
		return audit.Encode(v)
	case []byte:
		return []byte(hex.EncodeToString(v)), nil
	}
	return json.Marshal(got)
}

// TestStoredFormatRenamedKey renames, one at a time, every key of every
// golden record (in each element of an array) and requires the store's
// decoder to refuse the record or to decode it to something other than
// the golden value: no stored key is one the decoder would silently
// stop reading unnoticed by TestStoredFormat.
func TestStoredFormatRenamedKey(t *testing.T) {
	for _, sk := range storedKinds(t) {
		if sk.notJSON {
			continue
		}
		t.Run(sk.file, func(t *testing.T) {
			golden, err := os.ReadFile(filepath.Join(storedDir, sk.file))
			if err != nil {
				t.Fatal(err)
			}
			paths := keyPaths(t, golden)
			refused := 0
			for _, p := range paths {
				doc := parseJSON(t, golden)
				if !renameKey(doc, p, "_renamed") {
					t.Fatalf("key %s not found", strings.Join(p, "."))
				}
				b, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				got, err := sk.decode(b)
				switch {
				case err != nil:
					refused++
				case reflect.DeepEqual(got, sk.value):
					t.Errorf("key %s renamed: the record still decodes to the golden value; a rename of its field would go unnoticed", strings.Join(p, "."))
				}
			}
			t.Logf("%d keys renamed: %d refused by the decoder, the others decoded with the field lost", len(paths), refused)
		})
	}
}

// TestStoredFormatKeys pins the key layout (keys.go): where each kind of
// record lives, and how the cache reads a key back.
func TestStoredFormatKeys(t *testing.T) {
	k := keys{DefaultPrefix}
	id := goldenAuditID()
	const wantID = "18ecd7b195075f15-c1a55e00-00000001"
	if id != wantID {
		t.Fatalf("audit id at %s = %s; want %s", goldenTime.Format(time.RFC3339Nano), id, wantID)
	}
	entry := goldenAuditEntry()
	for _, c := range []struct{ name, got, want string }{
		{"region", k.region("aws/us-iso-east-1"), "/classroute/v1/regions/aws/us-iso-east-1"},
		{"regions of a provider", k.regionsOf("aws"), "/classroute/v1/regions/aws/"},
		{"provider", k.provider("aws"), "/classroute/v1/providers/aws"},
		{"tenant", k.tenant("us-army"), "/classroute/v1/tenants/us-army"},
		{"usage", k.usage("aws/us-iso-east-1"), "/classroute/v1/usage/aws/us-iso-east-1"},
		{"placement", k.placement(placementKey("us-army", "req-0001")), "/classroute/v1/placements/us-army/req-0001"},
		{"audit entry", k.audit(id), "/classroute/v1/audit/" + wantID},
		{"audit id time prefix", audit.IDTime(goldenTime), "18ecd7b195075f15"},
		{"audit chain record", k.chain(42), "/classroute/v1/audit-chain/00000000000000000042"},
		{"audit checkpoint", k.checkpoint(42), "/classroute/v1/audit-checkpoint/00000000000000000042"},
		{"audit index watermark", k.auditWatermark(), "/classroute/v1/audit-index/watermark"},
		{"audit index marker of v2", k.auditIndexCompleteV2(), "/classroute/v1/audit-index/complete-v2"},
		{"live", k.live("aws/us-iso-east-1"), "/classroute/v1/live/aws/us-iso-east-1"},
		{"health", k.health("aws/us-iso-east-1"), "/classroute/v1/health/aws/us-iso-east-1"},
		{"election", k.election(), "/classroute/v1/election/reconciler"},
		{"seeded", k.seeded(), "/classroute/v1/seeded"},
		{"change", k.change("20261130T140509-0123456789abcdef"), "/classroute/v1/changes/20261130T140509-0123456789abcdef"},
		{"equivalence", k.equivalence(equiv.Key{From: marking.GBR, To: marking.US}), "/classroute/v1/equivalences/GBR/US"},
		{"equivalence history", k.equivHistory(equiv.Key{From: marking.GBR, To: marking.US}, 3), "/classroute/v1/equivalence-history/GBR/US/0000000003"},
		{"equivalences seeded", k.equivSeeded(), "/classroute/v1/seeded-equivalences"},
		{"edge", k.edge("sipr-guard-1"), "/classroute/v1/edges/sipr-guard-1"},
		{"service", k.service("azure-openai-gov"), "/classroute/v1/services/azure-openai-gov"},
		{"edges seeded", k.flowsSeeded(), "/classroute/v1/seeded-edges"},
		{"resume token key", k.prefix + resumeKeyName, "/classroute/v1/secrets/resume-token-key"},
		{"audit index keys", strings.Join(k.auditIndexKeys(id, &entry, true), "\n"), strings.Join([]string{
			"/classroute/v1/audit-index/t/us-army/" + wantID,
			"/classroute/v1/audit-index/w/sigint-ingest/" + wantID,
			"/classroute/v1/audit-index/tw/us-army/sigint-ingest/" + wantID,
			"/classroute/v1/audit-index/o/refuse-summary/" + wantID,
			"/classroute/v1/audit-index/to/us-army/refuse-summary/" + wantID,
			"/classroute/v1/audit-index/r/aws%2Fus-iso-east-1/" + wantID,
			"/classroute/v1/audit-index/tr/us-army/aws%2Fus-iso-east-1/" + wantID,
			"/classroute/v1/audit-index/r/azure%2Fusgov-secret-east/" + wantID,
			"/classroute/v1/audit-index/tr/us-army/azure%2Fusgov-secret-east/" + wantID,
		}, "\n")},
	} {
		if c.got != c.want {
			t.Errorf("%s key = %q; want %q", c.name, c.got, c.want)
		}
	}
	if ns, ok := audit.IDNanos(wantID); !ok || ns != goldenTime.UnixNano() {
		t.Errorf("audit.IDNanos(%s) = %d, %v; want %d, true", wantID, ns, ok, goldenTime.UnixNano())
	}

	for _, c := range []struct {
		key    string
		kind   kind
		id     string
		legacy string // the id of a placement key of the old layout
	}{
		{key: "/classroute/v1/regions/aws/us-iso-east-1", kind: kindRegion, id: "aws/us-iso-east-1"},
		{key: "/classroute/v1/providers/aws", kind: kindProvider, id: "aws"},
		{key: "/classroute/v1/tenants/us-army", kind: kindTenant, id: "us-army"},
		{key: "/classroute/v1/usage/aws/us-iso-east-1", kind: kindUsage, id: "aws/us-iso-east-1"},
		{key: "/classroute/v1/placements/us-army/req-0001", kind: kindPlacement, id: "us-army/req-0001"},
		{key: "/classroute/v1/placements/req-0001", kind: kindOther, legacy: "req-0001"},
		{key: "/classroute/v1/live/aws/us-iso-east-1", kind: kindLive, id: "aws/us-iso-east-1"},
		{key: "/classroute/v1/health/aws/us-iso-east-1", kind: kindHealth, id: "aws/us-iso-east-1"},
		{key: "/classroute/v1/audit/" + wantID, kind: kindOther},
		{key: "/classroute/v1/audit-chain/00000000000000000042", kind: kindOther},
		{key: "/classroute/v1/changes/20261130T140509-0123456789abcdef", kind: kindOther},
		{key: "/classroute/v1/seeded", kind: kindOther},
		{key: "/classroute/v1/equivalences/GBR/US", kind: kindEquivalence, id: "GBR/US"},
		{key: "/classroute/v1/equivalence-history/GBR/US/0000000003", kind: kindOther},
		{key: "/classroute/v1/seeded-equivalences", kind: kindOther},
		{key: "/classroute/v1/edges/sipr-guard-1", kind: kindEdge, id: "sipr-guard-1"},
		{key: "/classroute/v1/services/azure-openai-gov", kind: kindService, id: "azure-openai-gov"},
		{key: "/classroute/v1/seeded-edges", kind: kindOther},
		{key: "/other/v1/regions/aws/us-iso-east-1", kind: kindOther},
	} {
		if gk, gid := k.parse(c.key); gk != c.kind || gid != c.id {
			t.Errorf("parse(%s) = %d, %q; want %d, %q", c.key, gk, gid, c.kind, c.id)
		}
		if id, ok := k.legacyPlacement(c.key); ok != (c.legacy != "") || ok && id != c.legacy {
			t.Errorf("legacyPlacement(%s) = %q, %v; want %q", c.key, id, ok, c.legacy)
		}
	}
}

// TestStoredFormatEnums pins the names enums are stored by: a name
// changed or a value reordered orphans every record that holds it.
func TestStoredFormatEnums(t *testing.T) {
	for _, c := range []struct {
		name  string
		vals  []any // each value, in order from 0
		names []string
	}{
		{"label.Level", values(label.Unclassified, label.CUI, label.Confidential, label.Secret, label.TopSecret),
			[]string{"UNCLASSIFIED", "CUI", "CONFIDENTIAL", "SECRET", "TOP SECRET"}},
		{"Personnel", values(router.PersonnelNone, router.PersonnelScreenedUSPersons, router.PersonnelUSPersonsADP, router.PersonnelClearedSecret, router.PersonnelClearedTopSecret),
			[]string{"none", "screened-us-persons", "us-persons-adp", "cleared-secret", "cleared-top-secret"}},
		{"NetworkDomain", values(router.DomainInternet, router.DomainNIPRNet, router.DomainSIPRNet, router.DomainJWICS, router.DomainAirGapped),
			[]string{"internet", "niprnet", "siprnet", "jwics", "air-gapped"}},
		{"FedRAMP", values(router.FedRAMPNone, router.FedRAMPLow, router.FedRAMPModerate, router.FedRAMPHigh),
			[]string{"none", "low", "moderate", "high"}},
		{"Status", values(router.StatusActive, router.StatusDraining, router.StatusUnhealthy, router.StatusOffline),
			[]string{"active", "draining", "unhealthy", "offline"}},
		{"ExportControl", values(router.ExportNone, router.ExportEAR, router.ExportITAR),
			[]string{"none", "EAR", "ITAR"}},
		{"PlacementState", values(router.PlacementPlaced, router.PlacementReleased, router.PlacementStranded, router.PlacementViolation),
			[]string{"placed", "released", "stranded", "violation"}},
		{"ReplicaState", values(router.ReplicaPending, router.ReplicaAccepted, router.ReplicaRunning, router.ReplicaFailed),
			[]string{"pending", "accepted", "running", "failed"}},
		{"ChangeKind", values(router.ChangeAdd, router.ChangeRaise, router.ChangeLower, router.ChangeRevoke, router.ChangeOther, router.ChangeWithdraw),
			[]string{"add", "raise", "lower", "revoke", "change", "withdraw"}},
		{"change state", values(router.ChangePending, router.ChangeApplied, router.ChangeRejected),
			[]string{"pending", "applied", "rejected"}},
		{"authz.Role of a tenant member", values(authz.RoleSubmitter, authz.RoleTenantAuditor),
			[]string{"tenant-submitter", "tenant-auditor"}},
		{"ReasonCode", values(router.ReasonLevel, router.ReasonAccreditation, router.ReasonAuthorization, router.ReasonControls,
			router.ReasonReleasability, router.ReasonPersonnel, router.ReasonResidency, router.ReasonJurisdiction,
			router.ReasonCustomer, router.ReasonNetworkDomain, router.ReasonCapability, router.ReasonCapacity,
			router.ReasonPolicy, router.ReasonHealth, router.ReasonSpread, router.ReasonStranded),
			[]string{"level", "accreditation", "authorization", "controls", "releasability", "personnel", "residency",
				"jurisdiction", "customer", "network-domain", "capability", "capacity", "policy", "health", "spread", "stranded"}},
	} {
		if len(c.vals) != len(c.names) {
			t.Fatalf("%s: %d values, %d names", c.name, len(c.vals), len(c.names))
		}
		for i, v := range c.vals {
			b, err := json.Marshal(v)
			if err != nil {
				t.Errorf("%s %d: %v", c.name, i, err)
				continue
			}
			if want, _ := json.Marshal(c.names[i]); !bytes.Equal(b, want) {
				t.Errorf("%s %d is stored as %s; want %s", c.name, i, b, want)
			}
			back := reflect.New(reflect.TypeOf(v))
			if err := json.Unmarshal(b, back.Interface()); err != nil || back.Elem().Interface() != v {
				t.Errorf("%s %s reads back as %v, %v", c.name, b, back.Elem().Interface(), err)
			}
		}
	}
}

func values[T any](vs ...T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// fieldDiff lists the fields of got that differ from want, with both
// values.
func fieldDiff(path string, got, want reflect.Value) []string {
	switch {
	case got.Kind() == reflect.Struct && got.Type() != reflect.TypeFor[time.Time]():
		var out []string
		for i := range got.NumField() {
			if f := got.Type().Field(i); f.IsExported() {
				out = append(out, fieldDiff(path+"."+f.Name, got.Field(i), want.Field(i))...)
			}
		}
		return out
	case got.Kind() == reflect.Pointer && !got.IsNil() && !want.IsNil():
		return fieldDiff(path, got.Elem(), want.Elem())
	case got.Kind() == reflect.Slice && got.Len() == want.Len() && got.Type().Elem().Kind() == reflect.Struct:
		var out []string
		for i := range got.Len() {
			out = append(out, fieldDiff(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))...)
		}
		return out
	case !reflect.DeepEqual(got.Interface(), want.Interface()):
		return []string{fmt.Sprintf("%s = %v; want %v", path, got.Interface(), want.Interface())}
	}
	return nil
}

// keyDiff says which keys one JSON document holds that the other does
// not ("" when they hold the same, or are not JSON).
func keyDiff(tb testing.TB, got, want []byte, notJSON bool) string {
	tb.Helper()
	if notJSON {
		return ""
	}
	set := func(b []byte) map[string]bool {
		m := make(map[string]bool)
		for _, p := range keyPaths(tb, b) {
			m[strings.Join(p, ".")] = true
		}
		return m
	}
	g, w := set(got), set(want)
	var only, missing []string
	for k := range g {
		if !w[k] {
			only = append(only, k)
		}
	}
	for k := range w {
		if !g[k] {
			missing = append(missing, k)
		}
	}
	if len(only)+len(missing) == 0 {
		return ""
	}
	slices.Sort(only)
	slices.Sort(missing)
	return fmt.Sprintf(": keys %v are new, keys %v are gone", only, missing)
}

// unsetFields lists the stored fields of v (json tag not "-") that hold
// their zero value: empty slices, nil pointers, zero times and scalars.
func unsetFields(path string, v reflect.Value) []string {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		if v.Interface().(time.Time).IsZero() {
			return []string{path}
		}
		return nil
	case v.Kind() == reflect.Struct:
		var out []string
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			out = append(out, unsetFields(strings.TrimPrefix(path+"."+f.Name, "."), v.Field(i))...)
		}
		return out
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return []string{path}
		}
		return unsetFields(path, v.Elem())
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		// A field of the elements is set when it is set in one of
		// them: elements may be alternatives that cannot all hold
		// every field (an equivalence row maps to a level or says
		// none).
		var out []string
		if k := v.Type().Elem().Kind(); k == reflect.Struct || k == reflect.Pointer || k == reflect.Slice {
			unset := map[string]int{}
			var order []string
			for i := range v.Len() {
				for _, f := range unsetFields(path+"[]", v.Index(i)) {
					if unset[f] == 0 {
						order = append(order, f)
					}
					unset[f]++
				}
			}
			for _, f := range order {
				if unset[f] == v.Len() {
					out = append(out, f)
				}
			}
		}
		return out
	case v.IsZero():
		return []string{path}
	}
	return nil
}

// writeGolden writes a golden record, refusing to drop a key the file
// held: that is a rename or a removal, which needs a migration.
func writeGolden(tb testing.TB, path string, b []byte, isJSON bool) {
	tb.Helper()
	if old, err := os.ReadFile(path); err == nil && isJSON {
		now := make(map[string]bool)
		for _, p := range keyPaths(tb, b) {
			now[strings.Join(p, ".")] = true
		}
		for _, p := range keyPaths(tb, old) {
			if k := strings.Join(p, "."); !now[k] {
				tb.Fatalf("-update would drop key %s from %s: a renamed or removed field orphans stored records. "+
					"Migrate them, then delete the golden file by hand to write it again.", k, path)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// parseJSON decodes a JSON document generically, numbers kept as
// written.
func parseJSON(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// keyPaths lists the object keys of a JSON document, each as its path
// from the root ("[]" for the elements of an array), once each, sorted.
func keyPaths(tb testing.TB, b []byte) [][]string {
	tb.Helper()
	seen := make(map[string][]string)
	var walk func(prefix []string, v any)
	walk = func(prefix []string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := append(slices.Clip(prefix), k)
				seen[strings.Join(p, ".")] = p
				walk(p, e)
			}
		case []any:
			for _, e := range x {
				walk(append(slices.Clip(prefix), "[]"), e)
			}
		}
	}
	walk(nil, parseJSON(tb, b))
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([][]string, len(names))
	for i, n := range names {
		out[i] = seen[n]
	}
	return out
}

// renameKey appends suffix to the key at path in doc (in every element
// of an array on the way) and reports whether it found one.
func renameKey(doc any, path []string, suffix string) bool {
	switch x := doc.(type) {
	case map[string]any:
		v, ok := x[path[0]]
		if !ok {
			return false
		}
		if len(path) == 1 {
			delete(x, path[0])
			x[path[0]+suffix] = v
			return true
		}
		return renameKey(v, path[1:], suffix)
	case []any:
		if path[0] != "[]" {
			return false
		}
		found := false
		for _, e := range x {
			found = renameKey(e, path[1:], suffix) || found
		}
		return found
	}
	return false
}
