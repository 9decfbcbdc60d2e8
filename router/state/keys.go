package state

import (
	"fmt"
	"strings"

	"github.com/classroute/classroute/router"
)

// DefaultPrefix is the etcd key prefix under which a Store keeps its records.
const DefaultPrefix = "/classroute/v1/"

// Key layout under the prefix. Every value is JSON.
//
//	regions/<provider>/<id>   router.Region
//	providers/<id>            router.Provider
//	tenants/<id>              router.Tenant
//	usage/<provider>/<id>     usageValue: capacity used by live placements
//	placements/<tenant>/<id>  router.Placement, by tenant and request id
//	audit/<sortable id>       audit.Entry (not cached)
//	audit-chain/<seq>         audit.ChainRecord: the hash chain over audit/ (see auditchain.go; not cached)
//	audit-checkpoint/<seq>    audit.Checkpoint: a signed chain head (not cached)
//	audit-index/...           the audit index: empty keys naming entries by tenant, workload, op, region, and its watermark (see auditindex.go; not cached)
//	live/<provider>/<id>      liveValue on the agent's lease (see health.go)
//	health/<provider>/<id>    router.Health (see health.go)
//	election/...              the reconciler's leader election (not cached)
//	seeded                    seedMarker: the default catalogue was loaded
//	changes/<id>              router.Change: a two-person region or equivalence change (see changes.go; not cached)
//	equivalences/<from>/<to>  EquivalenceVersion: the current version of an equivalence entry (see equivalence.go)
//	equivalence-history/<from>/<to>/<version>  EquivalenceVersion: every version applied (not cached)
//	seeded-equivalences       seedMarker: the default equivalence entries were loaded
//	edges/<id>                EdgeVersion: a cross-domain or connected-service edge (see flows.go)
//	services/<name>           ServiceVersion: a catalogue service (see flows.go)
//	seeded-edges              seedMarker: the default edges and services were loaded
//	secrets/resume-token-key  the resume token key, hex (see resumekey.go; not cached)
//
// Each kind's stored form is pinned by a golden record in
// testdata/stored/ (storedformat_test.go): a field renamed without a
// migration fails it.
//
// Every directory that is watched must sort after "audit0": the watch
// skips the audit directory by starting there.
const (
	regionsDir    = "regions/"
	providersDir  = "providers/"
	tenantsDir    = "tenants/"
	usageDir      = "usage/"
	placementsDir = "placements/"
	auditDir      = "audit/"
	chainDir      = "audit-chain/"      // sorts before "audit0": not watched
	checkpointDir = "audit-checkpoint/" // likewise
	auditIndexDir = "audit-index/"      // likewise
	liveDir       = "live/"
	healthDir     = "health/"
	electionDir   = "election/"
	seededKey     = "seeded"
)

// keys builds and parses the etcd keys of one prefix.
type keys struct{ prefix string }

func (k keys) region(key string) string   { return k.prefix + regionsDir + key }
func (k keys) provider(id string) string  { return k.prefix + providersDir + id }
func (k keys) tenant(id string) string    { return k.prefix + tenantsDir + id }
func (k keys) usage(key string) string    { return k.prefix + usageDir + key }
func (k keys) placement(id string) string { return k.prefix + placementsDir + id }
func (k keys) audit(id string) string     { return k.prefix + auditDir + id }
func (k keys) chain(seq uint64) string    { return fmt.Sprintf("%s%s%020d", k.prefix, chainDir, seq) }
func (k keys) checkpoint(seq uint64) string {
	return fmt.Sprintf("%s%s%020d", k.prefix, checkpointDir, seq)
}
func (k keys) seeded() string               { return k.prefix + seededKey }
func (k keys) live(key string) string       { return k.prefix + liveDir + key }
func (k keys) health(key string) string     { return k.prefix + healthDir + key }
func (k keys) election() string             { return k.prefix + electionDir + "reconciler" }
func (k keys) regionsOf(prov string) string { return k.prefix + regionsDir + prov + "/" }

// kind says which table an etcd key belongs to, and the record's id
// within it (a region key "provider/id" for regions and usage, a
// placement key "tenant/id" for placements).
type kind uint8

const (
	kindOther kind = iota // not cached: audit, seed marker, unknown
	kindRegion
	kindProvider
	kindTenant
	kindUsage
	kindPlacement
	kindLive
	kindHealth
	kindEquivalence
	kindEdge
	kindService
)

// parse splits an etcd key of this prefix into its kind and id.
func (k keys) parse(key string) (kind, string) {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return kindOther, ""
	}
	for _, d := range [...]struct {
		dir  string
		kind kind
	}{
		{placementsDir, kindPlacement},
		{usageDir, kindUsage},
		{regionsDir, kindRegion},
		{providersDir, kindProvider},
		{tenantsDir, kindTenant},
		{liveDir, kindLive},
		{healthDir, kindHealth},
		{equivalencesDir, kindEquivalence},
		{edgesDir, kindEdge},
		{servicesDir, kindService},
	} {
		if id, ok := strings.CutPrefix(rest, d.dir); ok && id != "" {
			if d.kind == kindPlacement && !strings.Contains(id, "/") {
				// The layout before request ids were scoped to the
				// tenant (see migrate.go): not cached.
				return kindOther, ""
			}
			return d.kind, id
		}
	}
	return kindOther, ""
}

// validKeyPart reports whether s may be one segment of a key: not empty,
// no '/', no control characters.
func validKeyPart(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// splitRegionKey splits "provider/id" and checks both parts.
func splitRegionKey(key string) (prov, id string, ok bool) {
	prov, id, ok = strings.Cut(key, "/")
	return prov, id, ok && validKeyPart(prov) && validKeyPart(id)
}

// placementKey is a placement's key "tenant/id": a request id names a
// placement within its tenant only, and neither part holds a '/'. It is
// the placement's etcd key under placements/ and its cache primary key.
func placementKey(tenant, id string) string { return tenant + "/" + id }

// keyOf is p's placement key.
func keyOf(p *router.Placement) string { return placementKey(p.Tenant, p.ID) }

// legacyPlacement reports whether key is a placement key of the layout
// before request ids were scoped to the tenant, placements/<id>, and
// returns the id.
func (k keys) legacyPlacement(key string) (string, bool) {
	id, ok := strings.CutPrefix(key, k.prefix+placementsDir)
	return id, ok && id != "" && !strings.Contains(id, "/")
}
