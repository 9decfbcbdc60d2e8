package state

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-memdb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/classroute/classroute/router"
	"github.com/classroute/classroute/router/audit"
	"github.com/classroute/classroute/router/authz"
)

const tableTenants = "tenants"

// tenantRecord is a cached tenant and the etcd mod revision of its record.
type tenantRecord struct {
	Tenant *router.Tenant
	Rev    int64
}

func tenantsTableSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: tableTenants,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {
				Name:    indexID,
				Unique:  true,
				Indexer: oneIndex[*tenantRecord](func(t *tenantRecord) string { return t.Tenant.ID }),
			},
		},
	}
}

func tenantTxn(tx *memdb.Txn, id string) *tenantRecord {
	raw, err := tx.First(tableTenants, indexID, id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(*tenantRecord)
}

// GetTenant returns a tenant from the cache. An unknown id is ErrNotFound.
func (s *Store) GetTenant(id string) (*router.Tenant, error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	t := tenantTxn(tx, id)
	if t == nil {
		return nil, fmt.Errorf("tenant %q: %w", id, router.ErrNotFound)
	}
	return t.Tenant, nil
}

// GetTenantVersioned returns a tenant from the cache with the mod
// revision of its record (its etag). An unknown id is ErrNotFound.
func (s *Store) GetTenantVersioned(id string) (Versioned[*router.Tenant], error) {
	tx := s.db.Txn(false)
	defer tx.Abort()
	t := tenantTxn(tx, id)
	if t == nil {
		return Versioned[*router.Tenant]{}, fmt.Errorf("tenant %q: %w", id, router.ErrNotFound)
	}
	return Versioned[*router.Tenant]{Value: t.Tenant, Rev: t.Rev}, nil
}

// ListTenantsVersioned returns every tenant from the cache with the mod
// revision of its record, sorted by id. The tenants are shared: never
// modify one.
func (s *Store) ListTenantsVersioned() []Versioned[*router.Tenant] {
	tx := s.db.Txn(false)
	defer tx.Abort()
	it, err := tx.Get(tableTenants, indexID)
	if err != nil {
		panic(err) // the table and index exist
	}
	var out []Versioned[*router.Tenant]
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*tenantRecord)
		out = append(out, Versioned[*router.Tenant]{Value: r.Tenant, Rev: r.Rev})
	}
	return out
}

// ListTenants returns every tenant from the cache, sorted by id. The
// tenants are shared: never modify one.
func (s *Store) ListTenants() []*router.Tenant {
	tx := s.db.Txn(false)
	defer tx.Abort()
	it, err := tx.Get(tableTenants, indexID)
	if err != nil {
		panic(err) // the table and index exist
	}
	var out []*router.Tenant
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*tenantRecord).Tenant)
	}
	return out
}

// PutTenant creates or replaces a tenant and returns once the cache
// reflects the write. Placing compares the tenant record's revision, so
// a placement decided on the old record does not commit.
func (s *Store) PutTenant(ctx context.Context, t *router.Tenant, opts ...WriteOption) error {
	if t == nil || !validKeyPart(t.ID) {
		return router.Violations{{Field: "tenant.id", Description: "required: a valid id"}}.Err()
	}
	if err := router.ValidateTenant(t); err != nil {
		return err
	}
	val, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("tenant %s: encode: %w", t.ID, err)
	}
	aop, err := s.auditOp(audit.Entry{Op: audit.OpTenantPut, Actor: authz.Actor(ctx), Tenant: t.ID, Revision: s.Revision()})
	if err != nil {
		return err
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return err
	}
	key := s.keys.tenant(t.ID)
	resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return s.kv.Txn(ctx).If(o.cmps(key)...).
			Then(clientv3.OpPut(key, string(val)), aop).
			Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).Commit()
	})
	if err != nil {
		return fmt.Errorf("put tenant %s: %w", t.ID, err)
	}
	if !resp.Succeeded {
		return o.mismatch("tenant "+t.ID, modRevOf(resp, 0))
	}
	if err := s.waitCommitted(ctx, resp.Header.Revision); err != nil {
		return fmt.Errorf("put tenant %s: %w", t.ID, err)
	}
	return nil
}

// DeleteTenant deletes a tenant. A tenant with live (not released)
// placements is ErrInUse. The cache is checked at revision R, and the
// delete compares that the tenant record is the one read and that none
// of the tenant's placements (its directory placements/<tenant>/) was
// created after R, so a placement of the tenant committed meanwhile
// makes it retry; other tenants' placements do not.
func (s *Store) DeleteTenant(ctx context.Context, id string, opts ...WriteOption) error {
	if err := s.Ready(); err != nil {
		return err
	}
	o := writeOptions(opts)
	if err := s.awaitCondition(ctx, o); err != nil {
		return err
	}
	return s.retry(ctx, "delete tenant "+id, func(ctx context.Context) (bool, int64, error) {
		tx := s.db.Txn(false)
		rev, _ := revisionTxn(tx)
		t := tenantTxn(tx, id)
		// Any live placement: a stranded or violating one too (the
		// reconciler rechecks it against its tenant).
		var live *router.Placement
		for _, st := range []router.PlacementState{router.PlacementPlaced, router.PlacementStranded, router.PlacementViolation} {
			if live == nil {
				live = firstPlacementTxn(tx, PlacementFilter{Tenant: id, State: ptr(st)})
			}
		}
		tx.Abort()
		if t == nil {
			return false, 0, fmt.Errorf("tenant %q: %w", id, router.ErrNotFound)
		}
		if err := o.mismatch("tenant "+id, t.Rev); err != nil {
			return false, 0, err
		}
		if live != nil {
			return false, 0, fmt.Errorf("tenant %q has live placements (%s): %w", id, live.ID, router.ErrInUse)
		}
		key := s.keys.tenant(id)
		aop, err := s.auditOp(audit.Entry{Op: audit.OpTenantDelete, Actor: authz.Actor(ctx), Tenant: id, Revision: rev})
		if err != nil {
			return false, 0, err
		}
		resp, err := s.txn(ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return s.kv.Txn(ctx).
				If(
					clientv3.Compare(clientv3.ModRevision(key), "=", t.Rev),
					clientv3.Compare(clientv3.CreateRevision(s.keys.placement(placementKey(id, ""))), "<", rev+1).WithPrefix(),
				).
				Then(clientv3.OpDelete(key), aop).
				Commit()
		})
		if err != nil {
			return false, 0, err
		}
		return resp.Succeeded, resp.Header.Revision, nil
	})
}

func ptr[T any](v T) *T { return &v }
