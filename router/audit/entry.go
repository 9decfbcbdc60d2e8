package audit

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Operations: an entry's Op.
const (
	OpPlace   = "place"   // a placement committed
	OpRefuse  = "refuse"  // a placement refused: no eligible region, or spread unsatisfiable
	OpRelease = "release" // a placement released

	// OpRefuseSummary stands for the refusals of one caller and tenant
	// that were not audited one by one (router/state's auditlimit.go):
	// Count of them, made from From to To, by reason in Reasons.
	OpRefuseSummary = "refuse-summary"

	// Written by the reconciler, in the transaction of the change they
	// record.
	OpViolation = "violation" // a replica's region no longer covers the workload
	OpStranded  = "stranded"  // a replica must move and no region can take it
	OpReroute   = "reroute"   // a replica moved: Regions holds from, to
	OpRetire    = "retire"    // a moved-away copy released once its replacement was confirmed
	OpRecovered = "recovered" // a placement's issues cleared without a move
	OpHealth    = "health"    // a region marked unhealthy: no live agent past the grace period
	// OpReplicaFailed: a region's agent acknowledged a replica as
	// FAILED (Regions names the region, Reasons the agent's detail).
	// Bounded per agent as refusals are.
	OpReplicaFailed = "replica-failed"
	// OpReplicaFailedSummary stands for the replica-failed entries of
	// one agent and tenant that were not written one by one: Count of
	// them, from From to To, by placement in Reasons.
	OpReplicaFailedSummary = "replica-failed-summary"

	// Catalogue changes, written in the transaction of the change. For
	// regions, Before and After summarise the accreditation.
	OpRegionPut      = "region-put"
	OpRegionDelete   = "region-delete"
	OpProviderPut    = "provider-put"
	OpProviderDelete = "provider-delete"
	OpTenantPut      = "tenant-put"
	OpTenantDelete   = "tenant-delete"

	// Two-person region changes.
	OpChangeProposed = "change-proposed"
	OpChangeApproved = "change-approved"
	OpChangeRejected = "change-rejected"

	// OpTamper is the op of the reconciler's record of tampering it
	// found in the log; its reasons say what ("<entry id>: why").
	OpTamper = "tamper"
)

// Entry is one audit record: what was decided, for whom, on what label,
// where, and on which revision of the state. Place and release records
// are written in the same etcd transaction as the change they record;
// refusal records are written before the refusal is returned, one by
// one up to each caller's rate and then as counted summaries. Its
// stored form (Encode) is at most MaxEntryBytes.
type Entry struct {
	Time time.Time `json:"time"`
	Op   string    `json:"op"`
	// Actor is who: the caller's SPIFFE ID, or "system" (the reconciler).
	Actor     string `json:"actor"`
	RequestID string `json:"request_id"`
	Tenant    string `json:"tenant"`
	// Workload is the workload's name.
	Workload string `json:"workload"`
	// Label is the workload's canonical banner.
	Label   string    `json:"label"`
	Regions []string  `json:"regions,omitempty"`
	Scores  []float64 `json:"scores,omitempty"`
	// Reasons says why a refusal refused: the summary, then for every
	// region refused "provider/id: code, code", first those of the
	// regions the tenant may know of (router.Tenant.MayKnow) and then
	// the others, each part in the decision's order. Each reason is at
	// most maxReasonBytes, and all of them at most MaxReasonsBytes:
	// the region verdicts past the bound are counted in ReasonsOmitted.
	Reasons        []string `json:"reasons,omitempty"`
	ReasonsOmitted int      `json:"reasons_omitted,omitempty"`
	// Revision is the etcd revision the decision read.
	Revision int64 `json:"revision"`
	// Provider is the provider a provider-put or -delete changed.
	Provider string `json:"provider,omitempty"`
	// Before and After summarise what a catalogue change changed (a
	// region's accreditation); empty for the others.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Count, in a refuse-summary (or replica-failed-summary), is how
	// many refusals (or failure acknowledgements) it stands for,
	// made from From to To. Its Time, like any entry's, is when it was
	// written: never before the entries written ahead of it.
	Count int64     `json:"count,omitempty"`
	From  time.Time `json:"from,omitzero"`
	To    time.Time `json:"to,omitzero"`
}

