package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Audit operations.
const (
	AuditPlace   = "place"   // a placement committed
	AuditRefuse  = "refuse"  // a placement refused: no eligible region, or spread unsatisfiable
	AuditRelease = "release" // a placement released

	// Written by the reconciler (reconcile.go), in the transaction of
	// the change they record.
	AuditViolation = "violation" // a replica's region no longer covers the workload
	AuditStranded  = "stranded"  // a replica must move and no region can take it
	AuditReroute   = "reroute"   // a replica moved: Regions holds from, to
	AuditRetire    = "retire"    // a moved-away copy released once its replacement was confirmed
	AuditRecovered = "recovered" // a placement's issues cleared without a move
	AuditHealth    = "health"    // a region marked unhealthy: no live agent past the grace period
	// AuditReplicaFailed: a region's agent acknowledged a replica as
	// FAILED (Regions names the region, Reasons the agent's detail).
	AuditReplicaFailed = "replica-failed"

	// Catalogue changes, written in the transaction of the change. For
	// regions, Before and After summarise the accreditation.
	AuditRegionPut      = "region-put"
	AuditRegionDelete   = "region-delete"
	AuditProviderPut    = "provider-put"
	AuditProviderDelete = "provider-delete"
	AuditTenantPut      = "tenant-put"
	AuditTenantDelete   = "tenant-delete"
)

// AuditEntry is one audit record: what was decided, for whom, on what
// label, where, and on which revision of the state. Place and release
// records are written in the same etcd transaction as the change they
// record; refusal records are written before the refusal is returned.
type AuditEntry struct {
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
	// region refused "provider/id: code, code".
	Reasons []string `json:"reasons,omitempty"`
	// Revision is the etcd revision the decision read.
	Revision int64 `json:"revision"`
	// Provider is the provider a provider-put or -delete changed.
	Provider string `json:"provider,omitempty"`
	// Before and After summarise what a catalogue change changed (a
	// region's accreditation); empty for the others.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// auditIDs makes audit keys that sort by time and are unique across
// daemons: the clock in nanoseconds, this store's random node id, and a
// per-store sequence number, all fixed width.
type auditIDs struct {
	node string
	seq  atomic.Uint64
}

func (a *auditIDs) next(t time.Time) string {
	ns := max(t.UnixNano(), 0)
	return fmt.Sprintf("%016x-%s-%08x", ns, a.node, a.seq.Add(1))
}

// auditOp returns the etcd operation that appends e, to be put in the
// transaction of the change e records. A zero e.Time is now.
func (s *Store) auditOp(e AuditEntry) (clientv3.Op, error) {
	if e.Time.IsZero() {
		e.Time = s.clock().UTC()
	}
	val, err := json.Marshal(e)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("audit record: %w", err)
	}
	return clientv3.OpPut(s.keys.audit(s.auditID.next(e.Time)), string(val)), nil
}

// appendAudit writes one audit record on its own.
func (s *Store) appendAudit(ctx context.Context, e AuditEntry) error {
	op, err := s.auditOp(e)
	if err != nil {
		return err
	}
	_, err = s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(op).Commit()
	})
	return err
}

// ListAudit returns the latest limit audit records (100 when limit is not
// positive), oldest first, read from etcd.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	resp, err := s.kv.Get(gctx, s.keys.audit(""), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	out := make([]AuditEntry, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		e := &out[len(out)-1-i]
		if err := json.Unmarshal(kv.Value, e); err != nil {
			return nil, fmt.Errorf("audit record %s: %w", kv.Key, err)
		}
	}
	return out, nil
}

// AuditFilter selects audit records; zero fields select everything. The
// policy layer forces Tenant for a tenant's auditor.
type AuditFilter struct {
	Tenant   string
	Workload string
	// Region is a region key "provider/id" the record names.
	Region string
	Op     string
	// Since and Until bound the record's time: [Since, Until).
	Since, Until time.Time
	// After is a page token: the ID of the last record of the previous
	// page.
	After string
	// Limit is the page size (default 100, at most 1000).
	Limit int
}

func (f *AuditFilter) match(e *AuditEntry) bool {
	return (f.Tenant == "" || e.Tenant == f.Tenant) &&
		(f.Workload == "" || e.Workload == f.Workload) &&
		(f.Op == "" || e.Op == f.Op) &&
		(f.Region == "" || slices.Contains(e.Regions, f.Region)) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}

// AuditRecord is an audit entry with its id (the key under audit/, which
// sorts by time) and the etcd revision that wrote it.
type AuditRecord struct {
	ID      string
	Written int64
	Entry   AuditEntry
}

// FindAudit returns the audit records f selects, oldest first, a page of
// at most f.Limit, and the token of the next page ("" after the last).
// It reads etcd, scanning the key range of f's times.
func (s *Store) FindAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	from, end := s.keys.audit(""), clientv3.GetPrefixRangeEnd(s.keys.audit(""))
	if !f.Since.IsZero() {
		from = s.keys.audit(fmt.Sprintf("%016x", max(f.Since.UnixNano(), 0)))
	}
	if !f.Until.IsZero() {
		end = min(end, s.keys.audit(fmt.Sprintf("%016x", max(f.Until.UnixNano(), 0))))
	}
	if f.After != "" {
		from = max(from, s.keys.audit(f.After)+"\x00")
	}
	var out []AuditRecord
	var rev int64 // read every page at the first page's revision
	for from < end {
		gctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		resp, err := s.kv.Get(gctx, from, clientv3.WithRange(end), clientv3.WithLimit(500), clientv3.WithRev(rev))
		cancel()
		if err != nil {
			return nil, "", unavailable(ctx, err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			id := strings.TrimPrefix(string(kv.Key), s.keys.audit(""))
			var e AuditEntry
			if err := json.Unmarshal(kv.Value, &e); err != nil {
				return nil, "", fmt.Errorf("audit record %s: %w", id, err)
			}
			if !f.match(&e) {
				continue
			}
			out = append(out, AuditRecord{ID: id, Written: kv.ModRevision, Entry: e})
			if len(out) == limit {
				return out, id, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return out, "", nil
}
