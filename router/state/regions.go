package state

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
)

const tableRegions = "regions"

// regionRecord is a cached region and the etcd mod revision of its record.
type regionRecord struct {
	Key    string // "provider/id"
	Region *router.Region
	Rev    int64
}

func regionsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableRegions,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*regionRecord](func(r *regionRecord) string { return r.Key }),
			},
		},
	}
}

func regionTxn(tx *memdb.Txn, key string) *regionRecord {
	raw, err := tx.First(tableRegions, indexID, key)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*regionRecord)
}

// GetRegion returns a region, what is used of it, and the revisions of
// both records, from the cache. An unknown key is ErrNotFound.
func (s *Store) GetRegion(key string) (router.RegionState, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	_, view := revisionTxn(tx)
	st, ok := view.state(key)
	if !ok {
		return router.RegionState{}, fmt.Errorf("region %q: %w", key, router.ErrNotFound)
	}
	return st, nil
}

// ListRegions returns every region with its usage, sorted by key, and
// the etcd revision the list reflects. The Region records are shared:
// never modify one.
func (s *Store) ListRegions() ([]router.RegionState, int64) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	rev, view := revisionTxn(tx)
	return slices.Clone(view.states), rev
}

// PutRegion creates or replaces a region and, in the same etcd
// transaction, creates its usage record if it has none. The region's
// provider must exist, checked in the transaction too. Lowering the
// capacity below what is used is allowed: the capacity rule then refuses
// new placements there until enough are released. PutRegion returns the
// revision of the write, once the cache reflects it.
func (s *Store) PutRegion(ctx context.Context, r *router.Region) (int64, error) {
	if err := validateRegion(r); err != nil {
		return 0, err
	}
	val, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("region %s: encode: %w", r.Key(), err)
	}
	zero, err := json.Marshal(usageValue{})
	if err != nil {
		return 0, err
	}
	key, ukey, pkey := s.keys.region(r.Key()), s.keys.usage(r.Key()), s.keys.provider(r.Provider)
	// The audit record says what the accreditation was: the region read
	// from the cache, compared in the transaction.
	for i := 0; ; i++ {
		tx := s.db.Txn(false)
		old := regionTxn(tx, r.Key())
		tx.Abort()
		var oldRev int64
		a := audit.Entry{Op: audit.OpRegionPut, Actor: authz.Actor(ctx), Regions: []string{r.Key()}, Revision: s.Revision(), After: AccreditationSummary(&r.Accreditation)}
		if old != nil {
			oldRev, a.Before = old.Rev, AccreditationSummary(&old.Region.Accreditation)
		}
		aop, err := s.auditOp(a)
		if err != nil {
			return 0, err
		}
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(
					clientv3.Compare(clientv3.CreateRevision(pkey), ">", 0),
					clientv3.Compare(clientv3.ModRevision(key), "=", oldRev),
				).
				Then(
					clientv3.OpPut(key, string(val)),
					clientv3.OpTxn(
						[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(ukey), "=", 0)},
						[]clientv3.Op{clientv3.OpPut(ukey, string(zero))},
						nil),
					aop,
				).
				Else(clientv3.OpGet(pkey, clientv3.WithCountOnly())).
				Commit()
		})
		if err != nil {
			return 0, fmt.Errorf("put region %s: %w", r.Key(), err)
		}
		rev := resp.Header.Revision
		if resp.Succeeded {
			if err := s.waitCommitted(ctx, rev); err != nil {
				return rev, fmt.Errorf("put region %s: %w", r.Key(), err)
			}
			return rev, nil
		}
		if resp.Responses[0].GetResponseRange().GetCount() == 0 {
			// The request names something that does not exist: a bad
			// field of the request, not a missing region.
			return 0, router.Violations{{Field: "region.provider", Description: fmt.Sprintf("unknown provider %q: put the provider first", r.Provider)}}.Err()
		}
		if i >= s.maxRetries {
			return 0, fmt.Errorf("put region %s: %w: lost %d races", r.Key(), router.ErrConflict, i+1)
		}
		if err := s.afterConflict(ctx, rev, i); err != nil {
			return 0, fmt.Errorf("put region %s: %w", r.Key(), err)
		}
	}
}

