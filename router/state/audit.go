package state

import (
	"context"
	"encoding/json"
	"fmt"
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

// appendAudit writes one audit record on its own.
func (s *Store) appendAudit(ctx context.Context, e AuditEntry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).Then(clientv3.OpPut(s.keys.audit(s.auditID.next(e.Time)), string(val))).Commit()
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