// Record is an entry as its store returns it: its id (the key under
// audit/, which sorts by time; see NewID) and the etcd revision that
// wrote it.
type Record struct {
	ID      string
	Written int64
	Entry   Entry
}

// Stored sizes. An audit entry holds at most: a canonical banner (the
// parser bounds its input to router.MaxBannerLen; expanding tetragraphs
// adds a few hundred bytes), up to twice router.MaxReplicas region keys
// (a release while every replica moves: replicas and retiring copies),
// names and ids of bounded length, and reasons bounded here. The worst
// legal entry is about 9.5 KB (router/state's TestAuditEntrySize and
// TestAuditEntryBound build it); the cap leaves room and is enforced:
// an entry that would exceed it is not written, and the change it
// records fails with it.
const (
	MaxEntryBytes   = 16 << 10
	MaxReasonsBytes = 4 << 10
	maxReasonBytes  = 512
)

// Encode is e's stored form, within MaxEntryBytes: reasons clipped to
// maxReasonBytes each and MaxReasonsBytes together (the first, the
// refusal's summary, always kept; the region verdicts past the bound
// counted in ReasonsOmitted), Before and After clipped.
func Encode(e Entry) ([]byte, error) {
	if len(e.Before) > maxReasonBytes || len(e.After) > maxReasonBytes {
		e.Before, e.After = clipReason(e.Before), clipReason(e.After)
	}
	total, clip := 0, false
	for i, r := range e.Reasons {
		total += len(r)
		clip = clip || len(r) > maxReasonBytes || (i > 0 && total > MaxReasonsBytes)
	}
	if clip {
		kept := make([]string, 0, len(e.Reasons))
		total = 0
		for i, r := range e.Reasons {
			r = clipReason(r)
			if i > 0 && total+len(r) > MaxReasonsBytes {
				e.ReasonsOmitted += len(e.Reasons) - i
				break
			}
			total += len(r)
			kept = append(kept, r)
		}
		e.Reasons = kept
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit record: %w", err)
	}
	if len(b) > MaxEntryBytes {
		return nil, fmt.Errorf("audit record of %s %s is %d bytes, over the bound of %d", e.Op, e.RequestID, len(b), MaxEntryBytes)
	}
	return b, nil
}

// clipReason shortens a reason to maxReasonBytes, saying by how much.
func clipReason(r string) string {
	if len(r) <= maxReasonBytes {
		return r
	}
	const room = 32 // for the note
	cut := strings.ToValidUTF8(r[:maxReasonBytes-room], "")
	return fmt.Sprintf("%s... (%d bytes clipped)", cut, len(r)-len(cut))
}

// IDs makes entry ids that sort by time and are unique across daemons:
// the clock in nanoseconds, the daemon's random node id (Node, 8 hex
// digits), and a per-daemon sequence number, all fixed width:
// <time, 16 hex>-<node, 8 hex>-<seq, 8+ hex>.
type IDs struct {
	Node string
	seq  atomic.Uint64
}

// Next is the id of an entry dated t.
func (a *IDs) Next(t time.Time) string {
	ns := max(t.UnixNano(), 0)
	return fmt.Sprintf("%016x-%s-%08x", ns, a.Node, a.seq.Add(1))
}

// IDTime is the id prefix of time t: every id of an entry at t or later
// sorts at or after it.
func IDTime(t time.Time) string { return fmt.Sprintf("%016x", max(t.UnixNano(), 0)) }

// IDNanos reads the time, in Unix ns, of an id IDs makes:
// <16 hex>-<8 hex>-<8 to 16 hex>.
func IDNanos(id string) (int64, bool) {
	ts, rest, ok1 := strings.Cut(id, "-")
	node, seq, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 || len(ts) != 16 || len(node) != 8 || len(seq) < 8 || len(seq) > 16 || !isLowerHex(ts+node+seq) {
		return 0, false
	}
	ns, err := strconv.ParseUint(ts, 16, 64)
	if err != nil || ns > math.MaxInt64 {
		return 0, false
	}
	return int64(ns), true
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// PrintableID is an entry id fit for a log line or a tamper record: a
// forged one may be long or unprintable.
func PrintableID(id string) string {
	if len(id) <= 64 && strings.IndexFunc(id, func(r rune) bool { return r < '!' || r > '~' }) < 0 {
		return id
	}
	return fmt.Sprintf("%.64q", id)
}