// AccreditationSummary is a one-line account of an accreditation, for
// the audit trail: "SECRET controls=SI,TK il=6 fedramp=High
// frameworks=ICD 503 expires=2027-01-01T00:00:00Z [revoked]".
func AccreditationSummary(a *router.Accreditation) string {
	var b strings.Builder
	b.WriteString(a.MaxLevel.String())
	if len(a.Controls) > 0 {
		fmt.Fprintf(&b, " controls=%s", strings.Join(a.Controls, ","))
	}
	if a.ImpactLevel != 0 {
		fmt.Fprintf(&b, " il=%d", a.ImpactLevel)
	}
	if a.FedRAMP != 0 {
		fmt.Fprintf(&b, " fedramp=%s", a.FedRAMP)
	}
	if len(a.Frameworks) > 0 {
		fmt.Fprintf(&b, " frameworks=%s", strings.Join(a.Frameworks, ","))
	}
	fmt.Fprintf(&b, " expires=%s", a.Expires.UTC().Format(time.RFC3339))
	if a.Revoked {
		b.WriteString(" revoked")
	}
	return b.String()
}

// DeleteRegion deletes a region and its usage record. A region that
// still holds placed (not released) placements is ErrInUse; the check
// and the delete are one etcd transaction that compares the usage record
// read, so a placement committed meanwhile makes it retry.
func (s *Store) DeleteRegion(ctx context.Context, key string, opts ...WriteOption) error {
	if err := s.Ready(); err != nil {
		return err
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return err
	}
	return s.retry(ctx, "delete region "+key, func(ctx context.Context) (bool, int64, error) {
		tx := s.db.Txn(false)
		r := regionTxn(tx, key)
		u := usageTxn(tx, key)
		tx.Abort()
		if r == nil {
			return false, 0, fmt.Errorf("region %q: %w", key, router.ErrNotFound)
		}
		if err := o.mismatch("region "+key, r.Rev); err != nil {
			return false, 0, err
		}
		var urev int64
		if u != nil {
			if u.Placements > 0 {
				return false, 0, fmt.Errorf("region %q holds %d placements: %w", key, u.Placements, router.ErrInUse)
			}
			urev = u.Rev
		}
		rkey, ukey := s.keys.region(key), s.keys.usage(key)
		aop, err := s.auditOp(audit.Entry{Op: audit.OpRegionDelete, Actor: authz.Actor(ctx), Regions: []string{key}, Revision: s.Revision(),
			Before: AccreditationSummary(&r.Region.Accreditation)})
		if err != nil {
			return false, 0, err
		}
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(
					clientv3.Compare(clientv3.ModRevision(rkey), "=", r.Rev),
					clientv3.Compare(clientv3.ModRevision(ukey), "=", urev),
				).
				// Its health record goes with it: a region created again
				// under the key starts without its predecessor's health.
				Then(clientv3.OpDelete(rkey), clientv3.OpDelete(ukey), clientv3.OpDelete(s.keys.health(key)), aop).
				Commit()
		})
		if err != nil {
			return false, 0, err
		}
		return resp.Succeeded, resp.Header.Revision, nil
	})
}

// validateRegion checks a region before it is stored.
func validateRegion(r *router.Region) error {
	if r == nil {
		return router.Violations{{Field: "region", Description: "required"}}.Err()
	}
	var v router.Violations
	if !validKeyPart(r.Provider) {
		v.Add("region.provider", "invalid id %q", r.Provider)
	}
	if !validKeyPart(r.ID) {
		v.Add("region.id", "invalid id %q", r.ID)
	}
	if err := v.Err(); err != nil {
		return err
	}
	return router.ValidateRegion(r)
}
